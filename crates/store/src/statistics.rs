//! Planner statistics on PostgreSQL for the tables a directory fills in bulk.
//!
//! PostgreSQL plans a prepared statement once from the table's statistics and keeps that plan
//! until the statistics change. A new database has none: while an identity provider's first
//! cycle fills `users` (Entra pushes every user, a lookup and a create each), the statements are
//! planned for an empty table, where every index of `users` costs the same, and PostgreSQL took
//! `(workspace_id, mail_key)` for the `upn_key` uniqueness check and `(connection_id,
//! updated_at)` for the `userName eq` lookup: scans of the whole connection, each create slower
//! than the last (20,000 users went from 350 to 90 a second). Autovacuum gathers statistics
//! when a tenth of a table has changed, but at most once a minute per database, and only where
//! it is on (it is off on some managed and test servers). So the store checks the tables it
//! fills itself: one whose changes since its last `ANALYZE` reach half its rows (and a
//! thousand) is analyzed, and its statements are planned again for what it now holds. Where
//! autovacuum keeps up, nothing here ever runs.

use std::time::Duration;

use sqlx::AnyPool;
use tokio::sync::mpsc;

/// How often the tables' counters are read (one small query).
const CHECK_EVERY: Duration = Duration::from_secs(10);

/// Changes since the last `ANALYZE` below which a table is left alone, whatever its size.
const MIN_CHANGES: i64 = 1_000;

/// The tables an identity provider or an import fills by the thousand.
const BULK_TABLES: &str = "'users', 'scim_user_emails', 'directory_groups', 'group_members', 'events', \
     'provisioning_items', 'passkeys'";

/// The checking task; it ends when the store is dropped.
pub(crate) struct Statistics {
    _alive: mpsc::Sender<()>,
}

impl Statistics {
    pub(crate) fn spawn(pool: AnyPool) -> Statistics {
        let (alive, mut dropped) = mpsc::channel::<()>(1);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = dropped.recv() => return,
                    _ = tokio::time::sleep(CHECK_EVERY) => {}
                }
                if pool.is_closed() {
                    return;
                }
                if let Err(e) = analyze_stale(&pool).await {
                    // Without statistics the store still works, only slower: say so once and
                    // leave the tables to autovacuum.
                    tracing::warn!(error = %e, "cannot refresh PostgreSQL's planner statistics; leaving them to autovacuum");
                    return;
                }
            }
        });
        Statistics { _alive: alive }
    }
}

impl crate::Store {
    /// On PostgreSQL, analyzes each table the store fills in bulk whose changes since its
    /// last `ANALYZE` reach half its rows (and a thousand), and names them; the store does this
    /// by itself every few seconds. Nothing on SQLite.
    pub async fn refresh_planner_statistics(&self) -> Result<Vec<String>, crate::StoreError> {
        if self.backend() != crate::Backend::Postgres {
            return Ok(Vec::new());
        }
        Ok(analyze_stale(self.pool()).await?)
    }
}

/// Analyzes each bulk table whose changes since its last `ANALYZE` reach half its rows.
async fn analyze_stale(pool: &AnyPool) -> Result<Vec<String>, sqlx::Error> {
    let sql = format!(
        "SELECT relname::text FROM pg_stat_user_tables WHERE schemaname = current_schema() \
         AND relname IN ({BULK_TABLES}) AND n_mod_since_analyze >= {MIN_CHANGES} \
         AND n_mod_since_analyze * 2 >= n_live_tup ORDER BY relname"
    );
    let stale: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await?;
    for table in &stale {
        // The name comes from the fixed list above, quoted all the same.
        let started = std::time::Instant::now();
        sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE \"{table}\"")))
            .execute(pool)
            .await?;
        tracing::info!(
            table,
            took_ms = started.elapsed().as_millis() as u64,
            "refreshed planner statistics"
        );
    }
    Ok(stale)
}
