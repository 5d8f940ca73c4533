//! `/settings` (owners): admins (invite with a role, change the role or edit-users, disable,
//! enable, remove), API tokens (create with a scope, revoke), the vault's master key (rotate)
//! and the attestation settings from the configuration.

use std::time::Duration;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use behalf_app::Owner;
use behalf_app::auth::{AdminView, TokenView};
use behalf_domain::{AdminId, Role, TokenId, TokenScope, format_millis};

use super::form::{FormData, PanelForm};
use super::layout::{Layout, Panel, PanelError, Section, render};
use crate::ServerState;

/// The token lifetimes the form offers, in days (0: never expires).
const TOKEN_DAYS: [(u32, &str); 4] = [
    (30, "30 days"),
    (90, "90 days"),
    (365, "a year"),
    (0, "never"),
];

#[derive(Debug, Clone)]
pub struct AdminRow {
    pub id: String,
    pub email: String,
    pub role: String,
    pub can_edit_users: bool,
    pub disabled: bool,
    pub has_password: bool,
    pub created: String,
    /// The signed-in owner's own row (no disable or remove button on it).
    pub is_self: bool,
}

impl AdminRow {
    fn of(a: &AdminView, me: AdminId) -> AdminRow {
        AdminRow {
            id: a.id.to_string(),
            email: a.email.clone(),
            role: a.role.to_string(),
            can_edit_users: a.can_edit_users,
            disabled: a.disabled,
            has_password: a.has_password,
            created: format_millis(a.created_at),
            is_self: a.id == me,
        }
    }

    pub fn is(&self, role: &str) -> bool {
        self.role == role
    }
}

#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub admin: String,
    pub scope: String,
    pub kind: String,
    pub created: String,
    pub expires: String,
    pub last_used: String,
    pub revoked: String,
}

impl TokenRow {
    fn of(t: &TokenView) -> TokenRow {
        let time = |t: Option<i64>, none: &str| t.map(format_millis).unwrap_or_else(|| none.into());
        TokenRow {
            id: t.id.to_string(),
            name: t.name.clone(),
            admin: t.admin.clone(),
            scope: t.scope.to_string(),
            kind: t.kind.to_string(),
            created: format_millis(t.created_at),
            expires: time(t.expires_at, "never"),
            last_used: time(t.last_used_at, "never"),
            revoked: time(t.revoked_at, ""),
        }
    }
}

/// A secret shown this once (a setup link, a token).
#[derive(Debug, Clone)]
pub struct ShownOnce {
    pub what: String,
    pub value: String,
}

#[derive(Debug, Clone, Default)]
pub struct VaultRow {
    pub key_id: String,
    pub key_file: String,
    /// (key id, sealed rows)
    pub usage: Vec<(String, i64)>,
    pub pending: bool,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    layout: Layout,
    flash: Vec<String>,
    error: Option<String>,
    shown_once: Option<ShownOnce>,
    admins: Vec<AdminRow>,
    tokens: Vec<TokenRow>,
    token_days: Vec<(u32, &'static str)>,
    vault: VaultRow,
    attestation: String,
    aaguid: String,
}

#[derive(Template)]
#[template(path = "settings_confirm.html")]
struct ConfirmPage {
    layout: Layout,
    heading: String,
    message: String,
    action: String,
    fields: Vec<(String, String)>,
    button: String,
}

/// The page that asks before something destructive: `fields` are posted again with it.
fn confirm(
    panel: &Panel,
    heading: String,
    message: String,
    action: String,
    fields: &[(&str, &str)],
    button: &str,
) -> Response {
    render(&ConfirmPage {
        layout: panel.layout(heading.clone(), Section::Settings),
        heading,
        message,
        action,
        fields: fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        button: button.to_owned(),
    })
}

#[derive(Default)]
struct Outcome {
    flash: Vec<String>,
    error: Option<String>,
    shown_once: Option<ShownOnce>,
}

impl Outcome {
    fn done(line: impl Into<String>) -> Outcome {
        Outcome {
            flash: vec![line.into()],
            ..Outcome::default()
        }
    }

    fn failed(e: impl std::fmt::Display) -> Outcome {
        Outcome {
            error: Some(e.to_string()),
            ..Outcome::default()
        }
    }
}

fn owner<'a>(state: &'a ServerState, panel: &Panel) -> Result<Owner<'a>, PanelError> {
    state.app.owner(&panel.caller).ok_or(PanelError::Forbidden(
        "the settings (admins, API tokens, the master key) are for owners",
    ))
}

async fn page(
    state: &ServerState,
    panel: &Panel,
    owner: &Owner<'_>,
    outcome: Outcome,
) -> Result<Response, PanelError> {
    let admins = owner.list_admins().await?;
    let tokens = owner.list_tokens().await?;
    let vault = owner.reader().vault_status().await?;
    let provisioning = &state.app.config().provisioning;
    let mut r = render(&SettingsPage {
        layout: panel.layout("Settings", Section::Settings),
        flash: outcome.flash,
        error: outcome.error,
        shown_once: outcome.shown_once,
        admins: admins
            .iter()
            .map(|a| AdminRow::of(a, panel.admin.id))
            .collect(),
        tokens: tokens.iter().map(TokenRow::of).collect(),
        token_days: TOKEN_DAYS.to_vec(),
        vault: VaultRow {
            key_id: vault.master_key_id,
            key_file: vault.key_file,
            usage: vault.usage,
            pending: vault.rotation_pending,
        },
        attestation: provisioning.attestation.as_str().to_owned(),
        aaguid: provisioning.aaguid.to_string(),
    });
    // A page that may hold a secret shown once is never stored by the browser.
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(r)
}

/// `GET /settings`.
pub async fn show(State(state): State<ServerState>, panel: Panel) -> Result<Response, PanelError> {
    let owner = owner(&state, &panel)?;
    page(&state, &panel, &owner, Outcome::default()).await
}

fn parse_role(data: &FormData) -> Result<Role, PanelError> {
    let text = data.get("role").unwrap_or_default();
    text.parse::<Role>().map_err(|_| {
        behalf_app::AppError::invalid("role", format!("{text:?}: choose owner, admin or viewer"))
            .into()
    })
}

/// Where this server was reached, for the setup link (the `Host` the browser used).
fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

/// `POST /settings/admins`: invite an admin; the setup link is shown once.
pub async fn invite(
    State(state): State<ServerState>,
    headers: HeaderMap,
    form: PanelForm,
) -> Result<Response, PanelError> {
    let PanelForm { panel, data } = form;
    let owner = owner(&state, &panel)?;
    let role = parse_role(&data)?;
    let email = data.get("email").unwrap_or_default().to_owned();
    let outcome = match owner
        .create_admin(&email, role, data.flag("can_edit_users"), None)
        .await
    {
        Ok(created) => Outcome {
            flash: vec![format!(
                "Invited {} as {}. Send them the link below: it sets their password, works once, for 24 hours.",
                created.admin.username, created.admin.role
            )],
            shown_once: created.setup_token.map(|t| ShownOnce {
                what: format!("Setup link for {}", created.admin.username),
                value: format!("{}/setup?token={}", origin(&headers), t.expose()),
            }),
            ..Outcome::default()
        },
        Err(e) => Outcome::failed(format!("{email} was not invited: {e}")),
    };
    page(&state, &panel, &owner, outcome).await
}

fn admin_id(id: &str) -> Result<AdminId, PanelError> {
    id.parse().map_err(|_| {
        PanelError::App(behalf_app::AppError::NotFound {
            what: "admin",
            key: id.to_owned(),
        })
    })
}

/// `POST /settings/admins/{id}` with `op` = `role` (with `role`, `can_edit_users`),
/// `disable`, `enable` or `remove` (which asks first).
pub async fn change_admin(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    form: PanelForm,
) -> Result<Response, PanelError> {
    let PanelForm { panel, data } = form;
    let owner = owner(&state, &panel)?;
    let id = admin_id(&id)?;
    let admin = owner.admin(id).await?;
    let outcome = match data.get("op").unwrap_or_default() {
        "role" => {
            let role = parse_role(&data)?;
            let edit = data.flag("can_edit_users");
            match owner.update_admin(id, role, edit).await {
                Ok(v) => Outcome::done(format!(
                    "{} is now {}{}.",
                    v.email,
                    v.role,
                    if v.can_edit_users {
                        ", with edit-users"
                    } else {
                        ", without edit-users"
                    }
                )),
                Err(e) => Outcome::failed(format!("{} was not changed: {e}", admin.email)),
            }
        }
        "disable" => match owner.set_admin_disabled(id, true).await {
            Ok(v) => Outcome::done(format!(
                "{} is disabled: their sessions and tokens are refused until you enable them again.",
                v.email
            )),
            Err(e) => Outcome::failed(format!("{} was not disabled: {e}", admin.email)),
        },
        "enable" => match owner.set_admin_disabled(id, false).await {
            Ok(v) => Outcome::done(format!("{} is enabled again.", v.email)),
            Err(e) => Outcome::failed(format!("{} was not enabled: {e}", admin.email)),
        },
        "remove" => {
            if !data.flag("confirmed") {
                return Ok(confirm(
                    &panel,
                    format!("Remove {}?", admin.email),
                    "Their sessions and API tokens end at once, and they cannot sign in again unless invited anew. Their past actions stay in the audit log.".into(),
                    format!("/settings/admins/{id}"),
                    &[("op", "remove"), ("confirmed", "1")],
                    "Remove",
                ));
            }
            match owner.delete_admin(id).await {
                Ok(()) => Outcome::done(format!("Removed {}.", admin.email)),
                Err(e) => Outcome::failed(format!("{} was not removed: {e}", admin.email)),
            }
        }
        other => {
            return Err(behalf_app::AppError::invalid(
                "op",
                format!("{other:?}: choose role, disable, enable or remove"),
            )
            .into());
        }
    };
    page(&state, &panel, &owner, outcome).await
}

/// `POST /settings/tokens`: create an API token; it is shown once.
pub async fn create_token(
    State(state): State<ServerState>,
    form: PanelForm,
) -> Result<Response, PanelError> {
    let PanelForm { panel, data } = form;
    let owner = owner(&state, &panel)?;
    let scope_text = data.get("scope").unwrap_or("read");
    let scope: TokenScope = scope_text.parse().map_err(|_| {
        PanelError::from(behalf_app::AppError::invalid(
            "scope",
            format!("{scope_text:?}: choose read, provision or admin"),
        ))
    })?;
    let days_text = data.get("expires_days").unwrap_or("90");
    let days = days_text
        .parse::<u32>()
        .ok()
        .filter(|d| TOKEN_DAYS.iter().any(|(n, _)| n == d))
        .ok_or_else(|| {
            PanelError::from(behalf_app::AppError::invalid(
                "expires_days",
                format!("{days_text:?} is not one of the offered lifetimes"),
            ))
        })?;
    let expires = (days > 0).then(|| Duration::from_secs(u64::from(days) * 86_400));
    let admin = data
        .get("admin")
        .unwrap_or(panel.admin.username.as_str())
        .to_owned();
    let name = data.get("name").unwrap_or_default().to_owned();
    let outcome = match owner.create_token(&admin, &name, scope, expires).await {
        Ok(created) => Outcome {
            flash: vec![format!(
                "Created the token {} for {admin}, scope {}. Copy it now: it is shown only this once.",
                created.entry.name, created.entry.scope
            )],
            shown_once: Some(ShownOnce {
                what: format!("API token {}", created.entry.name),
                value: created.token.expose().to_owned(),
            }),
            ..Outcome::default()
        },
        Err(e) => Outcome::failed(format!("The token was not created: {e}")),
    };
    page(&state, &panel, &owner, outcome).await
}

/// `POST /settings/tokens/{id}/revoke` (asks first).
pub async fn revoke_token(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    form: PanelForm,
) -> Result<Response, PanelError> {
    let PanelForm { panel, data } = form;
    let owner = owner(&state, &panel)?;
    let id: TokenId = id.parse().map_err(|_| {
        PanelError::App(behalf_app::AppError::NotFound {
            what: "token",
            key: id.clone(),
        })
    })?;
    let token = owner
        .list_tokens()
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| behalf_app::AppError::NotFound {
            what: "token",
            key: id.to_string(),
        })?;
    if !data.flag("confirmed") {
        return Ok(confirm(
            &panel,
            format!("Revoke the token {}?", token.name),
            format!(
                "It stops working at once for whatever uses it ({}'s {} token). This cannot be undone: make a new token if it is needed again.",
                token.admin, token.scope
            ),
            format!("/settings/tokens/{id}/revoke"),
            &[("confirmed", "1")],
            "Revoke",
        ));
    }
    let outcome = match owner.revoke_token(id).await {
        Ok(()) => Outcome::done(format!("Revoked the token {}.", token.name)),
        Err(e) => Outcome::failed(format!("The token was not revoked: {e}")),
    };
    page(&state, &panel, &owner, outcome).await
}

/// `POST /settings/vault/rotate` (asks first): a new master key re-wraps every sealed row.
pub async fn rotate(
    State(state): State<ServerState>,
    form: PanelForm,
) -> Result<Response, PanelError> {
    let PanelForm { panel, data } = form;
    let owner = owner(&state, &panel)?;
    if !data.flag("confirmed") {
        let status = owner.reader().vault_status().await?;
        return Ok(confirm(
            &panel,
            "Rotate the master key?".into(),
            format!(
                "A new master key re-wraps every credential and secret in the vault and replaces {}. Afterwards the old key opens nothing: back up the new file, and restart any other instance that shares this database.",
                status.key_file
            ),
            "/settings/vault/rotate".into(),
            &[("confirmed", "1")],
            "Rotate the key",
        ));
    }
    let outcome = match owner.rotate_master_key().await {
        Ok(r) => Outcome::done(format!(
            "Rotated the master key: {} → {}, {} sealed rows re-wrapped. The new key is in {}: back it up now.",
            r.old_key_id, r.new_key_id, r.rewrapped, r.key_file
        )),
        Err(e) => Outcome::failed(format!("The master key was not rotated: {e}")),
    };
    page(&state, &panel, &owner, outcome).await
}
