//! What SCIM (RFC 7644) keeps: the connections' bearer tokens, and users and groups pushed by an
//! identity provider, with their SCIM resource, version and side rows (emails), written together
//! with the event that records each write.

mod groups;
mod lookups;
mod query;
mod tokens;
mod users;

use behalf_domain::{Event, EventId, NewEvent, WorkspaceId, now_millis};
use sqlx::{Any, Transaction};

use crate::rows::{Columns, Reader};
use crate::{Store, StoreError};

pub use groups::{ScimGroupRow, ScimGroupWrite, ScimMember, ScimMembersChange};
pub(crate) use lookups::UpnLookups;
pub(crate) use query::Bind;
pub use query::{
    ScimAttr, ScimAttrType, ScimCond, ScimMulti, ScimOp, ScimQuery, ScimSort, ScimValue,
    Unsupported,
};
pub use tokens::{ScimTokenEntry, ScimTokenGrant};
pub use users::{ScimEmail, ScimUserRow, ScimUserWrite};

/// What a conditional write (PUT, PATCH, DELETE) found.
#[derive(Debug, Clone, PartialEq)]
pub enum ScimWrite<T> {
    Done(T),
    /// No such resource in the connection (or it was DELETEd).
    Gone,
    /// The resource is at another version than the one the write was based on.
    VersionMismatch {
        current: i64,
    },
}

/// One page of a list and how many match in all.
#[derive(Debug, Clone, PartialEq)]
pub struct ScimPage<T> {
    pub resources: Vec<T>,
    pub total: u64,
}

/// Appends `event` inside the transaction of the write it records.
pub(crate) async fn insert_event(
    tx: &mut Transaction<'_, Any>,
    workspace_id: WorkspaceId,
    event: NewEvent,
) -> Result<Event, StoreError> {
    let event = Event {
        id: EventId::new(),
        workspace_id,
        at: now_millis(),
        actor: event.actor,
        action: event.action,
        user_id: event.user_id,
        rp_id: event.rp_id,
        outcome: event.outcome,
        detail: event.detail,
    };
    let detail = serde_json::to_string(&event.detail).unwrap_or_else(|_| "{}".into());
    sqlx::query(
        "INSERT INTO events (id, workspace_id, at, actor, action, user_id, rp_id, outcome, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(event.id.to_string())
    .bind(workspace_id.to_string())
    .bind(event.at)
    .bind(event.actor.as_str())
    .bind(event.action.as_str())
    .bind(event.user_id.map(|u| u.to_string()))
    .bind(event.rp_id.as_deref())
    .bind(event.outcome.as_str())
    .bind(detail)
    .execute(&mut **tx)
    .await?;
    Ok(event)
}

/// Binds the values of a [`query::Sql`] in order.
pub(crate) fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    binds: &[query::Bind],
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    for b in binds {
        query = match b {
            query::Bind::Text(t) => query.bind(t.clone()),
            query::Bind::Int(i) => query.bind(*i),
        };
    }
    query
}

/// The condition of a query as SQL after `first - 1` placeholders already used, or the store's
/// refusal as an input error.
pub(crate) fn where_sql(
    resource: query::Resource,
    filter: Option<&ScimCond>,
    first: usize,
) -> Result<query::Sql, StoreError> {
    let mut sql = query::Sql::new(first);
    match filter {
        None => sql.text.push_str("1 = 1"),
        Some(cond) => query::write_cond(&mut sql, resource, cond, None).map_err(|u| {
            StoreError::InvalidInput {
                field: "filter",
                reason: u.0,
            }
        })?,
    }
    Ok(sql)
}

/// A resource read out of a row of either kind (sqlx's, or the SQLite readers').
pub(crate) trait FromColumns: Sized {
    fn from_columns<R: Columns>(row: &R) -> Result<Self, StoreError>;
}

/// The SCIM columns users and groups both carry, after the entity's own.
pub(crate) const SCIM_COLUMNS: &str = "scim_external_id, scim_version, scim_resource";

impl Store {
    /// One page of the `resource`s `scope` holds (`FROM … WHERE …` with the connection bound
    /// as `$1`) that match `query`'s filter, selecting `columns` in `query`'s order, each row
    /// read as a `T`; and how many match in all.
    pub(crate) async fn scim_page<T: FromColumns>(
        &self,
        resource: query::Resource,
        columns: &str,
        scope: &str,
        connection: behalf_domain::ConnectionId,
        query: &ScimQuery,
    ) -> Result<ScimPage<T>, StoreError> {
        let cond = where_sql(resource, query.filter.as_ref(), 2)?;
        let base = format!("{scope} AND {}", cond.text);
        let mut resources = Vec::new();
        if query.limit > 0 {
            // LIMIT and OFFSET are written into the SQL (typed integers: nothing to inject)
            // rather than bound: SQLite reads a bound LIMIT as a value its plan depends on, so
            // binding it again for the next lookup expires the cached statement and every
            // `userName eq` lookup was parsed and planned anew (7-8 % of the lookup's time).
            // The usual lookup's text is the same every time, so it stays prepared.
            let order = match &query.filter {
                Some(cond) if query::at_most_one(resource, cond) => String::new(),
                _ => query::order_by(resource, query.sort, query.descending),
            };
            let sql = format!(
                "SELECT {columns} {base} {order} LIMIT {} OFFSET {}",
                query.limit.max(0),
                query.offset.max(0)
            );
            let mut binds = Vec::with_capacity(cond.binds.len() + 1);
            binds.push(Bind::Text(connection.to_string()));
            binds.extend(cond.binds.iter().cloned());
            resources = self.scim_rows(sql, &binds).await?;
        }
        let total = self
            .scim_total(&base, &cond, connection, query, resources.len())
            .await?;
        Ok(ScimPage { resources, total })
    }

    /// The rows of a read-only `sql` with `binds` for `$1`, `$2`, …: on the SQLite file's
    /// read connections when there are some (on the calling thread, see `readers`), otherwise
    /// through the pool.
    pub(crate) async fn scim_rows<T: FromColumns>(
        &self,
        sql: String,
        binds: &[Bind],
    ) -> Result<Vec<T>, StoreError> {
        if let Some(readers) = self.readers() {
            return readers.query(&sql, binds);
        }
        let rows = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), binds)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(T::from_columns).collect()
    }

    /// How many match in all: the page says it when it is the whole answer (the usual
    /// `userName eq` lookup, one query); otherwise `base` (`FROM … WHERE …`) is counted.
    async fn scim_total(
        &self,
        base: &str,
        cond: &query::Sql,
        connection: behalf_domain::ConnectionId,
        query: &ScimQuery,
        got: usize,
    ) -> Result<u64, StoreError> {
        if query.offset == 0 && query.limit > 0 && (got as i64) < query.limit {
            return Ok(got as u64);
        }
        let sql = format!("SELECT COUNT(*) AS n {base}");
        let q = bind_all(
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(connection.to_string()),
            &cond.binds,
        );
        let row = q.fetch_one(self.pool()).await?;
        Ok(Reader::new(&row, "scim").int("n")?.max(0) as u64)
    }
}
