//! JSON access with SCIM's case-insensitive attribute names (RFC 7643 §2.1), keeping the
//! schema's spelling in what is written.

use serde_json::{Map, Value};

use crate::schema::ResourceKind;

use super::ScimError;

pub(super) fn find_key(map: &Map<String, Value>, name: &str) -> Option<String> {
    if map.contains_key(name) {
        return Some(name.to_owned());
    }
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

pub(super) fn take_key(map: &mut Map<String, Value>, name: &str) -> Option<Value> {
    let k = find_key(map, name)?;
    map.remove(&k)
}

/// The value under `name` (any case), moved to the schema's spelling.
pub(super) fn entry<'m>(map: &'m mut Map<String, Value>, canonical: &str) -> Option<&'m mut Value> {
    if let Some(k) = find_key(map, canonical)
        && k != canonical
        && let Some(v) = map.remove(&k)
    {
        map.insert(canonical.to_owned(), v);
    }
    map.get_mut(canonical)
}

pub(super) fn set(map: &mut Map<String, Value>, canonical: &str, v: Value) {
    take_key(map, canonical);
    map.insert(canonical.to_owned(), v);
}

/// The object holding the target attribute: the resource or its extension object.
pub(super) fn holder<'r>(
    res: &'r mut Value,
    container: Option<&'static str>,
    create: bool,
) -> Option<&'r mut Map<String, Value>> {
    let root = res.as_object_mut()?;
    let Some(ext) = container else {
        return Some(root);
    };
    if entry(root, ext).is_none() {
        if !create {
            return None;
        }
        root.insert(ext.to_owned(), Value::Object(Map::new()));
    }
    let slot = root.get_mut(ext)?;
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}

/// Drops the extension object when it became empty.
pub(super) fn tidy_container(res: &mut Value, container: Option<&'static str>) {
    if let (Some(ext), Some(root)) = (container, res.as_object_mut())
        && root
            .get(ext)
            .is_some_and(|v| v.as_object().is_some_and(Map::is_empty))
    {
        root.remove(ext);
    }
}

/// The resource's `schemas` name exactly the extensions it carries (RFC 7643 §3: "schemas" lists
/// the schemas the resource's attributes come from).
pub(super) fn sync_schemas(res: &mut Value, kind: ResourceKind) {
    let Some(root) = res.as_object_mut() else {
        return;
    };
    for ext in kind.extensions() {
        let present = root
            .get(*ext)
            .is_some_and(|v| v.as_object().is_some_and(|o| !o.is_empty()));
        if let Some(Value::Array(schemas)) = root.get_mut("schemas") {
            let listed = schemas
                .iter()
                .position(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(ext)));
            match (present, listed) {
                (true, None) => schemas.push(Value::String((*ext).to_owned())),
                (false, Some(i)) => {
                    schemas.remove(i);
                }
                _ => {}
            }
        }
    }
}

pub(super) fn merge(into: &mut Value, from: Value) {
    match (into.as_object_mut(), from) {
        (Some(obj), Value::Object(src)) => {
            for (k, v) in src {
                set(obj, &k, v);
            }
        }
        (_, from) => *into = from,
    }
}

/// The attribute's values as an array (made when absent, a lone value wrapped).
pub(super) fn ensure_array<'m>(
    h: &'m mut Map<String, Value>,
    name: &str,
) -> Result<&'m mut Vec<Value>, ScimError> {
    let arr = match take_key(h, name) {
        Some(Value::Array(a)) => a,
        Some(Value::Null) | None => vec![],
        Some(other) => vec![other],
    };
    h.entry(name.to_owned())
        .or_insert(Value::Array(arr))
        .as_array_mut()
        .ok_or_else(|| ScimError::new(500, None, format!("{name} is not an array")))
}

/// RFC 7643 §2.5: an empty array or object is the same as unassigned; keep none in the resource.
pub(super) fn drop_empty(h: &mut Map<String, Value>, name: &str) {
    if let Some(k) = find_key(h, name) {
        let empty = match h.get(&k) {
            Some(Value::Array(a)) => a.is_empty(),
            Some(Value::Object(o)) => o.is_empty(),
            Some(Value::Null) => true,
            _ => false,
        };
        if empty {
            h.remove(&k);
        }
    }
}
