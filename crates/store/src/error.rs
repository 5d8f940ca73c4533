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
    /// A row with the same unique key exists (a UPN, a token hash, a name). `what` is the
    /// database's text naming the constraint: for the log, not for a client.
    #[error("already exists: {what}")]
    UniqueViolation { what: String },
    /// A guarded write was refused: the item is no longer leased to the writer (another worker
    /// took it over after the lease ran out), or the row is no longer in the state it required.
    #[error("write refused: {what}")]
    LeaseLost { what: String },
    /// The caller passed something the store cannot use (a cursor it did not make, a page
    /// size out of range).
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: &'static str, reason: String },
    #[error("corrupt {table} row: {reason}")]
    Corrupt { table: &'static str, reason: String },
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// A read on one of the SQLite read connections (`readers`) failed.
    #[error("database error: {0}")]
    SqliteRead(#[source] rusqlite::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::SqliteRead(e)
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e
            && db.is_unique_violation()
        {
            return StoreError::UniqueViolation {
                what: db.message().to_owned(),
            };
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
