//! `behalf serve`'s background workers.
//!
//! Three duties, in one loop:
//! - **Directory sync**, on `[sync] interval_secs`: a delta import from Entra ID, then (as
//!   configured) revoking the passkeys of users deleted or disabled upstream and queueing a passkey
//!   for every enabled user who has none. The round is a schedule in the store, leased to one
//!   instance at a time, however many instances share a PostgreSQL database.
//! - **Outbound writes** (Behalf → Entra ID): every due write of the workspace is sent
//!   (`ops/outbound`), leased, so instances share the queue and never send one twice.
//! - **Provisioning jobs**: every open job of the workspace (queued by a sync round, or left open by
//!   a CLI run that was stopped) is worked on; items are leased, so instances share a job's users and
//!   never register one twice.

use std::time::Duration;

use behalf_directory::{ImportMode, NoProgress};
use behalf_provision::{Progress, RelyingParty as _};
use tokio::sync::watch;

use crate::ops::deprovision::Leavers;
use crate::ops::provision::Selection;
use crate::{App, AppError, Caller};

/// How long one instance holds the sync round before another may take it over; renewed while
/// the round runs, so only a dead instance loses it.
const SYNC_LEASE: Duration = Duration::from_secs(600);
/// How often the workers look for queued jobs (and a due sync round) when idle.
const POLL: Duration = Duration::from_secs(2);

/// The workers of one `behalf serve` instance.
#[derive(Debug)]
pub struct Workers {
    app: App,
    worker_id: String,
}

impl Workers {
    /// The workers for the app's workspace, or `None` (said in the log) when no Entra ID app is
    /// configured: then there is nothing they could reach.
    pub(crate) fn new(app: App) -> Option<Workers> {
        let Ok(engine) = app.engine() else {
            tracing::warn!(
                "no Entra ID app configured ([entra] tenant_id, client_id, client_secret or certificate_file): background sync and provisioning are off"
            );
            return None;
        };
        let worker_id = engine.options().worker_id.clone();
        Some(Workers { app, worker_id })
    }

    /// The workers act on their own, as the server.
    fn caller(&self) -> Caller {
        Caller::Local {
            actor: "server".into(),
        }
    }

    /// Works until `stop` turns true; items in flight then finish and the rest stay queued.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let config = self.app.config();
        let sync_every = Duration::from_secs(config.sync.interval_secs);
        tracing::info!(
            worker = %self.worker_id,
            sync_every_secs = sync_every.as_secs(),
            provision = config.sync.provision,
            deprovision = config.sync.deprovision,
            "background workers started"
        );
        // A sync interval shorter than the poll (tests, demos) is honoured; no sync, no change.
        let poll = if sync_every.is_zero() {
            POLL
        } else {
            POLL.min(sync_every)
        };
        loop {
            if *stop.borrow() {
                break;
            }
            if !sync_every.is_zero()
                && let Err(e) = self.sync_if_due(sync_every).await
            {
                tracing::warn!(error = %e.log_text(), "directory sync failed");
            }
            if let Err(e) = self.work_on_open_jobs(&stop).await {
                tracing::warn!(error = %e.log_text(), "provisioning worker failed");
            }
            if let Err(e) = self.send_outbound_writes(&stop).await {
                tracing::warn!(error = %e.log_text(), "outbound writes failed");
            }
            tokio::select! {
                changed = stop.changed() => if changed.is_err() { break },
                () = self.app.jobs_queued().notified() => {}
                () = self.app.writes_queued().notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
        tracing::info!(worker = %self.worker_id, "background workers stopped");
    }

    fn schedule_name(&self) -> String {
        format!("sync:{}", self.app.workspace().id)
    }

    /// Runs one sync round if it is due and no other instance runs it.
    async fn sync_if_due(&self, every: Duration) -> Result<(), AppError> {
        let store = self.app.store();
        let name = self.schedule_name();
        let lease_ms = millis(SYNC_LEASE);
        if !store
            .claim_due_schedule(&name, &self.worker_id, lease_ms)
            .await?
        {
            return Ok(());
        }
        let worker = self.worker_id.as_str();
        let result = behalf_provision::while_renewing(self.sync_round(), SYNC_LEASE, || {
            let name = name.as_str();
            async move {
                match store.renew_schedule(name, worker, lease_ms).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!("another instance took the sync round over"),
                    Err(e) => tracing::warn!(error = %e, "cannot renew the sync round's lease"),
                }
            }
        })
        .await;
        let error = result.as_ref().err().map(AppError::log_text);
        store
            .finish_schedule(&name, &self.worker_id, millis(every), error.as_deref())
            .await?;
        result
    }

    /// Delta import, then deprovisioning and queueing as configured.
    async fn sync_round(&self) -> Result<(), AppError> {
        let config = self.app.config();
        let caller = self.caller();
        let operator = self.app.operator(&caller).ok_or(AppError::Forbidden {
            needed: "directory import",
        })?;
        let summary = operator
            .import(&config.sync.connection, ImportMode::Delta, &NoProgress)
            .await?;
        tracing::info!(
            users_new = summary.users_created,
            users_changed = summary.users_updated,
            users_deleted = summary.users_soft_deleted + summary.users_hard_deleted,
            users = summary.users_total,
            "directory sync imported"
        );
        // Tenants connected with an app of their own (the panel's "Add an Entra ID tenant"):
        // one failing does not stop the others or the round.
        for name in operator.connections_with_own_app().await? {
            if name == config.sync.connection {
                continue;
            }
            match operator.import(&name, ImportMode::Delta, &NoProgress).await {
                Ok(s) => tracing::info!(
                    connection = %name,
                    users_new = s.users_created,
                    users_changed = s.users_updated,
                    users = s.users_total,
                    "directory sync imported"
                ),
                Err(e) => {
                    tracing::warn!(connection = %name, error = %e.log_text(), "directory sync of a connection failed; retried next round")
                }
            }
        }
        let provisioner = self.app.provisioner(&caller).ok_or(AppError::Forbidden {
            needed: "provisioning",
        })?;
        if config.sync.deprovision {
            for done in provisioner.deprovision(Leavers::Pending).await? {
                if done.failures.is_empty() {
                    tracing::info!(upn = %done.upn, revoked = done.revoked, "deprovisioned");
                } else {
                    tracing::warn!(upn = %done.upn, failures = %done.failures.join("; "), "deprovisioning failed; retried next round");
                }
            }
        }
        if config.sync.provision {
            let prepared = provisioner.prepare(Selection::Automatic).await?;
            if !prepared.users.is_empty() {
                let job = provisioner.queue(&prepared).await?;
                tracing::info!(job = %job.id, users = prepared.users.len(), "queued users who need a passkey");
            }
        }
        Ok(())
    }

    /// Works on each open job of this workspace and relying party until nothing is claimable.
    async fn work_on_open_jobs(&self, stop: &watch::Receiver<bool>) -> Result<(), AppError> {
        let engine = self.app.engine()?;
        for job in self.app.store().open_jobs(self.app.workspace().id).await? {
            if *stop.borrow() {
                break;
            }
            if job.rp_id != engine.rp().rp_id() {
                continue;
            }
            let progress = Progress::new();
            // Items waiting for their users (the manual path) are looked at again on a later
            // round, when due: one job does not hold the loop for a pass's lifetime.
            let summary = engine
                .run_available(job.id, &progress, stop.clone())
                .await?;
            if summary.registered + summary.failed + summary.skipped > 0 {
                tracing::info!(
                    job = %job.id,
                    registered = summary.registered,
                    failed = summary.failed,
                    skipped = summary.skipped,
                    remaining = summary.remaining,
                    "provisioning job worked on"
                );
            }
        }
        Ok(())
    }
}

impl Workers {
    /// Sends the outbound writes that are due (Behalf → Entra ID); those waiting on a
    /// Retry-After or a backoff are sent by a later round.
    async fn send_outbound_writes(&self, stop: &watch::Receiver<bool>) -> Result<(), AppError> {
        let caller = self.caller();
        let operator = self.app.operator(&caller).ok_or(AppError::Forbidden {
            needed: "outbound writes",
        })?;
        let summary = operator.run_writes(stop).await?;
        if summary.done + summary.failed + summary.retried > 0 {
            tracing::info!(
                done = summary.done,
                failed = summary.failed,
                retried = summary.retried,
                "outbound writes sent"
            );
        }
        Ok(())
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
