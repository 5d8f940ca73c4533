//! Behalf Key's admin side: pairing codes for a user's extension, their devices, revocation.
//! The extension's own routes are `/key/v1` (server/src/behalf_key), signed by its device key.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use behalf_domain::{DeviceRole, KeyDevice, KeyDeviceId, UserId, format_millis};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::parse_id;
use crate::ServerState;
use crate::auth::{Auth, CanProvision};
use crate::problem::ApiError;

#[derive(Debug, Deserialize, ToSchema)]
pub struct PairingRequest {
    /// `user` (default): the device signs in as the user. `admin`: it also registers
    /// credentials on other users' behalf; issuing one needs an owner or an admin.
    #[schema(value_type = Option<String>)]
    pub role: Option<DeviceRole>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PairingAnswer {
    /// The one-time pairing code (`bhp_…`): shown this once, Behalf keeps only its HMAC.
    pub code: String,
    pub user_id: String,
    #[schema(value_type = String)]
    pub role: DeviceRole,
    /// RFC 3339; the code works once, until then.
    pub expires_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyDeviceDto {
    pub id: String,
    pub user_id: String,
    pub name: String,
    #[schema(value_type = String)]
    pub role: DeviceRole,
    /// The device key's RFC 7638 thumbprint (what its signed requests name it by).
    pub thumbprint: String,
    pub created_at: String,
    pub last_seen_at: Option<String>,
    pub revoked_at: Option<String>,
}

impl From<&KeyDevice> for KeyDeviceDto {
    fn from(d: &KeyDevice) -> Self {
        KeyDeviceDto {
            id: d.id.to_string(),
            user_id: d.user_id.to_string(),
            name: d.name.clone(),
            role: d.role,
            thumbprint: d.thumbprint.clone(),
            created_at: format_millis(d.created_at),
            last_seen_at: d.last_seen_at.map(format_millis),
            revoked_at: d.revoked_at.map(format_millis),
        }
    }
}

/// Issues a one-time code that pairs a Behalf Key extension with the user (15 minutes).
#[utoipa::path(post, path = "/api/v1/users/{id}/key-pairings", tag = "behalf_key",
    params(("id" = String, Path)), request_body = PairingRequest,
    responses((status = 201, body = PairingAnswer), (status = 403), (status = 404)),
    security(("bearer" = []), ("session" = [])))]
pub async fn issue_pairing(
    State(state): State<ServerState>,
    CanProvision(auth): CanProvision,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<PairingRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<PairingAnswer>), ApiError> {
    let provisioner = super::provisioner(&state, &auth)?;
    let id: UserId = parse_id("id", &id?.0)?;
    let Json(body) = body?;
    let issued = provisioner
        .issue_key_pairing(id, body.role.unwrap_or(DeviceRole::User))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(PairingAnswer {
            code: issued.code.expose().to_owned(),
            user_id: issued.pairing.user_id.to_string(),
            role: issued.pairing.role,
            expires_at: format_millis(issued.pairing.expires_at),
        }),
    ))
}

/// The user's Behalf Key devices, newest first, revoked ones included.
#[utoipa::path(get, path = "/api/v1/users/{id}/key-devices", tag = "behalf_key",
    params(("id" = String, Path)),
    responses((status = 200, body = Vec<KeyDeviceDto>), (status = 404)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_devices(
    State(state): State<ServerState>,
    auth: Auth,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Vec<KeyDeviceDto>>, ApiError> {
    let id: UserId = parse_id("id", &id?.0)?;
    let devices = state.app.reader(&auth.caller).key_devices(id).await?;
    Ok(Json(devices.iter().map(KeyDeviceDto::from).collect()))
}

/// Revokes a device: its next request to Behalf is refused.
#[utoipa::path(post, path = "/api/v1/key-devices/{id}/revoke", tag = "behalf_key",
    params(("id" = String, Path)),
    responses((status = 200, body = KeyDeviceDto), (status = 403), (status = 404), (status = 409)),
    security(("bearer" = []), ("session" = [])))]
pub async fn revoke_device(
    State(state): State<ServerState>,
    CanProvision(auth): CanProvision,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<KeyDeviceDto>, ApiError> {
    let provisioner = super::provisioner(&state, &auth)?;
    let id: KeyDeviceId = parse_id("id", &id?.0)?;
    let device = provisioner.revoke_key_device(id).await?;
    Ok(Json(KeyDeviceDto::from(&device)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PairingMailRequest {
    /// The users' UPNs (at most 500).
    pub users: Vec<String>,
}

/// Mails each user a one-time pairing code for their Behalf Key (a user device), with the
/// server's address. The code is in the mail only: not in this answer, the database or the logs.
#[utoipa::path(post, path = "/api/v1/mail/key-pairing", tag = "behalf_key",
    request_body = PairingMailRequest,
    responses((status = 200, body = Vec<super::mail::MailOutcomeDto>), (status = 400), (status = 403), (status = 503)),
    security(("bearer" = []), ("session" = [])))]
pub async fn mail_pairing(
    State(state): State<ServerState>,
    CanProvision(auth): CanProvision,
    body: Result<Json<PairingMailRequest>, JsonRejection>,
) -> Result<Json<Vec<super::mail::MailOutcomeDto>>, ApiError> {
    let provisioner = super::provisioner(&state, &auth)?;
    let Json(body) = body?;
    let outcomes = provisioner.send_key_pairing(&body.users).await?;
    Ok(Json(outcomes.into_iter().map(Into::into).collect()))
}
