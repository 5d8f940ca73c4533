//! The device authorization grant (RFC 8628) as the Microsoft identity platform implements it
//! (<https://learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code>): post to
//! `/devicecode`, show the user code and the verification URL, then poll `/token` every
//! `interval` seconds. `authorization_pending` means keep polling; `slow_down` means add 5 s to
//! the interval (RFC 8628 §3.5); `expired_token`, `authorization_declined` and `bad_verification_code`
//! end the flow.

use std::time::Duration;

use behalf_domain::Secret;
use serde::Deserialize;

use crate::auth::{DelegatedTokens, now_unix, post_token};
use crate::error::GraphError;

/// What the user must do to approve the sign-in.
#[derive(Debug, Clone)]
pub struct DeviceCodeStart {
    pub user_code: String,
    pub verification_uri: String,
    /// Microsoft's ready-made sentence for the user.
    pub message: Option<String>,
    pub expires_in: Duration,
    pub interval: Duration,
    device_code: Secret,
}

/// One device-code sign-in against `{login_base_url}/{tenant}/oauth2/v2.0/…`.
#[derive(Debug, Clone)]
pub struct DeviceCodeLogin {
    http: reqwest::Client,
    base: String,
    client_id: String,
    scope: String,
}

impl DeviceCodeLogin {
    /// `scope` is e.g. `https://graph.microsoft.com/.default offline_access`.
    pub fn new(
        http: reqwest::Client,
        login_base_url: &str,
        tenant: &str,
        client_id: &str,
        scope: &str,
    ) -> DeviceCodeLogin {
        DeviceCodeLogin {
            http,
            base: format!(
                "{}/{}/oauth2/v2.0",
                login_base_url.trim_end_matches('/'),
                tenant
            ),
            client_id: client_id.into(),
            scope: scope.into(),
        }
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.base)
    }

    pub async fn start(&self) -> Result<DeviceCodeStart, GraphError> {
        #[derive(Deserialize)]
        struct Answer {
            device_code: String,
            user_code: String,
            #[serde(alias = "verification_url")]
            verification_uri: String,
            expires_in: u64,
            #[serde(default = "five")]
            interval: u64,
            message: Option<String>,
        }
        fn five() -> u64 {
            5
        }
        let url = format!("{}/devicecode", self.base);
        let resp = self
            .http
            .post(&url)
            .form(&[
                ("client_id", self.client_id.as_str()),
                ("scope", &self.scope),
            ])
            .send()
            .await
            .map_err(|e| crate::auth::transport(&url, e))?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| crate::auth::transport(&url, e))?;
        if !(200..300).contains(&status) {
            return Err(GraphError::from_token_answer(status, &body));
        }
        let a: Answer =
            serde_json::from_slice(&body).map_err(|e| GraphError::decode("/devicecode", e))?;
        Ok(DeviceCodeStart {
            user_code: a.user_code,
            verification_uri: a.verification_uri,
            message: a.message,
            expires_in: Duration::from_secs(a.expires_in),
            interval: Duration::from_secs(a.interval.max(1)),
            device_code: Secret::new(a.device_code),
        })
    }

    /// Polls until the user approves (tokens), declines or the code expires (errors).
    pub async fn wait(&self, start: &DeviceCodeStart) -> Result<DelegatedTokens, GraphError> {
        let url = self.token_url();
        let deadline = tokio::time::Instant::now() + start.expires_in;
        let mut interval = start.interval;
        loop {
            // Never poll before `interval` has passed: the endpoint answers slow_down otherwise.
            tokio::time::sleep(interval).await;
            let form = [
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", self.client_id.as_str()),
                ("device_code", start.device_code.expose()),
            ];
            match post_token(&self.http, &url, &form).await {
                Ok(answer) => {
                    return Ok(DelegatedTokens {
                        expires_at: now_unix() + answer.lifetime_secs(),
                        access_token: Secret::new(answer.access_token),
                        refresh_token: answer.refresh_token.map(Secret::new),
                    });
                }
                Err(e) => match e.code() {
                    Some("authorization_pending") => {}
                    Some("slow_down") => interval += Duration::from_secs(5),
                    _ => return Err(e),
                },
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(GraphError::Token {
                    status: 400,
                    error: "expired_token".into(),
                    description: "The device code expired before the sign-in was approved.".into(),
                    trace_id: None,
                });
            }
        }
    }
}
