//! The panel's group list (`Store::search_groups`), each test run on SQLite and on PostgreSQL:
//! thousands of groups paged through once each in name order, a search by part of the name
//! (its wildcards literal), member counts and the writes still on their way.

use std::collections::BTreeSet;

use behalf_domain::*;
use behalf_store::testing::TestStore;
use behalf_store::{ConnectionTarget, GroupQuery, MembershipChange, StoreError, each_backend};
use serde_json::json;

const GROUPS: usize = 1_200;

async fn seeded(store: &TestStore) -> (Workspace, DirectoryConnection) {
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
    let mut drafts: Vec<GroupDraft> = (0..GROUPS)
        .map(|i| GroupDraft {
            connection_id: Some(c.id),
            external_id: Some(format!("g-{i}")),
            display_name: format!("Group {i:04}"),
            description: None,
        })
        .collect();
    drafts.push(GroupDraft {
        connection_id: Some(c.id),
        external_id: Some("g-sales".into()),
        display_name: "Sales 50%_off".into(),
        description: None,
    });
    store.upsert_groups(ws.id, &drafts).await.unwrap();
    (ws, c)
}

async fn names(store: &TestStore, ws: WorkspaceId, q: &str) -> Vec<String> {
    let page = store
        .search_groups(
            ws,
            &GroupQuery {
                q: Some(q.into()),
                cursor: None,
                limit: 500,
            },
        )
        .await
        .unwrap();
    assert!(page.next_cursor.is_none());
    page.groups
        .into_iter()
        .map(|g| g.group.display_name)
        .collect()
}

each_backend!(
    thousands_of_groups_page_through_once_each_in_name_order,
    |store: TestStore| async move {
        let (ws, _) = seeded(&store).await;
        let mut seen = Vec::new();
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let page = store
                .search_groups(
                    ws.id,
                    &GroupQuery {
                        q: None,
                        cursor: cursor.clone(),
                        limit: 500,
                    },
                )
                .await
                .unwrap();
            pages += 1;
            seen.extend(page.groups.iter().map(|g| g.group.display_name.clone()));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(seen.len(), GROUPS + 1);
        let unique: BTreeSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "no group on two pages");
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(seen, sorted, "name order");

        // Two groups of one name keep their place by id, on either side of a page break.
        let more: Vec<GroupDraft> = (0..3)
            .map(|i| GroupDraft {
                connection_id: None,
                external_id: Some(format!("twin-{i}")),
                display_name: "Group 0000".into(),
                description: None,
            })
            .collect();
        store.upsert_groups(ws.id, &more).await.unwrap();
        let mut ids = Vec::new();
        let mut cursor = None;
        loop {
            let page = store
                .search_groups(
                    ws.id,
                    &GroupQuery {
                        q: Some("group 0000".into()),
                        cursor: cursor.clone(),
                        limit: 1,
                    },
                )
                .await
                .unwrap();
            ids.extend(page.groups.iter().map(|g| g.group.id));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(ids.len(), 4, "four groups named Group 0000, one per page");
        assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 4);

        let refused = store
            .search_groups(
                ws.id,
                &GroupQuery {
                    q: None,
                    cursor: Some("made up".into()),
                    limit: 50,
                },
            )
            .await;
        assert!(matches!(
            refused,
            Err(StoreError::InvalidInput {
                field: "cursor",
                ..
            })
        ));
        let refused = store
            .search_groups(
                ws.id,
                &GroupQuery {
                    limit: 0,
                    ..GroupQuery::default()
                },
            )
            .await;
        assert!(matches!(
            refused,
            Err(StoreError::InvalidInput { field: "limit", .. })
        ));
    }
);

each_backend!(
    a_search_finds_part_of_a_name_in_any_case_its_wildcards_literal,
    |store: TestStore| async move {
        let (ws, _) = seeded(&store).await;
        let hundred = names(&store, ws.id, "ROUP 11").await;
        assert_eq!(hundred.len(), 100);
        assert!(hundred.iter().all(|n| n.starts_with("Group 11")));
        assert_eq!(names(&store, ws.id, "50%_").await, vec!["Sales 50%_off"]);
        assert_eq!(names(&store, ws.id, "0%").await, vec!["Sales 50%_off"]);
        assert!(names(&store, ws.id, "Group_0").await.is_empty());
        assert!(names(&store, ws.id, "nothing like it").await.is_empty());
    }
);

each_backend!(
    a_row_counts_its_members_and_its_writes_on_their_way,
    |store: TestStore| async move {
        let (ws, c) = seeded(&store).await;
        let users: Vec<UserDraft> = (0..3)
            .map(|i| UserDraft {
                connection_id: Some(c.id),
                external_id: Some(format!("u-{i}")),
                upn: Upn::parse(&format!("user{i}@contoso.example")).unwrap(),
                display_name: format!("User {i}"),
                mail: None,
                department: None,
                enabled: true,
            })
            .collect();
        store.upsert_users(ws.id, &users).await.unwrap();
        let changes: Vec<MembershipChange> = (0..3)
            .map(|i| MembershipChange {
                group_external_id: "g-7".into(),
                user_external_id: format!("u-{i}"),
                added: true,
            })
            .collect();
        store.apply_memberships(ws.id, &changes).await.unwrap();
        store.set_connection_writable(c.id, true).await.unwrap();
        let (made, write) = store
            .outbound_create_group(
                ws.id,
                c.id,
                "Group 0007 too",
                None,
                "group7too",
                &json!({"displayName": "Group 0007 too"}),
                "test",
            )
            .await
            .unwrap();
        assert_eq!(write.state, WriteState::Pending);
        let page = store
            .search_groups(
                ws.id,
                &GroupQuery {
                    q: Some("group 0007".into()),
                    ..GroupQuery::default()
                },
            )
            .await
            .unwrap();
        let rows: Vec<(String, i64, i64, i64)> = page
            .groups
            .iter()
            .map(|r| {
                (
                    r.group.display_name.clone(),
                    r.members,
                    r.pending_writes,
                    r.failed_writes,
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                ("Group 0007".to_owned(), 3, 0, 0),
                ("Group 0007 too".to_owned(), 0, 1, 0),
            ]
        );
        assert_eq!(page.groups[1].group.id, made.id);
    }
);
