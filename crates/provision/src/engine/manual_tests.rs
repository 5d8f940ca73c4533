//! The manual path's step against a tenant and a relay whose answers the test controls.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use behalf_authenticator::{Aaguid, Attestation, Authenticator, AuthenticatorConfig, MemoryStore};
use behalf_domain::{MICROSOFT_RP_ID, Millis, Secret, Upn, UserDraft, now_millis};
use tokio::sync::watch;

use super::*;
use crate::manual::{IssuedPass, MailFailure, PassStatus, UserPasskey};
use crate::rp::RegisteredMethod;

/// The manual path never registers on the user's behalf: every call of the RP is a failure.
struct NoRp;

#[async_trait]
impl RelyingParty for NoRp {
    fn rp_id(&self) -> &str {
        MICROSOFT_RP_ID
    }
    async fn creation_options(&self, _: &str) -> Result<String, RpError> {
        panic!("the manual path fetched creation options")
    }
    async fn register(
        &self,
        _: &str,
        _: &str,
        _: serde_json::Value,
    ) -> Result<RegisteredMethod, RpError> {
        panic!("the manual path registered on the user's behalf")
    }
    async fn list(&self, _: &str) -> Result<Vec<RegisteredMethod>, RpError> {
        Ok(Vec::new())
    }
    async fn delete(&self, _: &str, _: &str) -> Result<(), RpError> {
        Ok(())
    }
}

/// One user's tenant (passes, passkeys) and the mail that went out.
#[derive(Debug, Default)]
struct Tenant {
    passes: Vec<PassStatus>,
    passkeys: Vec<UserPasskey>,
    issued: usize,
    /// How many times the engine looked at the user's passkeys.
    looks: usize,
    mailed: Vec<String>,
    withdrawn: Vec<String>,
}

#[derive(Debug, Default)]
struct FakeManual(Mutex<Tenant>);

impl FakeManual {
    fn tenant(&self) -> std::sync::MutexGuard<'_, Tenant> {
        self.0.lock().unwrap()
    }
}

#[async_trait]
impl ManualPath for FakeManual {
    fn ready(&self) -> Result<(), String> {
        Ok(())
    }
    fn poll(&self) -> Duration {
        Duration::from_millis(10)
    }
    async fn issue_pass(&self, _: &str) -> Result<IssuedPass, RpError> {
        let mut t = self.tenant();
        t.issued += 1;
        let method_id = format!("pass-{}", t.issued);
        // Graph keeps one pass per user: a new one replaces the old.
        t.passes = vec![PassStatus {
            method_id: method_id.clone(),
            expired: false,
        }];
        let now = now_millis();
        Ok(IssuedPass {
            method_id,
            pass: Secret::new(format!("secret-{}", t.issued)),
            issued_at: now,
            expires_at: now + 600_000,
            lifetime_minutes: 10,
            usable_once: true,
        })
    }
    async fn passes(&self, _: &str) -> Result<Vec<PassStatus>, RpError> {
        Ok(self.tenant().passes.clone())
    }
    async fn withdraw_pass(&self, _: &str, method_id: &str) -> Result<(), RpError> {
        let mut t = self.tenant();
        t.passes.retain(|p| p.method_id != method_id);
        t.withdrawn.push(method_id.to_owned());
        Ok(())
    }
    async fn passkeys(&self, _: &str) -> Result<Vec<UserPasskey>, RpError> {
        let mut t = self.tenant();
        t.looks += 1;
        Ok(t.passkeys.clone())
    }
    async fn mail_pass(&self, _: &User, pass: &IssuedPass) -> Result<String, MailFailure> {
        self.tenant().mailed.push(pass.method_id.clone());
        Ok("user@contoso.com".into())
    }
}

/// SQLite, and PostgreSQL too when `BEHALF_TEST_POSTGRES` names a server.
async fn stores() -> Vec<behalf_store::testing::TestStore> {
    let mut stores = vec![behalf_store::testing::sqlite().await];
    stores.extend(behalf_store::testing::postgres().await);
    stores
}

async fn setup(store: &Store) -> (WorkspaceId, Vec<UserId>) {
    let ws = store.ensure_workspace("default").await.unwrap();
    store
        .upsert_users(
            ws.id,
            &[UserDraft {
                connection_id: None,
                external_id: Some("object-id-1".into()),
                upn: Upn::parse("manual@contoso.com").unwrap(),
                display_name: "Manual".into(),
                mail: None,
                department: None,
                enabled: true,
            }],
        )
        .await
        .unwrap();
    let users = store
        .users_needing_passkey(ws.id, MICROSOFT_RP_ID)
        .await
        .unwrap();
    (ws.id, users)
}

fn engine(
    store: &Store,
    ws: WorkspaceId,
    manual: Arc<FakeManual>,
) -> Engine<NoRp, Arc<MemoryStore>> {
    let authenticator = Authenticator::new(
        AuthenticatorConfig {
            aaguid: Aaguid([7; 16]),
            attestation: Attestation::None,
        },
        Arc::new(MemoryStore::new()),
    );
    let options = EngineOptions {
        concurrency: 1,
        manual: Some(manual),
        ..EngineOptions::default()
    };
    Engine::new(store.clone(), ws, NoRp, authenticator, options)
}

async fn only_item(store: &Store, job: JobId) -> behalf_domain::Item {
    let rows = store.job_items(job, None, None, 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    rows[0].item.clone()
}

/// Runs the job until the engine has looked at the user's passkeys once more (the item is due
/// again after the poll), for up to 10 s.
async fn look_again(engine: &Engine<NoRp, Arc<MemoryStore>>, manual: &FakeManual, job: JobId) {
    let before = manual.tenant().looks;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (_stop_tx, stop) = watch::channel(false);
    while manual.tenant().looks == before {
        assert!(
            std::time::Instant::now() < deadline,
            "no new look at the user's passkeys"
        );
        engine
            .run_available(job, &Progress::new(), stop.clone())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn own_passkey(created_at: Millis) -> UserPasskey {
    UserPasskey {
        id: "users-own".into(),
        display_name: "My YubiKey".into(),
        created_at: Some(created_at),
        model: Some("YubiKey 5 Series".into()),
    }
}

#[tokio::test]
async fn a_pass_issued_but_never_recorded_is_replaced_and_a_recorded_one_never_mailed_again() {
    for store in stores().await {
        replaced_then_registered(&store).await;
    }
}

async fn replaced_then_registered(store: &Store) {
    let (ws, users) = setup(store).await;
    let manual = Arc::new(FakeManual::default());
    let engine = engine(store, ws, Arc::clone(&manual));
    let job = engine
        .job_for_mode("manual:test", JobMode::Manual, &users, "admin:bob")
        .await
        .unwrap();
    // An earlier attempt claimed the item, issued a pass and died before recording it; its
    // lease has run out (it ended a millisecond before it was taken).
    let dead = store
        .claim_items(job.id, "elsewhere:1:dead", 1, -1)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    manual.tenant().issue_stand_in();

    let (_stop_tx, stop) = watch::channel(false);
    let summary = engine
        .run_available(job.id, &Progress::new(), stop.clone())
        .await
        .unwrap();
    assert_eq!(summary.remaining, 1);
    let item = only_item(store, job.id).await;
    assert_eq!(item.state, ItemState::WaitingForUser);
    {
        let t = manual.tenant();
        assert_eq!(t.withdrawn, ["pass-1"], "the unaccounted pass is deleted");
        assert_eq!(t.mailed, ["pass-2"], "only the new pass is mailed");
    }
    let pass = item.pass.expect("the mailed pass is recorded");
    assert_eq!(pass.method_id, "pass-2");

    // Later runs look at the user's methods again and again; nothing more is issued or mailed.
    for _ in 0..3 {
        look_again(&engine, &manual, job.id).await;
    }
    assert_eq!(manual.tenant().mailed.len(), 1);
    assert_eq!(manual.tenant().issued, 2);

    // A passkey older than the pass is not the user's answer to it; a new one is.
    manual.tenant().passkeys = vec![own_passkey(pass.issued_at - 60_000)];
    look_again(&engine, &manual, job.id).await;
    assert_eq!(
        only_item(store, job.id).await.state,
        ItemState::WaitingForUser
    );
    manual
        .tenant()
        .passkeys
        .push(own_passkey(pass.issued_at + 1));
    let summary = engine.run(job.id, &Progress::new(), stop).await.unwrap();
    assert_eq!(summary.registered, 1);
    let item = only_item(store, job.id).await;
    assert_eq!(item.state, ItemState::Registered);
    assert!(item.passkey_id.is_none(), "the passkey is the user's own");
    assert!(item.reason.unwrap().contains("My YubiKey"));
    assert_eq!(manual.tenant().withdrawn, ["pass-1", "pass-2"]);
    let events = store
        .list_events(ws, &behalf_store::EventFilter::default())
        .await
        .unwrap();
    let by_user: Vec<_> = events
        .iter()
        .filter(|e| e.action == EventAction::PasskeyRegisteredByUser)
        .collect();
    assert_eq!(by_user.len(), 1);
    assert_eq!(by_user[0].actor, "admin:bob");
    assert_eq!(by_user[0].detail.rp_method_id.as_deref(), Some("users-own"));
}

#[tokio::test]
async fn a_pass_that_expires_unused_fails_the_item_as_tap_expired() {
    for store in stores().await {
        expired(&store).await;
    }
}

async fn expired(store: &Store) {
    let (ws, users) = setup(store).await;
    let manual = Arc::new(FakeManual::default());
    let engine = engine(store, ws, Arc::clone(&manual));
    let job = engine
        .job_for_mode("manual:test", JobMode::Manual, &users, "admin:bob")
        .await
        .unwrap();
    let (_stop_tx, stop) = watch::channel(false);
    engine
        .run_available(job.id, &Progress::new(), stop.clone())
        .await
        .unwrap();
    assert_eq!(
        only_item(store, job.id).await.state,
        ItemState::WaitingForUser
    );
    manual.tenant().passes[0].expired = true;
    let summary = engine.run(job.id, &Progress::new(), stop).await.unwrap();
    assert_eq!((summary.failed, summary.remaining), (1, 0));
    let item = only_item(store, job.id).await;
    assert_eq!(item.state, ItemState::Failed);
    assert_eq!(item.error_code.as_deref(), Some("tap_expired"));
    assert!(item.reason.unwrap().contains("expired"));
    assert_eq!(
        store.get_job(job.id).await.unwrap().state,
        JobState::Completed
    );
    // Asked again, the user gets a new job (this one is over) and, in it, a new pass.
    let again = engine
        .job_for_mode("manual:test", JobMode::Manual, &users, "admin:bob")
        .await
        .unwrap();
    assert_ne!(again.id, job.id);
    let item = only_item(store, again.id).await;
    assert_eq!((item.state, item.pass), (ItemState::Pending, None));
}

impl Tenant {
    /// A pass issued by an attempt that died before recording it.
    fn issue_stand_in(&mut self) {
        self.issued += 1;
        self.passes = vec![PassStatus {
            method_id: format!("pass-{}", self.issued),
            expired: false,
        }];
    }
}
