//! RFC 7644 §3.4.2.5 `attributes` / `excludedAttributes`, with RFC 7643 §2.2 `returned`, and no
//! nulls in output (RFC 7643 §2.5: null, `[]` and `{}` are unassigned; Entra expects them omitted).

use serde_json::{Map, Value};

use crate::filter::AttrPath;
use crate::schema::{self, Attribute, ResourceKind, Returned};

/// The resource as a response carries it:
/// - `returned: never` attributes (`password`) never appear;
/// - `returned: always` ones (`id`) always do;
/// - with `attributes`, only those named (and the `always` ones) appear; a sub-attribute path
///   (`name.givenName`) keeps only that part of its attribute; an extension URN keeps the whole
///   extension;
/// - otherwise the `default` ones appear, minus `excludedAttributes` (RFC 7644: `attributes` wins
///   when both are given); `returned: request` ones only when named in `attributes`;
/// - nulls, empty arrays and empty objects are dropped everywhere.
///
/// `schemas` is kept as the resource has it.
pub fn project(
    resource: &Value,
    kind: ResourceKind,
    attributes: &[AttrPath],
    excluded: &[AttrPath],
) -> Value {
    let Some(obj) = resource.as_object() else {
        return clean(resource).unwrap_or(Value::Null);
    };
    let excluded: &[AttrPath] = if attributes.is_empty() { excluded } else { &[] };
    let sel = Selection {
        attributes,
        excluded,
    };
    let mut out = Map::new();
    for (key, v) in obj {
        if key == "schemas" {
            if let Some(v) = clean(v) {
                out.insert(key.clone(), v);
            }
            continue;
        }
        if let Some(ext) = kind.extension(key) {
            if sel.excluded.iter().any(|p| names_schema(p, ext)) {
                continue;
            }
            let whole = sel.attributes.iter().any(|p| names_schema(p, ext));
            let Some(inner) = v.as_object() else {
                continue;
            };
            let ext_schema = schema::schema_by_id(ext);
            let mut eo = Map::new();
            for (k2, v2) in inner {
                let def = ext_schema.and_then(|s| s.attribute(k2));
                if let Some(x) = sel.attr(Some(ext), kind, k2, v2, def, whole) {
                    eo.insert(k2.clone(), x);
                }
            }
            if !eo.is_empty() {
                out.insert(key.clone(), Value::Object(eo));
            }
            continue;
        }
        let def = schema::core_attribute(kind, key);
        if let Some(x) = sel.attr(None, kind, key, v, def, false) {
            out.insert(key.clone(), x);
        }
    }
    Value::Object(out)
}

/// [`project`] with neither `attributes` nor `excludedAttributes` (nearly every request an
/// identity provider sends), done in place on a resource the caller owns: the same output
/// without copying every value twice (the property tests hold the two equal).
pub fn project_default(mut resource: Value, kind: ResourceKind) -> Value {
    let Value::Object(obj) = &mut resource else {
        return if clean_in_place(&mut resource) {
            resource
        } else {
            Value::Null
        };
    };
    obj.retain(|key, v| {
        if key == "schemas" {
            return clean_in_place(v);
        }
        if let Some(ext) = kind.extension(key) {
            let Value::Object(inner) = v else {
                return false;
            };
            let ext_schema = schema::schema_by_id(ext);
            inner.retain(|k2, v2| keep_default(v2, ext_schema.and_then(|s| s.attribute(k2))));
            return !inner.is_empty();
        }
        keep_default(v, schema::core_attribute(kind, key))
    });
    resource
}

/// Whether an attribute defined by `def` stays in a default answer, its value reduced in place
/// to the sub-attributes returned by default and cleaned of nulls.
fn keep_default(v: &mut Value, def: Option<&Attribute>) -> bool {
    if !sub_default(def) {
        return false;
    }
    retain_default_subs(v, def);
    clean_in_place(v)
}

/// `filter_subs` with the default selection, in place.
fn retain_default_subs(v: &mut Value, def: Option<&Attribute>) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(|x| retain_default_subs(x, def)),
        Value::Object(o) => o.retain(|k, _| sub_default(def.and_then(|d| d.sub_attribute(k)))),
        _ => {}
    }
}

/// [`clean`] in place: whether anything is left.
fn clean_in_place(v: &mut Value) -> bool {
    match v {
        Value::Null => false,
        Value::Array(items) => {
            items.retain_mut(clean_in_place);
            !items.is_empty()
        }
        Value::Object(o) => {
            o.retain(|_, x| clean_in_place(x));
            !o.is_empty()
        }
        _ => true,
    }
}

/// Whether a path is an extension's URN as a whole (`urn:…:enterprise:2.0:User`), which the
/// grammar reads as the attribute `User` of the schema `urn:…:2.0`.
fn names_schema(p: &AttrPath, ext: &str) -> bool {
    p.sub.is_none()
        && p.urn
            .as_deref()
            .is_some_and(|u| format!("{u}:{}", p.name).eq_ignore_ascii_case(ext))
}

/// Which sub-attributes of a complex value to keep, given the name and definition of each.
type Keep<'a> = Box<dyn Fn(&str, Option<&Attribute>) -> bool + 'a>;

struct Selection<'a> {
    attributes: &'a [AttrPath],
    excluded: &'a [AttrPath],
}

/// Whether path `p` names the attribute `name` held by `container` (the resource or an extension).
fn names(p: &AttrPath, container: Option<&str>, kind: ResourceKind, name: &str) -> bool {
    if !p.name.eq_ignore_ascii_case(name) {
        return false;
    }
    match (container, p.urn.as_deref()) {
        (None, None) => true,
        (None, Some(u)) => u.eq_ignore_ascii_case(kind.core_schema()),
        (Some(ext), Some(u)) => u.eq_ignore_ascii_case(ext),
        (Some(_), None) => false,
    }
}

impl Selection<'_> {
    fn attr(
        &self,
        container: Option<&str>,
        kind: ResourceKind,
        name: &str,
        v: &Value,
        def: Option<&Attribute>,
        whole_container: bool,
    ) -> Option<Value> {
        let returned = def.map(|d| d.returned).unwrap_or_default();
        if returned == Returned::Never {
            return None;
        }
        let named: Vec<&AttrPath> = self
            .attributes
            .iter()
            .filter(|p| names(p, container, kind, name))
            .collect();
        let whole_named = whole_container || named.iter().any(|p| p.sub.is_none());
        let subs_named: Vec<&str> = named.iter().filter_map(|p| p.sub.as_deref()).collect();
        let keep: Keep<'_> = if returned == Returned::Always {
            Box::new(|_, sdef| sub_default(sdef))
        } else if !self.attributes.is_empty() {
            if whole_named {
                Box::new(|_, sdef| sub_default(sdef))
            } else if !subs_named.is_empty() {
                Box::new(move |s, sdef| {
                    sdef.is_some_and(|d| d.returned == Returned::Always)
                        || (subs_named.iter().any(|n| n.eq_ignore_ascii_case(s))
                            && sdef.is_none_or(|d| d.returned != Returned::Never))
                })
            } else {
                return None;
            }
        } else {
            if returned == Returned::Request {
                return None;
            }
            let ex: Vec<&AttrPath> = self
                .excluded
                .iter()
                .filter(|p| names(p, container, kind, name))
                .collect();
            if ex.iter().any(|p| p.sub.is_none()) {
                return None;
            }
            let ex_subs: Vec<String> = ex.iter().filter_map(|p| p.sub.clone()).collect();
            Box::new(move |s, sdef| {
                sdef.is_some_and(|d| d.returned == Returned::Always)
                    || (sub_default(sdef) && !ex_subs.iter().any(|n| n.eq_ignore_ascii_case(s)))
            })
        };
        let filtered = filter_subs(v, def, &*keep);
        clean(&filtered)
    }
}

fn sub_default(sdef: Option<&Attribute>) -> bool {
    sdef.is_none_or(|d| matches!(d.returned, Returned::Default | Returned::Always))
}

/// Keeps the sub-attributes `keep` accepts in a complex value (or each of a multi-valued one's).
fn filter_subs(
    v: &Value,
    def: Option<&Attribute>,
    keep: &dyn Fn(&str, Option<&Attribute>) -> bool,
) -> Value {
    match v {
        Value::Array(items) => {
            Value::Array(items.iter().map(|x| filter_subs(x, def, keep)).collect())
        }
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| keep(k, def.and_then(|d| d.sub_attribute(k))))
                .map(|(k, x)| (k.clone(), x.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Drops nulls, empty arrays and empty objects, recursively; `None` when nothing is left.
pub fn clean(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Array(items) => {
            let items: Vec<Value> = items.iter().filter_map(clean).collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        Value::Object(o) => {
            let o: Map<String, Value> = o
                .iter()
                .filter_map(|(k, x)| clean(x).map(|x| (k.clone(), x)))
                .collect();
            (!o.is_empty()).then_some(Value::Object(o))
        }
        other => Some(other.clone()),
    }
}

#[cfg(test)]
mod rfc7644_3_4_2_5_attributes {
    use serde_json::json;

    use super::*;
    use crate::filter::parse_attr_list;
    use crate::schema::{ENTERPRISE_USER, GROUP, USER};

    fn user() -> Value {
        json!({
            "schemas": [USER, ENTERPRISE_USER],
            "id": "2819c223",
            "externalId": "701984",
            "userName": "bjensen@example.com",
            "name": {"familyName": "Jensen", "givenName": "Barbara", "middleName": null},
            "displayName": "Babs Jensen",
            "nickName": null,
            "password": "t1meMa$heen",
            "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true, "display": null}],
            "phoneNumbers": [],
            "addresses": {},
            "active": true,
            ENTERPRISE_USER: {"department": "Tours", "manager": {"value": "26118915", "displayName": "John Smith"}},
            "meta": {"resourceType": "User", "location": "https://example.com/v2/Users/2819c223"}
        })
    }

    fn proj(attrs: &str, excluded: &str) -> Value {
        project(
            &user(),
            ResourceKind::User,
            &parse_attr_list(attrs).unwrap(),
            &parse_attr_list(excluded).unwrap(),
        )
    }

    #[test]
    fn by_default_everything_but_never_returned_attributes_and_nulls() {
        let out = proj("", "");
        assert!(out.get("password").is_none(), "password is returned never");
        assert!(out.get("nickName").is_none(), "null is omitted");
        assert!(out.get("phoneNumbers").is_none(), "[] is omitted");
        assert!(out.get("addresses").is_none(), "{{}} is omitted");
        assert_eq!(
            out["name"],
            json!({"familyName": "Jensen", "givenName": "Barbara"})
        );
        assert_eq!(
            out["emails"],
            json!([{"value": "bjensen@example.com", "type": "work", "primary": true}])
        );
        assert_eq!(out[ENTERPRISE_USER]["department"], "Tours");
        assert_eq!(out["schemas"], json!([USER, ENTERPRISE_USER]));
        assert_eq!(out["meta"]["resourceType"], "User");
    }

    #[test]
    fn attributes_keeps_only_the_named_ones_and_those_returned_always() {
        let out = proj("userName,name.givenName", "");
        assert_eq!(
            out,
            json!({
                "schemas": [USER, ENTERPRISE_USER],
                "id": "2819c223",
                "userName": "bjensen@example.com",
                "name": {"givenName": "Barbara"}
            })
        );
    }

    #[test]
    fn attributes_reaches_extension_attributes_and_whole_extensions() {
        let out = proj(&format!("{ENTERPRISE_USER}:department"), "");
        assert_eq!(out[ENTERPRISE_USER], json!({"department": "Tours"}));
        let out = proj(ENTERPRISE_USER, "");
        assert_eq!(out[ENTERPRISE_USER]["manager"]["value"], "26118915");
        assert!(out.get("userName").is_none());
    }

    #[test]
    fn excluded_attributes_drops_the_named_ones_but_never_those_returned_always() {
        let out = proj("", "emails,name.familyName,id,meta");
        assert!(out.get("emails").is_none());
        assert_eq!(out["name"], json!({"givenName": "Barbara"}));
        assert_eq!(out["id"], "2819c223", "id is returned always");
        assert!(out.get("meta").is_none());
        let out = proj("", ENTERPRISE_USER);
        assert!(out.get(ENTERPRISE_USER).is_none());
    }

    #[test]
    fn attributes_wins_over_excluded_attributes() {
        let out = proj("displayName", "displayName");
        assert_eq!(out["displayName"], "Babs Jensen");
    }

    #[test]
    fn names_are_case_insensitive() {
        let out = proj("USERNAME,Name.GivenName", "");
        assert_eq!(out["userName"], "bjensen@example.com");
        assert_eq!(out["name"], json!({"givenName": "Barbara"}));
    }

    #[test]
    fn entra_reads_groups_without_members() {
        // `GET /Groups?excludedAttributes=members`.
        let g = json!({"schemas": [GROUP], "id": "g1", "displayName": "Tour Guides", "members": [{"value": "u1"}]});
        let out = project(
            &g,
            ResourceKind::Group,
            &[],
            &parse_attr_list("members").unwrap(),
        );
        assert_eq!(
            out,
            json!({"schemas": [GROUP], "id": "g1", "displayName": "Tour Guides"})
        );
    }
}
