//! The user list at 100,000 users: `cargo bench -p behalf-store --bench user_search`, on SQLite
//! and, with `BENCH_DATABASE_URL=postgres://…` (a server the bench may create a scratch
//! database on, dropped afterwards), on PostgreSQL too.
//!
//! Seeded: 100,000 users (a third from an Entra ID connection, a third from SCIM, a third made
//! in Behalf; one in twenty disabled) through `upsert_users`; ten groups of 10,000 members and
//! one of 100; a vault key for 30 % of users with a registered passkey on it, and a device key
//! for another 10 %.

use std::hint::black_box;
use std::time::{Duration, Instant};

use behalf_domain::*;
use behalf_store::testing::{self, TestStore};
use behalf_store::{Backend, ConnectionTarget, Store, UserQuery};
use criterion::{Criterion, criterion_group, criterion_main};
use sqlx::AssertSqlSafe;

const USERS: usize = 100_000;

const FIRST: [&str; 20] = [
    "Ada", "Bob", "Chloé", "Dan", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Ken", "Leo",
    "Mallory", "Nina", "Oscar", "Peggy", "Quinn", "Rupert", "Sybil", "Trent",
];
const LAST: [&str; 20] = [
    "Lovelace", "Hopper", "Turing", "Noether", "Curie", "Gauss", "Euler", "Knuth", "Ritchie",
    "Thompson", "Liskov", "Hamilton", "Dijkstra", "Shannon", "Babbage", "Pascal", "Lamport",
    "Backus", "Kay", "Wirth",
];

struct Seeded {
    ws: WorkspaceId,
    big_group: GroupId,
    small_group: GroupId,
    /// The cursor of the page starting at user 90,000.
    deep_cursor: String,
}

async fn seed(store: &Store) -> Seeded {
    let started = Instant::now();
    let ws = store.ensure_workspace("bench").await.unwrap().id;
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
    let drafts: Vec<UserDraft> = (0..USERS)
        .map(|i| {
            let (first, last) = (FIRST[i % 20], LAST[(i / 20) % 20]);
            let connection = [Some(entra), Some(scim), None][i % 3];
            UserDraft {
                connection_id: connection,
                external_id: connection.map(|_| format!("obj-{i:06}")),
                upn: Upn::parse(&format!("user{i:06}@contoso.com")).unwrap(),
                display_name: format!("{first} {last} {i}"),
                mail: Some(format!("{first}.{last}{i}@mail.contoso.com")),
                department: Some("Engineering".into()),
                enabled: i % 20 != 7,
            }
        })
        .collect();
    for chunk in drafts.chunks(10_000) {
        store.upsert_users(ws, chunk).await.unwrap();
    }
    let seeded_users = started.elapsed();

    let groups: Vec<GroupDraft> = (0..11)
        .map(|g| GroupDraft {
            connection_id: Some(entra),
            external_id: Some(format!("g{g}")),
            display_name: format!("Group {g}"),
            description: None,
        })
        .collect();
    store.upsert_groups(ws, &groups).await.unwrap();
    let group_id = |g: &'static str| async move {
        store
            .find_group_by_external_id(ws, g)
            .await
            .unwrap()
            .unwrap()
            .id
    };
    let (big_group, small_group) = (group_id("g3").await, group_id("g10").await);
    // Memberships, keys and passkeys in one INSERT … SELECT each: the bench measures reads, and
    // a row-by-row seed of 200,000 rows would dominate its run time. Groups g0–g9 get the users
    // whose number ends in their digit; g10 those ending in 777. Key and passkey ids are the
    // user's id with another first hex digit (still UUIDs, distinct per table).
    let pool = store.pool();
    for g in 0..10 {
        let id = group_id(["g0", "g1", "g2", "g3", "g4", "g5", "g6", "g7", "g8", "g9"][g]).await;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO group_members (group_id, user_id) SELECT $1, id FROM users \
             WHERE workspace_id = $2 AND upn_key LIKE 'user_____{g}@%'"
        )))
        .bind(id.to_string())
        .bind(ws.to_string())
        .execute(pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO group_members (group_id, user_id) SELECT $1, id FROM users \
         WHERE workspace_id = $2 AND upn_key LIKE 'user___777@%'",
    )
    .bind(small_group.to_string())
    .bind(ws.to_string())
    .execute(pool)
    .await
    .unwrap();
    let now = now_millis();
    // Users 0–29 of every hundred: a vault key and a registered passkey; 30–39 a device key.
    sqlx::query(
        "INSERT INTO security_keys (id, workspace_id, user_id, kind, state, label, created_at, updated_at) \
         SELECT 'f' || substr(id, 2), workspace_id, id, \
         CASE WHEN substr(upn_key, 9, 1) IN ('0', '1', '2') THEN 'vault' ELSE 'device' END, \
         'active', 'key', $2, $2 FROM users \
         WHERE workspace_id = $1 AND substr(upn_key, 9, 1) IN ('0', '1', '2', '3')",
    )
    .bind(ws.to_string())
    .bind(now)
    .execute(pool)
    .await
    .unwrap();
    let credential_id = match store.backend() {
        Backend::Sqlite => "CAST(id AS BLOB)",
        Backend::Postgres => "convert_to(id, 'UTF8')",
    };
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO passkeys (id, workspace_id, user_id, security_key_id, rp_id, credential_id, \
         public_key_cose, aaguid, rp_method_id, state, created_by, created_at, registered_at) \
         SELECT 'e' || substr(id, 2), workspace_id, id, 'f' || substr(id, 2), 'login.microsoft.com', \
         {credential_id}, {credential_id}, '00000000-0000-0000-0000-000000000000', 'm', 'registered', \
         'bench', $2, $2 FROM users WHERE workspace_id = $1 AND substr(upn_key, 9, 1) IN ('0', '1', '2')"
    )))
    .bind(ws.to_string())
    .bind(now)
    .execute(pool)
    .await
    .unwrap();
    if store.backend() == Backend::Postgres {
        // What autovacuum does shortly after a bulk load; without statistics the planner
        // guesses row counts of a table it believes empty.
        sqlx::query("ANALYZE").execute(pool).await.unwrap();
    }
    let seeded = started.elapsed();

    // Page to user 90,000 once for a deep cursor (the cursor is opaque by design).
    let mut cursor = None;
    for _ in 0..180 {
        let page = store
            .search_users(
                ws,
                &UserQuery {
                    limit: 500,
                    cursor,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        cursor = page.next_cursor;
    }
    eprintln!(
        "{}: seeded {USERS} users in {seeded_users:.1?}, with groups, keys and passkeys in {seeded:.1?}",
        store.backend().name()
    );
    Seeded {
        ws,
        big_group,
        small_group,
        deep_cursor: cursor.expect("more than 90,000 users"),
    }
}

fn queries(seeded: &Seeded) -> Vec<(&'static str, UserQuery)> {
    let page = UserQuery::default();
    vec![
        ("first page", page.clone()),
        (
            "page at user 90,000",
            UserQuery {
                cursor: Some(seeded.deep_cursor.clone()),
                ..page.clone()
            },
        ),
        (
            "UPN prefix (100 matches)",
            UserQuery {
                q: Some("user0421".into()),
                ..page.clone()
            },
        ),
        (
            "display-name prefix (5,000 matches)",
            UserQuery {
                q: Some("grace".into()),
                ..page.clone()
            },
        ),
        (
            "display-name prefix (250 matches)",
            UserQuery {
                q: Some("grace hopper".into()),
                ..page.clone()
            },
        ),
        (
            "mail prefix (a few matches)",
            UserQuery {
                q: Some("Ivan.Turing48".into()),
                ..page.clone()
            },
        ),
        (
            "group of 10,000",
            UserQuery {
                group: Some(seeded.big_group),
                ..page.clone()
            },
        ),
        (
            "group of 100",
            UserQuery {
                group: Some(seeded.small_group),
                ..page.clone()
            },
        ),
        (
            "has passkey (30 %)",
            UserQuery {
                has_passkey: Some(true),
                ..page.clone()
            },
        ),
        (
            "no passkey, SCIM, enabled",
            UserQuery {
                has_passkey: Some(false),
                source: Some(UserSource::Scim),
                enabled: Some(true),
                ..page.clone()
            },
        ),
    ]
}

fn user_search(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut stores: Vec<TestStore> = vec![runtime.block_on(testing::sqlite())];
    match std::env::var("BENCH_DATABASE_URL") {
        Ok(url) if !url.is_empty() => stores.push(runtime.block_on(testing::postgres_at(&url))),
        _ => eprintln!("NOTICE: BENCH_DATABASE_URL is unset: PostgreSQL is not measured"),
    }
    for store in &stores {
        let seeded = runtime.block_on(seed(store));
        let mut group = c.benchmark_group(format!("user_search/{}", store.backend().name()));
        for (name, query) in queries(&seeded) {
            // Each query's answer is checked once, so that a benchmark of an empty answer (a
            // seed gone wrong) cannot pass for a fast one.
            let page = runtime
                .block_on(store.search_users(seeded.ws, &query))
                .unwrap();
            assert!(!page.users.is_empty(), "{name}: no users");
            group.bench_function(name, |b| {
                b.iter(|| {
                    runtime
                        .block_on(store.search_users(seeded.ws, black_box(&query)))
                        .unwrap()
                })
            });
        }
        group.finish();
    }
    // The stores (a temporary directory, a scratch database) are removed on drop.
    drop(stores);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = user_search
}
criterion_main!(benches);
