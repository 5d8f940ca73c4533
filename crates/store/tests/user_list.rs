//! The user list (search, filters, keyset paging), the job list and a user's groups, each test
//! run on SQLite and on PostgreSQL.

use std::collections::HashSet;

use behalf_domain::*;
use behalf_store::testing::TestStore;
use behalf_store::{
    ConnectionTarget, MembershipChange, NewPasskey, StoreError, UserQuery, each_backend,
};

struct Seeded {
    ws: WorkspaceId,
    finance: GroupId,
}

fn person(
    upn: &str,
    name: &str,
    mail: Option<&str>,
    connection: Option<ConnectionId>,
    enabled: bool,
) -> UserDraft {
    UserDraft {
        connection_id: connection,
        external_id: connection.map(|_| format!("obj-{upn}")),
        upn: Upn::parse(upn).unwrap(),
        display_name: name.to_owned(),
        mail: mail.map(str::to_owned),
        department: None,
        enabled,
    }
}

/// Twelve users of three sources; Finance is ada, bob and chloé; ada and dan have a registered
/// passkey (erin's is only created); ada has a vault key, bob a revoked ctap2 key and a device
/// key; frank is disabled.
async fn seed(store: &TestStore) -> Seeded {
    let ws = store.ensure_workspace("default").await.unwrap().id;
    let entra = store
        .ensure_connection(
            ws,
            ConnectionKind::EntraId,
            "entra",
            &ConnectionTarget::default(),
        )
        .await
        .unwrap()
        .id;
    let scim = store
        .ensure_connection(
            ws,
            ConnectionKind::Scim,
            "scim",
            &ConnectionTarget::default(),
        )
        .await
        .unwrap()
        .id;
    let users = [
        person(
            "Ada.Lovelace@contoso.com",
            "Ada Lovelace",
            Some("ada@mail.contoso.com"),
            Some(entra),
            true,
        ),
        person(
            "bob@contoso.com",
            "Robert Tables",
            Some("Bobby@Example.org"),
            Some(entra),
            true,
        ),
        person("chloe@contoso.com", "Émile Chloé", None, Some(entra), true),
        person(
            "dan@contoso.com",
            "Dan Brown",
            Some("dan@contoso.com"),
            Some(scim),
            true,
        ),
        person("erin@contoso.com", "Erin", None, Some(scim), true),
        person("frank@contoso.com", "Frank", None, None, false),
        person("grace@contoso.com", "Grace Hopper", None, None, true),
        person("heidi@contoso.com", "Heidi", None, None, true),
        person("ivan@contoso.com", "Ivan", None, None, true),
        person("judy@contoso.com", "Judy", None, None, true),
        person("ken@contoso.com", "Ken", None, None, true),
        person("leo@contoso.com", "Leo", None, None, true),
    ];
    store.upsert_users(ws, &users).await.unwrap();
    store
        .upsert_groups(
            ws,
            &[GroupDraft {
                connection_id: Some(entra),
                external_id: Some("g-finance".into()),
                display_name: "Finance".into(),
                description: None,
            }],
        )
        .await
        .unwrap();
    let members: Vec<_> = [
        "Ada.Lovelace@contoso.com",
        "bob@contoso.com",
        "chloe@contoso.com",
    ]
    .iter()
    .map(|upn| MembershipChange {
        group_external_id: "g-finance".into(),
        user_external_id: format!("obj-{upn}"),
        added: true,
    })
    .collect();
    store.apply_memberships(ws, &members).await.unwrap();
    let finance = store
        .find_group_by_external_id(ws, "g-finance")
        .await
        .unwrap()
        .unwrap()
        .id;

    let user = |upn: &'static str| async move {
        store
            .find_user_by_upn(ws, &Upn::parse(upn).unwrap())
            .await
            .unwrap()
            .unwrap()
    };
    for (upn, register) in [
        ("ada.lovelace@contoso.com", true),
        ("dan@contoso.com", true),
        ("erin@contoso.com", false),
    ] {
        let u = user(upn).await;
        let key = store
            .assign_security_key(ws, u.id, SecurityKeyKind::Vault, "vault")
            .await
            .unwrap();
        let passkey = store
            .insert_passkey(&NewPasskey {
                id: PasskeyId::new(),
                workspace_id: ws,
                user_id: u.id,
                security_key_id: key.id,
                rp_id: MICROSOFT_RP_ID.into(),
                credential_id: upn.as_bytes().to_vec(),
                public_key_cose: vec![1, 2, 3],
                aaguid: "00000000-0000-0000-0000-000000000000".into(),
                created_by: "test".into(),
            })
            .await
            .unwrap();
        if register {
            store
                .mark_passkey_registered(passkey.id, "method")
                .await
                .unwrap();
        }
        if upn != "ada.lovelace@contoso.com" {
            // Only ada keeps her vault key.
            store
                .set_security_key_state(key.id, SecurityKeyState::Revoked)
                .await
                .unwrap();
        }
    }
    let bob = user("bob@contoso.com").await;
    let ctap = store
        .assign_security_key(ws, bob.id, SecurityKeyKind::Ctap2, "yubikey")
        .await
        .unwrap();
    store
        .set_security_key_state(ctap.id, SecurityKeyState::Revoked)
        .await
        .unwrap();
    store
        .assign_security_key(ws, bob.id, SecurityKeyKind::Device, "laptop")
        .await
        .unwrap();
    Seeded { ws, finance }
}

/// The UPNs of the first page matching `query`.
async fn upns(store: &TestStore, ws: WorkspaceId, query: UserQuery) -> Vec<String> {
    let page = store.search_users(ws, &query).await.unwrap();
    page.users
        .into_iter()
        .map(|r| r.user.upn.to_string())
        .collect()
}

fn q(text: &str) -> UserQuery {
    UserQuery {
        q: Some(text.into()),
        ..Default::default()
    }
}

each_backend!(
    users_are_found_by_any_prefix_in_any_case,
    |store: TestStore| async move {
        let Seeded { ws, .. } = seed(&store).await;
        // UPN, display name, mail; each in other case than stored.
        assert_eq!(
            upns(&store, ws, q("ADA.L")).await,
            ["Ada.Lovelace@contoso.com"]
        );
        assert_eq!(upns(&store, ws, q("robert t")).await, ["bob@contoso.com"]);
        assert_eq!(upns(&store, ws, q("BOBBY@ex")).await, ["bob@contoso.com"]);
        // A prefix several keys share: each user once, in UPN order.
        assert_eq!(
            upns(&store, ws, q("da")).await,
            ["dan@contoso.com"],
            "dan's UPN, name and mail all start with 'da'"
        );
        assert_eq!(
            upns(&store, ws, q("ad")).await,
            ["Ada.Lovelace@contoso.com"]
        );
        // Case folding beyond ASCII, done by the store as for UPNs.
        assert_eq!(upns(&store, ws, q("ÉMILE")).await, ["chloe@contoso.com"]);
        // A prefix, not a substring.
        assert!(upns(&store, ws, q("lovelace")).await.is_empty());
        assert!(upns(&store, ws, q("zzz")).await.is_empty());
        // Blank is no filter.
        assert_eq!(upns(&store, ws, q("  ")).await.len(), 12);

        // A rename moves the search keys with it.
        store
            .upsert_users(
                ws,
                &[UserDraft {
                    display_name: "Zelda Quux".into(),
                    mail: Some("zq@contoso.com".into()),
                    ..store
                        .find_user_by_upn(ws, &Upn::parse("grace@contoso.com").unwrap())
                        .await
                        .unwrap()
                        .map(|u| UserDraft {
                            connection_id: u.connection_id,
                            external_id: u.external_id,
                            upn: u.upn,
                            display_name: u.display_name,
                            mail: u.mail,
                            department: u.department,
                            enabled: u.enabled,
                        })
                        .unwrap()
                }],
            )
            .await
            .unwrap();
        assert!(upns(&store, ws, q("grace h")).await.is_empty());
        assert_eq!(upns(&store, ws, q("zelda")).await, ["grace@contoso.com"]);
        assert_eq!(upns(&store, ws, q("ZQ@")).await, ["grace@contoso.com"]);
    }
);

each_backend!(
    users_are_filtered_by_group_state_passkey_key_and_source,
    |store: TestStore| async move {
        let Seeded { ws, finance } = seed(&store).await;
        let all = |query: UserQuery| {
            let store = &store;
            async move {
                upns(
                    store,
                    ws,
                    UserQuery {
                        limit: 500,
                        ..query
                    },
                )
                .await
            }
        };
        assert_eq!(
            all(UserQuery {
                group: Some(finance),
                ..Default::default()
            })
            .await,
            [
                "Ada.Lovelace@contoso.com",
                "bob@contoso.com",
                "chloe@contoso.com"
            ]
        );
        assert_eq!(
            all(UserQuery {
                enabled: Some(false),
                ..Default::default()
            })
            .await,
            ["frank@contoso.com"]
        );
        assert_eq!(
            all(UserQuery {
                enabled: Some(true),
                ..Default::default()
            })
            .await
            .len(),
            11
        );
        assert_eq!(
            all(UserQuery {
                has_passkey: Some(true),
                ..Default::default()
            })
            .await,
            ["Ada.Lovelace@contoso.com", "dan@contoso.com"],
            "erin's passkey is only created"
        );
        assert_eq!(
            all(UserQuery {
                has_passkey: Some(false),
                ..Default::default()
            })
            .await
            .len(),
            10
        );
        assert_eq!(
            all(UserQuery {
                key_kind: Some(SecurityKeyKind::Vault),
                ..Default::default()
            })
            .await,
            ["Ada.Lovelace@contoso.com"],
            "dan's and erin's vault keys are revoked"
        );
        assert_eq!(
            all(UserQuery {
                key_kind: Some(SecurityKeyKind::Ctap2),
                ..Default::default()
            })
            .await,
            Vec::<String>::new()
        );
        assert_eq!(
            all(UserQuery {
                key_kind: Some(SecurityKeyKind::Device),
                ..Default::default()
            })
            .await,
            ["bob@contoso.com"]
        );
        assert_eq!(
            all(UserQuery {
                source: Some(UserSource::EntraId),
                ..Default::default()
            })
            .await,
            [
                "Ada.Lovelace@contoso.com",
                "bob@contoso.com",
                "chloe@contoso.com"
            ]
        );
        assert_eq!(
            all(UserQuery {
                source: Some(UserSource::Scim),
                ..Default::default()
            })
            .await,
            ["dan@contoso.com", "erin@contoso.com"]
        );
        assert_eq!(
            all(UserQuery {
                source: Some(UserSource::Behalf),
                ..Default::default()
            })
            .await
            .len(),
            7
        );
        // Filters combine.
        assert_eq!(
            all(UserQuery {
                group: Some(finance),
                has_passkey: Some(false),
                q: Some("B".into()),
                ..Default::default()
            })
            .await,
            ["bob@contoso.com"]
        );

        // What a row shows.
        let page = store
            .search_users(
                ws,
                &UserQuery {
                    limit: 500,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let row = |upn: &str| {
            page.users
                .iter()
                .find(|r| r.user.upn.as_str() == upn)
                .unwrap()
        };
        let ada = row("Ada.Lovelace@contoso.com");
        assert!(ada.has_passkey);
        assert_eq!(ada.passkeys, 1);
        assert_eq!(ada.key_kinds, [SecurityKeyKind::Vault]);
        let bob = row("bob@contoso.com");
        assert!(!bob.has_passkey);
        assert_eq!(bob.key_kinds, [SecurityKeyKind::Device]);
        assert!(row("erin@contoso.com").key_kinds.is_empty());

        // Another workspace sees none of them.
        let other = store.ensure_workspace("other").await.unwrap();
        assert!(
            store
                .search_users(other.id, &UserQuery::default())
                .await
                .unwrap()
                .users
                .is_empty()
        );
    }
);

each_backend!(
    pages_cover_every_user_exactly_once,
    |store: TestStore| async move {
        let Seeded { ws, .. } = seed(&store).await;
        for (limit, query) in [
            (5, UserQuery::default()),
            (1, UserQuery::default()),
            (12, UserQuery::default()),
            (
                2,
                UserQuery {
                    enabled: Some(true),
                    ..Default::default()
                },
            ),
        ] {
            let expected = upns(
                &store,
                ws,
                UserQuery {
                    limit: 500,
                    ..query.clone()
                },
            )
            .await;
            let mut seen = Vec::new();
            let mut cursor = None;
            let mut pages = 0;
            loop {
                let page = store
                    .search_users(
                        ws,
                        &UserQuery {
                            limit,
                            cursor: cursor.take(),
                            ..query.clone()
                        },
                    )
                    .await
                    .unwrap();
                pages += 1;
                assert!(page.users.len() <= limit as usize);
                seen.extend(page.users.into_iter().map(|r| r.user.upn.to_string()));
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            assert_eq!(seen, expected, "limit {limit}: every user once, in order");
            assert_eq!(
                seen.iter().collect::<HashSet<_>>().len(),
                seen.len(),
                "no user twice"
            );
            assert_eq!(
                pages,
                expected.len().div_ceil(limit as usize),
                "limit {limit}"
            );
        }
        let keys: Vec<String> = upns(
            &store,
            ws,
            UserQuery {
                limit: 500,
                ..Default::default()
            },
        )
        .await
        .iter()
        .map(|u| u.to_lowercase())
        .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "ordered by the case-folded UPN");
    }
);

each_backend!(
    bad_cursors_and_page_sizes_are_refused,
    |store: TestStore| async move {
        let Seeded { ws, .. } = seed(&store).await;
        for cursor in ["not a cursor", "dTE6", "eDE6Ym9i"] {
            let err = store
                .search_users(
                    ws,
                    &UserQuery {
                        cursor: Some(cursor.into()),
                        ..Default::default()
                    },
                )
                .await
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    StoreError::InvalidInput {
                        field: "cursor",
                        ..
                    }
                ),
                "{cursor}: {err:?}"
            );
        }
        for limit in [0, 501] {
            let err = store
                .search_users(
                    ws,
                    &UserQuery {
                        limit,
                        ..Default::default()
                    },
                )
                .await
                .unwrap_err();
            assert!(
                matches!(err, StoreError::InvalidInput { field: "limit", .. }),
                "{limit}: {err:?}"
            );
        }
    }
);

each_backend!(
    jobs_and_items_are_listed_newest_first_and_in_pages,
    |store: TestStore| async move {
        let Seeded { ws, finance } = seed(&store).await;
        let members = store.group_member_ids(finance).await.unwrap();
        let mut jobs = Vec::new();
        for _ in 0..3 {
            jobs.push(
                store
                    .create_job(
                        ws,
                        MICROSOFT_RP_ID,
                        &serde_json::json!({}),
                        "test",
                        &members,
                    )
                    .await
                    .unwrap(),
            );
        }
        let newest_first: Vec<JobId> = jobs.iter().rev().map(|j| j.id).collect();
        let page1 = store.list_jobs(ws, 2, None).await.unwrap();
        assert_eq!(
            page1.iter().map(|j| j.id).collect::<Vec<_>>(),
            newest_first[..2]
        );
        let page2 = store.list_jobs(ws, 2, Some(page1[1].id)).await.unwrap();
        assert_eq!(
            page2.iter().map(|j| j.id).collect::<Vec<_>>(),
            newest_first[2..]
        );

        let job = &jobs[0];
        let first = store.job_items(job.id, None, None, 2).await.unwrap();
        let rest = store
            .job_items(job.id, None, Some(first[1].item.id), 10)
            .await
            .unwrap();
        let mut all: Vec<_> = first.iter().chain(&rest).collect();
        assert_eq!(all.len(), 3);
        assert!(all.windows(2).all(|w| w[0].item.id < w[1].item.id));
        all.sort_by_key(|r| r.upn.key());
        assert_eq!(all[0].upn.as_str(), "Ada.Lovelace@contoso.com");

        let claimed = store.claim_items(job.id, "w", 1, 60_000).await.unwrap();
        store
            .update_item(
                claimed[0].id,
                "w",
                ItemState::Failed,
                &ItemOutcome::default(),
            )
            .await
            .unwrap();
        let failed = store
            .job_items(job.id, Some(ItemState::Failed), None, 10)
            .await
            .unwrap();
        assert_eq!(
            failed.iter().map(|r| r.item.id).collect::<Vec<_>>(),
            [claimed[0].id]
        );
    }
);

each_backend!(
    a_users_groups_are_listed_by_name,
    |store: TestStore| async move {
        let Seeded { ws, finance } = seed(&store).await;
        store
            .upsert_groups(
                ws,
                &[GroupDraft {
                    connection_id: None,
                    external_id: Some("g-all".into()),
                    display_name: "All staff".into(),
                    description: None,
                }],
            )
            .await
            .unwrap();
        store
            .apply_memberships(
                ws,
                &[MembershipChange {
                    group_external_id: "g-all".into(),
                    user_external_id: "obj-bob@contoso.com".into(),
                    added: true,
                }],
            )
            .await
            .unwrap();
        let bob = store
            .find_user_by_upn(ws, &Upn::parse("bob@contoso.com").unwrap())
            .await
            .unwrap()
            .unwrap();
        let names: Vec<String> = store
            .user_groups(bob.id)
            .await
            .unwrap()
            .into_iter()
            .map(|g| g.display_name)
            .collect();
        assert_eq!(names, ["All staff", "Finance"]);
        let groups = store.user_groups(bob.id).await.unwrap();
        assert!(groups.iter().any(|g| g.id == finance));
        let leo = store
            .find_user_by_upn(ws, &Upn::parse("leo@contoso.com").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(store.user_groups(leo.id).await.unwrap().is_empty());
    }
);

each_backend!(
    sparse_filters_beyond_the_scan_window_find_every_match,
    |store: TestStore| async move {
        // More users than a search tests in UPN order before collecting its matches, with
        // matches before and far past that window, so that each way of collecting is checked.
        let ws = store.ensure_workspace("default").await.unwrap().id;
        let drafts: Vec<UserDraft> = (0..2_500)
            .map(|i| UserDraft {
                connection_id: None,
                external_id: Some(format!("x{i}")),
                upn: Upn::parse(&format!("u{i:04}@c.com")).unwrap(),
                display_name: if i % 1_000 == 5 || (2_400..2_405).contains(&i) {
                    format!("Zed {i}")
                } else {
                    format!("Person {i}")
                },
                mail: None,
                department: None,
                enabled: i != 2_222,
            })
            .collect();
        store.upsert_users(ws, &drafts).await.unwrap();
        let user = |i: usize| {
            let store = &store;
            async move {
                store
                    .find_user_by_external_id(ws, &format!("x{i}"))
                    .await
                    .unwrap()
                    .unwrap()
            }
        };
        store
            .upsert_groups(
                ws,
                &[GroupDraft {
                    connection_id: None,
                    external_id: Some("g".into()),
                    display_name: "G".into(),
                    description: None,
                }],
            )
            .await
            .unwrap();
        let members = [10, 2_100, 2_490];
        let changes: Vec<_> = members
            .iter()
            .map(|i| MembershipChange {
                group_external_id: "g".into(),
                user_external_id: format!("x{i}"),
                added: true,
            })
            .collect();
        store.apply_memberships(ws, &changes).await.unwrap();
        let group = store
            .find_group_by_external_id(ws, "g")
            .await
            .unwrap()
            .unwrap()
            .id;
        for i in [7, 2_200, 2_300] {
            store
                .assign_security_key(ws, user(i).await.id, SecurityKeyKind::Ctap2, "key")
                .await
                .unwrap();
        }
        for i in [2_450, 2_451] {
            let u = user(i).await;
            let key = store
                .assign_security_key(ws, u.id, SecurityKeyKind::Vault, "vault")
                .await
                .unwrap();
            let passkey = store
                .insert_passkey(&NewPasskey {
                    id: PasskeyId::new(),
                    workspace_id: ws,
                    user_id: u.id,
                    security_key_id: key.id,
                    rp_id: MICROSOFT_RP_ID.into(),
                    credential_id: vec![i as u8, (i >> 8) as u8],
                    public_key_cose: vec![1],
                    aaguid: "00000000-0000-0000-0000-000000000000".into(),
                    created_by: "test".into(),
                })
                .await
                .unwrap();
            store
                .mark_passkey_registered(passkey.id, "m")
                .await
                .unwrap();
        }

        let names = |ids: &[usize]| -> Vec<String> {
            ids.iter().map(|i| format!("u{i:04}@c.com")).collect()
        };
        for (what, query, expected) in [
            (
                "name prefix",
                UserQuery {
                    q: Some("zed".into()),
                    ..Default::default()
                },
                names(&[5, 1_005, 2_005, 2_400, 2_401, 2_402, 2_403, 2_404]),
            ),
            (
                "group",
                UserQuery {
                    group: Some(group),
                    ..Default::default()
                },
                names(&members),
            ),
            (
                "key kind",
                UserQuery {
                    key_kind: Some(SecurityKeyKind::Ctap2),
                    ..Default::default()
                },
                names(&[7, 2_200, 2_300]),
            ),
            (
                "passkey",
                UserQuery {
                    has_passkey: Some(true),
                    ..Default::default()
                },
                names(&[2_450, 2_451]),
            ),
            (
                "disabled (no index to collect by)",
                UserQuery {
                    enabled: Some(false),
                    ..Default::default()
                },
                names(&[2_222]),
            ),
        ] {
            // Pages of two, so that a page starts past the window too.
            let mut seen = Vec::new();
            let mut cursor = None;
            loop {
                let page = store
                    .search_users(
                        ws,
                        &UserQuery {
                            limit: 2,
                            cursor: cursor.take(),
                            ..query.clone()
                        },
                    )
                    .await
                    .unwrap();
                seen.extend(page.users.into_iter().map(|r| r.user.upn.to_string()));
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            assert_eq!(seen, expected, "{what}");
        }
        // Without a filter, deep pages come from the index walk alone.
        let deep = store
            .search_users(
                ws,
                &UserQuery {
                    limit: 500,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(deep.users.len(), 500);
        assert!(deep.next_cursor.is_some());
    }
);
