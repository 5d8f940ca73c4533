//! One error type for everything the sandbox refuses, mapped to the JSON Microsoft sends.
//!
//! Graph errors use the documented shape
//! `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`
//! (<https://learn.microsoft.com/graph/errors>); the Microsoft identity platform's token endpoint uses
//! `{"error","error_description","error_codes","timestamp","trace_id","correlation_id"}`
//! (<https://learn.microsoft.com/entra/identity-platform/reference-error-codes>).
//!
//! A handler returns a [`SandboxError`]; its response carries a [`PendingError`] extension and no
//! body. The request-id middleware (which knows the request ids) renders the final body, so every
//! error body carries the same ids as the response headers.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Everything the sandbox can answer with instead of a success.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// 401: missing, malformed, badly signed, expired or wrong-tenant access token.
    #[error("{0}")]
    InvalidToken(String),
    /// 403: the token lacks every permission that would allow the call.
    #[error("Insufficient privileges to complete the operation.")]
    Forbidden,
    /// 403 `accessDenied`: refused by the authentication methods policy.
    #[error("{0}")]
    AccessDenied(String),
    /// 404 `Request_ResourceNotFound`.
    #[error(
        "Resource '{0}' does not exist or one of its queried reference-property objects are not present."
    )]
    NotFound(String),
    /// 400 `Request_BadRequest` (directory objects, query options).
    #[error("{0}")]
    BadRequest(String),
    /// 400 `Request_UnsupportedQuery` (a `$filter` the emulation, like Graph, does not support).
    #[error("{0}")]
    UnsupportedQuery(String),
    /// 400 `badRequest` (authentication-methods APIs use lower camel case codes).
    #[error("{0}")]
    BadRequestMethods(String),
    /// 400 `invalidRequest`: a registration that fails WebAuthn verification.
    #[error("{0}")]
    InvalidRegistration(String),
    /// 405 `methodNotAllowed`: e.g. registering a passkey for the caller's own account.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 404 for an unknown route.
    #[error("The requested resource '{0}' is not supported by this emulation.")]
    NoRoute(String),
    /// 429 from either the fault knob or Graph's resource-unit / write-budget model.
    #[error("Too many requests")]
    Throttled {
        retry_after_secs: u64,
        /// `x-ms-throttle-scope`, when a budget of the caller's is spent.
        scope: Option<String>,
        /// `x-ms-throttle-information`, likewise.
        information: Option<String>,
    },
    /// 503 injected by the `fail_every` knob.
    #[error("The service is temporarily unavailable.")]
    Unavailable { retry_after_secs: u64 },
    /// Token endpoint errors (AAD JSON shape).
    #[error("{error}: {description}")]
    Aad {
        status: StatusCode,
        error: &'static str,
        code: u32,
        description: String,
    },
    /// A failed `/sandbox/signin/finish` (sandbox-only endpoint).
    #[error("{0}")]
    SignIn(String),
    /// A bug or an I/O failure inside the sandbox.
    #[error("{0}")]
    Internal(String),
}

/// Marker left on an error response for the request-id middleware to render.
#[derive(Debug, Clone)]
pub(crate) enum PendingError {
    Graph {
        code: &'static str,
        message: String,
    },
    Aad {
        error: &'static str,
        code: u32,
        description: String,
    },
}

impl SandboxError {
    pub(crate) fn aad(
        status: StatusCode,
        error: &'static str,
        code: u32,
        description: impl Into<String>,
    ) -> Self {
        SandboxError::Aad {
            status,
            error,
            code,
            description: description.into(),
        }
    }

    /// Status and Graph error code; exhaustive so a new variant cannot go unmapped.
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            SandboxError::InvalidToken(_) => {
                (StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken")
            }
            SandboxError::Forbidden => (StatusCode::FORBIDDEN, "Authorization_RequestDenied"),
            SandboxError::AccessDenied(_) => (StatusCode::FORBIDDEN, "accessDenied"),
            SandboxError::NotFound(_) => (StatusCode::NOT_FOUND, "Request_ResourceNotFound"),
            SandboxError::BadRequest(_) => (StatusCode::BAD_REQUEST, "Request_BadRequest"),
            SandboxError::UnsupportedQuery(_) => {
                (StatusCode::BAD_REQUEST, "Request_UnsupportedQuery")
            }
            SandboxError::BadRequestMethods(_) => (StatusCode::BAD_REQUEST, "badRequest"),
            SandboxError::InvalidRegistration(_) => (StatusCode::BAD_REQUEST, "invalidRequest"),
            SandboxError::MethodNotAllowed(_) => {
                (StatusCode::METHOD_NOT_ALLOWED, "methodNotAllowed")
            }
            SandboxError::NoRoute(_) => (StatusCode::NOT_FOUND, "Request_ResourceNotFound"),
            SandboxError::Throttled { .. } => (StatusCode::TOO_MANY_REQUESTS, "TooManyRequests"),
            SandboxError::Unavailable { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "serviceNotAvailable")
            }
            SandboxError::Aad { status, error, .. } => (*status, error),
            SandboxError::SignIn(_) => (StatusCode::BAD_REQUEST, "signInFailed"),
            SandboxError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "generalException"),
        }
    }
}

impl IntoResponse for SandboxError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = self.to_string();
        let mut resp = status.into_response();
        match self {
            SandboxError::Aad {
                error,
                code,
                description,
                ..
            } => {
                resp.extensions_mut().insert(PendingError::Aad {
                    error,
                    code,
                    description,
                });
            }
            SandboxError::Throttled {
                retry_after_secs,
                scope,
                information,
            } => {
                let h = resp.headers_mut();
                h.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
                if let Some(v) = scope.and_then(|s| HeaderValue::from_str(&s).ok()) {
                    h.insert("x-ms-throttle-scope", v);
                }
                if let Some(v) = information.and_then(|s| HeaderValue::from_str(&s).ok()) {
                    h.insert("x-ms-throttle-information", v);
                }
                resp.extensions_mut().insert(PendingError::Graph {
                    code,
                    message: "Too many requests. Please wait and retry after the time in the Retry-After header.".into(),
                });
            }
            SandboxError::Unavailable { retry_after_secs } => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
                resp.extensions_mut()
                    .insert(PendingError::Graph { code, message });
            }
            SandboxError::InvalidToken(_)
            | SandboxError::Forbidden
            | SandboxError::AccessDenied(_)
            | SandboxError::NotFound(_)
            | SandboxError::BadRequest(_)
            | SandboxError::UnsupportedQuery(_)
            | SandboxError::BadRequestMethods(_)
            | SandboxError::InvalidRegistration(_)
            | SandboxError::MethodNotAllowed(_)
            | SandboxError::NoRoute(_)
            | SandboxError::SignIn(_)
            | SandboxError::Internal(_) => {
                if status == StatusCode::UNAUTHORIZED {
                    // Graph challenges like any bearer-protected resource (RFC 6750 §3).
                    resp.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\""),
                    );
                }
                resp.extensions_mut()
                    .insert(PendingError::Graph { code, message });
            }
        }
        resp
    }
}

pub(crate) type Result<T, E = SandboxError> = std::result::Result<T, E>;
