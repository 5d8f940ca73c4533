//! Schema checks of a parsed filter, for the server to answer `invalidFilter` before it queries.

use super::{AttrPath, CompValue, CompareOp, Filter};
use crate::error::{ScimError, ScimType};
use crate::schema::{self, AttrType, Attribute, ResourceKind};

/// Checks a filter against `kind`'s schemas (RFC 7644 §3.4.2.2):
/// - `gt` / `ge` / `lt` / `le` on a boolean or binary attribute "SHALL cause a failed response
///   (HTTP status code 400) with a "scimType" of "invalidFilter"", and so do `co` / `sw` / `ew`
///   on one (a substring of `true` means nothing);
/// - a complex attribute compared as a whole must have a `value` sub-attribute (`emails co "x"`
///   compares `emails.value`; `name eq "x"` compares nothing);
/// - `attr[…]` needs a multi-valued complex attribute.
///
/// Attributes the schemas do not define pass: they match no resource.
pub fn validate(filter: &Filter, kind: ResourceKind) -> Result<(), ScimError> {
    check(filter, &|p| schema::attribute(kind, p))
}

fn check(
    f: &Filter,
    lookup: &dyn Fn(&AttrPath) -> Option<&'static Attribute>,
) -> Result<(), ScimError> {
    match f {
        Filter::And(a, b) | Filter::Or(a, b) => {
            check(a, lookup)?;
            check(b, lookup)
        }
        Filter::Not(a) => check(a, lookup),
        Filter::Present(_) => Ok(()),
        Filter::Compare(path, op, value) => {
            let Some(mut def) = lookup(path) else {
                return Ok(());
            };
            if def.attr_type == AttrType::Complex {
                def = def.sub_attribute("value").ok_or_else(|| {
                    bad(format!(
                        "{path} is complex with no value sub-attribute: name one of its sub-attributes"
                    ))
                })?;
            }
            let ordering = matches!(
                op,
                CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
            );
            let substring = matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew);
            if matches!(def.attr_type, AttrType::Boolean | AttrType::Binary)
                && (ordering || substring)
            {
                return Err(bad(format!(
                    "{path} is {:?}: {op} does not apply",
                    def.attr_type
                )));
            }
            if def.attr_type == AttrType::Boolean
                && !matches!(value, CompValue::Bool(_) | CompValue::Null)
            {
                return Err(bad(format!(
                    "{path} is a boolean: compare it with true or false"
                )));
            }
            Ok(())
        }
        Filter::ValuePath(path, inner) => {
            let Some(def) = lookup(path) else {
                return Ok(());
            };
            if !(def.multi_valued && def.attr_type == AttrType::Complex) {
                return Err(bad(format!(
                    "{path} is not a multi-valued complex attribute, so it takes no [filter]"
                )));
            }
            check(inner, &|p| relative(def, p))
        }
    }
}

/// Inside `attr[…]` the names are the attribute's sub-attributes.
fn relative(parent: &'static Attribute, p: &AttrPath) -> Option<&'static Attribute> {
    if p.urn.is_some() || p.sub.is_some() {
        return None;
    }
    parent.sub_attribute(&p.name)
}

fn bad(detail: String) -> ScimError {
    ScimError::bad_request(ScimType::InvalidFilter, detail)
}
