//! `/users/{id}`: one user's record in tabs: details and source, groups, security keys,
//! passkeys, events.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use behalf_app::ops::report::ReportRow;
use behalf_domain::{SecurityKeyId, SecurityKeyState, UserId, format_millis};
use serde::Deserialize;

use super::form::PanelForm;
use super::layout::{Layout, Panel, PanelError, Section, render};
use crate::ServerState;

#[derive(Debug, Deserialize)]
pub struct TabQuery {
    tab: Option<String>,
    mailed: Option<String>,
}

#[derive(Debug, Clone)]
pub struct KeyRow {
    pub id: String,
    pub kind: String,
    pub state: String,
    pub label: String,
    pub created: String,
    pub revocable: bool,
}

#[derive(Debug, Clone)]
pub struct PasskeyRow {
    pub rp: String,
    pub aaguid: String,
    pub model: &'static str,
    pub method_id: String,
    pub state: String,
    pub created_by: String,
    pub created: String,
    pub registered: String,
}

#[derive(Template)]
#[template(path = "user.html")]
struct UserPage {
    layout: Layout,
    tab: &'static str,
    id: String,
    upn: String,
    name: String,
    mail: String,
    department: String,
    enabled: bool,
    lifecycle: String,
    source: String,
    external_id: String,
    created: String,
    updated: String,
    groups: Vec<String>,
    keys: Vec<KeyRow>,
    passkeys: Vec<PasskeyRow>,
    events: Vec<ReportRow>,
    /// The "Behalf Key" tab: the user's paired devices.
    devices: Vec<super::behalf_key::DeviceRow>,
    /// A pairing code was just mailed.
    mailed: bool,
    /// The "In Entra ID" section (`user_edit.rs`): sync state and the edit forms.
    directory_html: String,
}

/// The authenticator model an AAGUID names, for the AAGUIDs Behalf itself writes.
fn model_of(aaguid: &str) -> &'static str {
    match aaguid {
        "00000000-0000-0000-0000-000000000000" => "none (no model claimed)",
        _ => "Behalf vault key",
    }
}

pub async fn show(
    State(state): State<ServerState>,
    panel: Panel,
    Path(id): Path<String>,
    Query(query): Query<TabQuery>,
) -> Result<Response, PanelError> {
    let id: UserId = id.parse().map_err(|_| {
        PanelError::App(behalf_app::AppError::NotFound {
            what: "user",
            key: id.clone(),
        })
    })?;
    let reader = state.app.reader(&panel.caller);
    let details = reader.user_details(id).await?;
    let tab = match query.tab.as_deref() {
        Some("groups") => "groups",
        Some("keys") => "keys",
        Some("passkeys") => "passkeys",
        Some("events") => "events",
        Some("devices") => "devices",
        _ => "details",
    };
    let devices = if tab == "devices" {
        reader
            .key_devices(id)
            .await?
            .iter()
            .map(super::behalf_key::DeviceRow::from)
            .collect()
    } else {
        Vec::new()
    };
    let events = if tab == "events" {
        reader.user_events(id).await?
    } else {
        Vec::new()
    };
    let source = match details.user.connection_id {
        Some(connection) => {
            let connections = state
                .app
                .reader(&panel.caller)
                .connections()
                .await
                .unwrap_or_default();
            connections
                .into_iter()
                .find(|c| c.id == connection)
                .map(|c| format!("{} ({})", c.name, c.kind))
                .unwrap_or_else(|| "a directory connection".into())
        }
        None => "created in Behalf".into(),
    };
    let u = &details.user;
    let mut layout = panel.layout(u.display_name.clone(), Section::Users);
    layout.title = format!("{} ({})", u.display_name, u.upn);
    let directory_html = if tab == "details" {
        super::user_edit::section(&state, &panel, u, &layout).await?
    } else {
        String::new()
    };
    Ok(render(&UserPage {
        layout,
        tab,
        id: u.id.to_string(),
        upn: u.upn.to_string(),
        name: u.display_name.clone(),
        mail: u.mail.clone().unwrap_or_default(),
        department: u.department.clone().unwrap_or_default(),
        enabled: u.enabled,
        lifecycle: u.lifecycle.to_string(),
        source,
        external_id: u.external_id.clone().unwrap_or_default(),
        created: format_millis(u.created_at),
        updated: format_millis(u.updated_at),
        groups: details
            .groups
            .iter()
            .map(|g| g.display_name.clone())
            .collect(),
        keys: details
            .security_keys
            .iter()
            .map(|k| KeyRow {
                id: k.id.to_string(),
                kind: k.kind.to_string(),
                state: k.state.to_string(),
                label: k.label.clone(),
                created: format_millis(k.created_at),
                revocable: k.state != SecurityKeyState::Revoked,
            })
            .collect(),
        passkeys: details
            .passkeys
            .iter()
            .map(|p| PasskeyRow {
                rp: p.rp_id.clone(),
                aaguid: p.aaguid.clone(),
                model: model_of(&p.aaguid),
                method_id: p.rp_method_id.clone().unwrap_or_default(),
                state: p.state.to_string(),
                created_by: p.created_by.clone(),
                created: format_millis(p.created_at),
                registered: p.registered_at.map(format_millis).unwrap_or_default(),
            })
            .collect(),
        events,
        devices,
        mailed: query.mailed.is_some(),
        directory_html,
    }))
}

/// `POST /users/{id}/keys/{key}/revoke`: the key stops being used for new passkeys (its
/// passkeys stay until the user is deprovisioned).
pub async fn revoke_key(
    State(state): State<ServerState>,
    Path((id, key)): Path<(String, String)>,
    form: PanelForm,
) -> Result<Response, PanelError> {
    let Some(provisioner) = state.app.provisioner(&form.panel.caller) else {
        return Err(PanelError::Forbidden(
            "security keys need an owner, or an admin with edit-users",
        ));
    };
    let key: SecurityKeyId = key.parse().map_err(|_| {
        PanelError::App(behalf_app::AppError::NotFound {
            what: "security key",
            key: key.clone(),
        })
    })?;
    provisioner.revoke_security_key(key).await?;
    Ok(Redirect::to(&format!("/users/{id}?tab=keys")).into_response())
}
