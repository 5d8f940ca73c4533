//! The application layer's one error type.
//!
//! Every face (CLI, REST API, panel, SCIM) maps it once: the server with an exhaustive `match`
//! into `application/problem+json`, the CLI into a one-line `error:`. The messages are written
//! for the person who will read them; none carries SQL text, a database driver's words or a
//! secret (those go to the log through [`AppError::Internal`], whose text is never shown).

use behalf_store::StoreError;

/// What an operation can answer instead of its result.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No identity, or one that is not (or no longer) valid.
    #[error("sign in first")]
    Unauthenticated,
    /// The caller is known but may not do this.
    #[error("not allowed: {needed}")]
    Forbidden { needed: &'static str },
    /// A CSRF token was missing or did not match the session's.
    #[error("the request's CSRF token is missing or wrong: reload the page and try again")]
    Csrf,
    #[error("{what} not found: {key}")]
    NotFound { what: &'static str, key: String },
    /// The input is wrong; `field` names what.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// The request conflicts with the current state (a name taken, a job already finished).
    #[error("{0}")]
    Conflict(String),
    /// Too many attempts: try again after `retry_after_secs`.
    #[error("too many attempts: try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// Behalf is not set up for this (no Entra ID app configured, say); says how to fix it.
    #[error("{0}")]
    NotConfigured(String),
    /// Microsoft Graph refused or failed; its code and request id let Microsoft support trace it.
    #[error("{message}")]
    Upstream {
        status: Option<u16>,
        code: Option<String>,
        message: String,
        request_id: Option<String>,
    },
    /// Something that is Behalf's fault or the machine's (the database is down, say). The text
    /// is for the log only.
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        AppError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn internal(error: impl std::fmt::Display) -> Self {
        AppError::Internal(error.to_string())
    }

    /// The text for a log line: [`AppError::Internal`]'s own cause, else the message.
    pub fn log_text(&self) -> String {
        match self {
            AppError::Internal(cause) => cause.clone(),
            other => other.to_string(),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { kind, key } => AppError::NotFound { what: kind, key },
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<behalf_graph::GraphError> for AppError {
    fn from(e: behalf_graph::GraphError) -> Self {
        AppError::Upstream {
            status: e.status(),
            code: e.code().map(str::to_owned),
            message: e.to_string(),
            request_id: e.request_id().map(str::to_owned),
        }
    }
}

impl From<behalf_provision::EngineError> for AppError {
    fn from(e: behalf_provision::EngineError) -> Self {
        match e {
            behalf_provision::EngineError::Store(s) => s.into(),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<behalf_directory::DirectoryError> for AppError {
    fn from(e: behalf_directory::DirectoryError) -> Self {
        match e {
            behalf_directory::DirectoryError::Graph(g) => g.into(),
            behalf_directory::DirectoryError::Store(s) => s.into(),
        }
    }
}

impl From<behalf_domain::DomainError> for AppError {
    fn from(e: behalf_domain::DomainError) -> Self {
        match e {
            behalf_domain::DomainError::Invalid { field, reason } => {
                AppError::invalid(field, reason)
            }
            other => AppError::invalid("input", other.to_string()),
        }
    }
}
