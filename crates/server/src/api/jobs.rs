//! Provisioning jobs: create (a selection, a CSV, `automatic`), follow, cancel, retry, failures.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use behalf_app::ops::provision::{FailureRow, Selection, write_failures_csv};
use behalf_domain::{ItemId, ItemState, JobId, JobMode, Upn, UserId};
use futures::Stream;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::dto::{ItemDto, ItemPageDto, JobCreatedDto, JobDto, RejectedDto};
use super::{parse_id, parse_opt};
use crate::ServerState;
use crate::auth::{Auth, CanProvision};
use crate::problem::ApiError;

/// UPNs one request may name (each may be a directory lookup).
const MAX_UPNS: usize = 500;

/// How often a job's event stream reports its progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);
/// How many `PROGRESS_EVERY` the event stream waits, once every item is done, for the run to
/// close the job before it sends `done` anyway.
const CLOSING_POLLS: u32 = 6;

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateJobRequest {
    /// Users Behalf knows, by id.
    #[serde(default)]
    pub user_ids: Vec<String>,
    /// Users by userPrincipalName (looked up in the directory when not imported yet); one
    /// unknown user alone is 404, among several it is in `rejected`.
    #[serde(default)]
    pub upns: Vec<String>,
    /// Every enabled user who has no Behalf passkey yet.
    #[serde(default)]
    pub automatic: bool,
    /// How the users get their passkey: `on_behalf` (the default) or `manual`.
    #[serde(default)]
    pub mode: JobModeRequest,
}

/// How a job's users get their passkey.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobModeRequest {
    /// Behalf registers a passkey on each user's behalf.
    #[default]
    OnBehalf,
    /// The manual path: each user is mailed a Temporary Access Pass (`[mail]` must be
    /// configured, else 409 before any job exists) and registers a passkey themselves; each
    /// item waits (`waiting_for_user`) until one appears (`registered`) or the pass expires
    /// (`failed`, error code `tap_expired`).
    Manual,
    /// A local key: each user's paired Behalf Key is asked to make the credential; each item
    /// waits (`waiting_for_user`) until the user approves there (then `registered`), declines
    /// (`failed`, `declined`) or lets the request expire (`failed`, `request_expired`).
    Local,
}

impl From<JobModeRequest> for JobMode {
    fn from(mode: JobModeRequest) -> Self {
        match mode {
            JobModeRequest::OnBehalf => JobMode::OnBehalf,
            JobModeRequest::Manual => JobMode::Manual,
            JobModeRequest::Local => JobMode::Local,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct CsvJobQuery {
    /// `on_behalf` (the default) or `manual`.
    #[serde(default)]
    pub mode: Option<String>,
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => {
            let key = v
                .to_str()
                .ok()
                .map(str::trim)
                .filter(|k| !k.is_empty() && k.len() <= 255)
                .ok_or_else(|| {
                    ApiError::invalid("Idempotency-Key", "1 to 255 visible characters")
                })?;
            Ok(Some(key.to_owned()))
        }
    }
}

async fn create(
    state: &ServerState,
    auth: &Auth,
    selection: Selection,
    mode: JobMode,
    headers: &HeaderMap,
    fingerprint: &[u8],
) -> Result<(StatusCode, Json<JobCreatedDto>), ApiError> {
    let provisioner = super::provisioner(state, auth)?;
    let key = idempotency_key(headers)?;
    let prepared = provisioner.prepare(selection).await?.in_mode(mode);
    let view = match key {
        Some(key) => provisioner.queue_once(&prepared, &key, fingerprint).await?,
        None => {
            let job = provisioner.queue(&prepared).await?;
            provisioner.reader().job(job.id).await?
        }
    };
    Ok((
        StatusCode::CREATED,
        Json(JobCreatedDto {
            job: JobDto::from(&view),
            rejected: prepared
                .rejected
                .into_iter()
                .map(|r| RejectedDto::from(FailureRow::from(r)))
                .collect(),
        }),
    ))
}

/// Creates a provisioning job from a selection of users, UPNs, or `automatic`. With an
/// `Idempotency-Key` header, a retried request gets the job the first one made.
#[utoipa::path(post, path = "/api/v1/jobs", tag = "jobs", request_body = CreateJobRequest,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = JobCreatedDto), (status = 400), (status = 403), (status = 409)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create_job(
    State(state): State<ServerState>,
    CanProvision(auth): CanProvision,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<JobCreatedDto>), ApiError> {
    let request: CreateJobRequest =
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid("body", e.to_string()))?;
    let chosen = usize::from(!request.user_ids.is_empty())
        + usize::from(!request.upns.is_empty())
        + usize::from(request.automatic);
    if chosen != 1 {
        return Err(ApiError::invalid(
            "body",
            "give exactly one of user_ids, upns or automatic: true",
        ));
    }
    let selection = if request.automatic {
        Selection::Automatic
    } else if !request.upns.is_empty() {
        if request.upns.len() > MAX_UPNS {
            return Err(ApiError::invalid(
                "upns",
                format!("at most {MAX_UPNS} UPNs per request; for more, POST /api/v1/jobs/csv"),
            ));
        }
        let mut upns = request
            .upns
            .iter()
            .map(|u| Upn::parse(u).map_err(|e| ApiError::invalid("upns", e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        match upns.len() {
            1 => Selection::User(upns.remove(0)),
            _ => Selection::Upns(upns),
        }
    } else {
        let ids = request
            .user_ids
            .iter()
            .map(|id| parse_id::<UserId>("user_ids", id))
            .collect::<Result<Vec<_>, _>>()?;
        Selection::Users(ids)
    };
    create(
        &state,
        &auth,
        selection,
        request.mode.into(),
        &headers,
        &body,
    )
    .await
}

/// Creates a provisioning job from a CSV in the format `behalf provision --csv` reads (a `UPN`
/// or `userPrincipalName` column). Bad rows come back in `rejected` with their line.
#[utoipa::path(post, path = "/api/v1/jobs/csv", tag = "jobs", request_body(content = String, content_type = "text/csv"),
    params(("Idempotency-Key" = Option<String>, Header), CsvJobQuery),
    responses((status = 201, body = JobCreatedDto), (status = 400), (status = 403)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create_job_csv(
    State(state): State<ServerState>,
    CanProvision(auth): CanProvision,
    query: Result<Query<CsvJobQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<JobCreatedDto>), ApiError> {
    let Query(q) = query?;
    let mode: JobMode = parse_opt("mode", q.mode.as_deref())?.unwrap_or(JobMode::OnBehalf);
    let input = behalf_provision::csv_input::parse(body.as_ref())
        .map_err(|e| ApiError::invalid("csv", e.to_string()))?;
    let source = format!("upload:{}", uuid::Uuid::now_v7());
    create(
        &state,
        &auth,
        Selection::Csv { input, source },
        mode,
        &headers,
        &body,
    )
    .await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobListDto {
    pub jobs: Vec<JobDto>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct JobListQuery {
    /// Jobs created before this job id (the last of the previous page).
    pub before: Option<String>,
    pub limit: Option<u32>,
}

/// The newest jobs first.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(JobListQuery),
    responses((status = 200, body = JobListDto)), security(("bearer" = []), ("session" = [])))]
pub async fn list_jobs(
    State(state): State<ServerState>,
    auth: Auth,
    query: Result<Query<JobListQuery>, QueryRejection>,
) -> Result<Json<JobListDto>, ApiError> {
    let Query(q) = query?;
    let before: Option<JobId> = parse_opt("before", q.before.as_deref())?;
    let views = state
        .app
        .reader(&auth.caller)
        .list_jobs(q.limit.unwrap_or(50), before)
        .await?;
    Ok(Json(JobListDto {
        jobs: views.iter().map(JobDto::from).collect(),
    }))
}

/// One job and its progress.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", params(("id" = String, Path)),
    responses((status = 200, body = JobDto), (status = 404)), security(("bearer" = []), ("session" = [])))]
pub async fn get_job(
    State(state): State<ServerState>,
    auth: Auth,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<JobDto>, ApiError> {
    let id: JobId = parse_id("id", &id?.0)?;
    let view = state.app.reader(&auth.caller).job(id).await?;
    Ok(Json(JobDto::from(&view)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ItemsQuery {
    /// Only items in this state.
    pub state: Option<String>,
    /// Items after this item id (the `next` of the previous page).
    pub after: Option<String>,
    pub limit: Option<u32>,
}

/// The job's items with their state and reason (the Graph error code and request id).
#[utoipa::path(get, path = "/api/v1/jobs/{id}/items", tag = "jobs", params(("id" = String, Path), ItemsQuery),
    responses((status = 200, body = ItemPageDto), (status = 404)), security(("bearer" = []), ("session" = [])))]
pub async fn job_items(
    State(state): State<ServerState>,
    auth: Auth,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<ItemsQuery>, QueryRejection>,
) -> Result<Json<ItemPageDto>, ApiError> {
    let id: JobId = parse_id("id", &id?.0)?;
    let Query(q) = query?;
    let item_state: Option<ItemState> = parse_opt("state", q.state.as_deref())?;
    let after: Option<ItemId> = parse_opt("after", q.after.as_deref())?;
    let limit = q.limit.unwrap_or(200).clamp(1, 1000);
    let rows = state
        .app
        .reader(&auth.caller)
        .job_items(id, item_state, after, limit)
        .await?;
    let next = (rows.len() == limit as usize)
        .then(|| rows.last().map(|r| r.item.id.to_string()))
        .flatten();
    Ok(Json(ItemPageDto {
        items: rows.iter().map(ItemDto::from).collect(),
        next,
    }))
}

/// The users not registered, with why, as `failures.csv`.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/failures.csv", tag = "jobs", params(("id" = String, Path)),
    responses((status = 200, content_type = "text/csv", body = String), (status = 404)),
    security(("bearer" = []), ("session" = [])))]
pub async fn job_failures(
    State(state): State<ServerState>,
    auth: Auth,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id: JobId = parse_id("id", &id?.0)?;
    let rows = state.app.reader(&auth.caller).job_failures(id).await?;
    let mut csv = Vec::new();
    write_failures_csv(&mut csv, &rows).map_err(behalf_app::AppError::internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"failures-{id}.csv\""),
            ),
        ],
        csv,
    )
        .into_response())
}

/// Stops a job: its open items stay as they are and are not claimed again.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", tag = "jobs", params(("id" = String, Path)),
    responses((status = 200, body = JobDto), (status = 403), (status = 404)), security(("bearer" = []), ("session" = [])))]
pub async fn cancel_job(
    State(state): State<ServerState>,
    CanProvision(auth): CanProvision,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<JobDto>, ApiError> {
    let provisioner = super::provisioner(&state, &auth)?;
    let id: JobId = parse_id("id", &id?.0)?;
    Ok(Json(JobDto::from(&provisioner.cancel_job(id).await?)))
}

/// Puts the job's failed items back in the queue.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/retry", tag = "jobs", params(("id" = String, Path)),
    responses((status = 200, body = JobDto), (status = 403), (status = 404)), security(("bearer" = []), ("session" = [])))]
pub async fn retry_job(
    State(state): State<ServerState>,
    CanProvision(auth): CanProvision,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<JobDto>, ApiError> {
    let provisioner = super::provisioner(&state, &auth)?;
    let id: JobId = parse_id("id", &id?.0)?;
    Ok(Json(JobDto::from(&provisioner.retry_failed(id).await?)))
}

/// Live progress as Server-Sent Events: `progress` events (a job) every half second while it
/// changes, then one `done` event with the final job, and the stream ends.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/events", tag = "jobs", params(("id" = String, Path)),
    responses((status = 200, content_type = "text/event-stream", body = String), (status = 404)),
    security(("bearer" = []), ("session" = [])))]
pub async fn job_events(
    State(state): State<ServerState>,
    auth: Auth,
    id: Result<Path<String>, PathRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let id: JobId = parse_id("id", &id?.0)?;
    // Refused here, before the stream starts, when the job is not the caller's to see.
    state.app.reader(&auth.caller).job(id).await?;
    let caller = auth.caller;
    let stream = futures::stream::unfold(
        (state, caller, None::<String>, false),
        move |(state, caller, last, done)| async move {
            if done {
                return None;
            }
            let mut last = last;
            // Polls left in which to wait for the run to close a job whose items are all done.
            let mut closing = CLOSING_POLLS;
            loop {
                if last.is_some() || closing < CLOSING_POLLS {
                    tokio::time::sleep(PROGRESS_EVERY).await;
                }
                let view = match state.app.reader(&caller).job(id).await {
                    Ok(view) => view,
                    Err(e) => {
                        tracing::warn!(job = %id, error = %e.log_text(), "job events: cannot read the job");
                        let event = Event::default().event("error").data(e.to_string());
                        return Some((Ok(event), (state, caller, last, true)));
                    }
                };
                let dto = JobDto::from(&view);
                let data = serde_json::to_string(&dto).unwrap_or_default();
                // The last item's outcome is committed a moment before the run closes the job:
                // `done` carries the job's final state unless nothing closes it (a run that
                // died after its last item), and then goes with the job as it stands.
                let still_open = view.job.state == behalf_domain::JobState::Open;
                if view.finished() && still_open && closing > 0 {
                    closing -= 1;
                    continue;
                }
                if view.finished() {
                    let event = Event::default().event("done").data(data);
                    return Some((Ok(event), (state, caller, last, true)));
                }
                if last.as_deref() != Some(data.as_str()) {
                    let event = Event::default().event("progress").data(data.clone());
                    return Some((Ok(event), (state, caller, Some(data), false)));
                }
                last = Some(data);
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
