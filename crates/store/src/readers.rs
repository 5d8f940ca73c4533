//! Read connections to the embedded SQLite database that run a query on the calling thread.
//!
//! Why not sqlx for these: sqlx runs each SQLite connection on a thread of its own, so every
//! query is a message to that thread and a wake-up back, and the store keeps one connection
//! (one writer, its page cache warm), so concurrent reads queue behind it. For the reads that
//! an identity provider sends by the thousand (SCIM's `userName eq` lookup before every
//! create), that hand-off was most of the request's cost (BENCHMARKS.md, "SCIM"). A lookup by
//! an index is tens of microseconds of work, short enough to run inline on an async worker
//! without starving other tasks, and WAL lets these readers run beside the writer while each
//! statement sees every transaction committed before it began (a write that returned is seen
//! by the next read). rusqlite links the same libsqlite3-sys as sqlx: one SQLite in the binary.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rusqlite::{OpenFlags, types::ValueRef};

use crate::StoreError;
use crate::rows::Columns;
use crate::scim::{Bind, FromColumns};

/// How many read connections: enough that each async worker thread finds one free.
fn reader_count() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8)
}

/// How much of the file the read connections map into memory (beyond it, they read it).
const MMAP_BYTES: u64 = 1 << 30;

/// Prepared statements kept per connection (the SCIM filters in use are few shapes).
const STATEMENT_CACHE: usize = 64;

/// A few read-only connections to one SQLite file.
pub(crate) struct Readers {
    connections: Vec<Mutex<rusqlite::Connection>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers")
            .field("connections", &self.connections.len())
            .finish()
    }
}

/// The file a `sqlite://…` URL names, unless it is in memory (then there is nothing to share).
pub(crate) fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" || url.contains("mode=memory") {
        return None;
    }
    Some(PathBuf::from(path))
}

impl Readers {
    /// Opens the read connections to `file`, which the writer has already opened (and put in
    /// WAL mode).
    pub(crate) fn open(file: &Path) -> Result<Readers, StoreError> {
        let connections = (0..reader_count())
            .map(|_| {
                // Read-write flags with `query_only`, not SQLITE_OPEN_READ_ONLY: a read-only
                // connection cannot recover the WAL index if the writer crashed, a read-write
                // one can; `query_only` still refuses any write made through it.
                let conn = rusqlite::Connection::open_with_flags(
                    file,
                    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                conn.busy_timeout(Duration::from_secs(10))?;
                // mmap: a page is read where the OS already caches the file, not copied into
                // each connection's own cache by a read() per miss (the lookups land on random
                // pages of a table larger than a connection's default 2 MB cache). The size is
                // address space, not memory; writes still go through the writer's file calls.
                conn.execute_batch(&format!(
                    "PRAGMA query_only = ON; PRAGMA mmap_size = {MMAP_BYTES};"
                ))?;
                conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
                Ok(Mutex::new(conn))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Readers {
            connections,
            next: AtomicUsize::new(0),
        })
    }

    /// Runs `sql` with `binds` for `$1`, `$2`, … (as sqlx numbers them) and reads each row
    /// as a `T`.
    pub(crate) fn query<T: FromColumns>(
        &self,
        sql: &str,
        binds: &[Bind],
    ) -> Result<Vec<T>, StoreError> {
        let conn = self.connection();
        let mut statement = conn.prepare_cached(sql)?;
        for index in 1..=statement.parameter_count() {
            // SQLite reads `$2` as a parameter named "$2", numbered by where it first occurs
            // in the text; bind it by its name's number, as sqlx does.
            let name = statement.parameter_name(index).unwrap_or_default();
            let number: usize = name
                .strip_prefix('$')
                .and_then(|n| n.parse().ok())
                .filter(|n| (1..=binds.len()).contains(n))
                .ok_or_else(|| StoreError::InvalidInput {
                    field: "query",
                    reason: format!("parameter {name:?} has no value"),
                })?;
            match &binds[number - 1] {
                Bind::Text(t) => statement.raw_bind_parameter(index, t.as_str())?,
                Bind::Int(i) => statement.raw_bind_parameter(index, *i)?,
            }
        }
        let names: Vec<String> = statement
            .column_names()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let mut rows = statement.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(T::from_columns(&Row { row, names: &names })?);
        }
        Ok(out)
    }

    /// A free connection, or (all busy: more threads than connections) the next one's turn.
    fn connection(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.connections.len();
        for i in 0..n {
            if let Ok(guard) = self.connections[(start + i) % n].try_lock() {
                return guard;
            }
        }
        self.connections[start % n]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

/// A row of a [`Readers::query`], its columns found by name as sqlx finds them.
pub(crate) struct Row<'s, 'r> {
    row: &'r rusqlite::Row<'s>,
    names: &'r [String],
}

impl Row<'_, '_> {
    fn value(&self, column: &str) -> Result<ValueRef<'_>, String> {
        let index = self
            .names
            .iter()
            .position(|n| n == column)
            .ok_or_else(|| format!("no column {column:?}"))?;
        self.row.get_ref(index).map_err(|e| e.to_string())
    }
}

impl Columns for Row<'_, '_> {
    fn opt_text(&self, column: &str) -> Result<Option<String>, String> {
        match self.value(column)? {
            ValueRef::Null => Ok(None),
            ValueRef::Text(t) => String::from_utf8(t.to_vec())
                .map(Some)
                .map_err(|e| e.to_string()),
            other => Err(format!("expected text, found {:?}", other.data_type())),
        }
    }

    fn opt_int(&self, column: &str) -> Result<Option<i64>, String> {
        match self.value(column)? {
            ValueRef::Null => Ok(None),
            ValueRef::Integer(i) => Ok(Some(i)),
            other => Err(format!(
                "expected an integer, found {:?}",
                other.data_type()
            )),
        }
    }

    fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, String> {
        match self.value(column)? {
            ValueRef::Null => Ok(None),
            ValueRef::Blob(b) => Ok(Some(b.to_vec())),
            other => Err(format!("expected bytes, found {:?}", other.data_type())),
        }
    }
}
