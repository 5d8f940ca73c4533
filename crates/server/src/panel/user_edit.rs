//! Users written to Entra ID from the panel: "New user" (`/users/new`), and on a user's page
//! the section that edits, disables, enables and deletes them, with whether each change has
//! reached Entra ID. Only for users of a writable connection; for others the section says why
//! in one line. Every change is an `Operator` call; the forms are not rendered for a role
//! without it, and the handlers refuse it anyway.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use behalf_app::ops::outbound::NewDirectoryUser;
use behalf_app::{AppError, Operator};
use behalf_domain::{User, UserId};
use behalf_store::UserChange;

use super::form::{FormData, PanelForm};
use super::layout::{Layout, Panel, PanelError, Section, render};
use super::writes::{Subject, sync_fragment};
use crate::ServerState;

fn operator<'a>(state: &'a ServerState, panel: &Panel) -> Result<Operator<'a>, PanelError> {
    state
        .app
        .operator(&panel.caller)
        .ok_or(PanelError::Forbidden(
            "creating, changing and deleting users in Entra ID needs an owner or an admin",
        ))
}

fn user_id(id: &str) -> Result<UserId, PanelError> {
    id.parse().map_err(|_| {
        PanelError::App(AppError::NotFound {
            what: "user",
            key: id.to_owned(),
        })
    })
}

#[derive(Template)]
#[template(path = "user_directory.html")]
struct DirectorySection {
    layout: Layout,
    id: String,
    name: String,
    department: String,
    enabled: bool,
    /// Why the user's changes are not written to Entra ID; None when they are.
    why_not: Option<String>,
    sync_html: String,
}

/// The user page's "In Entra ID" section: the sync state and, for a writable user and a role
/// that may, the forms.
pub(super) async fn section(
    state: &ServerState,
    panel: &Panel,
    user: &User,
    layout: &Layout,
) -> Result<String, PanelError> {
    let writability = state
        .app
        .reader(&panel.caller)
        .writability(user.connection_id)
        .await?;
    let sync = sync_fragment(state, panel, Subject::User(user.id)).await?;
    // A read-only user with no change ever written needs no sync line, only the reason.
    let sync_html = if writability.is_writable() || !sync.writes.is_empty() {
        sync.render()
            .map_err(|e| PanelError::App(AppError::internal(e)))?
    } else {
        String::new()
    };
    DirectorySection {
        layout: layout.clone(),
        id: user.id.to_string(),
        name: user.display_name.clone(),
        department: user.department.clone().unwrap_or_default(),
        enabled: user.enabled,
        why_not: writability.why_not(),
        sync_html,
    }
    .render()
    .map_err(|e| PanelError::App(AppError::internal(e)))
}

/// `POST /users/{id}/edit`: the display name and department, as changed in the form.
pub async fn edit(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    form: PanelForm,
) -> Result<Response, PanelError> {
    let operator = operator(&state, &form.panel)?;
    let id = user_id(&id)?;
    let user = state
        .app
        .reader(&form.panel.caller)
        .user_details(id)
        .await?
        .user;
    // Only what differs from Behalf's record is written: an unchanged field is not a change.
    let name = form.data.get("display_name").unwrap_or_default();
    let department = form.data.get("department").unwrap_or_default();
    let change = UserChange {
        display_name: (name != user.display_name).then(|| name.to_owned()),
        department: (department != user.department.as_deref().unwrap_or_default())
            .then(|| Some(department.to_owned()).filter(|d| !d.is_empty())),
        enabled: None,
    };
    if change.is_empty() {
        return Err(AppError::invalid(
            "display_name",
            "nothing to change: the form holds what Behalf has already",
        )
        .into());
    }
    operator.update_directory_user(id, change).await?;
    Ok(Redirect::to(&format!("/users/{id}")).into_response())
}

/// `POST /users/{id}/enabled`: `enabled=1` enables the account, `enabled=0` disables it.
pub async fn set_enabled(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    form: PanelForm,
) -> Result<Response, PanelError> {
    let operator = operator(&state, &form.panel)?;
    let id = user_id(&id)?;
    let enabled = match form.data.get("enabled") {
        Some("1") => true,
        Some("0") => false,
        _ => return Err(AppError::invalid("enabled", "1 (enable) or 0 (disable)").into()),
    };
    operator.set_directory_user_enabled(id, enabled).await?;
    Ok(Redirect::to(&format!("/users/{id}")).into_response())
}

#[derive(Template)]
#[template(path = "directory_confirm.html")]
pub(super) struct ConfirmPage {
    pub layout: Layout,
    pub heading: String,
    pub message: String,
    pub action: String,
    pub button: String,
    pub cancel: String,
}

/// `POST /users/{id}/delete`: first a page that asks, then (with `confirmed=1`) the deletion is
/// queued and its write's page shows it reach Entra ID.
pub async fn delete(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    form: PanelForm,
) -> Result<Response, PanelError> {
    let operator = operator(&state, &form.panel)?;
    let id = user_id(&id)?;
    if !form.data.flag("confirmed") {
        let user = state
            .app
            .reader(&form.panel.caller)
            .user_details(id)
            .await?
            .user;
        return Ok(render(&ConfirmPage {
            layout: form.panel.layout("Delete user?", Section::Users),
            heading: format!("Delete {} in Entra ID?", user.upn),
            message: "The account is deleted in Entra ID (it stays in the tenant's deleted users for 30 days, where an Entra admin can restore it). Behalf forgets the user once Entra ID has deleted it, unless the user has passkeys or keys here, which are kept as deprovisioned.".into(),
            action: format!("/users/{id}/delete"),
            button: "Delete the user".into(),
            cancel: format!("/users/{id}"),
        }));
    }
    let write = operator.delete_directory_user(id).await?;
    Ok(Redirect::to(&format!("/directory/writes/{}", write.id)).into_response())
}

#[derive(Template)]
#[template(path = "user_new.html")]
struct NewUserPage {
    layout: Layout,
    /// The connection new users go to; None: none is writable (the page says so).
    connection: Option<String>,
    error: Option<String>,
    upn: String,
    display_name: String,
    mail_nickname: String,
    department: String,
    enabled: bool,
    show_password: bool,
}

impl NewUserPage {
    fn of(layout: Layout, connection: Option<String>, data: &FormData) -> NewUserPage {
        let get = |name: &str| data.get(name).unwrap_or_default().to_owned();
        NewUserPage {
            layout,
            connection,
            error: None,
            upn: get("upn"),
            display_name: get("display_name"),
            mail_nickname: get("mail_nickname"),
            department: get("department"),
            // A fresh form starts enabled; a form sent back keeps what was ticked.
            enabled: data.get("upn").is_none() || data.flag("enabled"),
            show_password: data.flag("show_password"),
        }
    }
}

async fn writable_connection(
    state: &ServerState,
    panel: &Panel,
) -> Result<Option<String>, PanelError> {
    Ok(state
        .app
        .reader(&panel.caller)
        .writable_connection()
        .await?
        .map(|c| c.name))
}

/// `GET /users/new`: the form (for a role that may create users).
pub async fn new_form(
    State(state): State<ServerState>,
    panel: Panel,
) -> Result<Response, PanelError> {
    operator(&state, &panel)?;
    let connection = writable_connection(&state, &panel).await?;
    Ok(render(&NewUserPage::of(
        panel.layout("New user", Section::Users),
        connection,
        &FormData::default(),
    )))
}

#[derive(Template)]
#[template(path = "user_created.html")]
struct CreatedPage {
    layout: Layout,
    id: String,
    upn: String,
    password: String,
    sync_html: String,
}

/// `POST /users/new`: creates the user in Behalf and queues it for Entra ID (or, with "show an
/// initial password once", sends it now and shows the password on the answer page, once).
pub async fn create(
    State(state): State<ServerState>,
    form: PanelForm,
) -> Result<Response, PanelError> {
    let PanelForm { panel, data } = form;
    let operator = operator(&state, &panel)?;
    let page = |error: String, connection: Option<String>| {
        let mut page = NewUserPage::of(panel.layout("New user", Section::Users), connection, &data);
        page.error = Some(error);
        page
    };
    let new = NewDirectoryUser {
        upn: data.get("upn").unwrap_or_default().to_owned(),
        display_name: data.get("display_name").unwrap_or_default().to_owned(),
        mail_nickname: data.get("mail_nickname").map(str::to_owned),
        account_enabled: data.flag("enabled"),
        department: data.get("department").map(str::to_owned),
        show_initial_password: data.flag("show_password"),
    };
    let created = match operator.create_directory_user(new).await {
        Ok(created) => created,
        // Bad input or a taken UPN: the form again, with what was typed and why.
        Err(e @ (AppError::Invalid { .. } | AppError::Conflict(_))) => {
            let connection = writable_connection(&state, &panel).await?;
            let mut r = render(&page(e.to_string(), connection));
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            return Ok(r);
        }
        Err(e) => return Err(e.into()),
    };
    let id = created.user.id;
    let Some(password) = created.initial_password else {
        return Ok(Redirect::to(&format!("/users/{id}")).into_response());
    };
    let sync_html = sync_fragment(&state, &panel, Subject::User(id))
        .await?
        .render()
        .map_err(|e| PanelError::App(AppError::internal(e)))?;
    // `render` marks the page no-store: the password is not kept by the browser either.
    Ok(render(&CreatedPage {
        layout: panel.layout("User created", Section::Users),
        id: id.to_string(),
        upn: created.user.upn.to_string(),
        password: password.expose().to_owned(),
        sync_html,
    }))
}
