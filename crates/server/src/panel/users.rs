//! `/users`: search as you type, filters, keyset paging, a selection (or everyone who matches)
//! and the action bar.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use behalf_app::ops::deprovision::Leavers;
use behalf_app::ops::provision::Selection;
use behalf_domain::{
    ConnectionId, ConnectionKind, GroupId, JobMode, Lifecycle, SecurityKeyKind, UserId, UserSource,
};
use behalf_store::{UserListRow, UserQuery};
use serde::Deserialize;

use super::form::{FormData, PanelForm};
use super::layout::{Layout, Panel, PanelError, Section, render};
use crate::ServerState;

/// Rows per page of the list.
const PAGE: u32 = 50;
/// The most users one action may take ("select all that match").
const MOST_SELECTED: usize = 100_000;
/// A TAP's lifetime when issued from the panel.
const TAP_MINUTES: u32 = 60;

/// The list's search and filters, as the URL (and the action form) carry them.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub group: String,
    /// `yes`, `no` or empty.
    #[serde(default)]
    pub enabled: String,
    #[serde(default)]
    pub has_passkey: String,
    #[serde(default)]
    pub key_kind: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub cursor: String,
}

fn yes_no(value: &str, field: &str) -> Result<Option<bool>, PanelError> {
    match value {
        "" => Ok(None),
        "yes" => Ok(Some(true)),
        "no" => Ok(Some(false)),
        other => {
            Err(behalf_app::AppError::invalid(field, format!("{other:?} is not yes or no")).into())
        }
    }
}

impl Filters {
    fn from_form(data: &FormData) -> Filters {
        let get = |name: &str| data.get(name).unwrap_or_default().to_owned();
        Filters {
            q: get("q"),
            group: get("group"),
            enabled: get("enabled"),
            has_passkey: get("has_passkey"),
            key_kind: get("key_kind"),
            source: get("source"),
            cursor: String::new(),
        }
    }

    /// The store's query; a value that is not one of the filter's choices is refused by name.
    fn query(&self) -> Result<UserQuery, PanelError> {
        let invalid = |field: &str, why: String| -> PanelError {
            behalf_app::AppError::invalid(field, why).into()
        };
        Ok(UserQuery {
            q: Some(self.q.trim().to_owned()).filter(|q| !q.is_empty()),
            group: match self.group.as_str() {
                "" => None,
                g => Some(
                    g.parse::<GroupId>()
                        .map_err(|_| invalid("group", format!("{g:?} is not a group id")))?,
                ),
            },
            enabled: yes_no(&self.enabled, "enabled")?,
            has_passkey: yes_no(&self.has_passkey, "has_passkey")?,
            key_kind: match self.key_kind.as_str() {
                "" => None,
                k => Some(
                    k.parse::<SecurityKeyKind>()
                        .map_err(|e| invalid("key_kind", e.to_string()))?,
                ),
            },
            source: match self.source.as_str() {
                "" => None,
                s => Some(
                    s.parse::<UserSource>()
                        .map_err(|e| invalid("source", e.to_string()))?,
                ),
            },
            cursor: Some(self.cursor.clone()).filter(|c| !c.is_empty()),
            limit: PAGE,
        })
    }

    /// The query string of these filters (for the next page's link and the CSV export).
    pub fn query_string(&self) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("q", &self.q),
            ("group", &self.group),
            ("enabled", &self.enabled),
            ("has_passkey", &self.has_passkey),
            ("key_kind", &self.key_kind),
            ("source", &self.source),
        ] {
            if !v.is_empty() {
                out.append_pair(k, v);
            }
        }
        out.finish()
    }

    pub fn any(&self) -> bool {
        !self.query_string().is_empty()
    }

    pub fn is(&self, field: &str, value: &str) -> bool {
        let current = match field {
            "group" => &self.group,
            "enabled" => &self.enabled,
            "has_passkey" => &self.has_passkey,
            "key_kind" => &self.key_kind,
            "source" => &self.source,
            _ => return false,
        };
        current == value
    }
}

/// One row of the list, ready to show.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: String,
    pub upn: String,
    pub name: String,
    pub mail: String,
    pub enabled: bool,
    pub state: &'static str,
    pub passkeys: i64,
    pub keys: String,
    pub source: &'static str,
}

impl Row {
    /// `sources`: each directory connection's id with how the list names it.
    fn of(row: &UserListRow, sources: &[(ConnectionId, &'static str)]) -> Row {
        let u = &row.user;
        Row {
            id: u.id.to_string(),
            upn: u.upn.to_string(),
            name: u.display_name.clone(),
            mail: u.mail.clone().unwrap_or_default(),
            enabled: u.enabled,
            state: match u.lifecycle {
                Lifecycle::Active => "",
                Lifecycle::DeprovisionPending => "leaving",
                Lifecycle::Deprovisioned => "deprovisioned",
            },
            passkeys: row.passkeys,
            keys: row
                .key_kinds
                .iter()
                .map(|k| k.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            source: match u.connection_id {
                None => "created in Behalf",
                Some(c) => sources
                    .iter()
                    .find(|(id, _)| *id == c)
                    .map(|(_, name)| *name)
                    .unwrap_or("directory"),
            },
        }
    }
}

#[derive(Debug, Clone)]
pub struct GroupChoice {
    pub id: String,
    pub name: String,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    layout: Layout,
    filters: Filters,
    groups: Vec<GroupChoice>,
    /// [`Results`], rendered: the same fragment htmx swaps in.
    results_html: String,
}

/// The part of the page that search and paging replace.
#[derive(Template)]
#[template(path = "users_results.html")]
struct Results {
    filters: Filters,
    rows: Vec<Row>,
    next: Option<String>,
    first_page: bool,
}

async fn results(
    state: &ServerState,
    panel: &Panel,
    filters: &Filters,
) -> Result<Results, PanelError> {
    let query = filters.query()?;
    let reader = state.app.reader(&panel.caller);
    let page = reader.list_users(&query).await?;
    let sources: Vec<(ConnectionId, &'static str)> = reader
        .connections()
        .await?
        .into_iter()
        .map(|c| {
            let name = match c.kind {
                ConnectionKind::EntraId => "Entra ID import",
                ConnectionKind::Scim => "SCIM",
            };
            (c.id, name)
        })
        .collect();
    let next = page.next_cursor.map(|cursor| {
        let base = filters.query_string();
        let cursor = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("cursor", &cursor)
            .finish();
        if base.is_empty() {
            format!("?{cursor}")
        } else {
            format!("?{base}&{cursor}")
        }
    });
    Ok(Results {
        filters: filters.clone(),
        rows: page.users.iter().map(|r| Row::of(r, &sources)).collect(),
        next,
        first_page: filters.cursor.is_empty(),
    })
}

/// `GET /users`: the page, or (from htmx) the results alone.
pub async fn list(
    State(state): State<ServerState>,
    panel: Panel,
    Query(filters): Query<Filters>,
) -> Result<Response, PanelError> {
    let results = results(&state, &panel, &filters).await?;
    if panel.htmx {
        return Ok(render(&results));
    }
    let groups = state
        .app
        .reader(&panel.caller)
        .groups()
        .await?
        .into_iter()
        .map(|g| GroupChoice {
            id: g.id.to_string(),
            name: g.display_name,
        })
        .collect();
    let results_html = results
        .render()
        .map_err(|e| PanelError::App(behalf_app::AppError::internal(e)))?;
    Ok(render(&UsersPage {
        layout: panel.layout("Users", Section::Users),
        filters,
        groups,
        results_html,
    }))
}

/// The users an action is for: the ticked rows, or everyone matching the filters.
async fn selection(
    state: &ServerState,
    panel: &Panel,
    data: &FormData,
) -> Result<Vec<UserId>, PanelError> {
    if data.flag("all_matching") {
        let query = Filters::from_form(data).query()?;
        return Ok(state
            .app
            .reader(&panel.caller)
            .matching_user_ids(&query, MOST_SELECTED)
            .await?);
    }
    let ids = data
        .all("user")
        .map(|id| {
            id.parse::<UserId>().map_err(|_| {
                behalf_app::AppError::invalid("user", format!("{id:?} is not a user id")).into()
            })
        })
        .collect::<Result<Vec<_>, PanelError>>()?;
    if ids.is_empty() {
        return Err(behalf_app::AppError::invalid("user", "select at least one user first").into());
    }
    Ok(ids)
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    layout: Layout,
    heading: String,
    message: String,
    action: String,
    /// The fields to post again, with `confirmed=1`.
    fields: Vec<(String, String)>,
    button: String,
}

#[derive(Template)]
#[template(path = "tap.html")]
struct TapPage {
    layout: Layout,
    upn: String,
    pass: String,
    expires: String,
    usable_once: bool,
}

#[derive(Template)]
#[template(path = "done.html")]
struct DonePage {
    layout: Layout,
    heading: String,
    lines: Vec<String>,
}

/// `POST /users/actions`: one of the action bar's buttons.
pub async fn action(
    State(state): State<ServerState>,
    form: PanelForm,
) -> Result<Response, PanelError> {
    let PanelForm { panel, data } = form;
    let action = data.get("action").unwrap_or_default().to_owned();
    if action == "export" {
        let ids = selection(&state, &panel, &data).await?;
        return export_ids(&state, &panel, ids).await;
    }
    // Every other action changes who has which credential: a provisioner's, or nobody's.
    let Some(provisioner) = state.app.provisioner(&panel.caller) else {
        return Err(PanelError::Forbidden(
            "provisioning, passes and deprovisioning need an owner, or an admin with edit-users",
        ));
    };
    let ids = selection(&state, &panel, &data).await?;
    match action.as_str() {
        "provision" => {
            let prepared = provisioner.prepare(Selection::Users(ids)).await?;
            let job = provisioner.queue(&prepared).await?;
            Ok(Redirect::to(&format!("/jobs/{}", job.id)).into_response())
        }
        // The manual path: each user is mailed a pass and registers a passkey themselves; the
        // job page follows them (refused in words when [mail] is not configured).
        "manual" => {
            let prepared = provisioner
                .prepare(Selection::Users(ids))
                .await?
                .in_mode(JobMode::Manual);
            let job = provisioner.queue(&prepared).await?;
            Ok(Redirect::to(&format!("/jobs/{}", job.id)).into_response())
        }
        "assign-key" => {
            let mut lines = Vec::new();
            for user in state.app.reader(&panel.caller).own_users(&ids).await? {
                let upn = user.upn;
                match provisioner
                    .assign_security_key(user.id, SecurityKeyKind::Vault)
                    .await
                {
                    Ok(key) => lines.push(format!("{upn}: vault key {} assigned", key.id)),
                    Err(e) => lines.push(format!("{upn}: {e}")),
                }
            }
            Ok(render(&DonePage {
                layout: panel.layout("Security keys", Section::Users),
                heading: "Security keys".into(),
                lines,
            }))
        }
        "tap" => {
            let [id] = ids.as_slice() else {
                return Err(behalf_app::AppError::invalid(
                    "user",
                    "a Temporary Access Pass is issued for one user at a time: select exactly one",
                )
                .into());
            };
            let user = state
                .app
                .reader(&panel.caller)
                .user_details(*id)
                .await?
                .user;
            let tap = provisioner
                .issue_tap(user.upn.as_str(), TAP_MINUTES, true)
                .await?;
            let mut r = render(&TapPage {
                layout: panel.layout("Temporary Access Pass", Section::Users),
                upn: user.upn.to_string(),
                pass: tap.temporary_access_pass.expose().to_owned(),
                expires: format!(
                    "{} minutes{}",
                    tap.lifetime_in_minutes,
                    tap.start_date_time
                        .as_deref()
                        .map(|s| format!(" from {s}"))
                        .unwrap_or_default()
                ),
                usable_once: tap.is_usable_once,
            });
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(r)
        }
        "activation-mail" => {
            // A pass for each selected user, mailed with the steps; the panel never sees a pass.
            let upns: Vec<String> = state
                .app
                .reader(&panel.caller)
                .own_users(&ids)
                .await?
                .into_iter()
                .map(|u| u.upn.to_string())
                .collect();
            let lines = provisioner
                .send_activation(&upns, None)
                .await?
                .into_iter()
                .map(|o| match (o.error, o.to, o.expires) {
                    (None, Some(to), Some(expires)) => {
                        format!(
                            "{}: activation mail sent to {to}, pass valid until {expires}",
                            o.upn
                        )
                    }
                    (error, _, _) => format!("{}: not sent: {}", o.upn, error.unwrap_or_default()),
                })
                .collect();
            Ok(render(&DonePage {
                layout: panel.layout("Activation mail", Section::Users),
                heading: "Activation mail".into(),
                lines,
            }))
        }
        "reset-link" => {
            // A one-time link for each selected user, mailed; the panel never sees a link.
            let upns: Vec<String> = state
                .app
                .reader(&panel.caller)
                .own_users(&ids)
                .await?
                .into_iter()
                .map(|u| u.upn.to_string())
                .collect();
            let lines = provisioner
                .send_reset_link(&upns)
                .await?
                .into_iter()
                .map(|o| match (o.error, o.to, o.expires) {
                    (None, Some(to), Some(expires)) => {
                        format!(
                            "{}: password-reset link sent to {to}, valid once until {expires}",
                            o.upn
                        )
                    }
                    (error, _, _) => format!("{}: not sent: {}", o.upn, error.unwrap_or_default()),
                })
                .collect();
            Ok(render(&DonePage {
                layout: panel.layout("Password-reset links", Section::Users),
                heading: "Password-reset links".into(),
                lines,
            }))
        }
        "deprovision" => {
            if !data.flag("confirmed") {
                let mut fields: Vec<(String, String)> = ids
                    .iter()
                    .map(|id| ("user".to_owned(), id.to_string()))
                    .collect();
                fields.push(("action".into(), "deprovision".into()));
                fields.push(("confirmed".into(), "1".into()));
                let mut r = render(&ConfirmPage {
                    layout: panel.layout("Deprovision?", Section::Users),
                    heading: format!("Deprovision {} user(s)?", ids.len()),
                    message: "Their passkeys are deleted at Microsoft and their keys destroyed in the vault. This cannot be undone.".into(),
                    action: "/users/actions".into(),
                    fields,
                    button: "Deprovision".into(),
                });
                *r.status_mut() = StatusCode::OK;
                return Ok(r);
            }
            let mut lines = Vec::new();
            for id in ids {
                for done in provisioner.deprovision(Leavers::Id(id)).await? {
                    let mut line = format!("{}: {} passkey(s) revoked", done.upn, done.revoked);
                    for failure in done.failures {
                        line.push_str(&format!("; not yet: {failure}"));
                    }
                    lines.push(line);
                }
            }
            Ok(render(&DonePage {
                layout: panel.layout("Deprovisioned", Section::Users),
                heading: "Deprovisioned".into(),
                lines,
            }))
        }
        other => Err(behalf_app::AppError::invalid(
            "action",
            format!("{other:?} is not an action of the users page"),
        )
        .into()),
    }
}

/// A CSV of `ids` in the format `behalf provision --csv` reads.
async fn export_ids(
    state: &ServerState,
    panel: &Panel,
    ids: Vec<UserId>,
) -> Result<Response, PanelError> {
    let reader = state.app.reader(&panel.caller);
    let mut out = csv::Writer::from_writer(Vec::new());
    let csv_error = |e: csv::Error| PanelError::App(behalf_app::AppError::internal(e));
    out.write_record(["UPN", "displayName", "mail"])
        .map_err(csv_error)?;
    for user in reader.own_users(&ids).await? {
        out.write_record([
            user.upn.as_str(),
            &user.display_name,
            user.mail.as_deref().unwrap_or_default(),
        ])
        .map_err(csv_error)?;
    }
    let body = out
        .into_inner()
        .map_err(|e| PanelError::App(behalf_app::AppError::internal(e.to_string())))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"users.csv\"",
            ),
        ],
        body,
    )
        .into_response())
}

/// `GET /users/export.csv?…`: everyone matching the filters.
pub async fn export(
    State(state): State<ServerState>,
    panel: Panel,
    Query(filters): Query<Filters>,
) -> Result<Response, PanelError> {
    let query = filters.query()?;
    let ids = state
        .app
        .reader(&panel.caller)
        .matching_user_ids(&query, MOST_SELECTED)
        .await?;
    export_ids(&state, &panel, ids).await
}
