//! What Behalf Key's end-to-end tests share: a tenant whose users got their passkeys through
//! Graph, `behalf serve` on it, and the owner's API (users by UPN, pairing codes).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::tenant::Tenant;

pub const OWNER: &str = "owner@contoso.example";

/// The owner's API token and the calls the tests make with it.
pub struct Admin {
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
}

impl Admin {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Behalf's id of the user with this UPN.
    pub async fn user_id(&self, upn: &str) -> String {
        let (status, page) = self
            .call(Method::GET, &format!("/api/v1/users?q={upn}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["upn"] == upn)
            .unwrap_or_else(|| panic!("{upn} in {page}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A pairing code for a user device.
    pub async fn pairing_code(&self, user_id: &str) -> String {
        self.pairing_code_as(user_id, "user").await
    }

    /// A pairing code for a device of `role` (`user` or `admin`).
    pub async fn pairing_code_as(&self, user_id: &str, role: &str) -> String {
        let (status, issued) = self
            .call(
                Method::POST,
                &format!("/api/v1/users/{user_id}/key-pairings"),
                Some(json!({"role": role})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{issued}");
        issued["code"].as_str().unwrap().to_owned()
    }
}

/// Fails the test with the command's stderr unless it succeeded.
pub fn ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `tenant`'s users imported and given a passkey through Graph, an owner with an API token,
/// `behalf serve` on the tenant (with `env` besides; no directory sync), and the UPNs of the
/// users who got a passkey.
pub async fn serve_provisioned(
    tenant: &Tenant,
    env: &[(&str, String)],
) -> (super::Server, Admin, Vec<String>) {
    ok(&tenant.run(&["import"]).await);
    ok(&tenant.run(&["provision", "--automatic"]).await);
    let password_file = tenant.data.path().join("password.txt");
    std::fs::write(&password_file, "correct horse battery staple\n").unwrap();
    ok(&tenant
        .run(&[
            "admin",
            "create",
            "--email",
            OWNER,
            "--role",
            "owner",
            "--password-file",
            password_file.to_str().unwrap(),
        ])
        .await);
    let out = tenant
        .run(&[
            "token", "create", "--admin", OWNER, "--name", "e2e", "--scope", "admin",
        ])
        .await;
    ok(&out);
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let mut command = tenant.behalf_std(&[]);
    command.env("BEHALF_SYNC__INTERVAL_SECS", "0");
    for (key, value) in env {
        command.env(key, value);
    }
    let server = super::start_server(command).await;
    let admin = Admin {
        base: server.base_url.clone(),
        token,
        http: reqwest::Client::new(),
    };
    let upns: Vec<String> = super::tenant::methods_per_user(&tenant.state().await)
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(upn, _)| upn)
        .collect();
    assert!(
        upns.len() >= 2,
        "Behalf registered passkeys through Graph: {upns:?}"
    );
    (server, admin, upns)
}
