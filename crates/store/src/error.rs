use thiserror::Error;

/// What can go wrong in the store. Database driver text is kept for the log (`Database`), never
/// shown to an HTTP client: the server maps each variant to a status without it.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot open database {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("database migration failed: {0}")]
    Migrate(String),
    #[error("database not ready: {0}")]
    NotReady(String),
    #[error("{kind} not found: {key}")]
    NotFound { kind: &'static str, key: String },
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("corrupt {table} row: {reason}")]
    Corrupt { table: &'static str, reason: String },
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e
            && db.is_unique_violation()
        {
            return StoreError::Conflict(db.message().to_owned());
        }
        StoreError::Database(e)
    }
}

pub(crate) fn corrupt(table: &'static str, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        table,
        reason: reason.to_string(),
    }
}
