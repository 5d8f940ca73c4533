//! Every operation in the OpenAPI document is walked, so a new route cannot escape these checks:
//! anonymous callers get 401; viewers and `read` tokens cannot change anything; an admin without
//! edit-users cannot provision; only owners manage admins and tokens; a cookie-authenticated
//! request that changes state without its CSRF token is refused.

mod common;

use behalf_domain::{Role, TokenScope};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use common::TestServer;

/// One operation of the document.
#[derive(Debug)]
struct Operation {
    method: Method,
    path: String,
    tag: String,
    public: bool,
}

impl Operation {
    fn changes_state(&self) -> bool {
        self.method != Method::GET
    }

    /// The URL with every `{param}` filled with an id that names nothing.
    fn url(&self, server: &TestServer) -> String {
        let mut path = String::new();
        let mut rest = self.path.as_str();
        while let Some(start) = rest.find('{') {
            path.push_str(&rest[..start]);
            let end = rest[start..].find('}').unwrap() + start;
            path.push_str(&uuid::Uuid::now_v7().to_string());
            rest = &rest[end + 1..];
        }
        path.push_str(rest);
        server.url(&path)
    }
}

fn operations(doc: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let method: Method = method.to_uppercase().parse().unwrap();
            // `security: [{}]` is the document's word for "no credentials needed".
            let public = op["security"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
            });
            out.push(Operation {
                method,
                path: path.clone(),
                tag: op["tags"][0].as_str().unwrap_or_default().to_owned(),
                public,
            });
        }
    }
    out
}

/// Who is calling.
#[derive(Debug, Clone)]
enum As {
    Anonymous,
    Bearer(String),
    /// A session cookie, with or without its CSRF token.
    Session {
        cookie: String,
        csrf: Option<String>,
    },
}

async fn call(server: &TestServer, op: &Operation, who: &As) -> (StatusCode, Value) {
    let client = reqwest::Client::new();
    let mut request = client.request(op.method.clone(), op.url(server));
    request = match who {
        As::Anonymous => request,
        As::Bearer(token) => request.bearer_auth(token),
        As::Session { cookie, csrf } => {
            let r = request.header("cookie", format!("behalf_session={cookie}"));
            match csrf {
                Some(c) => r.header("x-csrf-token", c),
                None => r,
            }
        }
    };
    if op.changes_state() {
        request = request.json(&serde_json::json!({}));
    }
    let answer = request.send().await.unwrap();
    let status = answer.status();
    let problem = answer
        .headers()
        .get("content-type")
        .is_some_and(|c| c.as_bytes().starts_with(b"application/problem+json"));
    let body: Value = answer.json().await.unwrap_or(Value::Null);
    if status.is_client_error() {
        assert!(
            problem,
            "{} {} answered {status} without a problem document",
            op.method, op.path
        );
    }
    (status, body)
}

/// Which capability an operation needs beyond being signed in.
#[derive(Debug, PartialEq, Eq)]
enum Needs {
    Read,
    Provision,
    Operate,
    Owner,
}

fn needs(op: &Operation) -> Needs {
    match (op.tag.as_str(), op.changes_state()) {
        ("admins", _) => Needs::Owner,
        ("directory", true) | ("scim", _) => Needs::Operate,
        ("users" | "jobs", true) => Needs::Provision,
        // Signing out and approving one's own CLI sign-in need only a signed-in caller.
        _ => Needs::Read,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_in_the_document_checks_who_is_calling() {
    let server = TestServer::start().await;
    server.admin("owner@example.com", Role::Owner, true).await;
    server.admin("editor@example.com", Role::Admin, true).await;
    server.admin("admin@example.com", Role::Admin, false).await;
    server
        .admin("viewer@example.com", Role::Viewer, false)
        .await;
    let owner_read = server.token("owner@example.com", TokenScope::Read).await;
    let owner_provision = server
        .token("owner@example.com", TokenScope::Provision)
        .await;
    let editor = server.token("editor@example.com", TokenScope::Admin).await;
    let admin = server.token("admin@example.com", TokenScope::Admin).await;
    let viewer = server.token("viewer@example.com", TokenScope::Admin).await;
    let (owner_cookie, owner_csrf) = server.sign_in("owner@example.com").await;
    let (viewer_cookie, viewer_csrf) = server.sign_in("viewer@example.com").await;

    let doc: Value = reqwest::get(server.url("/api/v1/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let ops = operations(&doc);
    assert!(
        ops.len() >= 30,
        "the document lists {} operations",
        ops.len()
    );
    let public: Vec<_> = ops
        .iter()
        .filter(|o| o.public)
        .map(|o| o.path.as_str())
        .collect();
    assert_eq!(
        public,
        [
            "/api/v1/auth/device",
            "/api/v1/auth/device/token",
            "/api/v1/auth/login",
            "/api/v1/auth/setup"
        ],
        "only these operations may be called without credentials"
    );

    let refused = |status: StatusCode| status == StatusCode::FORBIDDEN;
    let mut checked = 0;
    for op in ops.iter().filter(|o| !o.public) {
        let what = format!("{} {}", op.method, op.path);
        let (status, _) = call(&server, op, &As::Anonymous).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "anonymous {what}");
        let (status, _) = call(&server, op, &As::Bearer("bht_not-a-token".into())).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "unknown token {what}");

        let need = needs(op);
        if op.changes_state() {
            for (who, caller) in [("viewer", &viewer), ("read token", &owner_read)] {
                if need == Needs::Read {
                    continue;
                }
                let (status, body) = call(&server, op, &As::Bearer(caller.clone())).await;
                assert!(refused(status), "{who} {what}: {status} {body}");
            }
            // Without the CSRF token a session cannot change anything; with it, the role decides.
            let (status, body) = call(
                &server,
                op,
                &As::Session {
                    cookie: owner_cookie.clone(),
                    csrf: None,
                },
            )
            .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "session without CSRF {what}");
            assert_eq!(body["type"], "https://behalf.dev/problems/csrf", "{what}");
            if need != Needs::Read {
                let (status, _) = call(
                    &server,
                    op,
                    &As::Session {
                        cookie: viewer_cookie.clone(),
                        csrf: Some(viewer_csrf.clone()),
                    },
                )
                .await;
                assert!(refused(status), "viewer session {what}: {status}");
            }
        }
        match need {
            Needs::Provision => {
                let (status, _) = call(&server, op, &As::Bearer(admin.clone())).await;
                assert!(refused(status), "admin without edit-users {what}: {status}");
            }
            Needs::Owner => {
                for caller in [&editor, &admin, &owner_provision] {
                    let (status, _) = call(&server, op, &As::Bearer(caller.clone())).await;
                    assert!(refused(status), "non-owner {what}: {status}");
                }
            }
            Needs::Operate => {
                let (status, _) = call(&server, op, &As::Bearer(owner_provision.clone())).await;
                assert!(refused(status), "provision-scoped token {what}: {status}");
            }
            Needs::Read => {}
        }
        // Whoever may, gets past the checks (here the answer is whatever the empty workspace
        // says: not found, not configured, a bad body), never 401 or 403.
        let allowed = match need {
            Needs::Owner | Needs::Operate => As::Bearer(editor.clone()),
            Needs::Provision => As::Bearer(owner_provision.clone()),
            Needs::Read => As::Session {
                cookie: owner_cookie.clone(),
                csrf: Some(owner_csrf.clone()),
            },
        };
        let allowed = if need == Needs::Owner {
            As::Session {
                cookie: owner_cookie.clone(),
                csrf: Some(owner_csrf.clone()),
            }
        } else {
            allowed
        };
        if op.path == "/api/v1/auth/logout" {
            continue; // would end the session the rest of the walk uses
        }
        let (status, body) = call(&server, op, &allowed).await;
        assert!(
            status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
            "allowed caller refused {what}: {status} {body}"
        );
        assert!(
            !body.to_string().to_lowercase().contains("sqlite")
                && !body.to_string().contains("SELECT "),
            "{what} leaks database text: {body}"
        );
        checked += 1;
    }
    assert!(checked >= 25, "checked {checked}");
    server.stop().await;
}

#[tokio::test]
async fn sign_in_is_rate_limited_per_account_with_a_wait_to_show() {
    let server = TestServer::start().await;
    server.admin("owner@example.com", Role::Owner, true).await;
    let client = reqwest::Client::new();
    let attempt = |password: &'static str| {
        client
            .post(server.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"email": "owner@example.com", "password": password}))
            .send()
    };
    for _ in 0..5 {
        assert_eq!(attempt("wrong password!!").await.unwrap().status(), 401);
    }
    let locked = attempt(common::PASSWORD).await.unwrap();
    assert_eq!(
        locked.status(),
        429,
        "even the right password waits out the lock"
    );
    let wait: u64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    let body: Value = locked.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("try again in {wait} s")),
        "{body}"
    );
    server.stop().await;
}
