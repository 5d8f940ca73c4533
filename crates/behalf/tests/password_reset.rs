//! Password-reset links end to end: `behalf serve` against the sandbox tenant over HTTP, mail
//! through a real SMTP server (postfix's `smtp-sink`), the link read from the mail and used the
//! way a browser would. The password it sets is the one the tenant's password sign-in (ROPC)
//! then accepts; the link works once and expires; Behalf keeps neither password nor link.

mod common;

use std::process::{Command, Output};

use behalf_domain::{Millis, Secret, now_millis};
use behalf_sandbox::{CLI_CLIENT_ID, Sandbox, SandboxConfig};
use common::smtp::{Sink, contains, stored_bytes, unquote};
use common::{behalf, run};
use serde_json::{Value, json};

const OLD: &str = "Old-Password-1";
const WEAK: &str = "weakling1";
const NEW: &str = "Fresh-Horse-Battery-42";
const COMPLEXITY: &str = "The specified password does not comply with password complexity requirements. Please provide a different password.";

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

    /// The configuration `behalf` runs with, as environment variables.
    fn vars(&self) -> Vec<(String, String)> {
        let s = &self.sandbox;
        [
            (
                "BEHALF_DATA_DIR",
                self.dir.path().join("data").display().to_string(),
            ),
            (
                "BEHALF_SESSION_DIR",
                self.dir.path().join("session").display().to_string(),
            ),
            ("BEHALF_ENTRA__TENANT_ID", s.tenant_id().to_string()),
            ("BEHALF_ENTRA__CLIENT_ID", s.client_id().to_string()),
            ("BEHALF_ENTRA__CLIENT_SECRET", s.client_secret().to_owned()),
            ("BEHALF_ENTRA__GRAPH_BASE_URL", s.graph_url()),
            ("BEHALF_ENTRA__LOGIN_BASE_URL", s.login_url()),
            ("BEHALF_MAIL__RELAY", "127.0.0.1".to_owned()),
            ("BEHALF_MAIL__PORT", self.sink.port.to_string()),
            ("BEHALF_MAIL__SECURITY", "none".to_owned()),
            ("BEHALF_MAIL__FROM", "IT <it@contoso.example>".to_owned()),
            // As much logging as an admin would turn on, so the scan below means something.
            ("BEHALF_LOG__LEVEL", "debug".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = behalf();
        c.envs(self.vars()).env("RUST_LOG", "debug").args(args);
        c
    }

    async fn run(&self, args: &[&str]) -> Output {
        let mut c = self.cmd(args);
        tokio::task::spawn_blocking(move || run(&mut c))
            .await
            .expect("join")
    }

    /// The tenant's password sign-in (the resource owner password credentials grant).
    async fn signs_in(&self, upn: &str, password: &str) -> Value {
        reqwest::Client::new()
            .post(self.sandbox.token_url())
            .form(&[
                ("grant_type", "password"),
                ("client_id", &CLI_CLIENT_ID.to_string()),
                ("scope", "User.ReadWrite.All"),
                ("username", upn),
                ("password", password),
            ])
            .send()
            .await
            .expect("token")
            .json()
            .await
            .expect("json")
    }

    /// An admin sets a user's password in the tenant directly (the password they had before).
    async fn set_in_tenant(&self, upn: &str, password: &str) {
        let r = reqwest::Client::new()
            .patch(format!("{}/v1.0/users/{upn}", self.sandbox.graph_url()))
            .bearer_auth(self.sandbox.app_token().expect("token"))
            .json(&json!({"passwordProfile": {"password": password, "forceChangePasswordNextSignIn": false}}))
            .send()
            .await
            .expect("patch");
        assert_eq!(r.status(), 204);
    }

    /// A provision-scoped API token of a new owner.
    async fn provision_token(&self) -> String {
        let owner = "owner@contoso.example";
        let password_file = self.dir.path().join("password.txt");
        std::fs::write(&password_file, "a long owner password 1!\n").expect("write");
        let o = self
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
        let o = self
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
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    }
}

/// Enabled users other than the admin.
async fn users_of(sandbox: &Sandbox) -> Vec<String> {
    let v: Value = reqwest::Client::new()
        .get(format!(
            "{}/v1.0/users?$select=userPrincipalName,accountEnabled",
            sandbox.graph_url()
        ))
        .bearer_auth(sandbox.app_token().expect("token"))
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

/// The link in `upn`'s reset mail: the indented line after "set a new password for …:".
fn link_for(mails: &[String], upn: &str) -> String {
    let mail = mails
        .iter()
        .map(|m| unquote(m))
        .find(|m| m.contains(&format!("Subject: Set your password for {upn}")))
        .unwrap_or_else(|| panic!("no reset mail for {upn} in {mails:?}"));
    let after = mail
        .split(&format!("set a new password for {upn}:"))
        .nth(1)
        .unwrap_or_else(|| panic!("no link in the mail:\n{mail}"));
    after
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .expect("a link")
        .to_owned()
}

async fn post_form(link: &str, password: &str, confirm: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(link)
        .form(&[("password", password), ("confirm", confirm)])
        .send()
        .await
        .expect("post");
    (r.status().as_u16(), r.text().await.expect("body"))
}

async fn get_page(link: &str) -> (u16, String) {
    let r = reqwest::get(link).await.expect("get");
    let csp = r
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    (r.status().as_u16(), r.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_link_sets_a_password_the_tenant_accepts_once_and_behalf_keeps_none() {
    let env = Env::start().await;
    let users = users_of(&env.sandbox).await;
    let (ada, bob) = (users[0].clone(), users[1].clone());
    env.set_in_tenant(&ada, OLD).await;
    assert!(env.signs_in(&ada, OLD).await["access_token"].is_string());

    let token = env.provision_token().await;
    let log_path = env.dir.path().join("serve.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let server = common::start_server_with_log(env.cmd(&[]), log).await;
    let http = reqwest::Client::new();

    // The API sends the mail and answers without the link.
    let r = http
        .post(format!("{}/api/v1/mail/reset", server.base_url))
        .bearer_auth(&token)
        .json(&json!({"users": [ada]}))
        .send()
        .await
        .expect("api");
    assert_eq!(r.status(), 200);
    let answer = r.text().await.expect("body");
    let v: Value = serde_json::from_str(&answer).expect("json");
    assert_eq!(v[0]["sent"], true, "{v}");
    let link = link_for(&env.sink.messages(1), &ada);
    // `[mail] public_url` is not set: the link names the address the server listens on.
    let prefix = format!("{}/password/reset/bhr_", server.base_url);
    assert!(link.starts_with(&prefix), "{link}");
    let link_token = link.rsplit('/').next().expect("token").to_owned();
    assert!(
        !answer.contains(&link_token),
        "the API answer holds the link"
    );

    // The page greets the link's user.
    let (status, page) = get_page(&link).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(&ada) && page.contains("Set your password"),
        "{page}"
    );

    // Entra's password policy refuses a weak password, in its words; the link still works.
    let (status, page) = post_form(&link, WEAK, WEAK).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains(COMPLEXITY), "{page}");
    assert!(!page.contains(WEAK), "the refused password is echoed back");
    assert_eq!(get_page(&link).await.0, 200);
    // Two different passwords, and a form another site sent: refused before Entra is asked.
    let (status, page) = post_form(&link, NEW, "Fresh-Horse-Battery-43").await;
    assert_eq!(status, 400);
    assert!(page.contains("not the same"), "{page}");
    let r = http
        .post(&link)
        .header("sec-fetch-site", "cross-site")
        .form(&[("password", NEW), ("confirm", NEW)])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403);
    assert!(env.signs_in(&ada, OLD).await["access_token"].is_string());

    // A good password: set in Entra ID; the tenant's sign-in accepts it and not the old one.
    let (status, page) = post_form(&link, NEW, NEW).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("is set in Microsoft Entra ID"), "{page}");
    let signed_in = env.signs_in(&ada, NEW).await;
    assert!(signed_in["access_token"].is_string(), "{signed_in}");
    let old = env.signs_in(&ada, OLD).await;
    assert_eq!(old["error_codes"][0], 50126, "{old}");

    // The same link again: refused in words, and nothing changes.
    let (status, page) = get_page(&link).await;
    assert_eq!(status, 410);
    assert!(page.contains("has been used already"), "{page}");
    let (status, page) = post_form(&link, "Another-Horse-43", "Another-Horse-43").await;
    assert_eq!(status, 410);
    assert!(page.contains("has been used already"), "{page}");
    assert!(env.signs_in(&ada, NEW).await["access_token"].is_string());
    // A link Behalf never made.
    let (status, page) = get_page(&format!("{prefix}not-a-real-token")).await;
    assert_eq!(status, 410);
    assert!(page.contains("is not known"), "{page}");

    // The CLI as the server's client: a link for Bob, exit 0.
    let o = env
        .run(&[
            "--server",
            &server.base_url,
            "--token",
            &token,
            "mail",
            "reset",
            "--user",
            &bob,
            "--json",
        ])
        .await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v[0]["sent"], true, "{v}");
    let bob_link = link_for(&env.sink.messages(2), &bob);
    let bob_token = bob_link.rsplit('/').next().expect("token").to_owned();

    // Expiry, without waiting: the app on the same database, at a time past the link's
    // (`[mail] reset_link_minutes`, 30 by default), refuses it, and the password stays unset.
    let config = behalf_config::Config::load_with_env(
        behalf_config::Sources {
            file: None,
            overrides: None,
        },
        env.vars(),
    )
    .expect("config");
    let app = behalf_app::App::open(config, behalf_app::AppOptions::default())
        .await
        .expect("app");
    let later: Millis = now_millis() + 31 * 60_000;
    let page = app.reset_page(&bob_token).await.expect("valid now");
    assert_eq!(page.upn, bob);
    let e = app
        .reset_page_at(&bob_token, later)
        .await
        .expect_err("expired");
    assert!(e.to_string().contains("has expired"), "{e}");
    let e = app
        .set_password_with_link_at(&Secret::new(bob_token.clone()), &Secret::new(NEW), later)
        .await
        .expect_err("expired");
    assert!(e.to_string().contains("has expired"), "{e}");
    app.close().await;
    assert_eq!(env.signs_in(&bob, NEW).await["error_codes"][0], 50126);
    // …while it is still valid the link works.
    let (status, page) = post_form(&bob_link, NEW, NEW).await;
    assert_eq!(status, 200, "{page}");
    assert!(env.signs_in(&bob, NEW).await["access_token"].is_string());

    // `[mail] public_url` names where users reach Behalf.
    let mut c = env.cmd(&["mail", "reset", "--user", &users[2], "--json"]);
    c.env("BEHALF_MAIL__PUBLIC_URL", "https://behalf.contoso.example/");
    let o = tokio::task::spawn_blocking(move || run(&mut c))
        .await
        .expect("join");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let local_out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let third = link_for(&env.sink.messages(3), &users[2]);
    assert!(
        third.starts_with("https://behalf.contoso.example/password/reset/bhr_"),
        "{third}"
    );
    let third_token = third.rsplit('/').next().expect("token").to_owned();

    drop(server);
    // Behalf keeps no password and no link: not in its database (and WAL) or data directory,
    // not in the server's log, not in what the CLI printed.
    let stored = stored_bytes(&env.dir.path().join("data"));
    assert!(contains(&stored, "password.set") && contains(&stored, "password.refused"));
    let log = std::fs::read_to_string(&log_path).expect("log");
    assert!(
        log.contains("/password/reset/"),
        "the log holds the requests"
    );
    for secret in [NEW, WEAK, "Fresh-Horse-Battery-43", "Another-Horse-43", OLD] {
        assert!(
            !contains(&stored, secret),
            "{secret} is in the data directory"
        );
        assert!(!log.contains(secret), "{secret} is in the server's log");
    }
    for secret in [&link_token, &bob_token, &third_token] {
        assert!(
            !contains(&stored, secret),
            "a link is in the data directory"
        );
        assert!(
            !log.contains(secret.as_str()),
            "a link is in the server's log"
        );
        assert!(!local_out.contains(secret.as_str()), "a link was printed");
    }
    env.sandbox.shutdown().await;
}
