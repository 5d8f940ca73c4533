//! Outbound writes (Behalf → Entra ID): create, change and delete users and groups, add and
//! remove members, on a connection marked writable; the queue of writes, retry and discard.
//! Every change answers 202: Behalf has it, and the write says whether it reached Entra ID.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use behalf_app::ops::outbound::{NewDirectoryGroup, NewDirectoryUser, SyncState};
use behalf_domain::{GroupId, UserId, WriteId, WriteState, format_millis};
use behalf_store::{DirectoryWrite, UserChange};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::dto::{GroupDto, UserDto};
use super::parse_id;
use crate::ServerState;
use crate::auth::{Auth, CanOperate};
use crate::problem::ApiError;

#[derive(Debug, Serialize, ToSchema)]
pub struct WriteDto {
    pub id: String,
    /// `create_user`, `update_user`, `delete_user`, `create_group`, `delete_group`,
    /// `add_member` or `remove_member`.
    pub kind: String,
    /// Whom it is about (a UPN, a group's name, `group ← UPN`).
    pub subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// `pending`, `sending`, `done` (in Entra ID), `failed` (waits for retry or discard) or
    /// `discarded`.
    pub state: String,
    pub attempts: i64,
    /// Not sent before this.
    pub next_attempt_at: String,
    /// The Entra object id, once known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graph_id: Option<String>,
    /// The last failure, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// What is written (Graph's property names).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&DirectoryWrite> for WriteDto {
    fn from(w: &DirectoryWrite) -> Self {
        WriteDto {
            id: w.id.to_string(),
            kind: w.kind.to_string(),
            subject: w.subject.clone(),
            user_id: w.user_id.map(|u| u.to_string()),
            group_id: w.group_id.map(|g| g.to_string()),
            state: w.state.to_string(),
            attempts: w.attempts,
            next_attempt_at: format_millis(w.next_attempt_at),
            graph_id: w.graph_id.clone(),
            error: w.error.clone(),
            error_code: w.error_code.clone(),
            request_id: w.request_id.clone(),
            payload: w.payload.clone(),
            created_by: w.created_by.clone(),
            created_at: format_millis(w.created_at),
            updated_at: format_millis(w.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserWriteDto {
    pub user: UserDto,
    pub write: WriteDto,
    /// The initial password, when `show_initial_password` was asked and the create reached
    /// Entra ID in the request: shown this once, stored nowhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Password)]
    pub initial_password: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupWriteDto {
    pub group: GroupDto,
    pub write: WriteDto,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WritesDto {
    pub writes: Vec<WriteDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserSyncDto {
    /// `synced` (every change in Entra ID), `pending` or `failed`.
    pub state: String,
    pub writes: Vec<WriteDto>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateUserRequest {
    pub user_principal_name: String,
    pub display_name: String,
    /// Default: the UPN's part before the `@`.
    pub mail_nickname: Option<String>,
    /// Default: true.
    pub account_enabled: Option<bool>,
    pub department: Option<String>,
    /// Create the user in Entra ID now and answer its random initial password, once (default
    /// false: queued, and nobody sees the password).
    pub show_initial_password: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateUserRequest {
    pub display_name: Option<String>,
    /// An empty string clears it.
    pub department: Option<String>,
    /// false disables the account, true enables it.
    pub account_enabled: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateGroupRequest {
    pub display_name: String,
    /// The key the group is found by in Entra ID; default: made from the display name.
    pub mail_nickname: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct WritableRequest {
    pub writable: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct WritesQuery {
    /// Comma-separated states (`pending,sending,failed`); default: every state.
    pub state: Option<String>,
    /// 1 to 10,000 (default 1,000).
    pub limit: Option<i64>,
}

fn group_dto(g: &behalf_domain::Group) -> GroupDto {
    GroupDto {
        id: g.id.to_string(),
        display_name: g.display_name.clone(),
        external_id: g.external_id.clone(),
    }
}

/// Marks a connection writable (Behalf may create, change and delete its users and groups in
/// Entra ID) or read-only (the default).
#[utoipa::path(put, path = "/api/v1/connections/{name}/writable", tag = "directory", params(("name" = String, Path)),
    request_body = WritableRequest,
    responses((status = 204), (status = 403), (status = 404), (status = 409)), security(("bearer" = []), ("session" = [])))]
pub async fn set_writable(
    State(state): State<ServerState>,
    CanOperate(auth): CanOperate,
    name: Result<Path<String>, PathRejection>,
    body: Result<Json<WritableRequest>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let operator = super::operator(&state, &auth)?;
    let Path(name) = name?;
    let Json(body) = body?;
    operator
        .set_connection_writable(&name, body.writable)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Creates a user in Behalf and in Entra ID (queued: `POST /users` after a lookup by UPN). The
/// initial password is random, sent once, kept nowhere.
#[utoipa::path(post, path = "/api/v1/directory/users", tag = "directory", request_body = CreateUserRequest,
    responses((status = 201, body = UserWriteDto, description = "created in Entra ID in the request (show_initial_password)"), (status = 202, body = UserWriteDto), (status = 400), (status = 403), (status = 409)), security(("bearer" = []), ("session" = [])))]
pub async fn create_user(
    State(state): State<ServerState>,
    CanOperate(auth): CanOperate,
    body: Result<Json<CreateUserRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<UserWriteDto>), ApiError> {
    let operator = super::operator(&state, &auth)?;
    let Json(body) = body?;
    let created = operator
        .create_directory_user(NewDirectoryUser {
            upn: body.user_principal_name,
            display_name: body.display_name,
            mail_nickname: body.mail_nickname,
            account_enabled: body.account_enabled.unwrap_or(true),
            department: body.department,
            show_initial_password: body.show_initial_password.unwrap_or(false),
        })
        .await?;
    // 201 when it is in Entra ID already (the password's create), else 202: queued.
    let status = if created.write.state == behalf_domain::WriteState::Done {
        StatusCode::CREATED
    } else {
        StatusCode::ACCEPTED
    };
    Ok((
        status,
        Json(UserWriteDto {
            user: UserDto::from(&created.user),
            write: WriteDto::from(&created.write),
            initial_password: created.initial_password.map(|p| p.expose().to_owned()),
        }),
    ))
}

/// Changes a user's display name, department or `accountEnabled` (disable / enable), in Behalf
/// now and in Entra ID by a queued `PATCH`.
#[utoipa::path(patch, path = "/api/v1/directory/users/{id}", tag = "directory", params(("id" = String, Path)),
    request_body = UpdateUserRequest,
    responses((status = 202, body = UserWriteDto), (status = 400), (status = 403), (status = 404), (status = 409)), security(("bearer" = []), ("session" = [])))]
pub async fn update_user(
    State(state): State<ServerState>,
    CanOperate(auth): CanOperate,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<UpdateUserRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<UserWriteDto>), ApiError> {
    let operator = super::operator(&state, &auth)?;
    let Path(id) = id?;
    let id: UserId = parse_id("id", &id)?;
    let Json(body) = body?;
    let change = UserChange {
        display_name: body.display_name,
        department: body
            .department
            .map(|d| Some(d).filter(|d| !d.trim().is_empty())),
        enabled: body.account_enabled,
    };
    let (user, write) = operator.update_directory_user(id, change).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(UserWriteDto {
            user: UserDto::from(&user),
            write: WriteDto::from(&write),
            initial_password: None,
        }),
    ))
}

/// Deletes a user in Entra ID (queued; it moves to deleted items there); Behalf's record goes
/// once that is done.
#[utoipa::path(delete, path = "/api/v1/directory/users/{id}", tag = "directory", params(("id" = String, Path)),
    responses((status = 202, body = WriteDto), (status = 403), (status = 404), (status = 409)), security(("bearer" = []), ("session" = [])))]
pub async fn delete_user(
    State(state): State<ServerState>,
    CanOperate(auth): CanOperate,
    id: Result<Path<String>, PathRejection>,
) -> Result<(StatusCode, Json<WriteDto>), ApiError> {
    let operator = super::operator(&state, &auth)?;
    let Path(id) = id?;
    let write = operator.delete_directory_user(parse_id("id", &id)?).await?;
    Ok((StatusCode::ACCEPTED, Json(WriteDto::from(&write))))
}

/// Whether a user's changes have reached Entra ID, and its writes.
#[utoipa::path(get, path = "/api/v1/directory/users/{id}/sync", tag = "directory", params(("id" = String, Path)),
    responses((status = 200, body = UserSyncDto), (status = 404)), security(("bearer" = []), ("session" = [])))]
pub async fn user_sync(
    State(state): State<ServerState>,
    auth: Auth,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<UserSyncDto>, ApiError> {
    let Path(id) = id?;
    let (sync, writes) = state
        .app
        .reader(&auth.caller)
        .user_sync_state(parse_id("id", &id)?)
        .await?;
    Ok(Json(UserSyncDto {
        state: match sync {
            SyncState::Synced => "synced",
            SyncState::Pending => "pending",
            SyncState::Failed => "failed",
        }
        .into(),
        writes: writes.iter().map(WriteDto::from).collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupSyncDto {
    /// `synced` (its creation, members and deletion all in Entra ID), `pending` or `failed`.
    pub state: String,
    /// Its writes, oldest first: the group's own and its memberships'.
    pub writes: Vec<WriteDto>,
}

/// Whether a group's changes (its creation, its members, its deletion) have reached Entra ID,
/// and its writes.
#[utoipa::path(get, path = "/api/v1/directory/groups/{id}/sync", tag = "directory", params(("id" = String, Path)),
    responses((status = 200, body = GroupSyncDto), (status = 400), (status = 404)), security(("bearer" = []), ("session" = [])))]
pub async fn group_sync(
    State(state): State<ServerState>,
    auth: Auth,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<GroupSyncDto>, ApiError> {
    let Path(id) = id?;
    let (sync, writes) = state
        .app
        .reader(&auth.caller)
        .group_sync_state(parse_id("id", &id)?)
        .await?;
    Ok(Json(GroupSyncDto {
        state: sync_word(sync).into(),
        writes: writes.iter().map(WriteDto::from).collect(),
    }))
}

/// A sync state as the API says it.
fn sync_word(sync: SyncState) -> &'static str {
    match sync {
        SyncState::Synced => "synced",
        SyncState::Pending => "pending",
        SyncState::Failed => "failed",
    }
}

/// Creates a security group in Behalf and in Entra ID (queued: `POST /groups` after a lookup by
/// mailNickname).
#[utoipa::path(post, path = "/api/v1/directory/groups", tag = "directory", request_body = CreateGroupRequest,
    responses((status = 202, body = GroupWriteDto), (status = 400), (status = 403), (status = 409)), security(("bearer" = []), ("session" = [])))]
pub async fn create_group(
    State(state): State<ServerState>,
    CanOperate(auth): CanOperate,
    body: Result<Json<CreateGroupRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<GroupWriteDto>), ApiError> {
    let operator = super::operator(&state, &auth)?;
    let Json(body) = body?;
    let (group, write) = operator
        .create_directory_group(NewDirectoryGroup {
            display_name: body.display_name,
            mail_nickname: body.mail_nickname,
            description: body.description,
        })
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(GroupWriteDto {
            group: group_dto(&group),
            write: WriteDto::from(&write),
        }),
    ))
}

/// Deletes a group in Entra ID (queued); Behalf's group and its memberships go once done.
#[utoipa::path(delete, path = "/api/v1/directory/groups/{id}", tag = "directory", params(("id" = String, Path)),
    responses((status = 202, body = WriteDto), (status = 403), (status = 404), (status = 409)), security(("bearer" = []), ("session" = [])))]
pub async fn delete_group(
    State(state): State<ServerState>,
    CanOperate(auth): CanOperate,
    id: Result<Path<String>, PathRejection>,
) -> Result<(StatusCode, Json<WriteDto>), ApiError> {
    let operator = super::operator(&state, &auth)?;
    let Path(id) = id?;
    let id: GroupId = parse_id("id", &id)?;
    let write = operator.delete_directory_group(id).await?;
    Ok((StatusCode::ACCEPTED, Json(WriteDto::from(&write))))
}

async fn membership(
    state: &ServerState,
    auth: &Auth,
    ids: (String, String),
    added: bool,
) -> Result<(StatusCode, Json<WritesDto>), ApiError> {
    let operator = super::operator(state, auth)?;
    let group: GroupId = parse_id("id", &ids.0)?;
    let user: UserId = parse_id("user_id", &ids.1)?;
    let write = operator
        .set_directory_membership(group, user, added)
        .await?;
    // No write: Behalf had it so already (and so, once its writes are done, has Entra ID).
    let status = if write.is_some() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(WritesDto {
            writes: write.iter().map(WriteDto::from).collect(),
        }),
    ))
}

/// Adds a user to a group (queued: `POST /groups/{id}/members/$ref`).
#[utoipa::path(put, path = "/api/v1/directory/groups/{id}/members/{user_id}", tag = "directory",
    params(("id" = String, Path), ("user_id" = String, Path)),
    responses((status = 202, body = WritesDto), (status = 200, body = WritesDto, description = "already a member"), (status = 403), (status = 404), (status = 409)), security(("bearer" = []), ("session" = [])))]
pub async fn add_member(
    State(state): State<ServerState>,
    CanOperate(auth): CanOperate,
    ids: Result<Path<(String, String)>, PathRejection>,
) -> Result<(StatusCode, Json<WritesDto>), ApiError> {
    let Path(ids) = ids?;
    membership(&state, &auth, ids, true).await
}

/// Removes a user from a group (queued: `DELETE /groups/{id}/members/{id}/$ref`).
#[utoipa::path(delete, path = "/api/v1/directory/groups/{id}/members/{user_id}", tag = "directory",
    params(("id" = String, Path), ("user_id" = String, Path)),
    responses((status = 202, body = WritesDto), (status = 200, body = WritesDto, description = "not a member"), (status = 403), (status = 404), (status = 409)), security(("bearer" = []), ("session" = [])))]
pub async fn remove_member(
    State(state): State<ServerState>,
    CanOperate(auth): CanOperate,
    ids: Result<Path<(String, String)>, PathRejection>,
) -> Result<(StatusCode, Json<WritesDto>), ApiError> {
    let Path(ids) = ids?;
    membership(&state, &auth, ids, false).await
}

/// The queue of writes to Entra ID: pending, failed (waiting for an admin), done.
#[utoipa::path(get, path = "/api/v1/directory/writes", tag = "directory", params(WritesQuery),
    responses((status = 200, body = WritesDto), (status = 400)), security(("bearer" = []), ("session" = [])))]
pub async fn list_writes(
    State(state): State<ServerState>,
    auth: Auth,
    query: Result<Query<WritesQuery>, QueryRejection>,
) -> Result<Json<WritesDto>, ApiError> {
    let Query(q) = query?;
    let mut states = Vec::new();
    for s in q.state.as_deref().unwrap_or("").split(',') {
        let s = s.trim();
        if !s.is_empty() {
            states.push(
                s.parse::<WriteState>()
                    .map_err(|e| ApiError::invalid("state", e.to_string()))?,
            );
        }
    }
    let limit = q.limit.unwrap_or(1_000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::invalid("limit", "between 1 and 10000"));
    }
    let writes = state
        .app
        .reader(&auth.caller)
        .directory_writes(&states, limit)
        .await?;
    Ok(Json(WritesDto {
        writes: writes.iter().map(WriteDto::from).collect(),
    }))
}

/// Sends a failed write again (due now, its attempts counted afresh).
#[utoipa::path(post, path = "/api/v1/directory/writes/{id}/retry", tag = "directory", params(("id" = String, Path)),
    responses((status = 200, body = WriteDto), (status = 403), (status = 404), (status = 409)), security(("bearer" = []), ("session" = [])))]
pub async fn retry_write(
    State(state): State<ServerState>,
    CanOperate(auth): CanOperate,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<WriteDto>, ApiError> {
    let operator = super::operator(&state, &auth)?;
    let Path(id) = id?;
    let id: WriteId = parse_id("id", &id)?;
    Ok(Json(WriteDto::from(&operator.retry_write(id).await?)))
}

/// Gives up a pending or failed write: it is not sent, and later writes on its user or group no
/// longer wait on it.
#[utoipa::path(post, path = "/api/v1/directory/writes/{id}/discard", tag = "directory", params(("id" = String, Path)),
    responses((status = 200, body = WriteDto), (status = 403), (status = 404), (status = 409)), security(("bearer" = []), ("session" = [])))]
pub async fn discard_write(
    State(state): State<ServerState>,
    CanOperate(auth): CanOperate,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<WriteDto>, ApiError> {
    let operator = super::operator(&state, &auth)?;
    let Path(id) = id?;
    let id: WriteId = parse_id("id", &id)?;
    Ok(Json(WriteDto::from(&operator.discard_write(id).await?)))
}
