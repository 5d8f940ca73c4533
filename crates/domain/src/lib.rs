//! Behalf's domain: the vocabulary every other crate speaks.
//!
//! Nothing here does IO. Identifiers are typed so that a `UserId` can never be passed where a
//! `GroupId` is expected; states are enums whose string forms are what the database stores.
#![forbid(unsafe_code)]

pub mod behalf_key;
pub mod error;
pub mod ids;
pub mod model;
pub mod secret;
pub mod state;

pub use behalf_key::*;
pub use error::DomainError;
pub use ids::*;
pub use model::*;
pub use secret::Secret;
pub use state::*;

/// Milliseconds since the Unix epoch, the one clock unit stored in the database.
pub type Millis = i64;

/// The current time in [`Millis`].
pub fn now_millis() -> Millis {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as Millis
}

/// Formats [`Millis`] as RFC 3339 for reports and JSON output.
pub fn format_millis(at: Millis) -> String {
    let nanos = i128::from(at) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| at.to_string())
}

/// Parses RFC 3339 into [`Millis`].
pub fn parse_rfc3339(text: &str) -> Result<Millis, DomainError> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| DomainError::Invalid {
            field: "timestamp",
            reason: format!("{text:?} is not an RFC 3339 date-time ({e})"),
        })?;
    Ok((t.unix_timestamp_nanos() / 1_000_000) as Millis)
}

#[cfg(test)]
mod tests;
