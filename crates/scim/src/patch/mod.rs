//! RFC 7644 §3.5.2 PATCH: the request body ([`PatchRequest`]) and the engine ([`apply`]), with the
//! shapes Microsoft Entra ID's provisioning client sends.

mod apply;
mod coerce;
mod json;
mod ops;

use std::fmt;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

pub use apply::apply;
use apply::{Target, err};

use crate::error::{ScimError, ScimType};
use crate::path::{PatchPath, parse_path};
use crate::schema::PATCH_OP;

/// RFC 7644 §3.5.2 `op`. Read in any case: Entra sends `Add` / `Replace` / `Remove`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchOpKind {
    /// §3.5.2.1
    Add,
    /// §3.5.2.3
    Replace,
    /// §3.5.2.2
    Remove,
}

impl PatchOpKind {
    /// The kind `op` names, ignoring case.
    pub fn from_keyword(op: &str) -> Option<Self> {
        [PatchOpKind::Add, PatchOpKind::Replace, PatchOpKind::Remove]
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(op))
    }

    /// The RFC's spelling (lower case).
    pub fn as_str(self) -> &'static str {
        match self {
            PatchOpKind::Add => "add",
            PatchOpKind::Replace => "replace",
            PatchOpKind::Remove => "remove",
        }
    }
}

impl fmt::Display for PatchOpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One element of `Operations`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    /// `op`.
    pub op: PatchOpKind,
    /// `path`, parsed; `None` when the request has none (the target is the resource itself).
    pub path: Option<PatchPath>,
    /// `value`; `None` when the request has none (or has `null`).
    pub value: Option<Value>,
}

impl PatchOperation {
    /// Reads one operation object; `index` (from 0) only names it in errors.
    pub fn from_value(v: &Value, index: usize) -> Result<Self, ScimError> {
        let n = index + 1;
        let Some(obj) = v.as_object() else {
            return Err(ScimError::bad_request(
                ScimType::InvalidSyntax,
                format!("PATCH operation {n} is not a JSON object"),
            ));
        };
        // Member names are matched ignoring case like attribute names; clients differ ("Op").
        let get = |name: &str| {
            obj.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        };
        let op = match get("op") {
            Some(Value::String(s)) => PatchOpKind::from_keyword(s).ok_or_else(|| {
                ScimError::bad_request(
                    ScimType::InvalidSyntax,
                    format!("PATCH operation {n}: op {s:?} is not add, replace or remove"),
                )
            })?,
            _ => {
                return Err(ScimError::bad_request(
                    ScimType::InvalidSyntax,
                    format!("PATCH operation {n} has no \"op\" string"),
                ));
            }
        };
        let path = match get("path") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(parse_path(s.trim()).map_err(|mut e| {
                e.detail = format!("PATCH operation {n}: {}", e.detail);
                e
            })?),
            Some(_) => {
                return Err(ScimError::bad_request(
                    ScimType::InvalidPath,
                    format!("PATCH operation {n}: \"path\" is not a string"),
                ));
            }
        };
        let value = match get("value") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.clone()),
        };
        Ok(PatchOperation { op, path, value })
    }
}

/// The body of a PATCH request (RFC 7644 §3.5.2).
#[derive(Debug, Clone, PartialEq)]
pub struct PatchRequest {
    /// `Operations`, in order.
    pub operations: Vec<PatchOperation>,
}

impl PatchRequest {
    /// Reads a PATCH body, with the right `scimType` on each error: `invalidSyntax` for the
    /// envelope (the `schemas` must name the PatchOp URN, `Operations` must be a non-empty array),
    /// `invalidPath` for a path. Prefer this to `serde_json::from_value`, whose error has no
    /// `scimType`.
    pub fn from_value(body: &Value) -> Result<Self, ScimError> {
        let Some(obj) = body.as_object() else {
            return Err(ScimError::bad_request(
                ScimType::InvalidSyntax,
                "the PATCH body is not a JSON object",
            ));
        };
        let get = |name: &str| {
            obj.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        };
        let has_urn = match get("schemas") {
            Some(Value::Array(s)) => s
                .iter()
                .any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(PATCH_OP))),
            _ => false,
        };
        if !has_urn {
            return Err(ScimError::bad_request(
                ScimType::InvalidSyntax,
                format!("the PATCH body's \"schemas\" must contain {PATCH_OP}"),
            ));
        }
        let ops = match get("Operations") {
            Some(Value::Array(ops)) if !ops.is_empty() => ops,
            _ => {
                return Err(ScimError::bad_request(
                    ScimType::InvalidSyntax,
                    "the PATCH body has no \"Operations\" array with at least one operation",
                ));
            }
        };
        let operations = ops
            .iter()
            .enumerate()
            .map(|(i, op)| PatchOperation::from_value(op, i))
            .collect::<Result<_, _>>()?;
        Ok(PatchRequest { operations })
    }
}

impl<'de> Deserialize<'de> for PatchRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        PatchRequest::from_value(&v).map_err(|e| serde::de::Error::custom(e.detail))
    }
}

#[cfg(test)]
mod tests;
