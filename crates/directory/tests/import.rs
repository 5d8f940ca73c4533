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

    async fn get_url(&self, url: &str) -> Value {
        let resp = self
            .http
            .get(url)
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("graph call");
        assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
        resp.json().await.expect("json")
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

/// A user as the store keeps what Graph says: (upn, displayName, mail, department, enabled).
type Kept = (String, String, Option<String>, Option<String>, bool);

/// Every active user of the tenant, as `GET /users` lists them.
async fn tenant_users(admin: &Admin) -> BTreeMap<String, Kept> {
    let mut out = BTreeMap::new();
    let mut next = Some(format!(
        "{}/users?$top=999&$select=id,userPrincipalName,displayName,mail,department,accountEnabled",
        admin.base
    ));
    while let Some(url) = next {
        let v = admin.get_url(&url).await;
        for u in v["value"].as_array().cloned().unwrap_or_default() {
            let text = |k: &str| u[k].as_str().map(String::from);
            out.insert(
                text("id").unwrap_or_default(),
                (
                    text("userPrincipalName").unwrap_or_default(),
                    text("displayName").unwrap_or_default(),
                    text("mail"),
                    text("department"),
                    u["accountEnabled"].as_bool().unwrap_or(true),
                ),
            );
        }
        next = v["@odata.nextLink"].as_str().map(String::from);
    }
    out
}

/// The store's users of a workspace by external id, with their lifecycle.
async fn stored_users(store: &Store, ws: WorkspaceId) -> BTreeMap<String, (Kept, Lifecycle)> {
    let mut out = BTreeMap::new();
    let mut after = None;
    loop {
        let page = store.list_users(ws, after, 5000).await.expect("users");
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for u in page {
            out.insert(
                u.external_id
                    .clone()
                    .expect("imported users have external ids"),
                (
                    (
                        u.upn.as_str().to_string(),
                        u.display_name,
                        u.mail,
                        u.department,
                        u.enabled,
                    ),
                    u.lifecycle,
                ),
            );
        }
    }
    out
}

/// Full import of `n` users with their groups, then every kind of change in the tenant, then a
/// delta round: it picks up exactly those changes (the counts say so), and the store then holds
/// exactly what the tenant holds, plus the deleted users kept and marked for deprovisioning.
async fn full_then_delta(store: TestStore, n: usize) {
    let s = Sandbox::start(SandboxConfig {
        users: n,
        knobs: Knobs {
            // Graph's write budget would make the test wait (the throttled test covers that).
            graph_throttling: false,
            ..Knobs::default()
        },
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox");
    let g = graph(&s, 999);
    let admin = Admin::new(&s);
    let t0 = Instant::now();
    let first = import(
        &store,
        &g,
        &options(&s, "ws", ImportMode::Full),
        &NoProgress,
    )
    .await
    .expect("full import");
    let full_took = t0.elapsed();
    let ws = store.ensure_workspace("ws").await.expect("ws").id;
    let before_groups = tenant_memberships(&admin).await;
    let before_users = tenant_users(&admin).await;
    let total_memberships: usize = before_groups.values().map(BTreeSet::len).sum();
    assert_eq!(first.mode, Some(ImportMode::Full));
    assert_eq!(first.users_created as usize, n);
    assert_eq!(first.users_total as usize, n);
    assert_eq!(
        first.groups_created as usize,
        before_groups.len(),
        "{first:?}"
    );
    assert_eq!(
        first.memberships_added as usize, total_memberships,
        "{first:?}"
    );
    assert_eq!(
        first.memberships_total as usize, total_memberships,
        "{first:?}"
    );
    assert!(
        total_memberships >= n,
        "every user is in a department group"
    );

    // Someone changes the tenant: disjoint sets of users, so each change is counted once.
    use reqwest::Method;
    let ids: Vec<String> = before_users.keys().cloned().collect();
    let enabled: Vec<&String> = ids.iter().filter(|id| before_users[*id].4).collect();
    let group_of = |user: &String, skip: &[&String]| -> Option<String> {
        before_groups
            .iter()
            .find(|(gid, m)| !skip.contains(gid) && m.len() > 100 && m.contains(user))
            .map(|(gid, _)| gid.clone())
    };
    let small: Vec<&String> = before_groups
        .iter()
        .filter(|(_, m)| m.len() <= 100)
        .map(|(g, _)| g)
        .collect();
    let (project, doomed) = (small[0].clone(), small[1].clone());
    let renamed_group = before_groups
        .iter()
        .find(|(_, m)| m.len() > 100)
        .map(|(g, _)| g.clone())
        .expect("a department group");

    let mut created = Vec::new();
    for i in 0..200 {
        let u = admin
            .call(
                Method::POST,
                "/users",
                Some(json!({
                    "accountEnabled": true, "displayName": format!("New Hire {i}"),
                    "mailNickname": format!("newhire{i}"),
                    "userPrincipalName": format!("newhire{i}@contoso.example"),
                    "passwordProfile": {"password": "xWwvJ]6NMw+bWH-d"},
                    "department": "Sales", "mail": format!("newhire{i}@contoso.example")
                })),
            )
            .await;
        created.push(u["id"].as_str().expect("new id").to_string());
    }
    let edited: Vec<&String> = enabled[100..400].to_vec();
    for (i, id) in edited.iter().enumerate() {
        let patch = if i % 2 == 0 {
            json!({"displayName": format!("Renamed {i}")})
        } else {
            json!({"department": format!("Department {i}")})
        };
        admin
            .call(Method::PATCH, &format!("/users/{id}"), Some(patch))
            .await;
    }
    let disabled: Vec<&String> = enabled[400..500].to_vec();
    for id in &disabled {
        admin
            .call(
                Method::PATCH,
                &format!("/users/{id}"),
                Some(json!({"accountEnabled": false})),
            )
            .await;
    }
    let unmailed: Vec<&String> = enabled[500..520].to_vec();
    for id in &unmailed {
        admin
            .call(
                Method::PATCH,
                &format!("/users/{id}"),
                Some(json!({"mail": null})),
            )
            .await;
    }
    let soft: Vec<&String> = enabled[600..750].to_vec();
    let hard: Vec<&String> = enabled[750..850].to_vec();
    for id in soft.iter().chain(&hard) {
        admin
            .call(Method::DELETE, &format!("/users/{id}"), None)
            .await;
    }
    for id in &hard {
        admin
            .call(
                Method::DELETE,
                &format!("/directory/deletedItems/{id}"),
                None,
            )
            .await;
    }
    let joiners: Vec<String> = enabled[1000..]
        .iter()
        .filter(|u| !before_groups[&project].contains(**u) && !before_groups[&doomed].contains(**u))
        .take(120)
        .map(|u| (*u).clone())
        .chain(created[..50].iter().cloned())
        .collect();
    let reference = |u: &String| json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{u}")});
    for u in &joiners {
        admin
            .call(
                Method::POST,
                &format!("/groups/{project}/members/$ref"),
                Some(reference(u)),
            )
            .await;
    }
    let leavers: Vec<(String, String)> = enabled[2000..]
        .iter()
        .filter_map(|u| Some(((*u).clone(), group_of(u, &[&renamed_group])?)))
        .take(80)
        .collect();
    assert_eq!(leavers.len(), 80);
    for (u, gid) in &leavers {
        admin
            .call(
                Method::DELETE,
                &format!("/groups/{gid}/members/{u}/$ref"),
                None,
            )
            .await;
    }
    admin
        .call(
            Method::PATCH,
            &format!("/groups/{renamed_group}"),
            Some(json!({"displayName": "Renamed Department"})),
        )
        .await;
    let new_group = admin
        .call(
            Method::POST,
            "/groups",
            Some(json!({"displayName": "Newcomers", "mailEnabled": false,
                "mailNickname": "newcomers", "securityEnabled": true})),
        )
        .await["id"]
        .as_str()
        .expect("group id")
        .to_string();
    for u in &created[50..80] {
        admin
            .call(
                Method::POST,
                &format!("/groups/{new_group}/members/$ref"),
                Some(reference(u)),
            )
            .await;
    }
    admin
        .call(Method::DELETE, &format!("/groups/{doomed}"), None)
        .await;

    // What the round must report. Deleted users leave every group but the deleted one (whose
    // memberships go with it).
    let deleted: BTreeSet<&String> = soft.iter().chain(&hard).copied().collect();
    let mut touched_groups: BTreeSet<String> = [project.clone(), renamed_group.clone()].into();
    let mut removed_by_deletion = 0;
    for (gid, members) in &before_groups {
        if *gid == doomed {
            continue;
        }
        let gone = members.iter().filter(|u| deleted.contains(u)).count();
        if gone > 0 {
            touched_groups.insert(gid.clone());
        }
        removed_by_deletion += gone;
    }
    touched_groups.extend(leavers.iter().map(|(_, g)| g.clone()));

    let t1 = Instant::now();
    let delta = import(
        &store,
        &g,
        &options(&s, "ws", ImportMode::Delta),
        &NoProgress,
    )
    .await
    .expect("delta import");
    let delta_took = t1.elapsed();
    eprintln!(
        "{n} users: full import {full_took:?} ({} pages), delta {delta_took:?} ({} pages): {delta:?}",
        first.pages, delta.pages
    );
    assert_eq!(delta.mode, Some(ImportMode::Delta));
    assert!(!delta.fell_back_to_full);
    assert_eq!(delta.users_seen, 200 + 300 + 100 + 20, "{delta:?}");
    assert_eq!(delta.users_created, 200, "{delta:?}");
    assert_eq!(delta.users_updated, 300 + 100 + 20, "{delta:?}");
    assert_eq!(delta.users_soft_deleted, 150, "{delta:?}");
    assert_eq!(delta.users_hard_deleted, 100, "{delta:?}");
    assert_eq!(delta.groups_created, 1, "{delta:?}");
    assert_eq!(delta.groups_deleted, 1, "{delta:?}");
    assert_eq!(
        delta.groups_updated as usize,
        touched_groups.len(),
        "{delta:?}"
    );
    assert_eq!(
        delta.groups_seen as usize,
        touched_groups.len() + 1,
        "{delta:?}"
    );
    assert_eq!(delta.memberships_added, 120 + 50 + 30, "{delta:?}");
    assert_eq!(
        delta.memberships_removed as usize,
        80 + removed_by_deletion,
        "{delta:?}"
    );
    assert_eq!(delta.memberships_unchanged, 0, "{delta:?}");
    assert_eq!(
        delta.users_total as usize,
        n + 200,
        "deleted users are kept"
    );

    // The store now holds what the tenant holds.
    let tenant = tenant_users(&admin).await;
    let stored = stored_users(&store, ws).await;
    assert_eq!(tenant.len(), n + 200 - 250);
    assert_eq!(stored.len(), n + 200);
    for (id, want) in &tenant {
        assert_eq!(stored.get(id).map(|s| &s.0), Some(want), "user {id}");
    }
    for id in &deleted {
        let ((_, _, _, _, enabled), lifecycle) = &stored[*id];
        assert!(!enabled, "{id}");
        assert_eq!(*lifecycle, Lifecycle::DeprovisionPending, "{id}");
    }
    for id in &disabled {
        assert_eq!(stored[*id].1, Lifecycle::DeprovisionPending, "{id}");
    }
    assert_eq!(
        stored_memberships(&store, ws).await,
        tenant_memberships(&admin).await
    );
    let names: BTreeSet<String> = store
        .list_groups(ws)
        .await
        .expect("groups")
        .into_iter()
        .map(|g| g.display_name)
        .collect();
    assert!(names.contains("Renamed Department") && names.contains("Newcomers"));

    // Nothing changed since: an empty round.
    let again = import(
        &store,
        &g,
        &options(&s, "ws", ImportMode::Delta),
        &NoProgress,
    )
    .await
    .expect("delta");
    assert_eq!((again.users_seen, again.groups_seen), (0, 0), "{again:?}");
    s.shutdown().await;
}

behalf_store::each_backend!(
    full_import_of_100000_users_then_delta_picks_up_exactly_the_changes,
    |store: TestStore| async move {
        full_then_delta(store, 100_000).await;
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
    // Both faults happened, and each refused request was sent again, once, no earlier than told.
    assert_eq!(
        summary.retries,
        summary.throttled + state["unavailable503"].as_u64().unwrap_or(0),
        "{summary:?} {state}"
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

async fn sandbox_state(s: &Sandbox) -> Value {
    reqwest::get(format!("{}/sandbox/state", s.base_url()))
        .await
        .expect("state")
        .json()
        .await
        .expect("json")
}

/// Delta entries that carry only what changed (the least Graph promises; what
/// `Prefer: return=minimal` asks for) update only those properties: nothing else is nulled out,
/// and nothing is fetched to fill the gaps (the stored user has them).
async fn partial_users(store: TestStore) {
    let s = sandbox(
        300,
        Knobs {
            delta_return_minimal: true,
            ..Knobs::default()
        },
    )
    .await;
    let g = graph(&s, 999);
    import(
        &store,
        &g,
        &options(&s, "ws", ImportMode::Full),
        &NoProgress,
    )
    .await
    .expect("full import");
    let ws = store.ensure_workspace("ws").await.expect("ws").id;
    let before = |ext: &str| {
        let store = &store;
        let ext = ext.to_string();
        async move {
            store
                .find_user_by_external_id(ws, &ext)
                .await
                .expect("lookup")
                .expect("imported")
        }
    };
    let admin = Admin::new(&s);
    let users = admin.users(20).await;
    let id = |i: usize| users[i]["id"].as_str().expect("id").to_string();
    use reqwest::Method;
    let (moved, unmailed, renamed, disabled) = (id(3), id(4), id(5), id(6));
    let (m0, u0, r0, d0) = (
        before(&moved).await,
        before(&unmailed).await,
        before(&renamed).await,
        before(&disabled).await,
    );
    assert!(u0.mail.is_some() && u0.department.is_some());
    for (who, patch) in [
        (&moved, json!({"department": "Legal"})),
        (&unmailed, json!({"mail": null})),
        (&renamed, json!({"displayName": "Renamed Only"})),
        (&disabled, json!({"accountEnabled": false})),
        // Not a property Behalf reads: the user does not even come back.
        (&id(7), json!({"jobTitle": "Chief Tester"})),
    ] {
        admin
            .call(Method::PATCH, &format!("/users/{who}"), Some(patch))
            .await;
    }
    let requests_before = sandbox_state(&s).await["graphRequests"]
        .as_u64()
        .unwrap_or(0);
    let delta = import(
        &store,
        &g,
        &options(&s, "ws", ImportMode::Delta),
        &NoProgress,
    )
    .await
    .expect("delta import");
    let requests = sandbox_state(&s).await["graphRequests"]
        .as_u64()
        .unwrap_or(0)
        - requests_before;
    assert_eq!(delta.users_seen, 4, "{delta:?}");
    assert_eq!(delta.users_updated, 4, "{delta:?}");
    assert_eq!(delta.users_created, 0, "{delta:?}");
    assert_eq!(
        requests, delta.pages,
        "one request per delta page, no lookups: {delta:?}"
    );

    let m1 = before(&moved).await;
    assert_eq!(m1.department.as_deref(), Some("Legal"));
    assert_eq!(
        (&m1.upn, &m1.display_name, &m1.mail, m1.enabled),
        (&m0.upn, &m0.display_name, &m0.mail, m0.enabled)
    );
    let u1 = before(&unmailed).await;
    assert_eq!(u1.mail, None, "a property sent as null is cleared");
    assert_eq!(
        (&u1.upn, &u1.display_name, &u1.department),
        (&u0.upn, &u0.display_name, &u0.department)
    );
    let r1 = before(&renamed).await;
    assert_eq!(r1.display_name, "Renamed Only");
    assert_eq!(
        (&r1.upn, &r1.mail, &r1.department),
        (&r0.upn, &r0.mail, &r0.department)
    );
    let d1 = before(&disabled).await;
    assert!(!d1.enabled);
    assert_eq!(d1.lifecycle, Lifecycle::DeprovisionPending);
    assert_eq!(
        (&d1.display_name, &d1.mail, &d1.department),
        (&d0.display_name, &d0.mail, &d0.department)
    );
    s.shutdown().await;
}

behalf_store::each_backend!(
    partial_delta_users_update_only_the_properties_they_carry,
    |store: TestStore| async move {
        partial_users(store).await;
    }
);

/// Every group's members as the tenant lists them (`/groups/{id}/members`), by group id.
async fn tenant_memberships(admin: &Admin) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    let mut next = Some(format!("{}/groups?$top=999&$select=id", admin.base));
    while let Some(url) = next {
        let v = admin.get_url(&url).await;
        for g in v["value"].as_array().cloned().unwrap_or_default() {
            let gid = g["id"].as_str().unwrap_or_default().to_string();
            let mut members = BTreeSet::new();
            let mut link = Some(format!(
                "{}/groups/{gid}/members?$top=999&$select=id",
                admin.base
            ));
            while let Some(l) = link {
                let page = admin.get_url(&l).await;
                for m in page["value"].as_array().cloned().unwrap_or_default() {
                    members.insert(m["id"].as_str().unwrap_or_default().to_string());
                }
                link = page["@odata.nextLink"].as_str().map(String::from);
            }
            out.insert(gid, members);
        }
        next = v["@odata.nextLink"].as_str().map(String::from);
    }
    out
}

/// The store's groups and members, by group external id and user external id.
async fn stored_memberships(store: &Store, ws: WorkspaceId) -> BTreeMap<String, BTreeSet<String>> {
    let (_, groups) = snapshot(store, ws).await;
    groups
        .into_iter()
        .map(|(k, v)| (k.split(' ').next().unwrap_or_default().to_string(), v))
        .collect()
}

/// Groups whose members fill several delta pages (the group repeated on each) end with exactly
/// the tenant's membership, are counted once, and their later member changes apply exactly.
async fn paged_groups(store: TestStore) {
    let s = sandbox(
        600,
        Knobs {
            delta_members_per_page: 25,
            ..Knobs::default()
        },
    )
    .await;
    let g = graph(&s, 999);
    let admin = Admin::new(&s);
    let groups_in_tenant = tenant_memberships(&admin).await;
    let full = import(
        &store,
        &g,
        &options(&s, "ws", ImportMode::Full),
        &NoProgress,
    )
    .await
    .expect("full import");
    let ws = store.ensure_workspace("ws").await.expect("ws").id;
    assert_eq!(
        full.groups_seen as usize,
        groups_in_tenant.len(),
        "{full:?}"
    );
    assert_eq!(
        full.groups_created as usize,
        groups_in_tenant.len(),
        "{full:?}"
    );
    assert_eq!(full.groups_updated, 0, "{full:?}");
    let total: usize = groups_in_tenant.values().map(BTreeSet::len).sum();
    assert!(total > 25 * 10, "enough members for many pages: {total}");
    assert_eq!(full.memberships_added as usize, total, "{full:?}");
    assert_eq!(stored_memberships(&store, ws).await, groups_in_tenant);

    // The biggest group: 40 users in, 30 out.
    use reqwest::Method;
    let (big, members) = groups_in_tenant
        .iter()
        .max_by_key(|(_, m)| m.len())
        .map(|(g, m)| (g.clone(), m.clone()))
        .expect("groups");
    let outsiders: Vec<String> = admin
        .users(999)
        .await
        .iter()
        .filter_map(|u| u["id"].as_str().map(String::from))
        .filter(|u| !members.contains(u))
        .take(40)
        .collect();
    for u in &outsiders {
        admin
            .call(
                Method::POST,
                &format!("/groups/{big}/members/$ref"),
                Some(json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{u}")})),
            )
            .await;
    }
    for u in members.iter().take(30) {
        admin
            .call(
                Method::DELETE,
                &format!("/groups/{big}/members/{u}/$ref"),
                None,
            )
            .await;
    }
    let delta = import(
        &store,
        &g,
        &options(&s, "ws", ImportMode::Delta),
        &NoProgress,
    )
    .await
    .expect("delta import");
    assert_eq!(delta.groups_seen, 1, "{delta:?}");
    assert_eq!(delta.groups_updated, 1, "{delta:?}");
    assert_eq!(delta.memberships_added, 40, "{delta:?}");
    assert_eq!(delta.memberships_removed, 30, "{delta:?}");
    assert_eq!(delta.memberships_unchanged, 0, "{delta:?}");
    assert!(
        delta.pages >= 4,
        "70 member changes over pages of 25: {delta:?}"
    );
    assert_eq!(
        stored_memberships(&store, ws).await,
        tenant_memberships(&admin).await
    );
    s.shutdown().await;
}

behalf_store::each_backend!(
    groups_spread_over_delta_pages_end_with_the_right_members,
    |store: TestStore| async move {
        paged_groups(store).await;
    }
);

/// A full re-import (no delta round in between to report removals) after groups were deleted
/// and members removed upstream leaves no stale group or membership.
async fn full_reimport_removes_stale_groups(store: TestStore) {
    let s = sandbox(300, Knobs::default()).await;
    let g = graph(&s, 999);
    let admin = Admin::new(&s);
    import(
        &store,
        &g,
        &options(&s, "ws", ImportMode::Full),
        &NoProgress,
    )
    .await
    .expect("first import");
    let ws = store.ensure_workspace("ws").await.expect("ws").id;
    let before = tenant_memberships(&admin).await;
    assert_eq!(stored_memberships(&store, ws).await, before);
    let mut groups = before.iter().filter(|(_, members)| !members.is_empty());
    let (deleted_a, _) = groups.next().expect("a group with members");
    let (deleted_b, _) = groups.next().expect("a second group with members");
    let (thinned, members) = groups.next().expect("a third group with members");
    for gid in [deleted_a, deleted_b] {
        admin
            .call(reqwest::Method::DELETE, &format!("/groups/{gid}"), None)
            .await;
    }
    let removed: Vec<&String> = members.iter().take(2).collect();
    for uid in &removed {
        admin
            .call(
                reqwest::Method::DELETE,
                &format!("/groups/{thinned}/members/{uid}/$ref"),
                None,
            )
            .await;
    }

    let again = import(
        &store,
        &g,
        &options(&s, "ws", ImportMode::Full),
        &NoProgress,
    )
    .await
    .expect("full re-import");
    assert_eq!(again.groups_deleted, 2, "{again:?}");
    assert_eq!(again.memberships_removed, removed.len() as u64, "{again:?}");
    let after = tenant_memberships(&admin).await;
    assert!(!after.contains_key(deleted_a.as_str()));
    assert_eq!(stored_memberships(&store, ws).await, after);
    s.shutdown().await;
}

behalf_store::each_backend!(
    a_full_reimport_removes_groups_and_members_entra_no_longer_has,
    |store: TestStore| async move {
        full_reimport_removes_stale_groups(store).await;
    }
);
