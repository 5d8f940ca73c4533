//! The HTTP client of a Behalf server's `/api/v1`: bearer authentication, and the server's
//! `application/problem+json` answers turned into one-line errors.

use std::time::Duration;

use anyhow::Context as _;
use behalf_config::Config;
use behalf_domain::Secret;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// How long a request may go without a byte from the server. Not a timeout on the whole
/// request: an import or a job's event stream lasts as long as it lasts.
const READ_TIMEOUT: Duration = Duration::from_secs(300);

/// A Behalf server, and the token the CLI acts with there.
#[derive(Debug, Clone)]
pub struct Remote {
    /// Without a trailing `/`.
    pub base: String,
    http: reqwest::Client,
    token: Option<Secret>,
}

/// RFC 9457 problem details, as the server answers errors. `error` is the device flow's OAuth
/// code (`authorization_pending`).
#[derive(Debug, Default, Deserialize)]
pub struct Problem {
    pub title: Option<String>,
    pub detail: Option<String>,
    pub error: Option<String>,
}

/// A refused request: its status and problem, with the one-line message shown for it.
#[derive(Debug)]
pub struct Refused {
    pub status: StatusCode,
    pub problem: Problem,
    pub message: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refused {}

/// `https://behalf.example.com/` → `https://behalf.example.com`; refuses what is no http(s) URL,
/// so that a typo is not sent a token.
pub fn normalise_base(url: &str) -> anyhow::Result<String> {
    let trimmed = url.trim().trim_end_matches('/');
    let parsed = reqwest::Url::parse(trimmed).with_context(|| {
        format!("--server {url:?} is not a URL like https://behalf.example.com")
    })?;
    anyhow::ensure!(
        matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some(),
        "--server {url:?} is not an http(s) URL"
    );
    anyhow::ensure!(
        parsed.query().is_none() && parsed.fragment().is_none(),
        "--server {url:?}: give the server's address without a query or fragment"
    );
    Ok(trimmed.to_owned())
}

impl Remote {
    /// A client for `base`, trusting what `config.tls` says (`--ca-file`, `--disable-ssl-verify`).
    pub fn new(base: &str, config: &Config, token: Option<Secret>) -> anyhow::Result<Remote> {
        let base = normalise_base(base)?;
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(READ_TIMEOUT)
            .user_agent(concat!("behalf-cli/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.tls.ca_file {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read the CA file {}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("{} holds no usable PEM certificate", path.display()))?;
            anyhow::ensure!(
                !certs.is_empty(),
                "{} holds no PEM certificate",
                path.display()
            );
            builder = builder.tls_certs_merge(certs);
        }
        if config.tls.disable_ssl_verify {
            tracing::warn!(
                "TLS CERTIFICATE VERIFICATION IS DISABLED (--disable-ssl-verify): anyone on the network path can read and change the traffic to {base}, the API token included"
            );
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        let http = builder.build().context("cannot set up the HTTP client")?;
        Ok(Remote { base, http, token })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request to `path` (under the base), with the token when there is one.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, self.url(path));
        match &self.token {
            Some(token) => request.bearer_auth(token.expose()),
            None => request,
        }
    }

    /// Sends `request`; a non-2xx answer becomes a [`Refused`] error.
    pub async fn send(&self, request: RequestBuilder) -> anyhow::Result<Response> {
        let response = request
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach {}: {}", self.base, transport(&e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        Err(self.refused(status, &body).into())
    }

    /// Sends `request` and reads a JSON answer.
    pub async fn json<T: DeserializeOwned>(&self, request: RequestBuilder) -> anyhow::Result<T> {
        let response = self.send(request).await?;
        let url = response.url().path().to_owned();
        let bytes = response.bytes().await.map_err(|e| {
            anyhow::anyhow!("{}: the answer broke off: {}", self.base, transport(&e))
        })?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{}{url} answered something this CLI does not understand (is it a Behalf server of the same version?)", self.base))
    }

    /// The error for a refused request. Only the problem's `detail` (or `title`) is shown, on one
    /// line; a body that is not a problem (a proxy's HTML page) is not dumped on the terminal.
    pub fn refused(&self, status: StatusCode, body: &str) -> Refused {
        let problem: Problem = serde_json::from_str(body).unwrap_or_default();
        let detail = problem
            .detail
            .as_deref()
            .or(problem.title.as_deref())
            .map(one_line)
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| format!("{} answered {status}", self.base));
        let message = match status {
            StatusCode::UNAUTHORIZED => format!(
                "not signed in to {base}: run `behalf --server {base} login`",
                base = self.base
            ),
            StatusCode::FORBIDDEN => format!("not allowed: {detail}"),
            _ => detail,
        };
        Refused {
            status,
            problem,
            message,
        }
    }
}

/// Newlines and runs of spaces become one space: `main` prints errors on one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The innermost cause of a transport error: reqwest's own text names only the URL.
fn transport(error: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = error;
    while let Some(inner) = source.source() {
        source = inner;
    }
    if error.is_timeout() {
        return "no answer in time".into();
    }
    one_line(&source.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote() -> Remote {
        let config = behalf_config::Config::load_with_env(
            behalf_config::Sources {
                file: None,
                overrides: None,
            },
            Vec::new(),
        )
        .unwrap();
        Remote::new("http://127.0.0.1:9/", &config, None).unwrap()
    }

    #[test]
    fn server_urls_are_normalised_or_refused() {
        assert_eq!(
            normalise_base("https://b.example.com/").unwrap(),
            "https://b.example.com"
        );
        assert_eq!(
            normalise_base(" http://127.0.0.1:8080//").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            normalise_base("https://b.example.com/behalf").unwrap(),
            "https://b.example.com/behalf"
        );
        for bad in ["b.example.com", "ftp://b.example.com", "https://b/?x=1", ""] {
            assert!(normalise_base(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refusals_say_one_line_and_never_dump_a_body() {
        let r = remote();
        let problem = r#"{"type":"about:blank","title":"Not Found","status":404,"detail":"user not found:\n x"}"#;
        assert_eq!(
            r.refused(StatusCode::NOT_FOUND, problem).message,
            "user not found: x"
        );
        assert_eq!(
            r.refused(StatusCode::UNAUTHORIZED, problem).message,
            "not signed in to http://127.0.0.1:9: run `behalf --server http://127.0.0.1:9 login`"
        );
        assert_eq!(
            r.refused(StatusCode::FORBIDDEN, r#"{"detail":"needs provision"}"#)
                .message,
            "not allowed: needs provision"
        );
        assert_eq!(
            r.refused(StatusCode::BAD_GATEWAY, "<html>proxy error</html>")
                .message,
            "http://127.0.0.1:9 answered 502 Bad Gateway"
        );
        let pending = r.refused(
            StatusCode::BAD_REQUEST,
            r#"{"title":"Pending","error":"authorization_pending"}"#,
        );
        assert_eq!(pending.message, "Pending");
        assert_eq!(
            pending.problem.error.as_deref(),
            Some("authorization_pending")
        );
    }
}
