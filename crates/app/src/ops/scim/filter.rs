//! A SCIM filter (the protocol crate's AST) as a condition over the store's columns. An
//! attribute Behalf keeps no column for is refused with 400 `invalidFilter` naming it, rather
//! than filtered in memory: every list is one indexed SQL query.

use behalf_scim::filter::{AttrPath, CompValue, CompareOp, Filter};
use behalf_scim::schema::{ENTERPRISE_USER, GROUP, USER};
use behalf_scim::{ResourceKind, ScimError, ScimType};
use behalf_store::scim::{
    ScimAttr, ScimAttrType, ScimCond, ScimMulti, ScimOp, ScimSort, ScimValue,
};

use super::ScimFailure;

/// What a user filter can name; said in the error when a filter names something else.
const USER_ATTRIBUTES: &str = "id, userName, externalId, displayName, active, emails (value, type, primary), meta.created, meta.lastModified";
const GROUP_ATTRIBUTES: &str =
    "id, displayName, externalId, members (value), meta.created, meta.lastModified";

fn unsupported(path: &AttrPath, kind: ResourceKind) -> ScimFailure {
    ScimFailure::Protocol(ScimError::bad_request(
        ScimType::InvalidFilter,
        format!(
            "filtering on {path} is not supported: {} filters can name {}",
            kind.name(),
            match kind {
                ResourceKind::User => USER_ATTRIBUTES,
                ResourceKind::Group => GROUP_ATTRIBUTES,
            }
        ),
    ))
}

/// Whether a path's URN (if any) is the resource's own core schema.
fn core_urn(path: &AttrPath, kind: ResourceKind) -> bool {
    match &path.urn {
        None => true,
        Some(urn) => match kind {
            ResourceKind::User => urn.eq_ignore_ascii_case(USER),
            ResourceKind::Group => urn.eq_ignore_ascii_case(GROUP),
        },
    }
}

/// The column behind a top-level path (`userName`, `emails.value`, `meta.created`).
fn attr(path: &AttrPath, kind: ResourceKind) -> Result<ScimAttr, ScimFailure> {
    if !core_urn(path, kind) {
        return Err(unsupported(path, kind));
    }
    let name = path.name.as_str();
    let sub = path.sub.as_deref();
    let is = |a: &str| name.eq_ignore_ascii_case(a);
    let sub_is = |a: &str| sub.is_some_and(|s| s.eq_ignore_ascii_case(a));
    let found = match kind {
        ResourceKind::User if sub.is_none() && is("userName") => Some(ScimAttr::UserName),
        ResourceKind::User if sub.is_none() && is("active") => Some(ScimAttr::Active),
        ResourceKind::User if is("emails") => element(sub, ScimMulti::Emails),
        ResourceKind::Group if is("members") => element(sub, ScimMulti::Members),
        _ if sub.is_none() && is("id") => Some(ScimAttr::Id),
        _ if sub.is_none() && is("externalId") => Some(ScimAttr::ExternalId),
        _ if sub.is_none() && is("displayName") => Some(ScimAttr::DisplayName),
        _ if is("meta") && sub_is("created") => Some(ScimAttr::Created),
        _ if is("meta") && sub_is("lastModified") => Some(ScimAttr::LastModified),
        _ => None,
    };
    found.ok_or_else(|| unsupported(path, kind))
}

/// A sub-attribute of a multi-valued attribute (`emails.type`); no sub is its `value`
/// (RFC 7644 §3.4.2.2: a filter on a multi-valued attribute compares its values).
fn element(sub: Option<&str>, multi: ScimMulti) -> Option<ScimAttr> {
    let sub = sub.unwrap_or("value");
    let is = |a: &str| sub.eq_ignore_ascii_case(a);
    match multi {
        ScimMulti::Emails if is("value") => Some(ScimAttr::EmailValue),
        ScimMulti::Emails if is("type") => Some(ScimAttr::EmailType),
        ScimMulti::Emails if is("primary") => Some(ScimAttr::EmailPrimary),
        ScimMulti::Members if is("value") => Some(ScimAttr::MemberValue),
        _ => None,
    }
}

fn op(op: CompareOp) -> ScimOp {
    match op {
        CompareOp::Eq => ScimOp::Eq,
        CompareOp::Ne => ScimOp::Ne,
        CompareOp::Co => ScimOp::Co,
        CompareOp::Sw => ScimOp::Sw,
        CompareOp::Ew => ScimOp::Ew,
        CompareOp::Gt => ScimOp::Gt,
        CompareOp::Ge => ScimOp::Ge,
        CompareOp::Lt => ScimOp::Lt,
        CompareOp::Le => ScimOp::Le,
    }
}

/// The comparison value as the attribute's type, or why it is not one.
fn value(path: &AttrPath, a: ScimAttr, v: &CompValue) -> Result<ScimValue, ScimFailure> {
    let wrong = |what: &str| {
        ScimFailure::Protocol(ScimError::bad_request(
            ScimType::InvalidFilter,
            format!(
                "{path} is {what}: compare it with {}",
                match a.value_type() {
                    ScimAttrType::Bool => "true or false",
                    ScimAttrType::Time => "an RFC 3339 date-time string",
                    _ => "a string",
                }
            ),
        ))
    };
    Ok(match (a.value_type(), v) {
        (_, CompValue::Null) => ScimValue::Null,
        (ScimAttrType::ExactText | ScimAttrType::FoldedText, CompValue::Str(s)) => {
            ScimValue::Text(s.clone())
        }
        (ScimAttrType::Bool, CompValue::Bool(b)) => ScimValue::Bool(*b),
        // Entra ID writes booleans as "True" / "False" elsewhere; accept them here too.
        (ScimAttrType::Bool, CompValue::Str(s)) if s.eq_ignore_ascii_case("true") => {
            ScimValue::Bool(true)
        }
        (ScimAttrType::Bool, CompValue::Str(s)) if s.eq_ignore_ascii_case("false") => {
            ScimValue::Bool(false)
        }
        (ScimAttrType::Time, CompValue::Str(s)) => {
            ScimValue::Time(behalf_domain::parse_rfc3339(s).map_err(|_| wrong("a dateTime"))?)
        }
        (ScimAttrType::Bool, _) => return Err(wrong("a boolean")),
        (ScimAttrType::Time, _) => return Err(wrong("a dateTime")),
        _ => return Err(wrong("a string")),
    })
}

fn compare(
    path: &AttrPath,
    a: ScimAttr,
    o: CompareOp,
    v: &CompValue,
) -> Result<ScimCond, ScimFailure> {
    let o = op(o);
    let refuse = |why: &str| {
        ScimFailure::Protocol(ScimError::bad_request(
            ScimType::InvalidFilter,
            format!("{path}: {why}"),
        ))
    };
    match a.value_type() {
        ScimAttrType::Bool if !matches!(o, ScimOp::Eq | ScimOp::Ne) => {
            return Err(refuse("a boolean takes only eq, ne and pr"));
        }
        ScimAttrType::Time if matches!(o, ScimOp::Co | ScimOp::Sw | ScimOp::Ew) => {
            return Err(refuse("a dateTime takes eq, ne, gt, ge, lt, le and pr"));
        }
        _ => {}
    }
    let v = value(path, a, v)?;
    if v == ScimValue::Null && !matches!(o, ScimOp::Eq | ScimOp::Ne) {
        return Err(refuse("only eq and ne compare with null"));
    }
    Ok(ScimCond::Compare(a, o, v))
}

/// `filter` as a condition over the columns of `kind`.
pub(super) fn to_cond(filter: &Filter, kind: ResourceKind) -> Result<ScimCond, ScimFailure> {
    Ok(match filter {
        Filter::And(a, b) => {
            ScimCond::And(Box::new(to_cond(a, kind)?), Box::new(to_cond(b, kind)?))
        }
        Filter::Or(a, b) => ScimCond::Or(Box::new(to_cond(a, kind)?), Box::new(to_cond(b, kind)?)),
        Filter::Not(a) => ScimCond::Not(Box::new(to_cond(a, kind)?)),
        Filter::Present(path) => ScimCond::Present(attr(path, kind)?),
        Filter::Compare(path, o, v) => compare(path, attr(path, kind)?, *o, v)?,
        Filter::ValuePath(path, inner) => {
            let multi = match kind {
                ResourceKind::User if core_urn(path, kind) && path.is("emails") => {
                    ScimMulti::Emails
                }
                ResourceKind::Group if core_urn(path, kind) && path.is("members") => {
                    ScimMulti::Members
                }
                _ => return Err(unsupported(path, kind)),
            };
            ScimCond::Any(multi, Box::new(element_cond(inner, kind, multi, path)?))
        }
    })
}

/// The inside of `emails[…]`: paths name the element's sub-attributes.
fn element_cond(
    filter: &Filter,
    kind: ResourceKind,
    multi: ScimMulti,
    outer: &AttrPath,
) -> Result<ScimCond, ScimFailure> {
    let sub = |path: &AttrPath| -> Result<ScimAttr, ScimFailure> {
        let full = AttrPath::with_sub(outer.name.clone(), path.name.clone());
        if path.urn.is_some() || path.sub.is_some() {
            return Err(unsupported(&full, kind));
        }
        element(Some(&path.name), multi).ok_or_else(|| unsupported(&full, kind))
    };
    let rec = |f: &Filter| element_cond(f, kind, multi, outer);
    Ok(match filter {
        Filter::And(a, b) => ScimCond::And(Box::new(rec(a)?), Box::new(rec(b)?)),
        Filter::Or(a, b) => ScimCond::Or(Box::new(rec(a)?), Box::new(rec(b)?)),
        Filter::Not(a) => ScimCond::Not(Box::new(rec(a)?)),
        Filter::Present(path) => ScimCond::Present(sub(path)?),
        Filter::Compare(path, o, v) => compare(path, sub(path)?, *o, v)?,
        Filter::ValuePath(path, _) => {
            return Err(ScimFailure::Protocol(ScimError::bad_request(
                ScimType::InvalidFilter,
                format!("{path}: a value path cannot be inside another"),
            )));
        }
    })
}

/// `sortBy` as a column (RFC 7644 §3.4.2.3).
pub(super) fn to_sort(path: &AttrPath, kind: ResourceKind) -> Result<ScimSort, ScimFailure> {
    let sort = match attr(path, kind) {
        Ok(ScimAttr::Id) => Some(ScimSort::Id),
        Ok(ScimAttr::UserName) => Some(ScimSort::UserName),
        Ok(ScimAttr::DisplayName) => Some(ScimSort::DisplayName),
        Ok(ScimAttr::ExternalId) => Some(ScimSort::ExternalId),
        Ok(ScimAttr::Created) => Some(ScimSort::Created),
        Ok(ScimAttr::LastModified) => Some(ScimSort::LastModified),
        _ => None,
    };
    sort.ok_or_else(|| {
        super::invalid_value(format!(
            "sorting by {path} is not supported: sort by id, userName (users), displayName, externalId, meta.created or meta.lastModified"
        ))
    })
}

/// Whether a path names the enterprise extension (for mapping `department`).
pub(super) fn is_enterprise(urn: &str) -> bool {
    urn.eq_ignore_ascii_case(ENTERPRISE_USER)
}
