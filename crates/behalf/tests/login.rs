//! `behalf login` (device code), the session file, commands acting as the signed-in admin, and
//! `behalf tap`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use behalf_sandbox::{CLI_CLIENT_ID, Sandbox, SandboxConfig};
use common::{behalf, run};
use serde_json::{Value, json};

fn base(s: &Sandbox, dir: &std::path::Path) -> std::process::Command {
    let mut c = behalf();
    c.env("BEHALF_DATA_DIR", dir.join("data"))
        .env("BEHALF_SESSION_DIR", dir.join("session"))
        .env("BEHALF_ENTRA__TENANT_ID", s.tenant_id().to_string())
        .env("BEHALF_ENTRA__GRAPH_BASE_URL", s.graph_url())
        .env("BEHALF_ENTRA__LOGIN_BASE_URL", s.login_url());
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_code_login_session_file_and_logout() {
    let s = Sandbox::start(SandboxConfig {
        users: 10,
        device_code_interval_secs: 1,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");

    let mut status = base(&s, dir.path());
    status.args(["login", "--status"]);
    let o = tokio::task::spawn_blocking(move || run(&mut status))
        .await
        .expect("join");
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Not signed in"));

    let mut login = base(&s, dir.path());
    login
        .args(["login", "--client-id", &CLI_CLIENT_ID.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = login.spawn().expect("login starts");
    let stdout = child.stdout.take().expect("stdout");
    let (code_tx, code_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("utf-8");
            if let Some(code) = line.split("enter the code ").nth(1) {
                let _ = code_tx.send(code.trim().to_string());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let code = tokio::task::spawn_blocking(move || {
        code_rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the code is printed")
    })
    .await
    .expect("join");
    let approved = reqwest::Client::new()
        .post(format!("{}/sandbox/device/approve", s.base_url()))
        .json(&json!({"user_code": code}))
        .send()
        .await
        .expect("approve");
    assert!(approved.status().is_success());
    let status = tokio::task::spawn_blocking(move || child.wait().expect("exit"))
        .await
        .expect("join");
    let out = reader.join().expect("reader");
    assert!(status.success(), "{out}");
    assert!(out.contains("Signed in as admin@contoso.example"), "{out}");

    let file = dir.path().join("session").join("session.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file)
            .expect("session file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }

    let mut status = base(&s, dir.path());
    status.args(["login", "--status"]);
    let o = tokio::task::spawn_blocking(move || run(&mut status))
        .await
        .expect("join");
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{text}");
    assert!(text.contains("admin@contoso.example"), "{text}");
    assert!(!text.contains("ey"), "no token printed: {text}");

    // A command acts as the admin (no client secret configured at all) and logs who it was.
    let mut tap = base(&s, dir.path());
    tap.args(["tap", "--user", "not-the-admin@contoso.example"]);
    let o = tokio::task::spawn_blocking(move || run(&mut tap))
        .await
        .expect("join");
    // That user does not exist: Graph's 404 comes back as a one-line error with its code.
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("Request_ResourceNotFound"), "{err}");

    let mut doctor = base(&s, dir.path());
    doctor.args(["doctor", "--json"]);
    let o = tokio::task::spawn_blocking(move || run(&mut doctor))
        .await
        .expect("join");
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["ok"], true, "{v}");
    assert!(
        v["findings"].to_string().contains("caller's own account"),
        "{v}"
    );

    let mut logout = base(&s, dir.path());
    logout.arg("logout");
    let o = tokio::task::spawn_blocking(move || run(&mut logout))
        .await
        .expect("join");
    assert!(o.status.success());
    assert!(!file.exists());
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tap_prints_the_pass_once_and_logs_the_event_without_it() {
    let s = Sandbox::start(SandboxConfig {
        users: 10,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");
    let upn = {
        let users: Value = reqwest::Client::new()
            .get(format!("{}/v1.0/users?$top=3", s.graph_url()))
            .bearer_auth(s.app_token().expect("token"))
            .send()
            .await
            .expect("users")
            .json()
            .await
            .expect("json");
        users["value"][2]["userPrincipalName"]
            .as_str()
            .expect("upn")
            .to_string()
    };
    let mut tap = base(&s, dir.path());
    tap.env("BEHALF_ENTRA__CLIENT_ID", s.client_id().to_string())
        .env("BEHALF_ENTRA__CLIENT_SECRET", s.client_secret())
        .args([
            "tap",
            "--user",
            &upn,
            "--lifetime",
            "2h",
            "--once",
            "--json",
        ]);
    let o = tokio::task::spawn_blocking(move || run(&mut tap))
        .await
        .expect("join");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    let pass = v["temporaryAccessPass"].as_str().expect("pass").to_string();
    assert_eq!(v["lifetimeInMinutes"], 120);
    assert_eq!(v["isUsableOnce"], true);

    let store =
        behalf_store::Store::connect(&behalf_store::sqlite_url_for(&dir.path().join("data")))
            .await
            .expect("store");
    let ws = store.ensure_workspace("default").await.expect("ws");
    let events = store
        .list_events(ws.id, &behalf_store::EventFilter::default())
        .await
        .expect("events");
    let issued: Vec<_> = events
        .iter()
        .filter(|e| e.action == behalf_domain::EventAction::TapIssued)
        .collect();
    assert_eq!(issued.len(), 1);
    // Under the key the report reads its UPN column from.
    assert_eq!(issued[0].detail.upn.as_deref(), Some(upn.as_str()));
    let everything = format!("{events:?}");
    assert!(!everything.contains(&pass), "the pass is never stored");
    s.shutdown().await;
}
