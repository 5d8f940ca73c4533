//! `/users/delta` and `/groups/delta`, alone and under concurrent writes; the state file.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

/// One full delta round: (entries, deltaLink).
async fn round(env: &Env, first: &str) -> (Vec<Value>, String) {
    round_with(env, first, "odata.maxpagesize=100").await
}

/// One full delta round with this `Prefer` header, page by page: (pages, deltaLink).
async fn pages_with(env: &Env, first: &str, prefer: &str) -> (Vec<Vec<Value>>, String) {
    let mut out = Vec::new();
    let mut url = first.to_string();
    loop {
        let r = env
            .http
            .get(if url.starts_with("http") {
                url.clone()
            } else {
                env.url(&url)
            })
            .bearer_auth(&env.token)
            .header("Prefer", prefer)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status(), 200, "{url}");
        let v = json_of(r).await;
        out.push(v["value"].as_array().cloned().unwrap_or_default());
        match (
            v["@odata.nextLink"].as_str(),
            v["@odata.deltaLink"].as_str(),
        ) {
            (Some(n), None) => url = n.to_string(),
            (None, Some(d)) => return (out, d.to_string()),
            _ => panic!("a page has a nextLink or a deltaLink: {v}"),
        }
    }
}

async fn round_with(env: &Env, first: &str, prefer: &str) -> (Vec<Value>, String) {
    let (pages, link) = pages_with(env, first, prefer).await;
    (pages.into_iter().flatten().collect(), link)
}

fn ids(v: &[Value]) -> Vec<String> {
    v.iter()
        .map(|u| u["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn body(i: usize) -> Value {
    json!({"accountEnabled": true, "displayName": format!("Delta {i}"), "mailNickname": format!("d{i}"),
        "userPrincipalName": format!("delta.{i}@contoso.example"), "passwordProfile": {"password": "Xy!12345678"}})
}

#[tokio::test]
async fn users_delta_rounds_report_changes_and_removals() {
    let env = start(450).await;
    let (first, link) = round(&env, "/v1.0/users/delta?$select=displayName,accountEnabled").await;
    assert_eq!(first.len(), 450);
    assert_eq!(ids(&first).into_iter().collect::<HashSet<_>>().len(), 450);
    assert!(
        first[0].get("userPrincipalName").is_none(),
        "$select applies to delta: {}",
        first[0]
    );

    let all = ids(&first);
    let (changed, soft, purged) = (&all[5], &all[6], &all[7]);
    assert_eq!(
        env.send(
            Method::PATCH,
            &format!("/v1.0/users/{changed}"),
            Some(json!({"displayName": "Renamed"}))
        )
        .await
        .status(),
        204
    );
    assert_eq!(
        env.send(Method::DELETE, &format!("/v1.0/users/{soft}"), None)
            .await
            .status(),
        204
    );
    assert_eq!(
        env.send(Method::DELETE, &format!("/v1.0/users/{purged}"), None)
            .await
            .status(),
        204
    );
    assert_eq!(
        env.send(
            Method::DELETE,
            &format!("/v1.0/directory/deletedItems/{purged}"),
            None
        )
        .await
        .status(),
        204
    );
    let created = json_of(env.send(Method::POST, "/v1.0/users", Some(body(1))).await).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    let (second, link2) = round(&env, &link).await;
    let by_id: HashMap<String, Value> = second
        .iter()
        .map(|v| (v["id"].as_str().unwrap_or_default().to_string(), v.clone()))
        .collect();
    assert_eq!(by_id.len(), 4, "{second:?}");
    assert_eq!(by_id[changed.as_str()]["displayName"], "Renamed");
    assert!(by_id[changed.as_str()].get("userPrincipalName").is_none());
    assert_eq!(by_id[soft.as_str()]["@removed"]["reason"], "changed");
    assert_eq!(by_id[purged.as_str()]["@removed"]["reason"], "deleted");
    assert_eq!(by_id[created.as_str()]["displayName"], "Delta 1");
    let (third, _) = round(&env, &link2).await;
    assert!(third.is_empty(), "nothing changed since: {third:?}");

    // $deltatoken=latest skips the initial enumeration.
    let (none, latest) = round(&env, "/v1.0/users/delta?$deltatoken=latest").await;
    assert!(none.is_empty());
    env.send(
        Method::PATCH,
        &format!("/v1.0/users/{created}"),
        Some(json!({"jobTitle": "x"})),
    )
    .await;
    let (one, _) = round(&env, &latest).await;
    assert_eq!(ids(&one), vec![created]);
    assert_graph_error(
        env.get("/v1.0/users/delta?$deltatoken=garbage").await,
        400,
        "Request_BadRequest",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_converges_under_concurrent_writes() {
    let env = Arc::new(start(1_500).await);
    let all = ids(
        &json_of(env.get("/v1.0/users?$top=999&$select=id").await).await["value"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    );
    let writer = {
        let env = env.clone();
        let victims: Vec<String> = all.iter().skip(3).step_by(7).take(120).cloned().collect();
        tokio::spawn(async move {
            for (i, id) in victims.iter().enumerate() {
                if i % 2 == 0 {
                    env.send(Method::DELETE, &format!("/v1.0/users/{id}"), None)
                        .await;
                } else {
                    env.send(
                        Method::PATCH,
                        &format!("/v1.0/users/{id}"),
                        Some(json!({"displayName": format!("Changed {i}")})),
                    )
                    .await;
                }
                env.send(Method::POST, "/v1.0/users", Some(body(1000 + i)))
                    .await;
            }
        })
    };
    // Replay delta rounds into a local mirror while the writer runs, then one more round after.
    let mut mirror: HashMap<String, String> = HashMap::new();
    let mut apply = |entries: Vec<Value>| {
        for e in entries {
            let id = e["id"].as_str().unwrap_or_default().to_string();
            if e.get("@removed").is_some() {
                mirror.remove(&id);
            } else {
                mirror.insert(
                    id,
                    e["displayName"].as_str().unwrap_or_default().to_string(),
                );
            }
        }
    };
    let (entries, mut link) = round(&env, "/v1.0/users/delta?$select=displayName").await;
    apply(entries);
    writer.await.unwrap_or_else(|e| panic!("{e}"));
    let (entries, l) = round(&env, &link).await;
    apply(entries);
    link = l;
    let (entries, _) = round(&env, &link).await;
    assert!(entries.is_empty());
    // The mirror equals the directory as /users lists it now.
    let mut truth: HashMap<String, String> = HashMap::new();
    let mut next = Some("/v1.0/users?$top=999&$select=id,displayName".to_string());
    while let Some(u) = next {
        let v = json_of(env.get(&u).await).await;
        for e in v["value"].as_array().cloned().unwrap_or_default() {
            truth.insert(
                e["id"].as_str().unwrap_or_default().to_string(),
                e["displayName"].as_str().unwrap_or_default().to_string(),
            );
        }
        next = v["@odata.nextLink"].as_str().map(String::from);
    }
    assert_eq!(mirror.len(), truth.len());
    assert!(mirror == truth, "delta mirror diverged from the directory");
}

#[tokio::test]
async fn groups_delta_reports_member_changes() {
    let env = start(60).await;
    let (groups, link) = round(&env, "/v1.0/groups/delta?$select=displayName,members").await;
    assert!(groups.len() >= 10);
    let g = groups
        .iter()
        .find(|g| g["members@delta"].as_array().is_some_and(|m| !m.is_empty()))
        .cloned()
        .unwrap_or_else(|| panic!("a group with members"));
    let gid = g["id"].as_str().unwrap_or_default().to_string();
    let removed = g["members@delta"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let members: HashSet<String> = g["members@delta"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|m| m["id"].as_str().unwrap_or_default().to_string())
        .collect();
    let all = ids(
        &json_of(env.get("/v1.0/users?$top=999&$select=id").await).await["value"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    );
    let added = all
        .iter()
        .find(|u| !members.contains(*u))
        .cloned()
        .unwrap_or_default();

    let r = env.send(Method::POST, &format!("/v1.0/groups/{gid}/members/$ref"), Some(json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{added}")}))).await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        env.send(
            Method::DELETE,
            &format!("/v1.0/groups/{gid}/members/{removed}/$ref"),
            None
        )
        .await
        .status(),
        204
    );
    let (changes, link2) = round(&env, &link).await;
    assert_eq!(changes.len(), 1);
    let md = changes[0]["members@delta"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        md.iter()
            .any(|m| m["id"] == json!(added) && m.get("@removed").is_none()),
        "{md:?}"
    );
    assert!(
        md.iter()
            .any(|m| m["id"] == json!(removed) && m["@removed"]["reason"] == "deleted"),
        "{md:?}"
    );

    assert_eq!(
        env.send(Method::DELETE, &format!("/v1.0/groups/{gid}"), None)
            .await
            .status(),
        204
    );
    let (changes, _) = round(&env, &link2).await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["@removed"]["reason"], "deleted");
}

#[tokio::test]
async fn state_file_survives_restart() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("tenant.json");
    let cfg = behalf_sandbox::SandboxConfig {
        users: 20,
        state_file: Some(file.clone()),
        ..Default::default()
    };
    let env = start_with(cfg.clone()).await;
    let created = json_of(env.send(Method::POST, "/v1.0/users", Some(body(7))).await).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (_, link) = round(&env, "/v1.0/users/delta?$deltatoken=latest").await;
    env.send(
        Method::PATCH,
        &format!("/v1.0/users/{created}"),
        Some(json!({"jobTitle": "Persisted"})),
    )
    .await;
    let token = env.token.clone();
    env.sb.shutdown().await;
    assert!(file.exists());

    let sb = behalf_sandbox::Sandbox::start(behalf_sandbox::SandboxConfig { users: 3, ..cfg })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // The port changed; paths (and the signing key, and delta positions) did not.
    let env = Env {
        sb,
        http: client(),
        token,
    };
    let v = json_of(
        env.get(&format!("/v1.0/users/{created}?$select=jobTitle"))
            .await,
    )
    .await;
    assert_eq!(v["jobTitle"], "Persisted");
    let st = env.state().await;
    assert_eq!(st["users"], 21);
    let link = link
        .split_once("/v1.0/")
        .map(|(_, p)| format!("/v1.0/{p}"))
        .unwrap_or_default();
    let (changes, _) = round(&env, &link).await;
    assert_eq!(ids(&changes), vec![created]);
}

/// Updated users carry the selected properties (unset ones left out, one set to null sent as
/// null); with `Prefer: return=minimal` only the changed ones; a change to a property not
/// selected leaves the user out of the round.
#[tokio::test]
async fn updated_users_carry_selected_properties_or_only_the_changed_ones() {
    let env = start(30).await;
    let sel = "/v1.0/users/delta?$select=displayName,department,jobTitle,accountEnabled";
    let (first, link) = round(&env, sel).await;
    assert_eq!(first.len(), 30);
    let created = json_of(env.send(Method::POST, "/v1.0/users", Some(body(1))).await).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let all = ids(&first);
    let (moved, untitled, relocated) = (&all[3], &all[4], &all[5]);
    for (id, patch) in [
        (moved, json!({"department": "Legal"})),
        (untitled, json!({"jobTitle": null})),
        (relocated, json!({"officeLocation": "Nowhere"})),
    ] {
        let r = env
            .send(Method::PATCH, &format!("/v1.0/users/{id}"), Some(patch))
            .await;
        assert_eq!(r.status(), 204);
    }
    let by_id = |entries: Vec<Value>| -> HashMap<String, Value> {
        entries
            .into_iter()
            .map(|v| (v["id"].as_str().unwrap_or_default().to_string(), v))
            .collect()
    };

    let full = by_id(round(&env, &link).await.0);
    assert_eq!(full.len(), 3, "officeLocation is not selected: {full:?}");
    assert!(!full.contains_key(relocated.as_str()));
    assert_eq!(full[moved.as_str()]["department"], "Legal");
    assert!(
        full[moved.as_str()]["displayName"].is_string(),
        "unchanged, still sent"
    );
    assert!(full[moved.as_str()]["jobTitle"].is_string());
    assert_eq!(full[untitled.as_str()]["jobTitle"], Value::Null);
    assert!(
        full[untitled.as_str()]
            .as_object()
            .is_some_and(|o| o.contains_key("jobTitle"))
    );
    // A new user: every set property, none that is unset.
    let new = &full[created.as_str()];
    assert_eq!(new["displayName"], "Delta 1");
    assert!(
        new.get("department").is_none() && new.get("jobTitle").is_none(),
        "{new}"
    );

    // The same deltaLink again, asking for the changed properties only.
    let minimal = by_id(
        round_with(&env, &link, "odata.maxpagesize=100, return=minimal")
            .await
            .0,
    );
    assert_eq!(minimal.len(), 3);
    assert_eq!(
        minimal[moved.as_str()],
        json!({"id": moved, "department": "Legal"})
    );
    assert_eq!(
        minimal[untitled.as_str()],
        json!({"id": untitled, "jobTitle": null})
    );
    assert_eq!(
        minimal[created.as_str()]["displayName"],
        "Delta 1",
        "new: whole"
    );

    // A PATCH that changes nothing is no change.
    env.send(
        Method::PATCH,
        &format!("/v1.0/users/{moved}"),
        Some(json!({"department": "Legal"})),
    )
    .await;
    let (_, link2) = round(&env, &link).await;
    assert!(round(&env, &link2).await.0.is_empty());
}

/// Group members merged over every page a group appears on.
fn merge(
    pages: &[Vec<Value>],
) -> (
    HashMap<String, HashMap<String, bool>>,
    HashMap<String, usize>,
) {
    let mut members: HashMap<String, HashMap<String, bool>> = HashMap::new();
    let mut appearances: HashMap<String, usize> = HashMap::new();
    for g in pages.iter().flatten() {
        let gid = g["id"].as_str().unwrap_or_default().to_string();
        *appearances.entry(gid.clone()).or_default() += 1;
        let entry = members.entry(gid).or_default();
        for m in g["members@delta"].as_array().cloned().unwrap_or_default() {
            let uid = m["id"].as_str().unwrap_or_default().to_string();
            assert!(
                entry.insert(uid, m.get("@removed").is_none()).is_none(),
                "a member once per round"
            );
        }
    }
    (members, appearances)
}

/// A group with more members than fit on a page comes back on the next pages with the next
/// members, in the first round and in later ones; deleting a user removes it from its groups
/// and restoring it brings it back.
#[tokio::test]
async fn big_groups_are_spread_over_pages_and_deleted_users_leave_their_groups() {
    let env = start_with(behalf_sandbox::SandboxConfig {
        users: 120,
        knobs: behalf_sandbox::Knobs {
            delta_members_per_page: 7,
            ..behalf_sandbox::Knobs::default()
        },
        ..behalf_sandbox::SandboxConfig::default()
    })
    .await;
    let first_url = "/v1.0/groups/delta?$select=displayName,members";
    let (pages, link) = pages_with(&env, first_url, "odata.maxpagesize=999").await;
    for p in &pages {
        let refs: usize = p
            .iter()
            .map(|g| g["members@delta"].as_array().map_or(0, Vec::len))
            .sum();
        assert!(refs <= 7, "{refs} member entries on one page");
    }
    let (members, appearances) = merge(&pages);
    assert!(appearances.values().any(|n| *n > 2), "{appearances:?}");
    for (gid, m) in &members {
        let listed: HashSet<String> = ids(&json_of(
            env.get(&format!("/v1.0/groups/{gid}/members?$top=999"))
                .await,
        )
        .await["value"]
            .as_array()
            .cloned()
            .unwrap_or_default())
        .into_iter()
        .collect();
        let merged: HashSet<String> = m.keys().cloned().collect();
        assert_eq!(merged, listed, "group {gid}");
        assert!(m.values().all(|added| *added));
        // Repeated entries repeat the group's properties.
        let names: HashSet<String> = pages
            .iter()
            .flatten()
            .filter(|g| g["id"] == json!(gid))
            .map(|g| g["displayName"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(names.len(), 1);
    }

    // The biggest group: 12 users added, 4 members taken out, one member user deleted.
    let (big, _) = members
        .iter()
        .max_by_key(|(_, m)| m.len())
        .map(|(g, m)| (g.clone(), m.clone()))
        .unwrap_or_default();
    let current: Vec<String> = members[&big].keys().cloned().collect();
    let everyone = ids(
        &json_of(env.get("/v1.0/users?$top=999&$select=id").await).await["value"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    );
    let outsiders: Vec<String> = everyone
        .iter()
        .filter(|u| !members[&big].contains_key(*u))
        .take(12)
        .cloned()
        .collect();
    for u in &outsiders {
        let r = env.send(Method::POST, &format!("/v1.0/groups/{big}/members/$ref"),
            Some(json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{u}")}))).await;
        assert_eq!(r.status(), 204);
    }
    for u in &current[..4] {
        let r = env
            .send(
                Method::DELETE,
                &format!("/v1.0/groups/{big}/members/{u}/$ref"),
                None,
            )
            .await;
        assert_eq!(r.status(), 204);
    }
    let leaver = current[4].clone();
    assert_eq!(
        env.send(Method::DELETE, &format!("/v1.0/users/{leaver}"), None)
            .await
            .status(),
        204
    );
    let (pages, link2) = pages_with(&env, &link, "odata.maxpagesize=999").await;
    let (changes, appearances) = merge(&pages);
    assert!(
        appearances[&big] >= 3,
        "17 member changes over pages of 7: {appearances:?}"
    );
    let delta = &changes[&big];
    assert_eq!(delta.len(), 17, "{delta:?}");
    assert!(outsiders.iter().all(|u| delta[u]));
    assert!(current[..4].iter().all(|u| !delta[u]));
    assert!(!delta[&leaver], "a deleted user is a member removed");

    // Restored: a member again.
    let r = env
        .send(
            Method::POST,
            &format!("/v1.0/directory/deletedItems/{leaver}/restore"),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let (pages, _) = pages_with(&env, &link2, "odata.maxpagesize=999").await;
    let (changes, _) = merge(&pages);
    assert_eq!(changes[&big].get(&leaver), Some(&true), "{changes:?}");
}
