//! `/scim/v2`: Behalf as a SCIM 2.0 service provider (RFC 7643, RFC 7644) that an identity
//! provider (Entra ID's provisioning service) pushes users and groups to. Not part of
//! `/api/v1`'s OpenAPI document: SCIM is its own protocol, described by its own discovery
//! endpoints (`/ServiceProviderConfig`, `/ResourceTypes`, `/Schemas`).
//!
//! Each handler: the connection's bearer token (401 without one) → the request's parts → one
//! call on the [`behalf_app::ops::scim::Scim`] handle, which reaches only that connection.
//! Bodies are `application/scim+json` both ways (`application/json` accepted, as Entra sends
//! both); ETags are `W/"<version>"`.

mod error;
mod resources;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use behalf_app::ops::scim::{Scim, parse_etag};
use serde_json::Value;

pub use error::ScimHttpError;

use crate::ServerState;

/// The routes under `/scim/v2`.
pub fn router() -> Router<ServerState> {
    Router::new()
        .route(
            "/Users",
            get(resources::list_users).post(resources::create_user),
        )
        .route("/Users/.search", post(resources::search_users))
        .route(
            "/Users/{id}",
            get(resources::get_user)
                .put(resources::replace_user)
                .patch(resources::patch_user)
                .delete(resources::delete_user),
        )
        .route(
            "/Groups",
            get(resources::list_groups).post(resources::create_group),
        )
        .route("/Groups/.search", post(resources::search_groups))
        .route(
            "/Groups/{id}",
            get(resources::get_group)
                .put(resources::replace_group)
                .patch(resources::patch_group)
                .delete(resources::delete_group),
        )
        .route("/.search", post(resources::search_all))
        .route(
            "/ServiceProviderConfig",
            get(resources::service_provider_config),
        )
        .route("/ResourceTypes", get(resources::resource_types))
        .route("/ResourceTypes/{id}", get(resources::resource_type))
        .route("/Schemas", get(resources::schemas))
        .route("/Schemas/{id}", get(resources::schema))
        .fallback(resources::no_such_endpoint)
}

/// A SCIM JSON answer.
pub(crate) fn scim_json(status: StatusCode, body: &Value) -> Response {
    // `to_vec` writes straight into the buffer (`to_string` goes through `fmt::Write`); a
    // `Value` always serialises.
    let mut response = (status, serde_json::to_vec(body).unwrap_or_default()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(behalf_scim::CONTENT_TYPE),
    );
    response
}

/// The client for the request's bearer token, or 401.
pub(crate) async fn client<'a>(
    state: &'a ServerState,
    headers: &HeaderMap,
) -> Result<Scim<'a>, ScimHttpError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .ok_or(ScimHttpError::Unauthenticated)?;
    state
        .app
        .scim(token)
        .await?
        .ok_or(ScimHttpError::Unauthenticated)
}

/// Where `/scim/v2` is as the client reached it, for `meta.location`.
pub(crate) fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|p| matches!(*p, "http" | "https"))
        .unwrap_or("http");
    format!("{scheme}://{host}/scim/v2")
}

/// The request body as JSON: `application/scim+json` or `application/json` (or no type).
pub(crate) fn json_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, ScimHttpError> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
        if !ct.starts_with(behalf_scim::CONTENT_TYPE) && !ct.starts_with("application/json") {
            return Err(ScimHttpError::UnsupportedMediaType);
        }
    }
    serde_json::from_slice(body).map_err(|e| {
        behalf_scim::ScimError::bad_request(
            behalf_scim::ScimType::InvalidSyntax,
            format!("the body is not JSON: {e}"),
        )
        .into()
    })
}

/// The version an `If-Match` names (`*` or none: any).
pub(crate) fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ScimHttpError> {
    match headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) {
        None => Ok(None),
        Some(v) if v.trim() == "*" => Ok(None),
        // RFC 7232 §3.1: an ETag this server never issued matches no version.
        Some(v) => Ok(Some(parse_etag(v).unwrap_or(-1))),
    }
}
