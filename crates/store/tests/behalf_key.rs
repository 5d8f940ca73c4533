//! Behalf Key's rows, each test run on SQLite and on PostgreSQL: a pairing code pairs once and
//! only before it expires, even when two pairings race; the PIN's retries are taken before the
//! PIN is checked, so parallel guesses never get more tries than are left; revocation.

use behalf_domain::*;
use behalf_store::testing::TestStore;
use behalf_store::{PinAttempt, PinOnPairing, each_backend};

const NOW: Millis = 1_800_000_000_000;

async fn user(store: &TestStore) -> (Workspace, User) {
    let ws = store.ensure_workspace("default").await.unwrap();
    let draft = UserDraft {
        connection_id: None,
        external_id: Some("e-1".into()),
        upn: Upn::parse("alice@contoso.example").unwrap(),
        display_name: "Alice".into(),
        mail: None,
        department: None,
        enabled: true,
    };
    store.upsert_users(ws.id, &[draft]).await.unwrap();
    let user = store
        .find_user_by_upn(ws.id, &Upn::parse("alice@contoso.example").unwrap())
        .await
        .unwrap()
        .unwrap();
    (ws, user)
}

fn pairing(ws: &Workspace, user: &User) -> KeyPairing {
    KeyPairing {
        id: KeyPairingId::new(),
        workspace_id: ws.id,
        user_id: user.id,
        role: DeviceRole::User,
        created_by: "test".into(),
        created_at: NOW,
        expires_at: NOW + 900_000,
        used_at: None,
    }
}

fn device(ws: &Workspace, user: &User, thumbprint: &str) -> KeyDevice {
    KeyDevice {
        id: KeyDeviceId::new(),
        workspace_id: ws.id,
        user_id: user.id,
        name: "laptop".into(),
        role: DeviceRole::User,
        thumbprint: thumbprint.into(),
        public_key_jwk: "{}".into(),
        created_at: NOW,
        last_seen_at: None,
        revoked_at: None,
    }
}

each_backend!(
    a_pairing_code_pairs_one_device_once_and_not_after_it_expires,
    |store: TestStore| async move {
        let (ws, user) = user(&store).await;
        let p = pairing(&ws, &user);
        store.create_key_pairing(&p, "hash-1").await.unwrap();
        assert_eq!(
            store.live_key_pairing("hash-1", NOW).await.unwrap(),
            Some(p.clone())
        );
        assert_eq!(store.live_key_pairing("hash-2", NOW).await.unwrap(), None);
        assert_eq!(
            store
                .live_key_pairing("hash-1", p.expires_at)
                .await
                .unwrap(),
            None,
            "expired"
        );
        // Two devices race for one code: exactly one is paired.
        let (a, b) = (device(&ws, &user, "t-a"), device(&ws, &user, "t-b"));
        let (ra, rb) = tokio::join!(
            store.pair_key_device(p.id, &a, PinOnPairing::Set("pin-hash"), NOW),
            store.pair_key_device(p.id, &b, PinOnPairing::Set("pin-hash"), NOW),
        );
        assert_eq!(
            [ra.unwrap(), rb.unwrap()].iter().filter(|&&ok| ok).count(),
            1
        );
        let devices = store.list_key_devices(ws.id, user.id).await.unwrap();
        assert_eq!(devices.len(), 1);
        assert_eq!(store.live_key_pairing("hash-1", NOW).await.unwrap(), None);
        // An expired code pairs nothing.
        let late = pairing(&ws, &user);
        store.create_key_pairing(&late, "hash-3").await.unwrap();
        let c = device(&ws, &user, "t-c");
        assert!(
            !store
                .pair_key_device(late.id, &c, PinOnPairing::Keep, late.expires_at)
                .await
                .unwrap()
        );
        assert!(
            store
                .key_device_by_thumbprint("t-c")
                .await
                .unwrap()
                .is_none()
        );
        // The PIN was set with all its retries.
        let pin = store.key_pin(user.id).await.unwrap().unwrap();
        assert_eq!(
            (pin.hash.as_str(), pin.retries),
            ("pin-hash", KeyPin::MAX_RETRIES)
        );
    }
);

each_backend!(
    pin_retries_are_taken_first_and_run_out,
    |store: TestStore| async move {
        let (ws, user) = user(&store).await;
        assert_eq!(
            store.take_key_pin_attempt(user.id, NOW).await.unwrap(),
            PinAttempt::NoPin
        );
        let p = pairing(&ws, &user);
        store.create_key_pairing(&p, "h").await.unwrap();
        let d = device(&ws, &user, "t");
        assert!(
            store
                .pair_key_device(p.id, &d, PinOnPairing::Set("ph"), NOW)
                .await
                .unwrap()
        );
        // Twelve guesses at once: only eight are ever taken.
        let guesses =
            futures::future::join_all((0..12).map(|_| store.take_key_pin_attempt(user.id, NOW)))
                .await;
        let taken: Vec<i64> = guesses
            .into_iter()
            .filter_map(|g| match g.unwrap() {
                PinAttempt::Taken { retries_left, .. } => Some(retries_left),
                _ => None,
            })
            .collect();
        let mut sorted = taken.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..8).collect::<Vec<_>>(), "{taken:?}");
        assert_eq!(
            store.take_key_pin_attempt(user.id, NOW).await.unwrap(),
            PinAttempt::Blocked
        );
        // A right PIN checked meanwhile does not unblock it.
        store.key_pin_verified(user.id, NOW).await.unwrap();
        assert!(store.key_pin(user.id).await.unwrap().unwrap().blocked());
        // A new pairing sets a new PIN, with all its retries.
        let again = pairing(&ws, &user);
        store.create_key_pairing(&again, "h2").await.unwrap();
        let d2 = device(&ws, &user, "t2");
        assert!(
            store
                .pair_key_device(again.id, &d2, PinOnPairing::Set("ph2"), NOW)
                .await
                .unwrap()
        );
        match store.take_key_pin_attempt(user.id, NOW).await.unwrap() {
            PinAttempt::Taken { hash, retries_left } => {
                assert_eq!((hash.as_str(), retries_left), ("ph2", 7));
            }
            other => panic!("{other:?}"),
        }
        store.key_pin_verified(user.id, NOW).await.unwrap();
        assert_eq!(store.key_pin(user.id).await.unwrap().unwrap().retries, 8);
    }
);

each_backend!(
    a_device_is_revoked_once_and_stays_listed,
    |store: TestStore| async move {
        let (ws, user) = user(&store).await;
        let p = pairing(&ws, &user);
        store.create_key_pairing(&p, "h").await.unwrap();
        let d = device(&ws, &user, "t");
        assert!(
            store
                .pair_key_device(p.id, &d, PinOnPairing::Keep, NOW)
                .await
                .unwrap()
        );
        // Another workspace cannot revoke it.
        let other = store.ensure_workspace("other").await.unwrap();
        assert!(!store.revoke_key_device(other.id, d.id, NOW).await.unwrap());
        assert!(store.revoke_key_device(ws.id, d.id, NOW + 1).await.unwrap());
        assert!(!store.revoke_key_device(ws.id, d.id, NOW + 2).await.unwrap());
        let listed = store.list_key_devices(ws.id, user.id).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].revoked_at, Some(NOW + 1));
        let by_key = store.key_device_by_thumbprint("t").await.unwrap().unwrap();
        assert_eq!(by_key.revoked_at, Some(NOW + 1));
    }
);
