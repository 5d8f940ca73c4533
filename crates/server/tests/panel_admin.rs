//! The panel's Directory, Reports and Settings pages over real HTTP with a session cookie, as a
//! browser without script uses them: each page renders for an owner, a viewer is refused (a
//! 403 page whose `role="alert"` says why), a form without the session's CSRF token changes
//! nothing, and each action does what its button says. The same pages in Chromium are
//! `crates/behalf/tests/panel_browser.rs`.

mod common;

use behalf_domain::{
    EventAction, EventDetail, NewEvent, Outcome, Role, TokenScope, Upn, UserDraft, format_millis,
    now_millis,
};
use behalf_sandbox::{Sandbox, SandboxConfig};
use common::TestServer;
use common::panel::{Browser, between, browser, client, get};
use figment::providers::Serialized;

async fn post(
    server: &TestServer,
    b: &Browser,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut fields = vec![("csrf", b.csrf.as_str())];
    fields.extend_from_slice(form);
    client()
        .post(server.url(path))
        .header("cookie", &b.cookie)
        .form(&fields)
        .send()
        .await
        .unwrap()
}

/// Posts and wants a page back (200): its text.
async fn post_ok(server: &TestServer, b: &Browser, path: &str, form: &[(&str, &str)]) -> String {
    let answer = post(server, b, path, form).await;
    assert_eq!(answer.status(), 200, "POST {path}");
    answer.text().await.unwrap()
}

/// The answer is the 403 page whose alert says why.
async fn refused(answer: reqwest::Response, why: &str) {
    assert_eq!(answer.status(), 403);
    let page = answer.text().await.unwrap();
    assert!(
        page.contains("role=\"alert\"") && page.contains(why),
        "{page}"
    );
}

async fn viewer_and_owner(server: &TestServer) -> (Browser, Browser) {
    server.admin("owner@contoso.test", Role::Owner, true).await;
    server
        .admin("viewer@contoso.test", Role::Viewer, false)
        .await;
    (
        browser(server, "owner@contoso.test").await,
        browser(server, "viewer@contoso.test").await,
    )
}

// ---- Reports ----

async fn seed_report(server: &TestServer) {
    let ws = server.app.workspace().id;
    let store = server.app.store();
    let drafts: Vec<UserDraft> = ["alice", "bob"]
        .iter()
        .map(|n| UserDraft {
            connection_id: None,
            external_id: None,
            upn: Upn::parse(&format!("{n}@contoso.test")).unwrap(),
            display_name: n.to_string(),
            mail: None,
            department: None,
            enabled: true,
        })
        .collect();
    store.upsert_users(ws, &drafts).await.unwrap();
    for (n, outcome, reason) in [
        ("alice", Outcome::Success, None),
        ("bob", Outcome::Failure, Some("Graph said no, twice")),
    ] {
        let upn = Upn::parse(&format!("{n}@contoso.test")).unwrap();
        let user = store.find_user_by_upn(ws, &upn).await.unwrap().unwrap();
        let detail = EventDetail {
            upn: Some(upn.to_string()),
            reason: reason.map(str::to_owned),
            ..EventDetail::default()
        };
        store
            .append_event(
                ws,
                NewEvent::new(
                    "admin:owner@contoso.test",
                    EventAction::PasskeyCreated,
                    outcome,
                )
                .user(user.id)
                .rp("login.microsoft.com")
                .detail(detail),
            )
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn the_report_filters_and_its_csv_has_the_same_rows_as_the_cli() {
    let server = TestServer::start().await;
    let (owner, viewer) = viewer_and_owner(&server).await;
    let empty = get(&server, &owner.cookie, "/reports").await;
    assert!(
        empty.contains("Nothing to report yet") && !empty.contains("id=\"report-table\""),
        "{empty}"
    );
    seed_report(&server).await;

    // Reading the report is every admin's: the viewer sees it too.
    let page = get(&server, &viewer.cookie, "/reports").await;
    for id in [
        "form id=\"report-filters\"",
        "id=\"report-user\"",
        "id=\"report-rp\"",
        "id=\"report-from\" name=\"from\" type=\"date\"",
        "id=\"report-to\" name=\"to\" type=\"date\"",
        "id=\"report-apply\"",
        "table id=\"report-table\"",
        "id=\"report-csv\"",
    ] {
        assert!(page.contains(id), "{id} in {page}");
    }
    assert!(page.contains("alice@contoso.test") && page.contains("bob@contoso.test"));

    let one = get(&server, &owner.cookie, "/reports?user=bob%40contoso.test").await;
    assert!(one.contains("bob@contoso.test") && !one.contains(">alice@contoso.test<"));
    assert!(one.contains("Graph said no, twice"));
    assert!(
        one.contains("href=\"/reports/report.csv?user=bob%40contoso.test\""),
        "the CSV link carries the filters: {one}"
    );

    let today = &format_millis(now_millis())[..10];
    let dated = get(
        &server,
        &owner.cookie,
        &format!("/reports?from={today}&to={today}"),
    )
    .await;
    assert!(dated.contains("alice@contoso.test"));
    let before = get(&server, &owner.cookie, "/reports?to=2001-01-01").await;
    assert!(
        before.contains("No event matches these filters"),
        "{before}"
    );
    let bad = get(&server, &owner.cookie, "/reports?from=yesterday").await;
    assert!(
        bad.contains("role=\"alert\"") && bad.contains("value=\"yesterday\""),
        "a bad date is said, and the form keeps it: {bad}"
    );
    let nobody = get(&server, &owner.cookie, "/reports?user=carol%40contoso.test").await;
    assert!(nobody.contains("role=\"alert\"") && nobody.contains("not found"));

    let csv = client()
        .get(server.url("/reports/report.csv?user=bob%40contoso.test"))
        .header("cookie", &viewer.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        csv.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let text = csv.text().await.unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        behalf_app::ops::report::CSV_HEADER.join(","),
        "the CLI's header"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1, "{text}");
    assert!(
        rows[0].contains("admin:owner@contoso.test,passkey.created,bob@contoso.test,login.microsoft.com,failure,\"Graph said no, twice\""),
        "{}",
        rows[0]
    );
    let all = client()
        .get(server.url("/reports/report.csv"))
        .header("cookie", &owner.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        all.lines()
            .filter(|l| l.contains("passkey.created"))
            .count(),
        2
    );

    let everything = get(&server, &owner.cookie, "/reports?kind=all").await;
    assert!(
        everything.contains("admin.created") && everything.contains("passkey.created"),
        "every event, as `behalf report` lists them"
    );

    // Signed out: the sign-in page, not the data.
    let out = client()
        .get(server.url("/reports/report.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    server.stop().await;
}

#[tokio::test]
async fn the_audit_log_lists_sign_ins_admins_and_tokens() {
    let server = TestServer::start().await;
    let (owner, _viewer) = viewer_and_owner(&server).await;
    server.token("owner@contoso.test", TokenScope::Read).await;
    let page = get(&server, &owner.cookie, "/reports/audit").await;
    assert!(page.contains("table id=\"audit-table\""), "{page}");
    for action in ["admin.signed_in", "admin.created", "token.created"] {
        assert!(page.contains(action), "{action} in {page}");
    }
    let sign_ins = get(&server, &owner.cookie, "/reports/audit?kind=sign-ins").await;
    assert!(sign_ins.contains("admin.signed_in") && !sign_ins.contains(">token.created<"));
    let wrong = client()
        .get(server.url("/reports/audit?kind=everything"))
        .header("cookie", &owner.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 400);
    server.stop().await;
}

// ---- Settings ----

#[tokio::test]
async fn settings_are_for_owners_and_every_form_needs_the_csrf_token() {
    let server = TestServer::start().await;
    let (owner, viewer) = viewer_and_owner(&server).await;
    server.admin("admin@contoso.test", Role::Admin, true).await;
    let admin = browser(&server, "admin@contoso.test").await;

    let page = get(&server, &owner.cookie, "/settings").await;
    for id in [
        "id=\"admins\"",
        "id=\"tokens\"",
        "id=\"vault\"",
        "id=\"attestation\"",
    ] {
        assert!(page.contains(id), "{id}");
    }
    assert!(
        page.contains("No API token yet"),
        "the empty state says what to do"
    );
    assert!(
        page.contains("id=\"attestation-mode\">packed<")
            && page.contains("BEHALF_PROVISIONING__ATTESTATION"),
        "the attestation mode, and where it is set"
    );

    for who in [&viewer, &admin] {
        let answer = client()
            .get(server.url("/settings"))
            .header("cookie", &who.cookie)
            .send()
            .await
            .unwrap();
        refused(answer, "for owners").await;
        refused(
            post(
                &server,
                who,
                "/settings/tokens",
                &[("name", "x"), ("scope", "admin")],
            )
            .await,
            "for owners",
        )
        .await;
        refused(
            post(
                &server,
                who,
                "/settings/vault/rotate",
                &[("confirmed", "1")],
            )
            .await,
            "for owners",
        )
        .await;
    }

    // Without the CSRF token: refused, and nothing happened.
    for (path, form) in [
        (
            "/settings/tokens",
            vec![("name", "forged"), ("scope", "admin")],
        ),
        (
            "/settings/admins",
            vec![("email", "mallory@contoso.test"), ("role", "owner")],
        ),
        ("/settings/vault/rotate", vec![("confirmed", "1")]),
    ] {
        let answer = client()
            .post(server.url(path))
            .header("cookie", &owner.cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        refused(answer, "security token").await;
    }
    let page = get(&server, &owner.cookie, "/settings").await;
    assert!(!page.contains("forged") && !page.contains("mallory@"));
    server.stop().await;
}

#[tokio::test]
async fn an_owner_invites_changes_disables_and_removes_an_admin() {
    let server = TestServer::start().await;
    let (owner, _viewer) = viewer_and_owner(&server).await;

    let page = post_ok(
        &server,
        &owner,
        "/settings/admins",
        &[("email", "dana@contoso.test"), ("role", "admin")],
    )
    .await;
    let link = between(&page, "<code id=\"shown-once-value\">", "<")
        .expect("the setup link is shown")
        .replace("&#x3d;", "=")
        .replace("&#61;", "=");
    assert!(link.contains("/setup?token="), "{link}");
    let token = link.split("token=").nth(1).unwrap();
    let setup = client()
        .get(server.url(&format!("/setup?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(setup.status(), 200, "the link opens the setup page");
    let again = get(&server, &owner.cookie, "/settings").await;
    assert!(
        !again.contains(token),
        "the setup link is shown once, not on the next visit"
    );
    let id = admin_id(&again, "dana@contoso.test");
    assert!(again.contains("invited: no password yet"));

    let changed = post_ok(
        &server,
        &owner,
        &format!("/settings/admins/{id}"),
        &[("op", "role"), ("role", "viewer")],
    )
    .await;
    assert!(
        changed.contains("dana@contoso.test is now viewer, without edit-users"),
        "{changed}"
    );
    let bad_role = post(
        &server,
        &owner,
        &format!("/settings/admins/{id}"),
        &[("op", "role"), ("role", "emperor")],
    )
    .await;
    assert_eq!(bad_role.status(), 400);

    server.admin("erin@contoso.test", Role::Admin, false).await;
    let erin = browser(&server, "erin@contoso.test").await;
    let erin_id = admin_id(
        &get(&server, &owner.cookie, "/settings").await,
        "erin@contoso.test",
    );
    let disabled = post_ok(
        &server,
        &owner,
        &format!("/settings/admins/{erin_id}"),
        &[("op", "disable")],
    )
    .await;
    assert!(
        disabled.contains("erin@contoso.test is disabled"),
        "{disabled}"
    );
    let locked_out = client()
        .get(server.url("/directory"))
        .header("cookie", &erin.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        locked_out.status(),
        303,
        "a disabled admin's session is refused"
    );
    let enabled = post_ok(
        &server,
        &owner,
        &format!("/settings/admins/{erin_id}"),
        &[("op", "enable")],
    )
    .await;
    assert!(enabled.contains("erin@contoso.test is enabled again"));
    get(&server, &erin.cookie, "/directory").await;

    // Removing asks first; the confirmation removes.
    let ask = post_ok(
        &server,
        &owner,
        &format!("/settings/admins/{erin_id}"),
        &[("op", "remove")],
    )
    .await;
    assert!(
        ask.contains("Remove erin@contoso.test?") && ask.contains("id=\"confirm\""),
        "{ask}"
    );
    assert!(
        get(&server, &owner.cookie, "/settings")
            .await
            .contains("erin@contoso.test")
    );
    let removed = post_ok(
        &server,
        &owner,
        &format!("/settings/admins/{erin_id}"),
        &[("op", "remove"), ("confirmed", "1")],
    )
    .await;
    assert!(removed.contains("Removed erin@contoso.test."));
    assert!(!removed.contains("data-email=\"erin@contoso.test\""));

    // The last owner stays an owner, and enabled.
    let me = admin_id(&removed, "owner@contoso.test");
    let demote = post_ok(
        &server,
        &owner,
        &format!("/settings/admins/{me}"),
        &[("op", "role"), ("role", "admin")],
    )
    .await;
    assert!(
        demote.contains("role=\"alert\"") && demote.contains("last enabled owner"),
        "{demote}"
    );
    let audit = get(&server, &owner.cookie, "/reports/audit?kind=admins").await;
    for action in [
        "admin.created",
        "admin.updated",
        "admin.disabled",
        "admin.enabled",
        "admin.removed",
    ] {
        assert!(audit.contains(action), "{action} in the audit log");
    }
    server.stop().await;
}

fn admin_id(page: &str, email: &str) -> String {
    let marker = format!("\" data-email=\"{email}\"");
    let end = page
        .find(&marker)
        .unwrap_or_else(|| panic!("{email} listed"));
    let start = page[..end].rfind("data-admin-id=\"").unwrap() + "data-admin-id=\"".len();
    page[start..end].to_owned()
}

#[tokio::test]
async fn a_token_made_in_the_panel_is_shown_once_works_and_is_revoked_after_asking() {
    let server = TestServer::start().await;
    let (owner, _viewer) = viewer_and_owner(&server).await;
    let page = post_ok(
        &server,
        &owner,
        "/settings/tokens",
        &[
            ("name", "ci deploys"),
            ("admin", "owner@contoso.test"),
            ("scope", "read"),
            ("expires_days", "30"),
        ],
    )
    .await;
    let token = between(&page, "<code id=\"shown-once-value\">", "<")
        .expect("the token is shown")
        .to_owned();
    assert!(page.contains("ci deploys") && page.contains("data-token-id=\""));
    let me = reqwest::Client::new()
        .get(server.url("/api/v1/users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200, "the token works");
    assert!(
        !get(&server, &owner.cookie, "/settings")
            .await
            .contains(&token),
        "shown once"
    );

    let bad = post(
        &server,
        &owner,
        "/settings/tokens",
        &[("name", "x"), ("scope", "root")],
    )
    .await;
    assert_eq!(bad.status(), 400);

    let id = between(&page, "data-token-id=\"", "\"").unwrap().to_owned();
    let ask = post_ok(
        &server,
        &owner,
        &format!("/settings/tokens/{id}/revoke"),
        &[],
    )
    .await;
    assert!(ask.contains("Revoke the token ci deploys?"), "{ask}");
    let still = reqwest::Client::new()
        .get(server.url("/api/v1/users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(still.status(), 200, "asking revokes nothing");
    let done = post_ok(
        &server,
        &owner,
        &format!("/settings/tokens/{id}/revoke"),
        &[("confirmed", "1")],
    )
    .await;
    assert!(done.contains("Revoked the token ci deploys."), "{done}");
    let gone = reqwest::Client::new()
        .get(server.url("/api/v1/users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 401, "a revoked token stops working");
    server.stop().await;
}

#[tokio::test]
async fn rotating_the_master_key_in_the_panel_keeps_secrets_and_retires_the_old_key() {
    let server = TestServer::start().await;
    let (owner, _viewer) = viewer_and_owner(&server).await;
    // A token's check needs the pepper, a secret sealed in the vault.
    let token = server.token("owner@contoso.test", TokenScope::Read).await;
    let before = get(&server, &owner.cookie, "/settings").await;
    let old_id = between(&before, "<code id=\"vault-key-id\">", "<")
        .unwrap()
        .to_owned();
    let key_file = server.app.config().data_dir.join("master.key");
    let old_key = std::fs::read(&key_file).unwrap();
    // Another workspace of the same database is sealed by the same key file.
    let mut other_config = server.app.config().clone();
    other_config.workspace = "other".into();
    let other = behalf_app::App::open(other_config.clone(), behalf_app::AppOptions::default())
        .await
        .unwrap();
    let local = behalf_app::Caller::Local {
        actor: "test".into(),
    };
    let other_owner = other.owner(&local).unwrap();
    other_owner
        .create_admin(
            "o@other.test",
            Role::Owner,
            false,
            Some(&behalf_domain::Secret::new(common::PASSWORD)),
        )
        .await
        .unwrap();
    let other_token = other_owner
        .create_token("o@other.test", "t", TokenScope::Read, None)
        .await
        .unwrap()
        .token;
    other.close().await;

    let ask = post_ok(&server, &owner, "/settings/vault/rotate", &[]).await;
    assert!(ask.contains("Rotate the master key?") && ask.contains("id=\"confirm\""));
    assert_eq!(
        std::fs::read(&key_file).unwrap(),
        old_key,
        "asking changes nothing"
    );

    let done = post_ok(
        &server,
        &owner,
        "/settings/vault/rotate",
        &[("confirmed", "1")],
    )
    .await;
    assert!(
        done.contains("Rotated the master key") && done.contains(&old_id),
        "{done}"
    );
    let new_id = between(&done, "<code id=\"vault-key-id\">", "<")
        .unwrap()
        .to_owned();
    assert_ne!(new_id, old_id);
    assert!(
        done.contains(&format!("wrapped by <code>{new_id}</code>"))
            && !done.contains(&format!("wrapped by <code>{old_id}")),
        "every sealed row names the new key: {done}"
    );
    assert_ne!(
        std::fs::read(&key_file).unwrap(),
        old_key,
        "the key file holds the new key"
    );
    assert!(
        !server
            .app
            .config()
            .data_dir
            .join("master.key.next")
            .exists()
    );

    // This instance goes on opening the vault (tokens are checked with the pepper)...
    let works = reqwest::Client::new()
        .get(server.url("/api/v1/users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(works.status(), 200);
    // ...and the old key opens nothing: an instance started with it cannot read the pepper.
    let old_file = server.app.config().data_dir.join("old.key");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&old_file)
            .unwrap();
        f.write_all(&old_key).unwrap();
    }
    let mut config = server.app.config().clone();
    config.master_key_file = Some(old_file);
    let stale = behalf_app::App::open(config, behalf_app::AppOptions::default())
        .await
        .unwrap();
    assert!(
        stale.token(&token).await.is_err(),
        "the old key still opens the pepper"
    );
    // A restart reads the new key from the file and opens everything.
    let restarted = behalf_app::App::open(
        server.app.config().clone(),
        behalf_app::AppOptions::default(),
    )
    .await
    .unwrap();
    assert!(restarted.token(&token).await.unwrap().is_some());
    let other = behalf_app::App::open(other_config, behalf_app::AppOptions::default())
        .await
        .unwrap();
    assert!(
        other.token(other_token.expose()).await.unwrap().is_some(),
        "the other workspace's rows were re-wrapped too"
    );
    let audit = get(&server, &owner.cookie, "/reports/audit?kind=settings").await;
    assert!(audit.contains("vault.master_key_rotated"));
    server.stop().await;
}

// ---- Directory ----

/// A server whose Graph and login endpoints are the sandbox's, with or without `[entra]`'s app.
async fn server_at(sandbox: &Sandbox, with_app: bool) -> TestServer {
    let (graph, login) = (sandbox.graph_url(), sandbox.login_url());
    let app = with_app.then(|| {
        (
            sandbox.tenant_id().to_string(),
            sandbox.client_id().to_string(),
            sandbox.client_secret().to_owned(),
        )
    });
    TestServer::start_with(move |_, figment| {
        let figment = figment
            .merge(Serialized::default("entra.graph_base_url", graph))
            .merge(Serialized::default("entra.login_base_url", login));
        match app {
            Some((tenant, client, secret)) => figment
                .merge(Serialized::default("entra.tenant_id", tenant))
                .merge(Serialized::default("entra.client_id", client))
                .merge(Serialized::default("entra.client_secret", secret)),
            None => figment,
        }
    })
    .await
}

/// Every byte under the data directory (the SQLite database and its WAL among them).
fn data_dir_bytes(server: &TestServer) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&server.app.config().data_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            out.extend(std::fs::read(path).unwrap_or_default());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_connects_a_tenant_with_a_client_secret_imports_it_and_tests_it() {
    let sandbox = Sandbox::start(SandboxConfig {
        users: 12,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let server = server_at(&sandbox, false).await;
    let (owner, viewer) = viewer_and_owner(&server).await;

    let page = get(&server, &owner.cookie, "/directory").await;
    assert!(page.contains("id=\"connections\"") && page.contains("No directory connection yet"));
    assert!(
        page.contains("id=\"doctor\"") && page.contains("Doctor could not check the tenant"),
        "without an app, doctor says why it did not run: {page}"
    );
    assert!(
        page.contains("admin-consent"),
        "the page says the consent redirect is not offered"
    );

    let tenant = sandbox.tenant_id().to_string();
    let client_id = sandbox.client_id().to_string();
    let secret = sandbox.client_secret().to_owned();
    let form = |name: &'static str, secret: &str| {
        vec![
            ("name", name.to_owned()),
            ("tenant_id", tenant.clone()),
            ("client_id", client_id.clone()),
            ("credential", "secret".to_owned()),
            ("client_secret", secret.to_owned()),
        ]
    };
    let as_refs = |f: &[(&'static str, String)]| -> Vec<(&'static str, String)> { f.to_vec() };

    // A viewer sees the connections but no button, and a post is refused anyway.
    let seen = get(&server, &viewer.cookie, "/directory").await;
    assert!(!seen.contains("id=\"add-tenant-form\"") && !seen.contains("data-action=\"import\""));
    let fields = as_refs(&form("sneaky", &secret));
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    refused(
        post(&server, &viewer, "/directory/connections", &fields).await,
        "directory connections",
    )
    .await;
    // Without the CSRF token, nothing either.
    let forged = client()
        .post(server.url("/directory/connections"))
        .header("cookie", &owner.cookie)
        .form(&fields)
        .send()
        .await
        .unwrap();
    refused(forged, "security token").await;

    // A wrong secret is said now, and nothing is saved.
    let wrong = as_refs(&form("contoso", "not-the-secret"));
    let wrong: Vec<(&str, &str)> = wrong.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = post_ok(&server, &owner, "/directory/connections", &wrong).await;
    assert!(
        page.contains("role=\"alert\"") && page.contains("was not connected"),
        "{page}"
    );
    assert!(page.contains("No directory connection yet"));
    assert!(
        page.contains(&format!("value=\"{tenant}\"")),
        "the form keeps what was typed"
    );
    assert!(!page.contains("not-the-secret"), "but never the secret");

    let right = as_refs(&form("contoso", &secret));
    let right: Vec<(&str, &str)> = right.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = post_ok(&server, &owner, "/directory/connections", &right).await;
    assert!(page.contains("Connected contoso"), "{page}");
    assert!(
        page.contains("data-connection=\"contoso\"")
            && page.contains("its own credential, sealed in the vault")
    );
    assert!(
        page.contains("form class=\"import inline\"") && page.contains("data-action=\"import\"")
    );
    assert!(page.contains("the next import is a full round"), "{page}");
    let dup = post_ok(&server, &owner, "/directory/connections", &right).await;
    assert!(dup.contains("exists already"), "{dup}");
    assert!(
        !data_dir_bytes(&server)
            .windows(secret.len())
            .any(|w| w == secret.as_bytes()),
        "the client secret is nowhere in the database in clear"
    );

    // Import now runs with the connection's own credential and says the counts.
    let page = post_ok(
        &server,
        &owner,
        "/directory/import",
        &[("connection", "contoso"), ("mode", "full")],
    )
    .await;
    let flash = between(&page, "<div id=\"flash\" role=\"status\">", "</div>").unwrap();
    assert!(
        flash.contains("Imported contoso (full round): 12 users (12 new"),
        "{page}"
    );
    assert!(
        page.contains("the next import continues from the last one"),
        "{page}"
    );
    let users = server
        .app
        .reader(&behalf_app::Caller::Local {
            actor: "test".into(),
        })
        .matching_user_ids(&Default::default(), 100)
        .await
        .unwrap();
    assert_eq!(users.len(), 12);
    refused(
        post(
            &server,
            &viewer,
            "/directory/import",
            &[("connection", "contoso")],
        )
        .await,
        "directory connections",
    )
    .await;

    let tested = post_ok(
        &server,
        &owner,
        "/directory/test",
        &[("connection", "contoso")],
    )
    .await;
    assert!(
        tested.contains("contoso answers")
            && tested.contains("UserAuthenticationMethod.ReadWrite.All: register and delete users"),
        "the token's permissions in words: {tested}"
    );
    server.stop().await;
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_findings_are_shown_with_how_to_fix_them() {
    let sandbox = Sandbox::start(SandboxConfig {
        users: 3,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let server = server_at(&sandbox, true).await;
    let (_owner, viewer) = viewer_and_owner(&server).await;
    let page = get(&server, &viewer.cookie, "/directory").await;
    let doctor = page.split("id=\"doctor\"").nth(1).unwrap();
    assert!(doctor.contains("table id=\"doctor-table\""), "{doctor}");
    for check in [
        "permissions",
        "FIDO2 policy",
        "self-service setup",
        "attestation",
        "key restrictions",
    ] {
        assert!(
            doctor.contains(&format!("<td>{check}</td>")),
            "{check} in {doctor}"
        );
    }
    assert!(doctor.contains("How to fix"));
    server.stop().await;
    sandbox.shutdown().await;
}

/// A self-signed RSA certificate with its private key: the sandbox's test fixture.
const APP_PEM: &str = include_str!("../../sandbox/tests/fixtures/app-certificate.pem");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_connected_with_a_certificate_answers_with_it() {
    let mut config = SandboxConfig {
        users: 4,
        ..SandboxConfig::default()
    };
    let certificate = &APP_PEM[..APP_PEM.find("-----BEGIN PRIVATE KEY-----").unwrap()];
    // The first app is the provisioning app; it gets the certificate's public half.
    config.apps[0].certificates.push(certificate.to_owned());
    let sandbox = Sandbox::start(config).await.unwrap();
    let server = server_at(&sandbox, false).await;
    let (owner, _viewer) = viewer_and_owner(&server).await;
    let tenant = sandbox.tenant_id().to_string();
    let client_id = sandbox.client_id().to_string();
    let page = post_ok(
        &server,
        &owner,
        "/directory/connections",
        &[
            ("name", "fabrikam"),
            ("tenant_id", &tenant),
            ("client_id", &client_id),
            ("credential", "certificate"),
            ("certificate", APP_PEM),
        ],
    )
    .await;
    assert!(page.contains("Connected fabrikam"), "{page}");
    let tested = post_ok(
        &server,
        &owner,
        "/directory/test",
        &[("connection", "fabrikam")],
    )
    .await;
    assert!(tested.contains("fabrikam answers"), "{tested}");
    let key = &APP_PEM[APP_PEM.find("-----BEGIN PRIVATE KEY-----").unwrap()..];
    let key_line = key.lines().nth(1).unwrap();
    assert!(
        !data_dir_bytes(&server)
            .windows(key_line.len())
            .any(|w| w == key_line.as_bytes()),
        "the private key is nowhere in the database in clear"
    );

    // Not a certificate: said, nothing saved.
    let bad = post_ok(
        &server,
        &owner,
        "/directory/connections",
        &[
            ("name", "broken"),
            ("tenant_id", &tenant),
            ("client_id", &client_id),
            ("credential", "certificate"),
            ("certificate", "-----BEGIN NOTHING-----"),
        ],
    )
    .await;
    assert!(
        bad.contains("role=\"alert\"") && bad.contains("certificate"),
        "{bad}"
    );
    assert!(!bad.contains("data-connection=\"broken\""));
    server.stop().await;
    sandbox.shutdown().await;
}
