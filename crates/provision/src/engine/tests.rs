//! The engine against an in-memory relying party whose answers the test controls.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use behalf_authenticator::{Aaguid, Attestation, Authenticator, AuthenticatorConfig, MemoryStore};
use behalf_domain::{ItemState, MICROSOFT_RP_ID, Upn, UserDraft};
use tokio::sync::{Notify, watch};

use super::*;
use crate::rp::RegisteredMethod;

/// Registers whatever it is sent, but holds the first registration until the test opens the gate.
/// Clones share their state, as two workers share one tenant.
#[derive(Clone, Default)]
struct SlowRp(Arc<Gates>);

#[derive(Default)]
struct Gates {
    calls: AtomicUsize,
    registrations: AtomicUsize,
    entered: Notify,
    gate: Notify,
}

#[async_trait]
impl RelyingParty for SlowRp {
    fn rp_id(&self) -> &str {
        MICROSOFT_RP_ID
    }

    async fn creation_options(&self, user: &str) -> Result<String, RpError> {
        Ok(serde_json::json!({"publicKey": {
            "challenge": "c2xvdy1ycC1jaGFsbGVuZ2UtMzItYnl0ZXMtbG9uZy4uLg",
            "rp": {"id": MICROSOFT_RP_ID, "name": "Microsoft"},
            "user": {"id": "dXNlci1oYW5kbGU", "name": user, "displayName": user},
            "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
        }})
        .to_string())
    }

    async fn register(
        &self,
        _user: &str,
        display_name: &str,
        _credential: serde_json::Value,
    ) -> Result<RegisteredMethod, RpError> {
        // Only the first registration is held, so a second worker that wrongly took the item
        // over would register at once (and the test see two) instead of hanging.
        if self.0.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            self.0.entered.notify_one();
            self.0.gate.notified().await;
        }
        let n = self.0.registrations.fetch_add(1, Ordering::SeqCst);
        Ok(RegisteredMethod {
            id: format!("method-{n}"),
            display_name: display_name.to_owned(),
        })
    }

    async fn list(&self, _user: &str) -> Result<Vec<RegisteredMethod>, RpError> {
        Ok(Vec::new())
    }

    async fn delete(&self, _user: &str, _method_id: &str) -> Result<(), RpError> {
        Ok(())
    }
}

fn engine(
    store: &Store,
    workspace: WorkspaceId,
    rp: SlowRp,
    keys: Arc<MemoryStore>,
    lease: Duration,
) -> Engine<SlowRp, Arc<MemoryStore>> {
    let authenticator = Authenticator::new(
        AuthenticatorConfig {
            aaguid: Aaguid([7; 16]),
            attestation: Attestation::None,
        },
        keys,
    );
    let options = EngineOptions {
        concurrency: 1,
        lease,
        ..EngineOptions::default()
    };
    Engine::new(store.clone(), workspace, rp, authenticator, options)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_waiting_on_a_slow_rp_keeps_its_lease_so_nobody_registers_twice() {
    let store = behalf_store::testing::sqlite().await;
    let ws = store.ensure_workspace("default").await.unwrap();
    store
        .upsert_users(
            ws.id,
            &[UserDraft {
                connection_id: None,
                external_id: Some("object-id-1".into()),
                upn: Upn::parse("slow@contoso.com").unwrap(),
                display_name: "Slow".into(),
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
    let rp = SlowRp::default();
    let keys = Arc::new(MemoryStore::new());
    let lease = Duration::from_millis(300);
    let first = engine(&store, ws.id, rp.clone(), Arc::clone(&keys), lease);
    let second = engine(&store, ws.id, rp.clone(), keys, lease);
    let job = first.job_for("automatic", &users).await.unwrap();

    let (_stop_tx, stop) = watch::channel(false);
    let running = {
        let (first, stop) = (first.clone(), stop.clone());
        tokio::spawn(async move { first.run(job.id, &Progress::new(), stop).await })
    };
    rp.0.entered.notified().await;
    // The registration now takes several times the lease; the first worker keeps renewing it.
    tokio::time::sleep(lease * 4).await;
    let meanwhile = second.run(job.id, &Progress::new(), stop).await.unwrap();
    assert_eq!(
        rp.0.registrations.load(Ordering::SeqCst),
        0,
        "the second worker took the item over and registered it again"
    );
    assert_eq!(
        meanwhile.registered, 0,
        "the second worker found nothing to claim"
    );
    assert_eq!(meanwhile.remaining, 1);

    rp.0.gate.notify_one();
    let done = running.await.unwrap().unwrap();
    assert_eq!(done.registered, 1);
    assert_eq!(rp.0.registrations.load(Ordering::SeqCst), 1);
    assert_eq!(
        store
            .job_counts(job.id)
            .await
            .unwrap()
            .get(ItemState::Registered),
        1
    );
}

#[test]
fn retries_back_off_exponentially_up_to_half_a_minute() {
    let waits: Vec<u64> = (1..=8).map(|a| retry_backoff(a).as_secs()).collect();
    assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
}

/// Answers the first creationOptions call with a 429's `Retry-After`, registers everything
/// else, and records when each user's calls came.
#[derive(Clone, Default)]
struct ThrottlingRp(Arc<std::sync::Mutex<ThrottleLog>>);

#[derive(Default)]
struct ThrottleLog {
    /// (user, when) of every creationOptions call.
    calls: Vec<(String, std::time::Instant)>,
    registered: usize,
}

const RETRY_AFTER: Duration = Duration::from_millis(600);

#[async_trait]
impl RelyingParty for ThrottlingRp {
    fn rp_id(&self) -> &str {
        MICROSOFT_RP_ID
    }

    async fn creation_options(&self, user: &str) -> Result<String, RpError> {
        let first = {
            let mut log = self.0.lock().unwrap();
            log.calls.push((user.to_owned(), std::time::Instant::now()));
            log.calls.len() == 1
        };
        if first {
            return Err(RpError {
                retry_after: Some(RETRY_AFTER),
                ..RpError::new(RpErrorKind::Unavailable, "Too many requests")
            });
        }
        SlowRp::default().creation_options(user).await
    }

    async fn register(
        &self,
        _user: &str,
        display_name: &str,
        _credential: serde_json::Value,
    ) -> Result<RegisteredMethod, RpError> {
        let mut log = self.0.lock().unwrap();
        log.registered += 1;
        Ok(RegisteredMethod {
            id: format!("method-{}", log.registered),
            display_name: display_name.to_owned(),
        })
    }

    async fn list(&self, _user: &str) -> Result<Vec<RegisteredMethod>, RpError> {
        Ok(Vec::new())
    }

    async fn delete(&self, _user: &str, _method_id: &str) -> Result<(), RpError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_is_kept_with_the_item_the_worker_goes_on_and_no_run_comes_early() {
    let store = behalf_store::testing::sqlite().await;
    let ws = store.ensure_workspace("default").await.unwrap();
    let drafts: Vec<UserDraft> = (0..3)
        .map(|i| UserDraft {
            connection_id: None,
            external_id: Some(format!("object-id-{i}")),
            upn: Upn::parse(&format!("u{i}@contoso.com")).unwrap(),
            display_name: format!("U{i}"),
            mail: None,
            department: None,
            enabled: true,
        })
        .collect();
    store.upsert_users(ws.id, &drafts).await.unwrap();
    let users = store
        .users_needing_passkey(ws.id, MICROSOFT_RP_ID)
        .await
        .unwrap();
    let rp = ThrottlingRp::default();
    let authenticator = || {
        Authenticator::new(
            AuthenticatorConfig {
                aaguid: Aaguid([7; 16]),
                attestation: Attestation::None,
            },
            Arc::new(MemoryStore::new()),
        )
    };
    let options = EngineOptions {
        concurrency: 1,
        ..EngineOptions::default()
    };
    let first = Engine::new(
        store.clone(),
        ws.id,
        rp.clone(),
        authenticator(),
        options.clone(),
    );
    let job = first.job_for("automatic", &users).await.unwrap();
    // The first run goes on with the other users while the throttled one waits, and waits for
    // it rather than ending with it undone.
    let (_stop_tx, stop) = watch::channel(false);
    let done = first.run(job.id, &Progress::new(), stop).await.unwrap();
    assert_eq!((done.registered, done.remaining), (3, 0));
    {
        let log = rp.0.lock().unwrap();
        let (throttled_user, throttled_at) = log.calls[0].clone();
        assert_ne!(
            log.calls[1].0, throttled_user,
            "the worker went on with another user"
        );
        let again = log
            .calls
            .iter()
            .skip(1)
            .find(|(u, _)| *u == throttled_user)
            .expect("the throttled user was tried again");
        assert!(
            again.1.duration_since(throttled_at) >= RETRY_AFTER,
            "sent again {:?} after a Retry-After of {RETRY_AFTER:?}",
            again.1.duration_since(throttled_at)
        );
    }

    // The time is kept with the item: another run (a process started after a crash) does not
    // claim it early either.
    let rp2 = ThrottlingRp::default();
    let second_job = {
        let engine = Engine::new(
            store.clone(),
            ws.id,
            rp2.clone(),
            authenticator(),
            options.clone(),
        );
        let drafts: Vec<UserDraft> = (3..4)
            .map(|i| UserDraft {
                connection_id: None,
                external_id: Some(format!("object-id-{i}")),
                upn: Upn::parse(&format!("u{i}@contoso.com")).unwrap(),
                display_name: format!("U{i}"),
                mail: None,
                department: None,
                enabled: true,
            })
            .collect();
        store.upsert_users(ws.id, &drafts).await.unwrap();
        let users = store
            .users_needing_passkey(ws.id, MICROSOFT_RP_ID)
            .await
            .unwrap();
        engine.job_for("automatic", &users).await.unwrap()
    };
    let crashed = Engine::new(
        store.clone(),
        ws.id,
        rp2.clone(),
        authenticator(),
        options.clone(),
    );
    // The run is dropped while it waits on its one item, deferred (a process that ends there).
    let (_tx, live) = watch::channel(false);
    let stopped = tokio::time::timeout(
        Duration::from_millis(200),
        crashed.run(second_job.id, &Progress::new(), live),
    )
    .await;
    assert!(stopped.is_err(), "still waiting on the deferred item");
    let (_tx, live) = watch::channel(false);
    let next = Engine::new(store.clone(), ws.id, rp2.clone(), authenticator(), options);
    let done = next
        .run(second_job.id, &Progress::new(), live)
        .await
        .unwrap();
    assert_eq!(done.registered, 1);
    let log = rp2.0.lock().unwrap();
    assert_eq!(log.calls.len(), 2);
    assert!(log.calls[1].1.duration_since(log.calls[0].1) >= RETRY_AFTER);
}
