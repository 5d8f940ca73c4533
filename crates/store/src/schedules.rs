//! Recurring background work that one instance at a time runs (the server's directory sync).
//!
//! A schedule is due when `next_run_at` has passed. Instances race for it with one conditional
//! UPDATE, so exactly one wins on either backend; the winner holds a lease it must finish (or
//! renew) before it expires, after which another instance may take the run over.

use behalf_domain::now_millis;
use sqlx::any::AnyRow;

use crate::rows::Reader;
use crate::{Store, StoreError};

/// What the store knows of one schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub name: String,
    pub next_run_at: i64,
    pub locked_by: Option<String>,
    pub locked_until: Option<i64>,
    pub last_started_at: Option<i64>,
    pub last_finished_at: Option<i64>,
    /// `succeeded` or `failed`.
    pub last_outcome: Option<String>,
    pub last_error: Option<String>,
}

fn schedule_from(row: &AnyRow) -> Result<Schedule, StoreError> {
    let r = Reader::new(row, "schedules");
    Ok(Schedule {
        name: r.text("name")?,
        next_run_at: r.int("next_run_at")?,
        locked_by: r.opt_text("locked_by")?,
        locked_until: r.opt_int("locked_until")?,
        last_started_at: r.opt_int("last_started_at")?,
        last_finished_at: r.opt_int("last_finished_at")?,
        last_outcome: r.opt_text("last_outcome")?,
        last_error: r.opt_text("last_error")?,
    })
}

impl Store {
    /// Takes the schedule `name` for `worker` if it is due and nobody holds it; a schedule seen
    /// for the first time is due at once. Returns whether `worker` now holds it.
    pub async fn claim_due_schedule(
        &self,
        name: &str,
        worker: &str,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        let now = now_millis();
        sqlx::query(
            "INSERT INTO schedules (name, next_run_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(now)
        .execute(self.pool())
        .await?;
        let taken = sqlx::query(
            "UPDATE schedules SET locked_by = $1, locked_until = $2, last_started_at = $3 \
             WHERE name = $4 AND next_run_at <= $3 AND (locked_until IS NULL OR locked_until < $3)",
        )
        .bind(worker)
        .bind(now + lease_ms)
        .bind(now)
        .bind(name)
        .execute(self.pool())
        .await?;
        Ok(taken.rows_affected() == 1)
    }

    /// Extends `worker`'s lease on `name`. Returns false when the lease was lost to another.
    pub async fn renew_schedule(
        &self,
        name: &str,
        worker: &str,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        let renewed = sqlx::query(
            "UPDATE schedules SET locked_until = $1 WHERE name = $2 AND locked_by = $3",
        )
        .bind(now_millis() + lease_ms)
        .bind(name)
        .bind(worker)
        .execute(self.pool())
        .await?;
        Ok(renewed.rows_affected() == 1)
    }

    /// Records how `worker`'s run of `name` ended and when the next one is due; releases the
    /// lease. A worker that lost its lease changes nothing (the new holder reports instead).
    pub async fn finish_schedule(
        &self,
        name: &str,
        worker: &str,
        next_run_in_ms: i64,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        let now = now_millis();
        let finished = sqlx::query(
            "UPDATE schedules SET locked_by = NULL, locked_until = NULL, next_run_at = $1, \
             last_finished_at = $2, last_outcome = $3, last_error = $4 WHERE name = $5 AND locked_by = $6",
        )
        .bind(now + next_run_in_ms)
        .bind(now)
        .bind(if error.is_some() {
            "failed"
        } else {
            "succeeded"
        })
        .bind(error)
        .bind(name)
        .bind(worker)
        .execute(self.pool())
        .await?;
        Ok(finished.rows_affected() == 1)
    }

    pub async fn get_schedule(&self, name: &str) -> Result<Option<Schedule>, StoreError> {
        let row = sqlx::query(
            "SELECT name, next_run_at, locked_by, locked_until, last_started_at, last_finished_at, \
             last_outcome, last_error FROM schedules WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(schedule_from).transpose()
    }
}
