//! Admins, sessions, API tokens, setup links, device logins and idempotency keys, each test run
//! on SQLite and on PostgreSQL.

use std::sync::Arc;

use behalf_domain::*;
use behalf_store::testing::TestStore;
use behalf_store::{
    DevicePoll, IdempotencyKey, IdempotentJob, NewApiToken, NewSession, StoreError, each_backend,
};

const HOUR: Millis = 3_600_000;

fn session<'a>(admin: &Admin, token_hash: &'a str, expires_at: Millis) -> NewSession<'a> {
    NewSession {
        workspace_id: admin.workspace_id,
        admin_id: admin.id,
        token_hash,
        csrf_hash: "csrf-hash",
        expires_at,
        address: Some("192.0.2.1"),
        user_agent: Some("test"),
    }
}

fn token<'a>(admin: &Admin, token_hash: &'a str, expires_at: Option<Millis>) -> NewApiToken<'a> {
    NewApiToken {
        workspace_id: admin.workspace_id,
        admin_id: admin.id,
        name: "ci",
        scope: TokenScope::Provision,
        kind: TokenKind::Api,
        token_hash,
        expires_at,
    }
}

/// Runs `n` copies of `task` at once (on the test's two worker threads) and collects them.
async fn race<T, F, Fut>(n: usize, task: F) -> Vec<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|_| tokio::spawn(task())).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

each_backend!(
    admins_are_named_by_lowercased_email,
    |store: TestStore| async move {
        let ws = store.ensure_workspace("default").await.unwrap();
        let owner = store
            .create_admin(
                ws.id,
                " Ada@Contoso.com ",
                Role::Owner,
                true,
                Some("hash-1"),
            )
            .await
            .unwrap();
        assert_eq!(owner.username, "ada@contoso.com");
        let err = store
            .create_admin(ws.id, "ADA@contoso.com", Role::Viewer, false, None)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::UniqueViolation { .. }), "{err:?}");

        let (found, hash) = store
            .find_admin(ws.id, "ada@CONTOSO.com")
            .await
            .unwrap()
            .expect("found in any case");
        assert_eq!((found.id, hash.as_deref()), (owner.id, Some("hash-1")));

        let viewer = store
            .create_admin(ws.id, "bob@contoso.com", Role::Viewer, false, None)
            .await
            .unwrap();
        let listed = store.list_admins(ws.id).await.unwrap();
        assert_eq!(
            listed
                .iter()
                .map(|a| (a.admin.username.as_str(), a.has_password, a.disabled))
                .collect::<Vec<_>>(),
            [
                ("ada@contoso.com", true, false),
                ("bob@contoso.com", false, false)
            ]
        );

        store
            .set_admin_password_hash(ws.id, viewer.id, "hash-2")
            .await
            .unwrap();
        store
            .set_admin_role(ws.id, viewer.id, Role::Owner, true)
            .await
            .unwrap();
        let account = store.get_admin(viewer.id).await.unwrap();
        assert!(account.has_password);
        assert_eq!(account.admin.role, Role::Owner);
        assert!(account.admin.can_edit_users);
        assert_eq!(store.count_owners(ws.id).await.unwrap(), 2);

        // A disabled owner neither signs in nor counts as an owner.
        store
            .set_admin_disabled(ws.id, viewer.id, true)
            .await
            .unwrap();
        assert!(
            store
                .find_admin(ws.id, "bob@contoso.com")
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(store.count_owners(ws.id).await.unwrap(), 1);
        assert!(store.get_admin(viewer.id).await.unwrap().disabled);

        // Another workspace cannot touch this one's admins.
        let other = store.ensure_workspace("other").await.unwrap();
        let err = store
            .set_admin_role(other.id, owner.id, Role::Viewer, false)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");

        // Deleting an admin deletes their sessions and tokens with them.
        store
            .create_session(&session(&viewer, "s-bob", now_millis() + HOUR))
            .await
            .unwrap();
        store
            .create_api_token(&token(&viewer, "t-bob", None))
            .await
            .unwrap();
        store.delete_admin(ws.id, viewer.id).await.unwrap();
        assert!(matches!(
            store.get_admin(viewer.id).await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(store.list_api_tokens(ws.id).await.unwrap().is_empty());
        assert!(matches!(
            store.delete_admin(ws.id, viewer.id).await,
            Err(StoreError::NotFound { .. })
        ));
    }
);

each_backend!(
    sessions_are_found_only_while_valid,
    |store: TestStore| async move {
        let ws = store.ensure_workspace("default").await.unwrap();
        let admin = store
            .create_admin(ws.id, "ada@contoso.com", Role::Admin, true, None)
            .await
            .unwrap();
        let now = now_millis();
        let live = store
            .create_session(&session(&admin, "live", now + HOUR))
            .await
            .unwrap();
        store
            .create_session(&session(&admin, "expired", now - 1))
            .await
            .unwrap();
        let err = store
            .create_session(&session(&admin, "live", now + HOUR))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::UniqueViolation { .. }), "{err:?}");

        let grant = store.find_session("live").await.unwrap().expect("valid");
        assert_eq!(grant.session, live);
        assert_eq!(grant.admin, admin);
        assert_eq!(grant.csrf_hash, "csrf-hash");
        assert!(store.find_session("expired").await.unwrap().is_none());
        assert!(store.find_session("unknown").await.unwrap().is_none());

        // Touching a fresh session writes nothing; a stale one is written once.
        assert!(!store.touch_session(&live).await.unwrap());
        sqlx::query("UPDATE admin_sessions SET last_seen_at = last_seen_at - 120000")
            .execute(store.pool())
            .await
            .unwrap();
        let stale = store.find_session("live").await.unwrap().unwrap().session;
        assert!(store.touch_session(&stale).await.unwrap());
        assert!(
            !store.touch_session(&stale).await.unwrap(),
            "a second request with the same stale read does not write again"
        );
        let seen = store.find_session("live").await.unwrap().unwrap().session;
        assert!(seen.last_seen_at >= now);

        // A disabled admin's session is refused, and works again once they are enabled.
        store
            .set_admin_disabled(ws.id, admin.id, true)
            .await
            .unwrap();
        assert!(store.find_session("live").await.unwrap().is_none());
        store
            .set_admin_disabled(ws.id, admin.id, false)
            .await
            .unwrap();
        assert!(store.find_session("live").await.unwrap().is_some());

        assert!(store.revoke_session(live.id).await.unwrap());
        assert!(!store.revoke_session(live.id).await.unwrap());
        assert!(store.find_session("live").await.unwrap().is_none());

        for hash in ["a", "b"] {
            store
                .create_session(&session(&admin, hash, now + HOUR))
                .await
                .unwrap();
        }
        // a, b and the expired one (revoked too: nothing distinguishes it from a live one but
        // the clock); `live` was revoked already.
        assert_eq!(store.revoke_admin_sessions(admin.id).await.unwrap(), 3);
        assert!(store.find_session("a").await.unwrap().is_none());
        assert!(store.find_session("b").await.unwrap().is_none());
    }
);

each_backend!(
    api_tokens_are_found_only_while_valid,
    |store: TestStore| async move {
        let ws = store.ensure_workspace("default").await.unwrap();
        let admin = store
            .create_admin(ws.id, "ada@contoso.com", Role::Admin, true, None)
            .await
            .unwrap();
        let now = now_millis();
        let forever = store
            .create_api_token(&token(&admin, "forever", None))
            .await
            .unwrap();
        store
            .create_api_token(&token(&admin, "until-later", Some(now + HOUR)))
            .await
            .unwrap();
        store
            .create_api_token(&token(&admin, "expired", Some(now - 1)))
            .await
            .unwrap();
        let err = store
            .create_api_token(&token(&admin, "forever", None))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::UniqueViolation { .. }), "{err:?}");

        let grant = store.find_api_token("forever").await.unwrap().unwrap();
        assert_eq!(
            (grant.token.clone(), grant.admin),
            (forever.clone(), admin.clone())
        );
        assert!(store.find_api_token("until-later").await.unwrap().is_some());
        assert!(store.find_api_token("expired").await.unwrap().is_none());

        // The first use is recorded; a request with the same (now stale) read writes no more.
        assert!(store.touch_api_token(&forever).await.unwrap());
        assert!(!store.touch_api_token(&forever).await.unwrap());
        let used = store
            .find_api_token("forever")
            .await
            .unwrap()
            .unwrap()
            .token;
        assert!(used.last_used_at.is_some());
        assert!(!store.touch_api_token(&used).await.unwrap());

        let listed = store.list_api_tokens(ws.id).await.unwrap();
        assert_eq!(listed.len(), 3);
        assert!(listed.iter().all(|t| t.admin_email == "ada@contoso.com"));
        assert!(listed.iter().any(|t| t.token.last_used_at.is_some()));

        store
            .set_admin_disabled(ws.id, admin.id, true)
            .await
            .unwrap();
        assert!(store.find_api_token("forever").await.unwrap().is_none());
        store
            .set_admin_disabled(ws.id, admin.id, false)
            .await
            .unwrap();

        let other = store.ensure_workspace("other").await.unwrap();
        assert!(
            !store.revoke_api_token(other.id, forever.id).await.unwrap(),
            "another workspace cannot revoke it"
        );
        assert!(store.revoke_api_token(ws.id, forever.id).await.unwrap());
        assert!(!store.revoke_api_token(ws.id, forever.id).await.unwrap());
        assert!(store.find_api_token("forever").await.unwrap().is_none());
        let revoked = store.list_api_tokens(ws.id).await.unwrap();
        assert!(
            revoked
                .iter()
                .any(|t| t.token.id == forever.id && t.token.revoked_at.is_some())
        );
    }
);

each_backend!(
    a_setup_link_works_once_under_a_race,
    |store: TestStore| async move {
        let ws = store.ensure_workspace("default").await.unwrap();
        let admin = store
            .create_admin(ws.id, "ada@contoso.com", Role::Owner, true, None)
            .await
            .unwrap();
        let now = now_millis();
        store
            .create_setup_token(ws.id, admin.id, "link", now + HOUR)
            .await
            .unwrap();
        store
            .create_setup_token(ws.id, admin.id, "old-link", now - 1)
            .await
            .unwrap();
        let err = store
            .create_setup_token(ws.id, admin.id, "link", now + HOUR)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::UniqueViolation { .. }), "{err:?}");

        let store = Arc::new(store);
        let outcomes = race(8, || {
            let store = store.clone();
            async move { store.consume_setup_token("link").await.unwrap() }
        })
        .await;
        assert_eq!(
            outcomes.iter().flatten().collect::<Vec<_>>(),
            [&admin.id],
            "exactly one of {outcomes:?} gets the admin"
        );
        assert!(
            store
                .consume_setup_token("old-link")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .consume_setup_token("unknown")
                .await
                .unwrap()
                .is_none()
        );

        // A disabled admin's link does nothing (and stays unused).
        store
            .create_setup_token(ws.id, admin.id, "later", now + HOUR)
            .await
            .unwrap();
        store
            .set_admin_disabled(ws.id, admin.id, true)
            .await
            .unwrap();
        assert!(store.consume_setup_token("later").await.unwrap().is_none());
        store
            .set_admin_disabled(ws.id, admin.id, false)
            .await
            .unwrap();
        assert_eq!(
            store.consume_setup_token("later").await.unwrap(),
            Some(admin.id)
        );
    }
);

each_backend!(
    a_device_login_is_approved_once_and_consumed_by_one_poll,
    |store: TestStore| async move {
        let ws = store.ensure_workspace("default").await.unwrap();
        let admin = store
            .create_admin(ws.id, "ada@contoso.com", Role::Admin, true, None)
            .await
            .unwrap();
        let now = now_millis();
        let login = store
            .create_device_login(ws.id, "device-1", "ABCD-EFGH", now + HOUR)
            .await
            .unwrap();
        let err = store
            .create_device_login(ws.id, "device-2", "ABCD-EFGH", now + HOUR)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::UniqueViolation { .. }), "{err:?}");
        assert_eq!(
            store.find_device_login(ws.id, "ABCD-EFGH").await.unwrap(),
            Some(login.clone())
        );
        assert_eq!(
            store.poll_device_login("device-1").await.unwrap(),
            DevicePoll::Pending
        );
        assert_eq!(
            store.poll_device_login("nope").await.unwrap(),
            DevicePoll::Unknown
        );

        // An admin of another workspace cannot approve it.
        let other = store.ensure_workspace("other").await.unwrap();
        let stranger = store
            .create_admin(other.id, "eve@contoso.com", Role::Owner, true, None)
            .await
            .unwrap();
        assert!(
            !store
                .approve_device_login(ws.id, login.id, stranger.id, TokenScope::Admin)
                .await
                .unwrap()
        );
        assert!(
            store
                .approve_device_login(ws.id, login.id, admin.id, TokenScope::Provision)
                .await
                .unwrap()
        );
        assert!(
            !store
                .approve_device_login(ws.id, login.id, admin.id, TokenScope::Admin)
                .await
                .unwrap(),
            "approved once"
        );

        let store = Arc::new(store);
        let polls = race(8, || {
            let store = store.clone();
            async move { store.poll_device_login("device-1").await.unwrap() }
        })
        .await;
        let approved: Vec<_> = polls
            .iter()
            .filter(|p| matches!(p, DevicePoll::Approved { .. }))
            .collect();
        assert_eq!(
            approved,
            [&DevicePoll::Approved {
                admin: admin.clone(),
                scope: TokenScope::Provision
            }],
            "{polls:?}"
        );
        assert!(
            polls
                .iter()
                .all(|p| matches!(p, DevicePoll::Approved { .. } | DevicePoll::Consumed)),
            "{polls:?}"
        );
        assert_eq!(
            store.poll_device_login("device-1").await.unwrap(),
            DevicePoll::Consumed
        );

        // Expired: neither approved nor consumed.
        let late = store
            .create_device_login(ws.id, "device-3", "LATE-LATE", now - 1)
            .await
            .unwrap();
        assert!(
            !store
                .approve_device_login(ws.id, late.id, admin.id, TokenScope::Read)
                .await
                .unwrap()
        );
        assert_eq!(
            store.poll_device_login("device-3").await.unwrap(),
            DevicePoll::Expired
        );

        // Approved by an admin disabled since: it cannot complete.
        let third = store
            .create_device_login(ws.id, "device-4", "WXYZ-WXYZ", now + HOUR)
            .await
            .unwrap();
        assert!(
            store
                .approve_device_login(ws.id, third.id, admin.id, TokenScope::Read)
                .await
                .unwrap()
        );
        store
            .set_admin_disabled(ws.id, admin.id, true)
            .await
            .unwrap();
        assert_eq!(
            store.poll_device_login("device-4").await.unwrap(),
            DevicePoll::Denied
        );
    }
);

each_backend!(
    an_idempotency_key_makes_one_job_under_a_race,
    |store: TestStore| async move {
        let ws = store.ensure_workspace("default").await.unwrap();
        let admin = store
            .create_admin(ws.id, "ada@contoso.com", Role::Owner, true, None)
            .await
            .unwrap();
        let drafts: Vec<_> = (0..5)
            .map(|i| UserDraft {
                connection_id: None,
                external_id: None,
                upn: Upn::parse(&format!("u{i}@c.com")).unwrap(),
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

        let store = Arc::new(store);
        let outcomes = race(6, || {
            let (store, users) = (store.clone(), users.clone());
            async move {
                let key = IdempotencyKey {
                    key: "retry-me",
                    admin_id: admin.id,
                    request_hash: "h1",
                };
                store
                    .create_job_once(
                        ws.id,
                        &key,
                        MICROSOFT_RP_ID,
                        &serde_json::json!({}),
                        "api",
                        &users,
                    )
                    .await
                    .unwrap()
            }
        })
        .await;
        let created: Vec<&Job> = outcomes
            .iter()
            .filter_map(|o| match o {
                IdempotentJob::Created(job) => Some(job),
                IdempotentJob::Existing(_) => None,
            })
            .collect();
        assert_eq!(created.len(), 1, "{outcomes:?}");
        let job = created[0].clone();
        for outcome in &outcomes {
            if let IdempotentJob::Existing(record) = outcome {
                assert_eq!(
                    (record.job_id, record.request_hash.as_str()),
                    (job.id, "h1")
                );
            }
        }
        let jobs = store.list_jobs(ws.id, 50, None).await.unwrap();
        assert_eq!(
            jobs,
            std::slice::from_ref(&job),
            "no second job, not even half made"
        );
        assert_eq!(store.job_counts(job.id).await.unwrap().total(), 5);

        // The plain insert: recorded once, then the holder is returned unchanged.
        let key = IdempotencyKey {
            key: "other",
            admin_id: admin.id,
            request_hash: "h2",
        };
        assert!(
            store
                .insert_idempotency_key(ws.id, &key, job.id)
                .await
                .unwrap()
                .is_none()
        );
        let again = IdempotencyKey {
            request_hash: "h3",
            ..key
        };
        let holder = store
            .insert_idempotency_key(ws.id, &again, job.id)
            .await
            .unwrap()
            .expect("taken");
        assert_eq!(holder.request_hash, "h2");
    }
);
