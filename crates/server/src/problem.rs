//! Errors as RFC 9457 `application/problem+json`.
//!
//! One exhaustive `match` from [`AppError`] to a status and a body. The body never carries a
//! database's words or a secret: [`AppError::Internal`]'s text goes to the log under the
//! request's id, and the client gets that id to quote.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use behalf_app::AppError;
use serde_json::{Value, json};

/// An API error: an [`AppError`] on its way to becoming a problem document.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        ApiError(e)
    }
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ApiError(AppError::invalid(field, reason))
    }

    pub fn forbidden(needed: &'static str) -> Self {
        ApiError(AppError::Forbidden { needed })
    }
}

/// The problem document's `type`, a stable name per kind of error.
/// How an [`AppError`] is said over HTTP: its status, the problem type's slug, a title, and
/// extra members. One exhaustive `match`, shared by the API (problem+json) and the panel (a page).
pub(crate) fn classify(error: &AppError) -> (StatusCode, &'static str, &'static str, Value) {
    match error {
        AppError::Unauthenticated => (
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Not signed in",
            Value::Null,
        ),
        AppError::Forbidden { needed } => (
            StatusCode::FORBIDDEN,
            "forbidden",
            "Not allowed",
            json!({ "needed": needed }),
        ),
        AppError::Csrf => (
            StatusCode::FORBIDDEN,
            "csrf",
            "Missing or wrong CSRF token",
            Value::Null,
        ),
        AppError::NotFound { what, .. } => (
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            json!({ "what": what }),
        ),
        AppError::Invalid { field, .. } => (
            StatusCode::BAD_REQUEST,
            "invalid",
            "Invalid input",
            json!({ "field": field }),
        ),
        AppError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict", Value::Null),
        AppError::RateLimited { retry_after_secs } => (
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many attempts",
            json!({ "retry_after": retry_after_secs }),
        ),
        AppError::NotConfigured(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not-configured",
            "Not configured",
            Value::Null,
        ),
        AppError::Upstream {
            status,
            code,
            request_id,
            ..
        } => (
            StatusCode::BAD_GATEWAY,
            "upstream",
            "Microsoft Graph refused or failed",
            json!({ "upstream_status": status, "code": code, "graph_request_id": request_id }),
        ),
        AppError::Internal(cause) => {
            tracing::error!(error = %cause, "internal error");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
                Value::Null,
            )
        }
    }
}

fn problem_type(slug: &str) -> String {
    format!("https://behalf.dev/problems/{slug}")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let detail = self.0.to_string();
        let (status, slug, title, extra) = classify(&self.0);
        let mut body = json!({
            "type": problem_type(slug),
            "title": title,
            "status": status.as_u16(),
            "detail": detail,
        });
        if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
            for (k, v) in extra {
                if !v.is_null() {
                    body.insert(k, v);
                }
            }
        }
        let mut response = (status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let AppError::RateLimited { retry_after_secs } = &self.0
            && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            headers.insert(header::RETRY_AFTER, v);
        }
        if matches!(self.0, AppError::Unauthenticated) {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"behalf\""),
            );
        }
        response
    }
}

/// A JSON body that failed to parse is a 400 naming what was wrong, in the same format.
impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(e: axum::extract::rejection::JsonRejection) -> Self {
        ApiError::invalid("body", e.body_text())
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::invalid("query", e.body_text())
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(e: axum::extract::rejection::PathRejection) -> Self {
        ApiError::invalid("path", e.body_text())
    }
}
