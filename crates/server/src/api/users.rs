//! Users: the list, one user's record and events, security keys.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use behalf_domain::{SecurityKeyId, SecurityKeyKind, UserId, UserSource};
use behalf_store::UserQuery;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::dto::{
    GroupDto, PasskeyDto, ReportRowDto, SecurityKeyDto, UserDetailsDto, UserDto, UserPageDto,
    UserSummaryDto,
};
use super::{parse_id, parse_opt};
use crate::ServerState;
use crate::auth::{Auth, CanProvision};
use crate::problem::ApiError;

#[derive(Debug, Deserialize, IntoParams)]
pub struct UsersQuery {
    /// A prefix of the UPN, display name or mail (any case).
    pub q: Option<String>,
    /// Members of this group (its Behalf id).
    pub group: Option<String>,
    pub enabled: Option<bool>,
    pub has_passkey: Option<bool>,
    /// `vault`, `device` or `ctap2`.
    pub key_kind: Option<String>,
    /// `entra_id`, `scim` or `behalf`.
    pub source: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 500 (default 50).
    pub limit: Option<u32>,
}

/// Lists users: prefix search and filters, in UPN order, paged by cursor.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UsersQuery),
    responses((status = 200, body = UserPageDto), (status = 400), (status = 401)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_users(
    State(state): State<ServerState>,
    auth: Auth,
    query: Result<Query<UsersQuery>, QueryRejection>,
) -> Result<Json<UserPageDto>, ApiError> {
    let Query(q) = query?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=behalf_store::MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("between 1 and {}", behalf_store::MAX_PAGE),
        ));
    }
    let query = UserQuery {
        q: q.q.filter(|s| !s.trim().is_empty()),
        group: parse_opt("group", q.group.as_deref())?,
        enabled: q.enabled,
        has_passkey: q.has_passkey,
        key_kind: parse_opt::<SecurityKeyKind>("key_kind", q.key_kind.as_deref())?,
        source: parse_opt::<UserSource>("source", q.source.as_deref())?,
        cursor: q.cursor.filter(|s| !s.is_empty()),
        limit,
    };
    let page = state.app.reader(&auth.caller).list_users(&query).await?;
    Ok(Json(UserPageDto {
        users: page.users.iter().map(UserSummaryDto::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One user: details, groups, security keys and passkeys.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = UserDetailsDto), (status = 404)),
    security(("bearer" = []), ("session" = [])))]
pub async fn get_user(
    State(state): State<ServerState>,
    auth: Auth,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<UserDetailsDto>, ApiError> {
    let id: UserId = parse_id("id", &id?.0)?;
    let d = state.app.reader(&auth.caller).user_details(id).await?;
    Ok(Json(UserDetailsDto {
        user: UserDto::from(&d.user),
        groups: d
            .groups
            .iter()
            .map(|g| GroupDto {
                id: g.id.to_string(),
                display_name: g.display_name.clone(),
                external_id: g.external_id.clone(),
            })
            .collect(),
        security_keys: d.security_keys.iter().map(SecurityKeyDto::from).collect(),
        passkeys: d.passkeys.iter().map(PasskeyDto::from).collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventsDto {
    pub events: Vec<ReportRowDto>,
}

/// One user's events, oldest first.
#[utoipa::path(get, path = "/api/v1/users/{id}/events", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = EventsDto), (status = 404)),
    security(("bearer" = []), ("session" = [])))]
pub async fn user_events(
    State(state): State<ServerState>,
    auth: Auth,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<EventsDto>, ApiError> {
    let id: UserId = parse_id("id", &id?.0)?;
    let rows = state.app.reader(&auth.caller).user_events(id).await?;
    Ok(Json(EventsDto {
        events: rows.iter().map(ReportRowDto::from).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AssignKeyRequest {
    /// `vault` (the only kind that can be assigned here for now).
    pub kind: String,
}

/// Assigns the user a security key.
#[utoipa::path(post, path = "/api/v1/users/{id}/security-keys", tag = "users", params(("id" = String, Path)),
    request_body = AssignKeyRequest,
    responses((status = 201, body = SecurityKeyDto), (status = 403), (status = 409)),
    security(("bearer" = []), ("session" = [])))]
pub async fn assign_key(
    State(state): State<ServerState>,
    CanProvision(auth): CanProvision,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<AssignKeyRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<SecurityKeyDto>), ApiError> {
    let provisioner = super::provisioner(&state, &auth)?;
    let id: UserId = parse_id("id", &id?.0)?;
    let Json(body) = body?;
    let kind: SecurityKeyKind = parse_opt("kind", Some(&body.kind))?
        .ok_or_else(|| ApiError::invalid("kind", "required"))?;
    let key = provisioner.assign_security_key(id, kind).await?;
    Ok((StatusCode::CREATED, Json(SecurityKeyDto::from(&key))))
}

/// Revokes a security key.
#[utoipa::path(post, path = "/api/v1/security-keys/{id}/revoke", tag = "users", params(("id" = String, Path)),
    responses((status = 204), (status = 403), (status = 404)),
    security(("bearer" = []), ("session" = [])))]
pub async fn revoke_key(
    State(state): State<ServerState>,
    CanProvision(auth): CanProvision,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let provisioner = super::provisioner(&state, &auth)?;
    let id: SecurityKeyId = parse_id("id", &id?.0)?;
    provisioner.revoke_security_key(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
