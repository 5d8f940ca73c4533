//! The outbound write queue (Behalf → Entra ID), each test run on SQLite and on PostgreSQL:
//! ordering per user and group, leases, Retry-After kept with the write, backoff, failure,
//! retry and discard, and Behalf's rows following what reached Entra ID.

use behalf_domain::*;
use behalf_store::testing::TestStore;
use behalf_store::{
    ConnectionTarget, StoreError, UserChange, WriteFailure, WriteResult, each_backend,
};
use serde_json::json;

const LEASE: i64 = 60_000;

async fn setup(store: &TestStore) -> (Workspace, DirectoryConnection) {
    let ws = store.ensure_workspace("default").await.unwrap();
    let c = store
        .ensure_connection(
            ws.id,
            ConnectionKind::EntraId,
            "entra",
            &ConnectionTarget::default(),
        )
        .await
        .unwrap();
    (ws, c)
}

fn draft(c: &DirectoryConnection, upn: &str) -> UserDraft {
    UserDraft {
        connection_id: Some(c.id),
        external_id: None,
        upn: Upn::parse(upn).unwrap(),
        display_name: upn.into(),
        mail: None,
        department: None,
        enabled: true,
    }
}

fn failure(m: &str) -> WriteFailure {
    WriteFailure {
        message: m.into(),
        ..WriteFailure::default()
    }
}

each_backend!(
    a_connection_is_read_only_until_marked_writable,
    |store: TestStore| async move {
        let (ws, c) = setup(&store).await;
        assert!(!store.connection_writable(c.id).await.unwrap());
        assert!(store.writable_connection(ws.id).await.unwrap().is_none());
        store.set_connection_writable(c.id, true).await.unwrap();
        assert!(store.connection_writable(c.id).await.unwrap());
        assert_eq!(
            store
                .writable_connection(ws.id)
                .await
                .unwrap()
                .map(|w| w.id),
            Some(c.id)
        );
        assert!(matches!(
            store
                .set_connection_writable(ConnectionId::new(), true)
                .await,
            Err(StoreError::NotFound { .. })
        ));
    }
);

each_backend!(
    writes_go_in_order_per_user_and_group_and_rows_follow_entra,
    |store: TestStore| async move {
        let (ws, c) = setup(&store).await;
        let p = json!({"userPrincipalName": "ada@contoso.example"});
        let (ada, create_ada) = store
            .outbound_create_user(
                ws.id,
                &draft(&c, "ada@contoso.example"),
                "ada",
                &p,
                "admin:o",
            )
            .await
            .unwrap();
        assert_eq!(create_ada.state, WriteState::Pending);
        assert!(ada.external_id.is_none());
        // The same UPN twice in Behalf is refused before anything is queued.
        assert!(matches!(
            store
                .outbound_create_user(ws.id, &draft(&c, "ADA@contoso.example"), "ada", &p, "x")
                .await,
            Err(StoreError::UniqueViolation { .. })
        ));
        let (team, create_team) = store
            .outbound_create_group(ws.id, c.id, "Team", None, "team", &json!({}), "admin:o")
            .await
            .unwrap();
        let join = store
            .outbound_membership(&team, &ada, c.id, true, "admin:o")
            .await
            .unwrap()
            .expect("a membership write");
        assert!(
            store
                .outbound_membership(&team, &ada, c.id, true, "admin:o")
                .await
                .unwrap()
                .is_none(),
            "already a member in Behalf: nothing to write"
        );
        assert_eq!(store.group_member_ids(team.id).await.unwrap(), vec![ada.id]);
        let rename = store
            .outbound_update_user(
                &ada,
                c.id,
                &UserChange {
                    display_name: Some("Ada L".into()),
                    department: Some(Some("R&D".into())),
                    enabled: Some(false),
                },
                &json!({"displayName": "Ada L"}),
                "admin:o",
            )
            .await
            .unwrap();
        let now = store.get_user(ada.id).await.unwrap();
        assert_eq!(
            (
                now.display_name.as_str(),
                now.department.as_deref(),
                now.enabled
            ),
            ("Ada L", Some("R&D"), false),
            "Behalf's row changes at once"
        );

        // Only the creates are claimable: the membership waits on both, the rename on Ada.
        let claimed = store.claim_writes(ws.id, "w1", 10, LEASE).await.unwrap();
        let ids: Vec<WriteId> = claimed.iter().map(|w| w.id).collect();
        assert_eq!(ids, vec![create_ada.id, create_team.id]);
        assert!(
            store
                .claim_writes(ws.id, "w2", 10, LEASE)
                .await
                .unwrap()
                .is_empty(),
            "leased"
        );
        // Another worker cannot record an outcome on a write it does not hold.
        assert!(matches!(
            store
                .finish_write(&claimed[0], "w2", &WriteResult::Done { graph_id: None })
                .await,
            Err(StoreError::LeaseLost { .. })
        ));
        store.mark_write_sending(create_ada.id, "w1").await.unwrap();
        store
            .finish_write(
                &claimed[0],
                "w1",
                &WriteResult::Done {
                    graph_id: Some("entra-ada".into()),
                },
            )
            .await
            .unwrap();
        assert_eq!(
            store.get_user(ada.id).await.unwrap().external_id.as_deref(),
            Some("entra-ada")
        );
        // The group is not created yet: the membership waits, and the rename waits on it
        // (a user's writes go in the order they were asked for).
        assert!(
            store
                .claim_writes(ws.id, "w1", 10, LEASE)
                .await
                .unwrap()
                .is_empty()
        );
        store
            .finish_write(
                &claimed[1],
                "w1",
                &WriteResult::Done {
                    graph_id: Some("entra-team".into()),
                },
            )
            .await
            .unwrap();
        for expected in [join.id, rename.id] {
            let claimed = store.claim_writes(ws.id, "w1", 10, LEASE).await.unwrap();
            assert_eq!(
                claimed.iter().map(|w| w.id).collect::<Vec<_>>(),
                vec![expected]
            );
            store
                .finish_write(&claimed[0], "w1", &WriteResult::Done { graph_id: None })
                .await
                .unwrap();
        }

        // Deleting: the rows go once Entra ID deleted the objects.
        let delete_ada = store
            .outbound_delete_user(&ada, c.id, "admin:o")
            .await
            .unwrap();
        let delete_team = store
            .outbound_delete_group(&team, c.id, "admin:o")
            .await
            .unwrap();
        assert!(
            store.get_user(ada.id).await.is_ok(),
            "kept until Entra ID deleted it"
        );
        let claimed = store.claim_writes(ws.id, "w1", 10, LEASE).await.unwrap();
        assert_eq!(
            claimed.iter().map(|w| w.id).collect::<Vec<_>>(),
            vec![delete_ada.id, delete_team.id]
        );
        for w in &claimed {
            store
                .finish_write(w, "w1", &WriteResult::Done { graph_id: None })
                .await
                .unwrap();
        }
        assert!(matches!(
            store.get_user(ada.id).await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            store.get_group(team.id).await,
            Err(StoreError::NotFound { .. })
        ));
        let counts = store.write_counts(ws.id).await.unwrap();
        assert_eq!(counts, vec![(WriteState::Done, 6)]);
    }
);

each_backend!(
    deferred_and_failing_writes_wait_and_an_admin_retries_or_discards_them,
    |store: TestStore| async move {
        let (ws, c) = setup(&store).await;
        let (bob, create_bob) = store
            .outbound_create_user(
                ws.id,
                &draft(&c, "bob@contoso.example"),
                "bob",
                &json!({}),
                "a",
            )
            .await
            .unwrap();
        let update = store
            .outbound_update_user(
                &bob,
                c.id,
                &UserChange {
                    enabled: Some(false),
                    ..UserChange::default()
                },
                &json!({"accountEnabled": false}),
                "a",
            )
            .await
            .unwrap();
        // Graph asked for 400 ms: no run claims the write before then, and it is no attempt.
        let w = store
            .claim_writes(ws.id, "w1", 10, LEASE)
            .await
            .unwrap()
            .remove(0);
        assert_eq!(w.attempts, 1);
        let asked = now_millis();
        store
            .finish_write(&w, "w1", &WriteResult::Deferred { at: asked + 400 })
            .await
            .unwrap();
        assert!(
            store
                .claim_writes(ws.id, "w2", 10, LEASE)
                .await
                .unwrap()
                .is_empty()
        );
        let wait = store
            .next_write_in(ws.id)
            .await
            .unwrap()
            .expect("a write waits");
        assert!(wait <= 400, "{wait}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let w = loop {
            if let Some(w) = store
                .claim_writes(ws.id, "w2", 10, LEASE)
                .await
                .unwrap()
                .pop()
            {
                break w;
            }
            assert!(std::time::Instant::now() < deadline);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert!(
            now_millis() >= asked + 400,
            "claimed before its Retry-After"
        );
        assert_eq!((w.id, w.attempts), (create_bob.id, 1));
        // A create that got no answer stays `sending`, to be looked up before it is sent again.
        store.mark_write_sending(w.id, "w2").await.unwrap();
        store
            .finish_write(
                &w,
                "w2",
                &WriteResult::Retry {
                    at: now_millis(),
                    failure: failure("no answer"),
                    sent: true,
                },
            )
            .await
            .unwrap();
        let w = store
            .claim_writes(ws.id, "w3", 10, LEASE)
            .await
            .unwrap()
            .remove(0);
        assert_eq!(
            (w.state, w.error.as_deref()),
            (WriteState::Sending, Some("no answer"))
        );
        // A dead worker's lease is taken back (after a grace).
        assert_eq!(
            store.write_lease_holders(ws.id).await.unwrap(),
            vec!["w3".to_string()]
        );
        let released_at = now_millis();
        assert_eq!(
            store
                .release_write_leases_of(ws.id, "w3", 300)
                .await
                .unwrap(),
            1
        );
        // Not at once: the dead worker may have been told to wait and not said so.
        assert!(
            store
                .claim_writes(ws.id, "w4", 10, LEASE)
                .await
                .unwrap()
                .is_empty()
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let w = loop {
            if let Some(w) = store
                .claim_writes(ws.id, "w4", 10, LEASE)
                .await
                .unwrap()
                .pop()
            {
                break w;
            }
            assert!(std::time::Instant::now() < deadline);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert!(
            now_millis() >= released_at + 300,
            "claimed before the grace ran out"
        );
        store
            .finish_write(
                &w,
                "w4",
                &WriteResult::Failed {
                    failure: WriteFailure {
                        message: "conflict: taken".into(),
                        code: Some("Request_BadRequest".into()),
                        request_id: Some("r-1".into()),
                    },
                },
            )
            .await
            .unwrap();
        // A failed write keeps the user's later writes waiting, and waits for an admin.
        assert!(
            store
                .claim_writes(ws.id, "w4", 10, LEASE)
                .await
                .unwrap()
                .is_empty()
        );
        let failed = store
            .list_writes(ws.id, &[WriteState::Failed], 10)
            .await
            .unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].error_code.as_deref(), Some("Request_BadRequest"));
        assert!(
            matches!(
                store.retry_write(ws.id, update.id).await,
                Err(StoreError::LeaseLost { .. })
            ),
            "only a failed write is retried"
        );
        let retried = store.retry_write(ws.id, create_bob.id).await.unwrap();
        assert_eq!((retried.state, retried.attempts), (WriteState::Pending, 0));
        let discarded = store.discard_write(ws.id, create_bob.id).await.unwrap();
        assert_eq!(discarded.state, WriteState::Discarded);
        assert!(matches!(
            store.discard_write(ws.id, create_bob.id).await,
            Err(StoreError::LeaseLost { .. })
        ));
        // With the create discarded, the update is next.
        let next = store.claim_writes(ws.id, "w5", 10, LEASE).await.unwrap();
        assert_eq!(
            next.iter().map(|w| w.id).collect::<Vec<_>>(),
            vec![update.id]
        );
        assert!(
            matches!(
                store.get_write(WorkspaceId::new(), update.id).await,
                Err(StoreError::NotFound { .. })
            ),
            "another workspace's write is not found"
        );
    }
);
