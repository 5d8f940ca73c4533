//! The SCIM requests of the push client: a bearer token, `application/scim+json`, and 429
//! answered the way Entra's provisioning service does, by waiting out `Retry-After` and sending
//! the same request again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

/// RFC 7644 §3.1: the media type of SCIM bodies.
pub(crate) const CONTENT_TYPE: &str = "application/scim+json";
/// RFC 7644 §3.5.2: the schema of a PATCH body.
pub(crate) const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// RFC 7644 §3.4.2: the schema of a query's answer.
pub(crate) const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// What a SCIM service answered: the status and the JSON body (`Null` when there was none, or
/// the text as a JSON string when it was not JSON).
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
    /// RFC 7644 §3.12: `scimType` of an error body.
    pub fn scim_type(&self) -> Option<String> {
        self.body
            .get("scimType")
            .and_then(Value::as_str)
            .map(String::from)
    }
    /// RFC 7644 §3.12: `detail` of an error body, or what came instead of one.
    pub fn detail(&self) -> String {
        match self.body.get("detail").and_then(Value::as_str) {
            Some(d) => d.to_string(),
            None if self.body.is_null() => format!("HTTP {} with no body", self.status),
            None => match &self.body {
                Value::String(s) => s.chars().take(300).collect(),
                other => other.to_string().chars().take(300).collect(),
            },
        }
    }
}

/// The connection to one SCIM endpoint.
pub(crate) struct Scim {
    client: reqwest::Client,
    base: String,
    token: String,
    max_retries: u32,
    pub requests: AtomicU64,
    pub throttled: AtomicU64,
}

impl std::fmt::Debug for Scim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scim")
            .field("base", &self.base)
            .field("token", &"<hidden>")
            .finish()
    }
}

impl Scim {
    pub fn new(base: &str, token: String, max_retries: u32, timeout: Duration) -> Scim {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            // Only a broken TLS backend fails here, and the client uses none for http://.
            .unwrap_or_else(|_| reqwest::Client::new());
        Scim {
            client,
            base: base.trim_end_matches('/').to_string(),
            token,
            max_retries,
            requests: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
        }
    }

    /// Sends one request; a 429 is retried after its `Retry-After` (seconds; 1 s without one)
    /// up to `max_retries` times, then answered as it came. `Err` is a transport failure.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Answer, String> {
        let url = format!("{}{path}", self.base);
        let mut attempt = 0;
        loop {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let mut request = self
                .client
                .request(method.clone(), &url)
                .bearer_auth(&self.token)
                .header(reqwest::header::ACCEPT, CONTENT_TYPE);
            if !query.is_empty() {
                request = request.query(query);
            }
            if let Some(body) = body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
                    .body(body.to_string());
            }
            let response = request
                .send()
                .await
                .map_err(|e| format!("{method} {url}: {}", error_chain(&e)))?;
            let status = response.status().as_u16();
            if status == 429 && attempt < self.max_retries {
                self.throttled.fetch_add(1, Ordering::Relaxed);
                let wait = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(1);
                attempt += 1;
                // Waiting is the point here: Entra does not send again before Retry-After.
                tokio::time::sleep(Duration::from_secs(wait.min(120))).await;
                continue;
            }
            let text = response
                .text()
                .await
                .map_err(|e| format!("{method} {url}: reading the answer: {}", error_chain(&e)))?;
            let body = if text.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            };
            return Ok(Answer { status, body });
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// RFC 7644 §3.4.2.2: a filter's comparison value is a JSON string.
pub(crate) fn quoted(value: &str) -> String {
    Value::String(value.to_string()).to_string()
}

/// The `id` of the first resource of a ListResponse, if it has any.
pub(crate) fn first_id(list: &Value) -> Option<String> {
    list.get("Resources")
        .and_then(Value::as_array)
        .and_then(|r| r.first())
        .and_then(|r| r.get("id"))
        .and_then(Value::as_str)
        .map(String::from)
}
