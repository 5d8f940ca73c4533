//! The one error type of the Graph client.
//!
//! Graph answers errors as `{"error":{"code","message","innerError":{"request-id","date"}}}`
//! (<https://learn.microsoft.com/graph/errors>); the identity platform's token endpoint as
//! `{"error","error_description","error_codes","trace_id","correlation_id"}`
//! (<https://learn.microsoft.com/entra/identity-platform/reference-error-codes>). Both keep what an
//! admin needs to open a support case: the code, the message and the request id.

use std::time::Duration;

use serde::Deserialize;

/// Everything a Graph or token call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// Graph answered with an error status.
    #[error("{}", graph_display(.code, .message, .request_id.as_deref(), *.status))]
    Graph {
        status: u16,
        code: String,
        message: String,
        request_id: Option<String>,
        date: Option<String>,
        /// `Retry-After`, when the answer carried one.
        retry_after: Option<Duration>,
    },
    /// The token endpoint refused (bad secret, unknown tenant, consent missing, …).
    #[error("sign-in failed: {error}: {}", first_line(.description))]
    Token {
        status: u16,
        /// OAuth 2.0 error (`invalid_client`, `invalid_grant`, `expired_token`, …).
        error: String,
        description: String,
        trace_id: Option<String>,
    },
    /// The request never got an answer (DNS, connect, TLS, reset, timeout).
    #[error("cannot reach {url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// An answer that is not what Graph documents (malformed JSON, a missing field).
    #[error("unexpected answer from {what}: {detail}")]
    Decode { what: String, detail: String },
    /// The client's settings cannot work (no credentials, bad URL, unreadable certificate).
    #[error("{0}")]
    Config(String),
}

fn graph_display(code: &str, message: &str, request_id: Option<&str>, status: u16) -> String {
    match request_id {
        Some(id) => format!("Graph {status} {code}: {message} (request-id {id})"),
        None => format!("Graph {status} {code}: {message}"),
    }
}

/// AAD descriptions carry trace/correlation lines after `\r\n`; one line is enough in a message.
fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s).trim_end()
}

impl GraphError {
    /// HTTP status of an answered request.
    pub fn status(&self) -> Option<u16> {
        match self {
            GraphError::Graph { status, .. } | GraphError::Token { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Graph's error `code` (or the OAuth `error` of a token failure).
    pub fn code(&self) -> Option<&str> {
        match self {
            GraphError::Graph { code, .. } => Some(code),
            GraphError::Token { error, .. } => Some(error),
            _ => None,
        }
    }

    pub fn message(&self) -> Option<&str> {
        match self {
            GraphError::Graph { message, .. } => Some(message),
            GraphError::Token { description, .. } => Some(first_line(description)),
            _ => None,
        }
    }

    /// `request-id` of the failed request (`trace_id` for the token endpoint).
    pub fn request_id(&self) -> Option<&str> {
        match self {
            GraphError::Graph { request_id, .. } => request_id.as_deref(),
            GraphError::Token { trace_id, .. } => trace_id.as_deref(),
            _ => None,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            GraphError::Graph { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub fn is_throttled(&self) -> bool {
        self.status() == Some(429)
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, GraphError::Graph { status: 404, .. })
    }

    /// Worth trying again later: throttling, a busy or unavailable service, no answer at all.
    pub fn is_retryable(&self) -> bool {
        match self {
            GraphError::Graph { status, .. } => matches!(status, 429 | 500 | 502 | 503 | 504),
            GraphError::Transport { .. } => true,
            _ => false,
        }
    }

    /// Builds the error for a failed Graph answer from its status, headers and body. A body that
    /// is not Graph's JSON (a proxy's HTML page, an empty 502) still gives a useful error.
    pub(crate) fn from_graph_answer(
        status: u16,
        headers: &reqwest::header::HeaderMap,
        body: &[u8],
    ) -> GraphError {
        #[derive(Deserialize)]
        struct Envelope {
            error: Body,
        }
        #[derive(Deserialize)]
        struct Body {
            #[serde(default)]
            code: String,
            #[serde(default)]
            message: String,
            #[serde(default, rename = "innerError", alias = "innererror")]
            inner: Option<Inner>,
        }
        #[derive(Deserialize)]
        struct Inner {
            #[serde(rename = "request-id")]
            request_id: Option<String>,
            date: Option<String>,
        }
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(String::from)
        };
        let retry_after = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| crate::retry::parse_retry_after(v, std::time::SystemTime::now()));
        match serde_json::from_slice::<Envelope>(body) {
            Ok(Envelope { error }) => {
                let (request_id, date) = match error.inner {
                    Some(i) => (i.request_id, i.date),
                    None => (None, None),
                };
                GraphError::Graph {
                    status,
                    code: if error.code.is_empty() {
                        status_code_name(status).into()
                    } else {
                        error.code
                    },
                    message: error.message,
                    request_id: request_id.or_else(|| header("request-id")),
                    date: date.or_else(|| header("date")),
                    retry_after,
                }
            }
            Err(_) => {
                let text = String::from_utf8_lossy(body);
                let snippet: String = text.trim().chars().take(200).collect();
                GraphError::Graph {
                    status,
                    code: status_code_name(status).into(),
                    message: if snippet.is_empty() {
                        "(empty answer)".into()
                    } else {
                        format!("non-JSON answer: {snippet}")
                    },
                    request_id: header("request-id"),
                    date: header("date"),
                    retry_after,
                }
            }
        }
    }

    /// Builds the error for a token endpoint refusal (AAD's JSON, or anything else).
    pub(crate) fn from_token_answer(status: u16, body: &[u8]) -> GraphError {
        #[derive(Deserialize)]
        struct Aad {
            error: String,
            #[serde(default)]
            error_description: String,
            trace_id: Option<String>,
        }
        match serde_json::from_slice::<Aad>(body) {
            Ok(a) => GraphError::Token {
                status,
                error: a.error,
                description: a.error_description,
                trace_id: a.trace_id,
            },
            Err(_) => GraphError::Token {
                status,
                error: status_code_name(status).into(),
                description: String::from_utf8_lossy(body).chars().take(200).collect(),
                trace_id: None,
            },
        }
    }

    pub(crate) fn decode(what: impl Into<String>, detail: impl ToString) -> GraphError {
        GraphError::Decode {
            what: what.into(),
            detail: detail.to_string(),
        }
    }
}

fn status_code_name(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("HTTP error")
}

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderMap, HeaderValue};

    use super::*;

    #[test]
    fn graph_error_json_keeps_code_message_request_id_and_date() {
        let body = br#"{"error":{"code":"Request_ResourceNotFound","message":"Resource 'x' does not exist.","innerError":{"date":"2026-11-03T10:00:00","request-id":"abc-123","client-request-id":"c"}}}"#;
        let e = GraphError::from_graph_answer(404, &HeaderMap::new(), body);
        assert_eq!(e.status(), Some(404));
        assert_eq!(e.code(), Some("Request_ResourceNotFound"));
        assert_eq!(e.request_id(), Some("abc-123"));
        assert!(e.is_not_found());
        assert!(!e.is_retryable());
        let GraphError::Graph { date, .. } = &e else {
            panic!("a Graph error")
        };
        assert_eq!(date.as_deref(), Some("2026-11-03T10:00:00"));
        let shown = e.to_string();
        assert!(shown.contains("Request_ResourceNotFound"), "{shown}");
        assert!(shown.contains("Resource 'x' does not exist."), "{shown}");
        assert!(shown.contains("abc-123"), "{shown}");
    }

    #[test]
    fn a_non_json_body_still_gives_status_headers_and_a_snippet() {
        let mut h = HeaderMap::new();
        h.insert("request-id", HeaderValue::from_static("hdr-1"));
        h.insert("retry-after", HeaderValue::from_static("7"));
        let e = GraphError::from_graph_answer(503, &h, b"<html>Service Unavailable</html>");
        assert_eq!(e.code(), Some("Service Unavailable"));
        assert_eq!(e.request_id(), Some("hdr-1"));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert!(e.is_retryable());
        assert!(e.to_string().contains("<html>Service Unavailable"));
        let empty = GraphError::from_graph_answer(502, &HeaderMap::new(), b"");
        assert!(empty.to_string().contains("(empty answer)"));
    }

    #[test]
    fn throttled_and_token_errors() {
        let e = GraphError::from_graph_answer(
            429,
            &HeaderMap::new(),
            br#"{"error":{"code":"TooManyRequests","message":"Too many requests"}}"#,
        );
        assert!(e.is_throttled() && e.is_retryable());
        let t = GraphError::from_token_answer(
            401,
            br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: t1","trace_id":"t1"}"#,
        );
        assert_eq!(t.code(), Some("invalid_client"));
        assert_eq!(t.request_id(), Some("t1"));
        assert_eq!(
            t.to_string(),
            "sign-in failed: invalid_client: AADSTS7000215: Invalid client secret provided."
        );
        let odd = GraphError::from_token_answer(500, b"oops");
        assert_eq!(odd.code(), Some("Internal Server Error"));
    }
}
