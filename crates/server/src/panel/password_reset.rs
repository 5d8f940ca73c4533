//! `/password/reset/{token}`: the page a password-reset link opens, signed out. The token in
//! the path is the capability (no session, so no session CSRF token): the form is refused when
//! a browser says another site sent it (login CSRF, as the sign-in form), and the token itself
//! is what an attacker would lack. The password goes from the form to the app layer in a
//! [`Secret`] and is never echoed back, not even into the form after a refusal.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use behalf_app::AppError;
use behalf_app::ops::reset::{RESET_PATH, ResetPage};
use behalf_domain::Secret;
use serde::Deserialize;

use super::layout::{Layout, PanelError, render};
use super::login::same_origin;
use crate::ServerState;

#[derive(Template)]
#[template(path = "password_reset.html")]
struct ResetTemplate {
    layout: Layout,
    /// Whose link it is, while it can be used.
    user: Option<ResetPage>,
    /// Where the form posts (the link itself).
    action: String,
    /// The UPN whose password was just set.
    done: Option<String>,
    force_change: bool,
    error: Option<String>,
}

fn page(status: StatusCode, template: ResetTemplate) -> Response {
    let mut r = render(&template);
    *r.status_mut() = status;
    r
}

fn template(token: &Secret) -> ResetTemplate {
    ResetTemplate {
        layout: Layout::bare("Set your password"),
        user: None,
        action: format!("{RESET_PATH}{}", token.expose()),
        done: None,
        force_change: false,
        error: None,
    }
}

/// A refusal in words for the person holding the link; anything else is the panel's error page.
fn refused(e: AppError, mut t: ResetTemplate) -> Response {
    match e {
        AppError::Invalid { field, reason } if field == "link" => {
            t.user = None;
            t.error = Some(capitalised(&reason));
            page(StatusCode::GONE, t)
        }
        AppError::Invalid { reason, .. } => {
            t.error = Some(capitalised(&reason));
            page(StatusCode::BAD_REQUEST, t)
        }
        AppError::Upstream { message, .. } => {
            // In the app layer's words (whether trying again can help); the link still works.
            t.error = Some(capitalised(&message));
            page(StatusCode::BAD_GATEWAY, t)
        }
        other => PanelError::from(other).into_response(),
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

pub async fn show(State(state): State<ServerState>, Path(token): Path<Secret>) -> Response {
    let mut t = template(&token);
    match state.app.reset_page(token.expose()).await {
        Ok(user) => {
            t.user = Some(user);
            page(StatusCode::OK, t)
        }
        Err(e) => refused(e, t),
    }
}

/// The page again after a refused password, for another try (the link still works).
async fn again(
    state: &ServerState,
    token: &Secret,
    mut t: ResetTemplate,
    error: String,
    status: StatusCode,
) -> Response {
    match state.app.reset_page(token.expose()).await {
        Ok(user) => {
            t.user = Some(user);
            t.error = Some(error);
            page(status, t)
        }
        Err(e) => refused(e, t),
    }
}

#[derive(Debug, Deserialize)]
pub struct ResetForm {
    password: Secret,
    confirm: Secret,
}

pub async fn submit(
    State(state): State<ServerState>,
    Path(token): Path<Secret>,
    headers: HeaderMap,
    Form(form): Form<ResetForm>,
) -> Response {
    let mut t = template(&token);
    if !same_origin(&headers) {
        t.error = Some(
            "This form was sent from another site. Open the link from your mail again.".into(),
        );
        return page(StatusCode::FORBIDDEN, t);
    }
    if form.password.expose() != form.confirm.expose() {
        return again(
            &state,
            &token,
            t,
            "The two passwords are not the same. Type the new password twice.".into(),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    match state
        .app
        .set_password_with_link(&token, &form.password)
        .await
    {
        Ok(user) => {
            t.done = Some(user.upn);
            t.force_change = state.app.config().mail.force_change_password;
            page(StatusCode::OK, t)
        }
        Err(AppError::Invalid { field, reason }) if field == "password" => {
            again(
                &state,
                &token,
                t,
                format!("Microsoft Entra ID did not accept this password: {reason}"),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        // Not set this time; the link still works, so the form is there for another try.
        Err(AppError::Upstream { message, .. }) => {
            again(
                &state,
                &token,
                t,
                capitalised(&message),
                StatusCode::BAD_GATEWAY,
            )
            .await
        }
        Err(e) => refused(e, t),
    }
}
