//! The provisioning engine: leases items, drives each through its states, reconciles after crashes.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use behalf_authenticator::{Authenticator, CreationOptions, CredentialStore};
use behalf_domain::{
    EventAction, EventDetail, ItemOutcome, ItemState, Job, JobId, JobMode, JobState, Lifecycle,
    NewEvent, Outcome, PasskeyId, PasskeyState, SecurityKeyKind, SecurityKeyState, User, UserId,
    WorkspaceId,
};
use behalf_store::{NewPasskey, Store, StoreError, WriteSet};
use tokio::sync::watch;

use crate::credentials::StageCredentials;
use crate::manual::ManualPath;
use crate::progress::{ItemReport, Progress};
use crate::rp::{RelyingParty, RpError, RpErrorKind};

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Items processed at the same time by this instance.
    pub concurrency: usize,
    /// The passkey's display name; `{upn}`, `{display_name}`, `{date}` are replaced. A tag that
    /// identifies the passkey is appended, which is how a crashed run finds what it registered.
    pub display_name_template: String,
    /// Who is acting, for events (`cli:alice`, `admin:bob`, `worker`).
    pub actor: String,
    /// This worker's lease name; unique per process.
    pub worker_id: String,
    /// How long a claimed item stays ours without progress.
    pub lease: Duration,
    /// Claims of one item before it is failed for good.
    pub max_attempts: i64,
    /// Assign a vault security key to a user that has none (else the user is skipped).
    pub auto_assign_vault_key: bool,
    /// Passes and their mail for jobs of the manual path (`JobMode::Manual`); without it such
    /// a job's items fail, saying so.
    pub manual: Option<Arc<dyn ManualPath>>,
    /// How often a local-key item waiting for its user's approval is looked at (an answer in
    /// Behalf Key wakes it at once; this is the fallback).
    pub local_poll: Duration,
    /// How long a local key's registration request waits for the user before it expires.
    pub local_request_ttl: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            concurrency: 16,
            display_name_template: "Behalf passkey ({date})".into(),
            actor: "system".into(),
            worker_id: local_worker_id(),
            lease: Duration::from_secs(600),
            max_attempts: 5,
            auto_assign_vault_key: true,
            manual: None,
            local_poll: Duration::from_secs(10),
            local_request_ttl: Duration::from_secs(72 * 3600),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the credential store failed: {0}")]
    Credentials(String),
}

/// A new job's options: its kind (an open job of the same kind is continued) and its mode (an
/// on-behalf job's options name none, as they did before modes existed).
pub fn job_options(kind: &str, mode: JobMode) -> serde_json::Value {
    match mode {
        JobMode::OnBehalf => serde_json::json!({ "kind": kind }),
        mode => serde_json::json!({ "kind": kind, "mode": mode }),
    }
}

/// What a run knows of the job it works on.
pub(crate) struct JobContext {
    pub(crate) mode: JobMode,
    /// Who asked for the job (`admin:bob`, `cli:alice`): the manual path's events name them.
    pub(crate) asked_by: String,
    /// Whether the run waits for items waiting on their users (see [`Engine::run_available`]).
    pub(crate) wait_for_users: bool,
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub registered: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Items still open (the run was stopped, or another instance holds them).
    pub remaining: i64,
    pub stopped: bool,
}

/// Registers passkeys at one relying party for one workspace.
pub struct Engine<R, S> {
    inner: Arc<Inner<R, S>>,
}

impl<R, S> Clone for Engine<R, S> {
    fn clone(&self) -> Self {
        Engine {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<R, S> std::fmt::Debug for Engine<R, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("workspace", &self.inner.workspace_id)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner<R, S> {
    pub(crate) store: Store,
    pub(crate) workspace_id: WorkspaceId,
    pub(crate) rp: R,
    pub(crate) authenticator: Authenticator<S>,
    pub(crate) options: EngineOptions,
}

mod claims;
mod local;
mod manual;
mod outcome;
mod step;
mod worker;

pub use worker::{DEAD_HOLDER_HOLD, is_dead_local_worker, local_worker_id};

use claims::{Claim, Claims};
use outcome::{Finish, Step, registered_finish, report, retry_backoff, rp_refusal};
use step::{Prepared, Ready};
pub(crate) use step::{passkey_tag, rp_user_of};

impl<R: RelyingParty, S: StageCredentials> Engine<R, S> {
    pub fn new(
        store: Store,
        workspace_id: WorkspaceId,
        rp: R,
        authenticator: Authenticator<S>,
        options: EngineOptions,
    ) -> Self {
        Engine {
            inner: Arc::new(Inner {
                store,
                workspace_id,
                rp,
                authenticator,
                options,
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn workspace_id(&self) -> WorkspaceId {
        self.inner.workspace_id
    }

    pub fn rp(&self) -> &R {
        &self.inner.rp
    }

    pub fn authenticator(&self) -> &Authenticator<S> {
        &self.inner.authenticator
    }

    pub fn options(&self) -> &EngineOptions {
        &self.inner.options
    }

    /// The open job of this `kind` on this RP with `users` added, or a new one: re-running the
    /// same command continues where the last run stopped. Failed items are retried.
    pub async fn job_for(&self, kind: &str, users: &[UserId]) -> Result<Job, EngineError> {
        self.job_for_by(kind, users, &self.inner.options.actor)
            .await
    }

    /// As [`Engine::job_for`], a new job naming `actor` as who asked for it.
    pub async fn job_for_by(
        &self,
        kind: &str,
        users: &[UserId],
        actor: &str,
    ) -> Result<Job, EngineError> {
        self.job_for_mode(kind, JobMode::OnBehalf, users, actor)
            .await
    }

    /// As [`Engine::job_for_by`], for a job of `mode` (the kind should say the mode too: an
    /// open job of the same kind is continued whatever its mode).
    pub async fn job_for_mode(
        &self,
        kind: &str,
        mode: JobMode,
        users: &[UserId],
        actor: &str,
    ) -> Result<Job, EngineError> {
        let store = &self.inner.store;
        let rp_id = self.inner.rp.rp_id();
        if let Some(job) = store
            .find_open_job(self.inner.workspace_id, rp_id, kind)
            .await?
        {
            store.add_job_items(&job, users).await?;
            store.retry_failed_items(job.id).await?;
            return Ok(job);
        }
        let options = job_options(kind, mode);
        Ok(store
            .create_job(self.inner.workspace_id, rp_id, &options, actor, users)
            .await?)
    }

    /// Works on `job` until no item is left that this instance can claim, or `stop` turns true
    /// (then in-flight items finish and the rest stay for the next run). Items deferred in the
    /// store are waited for, including the manual path's users: a run ends when the job does.
    pub async fn run(
        &self,
        job_id: JobId,
        progress: &Progress,
        stop: watch::Receiver<bool>,
    ) -> Result<RunSummary, EngineError> {
        self.run_with(job_id, progress, stop, true).await
    }

    /// As [`Engine::run`], but returns once what is left only waits for its users (the manual
    /// path's next look at their methods, kept in the store): the server's workers come back
    /// for those on their next round instead of being held by one job for a pass's lifetime.
    pub async fn run_available(
        &self,
        job_id: JobId,
        progress: &Progress,
        stop: watch::Receiver<bool>,
    ) -> Result<RunSummary, EngineError> {
        self.run_with(job_id, progress, stop, false).await
    }

    async fn run_with(
        &self,
        job_id: JobId,
        progress: &Progress,
        stop: watch::Receiver<bool>,
        wait_for_users: bool,
    ) -> Result<RunSummary, EngineError> {
        let job = self.inner.store.get_job(job_id).await?;
        let context = JobContext {
            mode: JobMode::of_options(&job.options).map_err(|e| {
                EngineError::Store(StoreError::Corrupt {
                    table: "provisioning_jobs",
                    reason: format!("job {job_id}'s options: {e}"),
                })
            })?,
            asked_by: job.created_by,
            wait_for_users,
        };
        self.release_dead_local_leases(job_id).await?;
        let before = progress.snapshot();
        let claims = Claims::default();
        let workers = (0..self.inner.options.concurrency.max(1)).map(|_| {
            let engine = self.clone();
            let stop = stop.clone();
            let claims = &claims;
            let context = &context;
            async move { engine.work(job_id, context, progress, stop, claims).await }
        });
        let work = futures::future::join_all(workers);
        let results = self.renewing_leases(job_id, work).await;
        // Items claimed but not reached (the run was stopped) are given back at once.
        let unstarted: Vec<_> = claims
            .queue
            .lock()
            .await
            .drain(..)
            .map(|c| c.item.id)
            .collect();
        if !unstarted.is_empty() {
            self.inner
                .store
                .release_unstarted_items(&unstarted, &self.inner.options.worker_id)
                .await?;
        }
        for result in results {
            result?;
        }
        let counts = self.inner.store.job_counts(job_id).await?;
        let stopped = *stop.borrow();
        if counts.open() == 0 {
            self.inner
                .store
                .set_job_state(job_id, JobState::Completed)
                .await?;
        }
        let after = progress.snapshot();
        Ok(RunSummary {
            registered: after.registered - before.registered,
            failed: after.failed - before.failed,
            skipped: after.skipped - before.skipped,
            remaining: counts.open(),
            stopped,
        })
    }

    /// Runs `work` while renewing this worker's leases every third of the lease, so an item
    /// waiting out a long Retry-After is not taken over by another worker. A failed renewal is
    /// only logged: the lease then expires and updates are refused, which loses nothing.
    async fn renewing_leases<T>(&self, job_id: JobId, work: impl Future<Output = T>) -> T {
        let inner = &self.inner;
        let lease_ms = i64::try_from(inner.options.lease.as_millis()).unwrap_or(i64::MAX);
        crate::while_renewing(work, inner.options.lease, || async move {
            if let Err(e) = inner
                .store
                .renew_leases(job_id, &inner.options.worker_id, lease_ms)
                .await
            {
                tracing::warn!(error = %e, "cannot renew leases");
            }
        })
        .await
    }

    async fn work(
        &self,
        job_id: JobId,
        context: &JobContext,
        progress: &Progress,
        stop: watch::Receiver<bool>,
        claims: &Claims,
    ) -> Result<(), EngineError> {
        let inner = &self.inner;
        let lease_ms = i64::try_from(inner.options.lease.as_millis()).unwrap_or(i64::MAX);
        // The last item's outcome commit, still going while this worker takes its next item:
        // nothing waits for it but the run's end. Exactly-once does not: the commit that must
        // precede a POST (the item's `credential_created`) is awaited before sending, below.
        // Until this one is durable the item stays `credential_created`, which a crash settles
        // by listing the user's methods and finding the passkey's tag, never by sending again;
        // and no other worker takes the item meanwhile (our lease holds it).
        let mut finishing = None;
        // The next item, taken and prepared (its creationOptions fetched, its credential made,
        // nothing committed) while this worker's last commit before sending was going.
        let mut ahead: Option<(Claim, Prepared)> = None;
        loop {
            if *stop.borrow() {
                if let Some((claim, _)) = ahead.take() {
                    // Nothing of it sent, its outcome not committed: claimable again now. The
                    // attempt counts (its creationOptions may have been fetched), so the next one
                    // cleans up after it.
                    inner
                        .store
                        .release_item(claim.item.id, &inner.options.worker_id)
                        .await?;
                }
                return settle(finishing.take()).await;
            }
            let current = match ahead.take() {
                Some(prepared) => Some(prepared),
                None => {
                    let (finished, next) = futures::join!(
                        settle(finishing.take()),
                        self.take_next(job_id, lease_ms, claims, context)
                    );
                    finished?;
                    next?
                }
            };
            let Some((claim, prepared)) = current else {
                // Nothing claimable now (and the last outcome is committed: the store's answers
                // below count it); items the RP asked to wait on may become so (and items
                // waiting for their users, when this run watches them).
                let next = if context.wait_for_users {
                    inner.store.next_deferred_in(job_id).await?
                } else {
                    inner.store.next_retry_in(job_id).await?
                };
                let Some(wait_ms) = next else {
                    return Ok(());
                };
                let wait = Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0) + 1);
                let mut stop = stop.clone();
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    _ = stop.wait_for(|stopped| *stopped) => {}
                }
                continue;
            };
            let step = match prepared {
                Prepared::Settled(step) => step,
                Prepared::Ready(ready) => {
                    let Ready {
                        before_sending,
                        unsent,
                    } = *ready;
                    // The commit that must be durable before the registration is sent. While
                    // it goes, the worker takes its next item and fetches its creationOptions:
                    // the one request it has in flight meanwhile, so a worker still has at most
                    // one at a time, and a user costs two round trips instead of two round
                    // trips and a commit (at 64 × 50 ms, 7–9 ms of each ~120 ms). Nothing of
                    // the next item is committed or sent until its own turn here.
                    let (committed, finished, next) = futures::join!(
                        inner.store.commit(before_sending),
                        settle(finishing.take()),
                        async {
                            if *stop.borrow() {
                                return Ok(None);
                            }
                            self.take_next(job_id, lease_ms, claims, context).await
                        }
                    );
                    ahead = next?;
                    finished?;
                    committed?;
                    self.send(unsent).await?
                }
            };
            let Claim { item, user, .. } = claim;
            match step {
                Step::Settled(settled) => {
                    if let Some((state, outcome)) = settled {
                        report(progress, &user, state, &outcome);
                    }
                }
                Step::Done(finish, passkey_id) => {
                    // An item prepared ahead can end without a commit before sending (skipped,
                    // refused): the outcome before it is committed first, never dropped.
                    settle(finishing.take()).await?;
                    finishing = Some(self.finish(item, user, finish, passkey_id, progress));
                }
                Step::Later { why, after } => {
                    tracing::debug!(user = %user.upn, %why, after_ms = after.as_millis() as u64, "item deferred as the relying party asked");
                    let after_ms = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
                    inner
                        .store
                        .defer_item(item.id, &inner.options.worker_id, after_ms)
                        .await?;
                }
                Step::Retry(why) => {
                    tracing::debug!(user = %user.upn, %why, "item will be retried");
                    if item.attempts >= inner.options.max_attempts {
                        // Out of attempts: fail it, but only once nothing can be in flight.
                        let outcome = ItemOutcome {
                            reason: Some(format!(
                                "gave up after {} attempts: {why}",
                                item.attempts
                            )),
                            ..Default::default()
                        };
                        let mut set = WriteSet::new();
                        set.update_item(
                            item.id,
                            &inner.options.worker_id,
                            ItemState::Failed,
                            &outcome,
                        );
                        self.record(&mut set, &user, ItemState::Failed, &outcome);
                        if inner.store.commit(set).await.is_ok() {
                            report(progress, &user, ItemState::Failed, &outcome);
                        }
                    } else {
                        // Back off before the item is claimable again (the relying party or the
                        // vault is having trouble), still holding the lease; a stop cuts it short.
                        let mut stop = stop.clone();
                        tokio::select! {
                            () = tokio::time::sleep(retry_backoff(item.attempts)) => {}
                            _ = stop.wait_for(|stopped| *stopped) => {}
                        }
                        inner
                            .store
                            .release_item(item.id, &inner.options.worker_id)
                            .await?;
                    }
                }
            }
        }
    }

    /// The next item this worker can claim, taken through its mode's step as far as it goes
    /// before a commit and a send (the on-behalf path) or to its end (the others).
    async fn take_next(
        &self,
        job_id: JobId,
        lease_ms: i64,
        claims: &Claims,
        context: &JobContext,
    ) -> Result<Option<(Claim, Prepared)>, EngineError> {
        let Some(claim) = self.next_claim(job_id, lease_ms, claims).await? else {
            return Ok(None);
        };
        let prepared = match context.mode {
            JobMode::OnBehalf => self.prepare(&claim).await?,
            JobMode::Manual => Prepared::Settled(self.manual_step(&claim, context).await?),
            JobMode::Local => Prepared::Settled(self.local_step(&claim, context).await?),
        };
        Ok(Some((claim, prepared)))
    }

    /// Commits where an item ended: its final state, the passkey's and the event, in one
    /// commit; then counts it in the run's progress.
    async fn finish(
        &self,
        item: behalf_domain::Item,
        user: User,
        finish: Finish,
        passkey_id: Option<PasskeyId>,
        progress: &Progress,
    ) -> Result<(), EngineError> {
        let inner = &self.inner;
        let outcome = ItemOutcome {
            passkey_id,
            ..finish.outcome
        };
        let mut set = WriteSet::new();
        if let Some(registration) = &finish.registration {
            set.mark_passkey_registered(registration.passkey_id, &registration.method_id);
            set.set_security_key_state(registration.key_id, SecurityKeyState::Active);
        }
        set.update_item(item.id, &inner.options.worker_id, finish.state, &outcome);
        self.record(&mut set, &user, finish.state, &outcome);
        match inner.store.commit(set).await {
            // Our lease expired and another worker owns the item now: its outcome counts (it
            // finds what we registered by listing).
            Err(StoreError::LeaseLost { .. }) => return Ok(()),
            other => other?,
        }
        report(progress, &user, finish.state, &outcome);
        Ok(())
    }

    /// Adds the event that records an item's outcome to `set`.
    fn record(&self, set: &mut WriteSet, user: &User, state: ItemState, outcome: &ItemOutcome) {
        let inner = &self.inner;
        let (action, result) = match state {
            ItemState::Registered => (EventAction::PasskeyRegistered, Outcome::Success),
            ItemState::Skipped => (EventAction::ProvisionSkipped, Outcome::Skipped),
            _ => (EventAction::ProvisionFailed, Outcome::Failure),
        };
        let detail = EventDetail {
            upn: Some(user.upn.to_string()),
            passkey_id: outcome.passkey_id.map(|p| p.to_string()),
            reason: outcome.reason.clone(),
            error_code: outcome.error_code.clone(),
            request_id: outcome.request_id.clone(),
            // Which process did it: with several instances on one database, the audit trail
            // says which one registered each passkey.
            worker: Some(inner.options.worker_id.clone()),
            ..EventDetail::default()
        };
        set.append_event(
            inner.workspace_id,
            NewEvent::new(inner.options.actor.clone(), action, result)
                .user(user.id)
                .rp(inner.rp.rp_id())
                .detail(detail),
        );
    }
}

/// Awaits an outcome commit still going, if any.
async fn settle(
    finishing: Option<impl Future<Output = Result<(), EngineError>>>,
) -> Result<(), EngineError> {
    match finishing {
        Some(commit) => commit.await,
        None => Ok(()),
    }
}

impl<R: RelyingParty, S: CredentialStore> Engine<R, S> {
    pub(crate) fn inner(&self) -> &Inner<R, S> {
        &self.inner
    }
}

#[cfg(test)]
mod manual_tests;
#[cfg(test)]
mod tests;
