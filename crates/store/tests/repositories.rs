//! Repository behaviour, each test run on SQLite and on PostgreSQL.

use behalf_domain::*;
use behalf_store::testing::TestStore;
use behalf_store::{EventFilter, MembershipChange, NewPasskey, StoreError, each_backend};

fn draft(upn: &str, external_id: Option<&str>, enabled: bool) -> UserDraft {
    UserDraft {
        connection_id: None,
        external_id: external_id.map(str::to_owned),
        upn: Upn::parse(upn).unwrap(),
        display_name: upn.split('@').next().unwrap().to_owned(),
        mail: Some(upn.to_owned()),
        department: Some("Finance".into()),
        enabled,
    }
}

/// The users of `drafts`, stored in a new workspace, and a job for those needing a passkey,
/// with `detail`.
async fn job_of(
    store: &behalf_store::Store,
    drafts: &[UserDraft],
    detail: serde_json::Value,
) -> (Workspace, Job) {
    let ws = store.ensure_workspace("default").await.unwrap();
    store.upsert_users(ws.id, drafts).await.unwrap();
    let users = store
        .users_needing_passkey(ws.id, MICROSOFT_RP_ID)
        .await
        .unwrap();
    let job = store
        .create_job(ws.id, MICROSOFT_RP_ID, &detail, "test", &users)
        .await
        .unwrap();
    (ws, job)
}

each_backend!(
    migrations_are_applied_and_ready,
    |store: TestStore| async move {
        store.readiness().await.expect("ready after connect");
        // Applying again is a no-op, not an error.
        store.migrate().await.expect("idempotent migrations");
    }
);

each_backend!(
    users_upsert_by_directory_id_and_match_upn_case_insensitively,
    |store: TestStore| async move {
        let ws = store.ensure_workspace("default").await.unwrap();
        assert_eq!(
            store.ensure_workspace("default").await.unwrap().id,
            ws.id,
            "workspace is reused"
        );

        let counts = store
            .upsert_users(
                ws.id,
                &[
                    draft("Ada@contoso.com", Some("obj-1"), true),
                    draft("bob@contoso.com", Some("obj-2"), true),
                ],
            )
            .await
            .unwrap();
        assert_eq!(counts.created, 2);

        // The directory renamed Ada: same object id, new UPN; no second user appears.
        store
            .upsert_users(
                ws.id,
                &[draft("ada.lovelace@contoso.com", Some("obj-1"), true)],
            )
            .await
            .unwrap();
        assert_eq!(store.count_users(ws.id).await.unwrap(), 2);
        let ada = store
            .find_user_by_upn(ws.id, &Upn::parse("ADA.LOVELACE@contoso.com").unwrap())
            .await
            .unwrap()
            .expect("found case-insensitively");
        assert_eq!(ada.external_id.as_deref(), Some("obj-1"));
        assert_eq!(ada.upn.as_str(), "ada.lovelace@contoso.com");

        // A second user with Bob's UPN in other case is a conflict, not a silent duplicate.
        let err = store
            .create_user(ws.id, &draft("BOB@contoso.com", None, true))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::UniqueViolation { .. }), "{err:?}");
    }
);

each_backend!(
    disabling_or_removing_a_user_marks_it_for_deprovisioning,
    |store: TestStore| async move {
        let ws = store.ensure_workspace("default").await.unwrap();
        store
            .upsert_users(
                ws.id,
                &[
                    draft("a@c.com", Some("1"), true),
                    draft("b@c.com", Some("2"), true),
                    draft("c@c.com", Some("3"), true),
                ],
            )
            .await
            .unwrap();
        assert_eq!(
            store
                .users_needing_passkey(ws.id, MICROSOFT_RP_ID)
                .await
                .unwrap()
                .len(),
            3
        );

        store
            .upsert_users(ws.id, &[draft("a@c.com", Some("1"), false)])
            .await
            .unwrap();
        assert_eq!(
            store
                .mark_users_removed(ws.id, &["2".into(), "unknown".into()])
                .await
                .unwrap(),
            1
        );

        let pending: Vec<String> = store
            .users_pending_deprovision(ws.id)
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.upn.to_string())
            .collect();
        assert_eq!(pending, ["a@c.com", "b@c.com"]);
        assert_eq!(
            store
                .users_needing_passkey(ws.id, MICROSOFT_RP_ID)
                .await
                .unwrap()
                .len(),
            1
        );

        // Enabled again in the directory: back to active, provisionable again.
        store
            .upsert_users(ws.id, &[draft("a@c.com", Some("1"), true)])
            .await
            .unwrap();
        let a = store
            .find_user_by_external_id(ws.id, "1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.lifecycle, Lifecycle::Active);
        assert!(a.enabled);
    }
);

each_backend!(
    groups_and_memberships_follow_the_directory,
    |store: TestStore| async move {
        let ws = store.ensure_workspace("default").await.unwrap();
        store
            .upsert_users(
                ws.id,
                &[
                    draft("a@c.com", Some("u1"), true),
                    draft("b@c.com", Some("u2"), true),
                ],
            )
            .await
            .unwrap();
        let group = |id: &str, name: &str| GroupDraft {
            connection_id: None,
            external_id: Some(id.into()),
            display_name: name.into(),
            description: None,
        };
        store
            .upsert_groups(ws.id, &[group("g1", "Finance"), group("g2", "Sales")])
            .await
            .unwrap();
        store
            .upsert_groups(ws.id, &[group("g1", "Finance & Ops")])
            .await
            .unwrap();
        let change = |g: &str, u: &str, added| MembershipChange {
            group_external_id: g.into(),
            user_external_id: u.into(),
            added,
        };
        let (applied, unknown) = store
            .apply_memberships(
                ws.id,
                &[
                    change("g1", "u1", true),
                    change("g1", "u2", true),
                    change("g1", "u2", true),
                    change("g9", "u1", true),
                ],
            )
            .await
            .unwrap();
        assert_eq!(
            (applied, unknown),
            (2, 2),
            "a repeated add and an unknown group change nothing"
        );
        store
            .apply_memberships(ws.id, &[change("g1", "u1", false)])
            .await
            .unwrap();

        let g1 = store
            .find_group_by_external_id(ws.id, "g1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(g1.display_name, "Finance & Ops");
        let members = store.group_member_ids(g1.id).await.unwrap();
        let u2 = store
            .find_user_by_external_id(ws.id, "u2")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(members, vec![u2.id]);

        assert_eq!(store.delete_groups(ws.id, &["g1".into()]).await.unwrap(), 1);
        assert_eq!(
            store.count_memberships(ws.id).await.unwrap(),
            0,
            "memberships go with the group"
        );
        assert_eq!(store.list_groups(ws.id).await.unwrap().len(), 1);
    }
);

each_backend!(
    a_registered_passkey_ends_the_need_for_one,
    |store: TestStore| async move {
        let ws = store.ensure_workspace("default").await.unwrap();
        store
            .upsert_users(ws.id, &[draft("a@c.com", Some("u1"), true)])
            .await
            .unwrap();
        let user = store
            .find_user_by_external_id(ws.id, "u1")
            .await
            .unwrap()
            .unwrap();
        let key = store
            .assign_security_key(ws.id, user.id, SecurityKeyKind::Vault, "vault")
            .await
            .unwrap();
        let again = store
            .assign_security_key(ws.id, user.id, SecurityKeyKind::Vault, "vault")
            .await
            .unwrap();
        assert_eq!(key.id, again.id, "an assigned key is reused");

        let passkey = store
            .insert_passkey(&NewPasskey {
                id: PasskeyId::new(),
                workspace_id: ws.id,
                user_id: user.id,
                security_key_id: key.id,
                rp_id: MICROSOFT_RP_ID.into(),
                credential_id: vec![1, 2, 3],
                public_key_cose: vec![0xa5],
                aaguid: "00000000-0000-0000-0000-000000000000".into(),
                created_by: "test".into(),
            })
            .await
            .unwrap();
        assert_eq!(
            store
                .users_needing_passkey(ws.id, MICROSOFT_RP_ID)
                .await
                .unwrap(),
            vec![user.id],
            "created is not registered"
        );
        store
            .mark_passkey_registered(passkey.id, "method-1")
            .await
            .unwrap();
        assert!(
            store
                .users_needing_passkey(ws.id, MICROSOFT_RP_ID)
                .await
                .unwrap()
                .is_empty()
        );
        let stored = store.get_passkey(passkey.id).await.unwrap();
        assert_eq!(stored.state, PasskeyState::Registered);
        assert_eq!(stored.rp_method_id.as_deref(), Some("method-1"));
        assert!(stored.registered_at.is_some());
        assert_eq!(
            store
                .count_passkeys(ws.id, PasskeyState::Registered)
                .await
                .unwrap(),
            1
        );
    }
);

each_backend!(
    an_item_deferred_by_a_retry_after_is_claimed_by_no_run_before_it,
    |store: TestStore| async move {
        let (_, job) = job_of(
            &store,
            &[draft("d@c.com", Some("xd"), true)],
            serde_json::json!({}),
        )
        .await;
        let item = store.claim_items(job.id, "w1", 1, 60_000).await.unwrap();
        assert_eq!(store.next_deferred_in(job.id).await.unwrap(), None);
        // Timed from before the call: the store dates the deferral when it runs the UPDATE,
        // and a round trip to PostgreSQL may take longer than the 10 ms margin below.
        let deferred = std::time::Instant::now();
        store.defer_item(item[0].id, "w1", 400).await.unwrap();
        // Not claimable, by this worker or another (a run started after a crash).
        assert!(
            store
                .claim_items(job.id, "w2", 1, 60_000)
                .await
                .unwrap()
                .is_empty()
        );
        let wait = store
            .next_deferred_in(job.id)
            .await
            .unwrap()
            .expect("waiting");
        assert!((1..=400).contains(&wait), "{wait}");
        // Once the time has passed and before anyone claims it, the item is still reported, as
        // due now: a run that looked for claimable items a moment earlier must not end here.
        tokio::time::sleep(
            std::time::Duration::from_millis(420).saturating_sub(deferred.elapsed()),
        )
        .await;
        assert_eq!(store.next_deferred_in(job.id).await.unwrap(), Some(0));
        let deadline = deferred + std::time::Duration::from_secs(10);
        let again = loop {
            let got = store.claim_items(job.id, "w2", 1, 60_000).await.unwrap();
            if !got.is_empty() {
                break got;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "never claimable again"
            );
            tokio::task::yield_now().await;
        };
        assert!(deferred.elapsed() >= std::time::Duration::from_millis(390));
        // Asking for time is no failed attempt.
        assert_eq!(again[0].attempts, 1);
        assert_eq!(store.next_deferred_in(job.id).await.unwrap(), None);
    }
);

each_backend!(
    the_items_of_a_dead_holder_wait_their_hold_and_the_longest_deferral_is_known,
    |store: TestStore| async move {
        let drafts: Vec<_> = (0..3)
            .map(|i| draft(&format!("h{i}@c.com"), Some(&format!("xh{i}")), true))
            .collect();
        let (_, job) = job_of(&store, &drafts, serde_json::json!({})).await;
        let items = store.claim_items(job.id, "dead", 3, 60_000).await.unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(store.longest_deferral_in(job.id).await.unwrap(), 0);
        let before = std::time::Instant::now();
        store.defer_item(items[0].id, "dead", 300).await.unwrap();
        store.defer_item(items[1].id, "dead", 60_000).await.unwrap();
        let longest = store.longest_deferral_in(job.id).await.unwrap();
        assert!((59_000..=60_000).contains(&longest), "{longest}");
        // The third item, still leased by the dead worker, is released with a hold: nobody
        // may claim it before the hold is over, then anyone may.
        assert_eq!(
            store.release_leases_of(job.id, "dead", 400).await.unwrap(),
            1
        );
        assert!(store.lease_holders(job.id).await.unwrap().is_empty());
        let deadline = before + std::time::Duration::from_secs(10);
        let claimed = loop {
            let got = store.claim_items(job.id, "w2", 3, 60_000).await.unwrap();
            if !got.is_empty() {
                break got;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "never claimable again"
            );
            tokio::task::yield_now().await;
        };
        // The 300 ms deferral ends first, then the 400 ms hold; the minute-long one stays.
        let mut ids: Vec<_> = claimed.iter().map(|i| i.id).collect();
        while ids.len() < 2 {
            let got = store.claim_items(job.id, "w2", 3, 60_000).await.unwrap();
            ids.extend(got.iter().map(|i| i.id));
            assert!(
                std::time::Instant::now() < deadline,
                "the held item came back"
            );
            tokio::task::yield_now().await;
        }
        assert!(before.elapsed() >= std::time::Duration::from_millis(390));
        assert!(
            ids.contains(&items[0].id) && ids.contains(&items[2].id),
            "{ids:?}"
        );
        assert!(!ids.contains(&items[1].id));
        let w3 = store.claim_items(job.id, "w3", 3, 60_000).await.unwrap();
        assert!(w3.is_empty(), "the minute-long deferral still holds");
    }
);

each_backend!(
    job_items_are_leased_to_one_worker_at_a_time,
    |store: TestStore| async move {
        let ws = store.ensure_workspace("default").await.unwrap();
        let drafts: Vec<_> = (0..40)
            .map(|i| draft(&format!("u{i}@c.com"), Some(&format!("x{i}")), true))
            .collect();
        store.upsert_users(ws.id, &drafts).await.unwrap();
        let mut users = store
            .users_needing_passkey(ws.id, MICROSOFT_RP_ID)
            .await
            .unwrap();
        users.push(users[0]);
        let job = store
            .create_job(
                ws.id,
                MICROSOFT_RP_ID,
                &serde_json::json!({"kind": "automatic"}),
                "test",
                &users,
            )
            .await
            .unwrap();
        assert_eq!(
            store
                .job_counts(job.id)
                .await
                .unwrap()
                .get(ItemState::Pending),
            40,
            "duplicates collapse"
        );
        assert_eq!(
            store
                .find_open_job(ws.id, MICROSOFT_RP_ID, "automatic")
                .await
                .unwrap()
                .unwrap()
                .id,
            job.id
        );

        // Four workers claim concurrently: every item goes to exactly one of them.
        let claims = futures::future::join_all((0..4).map(|w| {
            let store = store.store.clone();
            async move {
                store
                    .claim_items(job.id, &format!("w{w}"), 15, 60_000)
                    .await
                    .unwrap()
            }
        }))
        .await;
        let mut claimed: Vec<ItemId> = claims.iter().flatten().map(|i| i.id).collect();
        assert_eq!(claimed.len(), 40);
        claimed.sort();
        claimed.dedup();
        assert_eq!(claimed.len(), 40, "no item was claimed twice");
        assert!(
            store
                .claim_items(job.id, "w9", 10, 60_000)
                .await
                .unwrap()
                .is_empty(),
            "leases are held"
        );

        // Only the lease holder may move an item. (Which worker got items is up to the race: one
        // may have got none.)
        let (holder, item) = claims
            .iter()
            .enumerate()
            .find_map(|(w, items)| items.first().map(|item| (format!("w{w}"), item)))
            .unwrap();
        let err = store
            .update_item(
                item.id,
                "intruder",
                ItemState::Registered,
                &ItemOutcome::default(),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::LeaseLost { .. }), "{err:?}");
        store
            .update_item(
                item.id,
                &holder,
                ItemState::Registered,
                &ItemOutcome::default(),
            )
            .await
            .unwrap();
        assert_eq!(
            store
                .job_counts(job.id)
                .await
                .unwrap()
                .get(ItemState::Registered),
            1
        );

        // A lease that expired (its worker died) is claimed again, attempts counted.
        let job2 = store
            .create_job(
                ws.id,
                MICROSOFT_RP_ID,
                &serde_json::json!({}),
                "test",
                &users[..1],
            )
            .await
            .unwrap();
        let first = store.claim_items(job2.id, "dead", 1, -1).await.unwrap();
        let second = store
            .claim_items(job2.id, "alive", 1, 60_000)
            .await
            .unwrap();
        assert_eq!(first[0].id, second[0].id);
        assert_eq!(second[0].attempts, 2);
        let err = store
            .update_item(
                first[0].id,
                "dead",
                ItemState::Failed,
                &ItemOutcome::default(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::LeaseLost { .. }),
            "the dead worker's late write is refused"
        );

        // A cancelled job's items are claimed by nobody, so a run in progress stops.
        let job3 = store
            .create_job(
                ws.id,
                MICROSOFT_RP_ID,
                &serde_json::json!({}),
                "test",
                &users[..2],
            )
            .await
            .unwrap();
        assert_eq!(
            store
                .claim_items(job3.id, "w", 1, 60_000)
                .await
                .unwrap()
                .len(),
            1
        );
        store
            .set_job_state(job3.id, JobState::Cancelled)
            .await
            .unwrap();
        assert!(
            store
                .claim_items(job3.id, "w", 10, 60_000)
                .await
                .unwrap()
                .is_empty(),
            "nothing is claimed from a cancelled job"
        );

        // A clean stop gives the lease back at once.
        store.release_item(second[0].id, "alive").await.unwrap();
        assert_eq!(
            store
                .claim_items(job2.id, "next", 1, 60_000)
                .await
                .unwrap()
                .len(),
            1
        );
    }
);

each_backend!(
    events_are_append_only_and_filterable,
    |store: TestStore| async move {
        let ws = store.ensure_workspace("default").await.unwrap();
        store
            .upsert_users(ws.id, &[draft("a@c.com", Some("u1"), true)])
            .await
            .unwrap();
        let user = store
            .find_user_by_external_id(ws.id, "u1")
            .await
            .unwrap()
            .unwrap();
        store
            .append_event(
                ws.id,
                NewEvent::new("cli:root", EventAction::PasskeyRegistered, Outcome::Success)
                    .user(user.id)
                    .rp(MICROSOFT_RP_ID),
            )
            .await
            .unwrap();
        store
            .append_event(
                ws.id,
                NewEvent::new("system", EventAction::ImportCompleted, Outcome::Success),
            )
            .await
            .unwrap();

        let for_user = store
            .list_events(
                ws.id,
                &EventFilter {
                    user_id: Some(user.id),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(for_user.len(), 1);
        assert_eq!(for_user[0].action, EventAction::PasskeyRegistered);
        let by_prefix = store
            .list_events(
                ws.id,
                &EventFilter {
                    action_prefix: Some("import.".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(by_prefix.len(), 1);
        let future = store
            .list_events(
                ws.id,
                &EventFilter {
                    since: Some(now_millis() + 60_000),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(future.is_empty());

        // The database itself refuses to rewrite history.
        assert!(
            sqlx::query("UPDATE events SET outcome = 'failure'")
                .execute(store.pool())
                .await
                .is_err()
        );
        assert!(
            sqlx::query("DELETE FROM events")
                .execute(store.pool())
                .await
                .is_err()
        );
        assert_eq!(
            store
                .list_events(ws.id, &EventFilter::default())
                .await
                .unwrap()
                .len(),
            2
        );
    }
);

each_backend!(
    a_renewed_lease_is_not_taken_over_and_open_jobs_are_listed,
    |store: TestStore| async move {
        let (ws, job) = job_of(
            &store,
            &[draft("a@c.com", Some("u1"), true)],
            serde_json::json!({"kind": "automatic"}),
        )
        .await;
        assert_eq!(
            store
                .open_jobs(ws.id)
                .await
                .unwrap()
                .iter()
                .map(|j| j.id)
                .collect::<Vec<_>>(),
            vec![job.id]
        );
        // Claimed with a lease that has already run out: anyone could take the item over...
        let item = store.claim_items(job.id, "slow", 1, -1).await.unwrap();
        assert_eq!(item.len(), 1);
        // ...until the holder renews it.
        assert_eq!(store.renew_leases(job.id, "slow", 60_000).await.unwrap(), 1);
        assert!(
            store
                .claim_items(job.id, "other", 1, 60_000)
                .await
                .unwrap()
                .is_empty(),
            "a renewed lease holds"
        );
        assert_eq!(
            store.renew_leases(job.id, "other", 60_000).await.unwrap(),
            0,
            "only the holder's leases are renewed"
        );
        store
            .update_item(
                item[0].id,
                "slow",
                ItemState::Registered,
                &ItemOutcome::default(),
            )
            .await
            .unwrap();
        store
            .set_job_state(job.id, JobState::Completed)
            .await
            .unwrap();
        assert!(store.open_jobs(ws.id).await.unwrap().is_empty());
    }
);

each_backend!(
    a_due_schedule_goes_to_exactly_one_instance,
    |store: TestStore| async move {
        // Four instances race for a schedule seen for the first time: exactly one wins.
        let wins = futures::future::join_all((0..4).map(|i| {
            let store = store.store.clone();
            async move {
                store
                    .claim_due_schedule("sync:ws", &format!("i{i}"), 60_000)
                    .await
                    .unwrap()
            }
        }))
        .await;
        assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{wins:?}");
        let winner = format!("i{}", wins.iter().position(|w| *w).unwrap());
        let held = store.get_schedule("sync:ws").await.unwrap().unwrap();
        assert_eq!(held.locked_by.as_deref(), Some(winner.as_str()));
        assert!(
            !store
                .claim_due_schedule("sync:ws", "late", 60_000)
                .await
                .unwrap(),
            "held while it runs"
        );
        assert!(
            !store
                .finish_schedule("sync:ws", "late", 0, None)
                .await
                .unwrap(),
            "only the holder finishes it"
        );
        assert!(
            store
                .finish_schedule("sync:ws", &winner, 3_600_000, Some("Graph said no"))
                .await
                .unwrap()
        );
        let done = store.get_schedule("sync:ws").await.unwrap().unwrap();
        assert_eq!(done.locked_by, None);
        assert_eq!(done.last_outcome.as_deref(), Some("failed"));
        assert_eq!(done.last_error.as_deref(), Some("Graph said no"));
        assert!(
            !store
                .claim_due_schedule("sync:ws", "late", 60_000)
                .await
                .unwrap(),
            "not due for an hour"
        );
        // A run that finishes with the next run due now can be taken at once, by anyone.
        assert!(
            store
                .claim_due_schedule("sync:other", "a", 60_000)
                .await
                .unwrap()
        );
        assert!(
            store
                .finish_schedule("sync:other", "a", 0, None)
                .await
                .unwrap()
        );
        assert!(
            store
                .claim_due_schedule("sync:other", "b", 60_000)
                .await
                .unwrap()
        );
        // A holder that died: its lease expires and another instance takes over.
        assert!(store.renew_schedule("sync:other", "b", -1).await.unwrap());
        assert!(
            store
                .claim_due_schedule("sync:other", "c", 60_000)
                .await
                .unwrap()
        );
        assert!(
            !store
                .renew_schedule("sync:other", "b", 60_000)
                .await
                .unwrap(),
            "b lost the lease"
        );
    }
);

each_backend!(
    users_and_memberships_are_written_in_batches_with_the_same_results,
    |store: TestStore| async move {
        let ws = store.ensure_workspace("default").await.unwrap();
        let id = |i: usize| format!("{i:08x}-0000-4000-8000-{i:012x}");
        // Many batches' worth, with one user twice: the last draft wins, as one by one.
        let mut drafts: Vec<UserDraft> = (0..1_500)
            .map(|i| draft(&format!("user{i}@contoso.com"), Some(&id(i)), true))
            .collect();
        let mut again = draft("renamed7@contoso.com", Some(&id(7)), false);
        again.display_name = "Renamed Seven".into();
        drafts.push(again);
        let counts = store.upsert_users(ws.id, &drafts).await.unwrap();
        assert_eq!((counts.created, counts.updated), (1_500, 0));
        let seven = store
            .find_user_by_external_id(ws.id, &id(7))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                seven.upn.as_str(),
                seven.display_name.as_str(),
                seven.enabled
            ),
            ("renamed7@contoso.com", "Renamed Seven", false)
        );
        let counts = store.upsert_users(ws.id, &drafts[..1_200]).await.unwrap();
        assert_eq!((counts.created, counts.updated), (0, 1_200));
        assert_eq!(store.count_users(ws.id).await.unwrap(), 1_500);
        let found = store
            .find_users_by_external_ids(ws.id, &(0..1_600).map(id).collect::<Vec<_>>())
            .await
            .unwrap();
        assert_eq!(found.len(), 1_500);

        let gid = id(99_999);
        store
            .upsert_groups(
                ws.id,
                &[GroupDraft {
                    connection_id: None,
                    external_id: Some(gid.clone()),
                    display_name: "Everyone".into(),
                    description: None,
                }],
            )
            .await
            .unwrap();
        let change = |u: usize, added| MembershipChange {
            group_external_id: gid.clone(),
            user_external_id: id(u),
            added,
        };
        // Adds, a repeat and an unknown user; then removals mixed with a re-add, in order.
        let mut changes: Vec<_> = (0..1_500).map(|u| change(u, true)).collect();
        changes.push(change(3, true));
        changes.push(change(5_000, true));
        assert_eq!(
            store.apply_memberships(ws.id, &changes).await.unwrap(),
            (1_500, 2)
        );
        let mixed = [
            change(1, false),
            change(2, false),
            change(1, true),
            change(9, false),
        ];
        assert_eq!(
            store.apply_memberships(ws.id, &mixed).await.unwrap(),
            (4, 0)
        );
        assert_eq!(store.count_memberships(ws.id).await.unwrap(), 1_498);
    }
);

fn sealed_row(credential_id: u8) -> behalf_store::vault::VaultCredentialRow {
    behalf_store::vault::VaultCredentialRow {
        rp_id: MICROSOFT_RP_ID.into(),
        credential_id: vec![credential_id; 16],
        user_handle: vec![credential_id; 8],
        user_name: format!("user{credential_id}"),
        user_display_name: format!("User {credential_id}"),
        algorithm: -7,
        public_key_cose: vec![0xa5; 77],
        aaguid: "00000000-0000-0000-0000-000000000000".into(),
        sign_count: 0,
        cred_protect: None,
        created_at: now_millis(),
        key: behalf_store::vault::WrappedDataKey {
            master_key_id: "mk".into(),
            wrapped_data_key: vec![1; 60],
        },
        sealed_secret: vec![2; 48],
    }
}

each_backend!(
    concurrent_write_sets_commit_whole_or_not_at_all,
    |store: TestStore| async move {
        let ws = store.ensure_workspace("default").await.unwrap();
        let drafts: Vec<UserDraft> = (0..40)
            .map(|i| {
                draft(
                    &format!("u{i}@contoso.com"),
                    Some(&format!("obj-{i}")),
                    true,
                )
            })
            .collect();
        store.upsert_users(ws.id, &drafts).await.unwrap();
        let mut users = Vec::new();
        for d in &drafts {
            users.push(
                store
                    .find_user_by_upn(ws.id, &d.upn)
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        let ids: Vec<UserId> = users.iter().map(|u| u.id).collect();
        let job = store
            .create_job(ws.id, MICROSOFT_RP_ID, &serde_json::json!({}), "test", &ids)
            .await
            .unwrap();
        let items = store.claim_items(job.id, "w", 40, 60_000).await.unwrap();
        assert_eq!(items.len(), 40);

        // Forty workers at once each record a key, a passkey, the item's new state and an
        // event in one set; every tenth writes as a worker that does not hold the lease.
        let outcomes = futures::future::join_all(items.iter().enumerate().map(|(i, item)| {
            let store = &store;
            async move {
                let mut set = behalf_store::WriteSet::new();
                let key =
                    set.assign_security_key(ws.id, item.user_id, SecurityKeyKind::Vault, "vault");
                let passkey = set.insert_passkey(&NewPasskey {
                    id: PasskeyId::new(),
                    workspace_id: ws.id,
                    user_id: item.user_id,
                    security_key_id: key.id,
                    rp_id: MICROSOFT_RP_ID.into(),
                    credential_id: vec![u8::try_from(i).unwrap(); 16],
                    public_key_cose: vec![0xa5; 77],
                    aaguid: "00000000-0000-0000-0000-000000000000".into(),
                    created_by: "test".into(),
                });
                let worker = if i % 10 == 0 { "intruder" } else { "w" };
                set.update_item(
                    item.id,
                    worker,
                    ItemState::CredentialCreated,
                    &ItemOutcome {
                        passkey_id: Some(passkey.id),
                        ..Default::default()
                    },
                );
                set.append_event(
                    ws.id,
                    NewEvent::new("test", EventAction::PasskeyCreated, Outcome::Success)
                        .user(item.user_id),
                );
                (item, store.commit(set).await)
            }
        }))
        .await;

        for (i, (item, outcome)) in outcomes.iter().enumerate() {
            let passkeys = store
                .passkeys_of(item.user_id, MICROSOFT_RP_ID)
                .await
                .unwrap();
            let keys = store.security_keys_of(item.user_id).await.unwrap();
            let events = store
                .list_events(
                    ws.id,
                    &EventFilter {
                        user_id: Some(item.user_id),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            if i % 10 == 0 {
                assert!(
                    matches!(outcome, Err(StoreError::LeaseLost { .. })),
                    "{i}: {outcome:?}"
                );
                assert!(
                    passkeys.is_empty() && keys.is_empty() && events.is_empty(),
                    "{i}: nothing of a refused set is written"
                );
            } else {
                assert!(outcome.is_ok(), "{i}: {outcome:?}");
                assert_eq!((passkeys.len(), keys.len(), events.len()), (1, 1, 1), "{i}");
            }
        }
        let counts = store.job_counts(job.id).await.unwrap();
        assert_eq!(counts.get(ItemState::CredentialCreated), 36);
        assert_eq!(counts.get(ItemState::Pending), 4);

        // A set whose statement fails (a credential sealed twice) fails alone: the sets
        // committed with it stand.
        let outcomes = futures::future::join_all((0..10u8).map(|i| {
            let store = &store;
            async move {
                let mut set = behalf_store::WriteSet::new();
                set.vault_insert_credential(ws.id, &sealed_row(if i == 9 { 0 } else { i }));
                store.commit(set).await
            }
        }))
        .await;
        let refused = outcomes
            .iter()
            .filter(|o| matches!(o, Err(StoreError::UniqueViolation { .. })))
            .count();
        assert_eq!(refused, 1, "{outcomes:?}");
        assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 9);
        for i in 0..9u8 {
            assert!(
                store
                    .vault_get_credential(ws.id, MICROSOFT_RP_ID, &[i; 16])
                    .await
                    .unwrap()
                    .is_some(),
                "credential {i} is stored"
            );
        }
    }
);
