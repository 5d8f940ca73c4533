//! `/directory/writes`: the queue of writes to Entra ID (pending and failed, with Retry and
//! Discard), which connections Behalf writes to, one write's page, and the sync-state fragment
//! (`/panel/sync`) that the user, group and write pages show and poll while a change is on its
//! way.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use behalf_app::AppError;
use behalf_app::ops::outbound::SyncState;
use behalf_domain::{
    ConnectionKind, GroupId, UserId, WriteId, WriteKind, WriteState, format_millis,
};
use behalf_store::DirectoryWrite;
use serde::Deserialize;

use super::form::{FormData, PanelForm};
use super::layout::{Layout, Panel, PanelError, Section, render};
use crate::ServerState;

/// The most writes the queue page lists.
const MOST_LISTED: i64 = 1_000;
/// The most writes a user's or group's sync section lists (newest).
const MOST_IN_SECTION: usize = 10;

/// One write, ready to show.
#[derive(Debug, Clone)]
pub struct WriteRow {
    pub id: String,
    pub what: &'static str,
    pub subject: String,
    /// Where the subject's page is, while it has one.
    pub subject_link: Option<String>,
    /// `pending`, `failed`, `done`, `discarded`: the class of its words.
    pub state: &'static str,
    /// The state as the panel says it: "pending", "in Entra ID", "failed: <Graph's words>".
    pub words: String,
    pub attempts: i64,
    /// When it may be sent next, while it waits.
    pub next_attempt: String,
    pub error: String,
    pub error_code: String,
    pub request_id: String,
    pub requested: String,
    pub requested_by: String,
    pub retryable: bool,
    pub discardable: bool,
}

fn what(kind: WriteKind) -> &'static str {
    match kind {
        WriteKind::CreateUser => "Create user",
        WriteKind::UpdateUser => "Change user",
        WriteKind::DeleteUser => "Delete user",
        WriteKind::CreateGroup => "Create group",
        WriteKind::DeleteGroup => "Delete group",
        WriteKind::AddMember => "Add member",
        WriteKind::RemoveMember => "Remove member",
    }
}

/// A write's state in the panel's words.
pub fn state_words(w: &DirectoryWrite) -> (&'static str, String) {
    let error = w.error.clone().unwrap_or_default();
    match w.state {
        WriteState::Pending if !error.is_empty() => (
            "pending",
            format!(
                "pending (attempt {} did not reach Entra ID: {error})",
                w.attempts
            ),
        ),
        WriteState::Pending => ("pending", "pending".into()),
        WriteState::Sending => ("pending", "pending (being sent)".into()),
        WriteState::Done => ("done", "in Entra ID".into()),
        WriteState::Failed if error.is_empty() => ("failed", "failed".into()),
        WriteState::Failed => ("failed", format!("failed: {error}")),
        WriteState::Discarded => ("discarded", "discarded (not sent)".into()),
    }
}

impl WriteRow {
    pub fn of(w: &DirectoryWrite) -> WriteRow {
        let (state, words) = state_words(w);
        let waiting = matches!(w.state, WriteState::Pending);
        // A deletion's subject has no page once it is done.
        let gone = w.state == WriteState::Done
            && matches!(w.kind, WriteKind::DeleteUser | WriteKind::DeleteGroup);
        let subject_link = match (w.kind, w.user_id, w.group_id) {
            _ if gone => None,
            (WriteKind::AddMember | WriteKind::RemoveMember, _, Some(g)) => {
                Some(format!("/groups/{g}"))
            }
            (_, Some(u), _) => Some(format!("/users/{u}")),
            (_, None, Some(g)) => Some(format!("/groups/{g}")),
            _ => None,
        };
        WriteRow {
            id: w.id.to_string(),
            what: what(w.kind),
            subject: w.subject.clone(),
            subject_link,
            state,
            words,
            attempts: w.attempts,
            next_attempt: if waiting {
                format_millis(w.next_attempt_at)
            } else {
                String::new()
            },
            error: w.error.clone().unwrap_or_default(),
            error_code: w.error_code.clone().unwrap_or_default(),
            request_id: w.request_id.clone().unwrap_or_default(),
            requested: format_millis(w.created_at),
            requested_by: w.created_by.clone(),
            retryable: w.state == WriteState::Failed,
            discardable: matches!(w.state, WriteState::Pending | WriteState::Failed),
        }
    }
}

/// A path of this panel to go back to after a form (never another site: `//host` is refused).
pub fn back_to(data: &FormData, default: &str) -> String {
    match data.get("back") {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && !p.chars().any(char::is_control) =>
        {
            p.to_owned()
        }
        _ => default.to_owned(),
    }
}

/// The sync state of a user, a group or one write, as `sync.html` shows it.
#[derive(Template)]
#[template(path = "sync.html")]
pub struct SyncFragment {
    pub layout: Layout,
    /// `/panel/sync?…`: where it reloads itself from while a write is on its way.
    pub url: String,
    /// Reload every second: a write is pending.
    pub polling: bool,
    /// `synced`, `pending`, `failed`, or `none` (nothing was ever written).
    pub state: &'static str,
    pub words: String,
    pub writes: Vec<WriteRow>,
    /// The page the Retry and Discard buttons come back to.
    pub back: String,
}

/// What the sync fragment is about.
#[derive(Debug, Clone, Copy)]
pub enum Subject {
    User(UserId),
    Group(GroupId),
    Write(WriteId),
}

impl Subject {
    fn url(self) -> String {
        match self {
            Subject::User(id) => format!("/panel/sync?user={id}"),
            Subject::Group(id) => format!("/panel/sync?group={id}"),
            Subject::Write(id) => format!("/panel/sync?write={id}"),
        }
    }

    fn back(self) -> String {
        match self {
            Subject::User(id) => format!("/users/{id}"),
            Subject::Group(id) => format!("/groups/{id}"),
            Subject::Write(id) => format!("/directory/writes/{id}"),
        }
    }
}

/// The fragment for `subject`, read now.
pub async fn sync_fragment(
    state: &ServerState,
    panel: &Panel,
    subject: Subject,
) -> Result<SyncFragment, PanelError> {
    let reader = state.app.reader(&panel.caller);
    let writes = match subject {
        Subject::User(id) => reader.user_sync_state(id).await?.1,
        Subject::Group(id) => reader.group_sync_state(id).await?.1,
        Subject::Write(id) => vec![reader.directory_write(id).await?],
    };
    let sync = SyncState::of(&writes);
    let polling = writes
        .iter()
        .any(|w| matches!(w.state, WriteState::Pending | WriteState::Sending));
    let (class, words) = match sync {
        _ if writes.is_empty() => ("none", "no change made in Behalf".to_owned()),
        SyncState::Failed => {
            let first = writes.iter().find(|w| w.state == WriteState::Failed);
            (
                "failed",
                first.map(|w| state_words(w).1).unwrap_or_default(),
            )
        }
        SyncState::Pending => ("pending", "pending".to_owned()),
        // Nothing waits, but the last change was given up: Entra ID does not have it.
        SyncState::Synced
            if writes
                .last()
                .is_some_and(|w| w.state == WriteState::Discarded) =>
        {
            (
                "discarded",
                "the last change was discarded: not sent to Entra ID".to_owned(),
            )
        }
        SyncState::Synced => ("synced", "in Entra ID".to_owned()),
    };
    let rows = writes
        .iter()
        .rev()
        .take(MOST_IN_SECTION)
        .map(WriteRow::of)
        .collect();
    Ok(SyncFragment {
        layout: panel.layout("Sync", Section::Directory),
        url: subject.url(),
        polling,
        state: class,
        words,
        writes: rows,
        back: subject.back(),
    })
}

#[derive(Debug, Deserialize)]
pub struct SyncQuery {
    user: Option<String>,
    group: Option<String>,
    write: Option<String>,
}

fn parse<T: std::str::FromStr>(what: &'static str, id: &str) -> Result<T, PanelError> {
    id.parse().map_err(|_| {
        PanelError::App(AppError::NotFound {
            what,
            key: id.to_owned(),
        })
    })
}

/// `GET /panel/sync?user=…` (or `group=`, `write=`): the fragment, for htmx to swap in.
pub async fn fragment(
    State(state): State<ServerState>,
    panel: Panel,
    Query(q): Query<SyncQuery>,
) -> Result<Response, PanelError> {
    let subject = match (q.user, q.group, q.write) {
        (Some(u), None, None) => Subject::User(parse("user", &u)?),
        (None, Some(g), None) => Subject::Group(parse("group", &g)?),
        (None, None, Some(w)) => Subject::Write(parse("directory write", &w)?),
        _ => {
            return Err(AppError::invalid("query", "name one of user, group or write").into());
        }
    };
    Ok(render(&sync_fragment(&state, &panel, subject).await?))
}

#[derive(Debug, Clone)]
pub struct ConnectionRow {
    pub name: String,
    pub kind: &'static str,
    pub entra: bool,
    pub writable: bool,
}

#[derive(Template)]
#[template(path = "writes.html")]
struct WritesPage {
    layout: Layout,
    /// `open` (pending and failed), `failed` or `all`.
    show: &'static str,
    writes: Vec<WriteRow>,
    /// More writes than are listed are in these states.
    truncated: bool,
    connections: Vec<ConnectionRow>,
    back: String,
}

#[derive(Debug, Deserialize)]
pub struct WritesQuery {
    #[serde(default)]
    show: String,
}

/// `GET /directory/writes`: the queue.
pub async fn list(
    State(state): State<ServerState>,
    panel: Panel,
    Query(q): Query<WritesQuery>,
) -> Result<Response, PanelError> {
    let (show, states): (&'static str, &[WriteState]) = match q.show.as_str() {
        "" | "open" => (
            "open",
            &[WriteState::Pending, WriteState::Sending, WriteState::Failed],
        ),
        "failed" => ("failed", &[WriteState::Failed]),
        "all" => ("all", &[]),
        other => {
            return Err(
                AppError::invalid("show", format!("{other:?}: show open, failed or all")).into(),
            );
        }
    };
    let reader = state.app.reader(&panel.caller);
    // Oldest first: the order they were asked for, and go in.
    let writes = reader.directory_writes(states, MOST_LISTED).await?;
    let connections = reader
        .connection_writability()
        .await?
        .into_iter()
        .map(|c| ConnectionRow {
            entra: c.connection.kind == ConnectionKind::EntraId,
            kind: match c.connection.kind {
                ConnectionKind::EntraId => "Entra ID",
                ConnectionKind::Scim => "SCIM",
            },
            name: c.connection.name,
            writable: c.writable,
        })
        .collect();
    Ok(render(&WritesPage {
        layout: panel.layout("Writes to Entra ID", Section::Directory),
        show,
        truncated: writes.len() as i64 >= MOST_LISTED,
        writes: writes.iter().map(WriteRow::of).collect(),
        connections,
        back: format!("/directory/writes?show={show}"),
    }))
}

#[derive(Template)]
#[template(path = "write.html")]
struct WritePage {
    layout: Layout,
    write: WriteRow,
    sync_html: String,
}

/// `GET /directory/writes/{id}`: one write and where it is (a deletion's answer page).
pub async fn show(
    State(state): State<ServerState>,
    panel: Panel,
    Path(id): Path<String>,
) -> Result<Response, PanelError> {
    let id: WriteId = parse("directory write", &id)?;
    let write = state.app.reader(&panel.caller).directory_write(id).await?;
    let sync_html = sync_fragment(&state, &panel, Subject::Write(id))
        .await?
        .render()
        .map_err(|e| PanelError::App(AppError::internal(e)))?;
    let row = WriteRow::of(&write);
    Ok(render(&WritePage {
        layout: panel.layout(format!("{}: {}", row.what, row.subject), Section::Directory),
        write: row,
        sync_html,
    }))
}

fn operator<'a>(
    state: &'a ServerState,
    panel: &Panel,
) -> Result<behalf_app::Operator<'a>, PanelError> {
    state
        .app
        .operator(&panel.caller)
        .ok_or(PanelError::Forbidden(
            "writes to Entra ID need an owner or an admin",
        ))
}

/// `POST /directory/writes/{id}/retry`: a failed write goes back to the queue, due now.
pub async fn retry(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    form: PanelForm,
) -> Result<Response, PanelError> {
    let operator = operator(&state, &form.panel)?;
    let id: WriteId = parse("directory write", &id)?;
    operator.retry_write(id).await?;
    Ok(Redirect::to(&back_to(&form.data, "/directory/writes")).into_response())
}

/// `POST /directory/writes/{id}/discard`: the write is given up, not sent.
pub async fn discard(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    form: PanelForm,
) -> Result<Response, PanelError> {
    let operator = operator(&state, &form.panel)?;
    let id: WriteId = parse("directory write", &id)?;
    operator.discard_write(id).await?;
    Ok(Redirect::to(&back_to(&form.data, "/directory/writes")).into_response())
}

/// `POST /directory/writable`: `connection`, `writable=1|0`.
pub async fn set_writable(
    State(state): State<ServerState>,
    form: PanelForm,
) -> Result<Response, PanelError> {
    let operator = operator(&state, &form.panel)?;
    let Some(connection) = form.data.get("connection") else {
        return Err(AppError::invalid("connection", "name the connection").into());
    };
    let writable = match form.data.get("writable") {
        Some("1") => true,
        Some("0") => false,
        _ => {
            return Err(AppError::invalid("writable", "1 (writable) or 0 (read-only)").into());
        }
    };
    operator
        .set_connection_writable(connection, writable)
        .await?;
    Ok(Redirect::to("/directory/writes").into_response())
}
