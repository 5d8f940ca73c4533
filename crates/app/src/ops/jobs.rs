//! Provisioning jobs as the API and the panel see them: progress, items, cancel, retry,
//! failures; and queueing one exactly once for a retried request (`Idempotency-Key`).

use behalf_domain::{EventAction, EventDetail, ItemId, ItemState, Job, JobId, JobState, Outcome};
use behalf_provision::RelyingParty as _;
use behalf_store::{IdempotencyKey, IdempotentJob, JobCounts, JobItemRow};

use crate::ops::provision::{FailureRow, Prepared};
use crate::{AppError, Caller, Provisioner, Reader};

/// A job with its items counted by state.
#[derive(Debug, Clone)]
pub struct JobView {
    pub job: Job,
    pub counts: JobCounts,
}

impl JobView {
    /// What the job was asked for (`automatic`, `csv:…`, `selection:…`, `user:…`).
    pub fn kind(&self) -> String {
        self.job
            .options
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or_default()
            .to_owned()
    }

    /// Nothing left to do: every item registered, failed or skipped, or the job cancelled.
    pub fn finished(&self) -> bool {
        self.job.state != JobState::Open || self.counts.open() == 0
    }
}

impl Reader<'_> {
    async fn own_job(&self, id: JobId) -> Result<Job, AppError> {
        let job = self.app.store().get_job(id).await?;
        if job.workspace_id != self.app.workspace().id {
            return Err(AppError::NotFound {
                what: "job",
                key: id.to_string(),
            });
        }
        Ok(job)
    }

    pub async fn job(&self, id: JobId) -> Result<JobView, AppError> {
        let job = self.own_job(id).await?;
        let counts = self.app.store().job_counts(id).await?;
        Ok(JobView { job, counts })
    }

    /// The newest jobs first; `before` pages on.
    pub async fn list_jobs(
        &self,
        limit: u32,
        before: Option<JobId>,
    ) -> Result<Vec<JobView>, AppError> {
        let store = self.app.store();
        let jobs = store
            .list_jobs(self.app.workspace().id, limit.clamp(1, 200), before)
            .await?;
        let mut views = Vec::with_capacity(jobs.len());
        for job in jobs {
            let counts = store.job_counts(job.id).await?;
            views.push(JobView { job, counts });
        }
        Ok(views)
    }

    pub async fn job_items(
        &self,
        id: JobId,
        state: Option<ItemState>,
        after: Option<ItemId>,
        limit: u32,
    ) -> Result<Vec<JobItemRow>, AppError> {
        self.own_job(id).await?;
        Ok(self
            .app
            .store()
            .job_items(id, state, after, limit.clamp(1, 1000))
            .await?)
    }

    /// The job's users that were not registered, with why: the failures CSV.
    pub async fn job_failures(&self, id: JobId) -> Result<Vec<FailureRow>, AppError> {
        self.own_job(id).await?;
        let mut rows = Vec::new();
        for state in [ItemState::Failed, ItemState::Skipped] {
            let mut after = None;
            loop {
                let page = self
                    .app
                    .store()
                    .job_items(id, Some(state), after, 1000)
                    .await?;
                let Some(last) = page.last() else { break };
                after = Some(last.item.id);
                rows.extend(page.into_iter().map(|r| FailureRow {
                    line: None,
                    upn: r.upn.to_string(),
                    outcome: r.item.state.as_str().to_owned(),
                    reason: r.item.reason.unwrap_or_default(),
                    error_code: r.item.error_code,
                    request_id: r.item.request_id,
                }));
            }
        }
        Ok(rows)
    }
}

impl Provisioner<'_> {
    /// Queues `prepared` as a new job, once per `key`: a retried request with the same key gets
    /// the job the first one made. A key reused for a different request is refused.
    pub async fn queue_once(
        &self,
        prepared: &Prepared,
        key: &str,
        request: &[u8],
    ) -> Result<JobView, AppError> {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, request);
        let request_hash = crate::auth::hex(digest.as_ref());
        let request_hash = request_hash.as_str();
        let Caller::Admin { admin, .. } = &self.caller else {
            // A local caller has no admin to record the key under; its retries are its own.
            let job = self.queue(prepared).await?;
            return self.reader().job(job.id).await;
        };
        let engine = self.app.engine()?;
        self.check_mode(prepared)?;
        let store = self.app.store();
        let workspace = self.app.workspace().id;
        let options = behalf_provision::job_options(&prepared.kind, prepared.mode);
        let job = match store
            .create_job_once(
                workspace,
                &IdempotencyKey {
                    key,
                    admin_id: admin.id,
                    request_hash,
                },
                engine.rp().rp_id(),
                &options,
                &self.actor(),
                &prepared.users,
            )
            .await?
        {
            IdempotentJob::Created(job) => {
                self.app.notify_jobs_queued();
                self.audit_queued(&job, prepared).await?;
                job
            }
            IdempotentJob::Existing(record) => {
                if record.request_hash != request_hash || record.admin_id != admin.id {
                    return Err(AppError::Conflict(
                        "this Idempotency-Key was used for a different request: use a new key"
                            .into(),
                    ));
                }
                store.get_job(record.job_id).await?
            }
        };
        self.reader().job(job.id).await
    }

    async fn job_event(&self, action: EventAction, id: JobId, items: u64) -> Result<(), AppError> {
        let mut detail = EventDetail::default().with("job_id", id);
        if items > 0 {
            detail = detail.with("items", items);
        }
        self.app
            .audit(self.actor(), action, Outcome::Success, detail)
            .await
    }

    /// Stops a job: its open items are left as they are and no worker claims them again.
    pub async fn cancel_job(&self, id: JobId) -> Result<JobView, AppError> {
        let view = self.reader().job(id).await?;
        if view.job.state == JobState::Open {
            self.app
                .store()
                .set_job_state(id, JobState::Cancelled)
                .await?;
            self.job_event(EventAction::JobCancelled, id, 0).await?;
        }
        self.reader().job(id).await
    }

    /// Puts the job's failed items back in the queue (and reopens a finished job).
    pub async fn retry_failed(&self, id: JobId) -> Result<JobView, AppError> {
        self.reader().job(id).await?;
        let store = self.app.store();
        let retried = store.retry_failed_items(id).await?;
        if retried > 0 {
            store.set_job_state(id, JobState::Open).await?;
            self.app.notify_jobs_queued();
            self.job_event(EventAction::JobRetried, id, retried).await?;
        }
        self.reader().job(id).await
    }
}
