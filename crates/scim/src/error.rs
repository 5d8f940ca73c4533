//! RFC 7644 §3.12: errors are a JSON body with the Error schema, the HTTP status as a string and,
//! for 400s, a `scimType` from Table 9.

use std::fmt;

use serde_json::{Value, json};

use crate::schema::ERROR;

/// RFC 7644 §3.12 Table 9, printed as the RFC spells it ("invalidFilter", …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScimType {
    /// The filter syntax was invalid or the filter's attribute and comparison combination is not
    /// supported.
    InvalidFilter,
    /// The filter yields too many results for the server to process.
    TooMany,
    /// One or more of the attribute values are already in use or are reserved.
    Uniqueness,
    /// The attempted modification is not compatible with the target attribute's mutability.
    Mutability,
    /// The request body structure was invalid or did not conform to the request schema.
    InvalidSyntax,
    /// The "path" attribute was invalid or malformed.
    InvalidPath,
    /// The specified "path" did not yield an attribute or attribute value that could be operated on.
    NoTarget,
    /// A required value was missing, or the value specified was not compatible with the operation or
    /// attribute type.
    InvalidValue,
    /// The specified SCIM protocol version is not supported.
    InvalidVers,
    /// The request cannot be completed because of sensitive information in the request URI.
    Sensitive,
}

impl ScimType {
    /// The keyword as RFC 7644 Table 9 spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
        }
    }
}

impl fmt::Display for ScimType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A SCIM error: what the server answers with [`ScimError::body`] and the HTTP status
/// [`ScimError::status`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SCIM {status}{}: {detail}", scim_type.map(|t| format!(" {t}")).unwrap_or_default())]
pub struct ScimError {
    /// The HTTP status code.
    pub status: u16,
    /// RFC 7644 Table 9 keyword; the RFC defines them for 400 only.
    pub scim_type: Option<ScimType>,
    /// A human-readable message naming what is wrong.
    pub detail: String,
}

impl ScimError {
    /// An error with the given status, keyword and detail.
    pub fn new(status: u16, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    /// 400 with a Table 9 keyword: the shape of every protocol error this crate finds.
    pub fn bad_request(scim_type: ScimType, detail: impl Into<String>) -> Self {
        Self::new(400, Some(scim_type), detail)
    }

    /// RFC 7644 §3.12: `{"schemas":[Error URN],"status":"400","scimType":"invalidFilter","detail":…}`.
    /// The status is a string, as in every example of the RFC; `scimType` is left out when there is
    /// none (no nulls in output).
    pub fn body(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            body["scimType"] = Value::String(t.as_str().to_owned());
        }
        body
    }
}

#[cfg(test)]
mod rfc7644_3_12_errors {
    use super::*;

    #[test]
    fn body_has_the_error_schema_the_status_as_a_string_and_the_keyword() {
        let e = ScimError::bad_request(ScimType::InvalidFilter, "unknown operator at 9");
        assert_eq!(
            e.body(),
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": "400",
                "scimType": "invalidFilter",
                "detail": "unknown operator at 9",
            })
        );
    }

    #[test]
    fn body_without_a_keyword_has_no_scim_type_member() {
        let e = ScimError::new(404, None, "Resource 2819c223 not found");
        let body = e.body();
        assert_eq!(body["status"], "404");
        assert!(body.get("scimType").is_none());
    }

    #[test]
    fn every_keyword_is_spelled_as_in_table_9() {
        let all = [
            (ScimType::InvalidFilter, "invalidFilter"),
            (ScimType::TooMany, "tooMany"),
            (ScimType::Uniqueness, "uniqueness"),
            (ScimType::Mutability, "mutability"),
            (ScimType::InvalidSyntax, "invalidSyntax"),
            (ScimType::InvalidPath, "invalidPath"),
            (ScimType::NoTarget, "noTarget"),
            (ScimType::InvalidValue, "invalidValue"),
            (ScimType::InvalidVers, "invalidVers"),
            (ScimType::Sensitive, "sensitive"),
        ];
        for (t, s) in all {
            assert_eq!(t.to_string(), s);
        }
    }
}
