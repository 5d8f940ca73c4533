//! Issue #6 end to end: the real `behalf` binary provisions users of an in-process sandbox tenant
//! over HTTP; the sandbox verifies every registration independently and proves sign-ins work.

mod common;

use std::collections::HashSet;
use std::process::Stdio;

use behalf_sandbox::Knobs;
use common::tenant::{Tenant, methods_per_user};
use serde_json::Value;

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn count(store: &behalf_store::Store, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

/// 3,000 users by default so CI stays well inside its time; issue #6 asks for 10,000, which is
/// `BEHALF_E2E_USERS=10000 cargo nextest run -p behalf --test provision`.
fn bulk_size() -> usize {
    std::env::var("BEHALF_E2E_USERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_provisioning_registers_exactly_one_passkey_per_user_through_throttling_and_faults() {
    let knobs = Knobs {
        // A few percent of requests fail: mostly dropped connections (2.7 %), plus 429s and 503s
        // with Retry-After. Each 429/503 pauses the whole client for Retry-After (as Graph asks),
        // so those are kept rare enough for the test to take minutes, not hours.
        throttle_every: 1009,
        retry_after_secs: 1,
        fail_every: 997,
        drop_every: 37,
        // Graph's write budget would make 10,000 users take 8 minutes; the budget has its own benchmark.
        graph_throttling: false,
        ..Knobs::default()
    };
    let tenant = Tenant::start(bulk_size(), knobs).await;
    let users = tenant.users().await;
    let all: Vec<String> = users.iter().map(|(u, _)| u.clone()).collect();
    let enabled: HashSet<String> = users
        .iter()
        .filter(|(_, e)| *e)
        .map(|(u, _)| u.clone())
        .collect();
    let csv = tenant.write_csv("everyone.csv", &all);

    let output = tenant
        .run(&["provision", "--csv", &csv, "--concurrency", "32", "--json"])
        .await;
    let summary: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("JSON summary: {}", stderr(&output)));
    assert_eq!(output.status.code(), Some(0), "no user failed: {summary}");
    assert_eq!(
        summary["registered"].as_u64().unwrap() as usize,
        enabled.len()
    );
    assert_eq!(
        summary["skipped"].as_u64().unwrap() as usize,
        users.len() - enabled.len(),
        "disabled users are skipped"
    );

    let state = tenant.state().await;
    assert!(
        state["throttled429"].as_u64().unwrap() > 0
            && state["unavailable503"].as_u64().unwrap() > 0,
        "faults happened: {state}"
    );
    assert!(
        state["dropped"].as_u64().unwrap() > 0,
        "connections were dropped: {state}"
    );
    assert_eq!(
        state["earlyRetries"], 0,
        "nobody retried before Retry-After elapsed"
    );
    let methods = methods_per_user(&state);
    assert_eq!(
        methods.keys().cloned().collect::<HashSet<_>>(),
        enabled,
        "every enabled user and no one else"
    );
    assert!(methods.values().all(|&n| n == 1), "exactly one method each");

    let mut sample: Vec<String> = enabled.iter().cloned().collect();
    sample.sort();
    assert_eq!(
        tenant.sign_in_all(&sample).await,
        enabled.len(),
        "every provisioned passkey signs in"
    );

    // Running it again registers nothing more.
    let again = tenant.run(&["provision", "--csv", &csv, "--json"]).await;
    let summary: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(summary["registered"], 0, "{}", stderr(&again));
    assert_eq!(
        tenant.state().await["fido2Methods"].as_u64().unwrap() as usize,
        enabled.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_at_random_points_resumes_without_double_registration_or_orphan_keys() {
    // Latency keeps the run long enough to be killed mid-flight.
    let knobs = Knobs {
        latency_ms: 4,
        graph_throttling: false,
        ..Knobs::default()
    };
    let tenant = Tenant::start(2_000, knobs).await;
    let users = tenant.users().await;
    let enabled: HashSet<String> = users
        .iter()
        .filter(|(_, e)| *e)
        .map(|(u, _)| u.clone())
        .collect();
    let csv = tenant.write_csv(
        "everyone.csv",
        &users.iter().map(|(u, _)| u.clone()).collect::<Vec<_>>(),
    );
    // A dry run looks every user up and records them; it registers nothing.
    let dry = tenant.run(&["provision", "--csv", &csv, "--dry-run"]).await;
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert_eq!(tenant.state().await["fido2Methods"], 0);

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let mut kills = 0;
    for round in 0..4u32 {
        let delay = 400 + u64::from(seed.wrapping_mul(round + 7) % 1_800);
        let mut child = tenant
            .behalf(&["provision", "--automatic", "--concurrency", "16"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(delay), child.wait()).await;
        if waited.is_err() {
            child.start_kill().unwrap(); // SIGKILL: no clean-up runs
            child.wait().await.unwrap();
            kills += 1;
        }
    }
    assert!(kills >= 2, "the runs were interrupted ({kills} kills)");
    let before = methods_per_user(&tenant.state().await).len();
    assert!(before < enabled.len(), "work remained after the kills");

    let last = tenant.run(&["provision", "--automatic", "--json"]).await;
    assert!(last.status.success(), "{}", stderr(&last));
    let state = tenant.state().await;
    let methods = methods_per_user(&state);
    assert_eq!(methods.keys().cloned().collect::<HashSet<_>>(), enabled);
    assert!(
        methods.values().all(|&n| n == 1),
        "no user was registered twice: {methods:?}"
    );

    // No key at home without a registered method (no item failed here, so none is excused).
    let store = behalf_store::Store::connect(&behalf_store::sqlite_url_for(tenant.data.path()))
        .await
        .unwrap();
    let registered = count(
        &store,
        "SELECT COUNT(*) FROM passkeys WHERE state = 'registered'",
    )
    .await;
    let keys = count(&store, "SELECT COUNT(*) FROM vault_credentials").await;
    assert_eq!(registered as usize, enabled.len());
    assert_eq!(
        keys, registered,
        "every sealed key belongs to a registered passkey"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_with_bad_rows_reports_each_row_and_the_rest_goes_on() {
    let tenant = Tenant::start(40, Knobs::default()).await;
    let users = tenant.users().await;
    let enabled: Vec<&String> = users
        .iter()
        .skip(1)
        .filter(|(_, e)| *e)
        .map(|(u, _)| u)
        .collect();
    let disabled = &users
        .iter()
        .find(|(_, e)| !*e)
        .expect("the sandbox seeds some disabled users")
        .0;
    let rows = vec![
        enabled[0].clone(),                 // line 2: provisioned
        "not-an-upn".to_owned(),            // line 3: malformed
        "ghost@contoso.example".to_owned(), // line 4: unknown
        enabled[0].to_uppercase(),          // line 5: duplicate of line 2
        disabled.clone(),                   // line 6: disabled
        enabled[1].clone(),                 // line 7: provisioned
    ];
    let csv = tenant.write_csv("batch.csv", &rows);
    let output = tenant
        .run(&["provision", "--csv", &csv, "--failures", "failures.csv"])
        .await;
    assert_eq!(
        output.status.code(),
        Some(3),
        "exit code 3 says some failed: {}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("details in failures.csv"),
        "the summary points at the file: {}",
        stderr(&output)
    );

    let mut reader = csv::Reader::from_path(tenant.data.path().join("failures.csv")).unwrap();
    let rows: Vec<(String, String, String, String)> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (
                r[0].to_owned(),
                r[1].to_owned(),
                r[2].to_owned(),
                r[3].to_owned(),
            )
        })
        .collect();
    let lines: Vec<(&str, &str)> = rows.iter().map(|r| (r.0.as_str(), r.2.as_str())).collect();
    assert_eq!(
        lines,
        [
            ("3", "invalid"),
            ("4", "failed"),
            ("5", "invalid"),
            ("6", "skipped")
        ],
        "{rows:?}"
    );
    assert!(rows[0].3.contains("'@'"), "{rows:?}");
    assert!(rows[1].3.contains("unknown user"), "{rows:?}");
    assert_eq!(rows[2].3, "duplicate of line 2");
    assert_eq!(rows[3].3, "user is disabled");

    let state = tenant.state().await;
    assert_eq!(
        state["fido2Methods"], 2,
        "the two good rows were provisioned"
    );

    let report = tenant.run(&["report", "--format", "json"]).await;
    let events: Vec<Value> = serde_json::from_slice(&report.stdout).unwrap();
    let outcome_of = |upn: &str| {
        events
            .iter()
            .filter(|e| e["detail"]["upn"] == upn)
            .map(|e| e["action"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(outcome_of(enabled[0]), ["passkey.registered"]);
    assert_eq!(outcome_of(enabled[1]), ["passkey.registered"]);
    assert_eq!(outcome_of(disabled), ["provision.skipped"]);
    let csv_report = tenant
        .run(&["report", "--format", "csv", "--user", enabled[0]])
        .await;
    let text = String::from_utf8(csv_report.stdout).unwrap();
    assert_eq!(text.lines().count(), 2, "header and one event: {text}");

    // A run with no one to list rewrites the file empty and does not point at it.
    let clean = tenant
        .run(&[
            "provision",
            "--user",
            enabled[2],
            "--failures",
            "failures.csv",
        ])
        .await;
    assert_eq!(clean.status.code(), Some(0), "{}", stderr(&clean));
    assert!(
        !stderr(&clean).contains("details in"),
        "nothing to look at: {}",
        stderr(&clean)
    );
    let mut reader = csv::Reader::from_path(tenant.data.path().join("failures.csv")).unwrap();
    assert_eq!(reader.records().count(), 0, "rewritten, with no one in it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deprovisioning_removes_the_method_at_the_rp_and_the_key_at_home() {
    let tenant = Tenant::start(20, Knobs::default()).await;
    let users = tenant.users().await;
    let upn = users.iter().skip(1).find(|(_, e)| *e).unwrap().0.clone();
    let provisioned = tenant.run(&["provision", "--user", &upn]).await;
    assert!(provisioned.status.success(), "{}", stderr(&provisioned));
    assert_eq!(methods_per_user(&tenant.state().await).get(&upn), Some(&1));

    let out = tenant.run(&["deprovision", "--user", &upn]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        methods_per_user(&tenant.state().await).get(&upn),
        None,
        "gone at the RP"
    );
    let store = behalf_store::Store::connect(&behalf_store::sqlite_url_for(tenant.data.path()))
        .await
        .unwrap();
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM vault_credentials").await,
        0,
        "the key is destroyed"
    );
    // And the next automatic run leaves the deprovisioned user alone.
    let auto = tenant.run(&["provision", "--automatic", "--json"]).await;
    let summary: Value = serde_json::from_slice(&auto.stdout).unwrap();
    assert_eq!(summary["registered"], 0, "{}", stderr(&auto));
}
