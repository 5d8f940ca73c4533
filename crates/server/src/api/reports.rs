//! The provisioning report, the audit log and `doctor`.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use behalf_app::ops::report::{ReportQuery, write_csv};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::dto::ReportRowDto;
use crate::ServerState;
use crate::auth::Auth;
use crate::problem::ApiError;

#[derive(Debug, Deserialize, IntoParams)]
pub struct ReportParams {
    /// A UPN or a Behalf user id.
    pub user: Option<String>,
    /// `microsoft` or an RP id.
    pub rp: Option<String>,
    /// RFC 3339 or `YYYY-MM-DD`.
    pub since: Option<String>,
    /// RFC 3339 or `YYYY-MM-DD` (inclusive).
    pub until: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
    /// Only actions starting with this (`admin.`, `passkey.`, `token.`).
    pub action_prefix: Option<String>,
    pub limit: Option<i64>,
}

fn query_of(p: &ReportParams, action_prefix: Option<String>) -> ReportQuery {
    ReportQuery {
        user: p.user.clone(),
        rp: p.rp.clone(),
        since: p.since.clone(),
        until: p.until.clone(),
        action_prefix,
        limit: p.limit,
    }
}

async fn answer(
    state: &ServerState,
    auth: &Auth,
    p: &ReportParams,
    prefix: Option<String>,
    name: &str,
) -> Result<Response, ApiError> {
    let rows = state
        .app
        .reader(&auth.caller)
        .report(&query_of(p, prefix))
        .await?;
    match p.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(rows.iter().map(ReportRowDto::from).collect::<Vec<_>>()).into_response()),
        "csv" => {
            let mut csv = Vec::new();
            write_csv(&mut csv, &rows).map_err(behalf_app::AppError::internal)?;
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{name}.csv\""),
                    ),
                ],
                csv,
            )
                .into_response())
        }
        other => Err(ApiError::invalid(
            "format",
            format!("{other:?}: use json or csv"),
        )),
    }
}

/// The provisioning report: who got which passkey, when, by whom, with what result.
#[utoipa::path(get, path = "/api/v1/report", tag = "reports", params(ReportParams),
    responses((status = 200, body = Vec<ReportRowDto>), (status = 400)), security(("bearer" = []), ("session" = [])))]
pub async fn report(
    State(state): State<ServerState>,
    auth: Auth,
    query: Result<Query<ReportParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = query?;
    answer(&state, &auth, &p, p.action_prefix.clone(), "report").await
}

/// The audit log: every state change, by whom, oldest first (`action_prefix` narrows it).
#[utoipa::path(get, path = "/api/v1/audit", tag = "reports", params(ReportParams),
    responses((status = 200, body = Vec<ReportRowDto>), (status = 400)), security(("bearer" = []), ("session" = [])))]
pub async fn audit(
    State(state): State<ServerState>,
    auth: Auth,
    query: Result<Query<ReportParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = query?;
    answer(&state, &auth, &p, p.action_prefix.clone(), "audit").await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FindingDto {
    pub check: String,
    /// `ok`, `warning` or `problem`.
    pub status: String,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DoctorDto {
    /// False when something would stop provisioning.
    pub ok: bool,
    pub findings: Vec<FindingDto>,
}

/// What would stop provisioning in the tenant, in words, with how to fix each.
#[utoipa::path(get, path = "/api/v1/doctor", tag = "reports",
    responses((status = 200, body = DoctorDto), (status = 503)), security(("bearer" = []), ("session" = [])))]
pub async fn doctor(
    State(state): State<ServerState>,
    auth: Auth,
) -> Result<Json<DoctorDto>, ApiError> {
    let report = state.app.reader(&auth.caller).doctor(None).await?;
    Ok(Json(DoctorDto {
        ok: report.ok,
        findings: report
            .findings
            .iter()
            .map(|f| FindingDto {
                check: f.check.to_owned(),
                status: serde_json::to_value(f.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                message: f.message.clone(),
            })
            .collect(),
    }))
}
