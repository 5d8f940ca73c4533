//! The client: settings, TLS, and the one request path every call goes through (pacing, bearer
//! token, `client-request-id`, retries, error parsing).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::Method;
use reqwest::header::{ACCEPT, HeaderMap, RETRY_AFTER};
use serde::de::DeserializeOwned;

use crate::auth::{Credential, DelegatedTokens, TokenPermissions, TokenProvider, default_scope};
use crate::error::GraphError;
use crate::pacing::{Budget, CallKind, Feedback, Pacer, PacingSettings, PacingStats};
use crate::retry::{RetryPolicy, parse_retry_after};

/// `https://graph.microsoft.com` — national clouds and the sandbox differ.
pub const GLOBAL_GRAPH: &str = "https://graph.microsoft.com";
/// `https://login.microsoftonline.com`
pub const GLOBAL_LOGIN: &str = "https://login.microsoftonline.com";

/// Graph's API versions. `beta` takes a challenge timeout in creationOptions; `v1.0` fixes it at 5 min.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApiVersion {
    #[default]
    Beta,
    V1,
}

impl ApiVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::Beta => "beta",
            ApiVersion::V1 => "v1.0",
        }
    }
}

impl std::str::FromStr for ApiVersion {
    type Err = GraphError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "beta" => Ok(ApiVersion::Beta),
            "v1.0" | "v1" => Ok(ApiVersion::V1),
            other => Err(GraphError::Config(format!(
                "unknown Graph API version '{other}' (use beta or v1.0)"
            ))),
        }
    }
}

/// How server certificates are checked. One TLS stack: rustls with aws-lc-rs.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// Extra PEM roots (a corporate TLS-inspection proxy), added to the OS trust store.
    pub ca_file: Option<PathBuf>,
    /// Trust the operating system's store explicitly. This is also the default: reqwest's rustls
    /// verifier is rustls-platform-verifier, i.e. the OS store, not a bundled root list.
    pub os_trust_store: bool,
    /// Accept any certificate. Troubleshooting only; logged loudly.
    pub disable_verification: bool,
}

/// Everything a [`GraphClient`] needs.
#[derive(Debug, Clone)]
pub struct GraphSettings {
    pub graph_base_url: String,
    pub login_base_url: String,
    pub tenant_id: String,
    pub api_version: ApiVersion,
    pub credential: Credential,
    pub tls: TlsSettings,
    pub retry: RetryPolicy,
    pub pacing: PacingSettings,
    /// Per request, connection included.
    pub timeout: Duration,
    /// `$top` / `odata.maxpagesize` for lists and delta (Graph: at most 999).
    pub page_size: u32,
}

impl GraphSettings {
    /// Global cloud, `beta`, default retry and pacing.
    pub fn new(tenant_id: impl Into<String>, credential: Credential) -> GraphSettings {
        GraphSettings {
            graph_base_url: GLOBAL_GRAPH.into(),
            login_base_url: GLOBAL_LOGIN.into(),
            tenant_id: tenant_id.into(),
            api_version: ApiVersion::Beta,
            credential,
            tls: TlsSettings::default(),
            retry: RetryPolicy::default(),
            pacing: PacingSettings::default(),
            timeout: Duration::from_secs(60),
            page_size: 999,
        }
    }

    /// Points the client at other Graph and login hosts (a national cloud, the sandbox).
    pub fn with_endpoints(mut self, graph: impl Into<String>, login: impl Into<String>) -> Self {
        self.graph_base_url = graph.into();
        self.login_base_url = login.into();
        self
    }
}

/// Builds the HTTP client for Graph and the token endpoint from TLS settings.
pub fn http_client(tls: &TlsSettings, timeout: Duration) -> Result<reqwest::Client, GraphError> {
    let mut b = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10).min(timeout))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("behalf/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &tls.ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            GraphError::Config(format!("cannot read the CA file {}: {e}", path.display()))
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            GraphError::Config(format!(
                "{} holds no usable PEM certificate: {e}",
                path.display()
            ))
        })?;
        if certs.is_empty() {
            return Err(GraphError::Config(format!(
                "{} holds no PEM certificate",
                path.display()
            )));
        }
        // Merged with the OS store (rustls-platform-verifier with extra roots), not instead of it.
        b = b.tls_certs_merge(certs);
    }
    if tls.disable_verification {
        tracing::warn!(
            "TLS CERTIFICATE VERIFICATION IS DISABLED (--disable-ssl-verify): anyone on the network path can read and change Graph traffic, tokens included. Use only to troubleshoot."
        );
        b = b.tls_danger_accept_invalid_certs(true);
    }
    b.build()
        .map_err(|e| GraphError::Config(format!("cannot set up the HTTP client: {e}")))
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    graph_base: String,
    version: ApiVersion,
    tokens: TokenProvider,
    pacer: Pacer,
    retry: RetryPolicy,
    page_size: u32,
}

/// A Microsoft Graph client for one tenant. Cheap to clone; clones share the token cache and
/// the pacer.
#[derive(Debug, Clone)]
pub struct GraphClient {
    inner: Arc<Inner>,
    /// A 429 or 503 carrying `Retry-After` comes back to the caller at once instead of being
    /// waited out here (see [`GraphClient::deferring`]).
    defer: bool,
}

/// A successful answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub body: Vec<u8>,
}

impl GraphClient {
    pub fn new(settings: GraphSettings) -> Result<GraphClient, GraphError> {
        let graph_base = settings.graph_base_url.trim_end_matches('/').to_string();
        let login_base = settings.login_base_url.trim_end_matches('/').to_string();
        for (what, u) in [("Graph", &graph_base), ("login", &login_base)] {
            let parsed = url::Url::parse(u)
                .map_err(|e| GraphError::Config(format!("invalid {what} base URL '{u}': {e}")))?;
            if !matches!(parsed.scheme(), "https" | "http") {
                return Err(GraphError::Config(format!(
                    "the {what} base URL must be http(s): '{u}'"
                )));
            }
        }
        if settings.tenant_id.trim().is_empty() {
            return Err(GraphError::Config("no tenant id configured".into()));
        }
        let http = http_client(&settings.tls, settings.timeout)?;
        let token_url = format!(
            "{login_base}/{}/oauth2/v2.0/token",
            settings.tenant_id.trim()
        );
        let tokens = TokenProvider::new(
            settings.credential,
            token_url,
            default_scope(&graph_base),
            http.clone(),
        );
        Ok(GraphClient {
            inner: Arc::new(Inner {
                http,
                graph_base,
                version: settings.api_version,
                tokens,
                pacer: Pacer::new(settings.pacing),
                retry: settings.retry,
                page_size: settings.page_size.clamp(1, 999),
            }),
            defer: false,
        })
    }

    /// The same client (token cache and pacer shared), except that a 429 or a 503 with a
    /// `Retry-After` is returned at once as the error, its [`GraphError::retry_after`] set,
    /// instead of being waited out and retried here: for a caller that keeps the time with its
    /// own work (the provisioning engine stores it with the item, so that the wait outlives the
    /// process and the worker goes on with other items meanwhile). The caller must not send the
    /// same request again before `retry_after` has passed.
    pub fn deferring(&self) -> GraphClient {
        GraphClient {
            inner: self.inner.clone(),
            defer: true,
        }
    }

    pub fn api_version(&self) -> ApiVersion {
        self.inner.version
    }

    pub(crate) fn page_size(&self) -> u32 {
        self.inner.page_size
    }

    /// Pacing and retry counters (429s seen, retries, the allowed rates now).
    pub fn pacing_stats(&self) -> PacingStats {
        self.inner.pacer.stats()
    }

    /// The shared pacer, e.g. to set a write ceiling.
    pub fn pacer(&self) -> &Pacer {
        &self.inner.pacer
    }

    /// The permissions in the current access token (fetching one if needed).
    pub async fn token_permissions(&self) -> Result<Option<TokenPermissions>, GraphError> {
        let t = self.inner.tokens.token(None).await?;
        Ok(TokenPermissions::from_jwt(t.expose()))
    }

    /// For a delegated client: the tokens now (persist the rotated refresh token).
    pub async fn delegated_tokens(&self) -> Option<DelegatedTokens> {
        self.inner.tokens.delegated().await
    }

    /// `{graph}/{version}/{path}`; `path` must already be encoded (see [`segment`]).
    pub(crate) fn url(&self, path: &str) -> String {
        format!(
            "{}/{}/{}",
            self.inner.graph_base,
            self.inner.version.as_str(),
            path.trim_start_matches('/')
        )
    }

    /// A `@odata.nextLink` / `@odata.deltaLink` is followed only if it points at our Graph host:
    /// the bearer token must never be sent anywhere else.
    pub(crate) fn check_link(&self, link: &str) -> Result<(), GraphError> {
        let base = &self.inner.graph_base;
        let ok = link
            .strip_prefix(base.as_str())
            .is_some_and(|rest| rest.starts_with('/'));
        if ok {
            Ok(())
        } else {
            Err(GraphError::decode(
                "a paging link",
                format!("it does not point at {base}"),
            ))
        }
    }

    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        url: &str,
        headers: &[(&str, String)],
    ) -> Result<T, GraphError> {
        let a = self.send(Method::GET, url, None, headers).await?;
        decode(url, &a.body)
    }

    /// Sends one logical request: waits for the pacer, retries 429 / 503 / 504 and lost
    /// connections (bounded), renews the token once on 401.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&serde_json::Value>,
        headers: &[(&str, String)],
    ) -> Result<Answer, GraphError> {
        let inner = &*self.inner;
        let kind = CallKind::of(&method, url);
        let idempotent = matches!(
            method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE
        );
        let mut attempt: u32 = 0;
        let mut renewed = false;
        let mut stale: Option<behalf_domain::Secret> = None;
        loop {
            attempt += 1;
            inner.pacer.acquire(&kind, attempt > 1).await;
            let token = inner.tokens.token(stale.as_ref()).await?;
            let mut req = inner
                .http
                .request(method.clone(), url)
                .bearer_auth(token.expose())
                // A fresh id per attempt, as Microsoft asks, so each try can be traced.
                .header("client-request-id", uuid::Uuid::new_v4().to_string())
                .header(ACCEPT, "application/json");
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let outcome = match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let h = resp.headers().clone();
                    resp.bytes().await.map(|b| (status, h, b.to_vec()))
                }
                Err(e) => Err(e),
            };
            let (status, h, bytes) = match outcome {
                Ok(x) => x,
                Err(e) => {
                    inner.pacer.feedback(&kind, Feedback::Transport);
                    // A POST whose connection died after sending may have been applied: only
                    // retry it when it provably never left (connect failure).
                    let safe = idempotent || e.is_connect();
                    if safe && attempt < inner.retry.max_attempts {
                        let d = inner.retry.delay(attempt, None);
                        tracing::debug!(error = %e, attempt, delay_ms = d.as_millis() as u64, "no answer from Graph; retrying");
                        tokio::time::sleep(d).await;
                        continue;
                    }
                    return Err(crate::auth::transport(url, e));
                }
            };
            if (200..300).contains(&status) {
                inner.pacer.feedback(&kind, answered(&h));
                return Ok(Answer { body: bytes });
            }
            if status == 401 && !renewed && !inner.tokens.is_static() {
                // An expired or revoked token: renew once and try again.
                renewed = true;
                stale = Some(token);
                attempt -= 1;
                continue;
            }
            let err = GraphError::from_graph_answer(status, &h, &bytes);
            let retry_after = retry_after(&h);
            let retryable = match status {
                429 => {
                    // A budget's 429 pauses what draws on that budget (the pacer decides); a
                    // sporadic one delays only this request, by the wait below.
                    let budget = throttle_budget(&h);
                    inner.pacer.feedback(
                        &kind,
                        Feedback::Throttled {
                            retry_after,
                            budget,
                        },
                    );
                    true
                }
                503 | 504 => {
                    inner.pacer.feedback(&kind, Feedback::Unavailable);
                    true
                }
                500 | 502 if idempotent => {
                    inner.pacer.feedback(&kind, Feedback::Unavailable);
                    true
                }
                _ => {
                    inner.pacer.feedback(&kind, answered(&h));
                    false
                }
            };
            if !retryable || attempt >= inner.retry.max_attempts {
                return Err(err);
            }
            if self.defer && retry_after.is_some() && matches!(status, 429 | 503) {
                return Err(err);
            }
            let d = inner.retry.delay(attempt, retry_after);
            tracing::debug!(
                status,
                attempt,
                delay_ms = d.as_millis() as u64,
                request_id = err.request_id().unwrap_or(""),
                "Graph asked to retry"
            );
            // Never before Retry-After (the delay is at least it): Graph counts a request sent
            // earlier as an early retry and throttles longer.
            tokio::time::sleep(d).await;
        }
    }
}

fn retry_after(h: &HeaderMap) -> Option<Duration> {
    h.get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
}

/// The budget a 429 names: in `x-ms-throttle-scope` (`<Scope>/<Limit>/<app>/<tenant>`, Limit
/// `Write` for the write budget, `Read` / `ReadWrite` for resource units) or in
/// `x-ms-throttle-information` (`WriteLimitExceeded`, `ResourceUnitLimitExceeded`). None: a 429
/// that names no budget of ours.
fn throttle_budget(h: &HeaderMap) -> Option<Budget> {
    let header = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let limit = header("x-ms-throttle-scope")
        .split('/')
        .nth(1)
        .unwrap_or("");
    let information = header("x-ms-throttle-information");
    if limit == "Write" || information.contains("WriteLimitExceeded") {
        Some(Budget::Writes)
    } else if matches!(limit, "Read" | "ReadWrite")
        || information.contains("ResourceUnitLimitExceeded")
    {
        Some(Budget::Units)
    } else {
        None
    }
}

/// What an answer that was not throttling tells the pacer.
fn answered(h: &HeaderMap) -> Feedback {
    Feedback::Ok {
        limit_percentage: limit_percentage(h),
        resource_units: h
            .get("x-ms-resource-unit")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|u| u.is_finite() && *u >= 0.0),
    }
}

/// `x-ms-throttle-limit-percentage`: Graph sends it above 80 % of a budget, as 0.8–1.8.
pub(crate) fn limit_percentage(h: &HeaderMap) -> Option<f64> {
    h.get("x-ms-throttle-limit-percentage")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|p| p.is_finite() && *p >= 0.0)
}

pub(crate) fn decode<T: DeserializeOwned>(url: &str, body: &[u8]) -> Result<T, GraphError> {
    serde_json::from_slice(body).map_err(|e| {
        let path = url.split('?').next().unwrap_or(url);
        GraphError::decode(path.to_string(), e)
    })
}

/// Percent-encodes one path segment (a user id or UPN). Guest UPNs contain `#EXT#`, which would
/// otherwise end the path; `@` and the unreserved characters stay as they are.
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use behalf_domain::Secret;

    use super::*;

    fn client(base: &str, version: ApiVersion) -> GraphClient {
        let mut s = GraphSettings::new("t", Credential::AccessToken(Secret::new("x")))
            .with_endpoints(base, "https://login.example");
        s.api_version = version;
        GraphClient::new(s).expect("client")
    }

    #[test]
    fn urls_are_built_from_the_base_and_version() {
        let c = client("https://graph.microsoft.us/", ApiVersion::V1);
        assert_eq!(c.url("users"), "https://graph.microsoft.us/v1.0/users");
        let c = client("http://127.0.0.1:9", ApiVersion::Beta);
        assert_eq!(
            c.url(&format!(
                "/users/{}/authentication/fido2Methods",
                segment("a#EXT#@b.c")
            )),
            "http://127.0.0.1:9/beta/users/a%23EXT%23@b.c/authentication/fido2Methods"
        );
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("alice@contoso.com"), "alice@contoso.com");
        assert_eq!(segment("o'brien@x.y"), "o%27brien@x.y");
        assert_eq!(segment("a/b?c d"), "a%2Fb%3Fc%20d");
        assert_eq!(segment("é"), "%C3%A9");
    }

    #[test]
    fn paging_links_must_stay_on_the_graph_host() {
        let c = client("https://graph.microsoft.com", ApiVersion::V1);
        assert!(
            c.check_link("https://graph.microsoft.com/v1.0/users?$skiptoken=x")
                .is_ok()
        );
        assert!(
            c.check_link("https://graph.microsoft.com.evil.example/v1.0/users")
                .is_err()
        );
        assert!(c.check_link("https://evil.example/v1.0/users").is_err());
    }

    #[test]
    fn bad_settings_are_refused() {
        let s = GraphSettings::new("t", Credential::AccessToken(Secret::new("x")))
            .with_endpoints("ftp://x", GLOBAL_LOGIN);
        assert!(GraphClient::new(s).is_err());
        let s = GraphSettings::new(" ", Credential::AccessToken(Secret::new("x")));
        assert!(GraphClient::new(s).is_err());
        assert_eq!("v1.0".parse::<ApiVersion>().ok(), Some(ApiVersion::V1));
        assert!("v2".parse::<ApiVersion>().is_err());
    }

    #[test]
    fn a_429_is_a_budgets_only_when_it_names_one() {
        let mut h = HeaderMap::new();
        assert_eq!(throttle_budget(&h), None, "a bare 429");
        h.insert(
            "x-ms-throttle-scope",
            "Tenant_Application/ReadWrite/a/t".parse().expect("hv"),
        );
        assert_eq!(throttle_budget(&h), Some(Budget::Units));
        h.insert(
            "x-ms-throttle-scope",
            "Tenant_Application/Write/a/t".parse().expect("hv"),
        );
        assert_eq!(throttle_budget(&h), Some(Budget::Writes));
        let mut h = HeaderMap::new();
        h.insert(
            "x-ms-throttle-information",
            "WriteLimitExceeded".parse().expect("hv"),
        );
        assert_eq!(throttle_budget(&h), Some(Budget::Writes));
        let mut h = HeaderMap::new();
        h.insert(
            "x-ms-throttle-information",
            "ResourceUnitLimitExceeded".parse().expect("hv"),
        );
        assert_eq!(throttle_budget(&h), Some(Budget::Units));
    }

    #[test]
    fn limit_percentage_header() {
        let mut h = HeaderMap::new();
        assert_eq!(limit_percentage(&h), None);
        h.insert("x-ms-throttle-limit-percentage", "0.9".parse().expect("hv"));
        assert_eq!(limit_percentage(&h), Some(0.9));
    }
}
