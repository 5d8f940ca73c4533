//! SCIM 2.0 protocol (RFC 7643 schemas, RFC 7644 operations) with no IO: what the server's
//! `/scim/v2` face and the sandbox's SCIM client share.
//!
//! - [`filter`]: the filter grammar, its AST and canonical text, in-memory matching;
//! - [`path`]: PATCH paths; [`patch`]: PATCH bodies and the engine;
//! - [`schema`]: the User, EnterpriseUser and Group schemas (from `crates/scim/schemas/*.json`)
//!   and the discovery documents;
//! - [`project`]: `attributes` / `excludedAttributes` and `returned`; [`list`]: list responses;
//! - [`error`]: RFC 7644 §3.12 errors.
//!
//! A resource is a `serde_json::Value` in RFC 7643 form: core attributes at the top, the
//! enterprise extension's under its URN key, `id` and `meta` set by the server.
#![forbid(unsafe_code)]

pub mod error;
pub mod filter;
pub mod list;
pub mod patch;
pub mod path;
pub mod project;
pub mod schema;

pub use error::{ScimError, ScimType};
pub use filter::{AttrPath, CompValue, CompareOp, Filter, matches, parse_filter};
pub use patch::{PatchOpKind, PatchOperation, PatchRequest, apply};
pub use path::{PatchPath, parse_path};
pub use schema::ResourceKind;

/// The media type of every SCIM request and response body (RFC 7644 §3.1).
pub const CONTENT_TYPE: &str = "application/scim+json";
