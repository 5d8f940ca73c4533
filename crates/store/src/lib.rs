//! Behalf's persistence.
//!
//! One SQL code path over sqlx's `Any` driver serves both backends: embedded SQLite (the default,
//! one file in WAL mode) and PostgreSQL (several Behalf instances sharing the work). Each backend
//! has its own migrations folder because their DDL differs (BLOB/BYTEA, triggers); the queries are
//! written once in the SQL both accept (`$1` placeholders, `ON CONFLICT`, `RETURNING`), and the few
//! that must differ (claiming work with `FOR UPDATE SKIP LOCKED`) branch on [`Backend`].
//!
//! Queries assembled with `format!` splice in only constants of this crate (column lists, state
//! sets, backend-specific clauses), never input: hence `AssertSqlSafe`. Input is always bound.
//!
//! Values cross the `Any` driver as TEXT (UUIDs, enums, JSON), BIGINT (times in ms, counters,
//! 0/1 flags) and BLOB, the types it maps identically on both backends.
#![forbid(unsafe_code)]

mod admins;
mod batch;
mod behalf_key;
mod connections;
mod device_logins;
mod error;
mod events;
mod group_search;
mod groups;
mod idempotency;
mod jobs;
mod key_requests;
mod keys;
mod outbound;
mod readers;
mod reset_links;
mod rows;
mod schedules;
pub mod scim;
mod sessions;
mod statistics;
pub mod testing;
mod tokens;
mod user_search;
mod users;
pub mod vault;
mod workspaces;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Connection, Executor};

pub use admins::AdminAccount;
pub use batch::WriteSet;
pub use behalf_key::{PinAttempt, PinOnPairing};
pub use connections::ConnectionTarget;
pub use device_logins::{DeviceLogin, DevicePoll};
pub use error::StoreError;
pub use events::EventFilter;
pub use group_search::{GroupListRow, GroupPage, GroupQuery, MAX_GROUP_PAGE};
pub use groups::MembershipChange;
pub use idempotency::{IdempotencyKey, IdempotencyRecord, IdempotentJob};
pub use jobs::{JobCounts, JobItemRow};
pub use key_requests::Attestation as KeyAttestation;
pub use keys::NewPasskey;
pub use outbound::{DirectoryWrite, UserChange, WriteFailure, WriteResult};
pub use reset_links::ResetLink;
pub use schedules::Schedule;
pub use sessions::{NewSession, SessionGrant, TOUCH_INTERVAL_MS};
pub use tokens::{ApiTokenEntry, NewApiToken, TokenGrant};
pub use user_search::{MAX_PAGE, UserListRow, UserPage, UserQuery};
pub use users::UpsertCounts;

/// How long a pooled PostgreSQL connection may sit idle before it is pinged on acquire.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// PostgreSQL connections a process keeps when the configuration does not say.
pub const DEFAULT_POSTGRES_POOL: u32 = 16;

/// How a store is opened beyond its URL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// PostgreSQL connections kept at most ([`DEFAULT_POSTGRES_POOL`] when `None`); SQLite
    /// ignores it (one writer, its page cache kept warm).
    pub pool_size: Option<u32>,
}

/// The handle every other crate persists through. Cheap to clone (a pool handle).
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Group-commits the small writes of concurrent tasks (see `batch`).
    writer: std::sync::Arc<batch::Writer>,
    /// Reads of the SQLite file on the calling thread (see `readers`); none on PostgreSQL.
    readers: Option<std::sync::Arc<readers::Readers>>,
    /// The `userName eq` lookups that arrive together, in one query (PostgreSQL only: see
    /// `scim::lookups`).
    lookups: Option<std::sync::Arc<scim::UpnLookups>>,
    /// Refreshes PostgreSQL's planner statistics while a table fills (see `statistics`).
    _statistics: Option<std::sync::Arc<statistics::Statistics>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// The URL of the embedded default database inside a data directory.
pub fn sqlite_url_for(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join("behalf.db").display())
}

/// A database URL with any password replaced, for messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("hidden"));
            parsed.to_string().replacen(":hidden@", ":<hidden>@", 1)
        }
        Ok(_) => url.to_owned(),
        Err(_) => "<unparseable database url>".to_owned(),
    }
}

impl Store {
    /// Opens the database at `url` (`sqlite://…` or `postgres://…`) and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Self::connect_with(url, StoreOptions::default()).await
    }

    /// [`Store::connect`] with `options`.
    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<Store, StoreError> {
        let store = Self::open_with(url, options).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens the database without migrating (for `readyz`-style checks and tests of migration).
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Self::open_with(url, StoreOptions::default()).await
    }

    /// [`Store::open`] with `options`.
    pub async fn open_with(url: &str, store_options: StoreOptions) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let redacted = redact_url(url);
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Connect {
                url: redacted,
                reason: "the URL must start with sqlite:// or postgres://".into(),
            });
        };
        if backend == Backend::Sqlite {
            create_sqlite_parent_dir(url).map_err(|reason| StoreError::Connect {
                url: redacted.clone(),
                reason,
            })?;
        }
        let options = AnyConnectOptions::from_str(url)
            .map_err(|e| StoreError::Connect {
                url: redacted.clone(),
                reason: e.to_string(),
            })?
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(2));
        // One direct connection first: a pool would retry until its timeout and then report
        // only "timed out", where the admin needs the cause (refused, unknown host, bad password).
        let probe = options.connect().await.map_err(|e| StoreError::Connect {
            url: redacted.clone(),
            reason: e.to_string(),
        })?;
        let _ = probe.close().await;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                // SQLite has one writer at a time, and a connection drops its page cache
                // whenever another connection commits: one connection, its cache kept warm.
                Backend::Sqlite => 1,
                Backend::Postgres => store_options
                    .pool_size
                    .unwrap_or(DEFAULT_POSTGRES_POOL)
                    .max(1),
            })
            .acquire_timeout(Duration::from_secs(10))
            // A ping before every acquire doubles the round trips of a one-query request (a
            // SCIM lookup: two instead of one). A connection in use is known to be alive; one
            // that sat idle may have been cut (a restarted server, a proxy's idle timeout), so
            // only those are pinged, and a failed ping closes it and opens another.
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| {
                Box::pin(async move {
                    if backend == Backend::Postgres && meta.idle_for >= IDLE_BEFORE_PING {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // secure_delete: a destroyed credential's sealed bytes are overwritten on
                        // disk, not left in free pages. busy_timeout: writers queue, not fail.
                        conn.execute(
                            "PRAGMA secure_delete = ON; PRAGMA busy_timeout = 10000; \
                             PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Connect {
                url: redacted.clone(),
                reason: e.to_string(),
            })?;
        if backend == Backend::Sqlite {
            // WAL is a property of the file: set once, it stays.
            pool.execute("PRAGMA journal_mode = WAL")
                .await
                .map_err(|e| StoreError::Connect {
                    url: redacted,
                    reason: e.to_string(),
                })?;
        }
        let readers = match readers::sqlite_file(url) {
            Some(file) if backend == Backend::Sqlite => Some(std::sync::Arc::new(
                readers::Readers::open(&file).map_err(|e| StoreError::Connect {
                    url: redact_url(url),
                    reason: e.to_string(),
                })?,
            )),
            _ => None,
        };
        let writer = std::sync::Arc::new(batch::Writer::spawn(pool.clone(), backend));
        let lookups = (backend == Backend::Postgres)
            .then(|| std::sync::Arc::new(scim::UpnLookups::spawn(pool.clone())));
        let statistics = (backend == Backend::Postgres)
            .then(|| std::sync::Arc::new(statistics::Statistics::spawn(pool.clone())));
        Ok(Store {
            pool,
            backend,
            writer,
            readers,
            lookups,
            _statistics: statistics,
        })
    }

    /// Applies every migration not yet applied.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Migrate(e.to_string()))
    }

    /// Whether the database answers and every known migration is applied.
    pub async fn readiness(&self) -> Result<(), StoreError> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        let latest = migrator.iter().map(|m| m.version).max().unwrap_or(0);
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_one(&self.pool)
                .await
                .map_err(|e| {
                    StoreError::NotReady(format!("database unreachable or not migrated: {e}"))
                })?;
        match applied {
            Some(v) if v >= latest => Ok(()),
            other => Err(StoreError::NotReady(format!(
                "migrations not applied (database at {}, binary knows {latest})",
                other.unwrap_or(0)
            ))),
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The SQLite read connections, when the database is a SQLite file.
    pub(crate) fn readers(&self) -> Option<&readers::Readers> {
        self.readers.as_deref()
    }

    /// The batched `userName eq` lookups, on PostgreSQL.
    pub(crate) fn lookups(&self) -> Option<&scim::UpnLookups> {
        self.lookups.as_deref()
    }

    /// The pool, for repositories that live in other crates' modules of this crate.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Commits `set` (all of it or nothing), with whatever other sets are waiting to be
    /// written; returns once it is committed.
    pub async fn commit(&self, set: WriteSet) -> Result<(), StoreError> {
        self.writer.write(set).await
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `$first, $first+1, …`: `n` placeholders for an `IN (…)` list.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn create_sqlite_parent_dir(url: &str) -> Result<(), String> {
    let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    match Path::new(path).parent() {
        Some(parent) if !parent.as_os_str().is_empty() => std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create directory {}: {e}", parent.display())),
        _ => Ok(()),
    }
}
