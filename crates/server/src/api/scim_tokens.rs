//! SCIM connections' bearer tokens (owners and admins): the tokens an identity provider sends
//! to `/scim/v2`. `/scim/v2` itself is SCIM's own protocol and not in this document.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use behalf_domain::{ScimTokenId, format_millis};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::parse_id;
use crate::ServerState;
use crate::auth::CanOperate;
use crate::problem::ApiError;

#[derive(Debug, Serialize, ToSchema)]
pub struct ScimTokenDto {
    pub id: String,
    /// The SCIM connection the token opens.
    pub connection: String,
    /// Whether a new active user the connection pushes gets a passkey queued.
    pub auto_provision: bool,
    pub created_by: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScimTokensDto {
    pub tokens: Vec<ScimTokenDto>,
}

/// SCIM tokens with their last use (never the tokens themselves).
#[utoipa::path(get, path = "/api/v1/scim/tokens", tag = "scim",
    responses((status = 200, body = ScimTokensDto), (status = 403)), security(("bearer" = []), ("session" = [])))]
pub async fn list_scim_tokens(
    State(state): State<ServerState>,
    CanOperate(auth): CanOperate,
) -> Result<Json<ScimTokensDto>, ApiError> {
    let operator = super::operator(&state, &auth)?;
    Ok(Json(ScimTokensDto {
        tokens: operator
            .list_scim_tokens()
            .await?
            .into_iter()
            .map(|t| ScimTokenDto {
                id: t.id.to_string(),
                connection: t.connection,
                auto_provision: t.auto_provision,
                created_by: t.created_by,
                created_at: format_millis(t.created_at),
                last_used_at: t.last_used_at.map(format_millis),
                revoked_at: t.revoked_at.map(format_millis),
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateScimTokenRequest {
    /// The SCIM connection, made when there is none of this name.
    pub connection: String,
    /// Queue a passkey for every new active user the connection pushes (absent: leave the
    /// connection's setting; off for a new one).
    pub auto_provision: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedScimTokenDto {
    pub id: String,
    /// Shown this once.
    pub token: String,
    pub connection: String,
    pub auto_provision: bool,
    /// Where the identity provider sends its requests (the "Tenant URL"), relative to this server.
    pub scim_path: String,
}

/// Creates a SCIM token (shown once).
#[utoipa::path(post, path = "/api/v1/scim/tokens", tag = "scim", request_body = CreateScimTokenRequest,
    responses((status = 201, body = CreatedScimTokenDto), (status = 400), (status = 403)), security(("bearer" = []), ("session" = [])))]
pub async fn create_scim_token(
    State(state): State<ServerState>,
    CanOperate(auth): CanOperate,
    body: Result<Json<CreateScimTokenRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedScimTokenDto>), ApiError> {
    let operator = super::operator(&state, &auth)?;
    let Json(body) = body?;
    let created = operator
        .create_scim_token(&body.connection, body.auto_provision)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedScimTokenDto {
            id: created.id.to_string(),
            token: created.token.expose().to_owned(),
            connection: created.connection,
            auto_provision: created.auto_provision,
            scim_path: "/scim/v2".into(),
        }),
    ))
}

/// Revokes a SCIM token: it stops working at once.
#[utoipa::path(delete, path = "/api/v1/scim/tokens/{id}", tag = "scim", params(("id" = String, Path)),
    responses((status = 204), (status = 403), (status = 404)), security(("bearer" = []), ("session" = [])))]
pub async fn revoke_scim_token(
    State(state): State<ServerState>,
    CanOperate(auth): CanOperate,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let operator = super::operator(&state, &auth)?;
    let id: ScimTokenId = parse_id("id", &id?.0)?;
    operator.revoke_scim_token(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
