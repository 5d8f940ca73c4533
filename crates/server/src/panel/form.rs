//! A posted panel form: the signed-in admin, the form's fields, and the CSRF check before the
//! handler runs.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};

use super::layout::{Panel, PanelError};
use crate::ServerState;
use crate::auth::CSRF_HEADER;

/// A form's fields in order, repeated names kept (`user=…&user=…` for a selection).
#[derive(Debug, Clone, Default)]
pub struct FormData(Vec<(String, String)>);

impl FormData {
    pub fn parse(body: &[u8]) -> FormData {
        FormData(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`, trimmed; None when absent or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Every non-blank value of `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("1" | "on" | "true" | "yes"))
    }
}

/// A state-changing panel request: signed in, and carrying this session's CSRF token in the
/// `csrf` field or the `x-csrf-token` header (htmx sends it from `<body hx-headers>`).
#[derive(Debug)]
pub struct PanelForm {
    pub panel: Panel,
    pub data: FormData,
}

impl FromRequest<ServerState> for PanelForm {
    type Rejection = PanelError;

    async fn from_request(req: Request, state: &ServerState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let panel = Panel::from_request_parts(&mut parts, state).await?;
        let header = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|_| {
                PanelError::App(behalf_app::AppError::invalid(
                    "form",
                    "the form could not be read",
                ))
            })?;
        let data = FormData::parse(&body);
        let presented = header
            .as_deref()
            .or_else(|| data.get("csrf"))
            .unwrap_or_default();
        if presented.is_empty() || !state.app.csrf_matches(&panel.session, presented).await? {
            return Err(PanelError::Csrf);
        }
        Ok(PanelForm { panel, data })
    }
}
