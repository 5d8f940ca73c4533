//! Directory import against the in-process sandbox tenant over HTTP, on SQLite and PostgreSQL.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use behalf_directory::{ImportMode, ImportOptions, ImportSummary, NoProgress, import};
use behalf_domain::{Lifecycle, Secret, WorkspaceId};
use behalf_graph::{ApiVersion, Credential, GraphClient, GraphSettings, RetryPolicy};
use behalf_sandbox::{Knobs, Sandbox, SandboxConfig};
use behalf_store::testing::TestStore;
use behalf_store::{ConnectionTarget, Store};
use serde_json::{Value, json};

async fn sandbox(users: usize, knobs: Knobs) -> Sandbox {
    Sandbox::start(SandboxConfig {
        users,
        knobs,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

fn graph(s: &Sandbox, page_size: u32) -> GraphClient {
    let mut g = GraphSettings::new(
        s.tenant_id().to_string(),
        Credential::ClientSecret {
            client_id: s.client_id().to_string(),
            secret: Secret::new(s.client_secret()),
        },
    )
    .with_endpoints(s.graph_url(), s.login_url());
    g.api_version = ApiVersion::V1;
    g.page_size = page_size;
    g.retry = RetryPolicy {
        max_attempts: 8,
        base: Duration::from_millis(50),
        cap: Duration::from_secs(2),
    };
    GraphClient::new(g).expect("graph client")
}

fn options(s: &Sandbox, workspace: &str, mode: ImportMode) -> ImportOptions {
    ImportOptions {
        workspace: workspace.into(),
        connection: "entra".into(),
        target: ConnectionTarget {
            tenant_id: Some(s.tenant_id().to_string()),
            client_id: Some(s.client_id().to_string()),
            graph_base_url: Some(s.graph_url()),
            login_base_url: Some(s.login_url()),
        },
        mode,
        actor: "test".into(),
    }
}

/// Plain Graph calls the tests make as "someone else" changing the tenant.
struct Admin {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Admin {
    fn new(s: &Sandbox) -> Admin {
        Admin {
            http: reqwest::Client::new(),
            base: format!("{}/v1.0", s.graph_url()),
            token: s.app_token().expect("app token"),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("graph call");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn users(&self, top: usize) -> Vec<Value> {
        let v = self
            .call(reqwest::Method::GET, &format!("/users?$top={top}"), None)
            .await;
        v["value"].as_array().cloned().unwrap_or_default()
    }
}

/// Users by external id, and group → member external ids, of one workspace.
async fn snapshot(
    store: &Store,
    ws: WorkspaceId,
) -> (
    BTreeMap<String, (String, String, Option<String>, bool, Lifecycle)>,
    BTreeMap<String, BTreeSet<String>>,
) {
    let mut users = BTreeMap::new();
    let mut by_id = BTreeMap::new();
    let mut after = None;
    loop {
        let page = store.list_users(ws, after, 5000).await.expect("users");
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for u in page {
            let ext = u
                .external_id
                .clone()
                .expect("imported users have external ids");
            by_id.insert(u.id, ext.clone());
            users.insert(
                ext,
                (
                    u.upn.as_str().to_string(),
                    u.display_name,
                    u.department,
                    u.enabled,
                    u.lifecycle,
                ),
            );
        }
    }
    let mut groups = BTreeMap::new();
    for g in store.list_groups(ws).await.expect("groups") {
        let members = store
            .group_member_ids(g.id)
            .await
            .expect("members")
            .into_iter()
            .map(|id| by_id[&id].clone())
            .collect();
        groups.insert(
            format!("{} {}", g.external_id.unwrap_or_default(), g.display_name),
            members,
        );
    }
    (users, groups)
}

/// Full import, changes in the tenant, a delta round: the delta store ends up as a fresh full
/// import of the changed tenant would, plus the deleted users kept and marked for deprovisioning.
async fn full_then_delta(store: TestStore, n: usize) {
    let s = sandbox(n, Knobs::default()).await;
    let g = graph(&s, 999);
    let first = import(
        &store,
        &g,
        &options(&s, "ws", ImportMode::Full),
        &NoProgress,
    )
    .await
    .expect("full import");
    assert_eq!(first.mode, Some(ImportMode::Full));
    assert_eq!(first.users_created as usize, n);
    assert_eq!(first.users_total as usize, n);
    assert!(first.groups_created >= 5);
    assert!(first.memberships_total as usize >= n - 1, "{first:?}");

    // Someone changes the tenant.
    let admin = Admin::new(&s);
    let existing = admin.users(40).await;
    let id = |i: usize| existing[i]["id"].as_str().expect("id").to_string();
    use reqwest::Method;
    let mut added = Vec::new();
    for i in 0..3 {
        let u = admin
            .call(
                Method::POST,
                "/users",
                Some(json!({
                    "accountEnabled": true, "displayName": format!("New Hire {i}"),
                    "mailNickname": format!("newhire{i}"),
                    "userPrincipalName": format!("newhire{i}@contoso.example"),
                    "passwordProfile": {"password": "xWwvJ]6NMw+bWH-d"},
                    "department": "Sales"
                })),
            )
            .await;
        added.push(u["id"].as_str().expect("new id").to_string());
    }
    admin
        .call(
            Method::PATCH,
            &format!("/users/{}", id(5)),
            Some(json!({"displayName": "Renamed Person", "department": "Legal"})),
        )
        .await;
    admin
        .call(
            Method::PATCH,
            &format!("/users/{}", id(6)),
            Some(json!({"accountEnabled": false})),
        )
        .await;
    admin
        .call(Method::DELETE, &format!("/users/{}", id(7)), None)
        .await;
    admin
        .call(Method::DELETE, &format!("/users/{}", id(8)), None)
        .await;
    admin
        .call(Method::DELETE, &format!("/users/{}", id(9)), None)
        .await;
    admin
        .call(
            Method::DELETE,
            &format!("/directory/deletedItems/{}", id(9)),
            None,
        )
        .await;
    let groups = admin.call(Method::GET, "/groups?$top=50", None).await;
    let group = groups["value"][0]["id"]
        .as_str()
        .expect("group")
        .to_string();
    let members = admin
        .call(
            Method::GET,
            &format!("/groups/{group}/members?$top=5"),
            None,
        )
        .await;
    let leaving = members["value"][0]["id"]
        .as_str()
        .expect("member")
        .to_string();
    admin
        .call(
            Method::POST,
            &format!("/groups/{group}/members/$ref"),
            Some(json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{}", added[0])})),
        )
        .await;
    admin
        .call(
            Method::DELETE,
            &format!("/groups/{group}/members/{leaving}/$ref"),
            None,
        )
        .await;
    admin
        .call(
            Method::PATCH,
            &format!("/groups/{group}"),
            Some(json!({"displayName": "Renamed Group"})),
        )
        .await;

    let delta = import(
        &store,
        &g,
        &options(&s, "ws", ImportMode::Delta),
        &NoProgress,
    )
    .await
    .expect("delta import");
    assert_eq!(delta.mode, Some(ImportMode::Delta));
    assert!(!delta.fell_back_to_full);
    assert_eq!(delta.users_created, 3, "{delta:?}");
    assert_eq!(delta.users_updated, 2, "{delta:?}");
    assert_eq!(delta.users_soft_deleted, 2, "{delta:?}");
    assert_eq!(delta.users_hard_deleted, 1, "{delta:?}");
    assert_eq!(delta.memberships_added, 1, "{delta:?}");
    // The member taken out, and (Graph removes a purged user from its groups) the hard-deleted
    // user's memberships: the comparison with a fresh import below proves the exact result.
    assert!(delta.memberships_removed >= 1, "{delta:?}");
    assert!(delta.groups_updated >= 1, "{delta:?}");
    assert_eq!(delta.groups_created, 0, "{delta:?}");
    assert!(
        delta.users_seen < 10,
        "a delta round reports changes only: {delta:?}"
    );

    // The same tenant imported afresh into another workspace.
    let fresh = import(
        &store,
        &g,
        &options(&s, "fresh", ImportMode::Full),
        &NoProgress,
    )
    .await
    .expect("fresh import");
    assert_eq!(fresh.users_total as usize, n + 3 - 3);
    let ws = store.ensure_workspace("ws").await.expect("ws").id;
    let fws = store.ensure_workspace("fresh").await.expect("ws").id;
    let (du, dg) = snapshot(&store, ws).await;
    let (fu, fg) = snapshot(&store, fws).await;
    // Lifecycle is history, not state: a user disabled since the last import is marked for
    // deprovisioning, one first seen disabled never had anything to deprovision.
    let no_life = |u: &(String, String, Option<String>, bool, Lifecycle)| {
        (u.0.clone(), u.1.clone(), u.2.clone(), u.3)
    };
    for (ext, want) in &fu {
        assert_eq!(du.get(ext).map(no_life), Some(no_life(want)), "user {ext}");
    }
    let extra: BTreeSet<&String> = du.keys().filter(|k| !fu.contains_key(*k)).collect();
    let deleted: BTreeSet<String> = [id(7), id(8), id(9)].into_iter().collect();
    assert_eq!(extra, deleted.iter().collect());
    for ext in &deleted {
        let (_, _, _, enabled, lifecycle) = &du[ext];
        assert!(!enabled);
        assert_eq!(*lifecycle, Lifecycle::DeprovisionPending);
    }
    assert_eq!(du[&id(6)].4, Lifecycle::DeprovisionPending, "disabled user");
    let live = |m: &BTreeSet<String>| -> BTreeSet<String> {
        m.iter()
            .filter(|u| !deleted.contains(*u))
            .cloned()
            .collect()
    };
    assert_eq!(dg.len(), fg.len());
    for (k, members) in &fg {
        assert_eq!(live(&dg[k]), *members, "group {k}");
    }
    assert!(dg.keys().any(|k| k.ends_with("Renamed Group")));
    s.shutdown().await;
}

behalf_store::each_backend!(
    full_import_then_delta_picks_up_exactly_the_changes_2000_users,
    |store: TestStore| async move {
        full_then_delta(store, 2_000).await;
    }
);

/// With the sandbox answering 429 to every 10th Graph request and 503 to every 50th, the import
/// still completes with the same counts, and never comes back before Retry-After.
async fn throttled(store: TestStore) {
    let n = 3_000;
    let s = sandbox(
        n,
        Knobs {
            throttle_every: 10,
            fail_every: 50,
            retry_after_secs: 1,
            ..Knobs::default()
        },
    )
    .await;
    // Small pages so that the import makes enough requests to be throttled several times.
    let g = graph(&s, 40);
    let t0 = Instant::now();
    let summary: ImportSummary = import(
        &store,
        &g,
        &options(&s, "ws", ImportMode::Full),
        &NoProgress,
    )
    .await
    .expect("throttled import completes");
    let state: Value = reqwest::get(format!("{}/sandbox/state", s.base_url()))
        .await
        .expect("state")
        .json()
        .await
        .expect("json");
    eprintln!(
        "throttled import of {n} users: {:?}, {} pages, {} x 429, {} retries, state {}",
        t0.elapsed(),
        summary.pages,
        summary.throttled,
        summary.retries,
        state
    );
    assert_eq!(summary.users_created as usize, n);
    assert_eq!(summary.users_total as usize, n);
    assert_eq!(state["earlyRetries"], 0, "{state}");
    assert!(summary.throttled >= 5, "{summary:?}");
    assert!(
        state["unavailable503"].as_u64().unwrap_or(0) >= 1,
        "{state}"
    );
    assert_eq!(
        summary.throttled,
        state["throttled429"].as_u64().unwrap_or(0)
    );
    let unthrottled = sandbox(n, Knobs::default()).await;
    let baseline = import(
        &store,
        &graph(&unthrottled, 40),
        &options(&unthrottled, "baseline", ImportMode::Full),
        &NoProgress,
    )
    .await
    .expect("baseline import");
    assert_eq!(baseline.users_total, summary.users_total);
    assert_eq!(baseline.groups_total, summary.groups_total);
    assert_eq!(baseline.memberships_total, summary.memberships_total);
    s.shutdown().await;
    unthrottled.shutdown().await;
}

behalf_store::each_backend!(
    throttled_and_failing_import_completes_with_the_same_counts,
    |store: TestStore| async move {
        throttled(store).await;
    }
);

/// HEAVY (about a minute in a debug build): 100,000 users with their groups, SQLite only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_import_of_100000_users_sqlite() {
    let store = behalf_store::testing::sqlite().await;
    let n = 100_000;
    let s = Sandbox::start(SandboxConfig {
        users: n,
        knobs: Knobs {
            graph_throttling: false,
            ..Knobs::default()
        },
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox");
    let g = graph(&s, 999);
    let t0 = Instant::now();
    let summary = import(
        &store,
        &g,
        &options(&s, "ws", ImportMode::Full),
        &NoProgress,
    )
    .await
    .expect("100k import");
    let took = t0.elapsed();
    eprintln!(
        "imported {n} users, {} groups, {} memberships in {took:?} ({} pages)",
        summary.groups_total, summary.memberships_total, summary.pages
    );
    assert_eq!(summary.users_total as usize, n);
    assert!(summary.memberships_total as usize >= n - 1);
    let again = import(
        &store,
        &g,
        &options(&s, "ws", ImportMode::Delta),
        &NoProgress,
    )
    .await
    .expect("delta");
    assert_eq!(again.users_seen, 0, "nothing changed: {again:?}");
    s.shutdown().await;
}
