//! Real databases for tests: a fresh SQLite file, or a fresh PostgreSQL database.
//!
//! PostgreSQL tests read `BEHALF_TEST_POSTGRES` (e.g. `postgres://postgres@127.0.0.1:5432/test`).
//! When it is set, an unreachable server fails the test loudly. When it is unset the PostgreSQL
//! half is skipped with a line on stderr saying so; `.ci/run` always sets it.

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::AssertSqlSafe;

use crate::{Store, sqlite_url_for};

/// A store that cleans up after itself: the SQLite directory or the PostgreSQL database.
#[derive(Debug)]
pub struct TestStore {
    pub store: Store,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, database: String },
}

impl std::ops::Deref for TestStore {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

impl TestStore {
    /// Where the SQLite file is (None on PostgreSQL).
    pub fn sqlite_path(&self) -> Option<std::path::PathBuf> {
        match &self.cleanup {
            Cleanup::Sqlite(dir) => Some(dir.path().join("behalf.db")),
            Cleanup::Postgres { .. } => None,
        }
    }

    /// The URL this store was opened with, for a second handle (e.g. a second process).
    pub fn url(&self) -> String {
        match &self.cleanup {
            Cleanup::Sqlite(dir) => sqlite_url_for(dir.path()),
            Cleanup::Postgres {
                admin_url,
                database,
            } => with_database(admin_url, database),
        }
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Cleanup::Postgres {
            admin_url,
            database,
        } = &self.cleanup
        {
            let (admin_url, database) = (admin_url.clone(), database.clone());
            // Drop runs outside any runtime we may block on: use a thread with its own.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                runtime.block_on(async {
                    let admin = Store::open(&admin_url).await.ok()?;
                    let sql = format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)");
                    let _ = sqlx::query(AssertSqlSafe(sql)).execute(admin.pool()).await;
                    admin.close().await;
                    Some(())
                })
            })
            .join();
        }
    }
}

/// A migrated store on a new SQLite file in a temporary directory.
pub async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::connect(&sqlite_url_for(dir.path()))
        .await
        .expect("SQLite store");
    TestStore {
        store,
        cleanup: Cleanup::Sqlite(dir),
    }
}

/// The PostgreSQL server tests should use, if configured.
pub fn postgres_url() -> Option<String> {
    std::env::var("BEHALF_TEST_POSTGRES")
        .ok()
        .filter(|u| !u.is_empty())
}

/// A migrated store on a new PostgreSQL database, or `None` (with a notice) when
/// `BEHALF_TEST_POSTGRES` is unset. Panics when it is set and the server cannot be used.
pub async fn postgres() -> Option<TestStore> {
    let Some(admin_url) = postgres_url() else {
        eprintln!(
            "NOTICE: BEHALF_TEST_POSTGRES is unset: the PostgreSQL half of this test did not run"
        );
        return None;
    };
    Some(postgres_at(&admin_url).await)
}

/// A migrated store on a new database of the PostgreSQL server at `admin_url` (benchmarks name
/// theirs), dropped with the [`TestStore`]. Panics when the server cannot be used.
pub async fn postgres_at(admin_url: &str) -> TestStore {
    let admin_url = admin_url.to_owned();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let database = format!(
        "behalf_t_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        uuid::Uuid::new_v4().simple()
    );
    let admin = Store::open(&admin_url).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL at {} is unusable: {e}",
            crate::redact_url(&admin_url)
        )
    });
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{database}\"")))
        .execute(admin.pool())
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {database}: {e}"));
    admin.close().await;
    let url = with_database(&admin_url, &database);
    let store = Store::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL store: {e}"));
    TestStore {
        store,
        cleanup: Cleanup::Postgres {
            admin_url,
            database,
        },
    }
}

fn with_database(url: &str, database: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("BEHALF_TEST_POSTGRES is a URL");
    parsed.set_path(&format!("/{database}"));
    parsed.to_string()
}

/// Runs an async test body once on SQLite and once on PostgreSQL, as two named tests.
///
/// ```ignore
/// behalf_store::each_backend!(users_round_trip, |store| async move { ... });
/// ```
#[macro_export]
macro_rules! each_backend {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let store = $crate::testing::sqlite().await;
                ($body)(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(store) = $crate::testing::postgres().await {
                    ($body)(store).await;
                }
            }
        }
    };
}
