//! Admins and API tokens (owners only).

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use behalf_domain::{AdminId, Role, Secret, TokenId, TokenScope, format_millis};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{parse_id, parse_opt};
use crate::ServerState;
use crate::auth::IsOwner;
use crate::problem::ApiError;

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminEntryDto {
    pub id: String,
    pub email: String,
    pub role: String,
    pub can_edit_users: bool,
    pub disabled: bool,
    pub has_password: bool,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminsDto {
    pub admins: Vec<AdminEntryDto>,
}

/// The workspace's admins.
#[utoipa::path(get, path = "/api/v1/admins", tag = "admins",
    responses((status = 200, body = AdminsDto), (status = 403)), security(("bearer" = []), ("session" = [])))]
pub async fn list_admins(
    State(state): State<ServerState>,
    IsOwner(auth): IsOwner,
) -> Result<Json<AdminsDto>, ApiError> {
    let owner = super::owner(&state, &auth)?;
    Ok(Json(AdminsDto {
        admins: owner
            .list_admins()
            .await?
            .into_iter()
            .map(|a| AdminEntryDto {
                id: a.id.to_string(),
                email: a.email,
                role: a.role.to_string(),
                can_edit_users: a.can_edit_users,
                disabled: a.disabled,
                has_password: a.has_password,
                created_at: format_millis(a.created_at),
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateAdminRequest {
    pub email: String,
    /// `owner`, `admin` or `viewer`.
    pub role: String,
    #[serde(default)]
    pub can_edit_users: bool,
    /// Without one, the answer carries a one-time setup token.
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<Secret>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedAdminDto {
    pub id: String,
    pub email: String,
    pub role: String,
    /// The one-time setup link's token (`/setup?token=…`), shown once.
    pub setup_token: Option<String>,
}

/// Creates an admin.
#[utoipa::path(post, path = "/api/v1/admins", tag = "admins", request_body = CreateAdminRequest,
    responses((status = 201, body = CreatedAdminDto), (status = 403), (status = 409)), security(("bearer" = []), ("session" = [])))]
pub async fn create_admin(
    State(state): State<ServerState>,
    IsOwner(auth): IsOwner,
    body: Result<Json<CreateAdminRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedAdminDto>), ApiError> {
    let owner = super::owner(&state, &auth)?;
    let Json(body) = body?;
    let role: Role = parse_opt("role", Some(&body.role))?
        .ok_or_else(|| ApiError::invalid("role", "required"))?;
    let created = owner
        .create_admin(
            &body.email,
            role,
            body.can_edit_users,
            body.password.as_ref(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedAdminDto {
            id: created.admin.id.to_string(),
            email: created.admin.username,
            role: created.admin.role.to_string(),
            setup_token: created.setup_token.map(|t| t.expose().to_owned()),
        }),
    ))
}

/// Removes an admin, with their sessions and tokens (not the last owner).
#[utoipa::path(delete, path = "/api/v1/admins/{id}", tag = "admins", params(("id" = String, Path)),
    responses((status = 204), (status = 403), (status = 404), (status = 409)), security(("bearer" = []), ("session" = [])))]
pub async fn delete_admin(
    State(state): State<ServerState>,
    IsOwner(auth): IsOwner,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let owner = super::owner(&state, &auth)?;
    let id: AdminId = parse_id("id", &id?.0)?;
    owner.delete_admin(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenDto {
    pub id: String,
    pub name: String,
    pub admin: String,
    pub scope: String,
    /// `api` (made by an owner) or `cli` (`behalf --server URL login`).
    pub kind: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokensDto {
    pub tokens: Vec<TokenDto>,
}

/// API tokens with their last use (never the tokens themselves).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "admins",
    responses((status = 200, body = TokensDto), (status = 403)), security(("bearer" = []), ("session" = [])))]
pub async fn list_tokens(
    State(state): State<ServerState>,
    IsOwner(auth): IsOwner,
) -> Result<Json<TokensDto>, ApiError> {
    let owner = super::owner(&state, &auth)?;
    Ok(Json(TokensDto {
        tokens: owner
            .list_tokens()
            .await?
            .into_iter()
            .map(|t| TokenDto {
                id: t.id.to_string(),
                name: t.name,
                admin: t.admin,
                scope: t.scope.to_string(),
                kind: t.kind.to_string(),
                created_at: format_millis(t.created_at),
                expires_at: t.expires_at.map(format_millis),
                last_used_at: t.last_used_at.map(format_millis),
                revoked_at: t.revoked_at.map(format_millis),
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateTokenRequest {
    /// The admin the token acts as.
    pub admin: String,
    pub name: String,
    /// `read` (default), `provision` or `admin`.
    pub scope: Option<String>,
    /// Days until it expires (default 90; 0: never).
    pub expires_in_days: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedTokenDto {
    pub id: String,
    /// Shown this once.
    pub token: String,
    pub scope: String,
    pub expires_at: Option<String>,
}

/// Creates an API token (shown once).
#[utoipa::path(post, path = "/api/v1/tokens", tag = "admins", request_body = CreateTokenRequest,
    responses((status = 201, body = CreatedTokenDto), (status = 403), (status = 404)), security(("bearer" = []), ("session" = [])))]
pub async fn create_token(
    State(state): State<ServerState>,
    IsOwner(auth): IsOwner,
    body: Result<Json<CreateTokenRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedTokenDto>), ApiError> {
    let owner = super::owner(&state, &auth)?;
    let Json(body) = body?;
    let scope: TokenScope = parse_opt("scope", body.scope.as_deref())?.unwrap_or(TokenScope::Read);
    let expires = match body.expires_in_days.unwrap_or(90) {
        0 => None,
        days => Some(Duration::from_secs(u64::from(days) * 86_400)),
    };
    let created = owner
        .create_token(&body.admin, &body.name, scope, expires)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedTokenDto {
            id: created.entry.id.to_string(),
            token: created.token.expose().to_owned(),
            scope: created.entry.scope.to_string(),
            expires_at: created.entry.expires_at.map(format_millis),
        }),
    ))
}

/// Revokes an API token: it stops working at once.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "admins", params(("id" = String, Path)),
    responses((status = 204), (status = 403), (status = 404)), security(("bearer" = []), ("session" = [])))]
pub async fn revoke_token(
    State(state): State<ServerState>,
    IsOwner(auth): IsOwner,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let owner = super::owner(&state, &auth)?;
    let id: TokenId = parse_id("id", &id?.0)?;
    owner.revoke_token(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateAdminRequest {
    /// `owner`, `admin` or `viewer` (default: unchanged).
    pub role: Option<String>,
    /// Default: unchanged.
    pub can_edit_users: Option<bool>,
    /// Disable (their sessions and tokens are refused) or enable again. Default: unchanged.
    pub disabled: Option<bool>,
}

/// Changes an admin's role or edit-users, or disables or enables them (never the last owner).
#[utoipa::path(patch, path = "/api/v1/admins/{id}", tag = "admins", params(("id" = String, Path)),
    request_body = UpdateAdminRequest,
    responses((status = 200, body = AdminEntryDto), (status = 403), (status = 404), (status = 409)), security(("bearer" = []), ("session" = [])))]
pub async fn update_admin(
    State(state): State<ServerState>,
    IsOwner(auth): IsOwner,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<UpdateAdminRequest>, JsonRejection>,
) -> Result<Json<AdminEntryDto>, ApiError> {
    let owner = super::owner(&state, &auth)?;
    let id: AdminId = parse_id("id", &id?.0)?;
    let Json(body) = body?;
    let current = owner.admin(id).await?;
    let mut view = current.clone();
    let role: Option<Role> = parse_opt("role", body.role.as_deref())?;
    if role.is_some() || body.can_edit_users.is_some() {
        view = owner
            .update_admin(
                id,
                role.unwrap_or(current.role),
                body.can_edit_users.unwrap_or(current.can_edit_users),
            )
            .await?;
    }
    if let Some(disabled) = body.disabled
        && disabled != current.disabled
    {
        view = owner.set_admin_disabled(id, disabled).await?;
    }
    Ok(Json(AdminEntryDto {
        id: view.id.to_string(),
        email: view.email,
        role: view.role.to_string(),
        can_edit_users: view.can_edit_users,
        disabled: view.disabled,
        has_password: view.has_password,
        created_at: format_millis(view.created_at),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VaultDto {
    /// The master key's public id (`mk1-…`), never the key.
    pub master_key_id: String,
    pub key_file: String,
    /// Sealed rows by the master key id that wraps them.
    pub rows_by_key: std::collections::BTreeMap<String, i64>,
    /// A rotation began and did not finish: run it again.
    pub rotation_pending: bool,
}

/// The vault's master key: its id, its file, which key wraps how many sealed rows.
#[utoipa::path(get, path = "/api/v1/vault", tag = "admins",
    responses((status = 200, body = VaultDto), (status = 403)), security(("bearer" = []), ("session" = [])))]
pub async fn vault_status(
    State(state): State<ServerState>,
    IsOwner(auth): IsOwner,
) -> Result<Json<VaultDto>, ApiError> {
    let owner = super::owner(&state, &auth)?;
    let status = owner.reader().vault_status().await?;
    Ok(Json(VaultDto {
        master_key_id: status.master_key_id,
        key_file: status.key_file,
        rows_by_key: status.usage.into_iter().collect(),
        rotation_pending: status.rotation_pending,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedDto {
    pub old_key_id: String,
    pub new_key_id: String,
    /// Data keys re-wrapped with the new master key.
    pub rewrapped: u64,
    /// The file that now holds the new key (back it up: the old key opens nothing any more).
    pub key_file: String,
}

/// Rotates the master key: a new key wraps every sealed row and replaces the key file.
#[utoipa::path(post, path = "/api/v1/vault/rotate", tag = "admins",
    responses((status = 200, body = RotatedDto), (status = 403), (status = 503)), security(("bearer" = []), ("session" = [])))]
pub async fn rotate_master_key(
    State(state): State<ServerState>,
    IsOwner(auth): IsOwner,
) -> Result<Json<RotatedDto>, ApiError> {
    let owner = super::owner(&state, &auth)?;
    let rotated = owner.rotate_master_key().await?;
    Ok(Json(RotatedDto {
        old_key_id: rotated.old_key_id,
        new_key_id: rotated.new_key_id,
        rewrapped: rotated.rewrapped,
        key_file: rotated.key_file,
    }))
}
