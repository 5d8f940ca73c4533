//! A sandbox tenant in the test process, reached over HTTP, and `behalf` configured for it.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use behalf_authenticator::{Aaguid, Attestation, Authenticator, AuthenticatorConfig};
use behalf_sandbox::{Knobs, Sandbox, SandboxConfig};
use behalf_vault::{MasterKey, Vault};
use futures::StreamExt as _;
use serde_json::{Value, json};

pub struct Tenant {
    pub sandbox: Sandbox,
    pub data: tempfile::TempDir,
    pub http: reqwest::Client,
}
impl Tenant {
    pub async fn start(users: usize, knobs: Knobs) -> Tenant {
        Tenant::start_with(SandboxConfig {
            users,
            knobs,
            ..SandboxConfig::default()
        })
        .await
    }

    /// A tenant seeded as `config` says (groups, seed, …).
    pub async fn start_with(config: SandboxConfig) -> Tenant {
        let sandbox = Sandbox::start(config).await.expect("sandbox starts");
        Tenant {
            sandbox,
            data: tempfile::tempdir().unwrap(),
            http: reqwest::Client::new(),
        }
    }

    /// `behalf` configured for this tenant and data directory through the environment.
    pub fn behalf(&self, args: &[&str]) -> tokio::process::Command {
        tokio::process::Command::from(self.behalf_std(args))
    }

    /// As [`Tenant::behalf`], for [`super::start_server`].
    pub fn behalf_std(&self, args: &[&str]) -> std::process::Command {
        let mut command = super::behalf();
        command
            .env("BEHALF_DATA_DIR", self.data.path())
            .env(
                "BEHALF_ENTRA__TENANT_ID",
                self.sandbox.tenant_id().to_string(),
            )
            .env(
                "BEHALF_ENTRA__CLIENT_ID",
                self.sandbox.client_id().to_string(),
            )
            .env("BEHALF_ENTRA__CLIENT_SECRET", self.sandbox.client_secret())
            .env("BEHALF_ENTRA__GRAPH_BASE_URL", self.sandbox.graph_url())
            .env("BEHALF_ENTRA__LOGIN_BASE_URL", self.sandbox.login_url())
            .current_dir(self.data.path())
            .args(args)
            .stdin(Stdio::null());
        command
    }

    pub async fn run(&self, args: &[&str]) -> std::process::Output {
        self.behalf(args).output().await.expect("behalf runs")
    }

    pub async fn state(&self) -> Value {
        let url = format!("{}/sandbox/state", self.sandbox.base_url());
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Every object of a Graph collection at the sandbox (`path` after `/v1.0`), read as the
    /// sandbox's app, following `@odata.nextLink`.
    pub async fn graph_all(&self, path: &str) -> Vec<Value> {
        let token = self.sandbox.app_token().unwrap();
        let mut url = Some(format!("{}/v1.0{path}", self.sandbox.graph_url()));
        let mut out = Vec::new();
        while let Some(next) = url {
            let page: Value = self
                .http
                .get(&next)
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            out.extend(page["value"].as_array().unwrap().iter().cloned());
            url = page["@odata.nextLink"].as_str().map(str::to_owned);
        }
        out
    }

    /// Every user of the tenant: (UPN, enabled).
    pub async fn users(&self) -> Vec<(String, bool)> {
        self.graph_all("/users?$select=userPrincipalName,accountEnabled&$top=999")
            .await
            .iter()
            .map(|u| {
                (
                    u["userPrincipalName"].as_str().unwrap().to_owned(),
                    u["accountEnabled"].as_bool().unwrap(),
                )
            })
            .collect()
    }

    /// Sends a Graph request as the sandbox's app; panics unless it succeeds.
    pub async fn graph(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let token = self.sandbox.app_token().unwrap();
        let mut request = self
            .http
            .request(method, format!("{}/v1.0{path}", self.sandbox.graph_url()))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Polls `/sandbox/state` until `done` holds for it (or fails the test after `within`,
    /// saying `what` was awaited). Returns that state.
    pub async fn wait_for_state(
        &self,
        what: &str,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let state = self.state().await;
            if done(&state) {
                return state;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; sandbox state: {state}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn write_csv(&self, name: &str, rows: &[String]) -> String {
        let path = self.data.path().join(name);
        std::fs::write(&path, format!("UPN\n{}\n", rows.join("\n"))).unwrap();
        path.to_str().unwrap().to_owned()
    }

    /// Signs each user in through the sandbox with the passkey Behalf holds for them.
    pub async fn sign_in_all(&self, upns: &[String]) -> usize {
        let url = behalf_store::sqlite_url_for(self.data.path());
        self.sign_in_all_from(&url, upns).await
    }

    /// As [`Tenant::sign_in_all`], with Behalf's database at `store_url`.
    pub async fn sign_in_all_from(&self, store_url: &str, upns: &[String]) -> usize {
        let store = behalf_store::Store::connect(store_url).await.unwrap();
        let workspace = store.ensure_workspace("default").await.unwrap();
        let key = MasterKey::load(&self.data.path().join("master.key")).unwrap();
        let vault = Vault::new(store, workspace.id, key);
        // Signing needs no attestation; the AAGUID only matters at registration.
        let config = AuthenticatorConfig {
            aaguid: Aaguid([0; 16]),
            attestation: Attestation::None,
        };
        let authenticator = Authenticator::new(config, vault);
        let base = self.sandbox.base_url();
        futures::stream::iter(upns)
            .map(|upn| {
                let (authenticator, http, base) = (&authenticator, &self.http, &base);
                async move {
                    let options: Value = http
                        .post(format!("{base}/sandbox/signin/begin"))
                        .json(&json!({"upn": upn}))
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    let assertion = authenticator
                        .get_assertion_json(&options.to_string())
                        .await
                        .unwrap();
                    let answer = http
                        .post(format!("{base}/sandbox/signin/finish"))
                        .json(&assertion.response.to_json())
                        .send()
                        .await
                        .unwrap();
                    answer.status().is_success()
                }
            })
            .buffer_unordered(16)
            .filter(|ok| std::future::ready(*ok))
            .count()
            .await
    }
}

pub fn methods_per_user(state: &Value) -> BTreeMap<String, u64> {
    state["fido2MethodsPerUser"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect()
}
