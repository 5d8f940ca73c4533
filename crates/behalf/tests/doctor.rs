//! `behalf doctor` end to end: each misconfiguration the sandbox's policy knobs can produce is
//! named, and the exit code says whether provisioning would be stopped.

mod common;

use std::process::Output;

use behalf_sandbox::{READER_CLIENT_ID, READER_CLIENT_SECRET, Sandbox, SandboxConfig};
use common::{behalf, run};
use serde_json::{Value, json};

const AAGUID: &str = "0bb1f6ef-0a3c-4b1e-9c5a-3f3c2b8e8d01";

async fn doctor(s: &Sandbox, client: (&str, &str), json: bool) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = behalf();
    c.env("BEHALF_DATA_DIR", dir.path().join("data"))
        .env("BEHALF_SESSION_DIR", dir.path().join("session"))
        .env("BEHALF_ENTRA__TENANT_ID", s.tenant_id().to_string())
        .env("BEHALF_ENTRA__CLIENT_ID", client.0)
        .env("BEHALF_ENTRA__CLIENT_SECRET", client.1)
        .env("BEHALF_ENTRA__GRAPH_BASE_URL", s.graph_url())
        .env("BEHALF_ENTRA__LOGIN_BASE_URL", s.login_url())
        .args(["doctor", "--aaguid", AAGUID]);
    if json {
        c.arg("--json");
    }
    tokio::task::spawn_blocking(move || run(&mut c))
        .await
        .expect("join")
}

async fn set_policy(s: &Sandbox, patch: Value) {
    let r = reqwest::Client::new()
        .patch(format!("{}/sandbox/policy", s.base_url()))
        .json(&patch)
        .send()
        .await
        .expect("policy");
    assert!(r.status().is_success());
}

fn problems(o: &Output) -> Vec<(String, String)> {
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["status"] == "problem")
        .map(|f| {
            (
                f["check"].as_str().unwrap_or("").to_string(),
                f["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_each_misconfiguration() {
    let s = Sandbox::start(SandboxConfig {
        users: 5,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox");
    let app = (s.client_id().to_string(), s.client_secret().to_string());
    let app = (app.0.as_str(), app.1.as_str());

    // A healthy tenant: exit 0, plain words.
    let o = doctor(&s, app, false).await;
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("Nothing found that would stop provisioning"),
        "{out}"
    );

    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"state": "disabled"}), "FIDO2 policy", "disabled"),
        (
            json!({"isSelfServiceRegistrationAllowed": false}),
            "self-service setup",
            "self-service set up",
        ),
        (
            json!({"isAttestationEnforced": true}),
            "attestation",
            "not in Microsoft's FIDO metadata",
        ),
        (
            json!({"keyRestrictions": {"isEnforced": true, "enforcementType": "allow", "aaGuids": ["cb69481e-8ff7-4039-93ec-0a2729a154a8"]}}),
            "key restrictions",
            "not in the policy's list of allowed AAGUIDs",
        ),
        (
            json!({"keyRestrictions": {"isEnforced": true, "enforcementType": "block", "aaGuids": [AAGUID]}}),
            "key restrictions",
            "is in the policy's list of blocked AAGUIDs",
        ),
    ];
    let healthy = json!({"state": "enabled", "isSelfServiceRegistrationAllowed": true, "isAttestationEnforced": false,
        "keyRestrictions": {"isEnforced": false, "enforcementType": "block", "aaGuids": []}});
    for (patch, check, words) in cases {
        set_policy(&s, healthy.clone()).await;
        set_policy(&s, patch.clone()).await;
        let o = doctor(&s, app, true).await;
        assert_eq!(o.status.code(), Some(1), "{patch}");
        let p = problems(&o);
        assert_eq!(p.len(), 1, "{patch}: {p:?}");
        assert_eq!(p[0].0, check, "{patch}");
        assert!(p[0].1.contains(words), "{patch}: {}", p[0].1);
    }
    set_policy(&s, healthy).await;

    // An app without UserAuthenticationMethod.ReadWrite.All (and without Policy.Read.All).
    let reader = READER_CLIENT_ID.to_string();
    let o = doctor(&s, (&reader, READER_CLIENT_SECRET), true).await;
    assert_eq!(o.status.code(), Some(1));
    let p = problems(&o);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, "permissions");
    assert!(p[0].1.contains("UserAuthenticationMethod.ReadWrite.All"));
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(v["findings"].as_array().expect("findings").iter().any(|f| {
        f["status"] == "warning"
            && f["message"]
                .as_str()
                .unwrap_or("")
                .contains("Policy.Read.All")
    }));
    s.shutdown().await;
}

/// The Temporary Access Pass policy: doctor says whom it targets, its limits, and names an
/// excluded group holding users that would be provisioned, with how many.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_a_tap_policy_that_excludes_users_to_provision() {
    let s = Sandbox::start(SandboxConfig {
        users: 40,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");
    let cmd = |args: &[&str]| {
        let mut c = behalf();
        c.env("BEHALF_DATA_DIR", dir.path().join("data"))
            .env("BEHALF_SESSION_DIR", dir.path().join("session"))
            .env("BEHALF_ENTRA__TENANT_ID", s.tenant_id().to_string())
            .env("BEHALF_ENTRA__CLIENT_ID", s.client_id().to_string())
            .env("BEHALF_ENTRA__CLIENT_SECRET", s.client_secret())
            .env("BEHALF_ENTRA__GRAPH_BASE_URL", s.graph_url())
            .env("BEHALF_ENTRA__LOGIN_BASE_URL", s.login_url())
            .args(args);
        c
    };
    let mut import = cmd(&["import"]);
    let o = tokio::task::spawn_blocking(move || run(&mut import))
        .await
        .expect("join");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // A group and how many of its members a provisioning run would take (enabled users).
    let token = s.app_token().expect("token");
    let http = reqwest::Client::new();
    let graph_url = s.graph_url();
    let get = |path: String| {
        let req = http
            .get(format!("{graph_url}/v1.0/{path}"))
            .bearer_auth(token.clone());
        async move {
            let r = req.send().await.expect("graph");
            r.json::<Value>().await.expect("json")
        }
    };
    let groups = get("groups?$select=id,displayName".into()).await;
    let (gid, name, enabled) = {
        let mut best = None;
        for g in groups["value"].as_array().expect("groups") {
            let id = g["id"].as_str().expect("id").to_string();
            let m = get(format!(
                "groups/{id}/members?$select=id,accountEnabled&$top=999"
            ))
            .await;
            let n = m["value"]
                .as_array()
                .expect("members")
                .iter()
                .filter(|u| u["accountEnabled"] == true)
                .count();
            if n > 0 {
                best = Some((id, g["displayName"].as_str().unwrap_or("").to_string(), n));
                break;
            }
        }
        best.expect("a group with enabled members")
    };
    let r = http
        .patch(format!("{}/sandbox/tap-policy", s.base_url()))
        .json(
            &json!({"excludeTargets": [{"targetType": "group", "id": gid}],
                      "minimumLifetimeInMinutes": 120, "maximumLifetimeInMinutes": 240,
                      "defaultLifetimeInMinutes": 120}),
        )
        .send()
        .await
        .expect("tap policy");
    assert!(r.status().is_success());

    let mut doctor = cmd(&["doctor", "--aaguid", AAGUID, "--json"]);
    let o = tokio::task::spawn_blocking(move || run(&mut doctor))
        .await
        .expect("join");
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    let findings = v["findings"].as_array().expect("findings").clone();
    let said = |check: &str, status: &str| -> Vec<String> {
        findings
            .iter()
            .filter(|f| f["check"] == check && f["status"] == status)
            .filter_map(|f| f["message"].as_str().map(String::from))
            .collect()
    };
    // Registering on behalf needs no pass: the exclusion is a warning, provisioning goes on.
    assert_eq!(o.status.code(), Some(0), "{findings:?}");
    assert!(
        said("TAP policy", "ok")
            .iter()
            .any(|m| m.contains("enabled for all users")),
        "{findings:?}"
    );
    let excluded = said("TAP policy", "warning");
    assert_eq!(excluded.len(), 1, "{findings:?}");
    assert!(
        excluded[0].contains(&format!(
            "excludes group {name} ({gid}), which holds {enabled} of the users to provision"
        )),
        "{}",
        excluded[0]
    );
    let lifetime = said("TAP lifetime", "warning");
    assert!(
        lifetime
            .first()
            .is_some_and(|m| m.contains("120 to 240 minutes") && m.contains("ask for 60")),
        "{findings:?}"
    );
    assert_eq!(v["tap_policy"]["excludeTargets"][0]["id"], gid.as_str());

    // Disabled: said so, still a warning.
    let r = http
        .patch(format!("{}/sandbox/tap-policy", s.base_url()))
        .json(&json!({"state": "disabled"}))
        .send()
        .await
        .expect("tap policy");
    assert!(r.status().is_success());
    let mut doctor = cmd(&["doctor", "--aaguid", AAGUID, "--json"]);
    let o = tokio::task::spawn_blocking(move || run(&mut doctor))
        .await
        .expect("join");
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(
        v["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| f["check"] == "TAP policy"
                && f["status"] == "warning"
                && f["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("method is disabled")),
        "{v}"
    );
    s.shutdown().await;
}
