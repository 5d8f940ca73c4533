//! `behalf serve`'s background workers.
//!
//! Two duties, in one loop:
//! - **Directory sync**, on `[sync] interval_secs`: a delta import from Entra ID, then (as
//!   configured) revoking the passkeys of users deleted or disabled upstream and queueing a passkey
//!   for every enabled user who has none. The round is a schedule in the store, leased to one
//!   instance at a time, however many instances share a PostgreSQL database.
//! - **Provisioning jobs**: every open job of the workspace (queued by a sync round, or left open by
//!   a CLI run that was stopped) is worked on; items are leased, so instances share a job's users and
//!   never register one twice.

use std::time::Duration;

use behalf_config::Config;
use behalf_directory::{ImportMode, ImportOptions, NoProgress};
use behalf_graph::GraphClient;
use behalf_provision::{Progress, RelyingParty as _};
use tokio::sync::watch;

use crate::cmd::graph_setup;
use crate::wiring::{self, MicrosoftEngine, Opened};

/// How long one instance holds the sync round before another may take it over; renewed while
/// the round runs, so only a dead instance loses it.
const SYNC_LEASE: Duration = Duration::from_secs(600);
/// How often the workers look for queued jobs (and a due sync round) when idle.
const POLL: Duration = Duration::from_secs(2);

/// The workers of one `behalf serve` instance.
pub struct Workers {
    config: Config,
    opened: Opened,
    graph: GraphClient,
    engine: MicrosoftEngine,
    worker_id: String,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers")
            .field("workspace", &self.opened.workspace.name)
            .field("worker_id", &self.worker_id)
            .finish_non_exhaustive()
    }
}

impl Workers {
    /// The workers for the configured workspace, or `None` (said in the log) when no Entra ID
    /// app is configured: then there is nothing they could reach.
    pub async fn new(config: &Config, opened: Opened) -> anyhow::Result<Option<Workers>> {
        if config.entra.tenant_id.is_none() || config.entra.client_id.is_none() {
            tracing::warn!(
                "no Entra ID app configured ([entra] tenant_id, client_id): background sync and provisioning are off"
            );
            return Ok(None);
        }
        let graph = wiring::graph_client(config)?;
        let engine = wiring::engine(config, &opened, graph.clone(), "server".into()).await?;
        let worker_id = engine.options().worker_id.clone();
        Ok(Some(Workers {
            config: config.clone(),
            opened,
            graph,
            engine,
            worker_id,
        }))
    }

    /// Works until `stop` turns true; items in flight then finish and the rest stay queued.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let sync_every = Duration::from_secs(self.config.sync.interval_secs);
        tracing::info!(
            worker = %self.worker_id,
            sync_every_secs = sync_every.as_secs(),
            provision = self.config.sync.provision,
            deprovision = self.config.sync.deprovision,
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
                tracing::warn!(error = %format!("{e:#}"), "directory sync failed");
            }
            if let Err(e) = self.work_on_open_jobs(&stop).await {
                tracing::warn!(error = %format!("{e:#}"), "provisioning worker failed");
            }
            tokio::select! {
                changed = stop.changed() => if changed.is_err() { break },
                () = tokio::time::sleep(poll) => {}
            }
        }
        tracing::info!(worker = %self.worker_id, "background workers stopped");
    }

    fn schedule_name(&self) -> String {
        format!("sync:{}", self.opened.workspace.id)
    }

    /// Runs one sync round if it is due and no other instance runs it.
    async fn sync_if_due(&self, every: Duration) -> anyhow::Result<()> {
        let store = &self.opened.store;
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
        let error = result.as_ref().err().map(|e| format!("{e:#}"));
        store
            .finish_schedule(&name, &self.worker_id, millis(every), error.as_deref())
            .await?;
        result
    }

    /// Delta import, then deprovisioning and queueing as configured.
    async fn sync_round(&self) -> anyhow::Result<()> {
        let (config, store, workspace) = (&self.config, &self.opened.store, &self.opened.workspace);
        let tenant = config.entra.tenant_id.clone().unwrap_or_default();
        let options = ImportOptions {
            workspace: config.workspace.clone(),
            connection: config.sync.connection.clone(),
            target: graph_setup::target(config, &tenant),
            mode: ImportMode::Delta,
            actor: "server".into(),
        };
        let summary = behalf_directory::import(store, &self.graph, &options, &NoProgress).await?;
        tracing::info!(
            users_new = summary.users_created,
            users_changed = summary.users_updated,
            users_deleted = summary.users_soft_deleted + summary.users_hard_deleted,
            users = summary.users_total,
            "directory sync imported"
        );
        if config.sync.deprovision {
            for user in store.users_pending_deprovision(workspace.id).await? {
                let done = self.engine.deprovision(&user).await?;
                if done.failures.is_empty() {
                    tracing::info!(upn = %user.upn, revoked = done.revoked, "deprovisioned");
                } else {
                    tracing::warn!(upn = %user.upn, failures = %done.failures.join("; "), "deprovisioning failed; retried next round");
                }
            }
        }
        if config.sync.provision {
            let users = store
                .users_needing_passkey(workspace.id, self.engine.rp().rp_id())
                .await?;
            if !users.is_empty() {
                let job = self.engine.job_for("automatic", &users).await?;
                tracing::info!(job = %job.id, users = users.len(), "queued users who need a passkey");
            }
        }
        Ok(())
    }

    /// Works on each open job of this workspace and relying party until nothing is claimable.
    async fn work_on_open_jobs(&self, stop: &watch::Receiver<bool>) -> anyhow::Result<()> {
        let store = &self.opened.store;
        for job in store.open_jobs(self.opened.workspace.id).await? {
            if *stop.borrow() {
                break;
            }
            if job.rp_id != self.engine.rp().rp_id() {
                continue;
            }
            let progress = Progress::new();
            let summary = self.engine.run(job.id, &progress, stop.clone()).await?;
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

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
