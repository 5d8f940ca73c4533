//! SCIM's repositories on SQLite and on PostgreSQL: filters are SQL over the indexed columns and
//! answer the same on both; userName is unique per workspace; a connection sees only its own.

use behalf_domain::*;
use behalf_store::scim::*;
use behalf_store::testing::TestStore;
use behalf_store::{StoreError, each_backend};
use serde_json::json;

fn ev() -> NewEvent {
    NewEvent::new("scim:test", EventAction::ScimUserCreated, Outcome::Success)
}

#[allow(
    clippy::too_many_arguments,
    reason = "a test's table of users, one call each"
)]
async fn add_user(
    store: &TestStore,
    ws: WorkspaceId,
    conn: ConnectionId,
    upn: &str,
    display: Option<&str>,
    external: Option<&str>,
    active: bool,
    emails: &[(&str, &str)],
) -> ScimUserRow {
    let upn = Upn::parse(upn).unwrap();
    let emails: Vec<ScimEmail> = emails
        .iter()
        .enumerate()
        .map(|(i, (v, t))| ScimEmail {
            value: (*v).into(),
            kind: Some((*t).into()),
            primary: i == 0,
        })
        .collect();
    store
        .create_scim_user(
            ws,
            conn,
            &ScimUserWrite {
                upn: &upn,
                display_name: display,
                external_id: external,
                active,
                mail: None,
                department: None,
                emails: &emails,
                resource: &json!({"userName": upn.as_str()}),
            },
            ev(),
        )
        .await
        .unwrap()
}

fn text(attr: ScimAttr, op: ScimOp, v: &str) -> ScimCond {
    ScimCond::Compare(attr, op, ScimValue::Text(v.into()))
}

async fn names(store: &TestStore, conn: ConnectionId, filter: ScimCond) -> Vec<String> {
    let page = store
        .list_scim_users(
            conn,
            &ScimQuery {
                filter: Some(filter),
                sort: ScimSort::UserName,
                limit: 100,
                ..ScimQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total as usize, page.resources.len());
    page.resources
        .into_iter()
        .map(|r| r.user.upn.to_string())
        .collect()
}

each_backend!(
    filters_are_answered_by_sql_alike_on_both_backends,
    |store: TestStore| async move {
        let ws = store.ensure_workspace("default").await.unwrap();
        let a = store
            .ensure_scim_connection(ws.id, "entra-a")
            .await
            .unwrap()
            .id;
        let b = store
            .ensure_scim_connection(ws.id, "entra-b")
            .await
            .unwrap()
            .id;
        add_user(
            &store,
            ws.id,
            a,
            "Ann@Contoso.com",
            Some("Ann Lee"),
            Some("EXT-1"),
            true,
            &[("ann@contoso.com", "work"), ("ann@home.example", "home")],
        )
        .await;
        add_user(
            &store,
            ws.id,
            a,
            "bob@contoso.com",
            Some("Bob 50% Off"),
            Some("ext-2"),
            false,
            &[("bob@contoso.com", "work")],
        )
        .await;
        add_user(&store, ws.id, a, "cy@fabrikam.com", None, None, true, &[]).await;
        add_user(
            &store,
            ws.id,
            b,
            "dee@contoso.com",
            Some("Dee"),
            Some("EXT-1"),
            true,
            &[],
        )
        .await;

        // userName is case-insensitive; externalId is caseExact.
        assert_eq!(
            names(
                &store,
                a,
                text(ScimAttr::UserName, ScimOp::Eq, "ANN@contoso.COM")
            )
            .await,
            ["Ann@Contoso.com"]
        );
        assert_eq!(
            names(&store, a, text(ScimAttr::ExternalId, ScimOp::Eq, "ext-1")).await,
            Vec::<String>::new()
        );
        assert_eq!(
            names(&store, a, text(ScimAttr::ExternalId, ScimOp::Eq, "EXT-1")).await,
            ["Ann@Contoso.com"]
        );
        // Another connection's user with the same externalId is not seen.
        assert_eq!(
            names(&store, b, text(ScimAttr::ExternalId, ScimOp::Eq, "EXT-1")).await,
            ["dee@contoso.com"]
        );
        // co / sw / ew, with LIKE's own characters matching themselves.
        assert_eq!(
            names(&store, a, text(ScimAttr::DisplayName, ScimOp::Co, "50%")).await,
            ["bob@contoso.com"]
        );
        assert_eq!(
            names(&store, a, text(ScimAttr::DisplayName, ScimOp::Co, "_")).await,
            Vec::<String>::new()
        );
        assert_eq!(
            names(&store, a, text(ScimAttr::UserName, ScimOp::Sw, "B")).await,
            ["bob@contoso.com"]
        );
        assert_eq!(
            names(
                &store,
                a,
                text(ScimAttr::UserName, ScimOp::Ew, "@contoso.com")
            )
            .await,
            ["Ann@Contoso.com", "bob@contoso.com"]
        );
        assert_eq!(
            names(&store, a, text(ScimAttr::UserName, ScimOp::Gt, "b")).await,
            ["bob@contoso.com", "cy@fabrikam.com"]
        );
        assert_eq!(
            names(
                &store,
                a,
                text(ScimAttr::UserName, ScimOp::Le, "bob@contoso.com")
            )
            .await,
            ["Ann@Contoso.com", "bob@contoso.com"]
        );
        // ne and not include the users that have no value at all.
        assert_eq!(
            names(
                &store,
                a,
                text(ScimAttr::DisplayName, ScimOp::Ne, "ann lee")
            )
            .await,
            ["bob@contoso.com", "cy@fabrikam.com"]
        );
        assert_eq!(
            names(
                &store,
                a,
                ScimCond::Not(Box::new(text(ScimAttr::DisplayName, ScimOp::Co, "o")))
            )
            .await,
            ["Ann@Contoso.com", "cy@fabrikam.com"]
        );
        assert_eq!(
            names(&store, a, ScimCond::Present(ScimAttr::DisplayName)).await,
            ["Ann@Contoso.com", "bob@contoso.com"]
        );
        assert_eq!(
            names(
                &store,
                a,
                ScimCond::Compare(ScimAttr::Active, ScimOp::Eq, ScimValue::Bool(false))
            )
            .await,
            ["bob@contoso.com"]
        );
        // Emails: a value path holds for one element; a plain sub-attribute for any.
        let work_at_home = ScimCond::Any(
            ScimMulti::Emails,
            Box::new(ScimCond::And(
                Box::new(text(ScimAttr::EmailType, ScimOp::Eq, "work")),
                Box::new(text(ScimAttr::EmailValue, ScimOp::Co, "@home")),
            )),
        );
        assert_eq!(names(&store, a, work_at_home).await, Vec::<String>::new());
        let work_at_contoso = ScimCond::Any(
            ScimMulti::Emails,
            Box::new(ScimCond::And(
                Box::new(text(ScimAttr::EmailType, ScimOp::Eq, "Work")),
                Box::new(text(ScimAttr::EmailValue, ScimOp::Co, "@CONTOSO")),
            )),
        );
        assert_eq!(
            names(&store, a, work_at_contoso).await,
            ["Ann@Contoso.com", "bob@contoso.com"]
        );
        assert_eq!(
            names(
                &store,
                a,
                text(ScimAttr::EmailValue, ScimOp::Eq, "ann@home.example")
            )
            .await,
            ["Ann@Contoso.com"]
        );
        assert_eq!(
            names(
                &store,
                a,
                ScimCond::Or(
                    Box::new(ScimCond::Present(ScimAttr::EmailValue)),
                    Box::new(text(ScimAttr::UserName, ScimOp::Sw, "cy")),
                )
            )
            .await,
            ["Ann@Contoso.com", "bob@contoso.com", "cy@fabrikam.com"]
        );
        // Times.
        let later = ScimCond::Compare(
            ScimAttr::Created,
            ScimOp::Gt,
            ScimValue::Time(now_millis() + 60_000),
        );
        assert_eq!(names(&store, a, later).await, Vec::<String>::new());
        // A type mismatch is the caller's error, not the database's.
        let bad = store
            .list_scim_users(
                a,
                &ScimQuery {
                    filter: Some(ScimCond::Compare(
                        ScimAttr::Active,
                        ScimOp::Gt,
                        ScimValue::Bool(true),
                    )),
                    limit: 10,
                    ..ScimQuery::default()
                },
            )
            .await;
        assert!(
            matches!(
                bad,
                Err(StoreError::InvalidInput {
                    field: "filter",
                    ..
                })
            ),
            "{bad:?}"
        );

        // Pages: offset and limit, a total counted beyond the page, descending order.
        let page = store
            .list_scim_users(
                a,
                &ScimQuery {
                    sort: ScimSort::UserName,
                    descending: true,
                    offset: 1,
                    limit: 1,
                    ..ScimQuery::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(page.total, 3);
        assert_eq!(page.resources[0].user.upn.as_str(), "bob@contoso.com");
        let count_only = store
            .list_scim_users(
                a,
                &ScimQuery {
                    limit: 0,
                    ..ScimQuery::default()
                },
            )
            .await
            .unwrap();
        assert_eq!((count_only.total, count_only.resources.len()), (3, 0));
    }
);

each_backend!(
    user_names_are_unique_and_deleted_users_keep_their_row,
    |store: TestStore| async move {
        let ws = store.ensure_workspace("default").await.unwrap();
        let a = store.ensure_scim_connection(ws.id, "a").await.unwrap().id;
        let b = store.ensure_scim_connection(ws.id, "b").await.unwrap().id;
        let ann = add_user(&store, ws.id, a, "ann@contoso.com", None, None, true, &[]).await;
        assert_eq!(ann.version, 1);
        let upn = Upn::parse("ANN@contoso.com").unwrap();
        let write = ScimUserWrite {
            upn: &upn,
            display_name: None,
            external_id: None,
            active: true,
            mail: None,
            department: None,
            emails: &[],
            resource: &json!({}),
        };
        for conn in [a, b] {
            let taken = store.create_scim_user(ws.id, conn, &write, ev()).await;
            assert!(
                matches!(taken, Err(StoreError::UniqueViolation { .. })),
                "{taken:?}"
            );
        }
        // Connection b cannot see, change or delete a's user.
        assert!(store.get_scim_user(b, ann.user.id).await.unwrap().is_none());
        assert_eq!(
            store
                .delete_scim_user(b, ann.user.id, None, ev())
                .await
                .unwrap(),
            ScimWrite::Gone
        );
        // A stale version is refused; the current one replaces, and inactive marks for deprovisioning.
        let off = ScimUserWrite {
            active: false,
            ..write
        };
        assert!(matches!(
            store
                .replace_scim_user(a, ann.user.id, 7, &off, ev())
                .await
                .unwrap(),
            ScimWrite::VersionMismatch { current: 1 }
        ));
        let ScimWrite::Done(row) = store
            .replace_scim_user(a, ann.user.id, 1, &off, ev())
            .await
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (row.version, row.user.enabled, row.user.lifecycle),
            (2, false, Lifecycle::DeprovisionPending)
        );
        assert_eq!(
            store.users_pending_deprovision(ws.id).await.unwrap().len(),
            1
        );
        let on = ScimUserWrite {
            active: true,
            ..write
        };
        let ScimWrite::Done(row) = store
            .replace_scim_user(a, ann.user.id, 2, &on, ev())
            .await
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (row.user.enabled, row.user.lifecycle),
            (true, Lifecycle::Active)
        );
        // DELETE: gone for SCIM, kept (disabled, pending deprovisioning) for Behalf.
        let ScimWrite::Done(user) = store
            .delete_scim_user(a, ann.user.id, Some(3), ev())
            .await
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(user.lifecycle, Lifecycle::DeprovisionPending);
        assert!(store.get_scim_user(a, ann.user.id).await.unwrap().is_none());
        assert_eq!(
            store.get_user(ann.user.id).await.unwrap().lifecycle,
            Lifecycle::DeprovisionPending
        );
        // The same userName pushed again by the same connection is that user again.
        let again = store
            .create_scim_user(ws.id, a, &write, ev())
            .await
            .unwrap();
        assert_eq!(again.user.id, ann.user.id);
        assert_eq!(again.user.lifecycle, Lifecycle::Active);
        // Each write was an event.
        let events = store
            .list_events(
                ws.id,
                &behalf_store::EventFilter {
                    user_id: Some(ann.user.id),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(events.len(), 5, "{events:?}");
    }
);

each_backend!(
    tokens_open_their_connection_until_revoked,
    |store: TestStore| async move {
        let ws = store.ensure_workspace("default").await.unwrap();
        let conn = store.ensure_scim_connection(ws.id, "entra").await.unwrap();
        assert_eq!(
            store
                .ensure_scim_connection(ws.id, "entra")
                .await
                .unwrap()
                .id,
            conn.id
        );
        store
            .ensure_connection(ws.id, ConnectionKind::EntraId, "graph", &Default::default())
            .await
            .unwrap();
        assert!(matches!(
            store.ensure_scim_connection(ws.id, "graph").await,
            Err(StoreError::InvalidInput { .. })
        ));
        store.set_scim_auto_provision(conn.id, true).await.unwrap();
        let id = store
            .create_scim_token(ws.id, conn.id, "entra", "hash-1", "cli:test")
            .await
            .unwrap();
        let grant = store.find_scim_token("hash-1").await.unwrap().unwrap();
        assert_eq!(
            (grant.token_id, grant.connection_id, grant.auto_provision),
            (id, conn.id, true)
        );
        assert!(store.touch_scim_token(id, None).await.unwrap());
        assert!(store.find_scim_token("hash-2").await.unwrap().is_none());
        assert!(store.revoke_scim_token(ws.id, id).await.unwrap());
        assert!(!store.revoke_scim_token(ws.id, id).await.unwrap());
        assert!(store.find_scim_token("hash-1").await.unwrap().is_none());
        assert!(!store.scim_token_is_live(id).await.unwrap());
        let listed = store.list_scim_tokens(ws.id).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].revoked_at.is_some() && listed[0].last_used_at.is_some());
    }
);

each_backend!(
    groups_keep_members_of_their_connection_only,
    |store: TestStore| async move {
        let ws = store.ensure_workspace("default").await.unwrap();
        let a = store.ensure_scim_connection(ws.id, "a").await.unwrap().id;
        let b = store.ensure_scim_connection(ws.id, "b").await.unwrap().id;
        let ann = add_user(
            &store,
            ws.id,
            a,
            "ann@contoso.com",
            Some("Ann"),
            None,
            true,
            &[],
        )
        .await
        .user
        .id;
        let bob = add_user(
            &store,
            ws.id,
            a,
            "bob@contoso.com",
            Some("Bob"),
            None,
            true,
            &[],
        )
        .await
        .user
        .id;
        let dee = add_user(&store, ws.id, b, "dee@contoso.com", None, None, true, &[])
            .await
            .user
            .id;
        let gev = || NewEvent::new("scim:test", EventAction::ScimGroupCreated, Outcome::Success);
        let write = ScimGroupWrite {
            display_name: "Sales",
            external_id: Some("G-1"),
            resource: &json!({}),
        };
        let refused = store
            .create_scim_group(ws.id, a, &write, &[ann, dee], gev())
            .await;
        assert!(
            matches!(
                refused,
                Err(StoreError::InvalidInput {
                    field: "members",
                    ..
                })
            ),
            "{refused:?}"
        );
        let g = store
            .create_scim_group(ws.id, a, &write, &[ann], gev())
            .await
            .unwrap();
        let ScimWrite::Done(_) = store
            .replace_scim_group(
                a,
                g.group.id,
                Some(1),
                None,
                ScimMembersChange::Edit {
                    add: &[bob],
                    remove: &[ann],
                },
                gev(),
            )
            .await
            .unwrap()
        else {
            panic!()
        };
        let got = store
            .get_scim_group(a, g.group.id, true)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.version, 2);
        assert_eq!(
            got.members
                .unwrap()
                .iter()
                .map(|m| (m.user_id, m.display.as_str()))
                .collect::<Vec<_>>(),
            [(bob, "Bob")]
        );
        assert!(
            store
                .get_scim_group(b, g.group.id, false)
                .await
                .unwrap()
                .is_none()
        );
        let by_member = store
            .list_scim_groups(
                a,
                &ScimQuery {
                    filter: Some(ScimCond::Compare(
                        ScimAttr::MemberValue,
                        ScimOp::Eq,
                        ScimValue::Text(bob.to_string()),
                    )),
                    limit: 10,
                    ..ScimQuery::default()
                },
                false,
            )
            .await
            .unwrap();
        assert_eq!(by_member.total, 1);
        assert!(by_member.resources[0].members.is_none());
        // A DELETEd user leaves their groups.
        store.delete_scim_user(a, bob, None, ev()).await.unwrap();
        assert!(
            store
                .get_scim_group(a, g.group.id, true)
                .await
                .unwrap()
                .unwrap()
                .members
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store
                .delete_scim_group(a, g.group.id, Some(1), gev())
                .await
                .unwrap(),
            ScimWrite::VersionMismatch { current: 2 }
        );
        assert_eq!(
            store
                .delete_scim_group(a, g.group.id, None, gev())
                .await
                .unwrap(),
            ScimWrite::Done(())
        );
        assert!(
            store
                .get_scim_group(a, g.group.id, false)
                .await
                .unwrap()
                .is_none()
        );
    }
);

each_backend!(
    lookups_sent_together_each_get_their_own_answer,
    |store: TestStore| async move {
        // Entra sends a `userName eq` lookup before every write, many at once; on PostgreSQL
        // those that arrive together share one query (scim::lookups). Each must still get its
        // own user, in its own connection, or none.
        let ws = store.ensure_workspace("default").await.unwrap();
        let a = store.ensure_scim_connection(ws.id, "a").await.unwrap().id;
        let b = store.ensure_scim_connection(ws.id, "b").await.unwrap().id;
        for i in 0..40 {
            let conn = if i % 4 == 3 { b } else { a };
            add_user(
                &store,
                ws.id,
                conn,
                &format!("user{i}@contoso.com"),
                None,
                None,
                true,
                &[],
            )
            .await;
        }
        let gone = add_user(&store, ws.id, a, "gone@contoso.com", None, None, true, &[]).await;
        store
            .delete_scim_user(a, gone.user.id, None, ev())
            .await
            .unwrap();
        let lookup = |conn: ConnectionId, name: String| {
            let store = &store;
            async move {
                let page = store
                    .list_scim_users(
                        conn,
                        &ScimQuery {
                            filter: Some(text(ScimAttr::UserName, ScimOp::Eq, &name)),
                            limit: 100,
                            ..ScimQuery::default()
                        },
                    )
                    .await
                    .unwrap();
                assert_eq!(page.total as usize, page.resources.len(), "{name}");
                (
                    conn,
                    name,
                    page.resources
                        .into_iter()
                        .map(|r| r.user.upn.to_string())
                        .collect::<Vec<_>>(),
                )
            }
        };
        let mut asked = Vec::new();
        for round in 0..3 {
            for i in 0..40 {
                // Each name asked of both connections, in varying case, plus names no one has.
                let name = if round == 1 {
                    format!("USER{i}@Contoso.com")
                } else {
                    format!("user{i}@contoso.com")
                };
                asked.push(lookup(a, name.clone()));
                asked.push(lookup(b, name));
            }
            asked.push(lookup(a, format!("nobody{round}@contoso.com")));
            asked.push(lookup(a, "gone@contoso.com".into()));
        }
        let answers = futures::future::join_all(asked).await;
        assert_eq!(answers.len(), 3 * (80 + 2));
        for (conn, name, found) in answers {
            let lower = name.to_lowercase();
            let owner = lower
                .strip_prefix("user")
                .and_then(|rest| rest.split('@').next())
                .and_then(|n| n.parse::<u32>().ok())
                .map(|i| if i % 4 == 3 { b } else { a });
            let expected: Vec<String> = match owner {
                Some(owner) if owner == conn => vec![lower.clone()],
                _ => vec![],
            };
            assert_eq!(found, expected, "{name} in connection {conn}");
        }

        // A user created just now is found by the next lookup (read-your-writes).
        add_user(&store, ws.id, b, "new@contoso.com", None, None, true, &[]).await;
        let (_, _, found) = lookup(b, "new@contoso.com".into()).await;
        assert_eq!(found, ["new@contoso.com"]);
    }
);

each_backend!(
    a_table_filled_in_bulk_is_planned_for_what_it_holds,
    |store: TestStore| async move {
        // A first SCIM cycle fills `users` from nothing; PostgreSQL's plans made for the empty
        // table scanned the whole connection for each lookup until statistics were gathered
        // (statistics.rs). The store gathers them itself once the table has grown.
        let ws = store.ensure_workspace("default").await.unwrap();
        let a = store.ensure_scim_connection(ws.id, "a").await.unwrap().id;
        if store.backend() == behalf_store::Backend::Sqlite {
            assert!(store.refresh_planner_statistics().await.unwrap().is_empty());
            return;
        }
        let names: Vec<String> = (0..1_200).map(|i| format!("user{i}@contoso.com")).collect();
        for chunk in names.chunks(8) {
            futures::future::join_all(
                chunk
                    .iter()
                    .map(|name| add_user(&store, ws.id, a, name, None, None, true, &[])),
            )
            .await;
        }
        // PostgreSQL counts a backend's changes when it flushes its statistics (within about
        // a second of the commit): wait for the count, then ask.
        let changes = || async {
            sqlx::query_scalar::<_, i64>(
                "SELECT n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = 'users'",
            )
            .fetch_one(store.pool())
            .await
            .unwrap()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while changes().await < 1_000
            && store.refresh_planner_statistics().await.unwrap().is_empty()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "PostgreSQL never counted the inserts"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let refreshed = store.refresh_planner_statistics().await.unwrap();
        assert!(!refreshed.iter().any(|t| t == "users") || changes().await == 0);
        assert!(changes().await < 1_000, "users was not analyzed");
        let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "EXPLAIN SELECT id FROM users WHERE workspace_id = '{}' AND upn_key = 'user7@contoso.com'",
            ws.id
        )))
        .fetch_all(store.pool())
        .await
        .unwrap();
        assert!(
            plan.iter()
                .any(|line| line.contains("users_workspace_id_upn_key_key")),
            "the uniqueness check is not planned on its index: {plan:?}"
        );
    }
);
