//! The provisioning engine: leases items, drives each through its states, reconciles after crashes.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use behalf_authenticator::{Authenticator, CreationOptions, CredentialStore};
use behalf_domain::{
    EventAction, EventDetail, ItemOutcome, ItemState, Job, JobId, JobState, Lifecycle, NewEvent,
    Outcome, PasskeyId, PasskeyState, SecurityKeyKind, SecurityKeyState, User, UserId, WorkspaceId,
};
use behalf_store::{NewPasskey, Store, StoreError, WriteSet};
use tokio::sync::watch;

use crate::credentials::StageCredentials;
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

/// Where one item ended: its final state and why.
struct Finish {
    state: ItemState,
    outcome: ItemOutcome,
    /// The RP has the passkey: recorded with the item's final state, in one commit.
    registration: Option<Registration>,
}

/// A passkey the RP accepted, and the key it lives on.
struct Registration {
    passkey_id: PasskeyId,
    method_id: String,
    key_id: behalf_domain::SecurityKeyId,
}

impl Finish {
    fn skipped(reason: impl Into<String>) -> Self {
        Finish {
            state: ItemState::Skipped,
            outcome: ItemOutcome {
                reason: Some(reason.into()),
                ..Default::default()
            },
            registration: None,
        }
    }

    fn failed(reason: impl Into<String>) -> Self {
        Finish {
            state: ItemState::Failed,
            outcome: ItemOutcome {
                reason: Some(reason.into()),
                ..Default::default()
            },
            registration: None,
        }
    }

    fn rp_failed(context: &str, error: &RpError) -> Self {
        Finish {
            state: ItemState::Failed,
            outcome: ItemOutcome {
                reason: Some(format!("{context}: {}", error.message)),
                error_code: error.code.clone(),
                request_id: error.request_id.clone(),
                passkey_id: None,
            },
            registration: None,
        }
    }
}

/// Items a run has claimed and not yet started, shared by its workers.
#[derive(Default)]
struct Claims {
    queue: tokio::sync::Mutex<VecDeque<Claim>>,
}

/// Items claimed in one query at most: enough to save most of the reads, few enough that a
/// stopped or dead run holds back little.
const CLAIM_BATCH: usize = 32;

/// A claimed item and what was known of its user when it was claimed.
struct Claim {
    item: behalf_domain::Item,
    user: User,
    /// The user's passkeys on this RP.
    passkeys: Vec<behalf_domain::Passkey>,
    /// The user's current vault key, if any.
    vault_key: Option<behalf_domain::SecurityKey>,
}

/// Where one pass over an item ended.
enum Step {
    Done(Finish, Option<PasskeyId>),
    /// Not finished, nothing lost: give the lease back and try again later.
    Retry(String),
}

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
        let options = serde_json::json!({ "kind": kind });
        Ok(store
            .create_job(self.inner.workspace_id, rp_id, &options, actor, users)
            .await?)
    }

    /// Works on `job` until no item is left that this instance can claim, or `stop` turns true
    /// (then in-flight items finish and the rest stay for the next run).
    pub async fn run(
        &self,
        job_id: JobId,
        progress: &Progress,
        stop: watch::Receiver<bool>,
    ) -> Result<RunSummary, EngineError> {
        self.release_dead_local_leases(job_id).await?;
        let before = progress.snapshot();
        let claims = Claims::default();
        let workers = (0..self.inner.options.concurrency.max(1)).map(|_| {
            let engine = self.clone();
            let stop = stop.clone();
            let claims = &claims;
            async move { engine.work(job_id, progress, stop, claims).await }
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
        progress: &Progress,
        stop: watch::Receiver<bool>,
        claims: &Claims,
    ) -> Result<(), EngineError> {
        let inner = &self.inner;
        let lease_ms = i64::try_from(inner.options.lease.as_millis()).unwrap_or(i64::MAX);
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            let Some(claim) = self.next_claim(job_id, lease_ms, claims).await? else {
                return Ok(());
            };
            let step = self.step(&claim).await?;
            let Claim { item, user, .. } = claim;
            match step {
                Step::Done(finish, passkey_id) => {
                    let outcome = ItemOutcome {
                        passkey_id,
                        ..finish.outcome
                    };
                    // The item's final state, the passkey's and the event: one commit.
                    let mut set = WriteSet::new();
                    if let Some(registration) = &finish.registration {
                        set.mark_passkey_registered(
                            registration.passkey_id,
                            &registration.method_id,
                        );
                        set.set_security_key_state(registration.key_id, SecurityKeyState::Active);
                    }
                    set.update_item(item.id, &inner.options.worker_id, finish.state, &outcome);
                    self.record(&mut set, &user, finish.state, &outcome);
                    match inner.store.commit(set).await {
                        // Our lease expired and another worker owns the item now: its outcome
                        // counts (it finds what we registered by listing).
                        Err(StoreError::LeaseLost { .. }) => continue,
                        other => other?,
                    }
                    report(progress, &user, finish.state, &outcome);
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

    /// The next item to work on, with what `step` needs to know about its user. Items are
    /// claimed a few at a time, and their users, passkeys and keys read in one query each.
    async fn next_claim(
        &self,
        job_id: JobId,
        lease_ms: i64,
        claims: &Claims,
    ) -> Result<Option<Claim>, EngineError> {
        let inner = &self.inner;
        let mut queue = claims.queue.lock().await;
        if let Some(claim) = queue.pop_front() {
            return Ok(Some(claim));
        }
        let batch = i64::try_from(inner.options.concurrency.clamp(1, CLAIM_BATCH)).unwrap_or(1);
        let items = inner
            .store
            .claim_items(job_id, &inner.options.worker_id, batch, lease_ms)
            .await?;
        if items.is_empty() {
            return Ok(None);
        }
        let ids: Vec<UserId> = items.iter().map(|i| i.user_id).collect();
        let mut users: HashMap<UserId, User> = inner
            .store
            .get_users(&ids)
            .await?
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
        let mut passkeys = inner
            .store
            .passkeys_of_users(&ids, inner.rp.rp_id())
            .await?;
        let mut keys = inner
            .store
            .current_security_keys(&ids, SecurityKeyKind::Vault)
            .await?;
        for item in items {
            let user = users
                .remove(&item.user_id)
                .ok_or_else(|| StoreError::NotFound {
                    kind: "user",
                    key: item.user_id.to_string(),
                })?;
            queue.push_back(Claim {
                passkeys: passkeys.remove(&user.id).unwrap_or_default(),
                vault_key: keys.remove(&user.id),
                item,
                user,
            });
        }
        Ok(queue.pop_front())
    }

    /// One pass over an item from wherever it stands.
    async fn step(&self, claim: &Claim) -> Result<Step, EngineError> {
        let inner = &self.inner;
        let (item, user) = (&claim.item, &claim.user);
        let rp_id = inner.rp.rp_id();
        let rp_user = rp_user_of(user);

        // A crash may have left a passkey between "sealed" and "known to be registered".
        if let Some(step) = self.reconcile(item, user, &rp_user).await? {
            return Ok(step);
        }
        if !user.enabled || user.lifecycle != Lifecycle::Active {
            return Ok(Step::Done(Finish::skipped("user is disabled"), None));
        }
        if claim
            .passkeys
            .iter()
            .any(|p| p.state == PasskeyState::Registered)
        {
            return Ok(Step::Done(
                Finish::skipped(format!("already has a Behalf passkey on {rp_id}")),
                None,
            ));
        }
        // What is written before the registration is sent, in one commit: the key (when the
        // user gets one now), the sealed credential, the passkey's record and the item's new
        // state.
        let mut before_sending = WriteSet::new();
        let key = match claim.vault_key.clone() {
            Some(key) => key,
            None if inner.options.auto_assign_vault_key => before_sending.assign_security_key(
                inner.workspace_id,
                user.id,
                SecurityKeyKind::Vault,
                "vault",
            ),
            None => {
                return Ok(Step::Done(
                    Finish::skipped("no security key assigned"),
                    None,
                ));
            }
        };

        // pending → options_fetched
        let options_json = match inner.rp.creation_options(&rp_user).await {
            Ok(json) => json,
            Err(e) => return Ok(rp_refusal("fetching creation options", &e)),
        };
        self.advance(item, ItemState::OptionsFetched, None).await?;

        let options = match CreationOptions::from_json(&options_json) {
            Ok(options) => options,
            Err(e) => {
                return Ok(Step::Done(
                    Finish::failed(format!("the RP's creation options are unusable: {e}")),
                    None,
                ));
            }
        };
        if item.attempts > 1 {
            // An earlier attempt died before sending anything: clean up what it left.
            self.destroy_unsent_credentials(user, rp_id, &options.user_handle)
                .await?;
        }

        // options_fetched → credential_created: sealed in the vault and recorded in one commit,
        // then sent.
        let (registration, credential) =
            match inner.authenticator.make_credential_unstored(&options).await {
                Ok(made) => made,
                // The vault's database is unreachable: nothing was made, try again later.
                Err(e @ behalf_authenticator::AuthenticatorError::Store(_)) => {
                    return Ok(Step::Retry(format!("the credential store failed: {e}")));
                }
                Err(e) => {
                    return Ok(Step::Done(
                        Finish::failed(format!("the authenticator refused: {e}")),
                        None,
                    ));
                }
            };
        if let Err(e) = inner
            .authenticator
            .store()
            .stage_insert(&mut before_sending, &credential)
            .await
        {
            return Ok(Step::Retry(format!("the credential store failed: {e}")));
        }
        // The secret is sealed in the set (or stored): the clear key goes (zeroed) now.
        drop(credential);
        let passkey_id = PasskeyId::new();
        let display_name = self.display_name(user, passkey_id);
        before_sending.insert_passkey(&NewPasskey {
            id: passkey_id,
            workspace_id: inner.workspace_id,
            user_id: user.id,
            security_key_id: key.id,
            rp_id: rp_id.to_owned(),
            credential_id: registration.credential.credential_id.clone(),
            public_key_cose: registration.credential.public_key_cose.clone(),
            aaguid: registration.credential.aaguid.to_string(),
            created_by: inner.options.actor.clone(),
        });
        before_sending.update_item(
            item.id,
            &inner.options.worker_id,
            ItemState::CredentialCreated,
            &ItemOutcome {
                passkey_id: Some(passkey_id),
                ..Default::default()
            },
        );
        inner.store.commit(before_sending).await?;

        // credential_created → registered
        match inner
            .rp
            .register(&rp_user, &display_name, registration.response.to_json())
            .await
        {
            Ok(method) => Ok(Step::Done(
                registered_finish(passkey_id, method.id, key.id),
                Some(passkey_id),
            )),
            Err(e) if e.kind == RpErrorKind::Unavailable => {
                // Unknown whether it landed: the next pass reconciles by listing.
                Ok(Step::Retry(e.to_string()))
            }
            Err(e) => {
                // A refusal can follow an earlier attempt of the same POST that did land (a 5xx
                // retried by the client, then "challenge already used"): look before destroying
                // the key, or the RP would keep a method whose key is gone.
                if let Ok(methods) = inner.rp.list(&rp_user).await
                    && let Some(method) = methods
                        .iter()
                        .find(|m| m.display_name.contains(&passkey_tag(passkey_id)))
                {
                    return Ok(Step::Done(
                        registered_finish(passkey_id, method.id.clone(), key.id),
                        Some(passkey_id),
                    ));
                }
                self.abandon(passkey_id, rp_id, &registration.credential.credential_id)
                    .await?;
                Ok(rp_refusal("registering the passkey", &e).with_passkey(passkey_id))
            }
        }
    }

    /// Settles an item an earlier pass left in `credential_created`. `Some` when settled.
    async fn reconcile(
        &self,
        item: &behalf_domain::Item,
        user: &User,
        rp_user: &str,
    ) -> Result<Option<Step>, EngineError> {
        let inner = &self.inner;
        if item.state != ItemState::CredentialCreated {
            return Ok(None);
        }
        let Some(passkey_id) = item.passkey_id else {
            return Ok(None);
        };
        let passkey = inner.store.get_passkey(passkey_id).await?;
        match passkey.state {
            PasskeyState::Registered => {
                return Ok(Some(Step::Done(
                    Finish {
                        state: ItemState::Registered,
                        outcome: ItemOutcome::default(),
                        registration: None,
                    },
                    Some(passkey_id),
                )));
            }
            PasskeyState::Revoked => return Ok(None),
            PasskeyState::Created => {}
        }
        let methods = match inner.rp.list(rp_user).await {
            Ok(methods) => methods,
            Err(e) if e.kind == RpErrorKind::Unavailable => {
                return Ok(Some(Step::Retry(e.to_string())));
            }
            Err(e) => {
                return Ok(Some(
                    rp_refusal("listing the user's passkeys", &e).with_passkey(passkey_id),
                ));
            }
        };
        let tag = passkey_tag(passkey_id);
        if let Some(method) = methods.iter().find(|m| m.display_name.contains(&tag)) {
            tracing::info!(user = %user.upn, "reconciled: the earlier registration had landed");
            return Ok(Some(Step::Done(
                registered_finish(passkey_id, method.id.clone(), passkey.security_key_id),
                Some(passkey_id),
            )));
        }
        // It never arrived: destroy the key, and start over with fresh options.
        self.abandon(passkey_id, &passkey.rp_id, &passkey.credential_id)
            .await?;
        Ok(None)
    }

    /// The RP does not have this passkey and never will: destroy the key, keep the record.
    async fn abandon(
        &self,
        passkey_id: PasskeyId,
        rp_id: &str,
        credential_id: &[u8],
    ) -> Result<(), EngineError> {
        self.inner
            .authenticator
            .store()
            .delete(rp_id, credential_id)
            .await
            .map_err(|e| EngineError::Credentials(e.to_string()))?;
        self.inner.store.mark_passkey_revoked(passkey_id).await?;
        Ok(())
    }

    /// What an attempt that died before sending its registration left behind, destroyed:
    ///
    /// - passkeys recorded `created` whose item never reached `credential_created` (reconcile
    ///   settles those that did, so any still `created` here were never sent: the POST comes only
    ///   after that state is written);
    /// - credentials sealed for this user handle that no passkey record knows (left by a
    ///   credential store that cannot commit with the passkey's record, unlike the vault, or by
    ///   an earlier release that sealed in a commit of its own).
    async fn destroy_unsent_credentials(
        &self,
        user: &User,
        rp_id: &str,
        user_handle: &[u8],
    ) -> Result<(), EngineError> {
        for passkey in self.inner.store.passkeys_of(user.id, rp_id).await? {
            if passkey.state == PasskeyState::Created {
                tracing::info!(user = %user.upn, "destroying a credential an interrupted run recorded but never sent");
                self.abandon(passkey.id, rp_id, &passkey.credential_id)
                    .await?;
            }
        }
        let vault = self.inner.authenticator.store();
        let sealed = vault
            .list(rp_id, Some(user_handle))
            .await
            .map_err(|e| EngineError::Credentials(e.to_string()))?;
        for credential in sealed {
            if !self
                .inner
                .store
                .passkey_exists(rp_id, &credential.credential_id)
                .await?
            {
                tracing::info!(
                    "destroying a credential an interrupted run sealed but never recorded"
                );
                vault
                    .delete(rp_id, &credential.credential_id)
                    .await
                    .map_err(|e| EngineError::Credentials(e.to_string()))?;
            }
        }
        Ok(())
    }

    async fn advance(
        &self,
        item: &behalf_domain::Item,
        state: ItemState,
        passkey_id: Option<PasskeyId>,
    ) -> Result<(), EngineError> {
        let outcome = ItemOutcome {
            passkey_id,
            ..Default::default()
        };
        self.inner
            .store
            .update_item(item.id, &self.inner.options.worker_id, state, &outcome)
            .await?;
        Ok(())
    }

    fn display_name(&self, user: &User, passkey_id: PasskeyId) -> String {
        let date = behalf_domain::format_millis(behalf_domain::now_millis());
        let rendered = self
            .inner
            .options
            .display_name_template
            .replace("{upn}", user.upn.as_str())
            .replace("{display_name}", &user.display_name)
            .replace("{date}", date.get(..10).unwrap_or(&date));
        format!("{rendered} {}", passkey_tag(passkey_id))
    }
}

/// `host:pid:random`: the host and process let a later run on the same host see that a lease
/// holder died (a killed CLI) and take its items back at once instead of after the lease.
fn local_worker_id() -> String {
    format!(
        "{}:{}:{}",
        host_name(),
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    )
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// Whether a lease holder is a process of this host that no longer exists. Unknown formats and
/// other hosts are never judged dead: their leases simply expire.
fn is_dead_local_worker(worker: &str) -> bool {
    let mut parts = worker.split(':');
    let (Some(host), Some(pid), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    host == host_name()
        && pid != std::process::id()
        && std::path::Path::new("/proc/self").exists()
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

impl<R: RelyingParty, S: CredentialStore> Engine<R, S> {
    async fn release_dead_local_leases(&self, job_id: JobId) -> Result<(), EngineError> {
        for worker in self.inner.store.lease_holders(job_id).await? {
            if is_dead_local_worker(&worker) {
                let released = self.inner.store.release_leases_of(job_id, &worker).await?;
                tracing::info!(%worker, released, "took back the items of a worker that died");
            }
        }
        Ok(())
    }
}

/// The tag that identifies a passkey in its display name: Graph does not return credential ids,
/// so this is how a resumed run recognises its own registration.
pub(crate) fn passkey_tag(passkey_id: PasskeyId) -> String {
    // The random tail of the UUID v7 (its head is a timestamp, shared by a batch).
    let hex = passkey_id.0.simple().to_string();
    format!("#{}", &hex[20..])
}

fn registered_finish(
    passkey_id: PasskeyId,
    method_id: String,
    key_id: behalf_domain::SecurityKeyId,
) -> Finish {
    Finish {
        state: ItemState::Registered,
        outcome: ItemOutcome::default(),
        registration: Some(Registration {
            passkey_id,
            method_id,
            key_id,
        }),
    }
}

/// Counts an item's committed outcome in the run's progress.
fn report(progress: &Progress, user: &User, state: ItemState, outcome: &ItemOutcome) {
    progress.record(ItemReport {
        user_id: user.id,
        upn: user.upn.to_string(),
        state,
        reason: outcome.reason.clone(),
        error_code: outcome.error_code.clone(),
        request_id: outcome.request_id.clone(),
    });
}

/// 1 s after the first failed attempt, doubling, at most 30 s.
fn retry_backoff(attempts: i64) -> Duration {
    let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 5)).unwrap_or(5);
    Duration::from_secs(2u64.pow(exponent)).min(Duration::from_secs(30))
}

fn rp_refusal(context: &str, error: &RpError) -> Step {
    match error.kind {
        RpErrorKind::Unavailable => Step::Retry(format!("{context}: {error}")),
        RpErrorKind::OwnAccount => Step::Done(
            Finish::skipped(
                "the signed-in admin's own account cannot be provisioned on its behalf",
            ),
            None,
        ),
        RpErrorKind::UnknownUser => Step::Done(
            Finish::rp_failed(&format!("{context}: unknown user"), error),
            None,
        ),
        RpErrorKind::Rejected => Step::Done(Finish::rp_failed(context, error), None),
    }
}

impl Step {
    fn with_passkey(self, passkey_id: PasskeyId) -> Step {
        match self {
            Step::Done(finish, _) => Step::Done(finish, Some(passkey_id)),
            retry => retry,
        }
    }
}

/// The user's id at the RP: the directory's object id, else the UPN.
pub(crate) fn rp_user_of(user: &User) -> String {
    user.external_id
        .clone()
        .unwrap_or_else(|| user.upn.to_string())
}

impl<R: RelyingParty, S: CredentialStore> Engine<R, S> {
    pub(crate) fn inner(&self) -> &Inner<R, S> {
        &self.inner
    }
}

#[cfg(test)]
mod tests;
