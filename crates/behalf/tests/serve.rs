//! `behalf serve`'s background workers, end to end: the real binary keeps a sandbox tenant's
//! passkeys in step with its directory (new hires get one, leavers lose theirs), and several
//! instances on one PostgreSQL database share the work without registering anyone twice.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use behalf_sandbox::Knobs;
use common::tenant::{Tenant, methods_per_user};
use common::{Server, start_server};
use reqwest::Method;
use serde_json::{Value, json};

/// Sync every second, and provision as well as deprovision.
fn with_sync(mut command: Command) -> Command {
    command
        .env("BEHALF_SYNC__INTERVAL_SECS", "1")
        .env("BEHALF_SYNC__PROVISION", "true")
        .env("BEHALF_SYNC__DEPROVISION", "true");
    command
}

/// Each enabled user of the tenant has exactly one method and nobody else has any.
fn exactly_one_each(state: &Value, enabled: &[String]) -> bool {
    let methods = methods_per_user(state);
    methods.len() == enabled.len() && enabled.iter().all(|upn| methods.get(upn) == Some(&1))
}

async fn enabled_users(tenant: &Tenant) -> Vec<String> {
    tenant
        .users()
        .await
        .into_iter()
        .filter(|(_, enabled)| *enabled)
        .map(|(upn, _)| upn)
        .collect()
}

/// SIGTERM, then the exit status once the server has drained.
fn terminate(mut server: Server) -> std::process::ExitStatus {
    let pid = server.child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "behalf serve did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_gives_new_hires_a_passkey_and_revokes_leavers() {
    let tenant = Tenant::start(40, Knobs::default()).await;
    let server = start_server(with_sync(tenant.behalf_std(&[]))).await;

    // The first sync round imports the directory and queues everyone enabled.
    let enabled = enabled_users(&tenant).await;
    let state = tenant
        .wait_for_state(
            "one passkey per enabled user",
            Duration::from_secs(120),
            |s| exactly_one_each(s, &enabled),
        )
        .await;
    assert_eq!(state["earlyRetries"], 0, "{state}");
    assert_eq!(state["registrationsRejected"], 0, "{state}");

    // A new hire appears in the directory and someone leaves (their account is disabled).
    let domain = enabled[0].split('@').nth(1).unwrap().to_owned();
    let hire = format!("new.hire@{domain}");
    tenant
        .graph(
            Method::POST,
            "/users",
            Some(json!({
                "accountEnabled": true,
                "displayName": "New Hire",
                "mailNickname": "new.hire",
                "userPrincipalName": hire,
                "passwordProfile": {"password": "Start-1234-Now", "forceChangePasswordNextSignIn": true},
            })),
        )
        .await;
    let leaver = enabled[1].clone();
    tenant
        .graph(
            Method::PATCH,
            &format!("/users/{leaver}"),
            Some(json!({"accountEnabled": false})),
        )
        .await;

    let mut expected: Vec<String> = enabled.iter().filter(|u| **u != leaver).cloned().collect();
    expected.push(hire.clone());
    tenant
        .wait_for_state(
            "the new hire provisioned and the leaver revoked",
            Duration::from_secs(120),
            |s| exactly_one_each(s, &expected),
        )
        .await;
    // The passkeys the server registered work: every provisioned user signs in.
    assert_eq!(
        tenant.sign_in_all(&expected).await,
        expected.len(),
        "every provisioned user signs in"
    );

    // SIGTERM stops it cleanly.
    let status = terminate(server);
    assert!(status.success(), "{status:?}");

    // The report shows both sides of the leaver's life.
    let report = tenant
        .run(&["report", "--user", &leaver, "--format", "json"])
        .await;
    assert!(report.status.success());
    let report = String::from_utf8_lossy(&report.stdout);
    assert!(report.contains("passkey.registered"), "{report}");
    assert!(report.contains("passkey.revoked"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_sharing_postgresql_register_each_user_exactly_once() {
    let Some(pg) = behalf_store::testing::postgres().await else {
        return;
    };
    // Latency and little concurrency, so the job takes several seconds: longer than the
    // instances' 2 s poll, so both are busy with it at the same time.
    let tenant = Tenant::start(
        300,
        Knobs {
            latency_ms: 30,
            ..Knobs::default()
        },
    )
    .await;
    let instance = || {
        let mut command = with_sync(tenant.behalf_std(&[]));
        command
            .env("BEHALF_DATABASE_URL", pg.url())
            .env("BEHALF_PROVISIONING__CONCURRENCY", "4");
        command
    };
    // One after the other: the first writes the master key both share.
    let first = start_server(instance()).await;
    let second = start_server(instance()).await;

    let enabled = enabled_users(&tenant).await;
    let state = tenant
        .wait_for_state(
            "one passkey per enabled user",
            Duration::from_secs(180),
            |s| exactly_one_each(s, &enabled),
        )
        .await;
    assert_eq!(state["earlyRetries"], 0, "{state}");
    assert_eq!(state["registrationsRejected"], 0, "{state}");
    assert_eq!(
        state["registrations"].as_u64(),
        Some(enabled.len() as u64),
        "no registration was made twice: {state}"
    );

    // Both instances did part of the work: each registration names its worker in the event log.
    let store = behalf_store::Store::connect(&pg.url()).await.unwrap();
    let workers: Vec<String> =
        sqlx::query_scalar("SELECT detail FROM events WHERE action = 'passkey.registered'")
            .fetch_all(store.pool())
            .await
            .unwrap();
    let mut per_worker = BTreeMap::<String, usize>::new();
    for detail in &workers {
        let detail: Value = serde_json::from_str(detail).unwrap();
        *per_worker
            .entry(detail["worker"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    assert_eq!(
        per_worker.values().sum::<usize>(),
        enabled.len(),
        "{per_worker:?}"
    );
    assert_eq!(per_worker.len(), 2, "both instances worked: {per_worker:?}");
    assert_eq!(
        tenant.sign_in_all_from(&pg.url(), &enabled).await,
        enabled.len()
    );
    assert!(terminate(first).success());
    assert!(terminate(second).success());
}
