//! The three operations on a resolved target: RFC 7644 §3.5.2.1 add, §3.5.2.2 remove,
//! §3.5.2.3 replace.

use serde_json::{Map, Value};

use super::coerce::{coerce_many, coerce_one, one_primary};
use super::json::{
    drop_empty, ensure_array, entry, find_key, holder, merge, set, take_key, tidy_container,
};
use super::{ScimError, Target, err};
use crate::error::ScimType;
use crate::filter::{CompValue, CompareOp, Filter, matches_value, values_equal};
use crate::path::PatchPath;
use crate::schema::{AttrType, Attribute, Mutability};

pub(super) fn check_immutable(
    def: &Attribute,
    old: Option<&Value>,
    new: &Value,
) -> Result<(), ScimError> {
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
pub(super) fn value_from_filter(
    f: &Filter,
    parent: &'static Attribute,
    out: &mut Map<String, Value>,
) -> bool {
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

pub(super) fn matching(values: &[Value], filter: &Filter, def: &'static Attribute) -> Vec<usize> {
    values
        .iter()
        .enumerate()
        .filter(|(_, v)| matches_value(filter, v, Some(def)))
        .map(|(i, _)| i)
        .collect()
}

/// RFC 7644 §3.5.2.1 add.
pub(super) fn add(
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
                if !matches_value(filter, &made, Some(attr)) {
                    return Err(err(
                        ScimType::InvalidValue,
                        format!(
                            "the value contradicts the filter in {path}, so no value of {} can be made from both",
                            attr.name
                        ),
                    ));
                }
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
pub(super) fn replace(
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
                if !matches_value(filter, &made, Some(attr)) {
                    return Err(err(
                        ScimType::InvalidValue,
                        format!(
                            "the value contradicts the filter in {path}, so no value of {} can be made from both",
                            attr.name
                        ),
                    ));
                }
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
pub(super) fn remove(
    res: &mut Value,
    t: &Target<'_>,
    value: Option<&Value>,
) -> Result<(), ScimError> {
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

pub(super) fn remove_sub(v: &mut Value, sub: &Attribute) -> Result<(), ScimError> {
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
pub(super) fn write_into(
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
pub(super) fn set_sub_everywhere(
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
