//! Admin sign-in with Entra ID end to end: the server against the sandbox tenant, in process.
//! start → the tenant's authorize endpoint (login_hint in place of a password page) → callback →
//! a session whose role follows the user's groups.

mod common;

use behalf_sandbox::{SIGNIN_CLIENT_ID, SIGNIN_CLIENT_SECRET, Sandbox, SandboxConfig};
use figment::providers::Serialized;
use reqwest::{Client, Response};
use serde_json::Value;

use common::TestServer;

fn no_redirects() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A server signing admins in at `sandbox`, with `editor_groups` mapped.
async fn server_for(sandbox: &Sandbox, editor_groups: Vec<String>) -> TestServer {
    let login = sandbox.login_url();
    let tenant = sandbox.tenant_id().to_string();
    TestServer::start_with(move |addr, figment| {
        figment
            .merge(Serialized::default("entra.login_base_url", login))
            .merge(Serialized::default("oidc.enabled", true))
            .merge(Serialized::default(
                "oidc.client_id",
                SIGNIN_CLIENT_ID.to_string(),
            ))
            .merge(Serialized::default(
                "oidc.client_secret",
                SIGNIN_CLIENT_SECRET,
            ))
            .merge(Serialized::default("oidc.tenant_id", tenant))
            .merge(Serialized::default(
                "oidc.redirect_url",
                format!("http://{addr}/auth/oidc/callback"),
            ))
            .merge(Serialized::default("oidc.editor_groups", editor_groups))
    })
    .await
}

/// A user of the first group with members, and the group's id (read through Graph).
async fn group_member(sandbox: &Sandbox) -> (String, String) {
    let token = sandbox.app_token().unwrap();
    let http = Client::new();
    let get = |path: String| {
        let http = http.clone();
        let token = token.clone();
        async move {
            http.get(format!("{}{path}", sandbox.graph_url()))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let groups = get("/v1.0/groups?$select=id".into()).await;
    for g in groups["value"].as_array().unwrap() {
        let id = g["id"].as_str().unwrap().to_owned();
        let members = get(format!("/v1.0/groups/{id}/members")).await;
        let enabled = members["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["accountEnabled"] != false);
        if let Some(m) = enabled {
            return (m["userPrincipalName"].as_str().unwrap().to_owned(), id);
        }
    }
    panic!("no group has an enabled member");
}

fn set_cookie(r: &Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn location(r: &Response) -> String {
    assert_eq!(r.status(), 302, "{r:?}");
    r.headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

/// start → authorize at the tenant → the callback URL, with the state cookie.
async fn through_the_tenant(server: &TestServer, upn: &str) -> (String, String) {
    let http = no_redirects();
    let started = http
        .get(server.url(&format!("/auth/oidc/start?login_hint={upn}")))
        .send()
        .await
        .unwrap();
    let authorize = location(&started);
    let state_cookie = set_cookie(&started, "behalf_oidc_state").expect("a state cookie");
    let at_tenant = http.get(&authorize).send().await.unwrap();
    let callback = location(&at_tenant);
    assert!(
        callback.starts_with(&server.url("/auth/oidc/callback?code=")),
        "{callback}"
    );
    (callback, state_cookie)
}

async fn call_back(callback: &str, state_cookie: &str) -> Response {
    no_redirects()
        .get(callback)
        .header("cookie", format!("behalf_oidc_state={state_cookie}"))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_user_in_a_mapped_group_signs_in_with_the_mapped_role() {
    let sandbox = Sandbox::start(SandboxConfig {
        users: 30,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let (upn, group) = group_member(&sandbox).await;
    let server = server_for(&sandbox, vec![group]).await;

    let (callback, state_cookie) = through_the_tenant(&server, &upn).await;
    let signed_in = call_back(&callback, &state_cookie).await;
    // A page of Behalf's own moves on to `/` (a redirect would lose the SameSite=Strict cookie).
    assert_eq!(signed_in.status(), 200);
    let session = set_cookie(&signed_in, "behalf_session").expect("a session cookie");
    assert!(set_cookie(&signed_in, "behalf_csrf").is_some_and(|c| c.starts_with("bhc_")));

    let me: Value = Client::new()
        .get(server.url("/api/v1/auth/me"))
        .header("cookie", format!("behalf_session={session}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["admin"]["email"], upn.to_lowercase(), "{me}");
    assert_eq!(me["admin"]["role"], "admin", "{me}");
    assert_eq!(me["via"], "session");
    assert_eq!(me["may_provision"], true, "editor_groups give edit-users");
    assert_eq!(me["is_owner"], false);

    // The same callback again: the sign-in was used up.
    let again = call_back(&callback, &state_cookie).await;
    assert_eq!(again.status(), 400);
    assert!(set_cookie(&again, "behalf_session").is_none());

    server.stop().await;
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_user_in_no_mapped_group_a_bad_code_and_a_foreign_browser_are_refused() {
    let sandbox = Sandbox::start(SandboxConfig {
        users: 10,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let server = server_for(&sandbox, vec![uuid::Uuid::new_v4().to_string()]).await;
    let upn = sandbox.admin_upn();

    let (callback, state_cookie) = through_the_tenant(&server, &upn).await;
    let refused = call_back(&callback, &state_cookie).await;
    assert_eq!(refused.status(), 403);
    assert!(set_cookie(&refused, "behalf_session").is_none());
    let body: Value = refused.json().await.unwrap();
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("groups") && detail.contains("roles"),
        "{body}"
    );

    // A code the tenant never gave (or one tampered with) is refused by the tenant.
    let (callback, state_cookie) = through_the_tenant(&server, &upn).await;
    let url = reqwest::Url::parse(&callback).unwrap();
    let state: String = url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let bad = call_back(
        &server.url(&format!(
            "/auth/oidc/callback?code=not-a-code&state={state}"
        )),
        &state_cookie,
    )
    .await;
    assert_ne!(bad.status(), 302);
    assert!(set_cookie(&bad, "behalf_session").is_none());
    let body: Value = bad.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("AADSTS70000")),
        "{body}"
    );

    // A callback without the state cookie of the browser that started it.
    let (callback, _) = through_the_tenant(&server, &upn).await;
    let foreign = call_back(&callback, "someone-elses-state").await;
    assert_eq!(foreign.status(), 400);
    assert!(set_cookie(&foreign, "behalf_session").is_none());

    server.stop().await;
    sandbox.shutdown().await;
}

#[tokio::test]
async fn the_routes_are_not_there_without_oidc() {
    let server = TestServer::start().await;
    let http = no_redirects();
    for path in ["/auth/oidc/start", "/auth/oidc/callback?code=x&state=y"] {
        let r = http.get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    server.stop().await;
}
