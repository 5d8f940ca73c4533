//! `/auth/oidc/start` and `/auth/oidc/callback`: admins' sign-in with Microsoft Entra ID
//! (OpenID Connect, authorization code + PKCE; the protocol is in `behalf_app::oidc`). Browser
//! routes outside `/api/v1`: they answer redirects, not JSON. Both are 404 unless `[oidc]
//! enabled`.
//!
//! The start sets a short-lived `behalf_oidc_state` cookie (HttpOnly, SameSite=Lax so that it
//! comes back on Entra ID's top-level redirect) holding the state, and the callback requires it:
//! a code and state obtained by someone else cannot sign this browser in as them (login CSRF).

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use behalf_app::AppError;
use serde::Deserialize;

use crate::ServerState;
use crate::auth::{cookie, session_cookie};
use crate::problem::ApiError;

const STATE_COOKIE: &str = "behalf_oidc_state";
/// The CSRF token of a session opened here, readable by the panel's script (a password sign-in
/// answers it in its JSON body instead).
pub const CSRF_COOKIE: &str = "behalf_csrf";

#[derive(Debug, Deserialize)]
pub struct StartQuery {
    login_hint: Option<String>,
}

fn redirect(location: &str, cookies: &[String]) -> Result<Response, ApiError> {
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        HeaderValue::from_str(location).map_err(|_| AppError::internal("bad location"))?,
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for c in cookies {
        headers.append(
            header::SET_COOKIE,
            HeaderValue::from_str(c).map_err(|_| AppError::internal("bad cookie"))?,
        );
    }
    Ok(response)
}

/// A 200 page that sets `cookies` and moves on to `location` (a meta refresh: no script, so the
/// strict Content-Security-Policy holds).
pub(crate) fn signed_in_page(location: &str, cookies: &[String]) -> Result<Response, ApiError> {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"0;url={location}\"><title>Signed in</title></head><body><p>Signed in. <a href=\"{location}\">Continue</a></p></body></html>"
    );
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for c in cookies {
        headers.append(
            header::SET_COOKIE,
            HeaderValue::from_str(c).map_err(|_| AppError::internal("bad cookie"))?,
        );
    }
    Ok(response)
}

/// `GET /auth/oidc/start[?login_hint=EMAIL]`: 302 to Entra ID's authorize endpoint.
pub async fn start(
    State(state): State<ServerState>,
    Query(query): Query<StartQuery>,
) -> Result<Response, ApiError> {
    if !state.app.oidc_enabled() {
        return Ok(StatusCode::NOT_FOUND.into_response());
    }
    let url = state.app.oidc_start(query.login_hint.as_deref())?;
    let oauth_state = query_value(&url, "state").unwrap_or_default();
    let cookie = format!(
        "{STATE_COOKIE}={oauth_state}; Path=/auth/oidc; Max-Age=600; Secure; HttpOnly; SameSite=Lax"
    );
    redirect(&url, &[cookie])
}

/// The value of `name` in `url`'s query (the state the application put there).
fn query_value(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /auth/oidc/callback?code&state`: signs the admin in (the session cookie, as
/// `POST /api/v1/auth/login` sets it) and sends the browser to `/`.
pub async fn callback(
    State(state): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, ApiError> {
    if !state.app.oidc_enabled() {
        return Ok(StatusCode::NOT_FOUND.into_response());
    }
    if let Some(error) = query.error {
        let description = query.error_description.unwrap_or_default();
        return Err(AppError::Upstream {
            status: None,
            code: Some(error),
            message: format!(
                "Entra ID refused the sign-in: {}",
                description.lines().next().unwrap_or("no reason given")
            ),
            request_id: None,
        }
        .into());
    }
    let (Some(code), Some(oauth_state)) = (query.code, query.state) else {
        return Err(AppError::invalid("code", "the callback needs code and state").into());
    };
    if cookie(&headers, STATE_COOKIE) != Some(oauth_state.as_str()) {
        return Err(AppError::invalid(
            "state",
            "this sign-in was not started in this browser: start again",
        )
        .into());
    }
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let address = peer.ip().to_string();
    let signed_in = state
        .app
        .oidc_finish(&code, &oauth_state, Some(&address), user_agent)
        .await?;
    let max_age = (signed_in.expires_at - behalf_domain::now_millis()) / 1000;
    // Not a 302: this answer ends a navigation that began at Entra ID, and a browser does not
    // send a SameSite=Strict cookie on a redirect of a cross-site chain, so `/` would load
    // signed out. A page of our own that moves on is a same-site navigation: the cookie goes.
    signed_in_page(
        "/",
        &[
            session_cookie(signed_in.session_token.expose(), signed_in.expires_at),
            format!(
                "{CSRF_COOKIE}={}; Path=/; Max-Age={max_age}; Secure; SameSite=Strict",
                signed_in.csrf_token.expose()
            ),
            format!("{STATE_COOKIE}=; Path=/auth/oidc; Max-Age=0; Secure; HttpOnly; SameSite=Lax"),
        ],
    )
}
