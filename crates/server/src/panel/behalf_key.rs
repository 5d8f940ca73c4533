//! The user page's "Behalf Key" tab: the user's paired devices (named, last seen, revocable),
//! and a one-time pairing code issued on screen (shown once) or mailed to the user.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use behalf_domain::{DeviceRole, KeyDevice, KeyDeviceId, UserId, format_millis};

use super::form::PanelForm;
use super::layout::{Layout, PanelError, Section, render};
use crate::ServerState;

/// One device as the tab lists it.
#[derive(Debug, Clone)]
pub struct DeviceRow {
    pub id: String,
    pub name: String,
    pub role: String,
    pub created: String,
    pub last_seen: String,
    pub revoked: String,
}

impl From<&KeyDevice> for DeviceRow {
    fn from(d: &KeyDevice) -> Self {
        DeviceRow {
            id: d.id.to_string(),
            name: d.name.clone(),
            role: d.role.to_string(),
            created: format_millis(d.created_at),
            last_seen: d.last_seen_at.map(format_millis).unwrap_or_default(),
            revoked: d.revoked_at.map(format_millis).unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "pairing_code.html")]
struct PairingPage {
    layout: Layout,
    user_id: String,
    upn: String,
    code: String,
    role: String,
    expires: String,
    server_url: String,
}

fn user_id(text: &str) -> Result<UserId, PanelError> {
    text.parse().map_err(|_| {
        PanelError::App(behalf_app::AppError::NotFound {
            what: "user",
            key: text.to_owned(),
        })
    })
}

fn provisioner<'a>(
    state: &'a ServerState,
    form: &PanelForm,
) -> Result<behalf_app::Provisioner<'a>, PanelError> {
    state
        .app
        .provisioner(&form.panel.caller)
        .ok_or(PanelError::Forbidden(
            "Behalf Key pairing needs an owner, or an admin with edit-users",
        ))
}

/// `POST /users/{id}/key-pairing`: a pairing code on screen (`role=admin` for an admin's
/// device), or mailed to the user (`mail=1`).
pub async fn issue(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    form: PanelForm,
) -> Result<Response, PanelError> {
    let provisioner = provisioner(&state, &form)?;
    let id = user_id(&id)?;
    let user = state
        .app
        .reader(&form.panel.caller)
        .user_details(id)
        .await?
        .user;
    if form.data.flag("mail") {
        let outcomes = provisioner
            .send_key_pairing(&[user.upn.to_string()])
            .await?;
        if let Some(error) = outcomes.iter().find_map(|o| o.error.clone()) {
            return Err(PanelError::App(behalf_app::AppError::Conflict(format!(
                "the pairing mail to {} could not be sent: {error}",
                user.upn
            ))));
        }
        return Ok(Redirect::to(&format!("/users/{id}?tab=devices&mailed=1")).into_response());
    }
    let role = match form.data.get("role") {
        Some("admin") => DeviceRole::Admin,
        _ => DeviceRole::User,
    };
    let issued = provisioner.issue_key_pairing(id, role).await?;
    Ok(render(&PairingPage {
        layout: form.panel.layout("Behalf Key pairing code", Section::Users),
        user_id: id.to_string(),
        upn: user.upn.to_string(),
        code: issued.code.expose().to_owned(),
        role: role.to_string(),
        expires: format_millis(issued.pairing.expires_at),
        server_url: behalf_app::ops::reset::public_base(state.app.config()),
    }))
}

/// `POST /users/{id}/devices/{device}/revoke`: the device's next request is refused.
pub async fn revoke(
    State(state): State<ServerState>,
    Path((id, device)): Path<(String, String)>,
    form: PanelForm,
) -> Result<Response, PanelError> {
    let provisioner = provisioner(&state, &form)?;
    let device: KeyDeviceId = device.parse().map_err(|_| {
        PanelError::App(behalf_app::AppError::NotFound {
            what: "Behalf Key device",
            key: device.clone(),
        })
    })?;
    provisioner.revoke_key_device(device).await?;
    Ok(Redirect::to(&format!("/users/{id}?tab=devices")).into_response())
}
