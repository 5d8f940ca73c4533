//! The PATCH engine: RFC 7644 §3.5.2.1 (add), §3.5.2.2 (remove), §3.5.2.3 (replace) over a resource
//! in RFC 7643 JSON form, values coerced by the schema (Entra's `"False"`), all-or-nothing.

use serde_json::{Map, Number, Value};

use super::{PatchOpKind, PatchOperation};
use crate::error::{ScimError, ScimType};
use crate::filter::{AttrPath, CompValue, CompareOp, Filter, matches_value, values_equal};
use crate::path::{PatchPath, parse_path};
use crate::schema::{self, AttrType, Attribute, Mutability, ResourceKind};

/// Applies `ops` in order to `resource`. RFC 7644 §3.5.2: "Each operation against an attribute MUST
/// be compatible with the attribute's mutability and schema"; "If an error occurs, the whole PATCH
/// fails and the resource is left unchanged" (§3.5.2: "the service provider SHALL NOT apply any
/// of the requested modifications" on failure), so the work is done on a copy.
///
/// The server sets `id` and `meta` afterwards; this never touches them (they are readOnly).
pub fn apply(
    resource: &mut Value,
    ops: &[PatchOperation],
    kind: ResourceKind,
) -> Result<(), ScimError> {
    if !resource.is_object() {
        return Err(ScimError::new(
            500,
            None,
            "the stored resource is not a JSON object",
        ));
    }
    let mut work = resource.clone();
    for (i, op) in ops.iter().enumerate() {
        let ctx = Ctx { kind, op };
        apply_one(&mut work, &ctx).map_err(|mut e| {
            e.detail = format!(
                "PATCH operation {} ({}): {}",
                i + 1,
                ctx.describe(),
                e.detail
            );
            e
        })?;
    }
    sync_schemas(&mut work, kind);
    *resource = work;
    Ok(())
}

struct Ctx<'a> {
    kind: ResourceKind,
    op: &'a PatchOperation,
}

impl Ctx<'_> {
    fn describe(&self) -> String {
        match &self.op.path {
            Some(p) => format!("{} {p}", self.op.op),
            None => format!("{} without a path", self.op.op),
        }
    }
}

fn err(t: ScimType, detail: impl Into<String>) -> ScimError {
    ScimError::bad_request(t, detail)
}

/// Where a path points, resolved against the schema.
struct Target<'p> {
    /// `None`: the resource itself; `Some(urn)`: the extension object under that key.
    container: Option<&'static str>,
    attr: &'static Attribute,
    /// `name.givenName`: the sub-attribute of a path without a filter.
    sub: Option<&'static Attribute>,
    /// `emails[type eq "work"]`.
    filter: Option<&'p Filter>,
}

fn apply_one(res: &mut Value, ctx: &Ctx<'_>) -> Result<(), ScimError> {
    let op = ctx.op;
    let value = op.value.as_ref().filter(|v| !v.is_null());
    let Some(path) = &op.path else {
        return match op.op {
            // RFC 7644 §3.5.2.2: "If "path" is unspecified, the operation fails with HTTP status
            // code 400 and a "scimType" error code of "noTarget"."
            PatchOpKind::Remove => Err(err(
                ScimType::NoTarget,
                "remove needs a path naming what to remove",
            )),
            _ => match value {
                Some(v) => apply_object(res, ctx, op.op, v),
                None => Err(err(
                    ScimType::InvalidValue,
                    "add and replace without a path need a value object of attributes",
                )),
            },
        };
    };
    // A path that is an extension's URN stands for the extension object as a whole.
    if path.filter.is_none()
        && path.attr.sub.is_none()
        && let Some(urn) = &path.attr.urn
        && let Some(ext) = ctx.kind.extension(&format!("{urn}:{}", path.attr.name))
    {
        return match op.op {
            PatchOpKind::Remove => {
                if let Some(obj) = res.as_object_mut() {
                    take_key(obj, ext);
                }
                Ok(())
            }
            _ => match value {
                Some(v) => {
                    let mut wrapped = Map::new();
                    wrapped.insert(ext.to_owned(), v.clone());
                    apply_object(res, ctx, op.op, &Value::Object(wrapped))
                }
                None => Err(err(
                    ScimType::InvalidValue,
                    format!("{ext} needs a value object"),
                )),
            },
        };
    }
    let target = resolve(path, ctx.kind)?;
    match op.op {
        PatchOpKind::Add => add(res, &target, path, value),
        PatchOpKind::Replace => replace(res, &target, path, value),
        PatchOpKind::Remove => remove(res, &target, value),
    }
}

/// RFC 7644 §3.5.2.1 / §3.5.2.3 with no path: "the target location is assumed to be the resource
/// itself", and the value is an object of attributes. Entra sends several attributes in one such
/// replace, its keys sometimes paths themselves (`name.givenName`, `emails[type eq "work"].value`)
/// and extension attributes either nested under the URN or as `urn:…:User:department` keys.
fn apply_object(
    res: &mut Value,
    ctx: &Ctx<'_>,
    op: PatchOpKind,
    v: &Value,
) -> Result<(), ScimError> {
    let Some(obj) = v.as_object() else {
        return Err(err(
            ScimType::InvalidValue,
            "without a path the value must be a JSON object of attributes",
        ));
    };
    for (key, val) in obj {
        if key.eq_ignore_ascii_case("schemas") {
            // The resource's schemas follow its extension attributes (see `sync_schemas`).
            continue;
        }
        if let Some(ext) = ctx.kind.extension(key) {
            let Some(inner) = val.as_object() else {
                if val.is_null() {
                    continue;
                }
                return Err(err(
                    ScimType::InvalidValue,
                    format!("{ext} must be an object of its attributes"),
                ));
            };
            for (k2, v2) in inner {
                let path = parse_path(&format!("{ext}:{k2}")).map_err(|e| {
                    err(
                        ScimType::InvalidPath,
                        format!("{ext} member {k2:?}: {}", e.detail),
                    )
                })?;
                one_path(res, ctx.kind, op, &path, v2)?;
            }
            continue;
        }
        let path = parse_path(key).map_err(|e| {
            err(
                ScimType::InvalidPath,
                format!("value member {key:?}: {}", e.detail),
            )
        })?;
        one_path(res, ctx.kind, op, &path, val)?;
    }
    Ok(())
}

fn one_path(
    res: &mut Value,
    kind: ResourceKind,
    op: PatchOpKind,
    path: &PatchPath,
    v: &Value,
) -> Result<(), ScimError> {
    let target = resolve(path, kind)?;
    let v = Some(v).filter(|v| !v.is_null());
    match op {
        PatchOpKind::Add => add(res, &target, path, v),
        _ => replace(res, &target, path, v),
    }
}

fn resolve(path: &PatchPath, kind: ResourceKind) -> Result<Target<'_>, ScimError> {
    let a = &path.attr;
    let container = match &a.urn {
        None => None,
        Some(urn) if urn.eq_ignore_ascii_case(kind.core_schema()) => None,
        Some(urn) => Some(kind.extension(urn).ok_or_else(|| {
            err(
                ScimType::InvalidPath,
                format!("{urn} is not a schema of the {} resource", kind.name()),
            )
        })?),
    };
    let top = AttrPath {
        urn: a.urn.clone(),
        name: a.name.clone(),
        sub: None,
    };
    let attr = schema::top_attribute(kind, &top).ok_or_else(|| {
        err(
            ScimType::InvalidPath,
            format!("the {} schema has no attribute {top}", kind.name()),
        )
    })?;
    let sub_name = a.sub.as_deref().or(path.sub.as_deref());
    let sub = match sub_name {
        None => None,
        Some(s) => Some(attr.sub_attribute(s).ok_or_else(|| {
            err(
                ScimType::InvalidPath,
                format!("{} has no sub-attribute {s}", attr.name),
            )
        })?),
    };
    if path.filter.is_some() && !(attr.multi_valued && attr.attr_type == AttrType::Complex) {
        return Err(err(
            ScimType::InvalidPath,
            format!(
                "{} is not a multi-valued complex attribute, so it takes no [filter]",
                attr.name
            ),
        ));
    }
    // RFC 7643 §2.2: readOnly attributes "SHALL NOT be modified".
    for def in [Some(attr), sub].into_iter().flatten() {
        if def.mutability == Mutability::ReadOnly {
            return Err(err(
                ScimType::Mutability,
                format!("{} is readOnly", def.name),
            ));
        }
    }
    Ok(Target {
        container,
        attr,
        sub,
        filter: path.filter.as_ref(),
    })
}

// ---------------------------------------------------------------------------------------------
// JSON access with SCIM's case-insensitive names.

fn find_key(map: &Map<String, Value>, name: &str) -> Option<String> {
    if map.contains_key(name) {
        return Some(name.to_owned());
    }
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

fn take_key(map: &mut Map<String, Value>, name: &str) -> Option<Value> {
    let k = find_key(map, name)?;
    map.remove(&k)
}

/// The value under `name` (any case), moved to the schema's spelling.
fn entry<'m>(map: &'m mut Map<String, Value>, canonical: &str) -> Option<&'m mut Value> {
    if let Some(k) = find_key(map, canonical)
        && k != canonical
        && let Some(v) = map.remove(&k)
    {
        map.insert(canonical.to_owned(), v);
    }
    map.get_mut(canonical)
}

fn set(map: &mut Map<String, Value>, canonical: &str, v: Value) {
    take_key(map, canonical);
    map.insert(canonical.to_owned(), v);
}

/// The object holding the target attribute: the resource or its extension object.
fn holder<'r>(
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
fn tidy_container(res: &mut Value, container: Option<&'static str>) {
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
fn sync_schemas(res: &mut Value, kind: ResourceKind) {
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

// ---------------------------------------------------------------------------------------------
// Values, coerced by the schema.

fn invalid(def: &Attribute, what: &str, got: &Value) -> ScimError {
    let shown = match got {
        Value::String(s) => format!("the string {s:?}"),
        Value::Number(n) => format!("the number {n}"),
        Value::Bool(b) => format!("{b}"),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
        Value::Null => "null".to_owned(),
    };
    err(
        ScimType::InvalidValue,
        format!("{} must be {what}, not {shown}", def.name),
    )
}

/// One value of `def`'s type (RFC 7643 §2.3). Lenient where clients are known to differ:
/// booleans as `"True"` / `"False"` strings (Entra without `aadOptscim062020`), numbers as strings,
/// a complex attribute with a `value` sub-attribute given as that string (Entra's `manager`).
/// Nulls inside objects are dropped (RFC 7643 §2.5: null is unassigned), and so are readOnly
/// sub-attributes, which the service provider sets (`members.display`).
fn coerce_one(v: &Value, def: &'static Attribute) -> Result<Value, ScimError> {
    match def.attr_type {
        AttrType::Boolean => match v {
            Value::Bool(_) => Ok(v.clone()),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            _ => Err(invalid(def, "a boolean", v)),
        },
        AttrType::Integer => match v {
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(v.clone()),
            Value::String(s) => s
                .trim()
                .parse::<i64>()
                .map(|n| Value::Number(n.into()))
                .map_err(|_| invalid(def, "an integer", v)),
            _ => Err(invalid(def, "an integer", v)),
        },
        AttrType::Decimal => match v {
            Value::Number(_) => Ok(v.clone()),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| invalid(def, "a decimal number", v)),
            _ => Err(invalid(def, "a decimal number", v)),
        },
        AttrType::DateTime => match v {
            Value::String(s) if crate::filter::parse_datetime(s).is_some() => Ok(v.clone()),
            _ => Err(invalid(
                def,
                "an xsd:dateTime such as \"2026-12-01T12:00:00Z\"",
                v,
            )),
        },
        AttrType::String | AttrType::Reference | AttrType::Binary => match v {
            Value::String(_) => Ok(v.clone()),
            Value::Number(n) => Ok(Value::String(n.to_string())),
            Value::Bool(b) => Ok(Value::String(b.to_string())),
            _ => Err(invalid(def, "a string", v)),
        },
        AttrType::Complex => match v {
            Value::Object(obj) => {
                let mut out = Map::new();
                for (k, x) in obj {
                    if x.is_null() {
                        continue;
                    }
                    let sub = def.sub_attribute(k).ok_or_else(|| {
                        err(
                            ScimType::InvalidValue,
                            format!("{} has no sub-attribute {k}", def.name),
                        )
                    })?;
                    if sub.mutability == Mutability::ReadOnly {
                        continue;
                    }
                    let x = if sub.multi_valued {
                        Value::Array(coerce_many(x, sub)?)
                    } else {
                        coerce_one(x, sub)?
                    };
                    out.insert(sub.name.clone(), x);
                }
                Ok(Value::Object(out))
            }
            Value::String(_) | Value::Number(_) | Value::Bool(_)
                if def.sub_attribute("value").is_some() =>
            {
                let value_def = def
                    .sub_attribute("value")
                    .ok_or_else(|| invalid(def, "an object", v))?;
                let mut out = Map::new();
                out.insert("value".to_owned(), coerce_one(v, value_def)?);
                Ok(Value::Object(out))
            }
            _ => Err(invalid(def, "an object of sub-attributes", v)),
        },
    }
}

/// The values of a multi-valued attribute: an array, or one value standing for a one-element array.
fn coerce_many(v: &Value, def: &'static Attribute) -> Result<Vec<Value>, ScimError> {
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().filter(|x| !x.is_null()).collect(),
        Value::Null => vec![],
        other => vec![other],
    };
    let mut out: Vec<Value> = Vec::with_capacity(items.len());
    for x in items {
        let x = coerce_one(x, def)?;
        if x.as_object().is_some_and(Map::is_empty) {
            continue;
        }
        if !out.iter().any(|y| values_equal(y, &x, Some(def))) {
            out.push(x);
        }
    }
    Ok(out)
}

fn is_primary(v: &Value) -> bool {
    v.get("primary").and_then(Value::as_bool) == Some(true)
}

/// RFC 7643 §2.4: "The primary attribute value "true" MUST appear no more than once." The value
/// written last wins; the others lose their flag.
fn one_primary(values: &mut [Value], winner: Option<usize>) {
    let winner = winner.or_else(|| values.iter().rposition(is_primary));
    if let Some(w) = winner.filter(|w| values.get(*w).is_some_and(is_primary)) {
        for (i, v) in values.iter_mut().enumerate() {
            if i != w
                && is_primary(v)
                && let Some(o) = v.as_object_mut()
            {
                o.insert("primary".to_owned(), Value::Bool(false));
            }
        }
    }
}

fn merge(into: &mut Value, from: Value) {
    match (into.as_object_mut(), from) {
        (Some(obj), Value::Object(src)) => {
            for (k, v) in src {
                set(obj, &k, v);
            }
        }
        (_, from) => *into = from,
    }
}

fn check_immutable(def: &Attribute, old: Option<&Value>, new: &Value) -> Result<(), ScimError> {
    // RFC 7643 §2.2 immutable: "MAY be defined at resource creation ... SHALL NOT be updated".
    if def.mutability == Mutability::Immutable
        && let Some(old) = old.filter(|o| !o.is_null())
        && old != new
    {
        return Err(err(
            ScimType::Mutability,
            format!("{} is immutable", def.name),
        ));
    }
    Ok(())
}

/// The value object a filter of equalities describes: `type eq "work"` → `{"type": "work"}`, so
/// that adding `emails[type eq "work"].value` to a user with no work email makes one.
fn value_from_filter(f: &Filter, parent: &'static Attribute, out: &mut Map<String, Value>) -> bool {
    match f {
        Filter::And(a, b) => value_from_filter(a, parent, out) && value_from_filter(b, parent, out),
        Filter::Compare(p, CompareOp::Eq, cv) if p.urn.is_none() && p.sub.is_none() => {
            let Some(def) = parent.sub_attribute(&p.name) else {
                return false;
            };
            let v = match cv {
                CompValue::Str(s) => Value::String(s.clone()),
                CompValue::Num(n) => Value::Number(n.clone()),
                CompValue::Bool(b) => Value::Bool(*b),
                CompValue::Null => return false,
            };
            out.insert(def.name.clone(), v);
            true
        }
        _ => false,
    }
}

fn matching(values: &[Value], filter: &Filter, def: &'static Attribute) -> Vec<usize> {
    values
        .iter()
        .enumerate()
        .filter(|(_, v)| matches_value(filter, v, Some(def)))
        .map(|(i, _)| i)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The three operations.

/// RFC 7644 §3.5.2.1 add.
fn add(
    res: &mut Value,
    t: &Target<'_>,
    path: &PatchPath,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let Some(value) = value else {
        return Err(err(ScimType::InvalidValue, "add needs a value"));
    };
    let attr = t.attr;
    let h = holder(res, t.container, true)
        .ok_or_else(|| ScimError::new(500, None, "the stored resource is not a JSON object"))?;
    match (t.filter, t.sub) {
        (None, None) => {
            if attr.multi_valued {
                // "If the target location specifies a multi-valued attribute, a new value is added
                // to the attribute" (values already there are not added twice).
                let new = coerce_many(value, attr)?;
                let slot = entry(h, &attr.name);
                let mut values = match slot {
                    Some(Value::Array(a)) => std::mem::take(a),
                    Some(v) if !v.is_null() => vec![v.take()],
                    _ => vec![],
                };
                let mut last_new = None;
                for v in new {
                    match values.iter().position(|x| values_equal(x, &v, Some(attr))) {
                        Some(i) => {
                            merge(&mut values[i], v);
                            last_new = Some(i);
                        }
                        None => {
                            values.push(v);
                            last_new = Some(values.len() - 1);
                        }
                    }
                }
                one_primary(&mut values, last_new);
                if values.is_empty() {
                    take_key(h, &attr.name);
                } else {
                    set(h, &attr.name, Value::Array(values));
                }
            } else {
                let v = coerce_one(value, attr)?;
                check_immutable(attr, entry(h, &attr.name).map(|v| &*v), &v)?;
                match entry(h, &attr.name) {
                    // "If the target location specifies a complex attribute, a set of
                    // sub-attributes SHALL be specified in the "value" parameter" and merged.
                    Some(old) if attr.attr_type == AttrType::Complex && old.is_object() => {
                        merge(old, v)
                    }
                    _ => set(h, &attr.name, v),
                }
                drop_empty(h, &attr.name);
            }
        }
        (None, Some(sub)) => set_sub_everywhere(h, attr, sub, value, true)?,
        (Some(filter), sub) => {
            let values = ensure_array(h, &attr.name)?;
            let hits = matching(values, filter, attr);
            if hits.is_empty() {
                // Nothing matches: make the value the filter describes (Entra adds
                // `emails[type eq "work"].value` to a user with no work email).
                let mut made = Map::new();
                if !value_from_filter(filter, attr, &mut made) {
                    return Err(err(
                        ScimType::NoTarget,
                        format!("no value of {} matches the filter in {path}", attr.name),
                    ));
                }
                let mut made = Value::Object(made);
                write_into(&mut made, sub, value, attr)?;
                values.push(made);
                let last = values.len() - 1;
                one_primary(values, Some(last));
            } else {
                for &i in &hits {
                    write_into(&mut values[i], sub, value, attr)?;
                }
                one_primary(values, hits.last().copied());
            }
        }
    }
    tidy_container(res, t.container);
    Ok(())
}

/// RFC 7644 §3.5.2.3 replace.
fn replace(
    res: &mut Value,
    t: &Target<'_>,
    path: &PatchPath,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let attr = t.attr;
    let Some(value) = value else {
        // RFC 7643 §2.5: null is unassigned; replacing with null removes.
        return remove(res, t, None).or_else(|e| {
            if e.scim_type == Some(ScimType::NoTarget) {
                Ok(())
            } else {
                Err(e)
            }
        });
    };
    let h = holder(res, t.container, true)
        .ok_or_else(|| ScimError::new(500, None, "the stored resource is not a JSON object"))?;
    match (t.filter, t.sub) {
        (None, None) => {
            if attr.multi_valued {
                // "If the target location is a multi-valued attribute and no filter is specified,
                // the attribute and all values are replaced."
                let mut values = coerce_many(value, attr)?;
                one_primary(&mut values, None);
                if values.is_empty() {
                    take_key(h, &attr.name);
                } else {
                    set(h, &attr.name, Value::Array(values));
                }
            } else {
                let v = coerce_one(value, attr)?;
                check_immutable(attr, entry(h, &attr.name).map(|v| &*v), &v)?;
                match entry(h, &attr.name) {
                    // "If the target location specifies a complex attribute, a set of
                    // sub-attributes SHALL be specified in the "value" parameter, which replaces
                    // any existing values or adds where an attribute did not previously exist.
                    // Sub-attributes that are not specified in the "value" parameter are left
                    // unchanged."
                    Some(old) if attr.attr_type == AttrType::Complex && old.is_object() => {
                        merge(old, v)
                    }
                    _ => set(h, &attr.name, v),
                }
                drop_empty(h, &attr.name);
            }
        }
        (None, Some(sub)) => set_sub_everywhere(h, attr, sub, value, false)?,
        (Some(filter), sub) => {
            let had_any = entry(h, &attr.name)
                .is_some_and(|v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()));
            let values = ensure_array(h, &attr.name)?;
            let hits = matching(values, filter, attr);
            if hits.is_empty() {
                if had_any {
                    // "If the target location is a multi-valued attribute for which a value
                    // selection filter ("valuePath") has been supplied and no record match was
                    // made, the service provider SHALL indicate failure by returning HTTP status
                    // code 400 and a "scimType" error code of "noTarget"."
                    return Err(err(
                        ScimType::NoTarget,
                        format!("no value of {} matches the filter in {path}", attr.name),
                    ));
                }
                // "If the target location path specifies an attribute that does not exist, the
                // service provider SHALL treat the operation as an "add"."
                let mut made = Map::new();
                if !value_from_filter(filter, attr, &mut made) {
                    return Err(err(
                        ScimType::NoTarget,
                        format!(
                            "{} has no values for the filter in {path} to match",
                            attr.name
                        ),
                    ));
                }
                let mut made = Value::Object(made);
                write_into(&mut made, sub, value, attr)?;
                values.push(made);
            } else {
                for &i in &hits {
                    write_into(&mut values[i], sub, value, attr)?;
                }
                one_primary(values, hits.last().copied());
            }
        }
    }
    tidy_container(res, t.container);
    Ok(())
}

/// RFC 7644 §3.5.2.2 remove.
fn remove(res: &mut Value, t: &Target<'_>, value: Option<&Value>) -> Result<(), ScimError> {
    let attr = t.attr;
    let Some(h) = holder(res, t.container, false) else {
        return Ok(());
    };
    match (t.filter, t.sub) {
        (None, None) => {
            if let (true, Some(value)) = (attr.multi_valued, value) {
                // Entra without `aadOptscim062020` removes members by value:
                // `{"op":"Remove","path":"members","value":[{"value":"…"}]}`.
                let gone = coerce_many(value, attr)?;
                // Removing a whole value (a member) is allowed even though its sub-attributes are
                // immutable: the value is not updated, it goes.
                if let Some(Value::Array(values)) = entry(h, &attr.name) {
                    values.retain(|v| !gone.iter().any(|g| values_equal(v, g, Some(attr))));
                }
                drop_empty(h, &attr.name);
            } else {
                if attr.required {
                    return Err(err(
                        ScimType::InvalidValue,
                        format!("{} is required and cannot be removed", attr.name),
                    ));
                }
                if attr.mutability == Mutability::Immutable && entry(h, &attr.name).is_some() {
                    return Err(err(
                        ScimType::Mutability,
                        format!("{} is immutable", attr.name),
                    ));
                }
                // "If the target location is a single-value attribute, the attribute and its
                // associated value is removed"; a multi-valued one loses all its values.
                take_key(h, &attr.name);
            }
        }
        (None, Some(sub)) => {
            if sub.required {
                return Err(err(
                    ScimType::InvalidValue,
                    format!(
                        "{}.{} is required and cannot be removed",
                        attr.name, sub.name
                    ),
                ));
            }
            match entry(h, &attr.name) {
                Some(Value::Array(values)) => {
                    for v in values.iter_mut() {
                        remove_sub(v, sub)?;
                    }
                    values.retain(|v| v.as_object().is_none_or(|o| !o.is_empty()));
                }
                Some(v) => remove_sub(v, sub)?,
                None => {}
            }
            drop_empty(h, &attr.name);
        }
        (Some(filter), sub) => {
            let Some(Value::Array(values)) = entry(h, &attr.name) else {
                return Ok(());
            };
            let hits = matching(values, filter, attr);
            match sub {
                // "If the target location is a multi-valued attribute and a complex filter is
                // specified comparing a "value", the values matched by the filter are removed."
                // A filter that matches nothing removes nothing: removing a member twice is not
                // an error (Entra retries).
                None => {
                    let mut k = 0;
                    values.retain(|_| {
                        let keep = !hits.contains(&k);
                        k += 1;
                        keep
                    });
                }
                Some(sub) => {
                    if sub.required {
                        return Err(err(
                            ScimType::InvalidValue,
                            format!(
                                "{}.{} is required and cannot be removed",
                                attr.name, sub.name
                            ),
                        ));
                    }
                    for &i in &hits {
                        remove_sub(&mut values[i], sub)?;
                    }
                    values.retain(|v| v.as_object().is_none_or(|o| !o.is_empty()));
                }
            }
            drop_empty(h, &attr.name);
        }
    }
    tidy_container(res, t.container);
    Ok(())
}

fn remove_sub(v: &mut Value, sub: &Attribute) -> Result<(), ScimError> {
    if let Some(o) = v.as_object_mut() {
        if sub.mutability == Mutability::Immutable && find_key(o, &sub.name).is_some() {
            return Err(err(
                ScimType::Mutability,
                format!("{} is immutable", sub.name),
            ));
        }
        take_key(o, &sub.name);
    }
    Ok(())
}

/// Writes `value` into one value of a multi-valued complex attribute: the sub-attribute after `]`,
/// or the whole value object merged in.
fn write_into(
    elem: &mut Value,
    sub: Option<&'static Attribute>,
    value: &Value,
    attr: &'static Attribute,
) -> Result<(), ScimError> {
    match sub {
        Some(sub) => {
            let v = coerce_one(value, sub)?;
            let obj = elem.as_object_mut().ok_or_else(|| {
                err(
                    ScimType::InvalidValue,
                    format!("a value of {} is not an object", attr.name),
                )
            })?;
            check_immutable(sub, obj.get(&sub.name), &v)?;
            set(obj, &sub.name, v);
        }
        None => {
            let v = coerce_one(value, attr)?;
            if let (Some(old), Some(new)) = (elem.as_object(), v.as_object()) {
                for (k, nv) in new {
                    if let Some(sdef) = attr.sub_attribute(k) {
                        check_immutable(sdef, old.get(k), nv)?;
                    }
                }
            }
            merge(elem, v);
        }
    }
    Ok(())
}

/// `name.givenName` (a single complex attribute) or `emails.value` with no filter (every value
/// of a multi-valued one; one new value when there is none).
fn set_sub_everywhere(
    h: &mut Map<String, Value>,
    attr: &'static Attribute,
    sub: &'static Attribute,
    value: &Value,
    _add: bool,
) -> Result<(), ScimError> {
    let v = coerce_one(value, sub)?;
    if attr.multi_valued {
        let values = ensure_array(h, &attr.name)?;
        if values.is_empty() {
            let mut o = Map::new();
            o.insert(sub.name.clone(), v);
            values.push(Value::Object(o));
        } else {
            for e in values.iter_mut() {
                if let Some(o) = e.as_object_mut() {
                    check_immutable(sub, o.get(&sub.name), &v)?;
                    set(o, &sub.name, v.clone());
                }
            }
        }
    } else {
        let slot = match entry(h, &attr.name) {
            Some(s) if s.is_object() => s,
            _ => {
                set(h, &attr.name, Value::Object(Map::new()));
                entry(h, &attr.name)
                    .ok_or_else(|| ScimError::new(500, None, "lost an attribute"))?
            }
        };
        if let Some(o) = slot.as_object_mut() {
            check_immutable(sub, o.get(&sub.name), &v)?;
            set(o, &sub.name, v);
        }
    }
    Ok(())
}

/// The attribute's values as an array (made when absent, a lone value wrapped).
fn ensure_array<'m>(
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
fn drop_empty(h: &mut Map<String, Value>, name: &str) {
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
