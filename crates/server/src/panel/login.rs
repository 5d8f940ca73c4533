//! Signing in to the panel: the password form, the one-time link `serve --sandbox` prints,
//! signing out.

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use behalf_app::AppError;
use behalf_domain::Secret;
use serde::Deserialize;

use super::form::PanelForm;
use super::layout::{Layout, Panel, PanelError, render};
use crate::ServerState;
use crate::auth::session_cookie;

const CLEAR_SESSION: &str = "behalf_session=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict";

/// `/`: the users page when signed in, else the sign-in page.
pub async fn home(panel: Result<Panel, PanelError>) -> Redirect {
    match panel {
        Ok(_) => Redirect::to("/users"),
        Err(_) => Redirect::to("/login"),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    email: String,
    error: Option<String>,
    microsoft: bool,
}

pub async fn show(State(state): State<ServerState>) -> Response {
    render(&LoginPage {
        layout: Layout::bare("Sign in"),
        email: String::new(),
        error: None,
        microsoft: state.app.oidc_enabled(),
    })
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    email: String,
    password: Secret,
}

/// A sign-in form posted from another site would sign the browser in to an account of the
/// attacker's choosing (login CSRF): only this origin's own page, or a browser that says
/// nothing (a script, an old browser), may post it.
pub(super) fn same_origin(headers: &HeaderMap) -> bool {
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(site) => site == "same-origin" || site == "none",
        None => {
            let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
            match (origin, host) {
                (Some(origin), Some(host)) => origin
                    .split_once("://")
                    .is_some_and(|(_, rest)| rest == host),
                _ => true,
            }
        }
    }
}

pub async fn submit(
    State(state): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let again = |status: StatusCode, error: String| {
        let mut r = render(&LoginPage {
            layout: Layout::bare("Sign in"),
            email: form.email.clone(),
            error: Some(error),
            microsoft: state.app.oidc_enabled(),
        });
        *r.status_mut() = status;
        r
    };
    if !same_origin(&headers) {
        return again(
            StatusCode::FORBIDDEN,
            "This sign-in form was sent from another site. Open the sign-in page of Behalf itself."
                .into(),
        );
    }
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let address = peer.ip().to_string();
    match state
        .app
        .sign_in(&form.email, &form.password, Some(&address), user_agent)
        .await
    {
        Ok(signed_in) => {
            let cookie = session_cookie(signed_in.session_token.expose(), signed_in.expires_at);
            let mut r = Redirect::to("/users").into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(AppError::Unauthenticated) => again(
            StatusCode::UNAUTHORIZED,
            "That email and password do not match an admin who can sign in.".into(),
        ),
        Err(AppError::RateLimited { retry_after_secs }) => again(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many failed attempts. Try again in {retry_after_secs} seconds."),
        ),
        Err(e) => PanelError::from(e).into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub struct LinkQuery {
    token: Option<Secret>,
}

/// `/login/link?token=…`: the one-time link `serve --sandbox` prints.
pub async fn link(
    State(state): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<LinkQuery>,
) -> Response {
    let Some(token) = query.token else {
        return Redirect::to("/login").into_response();
    };
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let address = peer.ip().to_string();
    match state
        .app
        .use_sign_in_link(token.expose(), Some(&address), user_agent)
        .await
    {
        Ok(signed_in) => {
            let cookie = session_cookie(signed_in.session_token.expose(), signed_in.expires_at);
            // A page that sets the cookie and moves on, as the OpenID Connect callback does:
            // the link may be opened from another application, and a redirect chain that began
            // elsewhere would not carry a SameSite=Strict cookie.
            crate::oidc::signed_in_page("/users", &[cookie]).into_response()
        }
        Err(e) => PanelError::from(e).into_response(),
    }
}

pub async fn logout(State(state): State<ServerState>, form: PanelForm) -> Response {
    if let Err(e) = state.app.sign_out(&form.panel.session).await {
        return PanelError::from(e).into_response();
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, HeaderValue::from_static(CLEAR_SESSION));
    r
}
