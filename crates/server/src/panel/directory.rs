//! `/directory`: the directory connections (import now, test, the sync schedule, adding an
//! Entra ID tenant) and `doctor`'s findings about the tenant.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use behalf_app::ops::directory::{AppCredential, ConnectionView, NewEntraConnection};
use behalf_app::ops::doctor::Status;
use behalf_directory::{ImportMode, ImportSummary, NoProgress};
use behalf_domain::{ConnectionKind, Secret, format_millis};

use super::form::PanelForm;
use super::layout::{Layout, Panel, PanelError, Section, render};
use crate::ServerState;

#[derive(Debug, Clone)]
pub struct ConnectionRow {
    pub name: String,
    pub kind: &'static str,
    pub entra: bool,
    pub tenant: String,
    pub app: String,
    pub last_import: String,
    pub delta: &'static str,
    pub schedule: String,
}

#[derive(Debug, Clone)]
pub struct FindingRow {
    pub check: String,
    pub status: &'static str,
    pub message: String,
    pub fix: String,
}

#[derive(Template)]
#[template(path = "directory.html")]
struct DirectoryPage {
    layout: Layout,
    connections: Vec<ConnectionRow>,
    /// What the last action did, said in `#flash`.
    flash: Vec<String>,
    /// Why the last action failed.
    error: Option<String>,
    findings: Vec<FindingRow>,
    /// Why `doctor` could not run at all.
    doctor_error: Option<String>,
    doctor_ok: bool,
    /// The add-tenant form's values when it is shown again after an error (never the secret).
    form_name: String,
    form_tenant: String,
    form_client: String,
    form_certificate: bool,
    interval: String,
}

fn every(secs: u64) -> String {
    match secs {
        0 => "off".into(),
        s if s % 3600 == 0 => format!("every {} h", s / 3600),
        s if s % 60 == 0 => format!("every {} min", s / 60),
        s => format!("every {s} s"),
    }
}

fn row(c: &ConnectionView) -> ConnectionRow {
    let entra = c.kind == ConnectionKind::EntraId;
    ConnectionRow {
        name: c.name.clone(),
        kind: if entra { "Entra ID" } else { "SCIM" },
        entra,
        tenant: c.tenant_id.clone().unwrap_or_default(),
        app: match (&c.client_id, c.own_app) {
            (Some(id), true) => format!("{id} (its own credential, sealed in the vault)"),
            (Some(id), false) => format!("{id} (from [entra])"),
            (None, _) => "from [entra]".into(),
        },
        // An import touches the connection at its start and saves the delta links at its
        // end; a connection never imported still has its creation time.
        last_import: if c.updated_at == c.created_at && !c.has_delta_link {
            "never".into()
        } else {
            format_millis(c.updated_at)
        },
        delta: if c.has_delta_link {
            "the next import continues from the last one (delta)"
        } else {
            "no delta link: the next import is a full round"
        },
        schedule: if c.scheduled {
            format!(
                "{} by the server's sync (sync.interval_secs)",
                every(c.sync_interval_secs)
            )
        } else if !entra {
            "pushed by the identity provider (SCIM)".into()
        } else if c.sync_interval_secs == 0 {
            "only on \"Import now\": the server's sync is off (sync.interval_secs = 0)".into()
        } else {
            "only on \"Import now\": the server's sync runs without an [entra] app, or imports another connection".into()
        },
    }
}

/// How to fix what a check found, where the finding's own words do not say it already.
fn fix(check: &str, status: Status, aaguid: &str) -> String {
    if status == Status::Ok {
        return "Nothing to do.".into();
    }
    match check {
        "sign-in" => "Check [entra] tenant_id and client_id and the client secret or certificate (or the connection's), and that the secret has not expired (App registrations → Certificates & secrets).".into(),
        "permissions" => "Entra admin center → App registrations → Behalf → API permissions: add UserAuthenticationMethod.ReadWrite.All (Application), then \"Grant admin consent\".".into(),
        "admin account" => "Provision that admin's own passkey with the app's credential ([entra] client secret or certificate) or another admin's sign-in.".into(),
        "FIDO2 policy" => "Entra admin center → Protection → Authentication methods → Policies → Passkey (FIDO2): enable it for the users Behalf provisions. To let doctor read it, grant Policy.Read.All.".into(),
        "self-service setup" => "In the Passkey (FIDO2) policy → Configure: set \"Allow self-service set up\" to Yes.".into(),
        "attestation" => "In the Passkey (FIDO2) policy → Configure: set \"Enforce attestation\" to No for the provisioned users.".into(),
        "key restrictions" => format!("In the Passkey (FIDO2) policy → Configure → Key restrictions: allow the AAGUID {aaguid}, or turn the restrictions off."),
        _ => "See the finding.".into(),
    }
}

/// What a Graph permission lets Behalf do, in words.
fn permission_words(p: &str) -> String {
    let what = match p {
        "UserAuthenticationMethod.ReadWrite.All" => {
            "register and delete users' passkeys, issue Temporary Access Passes"
        }
        "UserAuthMethod-Passkey.ReadWrite.All" => "register and delete users' passkeys (v1.0)",
        "UserAuthenticationMethod.Read.All" => {
            "read users' authentication methods (not enough to register passkeys)"
        }
        "User.Read.All" => "read users (the import)",
        "Directory.Read.All" => "read users, groups and memberships (the import)",
        "GroupMember.Read.All" => "read groups and their members (the import)",
        "Group.Read.All" => "read groups (the import)",
        "Policy.Read.All" => "read the passkey (FIDO2) policy (doctor)",
        "Policy.ReadWrite.AuthenticationMethod" => {
            "read and change the authentication methods policy"
        }
        _ => "",
    };
    if what.is_empty() {
        p.to_owned()
    } else {
        format!("{p}: {what}")
    }
}

#[derive(Default)]
struct Outcome {
    flash: Vec<String>,
    error: Option<String>,
    form_name: String,
    form_tenant: String,
    form_client: String,
    form_certificate: bool,
}

impl Outcome {
    fn said(flash: Vec<String>) -> Outcome {
        Outcome {
            flash,
            ..Outcome::default()
        }
    }

    fn failed(error: String) -> Outcome {
        Outcome {
            error: Some(error),
            ..Outcome::default()
        }
    }
}

/// The connection a form names.
fn connection(data: &super::form::FormData) -> Result<String, PanelError> {
    data.get("connection")
        .map(str::to_owned)
        .ok_or_else(|| behalf_app::AppError::invalid("connection", "which connection?").into())
}

async fn page(
    state: &ServerState,
    panel: &Panel,
    outcome: Outcome,
) -> Result<Response, PanelError> {
    let reader = state.app.reader(&panel.caller);
    let connections = reader.connections().await?;
    let aaguid = state.app.config().provisioning.aaguid.to_string();
    let (findings, doctor_error, doctor_ok) = match reader.doctor(None).await {
        Ok(report) => (
            report
                .findings
                .iter()
                .map(|f| FindingRow {
                    check: f.check.to_owned(),
                    status: match f.status {
                        Status::Ok => "ok",
                        Status::Warning => "warning",
                        Status::Problem => "problem",
                    },
                    message: f.message.clone(),
                    fix: fix(f.check, f.status, &aaguid),
                })
                .collect(),
            None,
            report.ok,
        ),
        // Not configured, or Graph unreachable: said on the page, not an error page.
        Err(e) => (Vec::new(), Some(e.to_string()), false),
    };
    Ok(render(&DirectoryPage {
        layout: panel.layout("Directory", Section::Directory),
        connections: connections.iter().map(row).collect(),
        flash: outcome.flash,
        error: outcome.error,
        findings,
        doctor_error,
        doctor_ok,
        form_name: outcome.form_name,
        form_tenant: outcome.form_tenant,
        form_client: outcome.form_client,
        form_certificate: outcome.form_certificate,
        interval: every(state.app.config().sync.interval_secs),
    }))
}

/// `GET /directory`.
pub async fn show(State(state): State<ServerState>, panel: Panel) -> Result<Response, PanelError> {
    page(&state, &panel, Outcome::default()).await
}

fn operator<'a>(
    state: &'a ServerState,
    panel: &Panel,
) -> Result<behalf_app::Operator<'a>, PanelError> {
    state
        .app
        .operator(&panel.caller)
        .ok_or(PanelError::Forbidden(
            "directory connections need an owner or an admin",
        ))
}

fn counts(name: &str, s: &ImportSummary) -> Vec<String> {
    let mut lines = vec![format!(
        "Imported {name}{}: {} users ({} new, {} changed, {} deleted or disabled), {} groups ({} new, {} changed, {} deleted).",
        match (s.mode, s.fell_back_to_full) {
            (_, true) => " (a full round: there was no delta link yet)",
            (Some(ImportMode::Full), _) => " (full round)",
            _ => " (delta)",
        },
        s.users_seen,
        s.users_created,
        s.users_updated,
        s.users_soft_deleted + s.users_hard_deleted,
        s.groups_seen,
        s.groups_created,
        s.groups_updated,
        s.groups_deleted,
    )];
    lines.push(format!(
        "Memberships: {} added, {} removed.",
        s.memberships_added, s.memberships_removed
    ));
    lines
}

/// `POST /directory/import`: import now (inline; the page shows the counts).
pub async fn import(
    State(state): State<ServerState>,
    form: PanelForm,
) -> Result<Response, PanelError> {
    let PanelForm { panel, data } = form;
    let operator = operator(&state, &panel)?;
    let name = connection(&data)?;
    let mode = match data.get("mode").unwrap_or("delta") {
        "full" => ImportMode::Full,
        "delta" => ImportMode::Delta,
        other => {
            return Err(behalf_app::AppError::invalid(
                "mode",
                format!("{other:?}: choose full or delta"),
            )
            .into());
        }
    };
    let outcome = match operator.import(&name, mode, &NoProgress).await {
        Ok(summary) => Outcome::said(counts(&name, &summary)),
        Err(e) => Outcome::failed(format!("The import of {name} failed: {e}")),
    };
    page(&state, &panel, outcome).await
}

/// `POST /directory/test`: a token for the connection's tenant, and what it may do.
pub async fn test(
    State(state): State<ServerState>,
    form: PanelForm,
) -> Result<Response, PanelError> {
    let PanelForm { panel, data } = form;
    let operator = operator(&state, &panel)?;
    let name = connection(&data)?;
    let outcome = match operator.test_connection(&name).await {
        Ok(permissions) if permissions.is_empty() => Outcome::said(vec![format!(
            "{name} answers: Behalf got a token, but it carries no application permissions. Grant UserAuthenticationMethod.ReadWrite.All and User.Read.All (Application) and give admin consent."
        )]),
        Ok(permissions) => {
            let mut flash = vec![format!("{name} answers. The token may:")];
            flash.extend(permissions.iter().map(|p| permission_words(p)));
            let provisions = permissions.iter().any(|p| {
                p == "UserAuthenticationMethod.ReadWrite.All"
                    || p == "UserAuthMethod-Passkey.ReadWrite.All"
            });
            if !provisions {
                flash.push("Missing: UserAuthenticationMethod.ReadWrite.All — without it Graph refuses every passkey registration.".into());
            }
            Outcome::said(flash)
        }
        Err(e) => Outcome::failed(format!("{name} does not answer: {e}")),
    };
    page(&state, &panel, outcome).await
}

/// `POST /directory/connections`: connect an Entra ID tenant with an app's client secret or
/// certificate (tried first, then sealed by the vault).
pub async fn add(
    State(state): State<ServerState>,
    form: PanelForm,
) -> Result<Response, PanelError> {
    let PanelForm { panel, data } = form;
    let operator = operator(&state, &panel)?;
    let get = |n: &str| data.get(n).unwrap_or_default().to_owned();
    let certificate = data.get("credential") == Some("certificate");
    let credential = if certificate {
        AppCredential::Certificate(Secret::new(get("certificate")))
    } else {
        AppCredential::ClientSecret(Secret::new(get("client_secret")))
    };
    let new = NewEntraConnection {
        name: get("name"),
        tenant_id: get("tenant_id"),
        client_id: get("client_id"),
        credential,
    };
    let (name, tenant, client) = (
        new.name.clone(),
        new.tenant_id.clone(),
        new.client_id.clone(),
    );
    let outcome = match operator.add_entra_connection(new).await {
        Ok(view) => Outcome::said(vec![format!(
            "Connected {} (tenant {}). Its credential is sealed in the vault. Choose \"Import now\" to bring its users in.",
            view.name,
            view.tenant_id.unwrap_or_default()
        )]),
        Err(e) => Outcome {
            error: Some(format!("The tenant was not connected: {e}")),
            form_name: name,
            form_tenant: tenant,
            form_client: client,
            form_certificate: certificate,
            ..Outcome::default()
        },
    };
    page(&state, &panel, outcome).await
}
