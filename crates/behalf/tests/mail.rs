//! Onboarding mail end to end: the real binary, the sandbox tenant, and a real SMTP server
//! (postfix's `smtp-sink`, installed by .ci/run) that writes each message it receives to a file.

mod common;

use std::net::TcpListener;
use std::process::{Command, Output};

use behalf_sandbox::{Sandbox, SandboxConfig};
use common::smtp::{Sink, contains, stored_bytes, unquote};
use common::{behalf, run};
use serde_json::{Value, json};

struct Env {
    sandbox: Sandbox,
    sink: Sink,
    dir: tempfile::TempDir,
}

impl Env {
    async fn start() -> Env {
        let sandbox = Sandbox::start(SandboxConfig {
            users: 6,
            ..SandboxConfig::default()
        })
        .await
        .expect("sandbox");
        let env = Env {
            sandbox,
            sink: Sink::start(),
            dir: tempfile::tempdir().expect("tempdir"),
        };
        let o = env.run(&["import"]).await;
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        env
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
            .env("BEHALF_MAIL__RELAY", "127.0.0.1")
            .env("BEHALF_MAIL__PORT", self.sink.port.to_string())
            .env("BEHALF_MAIL__SECURITY", "none")
            .env("BEHALF_MAIL__FROM", "IT <it@contoso.example>")
            // As much logging as an admin would turn on, so the scan below means something.
            .env("RUST_LOG", "debug")
            .env("BEHALF_LOG__LEVEL", "debug")
            .args(args);
        c
    }

    async fn run(&self, args: &[&str]) -> Output {
        let mut c = self.cmd(args);
        tokio::task::spawn_blocking(move || run(&mut c))
            .await
            .expect("join")
    }

    /// Every byte Behalf keeps: the database file and its WAL, and everything else in the data
    /// directory.
    fn stored_bytes(&self) -> Vec<u8> {
        stored_bytes(&self.dir.path().join("data"))
    }

    async fn sign_in_with_tap(&self, upn: &str, pass: &str) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}/sandbox/signin/tap", self.sandbox.base_url()))
            .json(&json!({"upn": upn, "temporaryAccessPass": pass}))
            .send()
            .await
            .expect("sign-in")
    }
}

/// The pass in an activation mail: the indented line after "add a passkey:".
fn pass_in(mail: &str) -> String {
    let text = unquote(mail);
    let after = text
        .split("and add a passkey:")
        .nth(1)
        .unwrap_or_else(|| panic!("no sign-in steps in the mail:\n{text}"));
    after
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .expect("a pass")
        .to_owned()
}

/// Enabled users other than the admin (a disabled account cannot sign in with its pass).
async fn users_of(sandbox: &Sandbox) -> Vec<String> {
    let token = sandbox.app_token().expect("token");
    let v: Value = reqwest::Client::new()
        .get(format!(
            "{}/v1.0/users?$select=userPrincipalName,accountEnabled",
            sandbox.graph_url()
        ))
        .bearer_auth(token)
        .send()
        .await
        .expect("users")
        .json()
        .await
        .expect("json");
    v["value"]
        .as_array()
        .expect("users")
        .iter()
        .filter(|u| u["accountEnabled"] == true)
        .filter_map(|u| u["userPrincipalName"].as_str().map(String::from))
        .filter(|u| !u.starts_with("admin@"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activation_mail_carries_a_pass_the_tenant_accepts_and_behalf_keeps_none() {
    let env = Env::start().await;
    let users = users_of(&env.sandbox).await;
    let (first, second) = (users[0].clone(), users[1].clone());

    let o = env
        .run(&[
            "mail",
            "activation",
            "--user",
            &first,
            "--user",
            &second,
            "--json",
        ])
        .await;
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    let outcomes: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(outcomes.as_array().map(Vec::len), Some(2), "{outcomes}");
    assert!(
        outcomes
            .as_array()
            .expect("outcomes")
            .iter()
            .all(|o| o["sent"] == true)
    );

    let mails = env.sink.messages(2);
    let mut passes = Vec::new();
    for upn in [&first, &second] {
        let mail = mails
            .iter()
            .find(|m| unquote(m).contains(&format!("Subject: Your sign-in pass for {upn}")))
            .unwrap_or_else(|| panic!("no mail for {upn} in {mails:?}"));
        assert!(mail.contains("From: IT <it@contoso.example>"), "{mail}");
        assert!(mail.contains("multipart/alternative"), "{mail}");
        assert!(unquote(mail).contains("https://aka.ms/mysecurityinfo"));
        let pass = pass_in(mail);
        assert_eq!(pass.len(), 8, "{pass}");
        // The tenant accepts that pass for that user, once (activation passes are one-time).
        let r = env.sign_in_with_tap(upn, &pass).await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
        assert_eq!(env.sign_in_with_tap(upn, &pass).await.status(), 400);
        passes.push(pass);
    }
    // One user's pass is not another's.
    assert_eq!(
        env.sign_in_with_tap(&second, &passes[0]).await.status(),
        400
    );

    // Behalf keeps no pass: not in its database or data directory, not in what it printed.
    let stored = env.stored_bytes();
    assert!(contains(&stored, "mail.sent"), "the event was recorded");
    for pass in &passes {
        assert!(
            !contains(&stored, pass),
            "a pass is in Behalf's data directory"
        );
        assert!(
            !stdout.contains(pass.as_str()) && !stderr.contains(pass.as_str()),
            "a pass was printed or logged"
        );
    }

    // A user Behalf does not know, and a relay that is down: said in words, exit 3.
    let o = env
        .run(&[
            "mail",
            "activation",
            "--user",
            "nobody@contoso.example",
            "--json",
        ])
        .await;
    assert_eq!(o.status.code(), Some(3));
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(
        v[0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("user not found"),
        "{v}"
    );
    let mut c = env.cmd(&["mail", "activation", "--user", &first, "--json"]);
    let dead = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    c.env("BEHALF_MAIL__PORT", dead.to_string());
    let o = tokio::task::spawn_blocking(move || run(&mut c))
        .await
        .expect("join");
    assert_eq!(o.status.code(), Some(3));
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(
        v[0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("SMTP relay 127.0.0.1"),
        "{v}"
    );
    assert!(contains(&env.stored_bytes(), "mail.failed"));
    // The undelivered pass was withdrawn: the user has none left in the tenant.
    let taps: Value = reqwest::Client::new()
        .get(format!(
            "{}/v1.0/users/{first}/authentication/temporaryAccessPassMethods",
            env.sandbox.graph_url()
        ))
        .bearer_auth(env.sandbox.app_token().expect("token"))
        .send()
        .await
        .expect("taps")
        .json()
        .await
        .expect("json");
    assert_eq!(taps["value"].as_array().map(Vec::len), Some(0), "{taps}");

    // Mail not configured: refused before any pass is issued.
    let mut c = env.cmd(&["mail", "activation", "--user", &first]);
    c.env_remove("BEHALF_MAIL__RELAY");
    let o = tokio::task::spawn_blocking(move || run(&mut c))
        .await
        .expect("join");
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("mail is not configured"));
    env.sandbox.shutdown().await;
}

/// The same through `behalf serve`: `POST /api/v1/mail/activation` with a provision-scoped
/// token sends one mail per user and answers without the pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activation_mail_through_the_api() {
    let env = Env::start().await;
    let users = users_of(&env.sandbox).await;
    let owner = "owner@contoso.example";
    let password_file = env.dir.path().join("password.txt");
    std::fs::write(&password_file, "a long owner password 1!\n").expect("write");
    let o = env
        .run(&[
            "admin",
            "create",
            "--email",
            owner,
            "--role",
            "owner",
            "--password-file",
            password_file.to_str().expect("path"),
        ])
        .await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = env
        .run(&[
            "token",
            "create",
            "--admin",
            owner,
            "--name",
            "mail",
            "--scope",
            "provision",
        ])
        .await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let token = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    let server = common::start_server(env.cmd(&[])).await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/api/v1/mail/activation", server.base_url))
        .bearer_auth(&token)
        .json(&json!({"users": [users[2], users[3]]}))
        .send()
        .await
        .expect("api");
    assert_eq!(r.status(), 200);
    let body = r.text().await.expect("body");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert!(
        v.as_array()
            .expect("outcomes")
            .iter()
            .all(|o| o["sent"] == true),
        "{v}"
    );
    let mails = env.sink.messages(2);
    for upn in [&users[2], &users[3]] {
        let mail = mails
            .iter()
            .find(|m| unquote(m).contains(&format!("Subject: Your sign-in pass for {upn}")))
            .unwrap_or_else(|| panic!("no mail for {upn}"));
        let pass = pass_in(mail);
        assert!(!body.contains(&pass), "the API answer holds the pass");
        assert_eq!(env.sign_in_with_tap(upn, &pass).await.status(), 200);
    }
    // The CLI as the server's client: the same answer, exit 0.
    let o = env
        .run(&[
            "--server",
            &server.base_url,
            "--token",
            &token,
            "mail",
            "activation",
            "--user",
            &users[4],
            "--json",
        ])
        .await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v[0]["sent"], true, "{v}");
    let mails = env.sink.messages(3);
    assert!(
        mails
            .iter()
            .any(|m| unquote(m).contains(&format!("pass for {}", users[4])))
    );

    // `to` is for one user only; an empty selection is refused.
    for bad in [
        json!({"users": [users[2], users[3]], "to": "x@contoso.example"}),
        json!({"users": []}),
    ] {
        let r = http
            .post(format!("{}/api/v1/mail/activation", server.base_url))
            .bearer_auth(&token)
            .json(&bad)
            .send()
            .await
            .expect("api");
        assert_eq!(r.status(), 400, "{bad}");
    }
    drop(server);
    env.sandbox.shutdown().await;
}
