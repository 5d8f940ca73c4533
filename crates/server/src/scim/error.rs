//! SCIM errors (RFC 7644 §3.12) as HTTP: one type, one exhaustive `match`. Bodies carry the
//! status and `scimType` and a detail written for the client; never a database's words (an
//! internal error's cause goes to the log).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use behalf_app::ops::scim::ScimFailure;
use behalf_scim::{ScimError, ScimType};

/// What a `/scim/v2` request answers instead of its result.
#[derive(Debug)]
pub enum ScimHttpError {
    /// No bearer token, or not a valid SCIM token: 401 with no detail.
    Unauthenticated,
    /// A body that is not JSON (`application/scim+json` or `application/json`).
    UnsupportedMediaType,
    Failure(ScimFailure),
}

impl From<ScimFailure> for ScimHttpError {
    fn from(e: ScimFailure) -> Self {
        ScimHttpError::Failure(e)
    }
}

impl From<ScimError> for ScimHttpError {
    fn from(e: ScimError) -> Self {
        ScimHttpError::Failure(ScimFailure::Protocol(e))
    }
}

impl From<behalf_app::AppError> for ScimHttpError {
    fn from(e: behalf_app::AppError) -> Self {
        ScimHttpError::Failure(e.into())
    }
}

impl IntoResponse for ScimHttpError {
    fn into_response(self) -> Response {
        let error = match self {
            ScimHttpError::Unauthenticated => {
                let body = serde_json::json!({
                    "schemas": [behalf_scim::schema::ERROR],
                    "status": "401",
                });
                let mut response = super::scim_json(StatusCode::UNAUTHORIZED, &body);
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"behalf-scim\""),
                );
                return response;
            }
            ScimHttpError::UnsupportedMediaType => ScimError::new(
                415,
                None,
                "send the body as application/scim+json (or application/json)",
            ),
            ScimHttpError::Failure(ScimFailure::Protocol(e)) => e,
            ScimHttpError::Failure(ScimFailure::NotFound { what, id }) => {
                ScimError::new(404, None, format!("{what} {id} not found"))
            }
            ScimHttpError::Failure(ScimFailure::VersionMismatch) => ScimError::new(
                412,
                None,
                "the resource has changed since that version (If-Match): read it again",
            ),
            ScimHttpError::Failure(ScimFailure::Internal(cause)) => {
                tracing::error!(error = %cause, "SCIM request failed");
                ScimError::new(500, None, "internal error")
            }
        };
        let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
        super::scim_json(status, &error.body())
    }
}

/// A query or body parameter that is not what it must be.
pub(crate) fn invalid_value(detail: impl Into<String>) -> ScimHttpError {
    ScimError::bad_request(ScimType::InvalidValue, detail).into()
}
