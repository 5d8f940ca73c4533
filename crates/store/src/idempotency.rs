//! Idempotency keys: a retried `POST /api/v1/jobs` carrying the same `Idempotency-Key` gets the
//! job the first request made, not a second job.

use behalf_domain::{AdminId, Job, JobId, Millis, UserId, WorkspaceId, now_millis};
use sqlx::any::AnyRow;

use crate::rows::Reader;
use crate::{Store, StoreError};

/// The first request that used a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub workspace_id: WorkspaceId,
    pub key: String,
    pub admin_id: AdminId,
    /// The application's hash of that request, so that a key reused for a different request
    /// can be refused rather than answered with an unrelated job.
    pub request_hash: String,
    pub job_id: JobId,
    pub created_at: Millis,
}

/// A key and what it stands for, as the request carried it.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyKey<'a> {
    pub key: &'a str,
    pub admin_id: AdminId,
    pub request_hash: &'a str,
}

/// What [`Store::create_job_once`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotentJob {
    /// The key was new: this job was made for it.
    Created(Job),
    /// The key was taken: no job was made, and this is the request that took it.
    Existing(IdempotencyRecord),
}

fn record_from(row: &AnyRow) -> Result<IdempotencyRecord, StoreError> {
    let r = Reader::new(row, "idempotency_keys");
    Ok(IdempotencyRecord {
        workspace_id: r.parse("workspace_id")?,
        key: r.text("key")?,
        admin_id: r.parse("admin_id")?,
        request_hash: r.text("request_hash")?,
        job_id: r.parse("job_id")?,
        created_at: r.int("created_at")?,
    })
}

const INSERT_KEY: &str = "INSERT INTO idempotency_keys (workspace_id, key, admin_id, request_hash, job_id, \
     created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (workspace_id, key) DO NOTHING";

impl Store {
    /// The request that used `key` in the workspace, if any.
    pub async fn find_idempotency_key(
        &self,
        workspace_id: WorkspaceId,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT workspace_id, key, admin_id, request_hash, job_id, created_at FROM idempotency_keys \
             WHERE workspace_id = $1 AND key = $2",
        )
        .bind(workspace_id.to_string())
        .bind(key)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(record_from).transpose()
    }

    /// Records that `key` made `job_id` unless the key is taken: None when recorded, else the
    /// record that holds it (left as it was).
    pub async fn insert_idempotency_key(
        &self,
        workspace_id: WorkspaceId,
        key: &IdempotencyKey<'_>,
        job_id: JobId,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let done = sqlx::query(INSERT_KEY)
            .bind(workspace_id.to_string())
            .bind(key.key)
            .bind(key.admin_id.to_string())
            .bind(key.request_hash)
            .bind(job_id.to_string())
            .bind(now_millis())
            .execute(self.pool())
            .await?;
        if done.rows_affected() > 0 {
            return Ok(None);
        }
        self.taken_key(workspace_id, key.key).await.map(Some)
    }

    /// Creates a job (as [`Store::create_job`]) and records `key` for it in one transaction,
    /// unless the key is taken: then nothing is created and the key's record is returned.
    /// Concurrent requests with one key make one job: on PostgreSQL the later insert of the
    /// key waits for the earlier transaction and then finds the key taken (its own job is
    /// rolled back); SQLite has one writer.
    pub async fn create_job_once(
        &self,
        workspace_id: WorkspaceId,
        key: &IdempotencyKey<'_>,
        rp_id: &str,
        options: &serde_json::Value,
        created_by: &str,
        users: &[UserId],
    ) -> Result<IdempotentJob, StoreError> {
        // A retry usually finds its key: answer it without writing a job to roll back.
        if let Some(existing) = self.find_idempotency_key(workspace_id, key.key).await? {
            return Ok(IdempotentJob::Existing(existing));
        }
        let mut tx = self.pool().begin().await?;
        let job = crate::jobs::insert_job(&mut tx, workspace_id, rp_id, options, created_by, users)
            .await?;
        let done = sqlx::query(INSERT_KEY)
            .bind(workspace_id.to_string())
            .bind(key.key)
            .bind(key.admin_id.to_string())
            .bind(key.request_hash)
            .bind(job.id.to_string())
            .bind(job.created_at)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return self
                .taken_key(workspace_id, key.key)
                .await
                .map(IdempotentJob::Existing);
        }
        tx.commit().await?;
        Ok(IdempotentJob::Created(job))
    }

    /// The record of a key an insert found taken (deleted only with its admin, hence there
    /// unless that admin was deleted in between).
    async fn taken_key(
        &self,
        workspace_id: WorkspaceId,
        key: &str,
    ) -> Result<IdempotencyRecord, StoreError> {
        self.find_idempotency_key(workspace_id, key)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "idempotency key",
                key: key.to_owned(),
            })
    }
}
