//! In-memory filter evaluation (RFC 7644 §3.4.2.2) over a resource in RFC 7643 JSON form: PATCH
//! value paths use it, and the tests use it as the reference the SQL translation must agree with.
//!
//! Rules the RFC leaves to us, chosen to match what the server's SQL does:
//! - a multi-valued attribute matches when any of its values does; a complex value compared
//!   without a sub-attribute is compared through its `value` sub-attribute (`emails co "x"`);
//! - `ne` is "no value equals" (an absent attribute is `ne` everything), `eq null` matches an
//!   absent attribute;
//! - strings compare with case when the schema says `caseExact`, otherwise after Unicode lower-casing;
//! - `dateTime` compares chronologically, numbers numerically; booleans only with `eq` / `ne`;
//! - an attribute the schemas do not define is compared as a case-insensitive string.

use std::cmp::Ordering;

use serde_json::Value;

use super::{AttrPath, CompValue, CompareOp, Filter};
use crate::schema::{self, AttrType, Attribute, ResourceKind};

/// Whether `resource` (a User or Group in RFC 7643 JSON form) matches `filter`.
pub fn matches(filter: &Filter, resource: &Value, kind: ResourceKind) -> bool {
    eval(filter, resource, &Scope::Resource(kind))
}

/// Whether one value of a multi-valued complex attribute (`parent`) matches a value filter (the
/// inside of `emails[…]`), its paths relative to the value.
pub(crate) fn matches_value(
    filter: &Filter,
    element: &Value,
    parent: Option<&'static Attribute>,
) -> bool {
    eval(filter, element, &Scope::Element(parent))
}

enum Scope {
    Resource(ResourceKind),
    /// Inside brackets: the names are the sub-attributes of this (multi-valued complex) attribute.
    Element(Option<&'static Attribute>),
}

/// A member of a JSON object by name, ignoring case (RFC 7643 §2.1), the exact spelling first.
pub(crate) fn member<'v>(obj: &'v Value, key: &str) -> Option<&'v Value> {
    let map = obj.as_object()?;
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn eval(filter: &Filter, ctx: &Value, scope: &Scope) -> bool {
    match filter {
        Filter::And(a, b) => eval(a, ctx, scope) && eval(b, ctx, scope),
        Filter::Or(a, b) => eval(a, ctx, scope) || eval(b, ctx, scope),
        Filter::Not(a) => !eval(a, ctx, scope),
        Filter::Present(path) => {
            let (values, _) = resolve(ctx, path, scope);
            values.iter().any(|v| present(v))
        }
        Filter::Compare(path, op, cv) => {
            let (values, def) = resolve(ctx, path, scope);
            let values: Vec<&Value> = values.into_iter().filter(|v| !v.is_null()).collect();
            match (op, cv) {
                (CompareOp::Eq, CompValue::Null) => values.is_empty(),
                (CompareOp::Ne, CompValue::Null) => !values.is_empty(),
                (CompareOp::Ne, _) => !values.iter().any(|v| compare(v, CompareOp::Eq, cv, def)),
                _ => values.iter().any(|v| compare(v, *op, cv, def)),
            }
        }
        Filter::ValuePath(path, inner) => {
            let (values, def) = resolve_attr(ctx, path, scope);
            values.iter().any(|v| eval(inner, v, &Scope::Element(def)))
        }
    }
}

/// RFC 7644 §3.4.2.2 `pr`: "If the attribute has a non-empty value, or if it contains a non-empty
/// node for complex attributes, there is a match."
fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(present),
        Value::Object(o) => o.values().any(present),
        _ => true,
    }
}

fn flatten<'v>(v: &'v Value, out: &mut Vec<&'v Value>) {
    match v {
        Value::Array(items) => out.extend(items.iter()),
        other => out.push(other),
    }
}

/// The values of the attribute a path names (not descending into its sub-attribute), and its
/// definition.
fn resolve_attr<'v>(
    ctx: &'v Value,
    path: &AttrPath,
    scope: &Scope,
) -> (Vec<&'v Value>, Option<&'static Attribute>) {
    let top = AttrPath {
        urn: path.urn.clone(),
        name: path.name.clone(),
        sub: None,
    };
    let mut out = Vec::new();
    match scope {
        Scope::Resource(kind) => {
            let holder = match &path.urn {
                Some(urn) => match kind.extension(urn) {
                    Some(ext) => member(ctx, ext),
                    None if urn.eq_ignore_ascii_case(kind.core_schema()) => Some(ctx),
                    None => None,
                },
                None => Some(ctx),
            };
            if let Some(v) = holder.and_then(|h| member(h, &path.name)) {
                flatten(v, &mut out);
            }
            (out, schema::attribute(*kind, &top))
        }
        Scope::Element(parent) => {
            if let Some(v) = member(ctx, &path.name) {
                flatten(v, &mut out);
            }
            (out, parent.and_then(|p| static_sub(p, &path.name)))
        }
    }
}

fn static_sub(parent: &'static Attribute, name: &str) -> Option<&'static Attribute> {
    parent.sub_attribute(name)
}

/// The values a path names, descending into the sub-attribute, and their definition. A complex
/// value with no sub-attribute named stands for its `value` sub-attribute.
fn resolve<'v>(
    ctx: &'v Value,
    path: &AttrPath,
    scope: &Scope,
) -> (Vec<&'v Value>, Option<&'static Attribute>) {
    let (values, def) = resolve_attr(ctx, path, scope);
    let sub = match &path.sub {
        Some(s) => Some(s.as_str()),
        None if def.is_some_and(|d| d.attr_type == AttrType::Complex)
            || (def.is_none() && values.iter().any(|v| v.is_object())) =>
        {
            Some("value")
        }
        None => None,
    };
    let Some(sub) = sub else {
        return (values, def);
    };
    let mut out = Vec::new();
    for v in values {
        if let Some(s) = member(v, sub) {
            flatten(s, &mut out);
        }
    }
    (out, def.and_then(|d| static_sub(d, sub)))
}

/// One JSON value against one comparison.
fn compare(v: &Value, op: CompareOp, cv: &CompValue, def: Option<&Attribute>) -> bool {
    let attr_type = def.map(|d| d.attr_type);
    let case_exact = def.is_some_and(|d| d.case_exact);
    match (v, cv) {
        (Value::Bool(a), CompValue::Bool(b)) => match op {
            CompareOp::Eq => a == b,
            CompareOp::Ne => a != b,
            _ => false,
        },
        (Value::Number(a), CompValue::Num(b)) => {
            let (Some(a), Some(b)) = (a.as_f64(), b.as_f64()) else {
                return false;
            };
            let Some(ord) = a.partial_cmp(&b) else {
                return false;
            };
            ordered(op, ord)
        }
        (Value::String(a), CompValue::Str(b)) => {
            if attr_type == Some(AttrType::DateTime)
                && let (Some(x), Some(y)) = (parse_datetime(a), parse_datetime(b))
            {
                return ordered(op, x.cmp(&y));
            }
            if attr_type == Some(AttrType::Boolean) {
                return false;
            }
            if case_exact {
                compare_str(a, b, op)
            } else {
                compare_str(&a.to_lowercase(), &b.to_lowercase(), op)
            }
        }
        _ => false,
    }
}

fn compare_str(a: &str, b: &str, op: CompareOp) -> bool {
    match op {
        CompareOp::Co => a.contains(b),
        CompareOp::Sw => a.starts_with(b),
        CompareOp::Ew => a.ends_with(b),
        _ => ordered(op, a.cmp(b)),
    }
}

fn ordered(op: CompareOp, ord: Ordering) -> bool {
    match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Ne => ord != Ordering::Equal,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
        // Substring operators on numbers and dates do not match.
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

/// Two values of one multi-valued attribute are the same value: equal `value` (and `type`, when
/// either has one) for complex values, equal JSON otherwise; strings compare per `caseExact`.
pub(crate) fn values_equal(a: &Value, b: &Value, def: Option<&'static Attribute>) -> bool {
    if def.is_some_and(|d| d.attr_type == AttrType::Complex) || (a.is_object() && b.is_object()) {
        let sub_eq = |name: &str| {
            let sdef = def.and_then(|d| static_sub(d, name));
            match (member(a, name), member(b, name)) {
                (None | Some(Value::Null), None | Some(Value::Null)) => true,
                (Some(x), Some(y)) => scalar_eq(x, y, sdef),
                _ => false,
            }
        };
        if member(a, "value").is_none() && member(b, "value").is_none() {
            return a == b;
        }
        return sub_eq("value") && sub_eq("type");
    }
    scalar_eq(a, b, def)
}

fn scalar_eq(a: &Value, b: &Value, def: Option<&Attribute>) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => {
            if def.is_some_and(|d| d.case_exact) {
                x == y
            } else {
                x.to_lowercase() == y.to_lowercase()
            }
        }
        _ => a == b,
    }
}

/// An `xsd:dateTime` (RFC 7643 §2.3.5) as a comparable instant: `(seconds since 0000-03-01 UTC,
/// nanoseconds)`. Strings that are not one compare as strings.
pub(crate) fn parse_datetime(s: &str) -> Option<(i64, u32)> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || !matches!(b.get(10), Some(b'T' | b't'))
    {
        return None;
    }
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut k = 19;
    let mut nanos: u32 = 0;
    if b.get(k) == Some(&b'.') {
        k += 1;
        let start = k;
        while b.get(k).is_some_and(u8::is_ascii_digit) {
            k += 1;
        }
        if k == start {
            return None;
        }
        let mut digits: String = s[start..k.min(start + 9)].to_owned();
        while digits.len() < 9 {
            digits.push('0');
        }
        nanos = digits.parse().ok()?;
    }
    let offset = match b.get(k) {
        Some(b'Z' | b'z') if k + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if k + 6 == b.len() && b.get(k + 3) == Some(&b':') => {
            let (h, m) = (num(k + 1, 2)?, num(k + 4, 2)?);
            let off = h * 3600 + m * 60;
            if *sign == b'+' { off } else { -off }
        }
        // No zone: RFC 7643 §2.3.5 requires one; read it as UTC rather than refuse a comparison.
        None => 0,
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm), years counted from March.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe;
    Some((
        days * 86_400 + hour * 3600 + minute * 60 + second - offset,
        nanos,
    ))
}
