//! End to end, outbound writes (Behalf → Entra ID): the real `behalf serve` on a sandbox tenant,
//! driven over HTTP through `/api/v1` with an admin-scoped token. Behalf creates users and
//! groups with memberships, edits some, deletes some; its workers write each change to the
//! sandbox through Graph; then the sandbox's directory (read through Graph) must equal Behalf's
//! exactly. Three rounds: without faults; with 429s, 503s, dropped connections and answers lost
//! after the change was made (a create then found by lookup, not sent again); and
//! with the server killed (SIGKILL) part-way through, the rest sent by `behalf outbound run`
//! and the server started again: no write fails, no user or group is created twice, none is lost.
//!
//! Default size: 500 users and 20 groups in the first round (`BEHALF_E2E_OUTBOUND_USERS`,
//! `BEHALF_E2E_OUTBOUND_GROUPS`), a fifth of the users in each later round.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use behalf_sandbox::{Knobs, SandboxConfig};
use common::tenant::Tenant;
use futures::StreamExt as _;
use serde_json::{Value, json};

const OWNER: &str = "owner@example.com";

/// A user as both sides are compared: (display name, enabled, department).
type UserView = (String, bool, Option<String>);

/// A directory as compared: users by lowercase UPN (with their Entra id), groups by display
/// name with their members' UPNs.
#[derive(Debug, PartialEq, Eq)]
struct Directory {
    users: BTreeMap<String, (UserView, String)>,
    groups: BTreeMap<String, BTreeSet<String>>,
}

/// The sandbox's directory, without what it was seeded with.
async fn tenant_directory(tenant: &Tenant, seeded: &BTreeSet<String>) -> Directory {
    let mut users = BTreeMap::new();
    for u in tenant
        .graph_all(
            "/users?$top=999&$select=id,userPrincipalName,displayName,accountEnabled,department",
        )
        .await
    {
        let upn = u["userPrincipalName"].as_str().unwrap().to_lowercase();
        if seeded.contains(&upn) {
            continue;
        }
        let view = (
            u["displayName"].as_str().unwrap().to_owned(),
            u["accountEnabled"].as_bool().unwrap(),
            u["department"].as_str().map(str::to_owned),
        );
        let id = u["id"].as_str().unwrap().to_owned();
        assert!(
            users.insert(upn.clone(), (view, id)).is_none(),
            "{upn} is twice in the tenant"
        );
    }
    let mut groups = BTreeMap::new();
    let mut nicknames = BTreeSet::new();
    for g in tenant.graph_all("/groups?$top=999").await {
        let name = g["displayName"].as_str().unwrap().to_owned();
        if seeded.contains(&format!("group:{name}")) {
            continue;
        }
        let nickname = g["mailNickname"].as_str().unwrap().to_owned();
        assert!(
            nicknames.insert(nickname.clone()),
            "{nickname}: a group created twice"
        );
        let id = g["id"].as_str().unwrap();
        let members = tenant
            .graph_all(&format!(
                "/groups/{id}/members?$top=999&$select=userPrincipalName"
            ))
            .await
            .iter()
            .map(|m| m["userPrincipalName"].as_str().unwrap().to_lowercase())
            .collect();
        assert!(
            groups.insert(name.clone(), members).is_none(),
            "{name} twice"
        );
    }
    Directory { users, groups }
}

/// Behalf's directory, read from its database as the server left it.
async fn behalf_directory(tenant: &Tenant) -> Directory {
    let store = behalf_store::Store::connect(&behalf_store::sqlite_url_for(tenant.data.path()))
        .await
        .unwrap();
    let workspace = store.ensure_workspace("default").await.unwrap();
    let mut users = BTreeMap::new();
    let mut upn_of = BTreeMap::new();
    let mut after = None;
    loop {
        let page = store.list_users(workspace.id, after, 500).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for u in page {
            upn_of.insert(u.id, u.upn.key());
            let id = u.external_id.clone().unwrap_or_default();
            users.insert(
                u.upn.key(),
                (
                    (u.display_name.clone(), u.enabled, u.department.clone()),
                    id,
                ),
            );
        }
    }
    let mut groups = BTreeMap::new();
    for g in store.list_groups(workspace.id).await.unwrap() {
        let members = store
            .group_member_ids(g.id)
            .await
            .unwrap()
            .iter()
            .map(|id| upn_of[id].clone())
            .collect();
        groups.insert(g.display_name.clone(), members);
    }
    store.close().await;
    Directory { users, groups }
}

/// The API of a running server, as an admin-scoped token.
struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            request = request.json(&b);
        }
        let answer = request.send().await.unwrap();
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap_or(Value::Null))
    }

    /// Sends and expects 2xx.
    async fn ok(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (status, body) = self.send(method.clone(), path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {body}"
        );
        body
    }

    /// Writes not yet done (pending, sending, failed).
    async fn open_writes(&self) -> Vec<Value> {
        let body = self
            .ok(
                reqwest::Method::GET,
                "/api/v1/directory/writes?state=pending,sending,failed&limit=10000",
                None,
            )
            .await;
        body["writes"].as_array().unwrap().clone()
    }

    async fn done_writes(&self) -> usize {
        let body = self
            .ok(
                reqwest::Method::GET,
                "/api/v1/directory/writes?state=done&limit=10000",
                None,
            )
            .await;
        body["writes"].as_array().unwrap().len()
    }

    /// Waits until every write is done; fails on a failed one.
    async fn wait_until_written(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let open = self.open_writes().await;
            let failed: Vec<&Value> = open.iter().filter(|w| w["state"] == "failed").collect();
            assert!(failed.is_empty(), "failed writes: {failed:#?}");
            if open.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} writes still open, e.g. {:#?}",
                open.len(),
                &open[..open.len().min(3)]
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// One round of changes: `new` users (with UPNs from `first`) in the groups (user i in groups
/// i mod g and 7i mod g), then `edits` of them edited (renamed, moved department, every fifth
/// disabled), `deletes` deleted (after the edits) and a member removed from each of `unjoin`.
struct Round {
    first: usize,
    new: usize,
    edits: usize,
    deletes: usize,
    unjoin: usize,
}

async fn create_groups(api: &Api, n: usize, tag: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for g in 0..n {
        let body = api
            .ok(
                reqwest::Method::POST,
                "/api/v1/directory/groups",
                Some(json!({"display_name": format!("Team {tag}{g:02}"), "description": "made in Behalf"})),
            )
            .await;
        assert_eq!(body["write"]["kind"], "create_group");
        ids.push(body["group"]["id"].as_str().unwrap().to_owned());
    }
    ids
}

async fn run_round(api: &Api, groups: &[String], round: &Round) {
    let upns: Vec<String> = (round.first..round.first + round.new)
        .map(|i| format!("made.{i:05}@contoso.example"))
        .collect();
    let created: Vec<(usize, String)> = futures::stream::iter(upns.iter().enumerate())
        .map(|(i, upn)| async move {
            let body = api
                .ok(
                    reqwest::Method::POST,
                    "/api/v1/directory/users",
                    Some(json!({
                        "user_principal_name": upn,
                        "display_name": format!("Made {}", round.first + i),
                        "department": "Outbound",
                    })),
                )
                .await;
            assert_eq!(body["write"]["state"], "pending", "{body}");
            (i, body["user"]["id"].as_str().unwrap().to_owned())
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut ids = vec![String::new(); created.len()];
    for (i, id) in created {
        ids[i] = id;
    }
    let g = groups.len();
    let joins: Vec<(String, String)> = ids
        .iter()
        .enumerate()
        .flat_map(|(i, u)| {
            let n = round.first + i;
            let mut gs = vec![n % g, (7 * n) % g];
            gs.dedup();
            gs.into_iter().map(move |k| (groups[k].clone(), u.clone()))
        })
        .collect();
    futures::stream::iter(&joins)
        .map(|(group, user)| async move {
            api.ok(
                reqwest::Method::PUT,
                &format!("/api/v1/directory/groups/{group}/members/{user}"),
                None,
            )
            .await
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    for (k, id) in ids.iter().take(round.edits).enumerate() {
        let mut change =
            json!({"display_name": format!("Edited {}", round.first + k), "department": "Renamed"});
        if k % 5 == 0 {
            change["account_enabled"] = json!(false);
        }
        api.ok(
            reqwest::Method::PATCH,
            &format!("/api/v1/directory/users/{id}"),
            Some(change),
        )
        .await;
    }
    for (group, user) in joins.iter().skip(1).step_by(7).take(round.unjoin) {
        api.ok(
            reqwest::Method::DELETE,
            &format!("/api/v1/directory/groups/{group}/members/{user}"),
            None,
        )
        .await;
    }
    // The deleted are taken from the end, some of them edited first when the round is small.
    for id in ids.iter().rev().take(round.deletes) {
        let body = api
            .ok(
                reqwest::Method::DELETE,
                &format!("/api/v1/directory/users/{id}"),
                None,
            )
            .await;
        assert_eq!(body["kind"], "delete_user");
    }
}

async fn assert_same(tenant: &Tenant, seeded: &BTreeSet<String>, users: usize, what: &str) {
    let theirs = tenant_directory(tenant, seeded).await;
    let ours = behalf_directory(tenant).await;
    assert_eq!(theirs.users.len(), users, "{what}: users in the tenant");
    assert_eq!(ours, theirs, "{what}: Behalf's directory is the tenant's");
}

/// Starts `behalf serve` on the tenant, with the sync off (nothing is imported: Behalf is the
/// source here).
async fn serve(tenant: &Tenant) -> common::Server {
    let mut command = tenant.behalf_std(&[]);
    command.env("BEHALF_SYNC__INTERVAL_SECS", "0");
    common::start_server(command).await
}

async fn patch_knobs(tenant: &Tenant, knobs: Value) {
    let r = tenant
        .http
        .patch(format!("{}/sandbox/knobs", tenant.sandbox.base_url()))
        .json(&knobs)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_groups_made_in_behalf_reach_entra_exactly_through_faults_and_a_kill() {
    let users = common::env_size("BEHALF_E2E_OUTBOUND_USERS", 500);
    let group_count = common::env_size("BEHALF_E2E_OUTBOUND_GROUPS", 20);
    let later = (users / 5).max(5);
    let started = Instant::now();
    let tenant = Tenant::start_with(SandboxConfig {
        users: 3,
        groups: Some(1),
        knobs: Knobs {
            graph_throttling: false,
            ..Knobs::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    let mut seeded: BTreeSet<String> = tenant
        .graph_all("/users?$top=999")
        .await
        .iter()
        .map(|u| u["userPrincipalName"].as_str().unwrap().to_lowercase())
        .collect();
    for g in tenant.graph_all("/groups?$top=999").await {
        seeded.insert(format!("group:{}", g["displayName"].as_str().unwrap()));
    }

    let password_file = tenant.data.path().join("password.txt");
    std::fs::write(&password_file, "correct horse battery staple\n").unwrap();
    let out = tenant
        .run(&[
            "admin",
            "create",
            "--email",
            OWNER,
            "--role",
            "owner",
            "--password-file",
            password_file.to_str().unwrap(),
        ])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tenant
        .run(&[
            "token", "create", "--admin", OWNER, "--name", "e2e", "--scope", "admin",
        ])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    let server = serve(&tenant).await;
    let mut api = Api {
        base: server.base_url.clone(),
        token,
        http: reqwest::Client::new(),
    };
    // A read-only connection refuses writes, in words.
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            "/api/v1/directory/users",
            Some(json!({"user_principal_name": "x@contoso.example", "display_name": "X"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body.to_string().contains("writable"), "{body}");
    api.ok(
        reqwest::Method::PUT,
        "/api/v1/connections/entra/writable",
        Some(json!({"writable": true})),
    )
    .await;

    // Round 1, no faults.
    let groups = create_groups(&api, group_count, "").await;
    let round = Round {
        first: 0,
        new: users,
        edits: 50.min(users),
        deletes: 20.min(users / 2),
        unjoin: 10,
    };
    run_round(&api, &groups, &round).await;
    api.wait_until_written(Duration::from_secs(120 + users as u64 / 5))
        .await;
    let mut expected = users - round.deletes;
    assert_same(&tenant, &seeded, expected, "without faults").await;
    eprintln!("round 1 ({users} users) in {:.1?}", started.elapsed());

    // A UPN already taken in Entra ID (by a user Behalf did not make): the write fails as a
    // conflict, in words, and waits; discarding it lets the user's later writes go.
    tenant
        .graph(
            reqwest::Method::POST,
            "/users",
            Some(json!({"accountEnabled": true, "displayName": "Taken", "mailNickname": "taken",
                "userPrincipalName": "taken@contoso.example", "passwordProfile": {"password": "Xy!12345678"}})),
        )
        .await;
    seeded.insert("taken@contoso.example".into());
    let body = api
        .ok(
            reqwest::Method::POST,
            "/api/v1/directory/users",
            Some(json!({"user_principal_name": "taken@contoso.example", "display_name": "Mine"})),
        )
        .await;
    let (taken_user, taken_write) = (
        body["user"]["id"].as_str().unwrap().to_owned(),
        body["write"]["id"].as_str().unwrap().to_owned(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let failed = loop {
        let open = api.open_writes().await;
        if let Some(w) = open
            .iter()
            .find(|w| w["id"] == taken_write.as_str() && w["state"] == "failed")
        {
            break w.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the taken UPN's write did not fail: {open:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("exists already in Entra ID"),
        "{failed}"
    );
    let sync = api
        .ok(
            reqwest::Method::GET,
            &format!("/api/v1/directory/users/{taken_user}/sync"),
            None,
        )
        .await;
    assert_eq!(sync["state"], "failed", "{sync}");
    let delete = api
        .ok(
            reqwest::Method::DELETE,
            &format!("/api/v1/directory/users/{taken_user}"),
            None,
        )
        .await;
    api.ok(
        reqwest::Method::POST,
        &format!("/api/v1/directory/writes/{taken_write}/discard"),
        None,
    )
    .await;
    api.wait_until_written(Duration::from_secs(30)).await;
    let gone = api
        .send(
            reqwest::Method::GET,
            &format!("/api/v1/directory/users/{taken_user}/sync"),
            None,
        )
        .await;
    assert_eq!(
        gone.0, 404,
        "the discarded user's record went with its delete: {delete} {gone:?}"
    );
    assert_same(&tenant, &seeded, expected, "after a conflict").await;

    // A user created at once, its random initial password answered once and kept nowhere.
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            "/api/v1/directory/users",
            Some(json!({"user_principal_name": "shown.once@contoso.example", "display_name": "Shown Once",
                "show_initial_password": true})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["write"]["state"], "done", "{body}");
    assert!(body["user"]["external_id"].is_string(), "{body}");
    let password = body["initial_password"].as_str().unwrap().to_owned();
    assert!(password.len() >= 16, "{password}");
    let in_tenant = tenant
        .graph(
            reqwest::Method::GET,
            "/users/shown.once@contoso.example",
            None,
        )
        .await;
    assert_eq!(in_tenant["id"], body["user"]["external_id"]);
    for entry in std::fs::read_dir(tenant.data.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes
                    .windows(password.len())
                    .any(|w| w == password.as_bytes()),
                "the initial password is in {}",
                path.display()
            );
        }
    }
    expected += 1;
    assert_same(&tenant, &seeded, expected, "with a user created at once").await;

    // Round 2: 429s, 503s (Retry-After 1 s) and dropped connections.
    patch_knobs(
        &tenant,
        json!({"throttleEvery": 7, "failEvery": 11, "dropEvery": 13, "dropAnswerEvery": 17, "retryAfterSecs": 1}),
    )
    .await;
    let before = tenant.state().await;
    let round = Round {
        first: users,
        new: later,
        edits: later / 4,
        deletes: later / 10,
        unjoin: 5,
    };
    run_round(&api, &groups, &round).await;
    api.wait_until_written(Duration::from_secs(180 + later as u64))
        .await;
    let after = tenant.state().await;
    for counter in [
        "throttled429",
        "unavailable503",
        "dropped",
        "answersDropped",
    ] {
        let n = after[counter].as_u64().unwrap_or(0) - before[counter].as_u64().unwrap_or(0);
        assert!(n > 0, "the sandbox injected no {counter}: {after}");
    }
    // (The sandbox's `earlyRetries` counts any request to the same method and path inside
    // another's Retry-After, e.g. a second user's `POST /users` sent meanwhile; that one write
    // is not sent again before its own Retry-After is the store's test of `next_attempt_at`.)
    // The faults off again, so that the test's own reads of the tenant get answers.
    patch_knobs(
        &tenant,
        json!({"throttleEvery": 0, "failEvery": 0, "dropEvery": 0, "dropAnswerEvery": 0}),
    )
    .await;
    expected += round.new - round.deletes;
    assert_same(&tenant, &seeded, expected, "through 429s, 503s and drops").await;
    eprintln!("round 2 in {:.1?}", started.elapsed());

    // Round 3: the server is killed while the writes go out, then started again.
    patch_knobs(&tenant, json!({"latencyMs": 20})).await;
    let done_before = api.done_writes().await;
    let round = Round {
        first: users + later,
        new: later,
        edits: later / 4,
        deletes: later / 10,
        unjoin: 5,
    };
    run_round(&api, &groups, &round).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while api.done_writes().await < done_before + later / 4 {
        assert!(Instant::now() < deadline, "the writes did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut server = server;
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    let open_at_kill = {
        let store = behalf_store::Store::connect(&behalf_store::sqlite_url_for(tenant.data.path()))
            .await
            .unwrap();
        let workspace = store.ensure_workspace("default").await.unwrap();
        let n = store
            .list_writes(
                workspace.id,
                &[
                    behalf_domain::WriteState::Pending,
                    behalf_domain::WriteState::Sending,
                ],
                100_000,
            )
            .await
            .unwrap()
            .len();
        store.close().await;
        n
    };
    assert!(open_at_kill > 0, "the kill came after every write was done");
    drop(server);
    patch_knobs(&tenant, json!({"latencyMs": 0})).await;
    // The CLI takes the dead server's writes back and finishes them; the server, started
    // again, finds nothing left.
    let out = tenant.run(&["outbound", "run"]).await;
    assert!(
        out.status.success(),
        "behalf outbound run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("0 failed"), "{said}");
    let server = serve(&tenant).await;
    api.base = server.base_url.clone();
    api.wait_until_written(Duration::from_secs(120 + later as u64))
        .await;
    expected += round.new - round.deletes;
    assert_same(&tenant, &seeded, expected, "after a SIGKILL and a restart").await;
    // The audit log says who asked for each change and what came of it.
    let audit = api
        .ok(
            reqwest::Method::GET,
            "/api/v1/audit?action_prefix=outbound.",
            None,
        )
        .await
        .to_string();
    for said in [
        "outbound.requested",
        "outbound.written",
        "outbound.failed",
        "outbound.discarded",
        "admin:owner@example.com",
        "shown.once@contoso.example",
    ] {
        assert!(audit.contains(said), "the audit log lacks {said}");
    }
    let state = tenant.state().await;
    eprintln!(
        "{open_at_kill} writes open at the kill; {} users soft-deleted in the tenant; end to end in {:.1?}",
        state["deletedUsers"],
        started.elapsed()
    );
    drop(server);
}
