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
