//! Password-reset links, each test run on SQLite and on PostgreSQL: a link works once (also
//! under a race), not after it expires, and a refused password gives it back.

use std::sync::Arc;

use behalf_domain::*;
use behalf_store::testing::TestStore;
use behalf_store::{Store, each_backend};

const MINUTE: Millis = 60_000;
const MAX_ATTEMPTS: i64 = 5;

async fn user_of(store: &Store, ws: WorkspaceId, upn: &str) -> User {
    store
        .create_user(
            ws,
            &UserDraft {
                connection_id: None,
                external_id: None,
                upn: Upn::parse(upn).unwrap(),
                display_name: "Ada".into(),
                mail: None,
                department: None,
                enabled: true,
            },
        )
        .await
        .unwrap()
}

each_backend!(
    a_reset_link_works_once_and_not_after_it_expires,
    |store: TestStore| async move {
        let ws = store.ensure_workspace("default").await.unwrap();
        let ada = user_of(&store, ws.id, "ada@contoso.com").await;
        let now = 1_000_000 * MINUTE;
        let link = store
            .create_reset_link(ws.id, ada.id, "hash-1", now, now + 30 * MINUTE)
            .await
            .unwrap();
        assert_eq!(
            (link.user_id, link.used_at, link.attempts),
            (ada.id, None, 0)
        );
        let found = store.find_reset_link(ws.id, "hash-1").await.unwrap();
        assert_eq!(found.as_ref(), Some(&link));
        assert_eq!(store.find_reset_link(ws.id, "nope").await.unwrap(), None);
        // Another workspace does not see it.
        let other = store.ensure_workspace("other").await.unwrap();
        assert_eq!(
            store.find_reset_link(other.id, "hash-1").await.unwrap(),
            None
        );
        assert!(
            store
                .redeem_reset_link(other.id, "hash-1", now, MAX_ATTEMPTS)
                .await
                .unwrap()
                .is_none()
        );

        // Redeemed once: the user; a second time: nothing.
        let at = now + MINUTE;
        let redeemed = store
            .redeem_reset_link(ws.id, "hash-1", at, MAX_ATTEMPTS)
            .await
            .unwrap()
            .expect("redeemed");
        assert_eq!((redeemed.user_id, redeemed.used_at), (ada.id, Some(at)));
        assert!(
            store
                .redeem_reset_link(ws.id, "hash-1", at + 1, MAX_ATTEMPTS)
                .await
                .unwrap()
                .is_none()
        );

        // Expiry: valid up to its last millisecond, not at or after it.
        let end = now + 30 * MINUTE;
        store
            .create_reset_link(ws.id, ada.id, "hash-2", now, end)
            .await
            .unwrap();
        assert!(
            store
                .redeem_reset_link(ws.id, "hash-2", end, MAX_ATTEMPTS)
                .await
                .unwrap()
                .is_none(),
            "expired at its end"
        );
        assert!(
            store
                .redeem_reset_link(ws.id, "hash-2", end - 1, MAX_ATTEMPTS)
                .await
                .unwrap()
                .is_some()
        );
    }
);

each_backend!(
    a_refused_password_gives_the_link_back_until_too_many,
    |store: TestStore| async move {
        let ws = store.ensure_workspace("default").await.unwrap();
        let ada = user_of(&store, ws.id, "ada@contoso.com").await;
        let now = 1_000_000 * MINUTE;
        store
            .create_reset_link(ws.id, ada.id, "hash", now, now + 30 * MINUTE)
            .await
            .unwrap();
        for attempt in 0..MAX_ATTEMPTS {
            let at = now + attempt;
            let link = store
                .redeem_reset_link(ws.id, "hash", at, MAX_ATTEMPTS)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("attempt {attempt}"));
            assert_eq!(link.attempts, attempt);
            assert!(store.release_reset_link(&link.id, at).await.unwrap());
            // Given back once only: a stale release does nothing.
            assert!(!store.release_reset_link(&link.id, at).await.unwrap());
        }
        assert!(
            store
                .redeem_reset_link(ws.id, "hash", now + 100, MAX_ATTEMPTS)
                .await
                .unwrap()
                .is_none(),
            "spent after {MAX_ATTEMPTS} refused passwords"
        );
        let link = store.find_reset_link(ws.id, "hash").await.unwrap().unwrap();
        assert_eq!((link.attempts, link.used_at), (MAX_ATTEMPTS, None));
    }
);

each_backend!(
    of_concurrent_redemptions_exactly_one_gets_the_link,
    |store: TestStore| async move {
        let ws = store.ensure_workspace("default").await.unwrap();
        let ada = user_of(&store, ws.id, "ada@contoso.com").await;
        let now = now_millis();
        store
            .create_reset_link(ws.id, ada.id, "raced", now, now + 30 * MINUTE)
            .await
            .unwrap();
        let store = Arc::new(store.store.clone());
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .redeem_reset_link(ws.id, "raced", now_millis(), MAX_ATTEMPTS)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut won = 0;
        for h in handles {
            won += usize::from(h.await.unwrap().is_some());
        }
        assert_eq!(won, 1);
    }
);
