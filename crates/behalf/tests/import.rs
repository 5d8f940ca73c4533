//! `behalf import` end to end: the real binary against an in-process sandbox tenant.

mod common;

use std::process::{Command, Output};

use behalf_sandbox::{Knobs, PROVISIONING_CLIENT_ID, Sandbox, SandboxConfig, default_apps};
use common::{behalf, run};
use serde_json::Value;

struct Env {
    sandbox: Sandbox,
    dir: tempfile::TempDir,
}

impl Env {
    async fn start(users: usize, knobs: Knobs) -> Env {
        Env::start_with(SandboxConfig {
            users,
            knobs,
            ..SandboxConfig::default()
        })
        .await
    }

    async fn start_with(config: SandboxConfig) -> Env {
        let sandbox = Sandbox::start(config).await.expect("sandbox");
        Env {
            sandbox,
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let s = &self.sandbox;
        let mut c = behalf();
        c.env("BEHALF_DATA_DIR", self.dir.path().join("data"))
            .env("BEHALF_SESSION_DIR", self.dir.path().join("session"))
            .env("BEHALF_ENTRA__TENANT_ID", s.tenant_id().to_string())
            .env("BEHALF_ENTRA__CLIENT_ID", s.client_id().to_string())
            .env("BEHALF_ENTRA__CLIENT_SECRET", s.client_secret())
            .env("BEHALF_ENTRA__GRAPH_BASE_URL", s.graph_url())
            .env("BEHALF_ENTRA__LOGIN_BASE_URL", s.login_url())
            .args(args);
        c
    }

    async fn run(&self, args: &[&str]) -> Output {
        let mut c = self.cmd(args);
        tokio::task::spawn_blocking(move || run(&mut c))
            .await
            .expect("join")
    }
}

fn json_out(o: &Output) -> Value {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("JSON on stdout")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_then_delta_with_json_summaries() {
    let env = Env::start(500, Knobs::default()).await;
    let full = json_out(&env.run(&["import", "--json"]).await);
    assert_eq!(full["mode"], "full");
    assert_eq!(full["users_created"], 500);
    assert_eq!(full["users_total"], 500);
    assert!(full["groups_total"].as_i64().unwrap_or(0) >= 5);

    // A user disabled in the tenant meanwhile shows up in the delta round only.
    let token = env.sandbox.app_token().expect("token");
    let http = reqwest::Client::new();
    let users: Value = http
        .get(format!("{}/v1.0/users?$top=5", env.sandbox.graph_url()))
        .bearer_auth(&token)
        .send()
        .await
        .expect("users")
        .json()
        .await
        .expect("json");
    let id = users["value"][3]["id"].as_str().expect("id");
    let patched = http
        .patch(format!("{}/v1.0/users/{id}", env.sandbox.graph_url()))
        .bearer_auth(&token)
        .json(&serde_json::json!({"accountEnabled": false}))
        .send()
        .await
        .expect("patch");
    assert!(patched.status().is_success());

    let delta = json_out(&env.run(&["import", "--delta", "--json"]).await);
    assert_eq!(delta["mode"], "delta");
    assert_eq!(delta["users_seen"], 1);
    assert_eq!(delta["users_updated"], 1);
    assert_eq!(delta["users_created"], 0);

    // Without --json: one plain summary, no progress bar on a pipe.
    let plain = env.run(&["import", "--delta"]).await;
    assert!(plain.status.success());
    let out = String::from_utf8_lossy(&plain.stdout);
    assert!(out.starts_with("Delta import done"), "{out}");
    assert!(out.contains("Now 500 users"), "{out}");
    env.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_without_credentials_says_what_to_configure() {
    let env = Env::start(5, Knobs::default()).await;
    let mut c = env.cmd(&["import"]);
    c.env_remove("BEHALF_ENTRA__CLIENT_SECRET");
    let o = tokio::task::spawn_blocking(move || run(&mut c))
        .await
        .expect("join");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("behalf login") && err.contains("client_secret"),
        "{err}"
    );
    env.sandbox.shutdown().await;
}

/// Test certificates (RSA, with their PKCS#8 keys) kept with the sandbox's conformance tests.
fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../sandbox/tests/fixtures")
        .join(name)
}

/// Certificate client credentials end to end: the app's certificate is registered in the tenant,
/// `behalf import` signs a client assertion with its key (no secret configured), the sandbox
/// verifies it, and the import runs; an unregistered certificate is refused with the AADSTS code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_signs_in_with_a_certificate_and_an_unregistered_one_is_refused() {
    let registered = std::fs::read_to_string(fixture("app-certificate.pem")).expect("fixture");
    let mut apps = default_apps();
    for app in &mut apps {
        if app.client_id == PROVISIONING_CLIENT_ID {
            app.certificates.push(registered.clone());
        }
    }
    let env = Env::start_with(SandboxConfig {
        users: 50,
        apps,
        ..SandboxConfig::default()
    })
    .await;
    let with_certificate = |name: &str| {
        let mut c = env.cmd(&["import", "--json"]);
        c.env_remove("BEHALF_ENTRA__CLIENT_SECRET")
            .env("BEHALF_ENTRA__CERTIFICATE_FILE", fixture(name));
        c
    };

    let mut c = with_certificate("app-certificate.pem");
    let o = tokio::task::spawn_blocking(move || run(&mut c))
        .await
        .expect("join");
    let full = json_out(&o);
    assert_eq!(full["users_created"], 50);
    assert_eq!(full["users_total"], 50);

    let mut c = with_certificate("other-certificate.pem");
    let o = tokio::task::spawn_blocking(move || run(&mut c))
        .await
        .expect("join");
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    // Progress lines may come first; the failure itself is one `error:` line naming the code.
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].contains("AADSTS700027") && errors[0].contains("not registered"),
        "{err}"
    );
    assert!(!err.contains("PRIVATE KEY"), "{err}");
    env.sandbox.shutdown().await;
}
