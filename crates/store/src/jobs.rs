//! Provisioning jobs and their items: a work queue with leases.
//!
//! Several workers (threads or Behalf instances on one PostgreSQL) claim items by setting a lease
//! (`locked_by`, `locked_until`). A worker that dies leaves a lease that simply expires, and the
//! item is claimed again; every state change checks that the lease is still the writer's own, so a
//! worker whose lease was taken over cannot overwrite the newer owner's progress.

use std::collections::BTreeMap;

use behalf_domain::{
    Item, ItemId, ItemOutcome, ItemPass, ItemState, Job, JobId, JobState, Upn, UserId, WorkspaceId,
    now_millis,
};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

use crate::rows::Reader;
use crate::{Backend, Store, StoreError, WriteSet};

const JOB_COLUMNS: &str =
    "id, workspace_id, rp_id, options, state, created_by, created_at, updated_at";
const ITEM_COLUMNS: &str = "id, job_id, workspace_id, user_id, state, reason, error_code, request_id, attempts, passkey_id, updated_at, pass_method_id, pass_issued_at, pass_expires_at";
const OPEN_STATES: &str =
    "('pending', 'options_fetched', 'credential_created', 'waiting_for_user')";
/// The open states whose deferral is a relying party's `Retry-After` (or a dead holder's hold),
/// not a wait for a person.
const RETRY_STATES: &str = "('pending', 'options_fetched', 'credential_created')";

fn job_from(row: &AnyRow) -> Result<Job, StoreError> {
    let r = Reader::new(row, "provisioning_jobs");
    Ok(Job {
        id: r.parse("id")?,
        workspace_id: r.parse("workspace_id")?,
        rp_id: r.text("rp_id")?,
        options: r.json("options")?,
        state: r.parse("state")?,
        created_by: r.text("created_by")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
    })
}

fn item_from(row: &AnyRow) -> Result<Item, StoreError> {
    let r = Reader::new(row, "provisioning_items");
    Ok(Item {
        id: r.parse("id")?,
        job_id: r.parse("job_id")?,
        workspace_id: r.parse("workspace_id")?,
        user_id: r.parse("user_id")?,
        state: r.parse("state")?,
        reason: r.opt_text("reason")?,
        error_code: r.opt_text("error_code")?,
        request_id: r.opt_text("request_id")?,
        attempts: r.int("attempts")?,
        passkey_id: r.opt_parse("passkey_id")?,
        pass: match (
            r.opt_text("pass_method_id")?,
            r.opt_int("pass_issued_at")?,
            r.opt_int("pass_expires_at")?,
        ) {
            (Some(method_id), Some(issued_at), Some(expires_at)) => Some(ItemPass {
                method_id,
                issued_at,
                expires_at,
            }),
            _ => None,
        },
        updated_at: r.int("updated_at")?,
    })
}

/// A job's item as the job page lists it: with whom it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobItemRow {
    pub item: Item,
    pub upn: Upn,
}

/// How many items of a job are in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobCounts(pub BTreeMap<ItemState, i64>);

impl JobCounts {
    pub fn get(&self, state: ItemState) -> i64 {
        self.0.get(&state).copied().unwrap_or(0)
    }

    pub fn total(&self) -> i64 {
        self.0.values().sum()
    }

    /// Items not yet registered, failed or skipped.
    pub fn open(&self) -> i64 {
        self.0
            .iter()
            .filter(|(s, _)| !s.is_final())
            .map(|(_, n)| n)
            .sum()
    }
}

impl Store {
    /// Creates a job with one pending item per user (duplicates collapse to one).
    pub async fn create_job(
        &self,
        workspace_id: WorkspaceId,
        rp_id: &str,
        options: &serde_json::Value,
        created_by: &str,
        users: &[UserId],
    ) -> Result<Job, StoreError> {
        let mut tx = self.pool().begin().await?;
        let job = insert_job(&mut tx, workspace_id, rp_id, options, created_by, users).await?;
        tx.commit().await?;
        Ok(job)
    }

    /// Adds users to an open job (those already in it are left as they are). Returns how many were new.
    pub async fn add_job_items(&self, job: &Job, users: &[UserId]) -> Result<u64, StoreError> {
        let mut tx = self.pool().begin().await?;
        let added = insert_items(&mut tx, job, users, now_millis()).await?;
        tx.commit().await?;
        Ok(added)
    }

    pub async fn get_job(&self, id: JobId) -> Result<Job, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM provisioning_jobs WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref()
            .map(job_from)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound {
                kind: "provisioning job",
                key: id.to_string(),
            })
    }

    /// The newest open job on `rp_id` whose options carry `kind` (e.g. `"automatic"`), to resume.
    pub async fn find_open_job(
        &self,
        workspace_id: WorkspaceId,
        rp_id: &str,
        kind: &str,
    ) -> Result<Option<Job>, StoreError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM provisioning_jobs WHERE workspace_id = $1 AND rp_id = $2 AND state = 'open' \
             ORDER BY created_at DESC, id DESC"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(workspace_id.to_string())
            .bind(rp_id)
            .fetch_all(self.pool())
            .await?;
        for row in &rows {
            let job = job_from(row)?;
            if job.options.get("kind").and_then(|k| k.as_str()) == Some(kind) {
                return Ok(Some(job));
            }
        }
        Ok(None)
    }

    pub async fn set_job_state(&self, id: JobId, state: JobState) -> Result<(), StoreError> {
        sqlx::query("UPDATE provisioning_jobs SET state = $1, updated_at = $2 WHERE id = $3")
            .bind(state.as_str())
            .bind(now_millis())
            .bind(id.to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Leases up to `limit` unfinished items whose lease is free or expired to `worker`.
    pub async fn claim_items(
        &self,
        job_id: JobId,
        worker: &str,
        limit: i64,
        lease_ms: i64,
    ) -> Result<Vec<Item>, StoreError> {
        let now = now_millis();
        let limit = limit.max(0);
        // Any claimable items, in no particular order: `ORDER BY id` made every claim sort all
        // of the job's open items (quadratic over a job). The limit is spliced in, not bound:
        // SQLite's planner reads a bound LIMIT's value, so rebinding it would recompile the
        // statement at every claim. PostgreSQL: concurrent claimers skip each other's rows
        // instead of waiting or double claiming. SQLite: the statement runs under the
        // database's single write lock, so the sub-select and the update cannot interleave.
        let skip_locked = match self.backend() {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        // A cancelled job's items are not claimed any more, so a run in progress stops at its
        // next claim.
        let sql = format!(
            "UPDATE provisioning_items SET locked_by = $1, locked_until = $2, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM provisioning_items WHERE job_id = $3 AND state IN {OPEN_STATES} \
             AND (locked_until IS NULL OR locked_until < $4) \
             AND EXISTS (SELECT 1 FROM provisioning_jobs WHERE id = $3 AND state = 'open') \
             LIMIT {limit} {skip_locked}) \
             RETURNING {ITEM_COLUMNS}"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(worker)
            .bind(now + lease_ms)
            .bind(job_id.to_string())
            .bind(now)
            .fetch_all(self.pool())
            .await?;
        let mut items: Vec<Item> = rows.iter().map(item_from).collect::<Result<_, _>>()?;
        items.sort_by_key(|i| i.id);
        Ok(items)
    }

    /// Moves a leased item to `state`. A final state also releases the lease. Fails with
    /// [`StoreError::LeaseLost`] when `worker` no longer holds the lease.
    pub async fn update_item(
        &self,
        id: ItemId,
        worker: &str,
        state: ItemState,
        outcome: &ItemOutcome,
    ) -> Result<(), StoreError> {
        let mut set = WriteSet::new();
        set.update_item(id, worker, state, outcome);
        self.commit(set).await
    }

    /// Gives back leased items that were never worked on (a run stopped before reaching them):
    /// claimable now, and their claim does not count as an attempt.
    pub async fn release_unstarted_items(
        &self,
        ids: &[ItemId],
        worker: &str,
    ) -> Result<u64, StoreError> {
        let mut released = 0;
        for chunk in ids.chunks(500) {
            let sql = format!(
                "UPDATE provisioning_items SET locked_by = NULL, locked_until = NULL, \
                 attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END \
                 WHERE locked_by = $1 AND id IN ({})",
                crate::placeholders(2, chunk.len())
            );
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(worker);
            for id in chunk {
                query = query.bind(id.to_string());
            }
            released += query.execute(self.pool()).await?.rows_affected();
        }
        Ok(released)
    }

    /// Gives back a lease without changing the state (a clean stop), so the item is claimable now.
    pub async fn release_item(&self, id: ItemId, worker: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE provisioning_items SET locked_by = NULL, locked_until = NULL WHERE id = $1 AND locked_by = $2",
        )
        .bind(id.to_string())
        .bind(worker)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Gives back a lease the relying party asked to wait on (a 429's or 503's `Retry-After`):
    /// the item is not claimable for `after_ms`, by any run — the time is kept with the item,
    /// in `locked_until` with no holder, so a run started after a crash does not send the
    /// request early either. The claim that led here does not count as an attempt: the RP
    /// refused nothing, it asked for time.
    pub async fn defer_item(
        &self,
        id: ItemId,
        worker: &str,
        after_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE provisioning_items SET locked_by = NULL, locked_until = $1, \
             attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END \
             WHERE id = $2 AND locked_by = $3",
        )
        .bind(now_millis().saturating_add(after_ms.max(0)))
        .bind(id.to_string())
        .bind(worker)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Extends every lease `worker` holds on the job's unfinished items, so that a worker
    /// waiting on a slow or throttled relying party keeps what it is working on. Returns how many.
    pub async fn renew_leases(
        &self,
        job_id: JobId,
        worker: &str,
        lease_ms: i64,
    ) -> Result<u64, StoreError> {
        let sql = format!(
            "UPDATE provisioning_items SET locked_until = $1 WHERE job_id = $2 AND locked_by = $3 \
             AND state IN {OPEN_STATES}"
        );
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(now_millis() + lease_ms)
            .bind(job_id.to_string())
            .bind(worker)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// The workspace's open jobs, oldest first: what the server's workers pick up.
    pub async fn open_jobs(&self, workspace_id: WorkspaceId) -> Result<Vec<Job>, StoreError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM provisioning_jobs WHERE workspace_id = $1 AND state = 'open' \
             ORDER BY created_at, id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(workspace_id.to_string())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(job_from).collect()
    }

    /// How long until the first of the job's deferred items (see [`Store::defer_item`]) may be
    /// claimed, in ms (0 when one is due already); `None` when none is waiting (or the job is no
    /// longer open).
    pub async fn next_deferred_in(&self, job_id: JobId) -> Result<Option<i64>, StoreError> {
        self.next_deferred_of(job_id, OPEN_STATES).await
    }

    /// As [`Store::next_deferred_in`], leaving out items `waiting_for_user`: those wait for a
    /// person (the manual path's next look at their methods), the others only for a
    /// `Retry-After` or a dead holder's hold.
    pub async fn next_retry_in(&self, job_id: JobId) -> Result<Option<i64>, StoreError> {
        self.next_deferred_of(job_id, RETRY_STATES).await
    }

    async fn next_deferred_of(
        &self,
        job_id: JobId,
        states: &'static str,
    ) -> Result<Option<i64>, StoreError> {
        // Every deferral counts, also one that has run out since the caller's last claim: a
        // bound of `locked_until >= now` here missed an item that fell due between the claim
        // (`locked_until < now` then) and this query, and a run ended with the item still open.
        // One already due is answered as 0, and the caller claims it.
        let sql = format!(
            "SELECT MIN(locked_until) FROM provisioning_items WHERE job_id = $1 AND state IN {states} \
             AND locked_by IS NULL AND locked_until IS NOT NULL \
             AND EXISTS (SELECT 1 FROM provisioning_jobs WHERE id = $1 AND state = 'open')"
        );
        let at: Option<i64> = sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(job_id.to_string())
            .fetch_one(self.pool())
            .await?;
        let now = now_millis();
        Ok(at.map(|t| (t - now).max(0)))
    }

    /// How long until the last of the job's deferred items may be claimed, in ms (0 when none
    /// is waiting): the longest `Retry-After` the job is still honouring. Items waiting for
    /// their user (the manual path's next look) are no `Retry-After` and do not count.
    pub async fn longest_deferral_in(&self, job_id: JobId) -> Result<i64, StoreError> {
        let now = now_millis();
        let sql = format!(
            "SELECT MAX(locked_until) FROM provisioning_items WHERE job_id = $1 AND state IN {RETRY_STATES} \
             AND locked_by IS NULL AND locked_until >= $2"
        );
        let at: Option<i64> = sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(job_id.to_string())
            .bind(now)
            .fetch_one(self.pool())
            .await?;
        Ok(at.map_or(0, |t| (t - now).max(0)))
    }

    /// Workers holding unexpired leases on a job's unfinished items.
    pub async fn lease_holders(&self, job_id: JobId) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT locked_by FROM provisioning_items WHERE job_id = $1 AND locked_by IS NOT NULL \
             AND locked_until >= $2",
        )
        .bind(job_id.to_string())
        .bind(now_millis())
        .fetch_all(self.pool())
        .await?)
    }

    /// Releases every lease `worker` holds on the job (the worker is known to be dead); its
    /// items may be claimed again in `hold_ms` (0: at once), by any run, as after
    /// [`Store::defer_item`].
    pub async fn release_leases_of(
        &self,
        job_id: JobId,
        worker: &str,
        hold_ms: i64,
    ) -> Result<u64, StoreError> {
        let until = (hold_ms > 0).then(|| now_millis().saturating_add(hold_ms));
        let done = sqlx::query(
            "UPDATE provisioning_items SET locked_by = NULL, locked_until = $1 WHERE job_id = $2 AND locked_by = $3",
        )
        .bind(until)
        .bind(job_id.to_string())
        .bind(worker)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Puts failed items of a job back to `pending` (a re-run retries what failed before; on
    /// the manual path, with a new pass: the old one's record goes).
    pub async fn retry_failed_items(&self, job_id: JobId) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE provisioning_items SET state = 'pending', reason = NULL, error_code = NULL, request_id = NULL, \
             pass_method_id = NULL, pass_issued_at = NULL, pass_expires_at = NULL, \
             updated_at = $1 WHERE job_id = $2 AND state = 'failed'",
        )
        .bind(now_millis())
        .bind(job_id.to_string())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn job_counts(&self, job_id: JobId) -> Result<JobCounts, StoreError> {
        let rows = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM provisioning_items WHERE job_id = $1 GROUP BY state",
        )
        .bind(job_id.to_string())
        .fetch_all(self.pool())
        .await?;
        let mut counts = JobCounts::default();
        for row in &rows {
            let r = Reader::new(row, "provisioning_items");
            counts.0.insert(r.parse("state")?, r.int("n")?);
        }
        Ok(counts)
    }

    /// The workspace's jobs, newest first, `limit` of them (at most 500) older than `before`.
    pub async fn list_jobs(
        &self,
        workspace_id: WorkspaceId,
        limit: u32,
        before: Option<JobId>,
    ) -> Result<Vec<Job>, StoreError> {
        // Job ids are UUID v7: their text sorts by creation time, so the id is the page key.
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM provisioning_jobs WHERE workspace_id = $1 {} ORDER BY id DESC LIMIT $2",
            if before.is_some() { "AND id < $3" } else { "" }
        );
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind(workspace_id.to_string())
            .bind(i64::from(limit.min(500)));
        if let Some(before) = before {
            query = query.bind(before.to_string());
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(job_from).collect()
    }

    /// One page of a job's items in id order after `after`, in `state` if given, each with
    /// its user's UPN; `limit` of them (at most 500).
    pub async fn job_items(
        &self,
        job_id: JobId,
        state: Option<ItemState>,
        after: Option<ItemId>,
        limit: u32,
    ) -> Result<Vec<JobItemRow>, StoreError> {
        let item_columns: Vec<String> =
            ITEM_COLUMNS.split(", ").map(|c| format!("i.{c}")).collect();
        let sql = format!(
            "SELECT {}, u.upn FROM provisioning_items i JOIN users u ON u.id = i.user_id \
             WHERE i.job_id = $1 AND i.id > $2 {} ORDER BY i.id LIMIT $3",
            item_columns.join(", "),
            if state.is_some() {
                "AND i.state = $4"
            } else {
                ""
            }
        );
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind(job_id.to_string())
            .bind(after.map(|a| a.to_string()).unwrap_or_default())
            .bind(i64::from(limit.min(500)));
        if let Some(state) = state {
            query = query.bind(state.as_str());
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter()
            .map(|row| {
                Ok(JobItemRow {
                    item: item_from(row)?,
                    upn: Reader::new(row, "users").parse("upn")?,
                })
            })
            .collect()
    }

    /// A job's items in `state`, in id order.
    pub async fn items_in_state(
        &self,
        job_id: JobId,
        state: ItemState,
    ) -> Result<Vec<Item>, StoreError> {
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM provisioning_items WHERE job_id = $1 AND state = $2 ORDER BY id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(job_id.to_string())
            .bind(state.as_str())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(item_from).collect()
    }
}

/// Inserts an open job with one pending item per user, in `tx`.
pub(crate) async fn insert_job(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    workspace_id: WorkspaceId,
    rp_id: &str,
    options: &serde_json::Value,
    created_by: &str,
    users: &[UserId],
) -> Result<Job, StoreError> {
    let now = now_millis();
    let sql = format!(
        "INSERT INTO provisioning_jobs (id, workspace_id, rp_id, options, state, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'open', $5, $6, $6) RETURNING {JOB_COLUMNS}"
    );
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(JobId::new().to_string())
        .bind(workspace_id.to_string())
        .bind(rp_id)
        .bind(options.to_string())
        .bind(created_by)
        .bind(now)
        .fetch_one(&mut **tx)
        .await?;
    let job = job_from(&row)?;
    insert_items(tx, &job, users, now).await?;
    Ok(job)
}

async fn insert_items(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    job: &Job,
    users: &[UserId],
    now: i64,
) -> Result<u64, StoreError> {
    let mut added = 0;
    for user in users {
        let done = sqlx::query(
            "INSERT INTO provisioning_items (id, job_id, workspace_id, user_id, state, attempts, updated_at) \
             VALUES ($1, $2, $3, $4, 'pending', 0, $5) ON CONFLICT (job_id, user_id) DO NOTHING",
        )
        .bind(ItemId::new().to_string())
        .bind(job.id.to_string())
        .bind(job.workspace_id.to_string())
        .bind(user.to_string())
        .bind(now)
        .execute(&mut **tx)
        .await?;
        added += done.rows_affected();
    }
    Ok(added)
}

impl Store {
    /// How many jobs and items of the workspace are in each state (for `/metrics`).
    pub async fn state_counts(
        &self,
        workspace_id: WorkspaceId,
    ) -> Result<(Vec<(String, i64)>, Vec<(String, i64)>), StoreError> {
        let jobs: Vec<(String, i64)> = sqlx::query_as(
            "SELECT state, COUNT(*) FROM provisioning_jobs WHERE workspace_id = $1 GROUP BY state ORDER BY state",
        )
        .bind(workspace_id.to_string())
        .fetch_all(self.pool())
        .await?;
        let items: Vec<(String, i64)> = sqlx::query_as(
            "SELECT state, COUNT(*) FROM provisioning_items WHERE workspace_id = $1 GROUP BY state ORDER BY state",
        )
        .bind(workspace_id.to_string())
        .fetch_all(self.pool())
        .await?;
        Ok((jobs, items))
    }
}
