//! `/groups`: the groups (search as you type, keyset pages), "New group", and a group's page
//! with its members (search, pages, add by UPN with suggestions as you type, remove) and its
//! deletion, each change shown on its way to Entra ID. Changes are `Operator` calls, offered
//! only for a group of a writable connection and a role that may make them.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use behalf_app::ops::outbound::NewDirectoryGroup;
use behalf_app::{AppError, Operator};
use behalf_domain::{GroupId, UserId, format_millis};
use behalf_store::{GroupQuery, UserQuery};
use serde::Deserialize;

use super::form::{FormData, PanelForm};
use super::layout::{Layout, Panel, PanelError, Section, render};
use super::user_edit::ConfirmPage;
use super::writes::{Subject, sync_fragment};
use crate::ServerState;

/// Rows per page, of groups and of a group's members.
const PAGE: u32 = 50;
/// Suggestions shown while a UPN is typed.
const SUGGESTIONS: u32 = 8;

fn operator<'a>(state: &'a ServerState, panel: &Panel) -> Result<Operator<'a>, PanelError> {
    state.app.operator(&panel.caller).ok_or(PanelError::Forbidden(
        "creating and deleting groups and changing their members in Entra ID needs an owner or an admin",
    ))
}

fn group_id(id: &str) -> Result<GroupId, PanelError> {
    id.parse().map_err(|_| {
        PanelError::App(AppError::NotFound {
            what: "group",
            key: id.to_owned(),
        })
    })
}

fn internal(e: askama::Error) -> PanelError {
    PanelError::App(AppError::internal(e))
}

/// `?q=…&cursor=…`, of the group list and of a group's members.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub cursor: String,
}

impl ListQuery {
    /// The link to the page after `cursor`, with the same search.
    fn next(&self, path: &str, cursor: Option<String>) -> Option<String> {
        let cursor = cursor?;
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        if !self.q.is_empty() {
            out.append_pair("q", &self.q);
        }
        out.append_pair("cursor", &cursor);
        Some(format!("{path}?{}", out.finish()))
    }

    fn first(&self, path: &str) -> String {
        if self.q.is_empty() {
            return path.to_owned();
        }
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("q", &self.q)
            .finish();
        format!("{path}?{q}")
    }

    fn search(&self) -> Option<String> {
        Some(self.q.trim().to_owned()).filter(|q| !q.is_empty())
    }

    fn cursor(&self) -> Option<String> {
        Some(self.cursor.clone()).filter(|c| !c.is_empty())
    }
}

#[derive(Debug, Clone)]
pub struct GroupRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub members: i64,
    pub source: String,
    /// `synced`, `pending` or `failed`, as the group's writes are.
    pub sync: &'static str,
}

#[derive(Template)]
#[template(path = "groups_results.html")]
struct GroupResults {
    query: ListQuery,
    rows: Vec<GroupRow>,
    next: Option<String>,
    first: Option<String>,
}

#[derive(Template)]
#[template(path = "groups.html")]
struct GroupsPage {
    layout: Layout,
    query: ListQuery,
    /// A connection is writable: "New group" can be offered.
    can_create: bool,
    results_html: String,
}

/// `GET /groups`: the page, or (from htmx) the results alone.
pub async fn list(
    State(state): State<ServerState>,
    panel: Panel,
    Query(query): Query<ListQuery>,
) -> Result<Response, PanelError> {
    let reader = state.app.reader(&panel.caller);
    let page = reader
        .search_groups(&GroupQuery {
            q: query.search(),
            cursor: query.cursor(),
            limit: PAGE,
        })
        .await?;
    let connections: Vec<(behalf_domain::ConnectionId, String)> = reader
        .connections()
        .await?
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect();
    let rows = page
        .groups
        .iter()
        .map(|r| GroupRow {
            id: r.group.id.to_string(),
            name: r.group.display_name.clone(),
            description: r.group.description.clone().unwrap_or_default(),
            members: r.members,
            source: match r.group.connection_id {
                None => "created in Behalf".into(),
                Some(c) => connections
                    .iter()
                    .find(|(id, _)| *id == c)
                    .map(|(_, name)| name.clone())
                    .unwrap_or_else(|| "a directory connection".into()),
            },
            sync: if r.failed_writes > 0 {
                "failed"
            } else if r.pending_writes > 0 {
                "pending"
            } else {
                "synced"
            },
        })
        .collect();
    let results = GroupResults {
        next: query.next("/groups", page.next_cursor),
        first: (!query.cursor.is_empty()).then(|| query.first("/groups")),
        query: query.clone(),
        rows,
    };
    if panel.htmx {
        return Ok(render(&results));
    }
    let can_create = panel.caller.may_operate() && reader.writable_connection().await?.is_some();
    Ok(render(&GroupsPage {
        layout: panel.layout("Groups", Section::Groups),
        query,
        can_create,
        results_html: results.render().map_err(internal)?,
    }))
}

#[derive(Template)]
#[template(path = "group_new.html")]
struct NewGroupPage {
    layout: Layout,
    connection: Option<String>,
    error: Option<String>,
    display_name: String,
    mail_nickname: String,
    description: String,
}

impl NewGroupPage {
    fn of(layout: Layout, connection: Option<String>, data: &FormData) -> NewGroupPage {
        let get = |name: &str| data.get(name).unwrap_or_default().to_owned();
        NewGroupPage {
            layout,
            connection,
            error: None,
            display_name: get("display_name"),
            mail_nickname: get("mail_nickname"),
            description: get("description"),
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

/// `GET /groups/new`.
pub async fn new_form(
    State(state): State<ServerState>,
    panel: Panel,
) -> Result<Response, PanelError> {
    operator(&state, &panel)?;
    let connection = writable_connection(&state, &panel).await?;
    Ok(render(&NewGroupPage::of(
        panel.layout("New group", Section::Groups),
        connection,
        &FormData::default(),
    )))
}

/// `POST /groups/new`: a security group, in Behalf now and queued for Entra ID.
pub async fn create(
    State(state): State<ServerState>,
    form: PanelForm,
) -> Result<Response, PanelError> {
    let PanelForm { panel, data } = form;
    let operator = operator(&state, &panel)?;
    let new = NewDirectoryGroup {
        display_name: data.get("display_name").unwrap_or_default().to_owned(),
        mail_nickname: data.get("mail_nickname").map(str::to_owned),
        description: data.get("description").map(str::to_owned),
    };
    match operator.create_directory_group(new).await {
        Ok((group, _)) => Ok(Redirect::to(&format!("/groups/{}", group.id)).into_response()),
        // Bad input or a taken mailNickname: the form again, with what was typed and why.
        Err(e @ (AppError::Invalid { .. } | AppError::Conflict(_))) => {
            let connection = writable_connection(&state, &panel).await?;
            let mut page = NewGroupPage::of(
                panel.layout("New group", Section::Groups),
                connection,
                &data,
            );
            page.error = Some(e.to_string());
            let mut r = render(&page);
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(r)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Clone)]
pub struct MemberRow {
    pub id: String,
    pub upn: String,
    pub name: String,
}

#[derive(Template)]
#[template(path = "group.html")]
struct GroupPage {
    layout: Layout,
    id: String,
    name: String,
    description: String,
    source: String,
    external_id: String,
    created: String,
    why_not: Option<String>,
    /// The forms are shown: the group is writable and the role may change it.
    editable: bool,
    sync_html: String,
    query: ListQuery,
    members: Vec<MemberRow>,
    next: Option<String>,
    first: Option<String>,
}

/// `GET /groups/{id}`: the group, its sync state and its members.
pub async fn show(
    State(state): State<ServerState>,
    panel: Panel,
    Path(id): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Response, PanelError> {
    let id = group_id(&id)?;
    let reader = state.app.reader(&panel.caller);
    let group = reader.directory_group(id).await?;
    let writability = reader.writability(group.connection_id).await?;
    let source = match group.connection_id {
        None => "created in Behalf".to_owned(),
        Some(c) => reader
            .connections()
            .await?
            .into_iter()
            .find(|v| v.id == c)
            .map(|v| v.name)
            .unwrap_or_else(|| "a directory connection".into()),
    };
    let page = reader
        .list_users(&UserQuery {
            q: query.search(),
            group: Some(id),
            cursor: query.cursor(),
            limit: PAGE,
            ..UserQuery::default()
        })
        .await?;
    let path = format!("/groups/{id}");
    let sync_html = sync_fragment(&state, &panel, Subject::Group(id))
        .await?
        .render()
        .map_err(internal)?;
    Ok(render(&GroupPage {
        layout: panel.layout(group.display_name.clone(), Section::Groups),
        id: id.to_string(),
        name: group.display_name.clone(),
        description: group.description.clone().unwrap_or_default(),
        source,
        external_id: group.external_id.clone().unwrap_or_default(),
        created: format_millis(group.created_at),
        editable: writability.is_writable() && panel.caller.may_operate(),
        why_not: writability.why_not(),
        sync_html,
        members: page
            .users
            .iter()
            .map(|r| MemberRow {
                id: r.user.id.to_string(),
                upn: r.user.upn.to_string(),
                name: r.user.display_name.clone(),
            })
            .collect(),
        next: query.next(&path, page.next_cursor),
        first: (!query.cursor.is_empty()).then(|| query.first(&path)),
        query,
    }))
}

#[derive(Debug, Deserialize)]
pub struct CandidatesQuery {
    #[serde(default)]
    upn: String,
}

#[derive(Template)]
#[template(path = "group_candidates.html")]
struct Candidates {
    layout: Layout,
    id: String,
    typed: bool,
    users: Vec<MemberRow>,
}

/// `GET /groups/{id}/candidates?upn=…` (htmx): users of the group's connection whose UPN, name
/// or mail starts with what is typed, each with an "Add" button.
pub async fn candidates(
    State(state): State<ServerState>,
    panel: Panel,
    Path(id): Path<String>,
    Query(q): Query<CandidatesQuery>,
) -> Result<Response, PanelError> {
    let id = group_id(&id)?;
    let reader = state.app.reader(&panel.caller);
    let group = reader.directory_group(id).await?;
    let typed = q.upn.trim();
    let users = if typed.is_empty() {
        Vec::new()
    } else {
        // More than are shown: users of other connections are left out after the search.
        reader
            .list_users(&UserQuery {
                q: Some(typed.to_owned()),
                limit: SUGGESTIONS * 4,
                ..UserQuery::default()
            })
            .await?
            .users
            .into_iter()
            .filter(|r| {
                r.user.connection_id.is_some() && r.user.connection_id == group.connection_id
            })
            .take(SUGGESTIONS as usize)
            .map(|r| MemberRow {
                id: r.user.id.to_string(),
                upn: r.user.upn.to_string(),
                name: r.user.display_name,
            })
            .collect()
    };
    Ok(render(&Candidates {
        layout: panel.layout("Candidates", Section::Groups),
        id: id.to_string(),
        typed: !typed.is_empty(),
        users,
    }))
}

/// `POST /groups/{id}/members`: adds the user named by `user` (an id, from a suggestion) or
/// `upn` (typed).
pub async fn add_member(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    form: PanelForm,
) -> Result<Response, PanelError> {
    let operator = operator(&state, &form.panel)?;
    let id = group_id(&id)?;
    let user: UserId = match (form.data.get("user"), form.data.get("upn")) {
        (Some(u), _) => u.parse().map_err(|_| {
            PanelError::from(AppError::invalid("user", format!("{u:?} is not a user id")))
        })?,
        (None, Some(upn)) => {
            state
                .app
                .reader(&form.panel.caller)
                .user_by_upn(upn)
                .await?
                .id
        }
        (None, None) => {
            return Err(AppError::invalid("upn", "type the UPN of the user to add").into());
        }
    };
    operator.set_directory_membership(id, user, true).await?;
    Ok(Redirect::to(&format!("/groups/{id}")).into_response())
}

/// `POST /groups/{id}/members/{user}/remove`.
pub async fn remove_member(
    State(state): State<ServerState>,
    Path((id, user)): Path<(String, String)>,
    form: PanelForm,
) -> Result<Response, PanelError> {
    let operator = operator(&state, &form.panel)?;
    let id = group_id(&id)?;
    let user: UserId = user.parse().map_err(|_| {
        PanelError::App(AppError::NotFound {
            what: "user",
            key: user.clone(),
        })
    })?;
    operator.set_directory_membership(id, user, false).await?;
    Ok(Redirect::to(&format!("/groups/{id}")).into_response())
}

/// `POST /groups/{id}/delete`: a page that asks first, then the deletion queued and its write's
/// page.
pub async fn delete(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    form: PanelForm,
) -> Result<Response, PanelError> {
    let operator = operator(&state, &form.panel)?;
    let id = group_id(&id)?;
    if !form.data.flag("confirmed") {
        let group = state
            .app
            .reader(&form.panel.caller)
            .directory_group(id)
            .await?;
        return Ok(render(&ConfirmPage {
            layout: form.panel.layout("Delete group?", Section::Groups),
            heading: format!("Delete the group {} in Entra ID?", group.display_name),
            message: "The group is deleted in Entra ID (a security group cannot be restored there) and its members lose what it gave them. Its members' accounts are not touched. Behalf forgets the group once Entra ID has deleted it.".into(),
            action: format!("/groups/{id}/delete"),
            button: "Delete the group".into(),
            cancel: format!("/groups/{id}"),
        }));
    }
    let write = operator.delete_directory_group(id).await?;
    Ok(Redirect::to(&format!("/directory/writes/{}", write.id)).into_response())
}
