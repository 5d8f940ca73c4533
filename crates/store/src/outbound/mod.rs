//! Outbound writes: changes an admin makes in Behalf, queued to be written to Entra ID.
//!
//! Behalf's own rows change when the admin asks (a new user row, a new display name, a
//! membership), in the same transaction as the queued write; a deletion removes Behalf's row once
//! Entra ID has deleted the object. The queue is leased as `provisioning_items` is (see the
//! crate's persistence rules): every update checks that the writer still holds the lease.

mod changes;

use behalf_domain::{
    ConnectionId, GroupId, UserId, WorkspaceId, WriteId, WriteKind, WriteState, now_millis,
};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Any, AssertSqlSafe, Transaction};

use crate::rows::{Reader, flag};
use crate::{Backend, Store, StoreError};

const WRITE_COLUMNS: &str = "seq, id, workspace_id, connection_id, kind, user_id, group_id, subject, payload, \
     state, attempts, next_attempt_at, graph_id, error, error_code, request_id, created_by, created_at, updated_at";

/// One queued write to Entra ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryWrite {
    pub id: WriteId,
    /// The order writes were asked for in.
    pub seq: i64,
    pub workspace_id: WorkspaceId,
    pub connection_id: ConnectionId,
    pub kind: WriteKind,
    pub user_id: Option<UserId>,
    pub group_id: Option<GroupId>,
    /// Whom it is about, for people: a UPN, a group's name, `group ← UPN`.
    pub subject: String,
    /// What to write (Graph's property names), never a password.
    pub payload: Value,
    pub state: WriteState,
    /// Claims so far (a deferral by Retry-After does not count).
    pub attempts: i64,
    /// Not sent before this (ms).
    pub next_attempt_at: i64,
    /// The Entra object id the write created or addressed, once known.
    pub graph_id: Option<String>,
    /// The last failure, in words.
    pub error: Option<String>,
    pub error_code: Option<String>,
    pub request_id: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

fn write_from(row: &AnyRow) -> Result<DirectoryWrite, StoreError> {
    let r = Reader::new(row, "directory_writes");
    Ok(DirectoryWrite {
        seq: r.int("seq")?,
        id: r.parse("id")?,
        workspace_id: r.parse("workspace_id")?,
        connection_id: r.parse("connection_id")?,
        kind: r.parse("kind")?,
        user_id: r.opt_parse("user_id")?,
        group_id: r.opt_parse("group_id")?,
        subject: r.text("subject")?,
        payload: r.json("payload")?,
        state: r.parse("state")?,
        attempts: r.int("attempts")?,
        next_attempt_at: r.int("next_attempt_at")?,
        graph_id: r.opt_text("graph_id")?,
        error: r.opt_text("error")?,
        error_code: r.opt_text("error_code")?,
        request_id: r.opt_text("request_id")?,
        created_by: r.text("created_by")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
    })
}

/// A failure as Graph said it, in words.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteFailure {
    pub message: String,
    pub code: Option<String>,
    pub request_id: Option<String>,
}

/// How one attempt at a write ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteResult {
    /// It is in Entra ID. `graph_id`: the object created or addressed.
    Done { graph_id: Option<String> },
    /// Graph asked for time (a 429's or 503's `Retry-After`): not sent before `at`, and the
    /// claim does not count as an attempt.
    Deferred { at: i64 },
    /// A transient failure: tried again at `at` (backoff). `sent`: the request may have reached
    /// Graph (no answer), so a create stays `sending` and is reconciled by lookup.
    Retry {
        at: i64,
        failure: WriteFailure,
        sent: bool,
    },
    /// Refused (a conflict, a bad value) or too many attempts: waits for an admin.
    Failed { failure: WriteFailure },
}

/// A change to a Behalf user, as an admin asked for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserChange {
    pub display_name: Option<String>,
    /// `Some(None)` clears it.
    pub department: Option<Option<String>>,
    pub enabled: Option<bool>,
}

impl UserChange {
    pub fn is_empty(&self) -> bool {
        self.display_name.is_none() && self.department.is_none() && self.enabled.is_none()
    }
}

/// What a queued write is, before it has an id.
pub(super) struct NewWrite<'a> {
    kind: WriteKind,
    user_id: Option<UserId>,
    group_id: Option<GroupId>,
    subject: String,
    payload: &'a Value,
}

/// The open writes that keep `w` waiting: earlier ones on its user, or (when either is a
/// group's creation or deletion) on its group.
const BLOCKED_BY_EARLIER: &str = "EXISTS (SELECT 1 FROM directory_writes e WHERE e.workspace_id = w.workspace_id \
     AND e.seq < w.seq AND e.state IN ('pending', 'sending', 'failed') AND \
     ((w.user_id IS NOT NULL AND e.user_id = w.user_id) OR (w.group_id IS NOT NULL AND e.group_id = w.group_id \
       AND (e.kind IN ('create_group', 'delete_group') OR w.kind IN ('create_group', 'delete_group')))))";

pub(super) async fn insert_write(
    tx: &mut Transaction<'_, Any>,
    workspace_id: WorkspaceId,
    connection_id: ConnectionId,
    new: NewWrite<'_>,
    actor: &str,
) -> Result<DirectoryWrite, StoreError> {
    let now = now_millis();
    let sql = format!(
        "INSERT INTO directory_writes (id, workspace_id, connection_id, kind, user_id, group_id, subject, payload, \
         state, attempts, next_attempt_at, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', 0, $9, $10, $9, $9) RETURNING {WRITE_COLUMNS}"
    );
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(WriteId::new().to_string())
        .bind(workspace_id.to_string())
        .bind(connection_id.to_string())
        .bind(new.kind.as_str())
        .bind(new.user_id.map(|u| u.to_string()))
        .bind(new.group_id.map(|g| g.to_string()))
        .bind(new.subject)
        .bind(new.payload.to_string())
        .bind(now)
        .bind(actor)
        .fetch_one(&mut **tx)
        .await?;
    write_from(&row)
}

fn lease_lost(id: WriteId) -> StoreError {
    StoreError::LeaseLost {
        what: format!("directory write {id}"),
    }
}

impl Store {
    /// Leases up to `limit` writes that are due and wait on no earlier write, in order.
    pub async fn claim_writes(
        &self,
        workspace_id: WorkspaceId,
        worker: &str,
        limit: i64,
        lease_ms: i64,
    ) -> Result<Vec<DirectoryWrite>, StoreError> {
        let now = now_millis();
        let limit = limit.max(0);
        let skip_locked = match self.backend() {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE directory_writes SET locked_by = $1, locked_until = $2, attempts = attempts + 1, updated_at = $4 \
             WHERE id IN (SELECT w.id FROM directory_writes w WHERE w.workspace_id = $3 \
             AND w.state IN ('pending', 'sending') AND w.next_attempt_at <= $4 \
             AND (w.locked_until IS NULL OR w.locked_until < $4) AND NOT {BLOCKED_BY_EARLIER} \
             ORDER BY w.seq LIMIT {limit} {skip_locked}) RETURNING {WRITE_COLUMNS}"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(worker)
            .bind(now + lease_ms)
            .bind(workspace_id.to_string())
            .bind(now)
            .fetch_all(self.pool())
            .await?;
        let mut writes: Vec<DirectoryWrite> =
            rows.iter().map(write_from).collect::<Result<_, _>>()?;
        writes.sort_by_key(|w| w.seq);
        Ok(writes)
    }

    /// Leases the write `id` if it is due and waits on no earlier write (as
    /// [`Store::claim_writes`] would claim it); `None` if not.
    pub async fn claim_write(
        &self,
        workspace_id: WorkspaceId,
        id: WriteId,
        worker: &str,
        lease_ms: i64,
    ) -> Result<Option<DirectoryWrite>, StoreError> {
        let now = now_millis();
        let sql = format!(
            "UPDATE directory_writes SET locked_by = $1, locked_until = $2, attempts = attempts + 1, updated_at = $4 \
             WHERE id IN (SELECT w.id FROM directory_writes w WHERE w.workspace_id = $3 AND w.id = $5 \
             AND w.state IN ('pending', 'sending') AND w.next_attempt_at <= $4 \
             AND (w.locked_until IS NULL OR w.locked_until < $4) AND NOT {BLOCKED_BY_EARLIER}) \
             RETURNING {WRITE_COLUMNS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(worker)
            .bind(now + lease_ms)
            .bind(workspace_id.to_string())
            .bind(now)
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(write_from).transpose()
    }

    /// Records that a create is about to be sent: from now on a run that finds it (after a
    /// crash) looks the object up before sending anything.
    pub async fn mark_write_sending(&self, id: WriteId, worker: &str) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE directory_writes SET state = 'sending', updated_at = $1 WHERE id = $2 AND locked_by = $3",
        )
        .bind(now_millis())
        .bind(id.to_string())
        .bind(worker)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(lease_lost(id));
        }
        Ok(())
    }

    /// Records how an attempt ended and gives the lease back. A write done also updates
    /// Behalf's rows: the Entra id of a created user or group; a deleted one's row removed.
    pub async fn finish_write(
        &self,
        write: &DirectoryWrite,
        worker: &str,
        result: &WriteResult,
    ) -> Result<(), StoreError> {
        let now = now_millis();
        let mut tx = self.pool().begin().await?;
        let id = write.id.to_string();
        let done = match result {
            WriteResult::Done { graph_id } => {
                sqlx::query(
                    "UPDATE directory_writes SET state = 'done', graph_id = COALESCE($1, graph_id), error = NULL, \
                     error_code = NULL, request_id = NULL, locked_by = NULL, locked_until = NULL, updated_at = $2 \
                     WHERE id = $3 AND locked_by = $4",
                )
                .bind(graph_id.as_deref())
                .bind(now)
                .bind(&id)
                .bind(worker)
                .execute(&mut *tx)
                .await?
            }
            WriteResult::Deferred { at } => {
                sqlx::query(
                    "UPDATE directory_writes SET next_attempt_at = $1, locked_by = NULL, locked_until = NULL, \
                     attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, updated_at = $2 \
                     WHERE id = $3 AND locked_by = $4",
                )
                .bind(*at)
                .bind(now)
                .bind(&id)
                .bind(worker)
                .execute(&mut *tx)
                .await?
            }
            WriteResult::Retry { at, failure, sent } => {
                sqlx::query(
                    "UPDATE directory_writes SET next_attempt_at = $1, error = $2, error_code = $3, request_id = $4, \
                     state = CASE WHEN $5 = 1 THEN state ELSE 'pending' END, \
                     locked_by = NULL, locked_until = NULL, updated_at = $6 WHERE id = $7 AND locked_by = $8",
                )
                .bind(*at)
                .bind(failure.message.as_str())
                .bind(failure.code.as_deref())
                .bind(failure.request_id.as_deref())
                .bind(flag(*sent))
                .bind(now)
                .bind(&id)
                .bind(worker)
                .execute(&mut *tx)
                .await?
            }
            WriteResult::Failed { failure } => {
                sqlx::query(
                    "UPDATE directory_writes SET state = 'failed', error = $1, error_code = $2, request_id = $3, \
                     locked_by = NULL, locked_until = NULL, updated_at = $4 WHERE id = $5 AND locked_by = $6",
                )
                .bind(failure.message.as_str())
                .bind(failure.code.as_deref())
                .bind(failure.request_id.as_deref())
                .bind(now)
                .bind(&id)
                .bind(worker)
                .execute(&mut *tx)
                .await?
            }
        };
        if done.rows_affected() == 0 {
            return Err(lease_lost(write.id));
        }
        if let WriteResult::Done { graph_id } = result {
            apply_done(&mut tx, write, graph_id.as_deref(), now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A write by id, in this workspace.
    pub async fn get_write(
        &self,
        workspace_id: WorkspaceId,
        id: WriteId,
    ) -> Result<DirectoryWrite, StoreError> {
        let sql = format!(
            "SELECT {WRITE_COLUMNS} FROM directory_writes WHERE id = $1 AND workspace_id = $2"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_string())
            .bind(workspace_id.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref()
            .map(write_from)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound {
                kind: "directory write",
                key: id.to_string(),
            })
    }

    /// The workspace's writes in these states (all when empty), in the order they were asked
    /// for, at most `limit`.
    pub async fn list_writes(
        &self,
        workspace_id: WorkspaceId,
        states: &[WriteState],
        limit: i64,
    ) -> Result<Vec<DirectoryWrite>, StoreError> {
        let all: Vec<WriteState> = if states.is_empty() {
            WriteState::ALL.to_vec()
        } else {
            states.to_vec()
        };
        let sql = format!(
            "SELECT {WRITE_COLUMNS} FROM directory_writes WHERE workspace_id = $1 AND state IN ({}) \
             ORDER BY seq LIMIT {}",
            crate::placeholders(2, all.len()),
            limit.max(0)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(workspace_id.to_string());
        for s in &all {
            query = query.bind(s.as_str());
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(write_from).collect()
    }

    /// The writes of one user or group, in order.
    pub async fn writes_of(
        &self,
        user: Option<UserId>,
        group: Option<GroupId>,
    ) -> Result<Vec<DirectoryWrite>, StoreError> {
        let sql = format!(
            "SELECT {WRITE_COLUMNS} FROM directory_writes WHERE user_id = $1 OR group_id = $2 ORDER BY seq"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(user.map(|u| u.to_string()).unwrap_or_default())
            .bind(group.map(|g| g.to_string()).unwrap_or_default())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(write_from).collect()
    }

    /// How many of the workspace's writes are in each state.
    pub async fn write_counts(
        &self,
        workspace_id: WorkspaceId,
    ) -> Result<Vec<(WriteState, i64)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT state, COUNT(*) FROM directory_writes WHERE workspace_id = $1 GROUP BY state ORDER BY state",
        )
        .bind(workspace_id.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(s, n)| {
                s.parse()
                    .map(|s| (s, n))
                    .map_err(|e| crate::error::corrupt("directory_writes", e))
            })
            .collect()
    }

    /// How long until the first pending write that waits on time (a Retry-After, a backoff, a
    /// lease) may be claimed (ms); `None` when none waits on time.
    pub async fn next_write_in(
        &self,
        workspace_id: WorkspaceId,
    ) -> Result<Option<i64>, StoreError> {
        let now = now_millis();
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(CASE WHEN locked_until IS NOT NULL AND locked_until > next_attempt_at \
             THEN locked_until ELSE next_attempt_at END) FROM directory_writes \
             WHERE workspace_id = $1 AND state IN ('pending', 'sending') \
             AND (next_attempt_at > $2 OR locked_until > $2)",
        )
        .bind(workspace_id.to_string())
        .bind(now)
        .fetch_one(self.pool())
        .await?;
        Ok(at.map(|t| (t - now).max(0)))
    }

    /// A failed write goes back to the queue, due now, its attempts counted afresh.
    pub async fn retry_write(
        &self,
        workspace_id: WorkspaceId,
        id: WriteId,
    ) -> Result<DirectoryWrite, StoreError> {
        let now = now_millis();
        let done = sqlx::query(
            "UPDATE directory_writes SET state = 'pending', attempts = 0, next_attempt_at = $1, updated_at = $1 \
             WHERE id = $2 AND workspace_id = $3 AND state = 'failed'",
        )
        .bind(now)
        .bind(id.to_string())
        .bind(workspace_id.to_string())
        .execute(self.pool())
        .await?;
        let write = self.get_write(workspace_id, id).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::LeaseLost {
                what: format!("directory write {id} is {}, not failed", write.state),
            });
        }
        Ok(write)
    }

    /// Gives up a write that is not being sent now (pending or failed): it will not be sent,
    /// and later writes on its user or group no longer wait on it.
    pub async fn discard_write(
        &self,
        workspace_id: WorkspaceId,
        id: WriteId,
    ) -> Result<DirectoryWrite, StoreError> {
        let now = now_millis();
        let done = sqlx::query(
            "UPDATE directory_writes SET state = 'discarded', updated_at = $1 WHERE id = $2 AND workspace_id = $3 \
             AND state IN ('pending', 'failed') AND (locked_until IS NULL OR locked_until < $1 OR locked_by IS NULL)",
        )
        .bind(now)
        .bind(id.to_string())
        .bind(workspace_id.to_string())
        .execute(self.pool())
        .await?;
        let write = self.get_write(workspace_id, id).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::LeaseLost {
                what: format!(
                    "directory write {id} is {} (or being sent now): only a pending or failed write can be discarded",
                    write.state
                ),
            });
        }
        Ok(write)
    }

    /// Workers holding unexpired leases on the workspace's writes.
    pub async fn write_lease_holders(
        &self,
        workspace_id: WorkspaceId,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT locked_by FROM directory_writes WHERE workspace_id = $1 AND locked_by IS NOT NULL \
             AND locked_until >= $2",
        )
        .bind(workspace_id.to_string())
        .bind(now_millis())
        .fetch_all(self.pool())
        .await?)
    }

    /// Takes back the leases of a worker that died: its writes are claimable after
    /// `grace_ms` (a create it may have sent stays `sending`, and is looked up first). The wait:
    /// the dead worker may have been told to wait (a 429's Retry-After) and died before it
    /// recorded it; the store cannot tell, so none of its writes goes at once.
    pub async fn release_write_leases_of(
        &self,
        workspace_id: WorkspaceId,
        worker: &str,
        grace_ms: i64,
    ) -> Result<u64, StoreError> {
        let not_before = now_millis().saturating_add(grace_ms.max(0));
        Ok(sqlx::query(
            "UPDATE directory_writes SET locked_by = NULL, locked_until = NULL, \
             next_attempt_at = CASE WHEN next_attempt_at > $3 THEN next_attempt_at ELSE $3 END \
             WHERE workspace_id = $1 AND locked_by = $2",
        )
        .bind(workspace_id.to_string())
        .bind(worker)
        .bind(not_before)
        .execute(self.pool())
        .await?
        .rows_affected())
    }
}

/// Behalf's side of a write that reached Entra ID.
async fn apply_done(
    tx: &mut Transaction<'_, Any>,
    write: &DirectoryWrite,
    graph_id: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    match (write.kind, write.user_id, write.group_id) {
        (WriteKind::CreateUser, Some(user), _) => {
            sqlx::query("UPDATE users SET external_id = $1, updated_at = $2 WHERE id = $3")
                .bind(graph_id)
                .bind(now)
                .bind(user.to_string())
                .execute(&mut **tx)
                .await?;
        }
        (WriteKind::CreateGroup, _, Some(group)) => {
            sqlx::query(
                "UPDATE directory_groups SET external_id = $1, updated_at = $2 WHERE id = $3",
            )
            .bind(graph_id)
            .bind(now)
            .bind(group.to_string())
            .execute(&mut **tx)
            .await?;
        }
        (WriteKind::DeleteUser, Some(user), _) => {
            let user = user.to_string();
            sqlx::query("DELETE FROM group_members WHERE user_id = $1")
                .bind(&user)
                .execute(&mut **tx)
                .await?;
            // A user with passkeys, keys or job items keeps its row (they refer to it), marked
            // deprovisioned and without an Entra id; one without goes.
            let referenced: i64 = sqlx::query_scalar(
                "SELECT (SELECT COUNT(*) FROM passkeys WHERE user_id = $1) + \
                 (SELECT COUNT(*) FROM security_keys WHERE user_id = $1) + \
                 (SELECT COUNT(*) FROM provisioning_items WHERE user_id = $1)",
            )
            .bind(&user)
            .fetch_one(&mut **tx)
            .await?;
            if referenced == 0 {
                sqlx::query("DELETE FROM scim_user_emails WHERE user_id = $1")
                    .bind(&user)
                    .execute(&mut **tx)
                    .await?;
                sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(&user)
                    .execute(&mut **tx)
                    .await?;
            } else {
                sqlx::query(
                    "UPDATE users SET external_id = NULL, enabled = 0, lifecycle = 'deprovisioned', updated_at = $1 \
                     WHERE id = $2",
                )
                .bind(now)
                .bind(&user)
                .execute(&mut **tx)
                .await?;
            }
        }
        (WriteKind::DeleteGroup, _, Some(group)) => {
            let group = group.to_string();
            sqlx::query("DELETE FROM group_members WHERE group_id = $1")
                .bind(&group)
                .execute(&mut **tx)
                .await?;
            sqlx::query("DELETE FROM directory_groups WHERE id = $1")
                .bind(&group)
                .execute(&mut **tx)
                .await?;
        }
        _ => {}
    }
    Ok(())
}
