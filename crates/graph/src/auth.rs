//! OAuth 2.0 against the Microsoft identity platform: client credentials (secret or certificate
//! assertion) for unattended runs, and a delegated token from a device-code sign-in with refresh.
//!
//! Tokens are cached and renewed [`REFRESH_MARGIN`] before they expire (Entra's access tokens
//! live 60–90 minutes, `expires_in` in the answer), and once more when Graph answers 401 anyway
//! (a token revoked or expired early, a clock off).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use behalf_domain::Secret;
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::cert::CertificateCredential;
use crate::error::GraphError;

/// Renew this long before the token's expiry.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// The scope a client-credentials token asks for: every application permission granted to the app.
pub(crate) fn default_scope(graph_base_url: &str) -> String {
    // National clouds have their own Graph audience (graph.microsoft.us, …); the sandbox answers
    // for the global one. `.default` of the configured Graph host is what Microsoft documents.
    let host = graph_base_url.trim_end_matches('/');
    if host.starts_with("https://") {
        format!("{host}/.default")
    } else {
        "https://graph.microsoft.com/.default".into()
    }
}

/// How the client authenticates.
#[derive(Debug, Clone)]
pub enum Credential {
    /// Client credentials with a client secret.
    ClientSecret { client_id: String, secret: Secret },
    /// Client credentials with a certificate (JWT client assertion).
    Certificate {
        client_id: String,
        certificate: Arc<CertificateCredential>,
    },
    /// A delegated sign-in (device code): the access token and, to renew it, the refresh token.
    Delegated {
        client_id: String,
        tokens: DelegatedTokens,
    },
    /// A bearer token obtained elsewhere; never renewed.
    AccessToken(Secret),
}

/// What a delegated sign-in yields.
#[derive(Debug, Clone)]
pub struct DelegatedTokens {
    pub access_token: Secret,
    /// Unix seconds.
    pub expires_at: i64,
    /// Rotates on every refresh: persist the latest one (see [`crate::GraphClient::delegated_tokens`]).
    pub refresh_token: Option<Secret>,
}

pub(crate) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The permissions a token carries: `roles` (application) or `scp` (delegated), read from its
/// payload. The token is not verified here — Graph does that; this only explains what it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TokenPermissions {
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    /// The signed-in user for a delegated token.
    pub upn: Option<String>,
    pub tenant_id: Option<String>,
    pub app_id: Option<String>,
}

impl TokenPermissions {
    /// Parses a JWT's payload; `None` when the token is not a JWT (Microsoft may issue opaque ones).
    pub fn from_jwt(token: &str) -> Option<TokenPermissions> {
        #[derive(Deserialize)]
        struct Claims {
            #[serde(default)]
            roles: Vec<String>,
            scp: Option<String>,
            upn: Option<String>,
            tid: Option<String>,
            appid: Option<String>,
        }
        let payload = token.split('.').nth(1)?;
        let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
        let c: Claims = serde_json::from_slice(&bytes).ok()?;
        Some(TokenPermissions {
            roles: c.roles,
            scopes: c
                .scp
                .map(|s| {
                    s.split(' ')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
            upn: c.upn,
            tenant_id: c.tid,
            app_id: c.appid,
        })
    }

    /// Whether any of `names` is granted, as an application role or a delegated scope.
    pub fn has_any(&self, names: &[&str]) -> bool {
        self.roles
            .iter()
            .chain(self.scopes.iter())
            .any(|p| names.iter().any(|n| p.eq_ignore_ascii_case(n)))
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct TokenAnswer {
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<serde_json::Value>,
    pub refresh_token: Option<String>,
}

impl TokenAnswer {
    /// `expires_in` is a number per RFC 6749, a string in some older AAD answers.
    pub fn lifetime_secs(&self) -> i64 {
        match &self.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_i64().unwrap_or(3599),
            Some(serde_json::Value::String(s)) => s.parse().unwrap_or(3599),
            _ => 3599,
        }
    }
}

#[derive(Debug)]
struct Cached {
    token: Secret,
    expires_at: i64,
}

#[derive(Debug)]
struct TokenState {
    cached: Option<Cached>,
    refresh_token: Option<Secret>,
}

/// Gets, caches and renews access tokens for one credential.
#[derive(Debug)]
pub(crate) struct TokenProvider {
    credential: Credential,
    token_url: String,
    scope: String,
    http: reqwest::Client,
    state: Mutex<TokenState>,
}

impl TokenProvider {
    pub fn new(
        credential: Credential,
        token_url: String,
        scope: String,
        http: reqwest::Client,
    ) -> TokenProvider {
        let state = match &credential {
            Credential::Delegated { tokens, .. } => TokenState {
                cached: Some(Cached {
                    token: tokens.access_token.clone(),
                    expires_at: tokens.expires_at,
                }),
                refresh_token: tokens.refresh_token.clone(),
            },
            Credential::AccessToken(t) => TokenState {
                cached: Some(Cached {
                    token: t.clone(),
                    expires_at: i64::MAX,
                }),
                refresh_token: None,
            },
            _ => TokenState {
                cached: None,
                refresh_token: None,
            },
        };
        TokenProvider {
            credential,
            token_url,
            scope,
            http,
            state: Mutex::new(state),
        }
    }

    /// A token valid for at least [`REFRESH_MARGIN`]; `stale` names a token Graph refused, which
    /// is renewed unless another task already did.
    pub async fn token(&self, stale: Option<&Secret>) -> Result<Secret, GraphError> {
        // One renewal at a time: concurrent callers wait for it instead of each asking for a token.
        let mut st = self.state.lock().await;
        if let Some(c) = &st.cached {
            let refused = stale.is_some_and(|s| s.expose() == c.token.expose());
            if !refused && c.expires_at - now_unix() > REFRESH_MARGIN.as_secs() as i64 {
                return Ok(c.token.clone());
            }
        }
        let answer = match &self.credential {
            Credential::AccessToken(t) => return Ok(t.clone()),
            Credential::ClientSecret { client_id, secret } => {
                self.post(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id),
                    ("client_secret", secret.expose()),
                    ("scope", &self.scope),
                ])
                .await?
            }
            Credential::Certificate {
                client_id,
                certificate,
            } => {
                let assertion = certificate.assertion(client_id, &self.token_url, now_unix())?;
                self.post(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &assertion),
                    ("scope", &self.scope),
                ])
                .await?
            }
            Credential::Delegated { client_id, .. } => {
                let Some(rt) = st.refresh_token.clone() else {
                    return Err(GraphError::Config(
                        "the admin sign-in has expired and cannot be renewed: run `behalf login` again"
                            .into(),
                    ));
                };
                self.post(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", client_id),
                    ("refresh_token", rt.expose()),
                    ("scope", &delegated_scope(&self.scope)),
                ])
                .await?
            }
        };
        let expires_at = now_unix() + answer.lifetime_secs();
        let token = Secret::new(answer.access_token);
        if let Some(rt) = answer.refresh_token {
            st.refresh_token = Some(Secret::new(rt));
        }
        st.cached = Some(Cached {
            token: token.clone(),
            expires_at,
        });
        tracing::debug!(expires_at, "access token renewed");
        Ok(token)
    }

    /// A fixed token: renewing it is pointless.
    pub fn is_static(&self) -> bool {
        matches!(self.credential, Credential::AccessToken(_))
    }

    /// The delegated tokens as they are now (the refresh token rotates on every renewal).
    pub async fn delegated(&self) -> Option<DelegatedTokens> {
        let st = self.state.lock().await;
        match (&self.credential, &st.cached) {
            (Credential::Delegated { .. }, Some(c)) => Some(DelegatedTokens {
                access_token: c.token.clone(),
                expires_at: c.expires_at,
                refresh_token: st.refresh_token.clone(),
            }),
            _ => None,
        }
    }

    async fn post(&self, form: &[(&str, &str)]) -> Result<TokenAnswer, GraphError> {
        post_token(&self.http, &self.token_url, form).await
    }
}

/// Delegated refreshes ask for the same `.default` resource plus `offline_access` (to get a new
/// refresh token back).
fn delegated_scope(scope: &str) -> String {
    format!("{scope} offline_access")
}

/// Posts a token request; retries a few times when the endpoint is unreachable or busy.
pub(crate) async fn post_token(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> Result<TokenAnswer, GraphError> {
    let policy = crate::retry::RetryPolicy {
        max_attempts: 4,
        ..Default::default()
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let sent = http
            .post(url)
            .header("client-request-id", uuid::Uuid::new_v4().to_string())
            .form(form)
            .send()
            .await;
        let (status, retry_after, body) = match sent {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| crate::retry::parse_retry_after(v, SystemTime::now()));
                match resp.bytes().await {
                    Ok(b) => (status, retry_after, b),
                    Err(source) if attempt < policy.max_attempts => {
                        tracing::debug!(error = %source, "token answer cut; retrying");
                        tokio::time::sleep(policy.delay(attempt, None)).await;
                        continue;
                    }
                    Err(source) => return Err(transport(url, source)),
                }
            }
            Err(source) if attempt < policy.max_attempts => {
                tracing::debug!(error = %source, "token endpoint unreachable; retrying");
                tokio::time::sleep(policy.delay(attempt, None)).await;
                continue;
            }
            Err(source) => return Err(transport(url, source)),
        };
        if (200..300).contains(&status) {
            return serde_json::from_slice(&body)
                .map_err(|e| GraphError::decode("the token endpoint", e));
        }
        if matches!(status, 429 | 500 | 502 | 503 | 504) && attempt < policy.max_attempts {
            tokio::time::sleep(policy.delay(attempt, retry_after)).await;
            continue;
        }
        return Err(GraphError::from_token_answer(status, &body));
    }
}

pub(crate) fn transport(url: &str, source: reqwest::Error) -> GraphError {
    // Never put query strings (delta tokens, codes) into messages.
    let url = url.split('?').next().unwrap_or(url).to_string();
    GraphError::Transport { url, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_come_from_roles_or_scp() {
        let payload = URL_SAFE_NO_PAD.encode(
            br#"{"roles":["UserAuthenticationMethod.ReadWrite.All","User.Read.All"],"tid":"t","appid":"a"}"#,
        );
        let p = TokenPermissions::from_jwt(&format!("h.{payload}.s")).expect("a JWT");
        assert!(p.has_any(&["userauthenticationmethod.readwrite.all"]));
        assert!(!p.has_any(&["Policy.Read.All"]));
        assert_eq!(p.tenant_id.as_deref(), Some("t"));
        let payload = URL_SAFE_NO_PAD.encode(br#"{"scp":"User.Read Policy.Read.All","upn":"a@b"}"#);
        let p = TokenPermissions::from_jwt(&format!("h.{payload}.s")).expect("a JWT");
        assert_eq!(p.scopes, vec!["User.Read", "Policy.Read.All"]);
        assert_eq!(p.upn.as_deref(), Some("a@b"));
        assert!(TokenPermissions::from_jwt("opaque").is_none());
    }

    #[test]
    fn default_scope_follows_the_graph_host() {
        assert_eq!(
            default_scope("https://graph.microsoft.com/"),
            "https://graph.microsoft.com/.default"
        );
        assert_eq!(
            default_scope("https://graph.microsoft.us"),
            "https://graph.microsoft.us/.default"
        );
        // The sandbox (plain http on loopback) issues tokens for the global audience.
        assert_eq!(
            default_scope("http://127.0.0.1:1234"),
            "https://graph.microsoft.com/.default"
        );
    }

    #[test]
    fn expires_in_as_number_or_string() {
        let a: TokenAnswer =
            serde_json::from_str(r#"{"access_token":"x","expires_in":"3600"}"#).expect("json");
        assert_eq!(a.lifetime_secs(), 3600);
        let a: TokenAnswer =
            serde_json::from_str(r#"{"access_token":"x","expires_in":42}"#).expect("json");
        assert_eq!(a.lifetime_secs(), 42);
    }
}
