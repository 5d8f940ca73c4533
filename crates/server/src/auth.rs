//! Who is calling: extractors that resolve a bearer token or a session cookie to a [`Caller`],
//! and refuse before the handler (and before its body is read) when the caller may not.
//!
//! Order matters and is fixed here: identity (401), CSRF for a cookie-authenticated request that
//! changes state (403), capability (403). Handlers then take the permission-limited handle from
//! the [`behalf_app::App`] with the caller and make one domain call.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, header};
use behalf_app::auth::SessionCaller;
use behalf_app::{AppError, Caller};

use crate::ServerState;
use crate::problem::ApiError;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "behalf_session";
/// The header a cookie-authenticated request that changes state carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A signed-in caller.
#[derive(Debug, Clone)]
pub struct Auth {
    pub caller: Caller,
    /// The panel session, when the caller signed in with a cookie (not a token).
    pub session: Option<SessionCaller>,
    /// The API token, when the caller sent one.
    pub token: Option<behalf_domain::TokenId>,
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The `Set-Cookie` value of a new panel session: Secure, HttpOnly, SameSite=Strict, gone when
/// the session ends.
pub fn session_cookie(token: &str, expires_at: behalf_domain::Millis) -> String {
    let max_age = ((expires_at - behalf_domain::now_millis()) / 1000).max(0);
    format!(
        "{SESSION_COOKIE}={token}; Path=/; Max-Age={max_age}; Secure; HttpOnly; SameSite=Strict"
    )
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl FromRequestParts<ServerState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ServerState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(token) = bearer(parts) {
            return match state.app.token(token).await? {
                Some(t) => Ok(Auth {
                    caller: t.caller,
                    session: None,
                    token: Some(t.token.id),
                }),
                None => Err(AppError::Unauthenticated.into()),
            };
        }
        let Some(cookie) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(AppError::Unauthenticated.into());
        };
        let Some(session) = state.app.session(cookie).await? else {
            return Err(AppError::Unauthenticated.into());
        };
        if changes_state(&parts.method) {
            // A synchronizer token: SameSite cookies alone leave sibling subdomains and old
            // browsers; the token proves the request came from a page Behalf served.
            let presented = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if presented.is_empty() || !state.app.csrf_matches(&session, presented).await? {
                return Err(AppError::Csrf.into());
            }
        }
        Ok(Auth {
            caller: session.caller.clone(),
            session: Some(session),
            token: None,
        })
    }
}

macro_rules! capability {
    ($(#[$doc:meta])* $name:ident, $check:ident, $needed:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(pub Auth);

        impl FromRequestParts<ServerState> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &ServerState,
            ) -> Result<Self, Self::Rejection> {
                let auth = Auth::from_request_parts(parts, state).await?;
                if !auth.caller.$check() {
                    return Err(ApiError::forbidden($needed));
                }
                Ok($name(auth))
            }
        }
    };
}

capability!(/// A caller who may provision (owners, admins with edit-users; tokens scoped `provision`+).
    CanProvision, may_provision, "provisioning needs an owner, or an admin with edit-users, and a credential scoped provision or admin");
capability!(/// A caller who may manage directory connections (owners and admins; tokens scoped `admin`).
    CanOperate, may_operate, "directory connections need an owner or an admin, and a credential scoped admin");
capability!(/// An owner (tokens scoped `admin` of an owner).
    IsOwner, is_owner, "only an owner manages admins and tokens");

/// The client's address, for sign-in limits and the session list.
pub fn client_address(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}
