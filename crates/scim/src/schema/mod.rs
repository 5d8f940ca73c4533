//! RFC 7643 schemas: the attribute definitions the PATCH engine, the filter evaluator and the
//! projection consult, and the discovery documents (`/Schemas`, `/ResourceTypes`,
//! `/ServiceProviderConfig`, RFC 7644 §4). All of them come from the JSON files in
//! `crates/scim/schemas/`, so what the server answers and what the engine enforces are one source.

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::filter::AttrPath;

/// The core User schema (RFC 7643 §4.1).
pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The enterprise User extension (RFC 7643 §4.3).
pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// The core Group schema (RFC 7643 §4.2).
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// RFC 7644 §3.4.2 list responses.
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// RFC 7644 §3.5.2 PATCH bodies.
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// RFC 7644 §3.12 error bodies.
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// RFC 7644 §3.4.3 `POST /.search` bodies.
pub const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
/// RFC 7643 §7 schema resources.
pub const SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
/// RFC 7643 §6 resource types.
pub const RESOURCE_TYPE: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
/// RFC 7643 §5 service provider configuration.
pub const SERVICE_PROVIDER_CONFIG: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";

/// The resources Behalf serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// `/Users`: core User + enterprise extension.
    User,
    /// `/Groups`.
    Group,
}

impl ResourceKind {
    /// The core schema URN.
    pub fn core_schema(self) -> &'static str {
        match self {
            ResourceKind::User => USER,
            ResourceKind::Group => GROUP,
        }
    }

    /// The extension schema URNs the resource type allows.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            ResourceKind::User => &[ENTERPRISE_USER],
            ResourceKind::Group => &[],
        }
    }

    /// `meta.resourceType` / the ResourceType id.
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
        }
    }

    /// The extension URN `urn` names, spelled as the schema spells it, ignoring case.
    pub fn extension(self, urn: &str) -> Option<&'static str> {
        self.extensions()
            .iter()
            .copied()
            .find(|e| e.eq_ignore_ascii_case(urn))
    }
}

/// RFC 7643 §2.3 data types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttrType {
    /// §2.3.1
    String,
    /// §2.3.2
    Boolean,
    /// §2.3.3
    Decimal,
    /// §2.3.4
    Integer,
    /// §2.3.5, an `xsd:dateTime` string
    DateTime,
    /// §2.3.7, a URI
    Reference,
    /// §2.3.8
    Complex,
    /// §2.3.6, base64
    Binary,
}

/// RFC 7643 §2.2 `mutability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Mutability {
    /// Set by the service provider only.
    ReadOnly,
    /// The default.
    #[default]
    ReadWrite,
    /// Set at creation (or by PUT), never changed after.
    Immutable,
    /// Written, never returned.
    WriteOnly,
}

/// RFC 7643 §2.2 `returned`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Returned {
    /// Whatever `attributes` / `excludedAttributes` say.
    Always,
    /// Never in a response.
    Never,
    /// Unless excluded.
    #[default]
    Default,
    /// Only when named in `attributes`.
    Request,
}

/// RFC 7643 §2.2 `uniqueness`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Uniqueness {
    /// No constraint.
    #[default]
    None,
    /// Unique within the service provider (for Behalf: within the SCIM connection).
    Server,
    /// Globally unique.
    Global,
}

/// An attribute definition as RFC 7643 §7 writes it in a schema resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Attribute {
    /// The attribute's name, as the schema spells it.
    pub name: String,
    /// The data type.
    #[serde(rename = "type")]
    pub attr_type: AttrType,
    /// Whether the value is a JSON array.
    pub multi_valued: bool,
    /// Human-readable description.
    #[serde(default)]
    pub description: String,
    /// Whether the attribute is required.
    #[serde(default)]
    pub required: bool,
    /// Whether string comparison is case-sensitive (RFC 7643 §2.2; only for string types).
    #[serde(default)]
    pub case_exact: bool,
    /// Who may change it.
    #[serde(default)]
    pub mutability: Mutability,
    /// When it is returned.
    #[serde(default)]
    pub returned: Returned,
    /// Its uniqueness.
    #[serde(default)]
    pub uniqueness: Uniqueness,
    /// Suggested values (`work`, `home`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub canonical_values: Vec<String>,
    /// For references: what they point at (`User`, `Group`, `external`, `uri`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference_types: Vec<String>,
    /// For complex attributes: the sub-attributes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_attributes: Vec<Attribute>,
}

impl Attribute {
    /// The sub-attribute `name`, ignoring case.
    pub fn sub_attribute(&self, name: &str) -> Option<&Attribute> {
        self.sub_attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// One schema resource (RFC 7643 §7) as the JSON file holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    /// The schema URN.
    pub id: String,
    /// Its short name.
    pub name: String,
    /// What it describes.
    pub description: String,
    /// Its attributes.
    pub attributes: Vec<Attribute>,
}

impl Schema {
    /// The attribute `name`, ignoring case.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

pub(crate) const USER_JSON: &str = include_str!("../../schemas/user.json");
pub(crate) const ENTERPRISE_USER_JSON: &str = include_str!("../../schemas/enterprise_user.json");
pub(crate) const GROUP_JSON: &str = include_str!("../../schemas/group.json");
pub(crate) const COMMON_JSON: &str = include_str!("../../schemas/common.json");
const RESOURCE_TYPES_JSON: &str = include_str!("../../schemas/resource_types.json");
const SERVICE_PROVIDER_CONFIG_JSON: &str =
    include_str!("../../schemas/service_provider_config.json");

struct Registry {
    user: Schema,
    enterprise: Schema,
    group: Schema,
    common: Schema,
    /// The served files as written, so every characteristic the file states (each `caseExact`
    /// included) is served; re-serialising the parsed `Attribute`s would add defaults.
    files: [(&'static str, Value); 3],
}

fn load<T: serde::de::DeserializeOwned>(name: &str, text: &str) -> T {
    // The files are part of the crate and a unit test parses each; a broken one is a build defect,
    // not a request error.
    serde_json::from_str(text).unwrap_or_else(|e| panic!("crates/scim/schemas/{name}: {e}"))
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| Registry {
    user: load("user.json", USER_JSON),
    enterprise: load("enterprise_user.json", ENTERPRISE_USER_JSON),
    group: load("group.json", GROUP_JSON),
    common: load("common.json", COMMON_JSON),
    files: [
        (USER, load("user.json", USER_JSON)),
        (
            ENTERPRISE_USER,
            load("enterprise_user.json", ENTERPRISE_USER_JSON),
        ),
        (GROUP, load("group.json", GROUP_JSON)),
    ],
});

/// The schema with URN `id` (ignoring case), if the crate defines it.
pub fn schema_by_id(id: &str) -> Option<&'static Schema> {
    let r = &*REGISTRY;
    [&r.user, &r.enterprise, &r.group]
        .into_iter()
        .find(|s| s.id.eq_ignore_ascii_case(id))
}

/// The core schema of `kind`.
pub fn core_schema(kind: ResourceKind) -> &'static Schema {
    let r = &*REGISTRY;
    match kind {
        ResourceKind::User => &r.user,
        ResourceKind::Group => &r.group,
    }
}

/// RFC 7643 §3.1 common attributes (`id`, `externalId`, `meta`).
pub fn common_attributes() -> &'static [Attribute] {
    &REGISTRY.common.attributes
}

/// The top-level attribute `name` of `kind`'s core schema or the common attributes.
pub(crate) fn core_attribute(kind: ResourceKind, name: &str) -> Option<&'static Attribute> {
    core_schema(kind)
        .attribute(name)
        .or_else(|| REGISTRY.common.attribute(name))
}

/// The top-level attribute of a path, ignoring its sub-attribute: from the extension the URN names,
/// or from the core schema (with or without its URN) and the common attributes.
pub(crate) fn top_attribute(kind: ResourceKind, path: &AttrPath) -> Option<&'static Attribute> {
    match &path.urn {
        None => core_attribute(kind, &path.name),
        Some(urn) if urn.eq_ignore_ascii_case(kind.core_schema()) => {
            core_attribute(kind, &path.name)
        }
        Some(urn) => {
            let ext = kind.extension(urn)?;
            schema_by_id(ext)?.attribute(&path.name)
        }
    }
}

/// The definition of the attribute (or sub-attribute) a path names, for `kind`; `None` when the
/// schemas define no such attribute. Unqualified names resolve in the core schema (RFC 7644 §3.10).
pub fn attribute(kind: ResourceKind, path: &AttrPath) -> Option<&'static Attribute> {
    let top = top_attribute(kind, path)?;
    match &path.sub {
        None => Some(top),
        Some(sub) => top.sub_attribute(sub),
    }
}

fn schema_resource(file: &Value, base: Option<&str>) -> Value {
    let mut v = json!({ "schemas": [SCHEMA] });
    if let (Some(v), Some(file)) = (v.as_object_mut(), file.as_object()) {
        v.extend(file.iter().map(|(k, x)| (k.clone(), x.clone())));
    }
    v["meta"] = json!({ "resourceType": "Schema" });
    if let Some(base) = base {
        let id = file["id"].as_str().unwrap_or_default();
        v["meta"]["location"] =
            Value::String(format!("{}/Schemas/{id}", base.trim_end_matches('/')));
    }
    v
}

/// The `/Schemas` resources (RFC 7644 §4): a JSON array of the User, EnterpriseUser and Group
/// schemas, ready for [`crate::list::list_response`]. Without a base URL there is no
/// `meta.location`; use [`schemas_at`] to have one.
pub fn schemas() -> Value {
    Value::Array(
        REGISTRY
            .files
            .iter()
            .map(|(_, f)| schema_resource(f, None))
            .collect(),
    )
}

/// [`schemas`] with `meta.location` under `base` (e.g. `https://behalf.example/scim/v2`).
pub fn schemas_at(base: &str) -> Value {
    Value::Array(
        REGISTRY
            .files
            .iter()
            .map(|(_, f)| schema_resource(f, Some(base)))
            .collect(),
    )
}

/// `/Schemas/{id}`: one schema resource, if `id` names one (ignoring case).
pub fn schema_resource_by_id(base: &str, id: &str) -> Option<Value> {
    REGISTRY
        .files
        .iter()
        .find(|(urn, _)| urn.eq_ignore_ascii_case(id))
        .map(|(_, f)| schema_resource(f, Some(base)))
}

/// The `/ResourceTypes` resources (RFC 7644 §4, RFC 7643 §6): a JSON array of User and Group, with
/// `meta.location` under `base`.
pub fn resource_types(base: &str) -> Value {
    let base = base.trim_end_matches('/');
    let mut types: Value = serde_json::from_str(RESOURCE_TYPES_JSON)
        .unwrap_or_else(|e| panic!("crates/scim/schemas/resource_types.json: {e}"));
    if let Some(items) = types.as_array_mut() {
        for t in items {
            let id = t["id"].as_str().unwrap_or_default().to_owned();
            t["meta"] = json!({
                "resourceType": "ResourceType",
                "location": format!("{base}/ResourceTypes/{id}"),
            });
        }
    }
    types
}

/// `/ResourceTypes/{id}`.
pub fn resource_type(base: &str, id: &str) -> Option<Value> {
    match resource_types(base) {
        Value::Array(items) => items
            .into_iter()
            .find(|t| t["id"].as_str().is_some_and(|t| t.eq_ignore_ascii_case(id))),
        _ => None,
    }
}

/// `/ServiceProviderConfig` (RFC 7643 §5): PATCH, filter (with `maxResults`), sort and ETags
/// supported; bulk and password change not; bearer tokens.
pub fn service_provider_config(base: &str) -> Value {
    let mut c: Value = serde_json::from_str(SERVICE_PROVIDER_CONFIG_JSON)
        .unwrap_or_else(|e| panic!("crates/scim/schemas/service_provider_config.json: {e}"));
    c["meta"] = json!({
        "resourceType": "ServiceProviderConfig",
        "location": format!("{}/ServiceProviderConfig", base.trim_end_matches('/')),
    });
    c
}

/// The `filter.maxResults` the service provider config announces: a list answers at most this many
/// resources per page.
pub fn max_results() -> u64 {
    // Read once: every list asks, and the config is a constant of the binary.
    static MAX_RESULTS: LazyLock<u64> = LazyLock::new(|| {
        serde_json::from_str::<Value>(SERVICE_PROVIDER_CONFIG_JSON)
            .ok()
            .and_then(|c| c["filter"]["maxResults"].as_u64())
            .unwrap_or(100)
    });
    *MAX_RESULTS
}

#[cfg(test)]
mod tests;
