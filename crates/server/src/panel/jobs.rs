//! `/jobs` and `/jobs/{id}`: the live progress, the items with their reasons (the Graph error
//! code and request id where there is one), retry the failed, cancel, the failures CSV.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use behalf_app::ops::provision::write_failures_csv;
use behalf_domain::{ItemId, ItemState, JobId, JobState, format_millis};
use serde::Deserialize;

use super::form::PanelForm;
use super::layout::{Layout, Panel, PanelError, Section, render};
use super::progress::ProgressView;
use crate::ServerState;

/// Items per page of a job.
const ITEMS_PAGE: u32 = 100;

fn job_id(id: &str) -> Result<JobId, PanelError> {
    id.parse().map_err(|_| {
        PanelError::App(behalf_app::AppError::NotFound {
            what: "job",
            key: id.to_owned(),
        })
    })
}

#[derive(Debug, Clone)]
pub struct JobRow {
    pub id: String,
    pub kind: String,
    pub created_by: String,
    pub created: String,
    pub progress: ProgressView,
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsPage {
    layout: Layout,
    jobs: Vec<JobRow>,
}

pub async fn list(State(state): State<ServerState>, panel: Panel) -> Result<Response, PanelError> {
    let views = state.app.reader(&panel.caller).list_jobs(50, None).await?;
    Ok(render(&JobsPage {
        layout: panel.layout("Jobs", Section::Jobs),
        jobs: views
            .iter()
            .map(|v| JobRow {
                id: v.job.id.to_string(),
                kind: super::progress::describe_kind(&v.kind()),
                created_by: v.job.created_by.clone(),
                created: format_millis(v.job.created_at),
                progress: ProgressView::of(v),
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize)]
pub struct ItemsQuery {
    state: Option<String>,
    after: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ItemRow {
    pub upn: String,
    pub state: String,
    pub reason: String,
    pub error_code: String,
    pub request_id: String,
    pub attempts: i64,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "job.html")]
struct JobPage {
    layout: Layout,
    id: String,
    kind: String,
    created_by: String,
    created: String,
    open: bool,
    failed: i64,
    state_filter: String,
    /// Each item state, and whether the list shows only it.
    state_options: Vec<(&'static str, bool)>,
    items: Vec<ItemRow>,
    next: Option<String>,
}

pub async fn show(
    State(state): State<ServerState>,
    panel: Panel,
    Path(id): Path<String>,
    Query(query): Query<ItemsQuery>,
) -> Result<Response, PanelError> {
    let id = job_id(&id)?;
    let reader = state.app.reader(&panel.caller);
    let view = reader.job(id).await?;
    let filter =
        match query.state.as_deref() {
            None | Some("") => None,
            Some(s) => Some(s.parse::<ItemState>().map_err(|e| {
                PanelError::App(behalf_app::AppError::invalid("state", e.to_string()))
            })?),
        };
    let after = match query.after.as_deref() {
        None | Some("") => None,
        Some(a) => Some(a.parse::<ItemId>().map_err(|_| {
            PanelError::App(behalf_app::AppError::invalid("after", "not an item id"))
        })?),
    };
    let rows = reader.job_items(id, filter, after, ITEMS_PAGE).await?;
    let next = (rows.len() == ITEMS_PAGE as usize)
        .then(|| rows.last().map(|r| r.item.id))
        .flatten()
        .map(|last| {
            let state = filter.map(|s| format!("state={s}&")).unwrap_or_default();
            format!("?{state}after={last}")
        });
    let kind = super::progress::describe_kind(&view.kind());
    let mut layout = panel.layout(format!("Job: {kind}"), Section::Jobs);
    layout.progress_job = Some(id.to_string());
    Ok(render(&JobPage {
        layout,
        id: id.to_string(),
        kind,
        created_by: view.job.created_by.clone(),
        created: format_millis(view.job.created_at),
        open: view.job.state == JobState::Open && !view.finished(),
        failed: view.counts.get(ItemState::Failed),
        state_filter: filter.map(|s| s.to_string()).unwrap_or_default(),
        state_options: ItemState::ALL
            .iter()
            .map(|s| (s.as_str(), Some(*s) == filter))
            .collect(),
        items: rows
            .into_iter()
            .map(|r| ItemRow {
                upn: r.upn.to_string(),
                state: r.item.state.to_string(),
                // Waiting for the user (the manual path): until when the mailed pass works.
                reason: match (&r.item.reason, &r.item.pass) {
                    (None, Some(pass)) if r.item.state == ItemState::WaitingForUser => format!(
                        "a pass was mailed; it works until {}",
                        format_millis(pass.expires_at)
                    ),
                    (reason, _) => reason.clone().unwrap_or_default(),
                },
                error_code: r.item.error_code.unwrap_or_default(),
                request_id: r.item.request_id.unwrap_or_default(),
                attempts: r.item.attempts,
                updated: format_millis(r.item.updated_at),
            })
            .collect(),
        next,
    }))
}

fn provisioner<'a>(
    state: &'a ServerState,
    panel: &Panel,
) -> Result<behalf_app::Provisioner<'a>, PanelError> {
    state
        .app
        .provisioner(&panel.caller)
        .ok_or(PanelError::Forbidden(
            "job control needs an owner, or an admin with edit-users",
        ))
}

pub async fn retry(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    form: PanelForm,
) -> Result<Response, PanelError> {
    let id = job_id(&id)?;
    provisioner(&state, &form.panel)?.retry_failed(id).await?;
    Ok(Redirect::to(&format!("/jobs/{id}")).into_response())
}

pub async fn cancel(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    form: PanelForm,
) -> Result<Response, PanelError> {
    let id = job_id(&id)?;
    provisioner(&state, &form.panel)?.cancel_job(id).await?;
    Ok(Redirect::to(&format!("/jobs/{id}")).into_response())
}

pub async fn failures(
    State(state): State<ServerState>,
    panel: Panel,
    Path(id): Path<String>,
) -> Result<Response, PanelError> {
    let id = job_id(&id)?;
    let rows = state.app.reader(&panel.caller).job_failures(id).await?;
    let mut body = Vec::new();
    write_failures_csv(&mut body, &rows)
        .map_err(|e| PanelError::App(behalf_app::AppError::internal(e)))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"failures-{id}.csv\""),
            ),
        ],
        body,
    )
        .into_response())
}
