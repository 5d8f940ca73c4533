//! Shared helpers: start an in-process sandbox on port 0 and talk to it with reqwest.
#![allow(dead_code)] // helpers shared by modules that each use a subset

use behalf_sandbox::{Sandbox, SandboxConfig};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

pub struct Env {
    pub sb: Sandbox,
    pub http: Client,
    pub token: String,
}

pub fn client() -> Client {
    Client::builder()
        .build()
        .unwrap_or_else(|e| panic!("client: {e}"))
}

pub async fn start_with(cfg: SandboxConfig) -> Env {
    let sb = Sandbox::start(cfg)
        .await
        .unwrap_or_else(|e| panic!("start: {e}"));
    let http = client();
    let token =
        client_credentials(&http, &sb, &sb.client_id().to_string(), sb.client_secret()).await;
    Env { sb, http, token }
}

pub async fn start(users: usize) -> Env {
    start_with(SandboxConfig {
        users,
        ..SandboxConfig::default()
    })
    .await
}

pub async fn client_credentials(http: &Client, sb: &Sandbox, id: &str, secret: &str) -> String {
    let r = http
        .post(sb.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap_or_else(|e| panic!("token: {e}"));
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap_or_else(|e| panic!("{e}"));
    v["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token in {v}"))
        .to_string()
}

impl Env {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.sb.graph_url(), path)
    }
    pub async fn get(&self, path: &str) -> Response {
        self.get_with(path, &self.token).await
    }
    pub async fn get_with(&self, path: &str, token: &str) -> Response {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            self.url(path)
        };
        self.http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }
    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Response {
        self.send_with(method, path, body, &self.token).await
    }
    pub async fn send_with(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        token: &str,
    ) -> Response {
        let mut rb = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        rb.send().await.unwrap_or_else(|e| panic!("{path}: {e}"))
    }
    /// A sandbox-only endpoint (no token).
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Value) -> Response {
        self.http
            .request(method, format!("{}{}", self.sb.base_url(), path))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }
    pub async fn state(&self) -> Value {
        json_of(
            self.http
                .get(format!("{}/sandbox/state", self.sb.base_url()))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .await
    }
    pub async fn mint(&self, body: Value) -> String {
        let v = json_of(
            self.admin(reqwest::Method::POST, "/sandbox/token", body)
                .await,
        )
        .await;
        v["access_token"].as_str().unwrap_or_default().to_string()
    }
    pub async fn advance(&self, seconds: i64) {
        let r = self
            .admin(
                reqwest::Method::POST,
                "/sandbox/clock/advance",
                json!({"seconds": seconds}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    /// A user's id by UPN.
    pub async fn user_id(&self, upn: &str) -> String {
        let v = json_of(self.get(&format!("/v1.0/users/{upn}")).await).await;
        v["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {v}"))
            .to_string()
    }
}

pub async fn json_of(r: Response) -> Value {
    r.json().await.unwrap_or_else(|e| panic!("json: {e}"))
}

/// Asserts a Graph error: status, `error.code`, and request ids in `innerError` matching the headers.
pub async fn assert_graph_error(r: Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status().as_u16(), status, "status");
    let rid = r
        .headers()
        .get("request-id")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    assert!(rid.is_some(), "request-id header");
    assert!(
        r.headers().get("client-request-id").is_some(),
        "client-request-id header"
    );
    let v = json_of(r).await;
    assert_eq!(v["error"]["code"], json!(code), "error body: {v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "message: {v}"
    );
    assert_eq!(
        v["error"]["innerError"]["request-id"]
            .as_str()
            .map(String::from),
        rid,
        "innerError.request-id: {v}"
    );
    assert!(v["error"]["innerError"]["client-request-id"].is_string());
    assert!(v["error"]["innerError"]["date"].is_string());
    v
}

/// Asserts an AAD token-endpoint error.
pub async fn assert_aad_error(r: Response, status: u16, error: &str, code: u64) -> Value {
    assert_eq!(r.status().as_u16(), status);
    let v = json_of(r).await;
    assert_eq!(v["error"], json!(error), "{v}");
    assert!(
        v["error_codes"]
            .as_array()
            .is_some_and(|c| c.contains(&json!(code))),
        "{v}"
    );
    assert!(
        v["error_description"]
            .as_str()
            .is_some_and(|d| d.starts_with(&format!("AADSTS{code}"))),
        "{v}"
    );
    assert!(
        v["trace_id"].is_string() && v["correlation_id"].is_string() && v["timestamp"].is_string(),
        "{v}"
    );
    v
}
