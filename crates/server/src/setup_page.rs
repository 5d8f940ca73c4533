//! `/setup`: the page a one-time setup link opens (the first owner's, printed by the first
//! `serve`; or an invited admin's, from `behalf admin create`). Plain HTML, no script.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use behalf_domain::Secret;
use serde::Deserialize;

use crate::ServerState;

const CSP: &str = "default-src 'none'; form-action 'self'; frame-ancestors 'none'";

#[derive(Debug, Deserialize)]
pub struct SetupLink {
    token: Option<String>,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(body: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-store"),
        ],
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>Behalf: set up your account</title></head><body><main>{body}</main></body></html>"
        ),
    )
        .into_response()
}

pub async fn show(Query(link): Query<SetupLink>) -> Response {
    let token = escape(link.token.as_deref().unwrap_or_default());
    page(&format!(
        "<h1>Set up your Behalf account</h1>\
         <form method=\"post\" action=\"/setup\">\
         <input type=\"hidden\" name=\"token\" value=\"{token}\">\
         <p><label for=\"email\">Email (the first owner chooses theirs; an invited admin's is already set)</label><br>\
         <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\"></p>\
         <p><label for=\"password\">Password (at least 12 characters)</label><br>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" required minlength=\"12\"></p>\
         <p><button type=\"submit\">Set password</button></p></form>"
    ))
}

#[derive(Debug, Deserialize)]
pub struct SetupForm {
    token: Secret,
    email: Option<String>,
    password: Secret,
}

pub async fn submit(State(state): State<ServerState>, Form(form): Form<SetupForm>) -> Response {
    let email = form.email.as_deref().filter(|e| !e.trim().is_empty());
    match state
        .app
        .complete_setup(form.token.expose(), email, &form.password)
        .await
    {
        Ok(admin) => page(&format!(
            "<h1>Done</h1><p>{} can now sign in.</p><p><a href=\"/login\">Sign in</a></p>",
            escape(&admin.username)
        )),
        Err(e) => page(&format!(
            "<h1>That did not work</h1><p>{}</p><p><a href=\"/setup?token={}\">Try again</a></p>",
            escape(&e.to_string()),
            escape(form.token.expose())
        )),
    }
}
