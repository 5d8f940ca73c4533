//! The PATCH engine: RFC 7644 §3.5.2.1 (add), §3.5.2.2 (remove), §3.5.2.3 (replace) over a resource
//! in RFC 7643 JSON form, values coerced by the schema (Entra's `"False"`), all-or-nothing.

use serde_json::{Map, Value};

use super::json::{sync_schemas, take_key};
use super::ops::{add, remove, replace};
use super::{PatchOpKind, PatchOperation};
use crate::error::{ScimError, ScimType};
use crate::filter::{AttrPath, Filter};
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

pub(super) fn err(t: ScimType, detail: impl Into<String>) -> ScimError {
    ScimError::bad_request(t, detail)
}

/// Where a path points, resolved against the schema.
pub(super) struct Target<'p> {
    /// `None`: the resource itself; `Some(urn)`: the extension object under that key.
    pub(super) container: Option<&'static str>,
    pub(super) attr: &'static Attribute,
    /// `name.givenName`: the sub-attribute of a path without a filter.
    pub(super) sub: Option<&'static Attribute>,
    /// `emails[type eq "work"]`.
    pub(super) filter: Option<&'p Filter>,
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
