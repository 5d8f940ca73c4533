//! SCIM 2.0 (RFC 7644) operations for the holder of a connection's token ([`Scim`]): Users and
//! Groups read, listed (filters become SQL in the store), created, replaced, patched and
//! deleted, each write one event. A token reaches only its own connection's resources.
//!
//! Lifecycle, as the directory import does it for Entra ID (crates/directory): `active: false`
//! or DELETE disables the user and marks them `deprovision_pending`, and (with `[sync]
//! deprovision`) the engine revokes their passkeys at Microsoft and destroys their keys; a user
//! made active again comes back to `active`; a new active user gets a passkey queued when the
//! connection says so (`auto_provision`).

mod filter;
mod groups;
mod users;

use behalf_domain::{EventAction, EventDetail, NewEvent, Outcome, UserId};
use behalf_scim::filter::parse_attr_path;
use behalf_scim::{AttrPath, ResourceKind, ScimError, ScimType};
use behalf_store::StoreError;
use behalf_store::scim::{ScimQuery, ScimSort};
use serde_json::{Map, Value, json};

pub use crate::ops::scim_tokens::Scim;

/// What a SCIM operation answers instead of its result; the server maps each to a status and an
/// RFC 7644 §3.12 error body in one `match`.
#[derive(Debug)]
pub enum ScimFailure {
    /// A protocol error with its status and `scimType` (400 invalidFilter, 409 uniqueness, …).
    Protocol(ScimError),
    /// No such resource in the caller's connection (never created, DELETEd, or another's).
    NotFound { what: &'static str, id: String },
    /// `If-Match` named another version than the resource's (412).
    VersionMismatch,
    /// Behalf's fault; the text is for the log only.
    Internal(String),
}

impl From<ScimError> for ScimFailure {
    fn from(e: ScimError) -> Self {
        ScimFailure::Protocol(e)
    }
}

impl From<StoreError> for ScimFailure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UniqueViolation { .. } => ScimFailure::Protocol(ScimError::new(
                409,
                Some(ScimType::Uniqueness),
                "userName is already taken",
            )),
            StoreError::InvalidInput { field, reason } => {
                let kind = if field == "filter" {
                    ScimType::InvalidFilter
                } else {
                    ScimType::InvalidValue
                };
                ScimFailure::Protocol(ScimError::bad_request(kind, format!("{field}: {reason}")))
            }
            StoreError::NotFound { kind, key } => ScimFailure::NotFound {
                what: kind,
                id: key,
            },
            other => ScimFailure::Internal(other.to_string()),
        }
    }
}

impl From<crate::AppError> for ScimFailure {
    fn from(e: crate::AppError) -> Self {
        ScimFailure::Internal(e.log_text())
    }
}

pub(crate) fn invalid_value(detail: impl Into<String>) -> ScimFailure {
    ScimFailure::Protocol(ScimError::bad_request(ScimType::InvalidValue, detail))
}

/// A resource as answered, with the version its ETag names.
#[derive(Debug, Clone, PartialEq)]
pub struct ScimResource {
    pub body: Value,
    pub version: i64,
}

/// A stored resource as the object its answer is built on (the store writes only objects;
/// anything else counts as empty).
pub(crate) fn stored_object(resource: Value) -> Map<String, Value> {
    match resource {
        Value::Object(o) => o,
        _ => Map::new(),
    }
}

/// `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Projection {
    pub attributes: Vec<AttrPath>,
    pub excluded: Vec<AttrPath>,
}

impl Projection {
    /// From the comma-separated query parameters.
    pub fn parse(attributes: Option<&str>, excluded: Option<&str>) -> Result<Self, ScimFailure> {
        Ok(Projection {
            attributes: attr_list(attributes)?,
            excluded: attr_list(excluded)?,
        })
    }

    /// The answer's form of a full resource of `kind` (RFC 7644 §3.4.2.5); the usual request,
    /// which names neither list, is projected in place.
    pub(crate) fn apply(&self, resource: Value, kind: ResourceKind) -> Value {
        if self.attributes.is_empty() && self.excluded.is_empty() {
            return behalf_scim::project::project_default(resource, kind);
        }
        behalf_scim::project::project(&resource, kind, &self.attributes, &self.excluded)
    }

    /// Whether `name` (a top-level attribute) is left out of the answer.
    pub(crate) fn leaves_out(&self, name: &str) -> bool {
        if !self.attributes.is_empty() {
            return !self
                .attributes
                .iter()
                .any(|a| a.name.eq_ignore_ascii_case(name));
        }
        self.excluded.iter().any(|a| a.is(name))
    }
}

fn attr_list(text: Option<&str>) -> Result<Vec<AttrPath>, ScimFailure> {
    text.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| parse_attr_path(s).map_err(ScimFailure::from))
        .collect()
}

/// A list request's parameters (query string or `POST /.search` body, RFC 7644 §3.4.2-3).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListParams {
    pub filter: Option<String>,
    pub sort_by: Option<String>,
    pub sort_order: Option<String>,
    /// 1-based; absent or below 1 is 1.
    pub start_index: Option<i64>,
    pub count: Option<i64>,
    pub projection: Projection,
}

impl ListParams {
    /// The parameters of a `POST /.search` body (RFC 7644 §3.4.3).
    pub fn from_search_body(body: &Value) -> Result<ListParams, ScimFailure> {
        let obj = body.as_object().ok_or_else(|| {
            ScimFailure::Protocol(ScimError::bad_request(
                ScimType::InvalidSyntax,
                "the search body is not a JSON object",
            ))
        })?;
        let get = |name: &str| {
            obj.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        };
        let text = |name: &str| get(name).and_then(Value::as_str).map(str::to_owned);
        let list = |name: &str| -> Option<String> {
            match get(name) {
                Some(Value::Array(items)) => Some(
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                Some(Value::String(s)) => Some(s.clone()),
                _ => None,
            }
        };
        let int = |name: &str| -> Result<Option<i64>, ScimFailure> {
            match get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_i64()
                    .map(Some)
                    .ok_or_else(|| invalid_value(format!("{name} is not an integer"))),
            }
        };
        Ok(ListParams {
            filter: text("filter"),
            sort_by: text("sortBy"),
            sort_order: text("sortOrder"),
            start_index: int("startIndex")?,
            count: int("count")?,
            projection: Projection::parse(
                list("attributes").as_deref(),
                list("excludedAttributes").as_deref(),
            )?,
        })
    }

    /// The store query: filter as columns, sort, and a page capped at `filter.maxResults`.
    fn query(&self, kind: ResourceKind) -> Result<ScimQuery, ScimFailure> {
        let cond = match self.filter.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(filter::to_cond(&behalf_scim::parse_filter(text)?, kind)?),
        };
        let sort = match self.sort_by.as_deref().map(str::trim) {
            None | Some("") => ScimSort::Id,
            Some(text) => filter::to_sort(&parse_attr_path(text)?, kind)?,
        };
        // RFC 7644 §3.4.2.3: "ascending" is the default; anything else is a client error.
        let descending = match self.sort_order.as_deref().map(str::trim) {
            None | Some("") => false,
            Some(o) if o.eq_ignore_ascii_case("ascending") => false,
            Some(o) if o.eq_ignore_ascii_case("descending") => true,
            Some(o) => {
                return Err(invalid_value(format!(
                    "sortOrder {o:?} is neither ascending nor descending"
                )));
            }
        };
        let max = i64::try_from(behalf_scim::schema::max_results()).unwrap_or(1_000);
        // RFC 7644 §3.4.2.4: startIndex below 1 is 1; a negative count is 0; more than the
        // service provider's maximum is that maximum.
        let start = self.start_index.unwrap_or(1).max(1);
        let count = self.count.unwrap_or(max).clamp(0, max);
        Ok(ScimQuery {
            filter: cond,
            sort,
            descending,
            offset: start - 1,
            limit: count,
        })
    }
}

/// `W/"<version>"`, the ETag of a resource at `version`.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// The version an `If-Match` / `If-None-Match` value names (`W/"3"`, `"3"`), if any.
pub fn parse_etag(text: &str) -> Option<i64> {
    let t = text.trim();
    let t = t.strip_prefix("W/").unwrap_or(t);
    t.trim_matches('"').parse().ok()
}

impl<'a> Scim<'a> {
    /// Where resources are (`https://host/scim/v2`), for `meta.location`.
    fn location(&self, base: &str, kind: ResourceKind, id: &str) -> String {
        format!(
            "{}/{}/{id}",
            base.trim_end_matches('/'),
            match kind {
                ResourceKind::User => "Users",
                ResourceKind::Group => "Groups",
            }
        )
    }

    fn meta(
        &self,
        base: &str,
        kind: ResourceKind,
        id: &str,
        created: i64,
        modified: i64,
        version: i64,
    ) -> Value {
        json!({
            "resourceType": kind.name(),
            "created": behalf_domain::format_millis(created),
            "lastModified": behalf_domain::format_millis(modified),
            "location": self.location(base, kind, id),
            "version": etag(version),
        })
    }

    /// An event of this client's.
    fn event(&self, action: EventAction, detail: EventDetail) -> NewEvent {
        NewEvent::new(self.actor(), action, Outcome::Success)
            .detail(detail.with("connection", self.connection_name()))
    }

    /// Queues a passkey for a user who became (or was created) active, when the connection
    /// provisions automatically; without an Entra ID app there is nothing to queue and that is
    /// said in the log, not to the SCIM client.
    async fn provision_if_automatic(&self, user: UserId) {
        if !self.grant.auto_provision {
            return;
        }
        let engine = match self.app.engine() {
            Ok(engine) => engine,
            Err(e) => {
                tracing::warn!(error = %e.log_text(), "SCIM auto-provisioning is on but nothing can provision");
                return;
            }
        };
        let kind = format!("scim:{}", self.connection_name());
        match engine.job_for_by(&kind, &[user], &self.actor()).await {
            Ok(_) => self.app.notify_jobs_queued(),
            Err(e) => {
                tracing::warn!(error = %e, user = %user, "cannot queue the SCIM user's passkey")
            }
        }
    }

    /// Starts revoking a user's passkeys now, as the next sync round would (with `[sync]
    /// deprovision`); what fails stays pending for that round.
    fn deprovision_soon(&self, user: UserId) {
        if !self.app.config().sync.deprovision || self.app.engine().is_err() {
            return;
        }
        let app = self.app.clone();
        tokio::spawn(async move {
            let caller = crate::Caller::Local {
                actor: "server".into(),
            };
            let Some(provisioner) = app.provisioner(&caller) else {
                return;
            };
            match provisioner
                .deprovision(crate::ops::deprovision::Leavers::Id(user))
                .await
            {
                Ok(done) => {
                    for d in done.iter().filter(|d| !d.failures.is_empty()) {
                        tracing::warn!(upn = %d.upn, failures = %d.failures.join("; "), "deprovisioning failed; retried next round");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e.log_text(), user = %user, "deprovisioning failed; retried next round")
                }
            }
        });
    }
}

/// Reads a boolean as RFC 7643 says, and as Entra ID sends it ("True", "False").
pub(crate) fn boolean(v: &Value, name: &str) -> Result<bool, ScimFailure> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(invalid_value(format!(
            "{name} must be a boolean, not {other}"
        ))),
    }
}

/// The member of `obj` named `name`, ignoring case (RFC 7643 §2.1).
pub(crate) fn get<'v>(obj: &'v serde_json::Map<String, Value>, name: &str) -> Option<&'v Value> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

/// The resource as the store keeps it: no `id`, `meta` (columns) or members, no nulls, and no
/// `password` (writeOnly, never returned: Behalf has no use for it and keeps no secret it does
/// not need).
pub(crate) fn storable(body: &Value, drop: &[&str]) -> Value {
    let mut out = serde_json::Map::new();
    if let Some(obj) = body.as_object() {
        for (k, v) in obj {
            if drop.iter().any(|d| k.eq_ignore_ascii_case(d)) {
                continue;
            }
            if let Some(v) = behalf_scim::project::clean(v) {
                out.insert(k.clone(), v);
            }
        }
    }
    Value::Object(out)
}

/// The id in a request path, which names nothing when it is not one of Behalf's.
pub(crate) fn parse_id<T: std::str::FromStr>(
    what: &'static str,
    id: &str,
) -> Result<T, ScimFailure> {
    id.trim().parse().map_err(|_| ScimFailure::NotFound {
        what,
        id: id.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_are_weak_versions_and_read_back() {
        assert_eq!(etag(3), "W/\"3\"");
        assert_eq!(parse_etag("W/\"3\""), Some(3));
        assert_eq!(parse_etag(" \"12\" "), Some(12));
        assert_eq!(parse_etag("W/\"abc\""), None);
    }

    #[test]
    fn pages_are_one_based_and_capped_at_max_results() {
        let max = behalf_scim::schema::max_results() as i64;
        let q = |start, count| {
            ListParams {
                start_index: start,
                count,
                ..ListParams::default()
            }
            .query(ResourceKind::User)
            .unwrap()
        };
        let page = q(None, None);
        assert_eq!((page.offset, page.limit), (0, max));
        let page = q(Some(0), Some(-5));
        assert_eq!((page.offset, page.limit), (0, 0));
        let page = q(Some(11), Some(max * 10));
        assert_eq!((page.offset, page.limit), (10, max));
    }

    #[test]
    fn search_bodies_carry_the_same_parameters() {
        let p = ListParams::from_search_body(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": "userName eq \"a@b.c\"", "startIndex": 2, "count": 5,
            "attributes": ["userName", "emails"], "sortOrder": "descending"
        }))
        .unwrap();
        assert_eq!(p.filter.as_deref(), Some("userName eq \"a@b.c\""));
        assert_eq!((p.start_index, p.count), (Some(2), Some(5)));
        assert_eq!(p.projection.attributes.len(), 2);
        assert!(ListParams::from_search_body(&json!({"count": "five"})).is_err());
        let bad = ListParams {
            sort_order: Some("sideways".into()),
            ..ListParams::default()
        };
        assert!(bad.query(ResourceKind::User).is_err());
    }

    #[test]
    fn filters_on_attributes_without_a_column_are_refused_naming_them() {
        let params = |f: &str| ListParams {
            filter: Some(f.into()),
            ..ListParams::default()
        };
        let Err(ScimFailure::Protocol(e)) =
            params("name.familyName eq \"Lee\"").query(ResourceKind::User)
        else {
            panic!("accepted")
        };
        assert_eq!(e.scim_type, Some(ScimType::InvalidFilter));
        assert!(e.detail.contains("name.familyName"), "{}", e.detail);
        assert!(
            params("userName eq \"a\"")
                .query(ResourceKind::Group)
                .is_err()
        );
        assert!(
            params("members[value eq \"x\"]")
                .query(ResourceKind::Group)
                .is_ok()
        );
        assert!(
            params("emails[type eq \"work\" and value co \"@x\"]")
                .query(ResourceKind::User)
                .is_ok()
        );
        assert!(params("active gt true").query(ResourceKind::User).is_err());
        assert!(
            params("meta.lastModified gt \"not a date\"")
                .query(ResourceKind::User)
                .is_err()
        );
    }
}
