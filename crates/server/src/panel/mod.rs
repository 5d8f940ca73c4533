//! The admin panel: server-rendered pages (askama templates in `crates/server/templates/`),
//! htmx for partial updates and live progress, no inline script (the Content-Security-Policy
//! allows scripts from `'self'` only).
//!
//! Every page handler is: [`Panel`] (who is signed in; a signed-out browser is sent to
//! `/login`) → the permission-limited handle from the app layer for what the page does (a
//! missing handle is a 403 page, and the page never rendered the button) → one call → a
//! template. A request that changes state is a [`PanelForm`], which checks the session's CSRF
//! token (a form field or the `x-csrf-token` header htmx sends) before the handler runs.

mod assets;
mod behalf_key;
mod directory;
mod form;
mod groups;
mod jobs;
mod layout;
mod login;
mod password_reset;
mod progress;
mod reports;
mod settings;
mod user;
mod user_edit;
mod users;
mod writes;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};
use tower_http::set_header::SetResponseHeaderLayer;

pub use form::{FormData, PanelForm};
pub use layout::{Layout, Panel, PanelError, Section};

use crate::ServerState;

/// Scripts and styles from this origin only, no inline code, no framing, forms post back here.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The panel's routes, with its security headers.
pub fn router() -> Router<ServerState> {
    Router::new()
        .route("/", get(login::home))
        .route("/login", get(login::show).post(login::submit))
        .route("/login/link", get(login::link))
        .route(
            "/password/reset/{token}",
            get(password_reset::show).post(password_reset::submit),
        )
        .route("/logout", post(login::logout))
        .route("/users", get(users::list))
        .route("/users/actions", post(users::action))
        .route("/users/export.csv", get(users::export))
        .route("/users/new", get(user_edit::new_form).post(user_edit::create))
        .route("/users/{id}", get(user::show))
        .route("/users/{id}/edit", post(user_edit::edit))
        .route("/users/{id}/enabled", post(user_edit::set_enabled))
        .route("/users/{id}/delete", post(user_edit::delete))
        .route("/groups", get(groups::list))
        .route("/groups/new", get(groups::new_form).post(groups::create))
        .route("/groups/{id}", get(groups::show))
        .route("/groups/{id}/candidates", get(groups::candidates))
        .route("/groups/{id}/members", post(groups::add_member))
        .route("/groups/{id}/members/{user}/remove", post(groups::remove_member))
        .route("/groups/{id}/delete", post(groups::delete))
        .route("/users/{id}/keys/{key}/revoke", post(user::revoke_key))
        .route("/users/{id}/key-pairing", post(behalf_key::issue))
        .route(
            "/users/{id}/devices/{device}/revoke",
            post(behalf_key::revoke),
        )
        .route("/jobs", get(jobs::list))
        .route("/jobs/{id}", get(jobs::show))
        .route("/jobs/{id}/retry", post(jobs::retry))
        .route("/jobs/{id}/cancel", post(jobs::cancel))
        .route("/jobs/{id}/failures.csv", get(jobs::failures))
        .route("/directory", get(directory::show))
        .route("/directory/import", post(directory::import))
        .route("/directory/test", post(directory::test))
        .route("/directory/connections", post(directory::add))
        .route("/directory/writes", get(writes::list))
        .route("/directory/writes/{id}", get(writes::show))
        .route("/directory/writes/{id}/retry", post(writes::retry))
        .route("/directory/writes/{id}/discard", post(writes::discard))
        .route("/directory/writable", post(writes::set_writable))
        .route("/panel/sync", get(writes::fragment))
        .route("/reports", get(reports::show))
        .route("/reports/report.csv", get(reports::csv))
        .route("/reports/audit", get(reports::audit))
        .route("/settings", get(settings::show))
        .route("/settings/admins", post(settings::invite))
        .route("/settings/admins/{id}", post(settings::change_admin))
        .route("/settings/tokens", post(settings::create_token))
        .route("/settings/tokens/{id}/revoke", post(settings::revoke_token))
        .route("/settings/vault/rotate", post(settings::rotate))
        .route("/panel/progress", get(progress::fragment))
        .route("/panel/progress/dismiss", post(progress::dismiss))
        .route("/static/{file}", get(assets::serve))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static("camera=(), microphone=(), geolocation=(), publickey-credentials-get=(), publickey-credentials-create=()"),
        ))
}
