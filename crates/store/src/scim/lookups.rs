//! The `userName eq "…"` lookups that arrive together, answered by one PostgreSQL query.
//!
//! An identity provider sends this lookup before every create and update (Entra's provisioning
//! service, eight or more at once). On PostgreSQL each lookup alone is a round trip: a pooled
//! connection, a backend woken, a row sent back. The query itself is a few index pages; the
//! round trip, on both sides, is most of what the lookup costs (BENCHMARKS.md, "SCIM"). So a
//! few driver tasks each take every lookup queued when they are free and answer them all with
//! one `upn_key IN (…)` query; alone, a lookup goes at once.
//!
//! Read-your-writes holds as for a lookup sent alone: a lookup's query starts after the lookup
//! was queued, so it sees every write committed before it arrived, from this instance or any
//! other. A batch that fails answers `None`, and each caller then runs its own lookup, to get
//! its own error.

use std::sync::Arc;

use behalf_domain::ConnectionId;
use sqlx::{AnyPool, AssertSqlSafe};
use tokio::sync::{Mutex, mpsc, oneshot};

use super::SCIM_COLUMNS;
use super::users::{LISTED, ScimUserRow};
use crate::rows::Reader;
use crate::users::USER_COLUMNS;
use crate::{StoreError, placeholders};

/// Queries in flight at once. One driver makes the largest batches, but each lookup then waits
/// for the batch before it; two keep a lookup's wait to about one query and still batch what
/// arrives under load.
const DRIVERS: usize = 2;

/// Lookups in one query at most. The list is padded up to a power of two (repeating the last
/// key), so the queries are a handful of texts, each prepared once per connection.
const MAX_BATCH: usize = 32;

struct Lookup {
    connection: ConnectionId,
    /// The folded `userName`, as `upn_key` holds it.
    key: String,
    answer: oneshot::Sender<Option<Option<ScimUserRow>>>,
}

/// The queue of lookups and its driver tasks.
pub(crate) struct UpnLookups {
    queue: mpsc::UnboundedSender<Lookup>,
}

impl UpnLookups {
    /// Starts the drivers on the current runtime; they end when the store is dropped.
    pub(crate) fn spawn(pool: AnyPool) -> UpnLookups {
        let (queue, incoming) = mpsc::unbounded_channel();
        let incoming = Arc::new(Mutex::new(incoming));
        for _ in 0..DRIVERS {
            tokio::spawn(drive(pool.clone(), incoming.clone()));
        }
        UpnLookups { queue }
    }

    /// The connection's user whose folded `userName` is `key` (not DELETEd), or `None` when
    /// the batch could not answer (the caller then looks it up alone).
    pub(crate) async fn user(
        &self,
        connection: ConnectionId,
        key: String,
    ) -> Option<Option<ScimUserRow>> {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(Lookup {
                connection,
                key,
                answer,
            })
            .ok()?;
        answered.await.ok().flatten()
    }
}

async fn drive(pool: AnyPool, incoming: Arc<Mutex<mpsc::UnboundedReceiver<Lookup>>>) {
    loop {
        let mut batch = Vec::new();
        {
            let mut incoming = incoming.lock().await;
            match incoming.recv().await {
                Some(first) => batch.push(first),
                None => return,
            }
            while batch.len() < MAX_BATCH {
                match incoming.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
        }
        answer(&pool, batch).await;
    }
}

/// Answers `batch`: one query per SCIM connection in it (almost always one).
async fn answer(pool: &AnyPool, mut batch: Vec<Lookup>) {
    while let Some(first) = batch.first() {
        let connection = first.connection;
        let (these, rest): (Vec<Lookup>, Vec<Lookup>) =
            batch.into_iter().partition(|l| l.connection == connection);
        batch = rest;
        let mut keys: Vec<&str> = these.iter().map(|l| l.key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        match query(pool, connection, &keys).await {
            Ok(found) => {
                for lookup in these {
                    let row = found
                        .iter()
                        .find(|(key, _)| *key == lookup.key)
                        .map(|(_, row)| row.clone());
                    let _ = lookup.answer.send(Some(row));
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "batched userName lookup failed; each asks alone");
                for lookup in these {
                    let _ = lookup.answer.send(None);
                }
            }
        }
    }
}

/// The rows of `connection` whose `upn_key` is one of `keys` (at most one each: the key is
/// unique in the workspace), with their keys.
async fn query(
    pool: &AnyPool,
    connection: ConnectionId,
    keys: &[&str],
) -> Result<Vec<(String, ScimUserRow)>, StoreError> {
    let Some(last) = keys.last() else {
        return Ok(Vec::new());
    };
    let slots = keys.len().next_power_of_two();
    let sql = format!(
        "SELECT {USER_COLUMNS}, {SCIM_COLUMNS}, u.upn_key AS lookup_key {LISTED} \
         AND u.upn_key IN ({})",
        placeholders(2, slots)
    );
    let mut q = sqlx::query(AssertSqlSafe(sql)).bind(connection.to_string());
    for i in 0..slots {
        q = q.bind(keys.get(i).unwrap_or(last).to_string());
    }
    let rows = q.fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            let key = Reader::new(row, "users").text("lookup_key")?;
            Ok((key, <ScimUserRow as super::FromColumns>::from_columns(row)?))
        })
        .collect()
}
