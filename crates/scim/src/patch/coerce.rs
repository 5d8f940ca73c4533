//! Values coerced by the schema (RFC 7643 §2.3), with the leniency clients need.

use serde_json::{Map, Number, Value};

use super::{ScimError, err};
use crate::error::ScimType;
use crate::filter::values_equal;
use crate::schema::{AttrType, Attribute, Mutability};

pub(super) fn invalid(def: &Attribute, what: &str, got: &Value) -> ScimError {
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
pub(super) fn coerce_one(v: &Value, def: &'static Attribute) -> Result<Value, ScimError> {
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
pub(super) fn coerce_many(v: &Value, def: &'static Attribute) -> Result<Vec<Value>, ScimError> {
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

pub(super) fn is_primary(v: &Value) -> bool {
    v.get("primary").and_then(Value::as_bool) == Some(true)
}

/// RFC 7643 §2.4: "The primary attribute value "true" MUST appear no more than once." The value
/// written last wins; the others lose their flag.
pub(super) fn one_primary(values: &mut [Value], winner: Option<usize>) {
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
