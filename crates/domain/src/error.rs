use thiserror::Error;

/// Errors in domain values themselves: always say which field and why.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DomainError {
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("unknown {kind} {value:?}")]
    UnknownVariant { kind: &'static str, value: String },
}
