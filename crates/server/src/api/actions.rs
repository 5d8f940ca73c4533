//! Temporary Access Passes and deprovisioning.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use behalf_app::ops::deprovision::Leavers;
use behalf_domain::{Upn, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ServerState;
use crate::auth::CanProvision;
use crate::problem::ApiError;

#[derive(Debug, Deserialize, ToSchema)]
pub struct TapRequest {
    /// The user's UPN or Entra object id.
    pub user: String,
    /// 10 to 43200 (default 60).
    pub lifetime_minutes: Option<u32>,
    #[serde(default)]
    pub usable_once: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TapAnswer {
    pub user: String,
    /// Shown this once; Behalf does not keep it.
    pub temporary_access_pass: String,
    pub lifetime_in_minutes: u32,
    pub is_usable_once: bool,
    pub start_date_time: Option<String>,
}

/// Issues a Temporary Access Pass. The pass is in this answer only: never stored or logged.
#[utoipa::path(post, path = "/api/v1/tap", tag = "users", request_body = TapRequest,
    responses((status = 201, body = TapAnswer), (status = 403), (status = 502)),
    security(("bearer" = []), ("session" = [])))]
pub async fn issue_tap(
    State(state): State<ServerState>,
    CanProvision(auth): CanProvision,
    body: Result<Json<TapRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<TapAnswer>), ApiError> {
    let provisioner = super::provisioner(&state, &auth)?;
    let Json(body) = body?;
    let tap = provisioner
        .issue_tap(
            &body.user,
            body.lifetime_minutes.unwrap_or(60),
            body.usable_once,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(TapAnswer {
            user: tap.user,
            temporary_access_pass: tap.temporary_access_pass.expose().to_owned(),
            lifetime_in_minutes: tap.lifetime_in_minutes,
            is_usable_once: tap.is_usable_once,
            start_date_time: tap.start_date_time,
        }),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DeprovisionRequest {
    /// A UPN or a Behalf user id.
    pub user: Option<String>,
    /// Every user an import or SCIM marked for deprovisioning.
    #[serde(default)]
    pub pending: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeprovisionedDto {
    pub upn: String,
    pub revoked: u64,
    pub failures: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeprovisionAnswer {
    pub users: Vec<DeprovisionedDto>,
}

/// Revokes the user's passkeys at the relying party and destroys their keys.
#[utoipa::path(post, path = "/api/v1/deprovision", tag = "users", request_body = DeprovisionRequest,
    responses((status = 200, body = DeprovisionAnswer), (status = 403), (status = 404)),
    security(("bearer" = []), ("session" = [])))]
pub async fn deprovision(
    State(state): State<ServerState>,
    CanProvision(auth): CanProvision,
    body: Result<Json<DeprovisionRequest>, JsonRejection>,
) -> Result<Json<DeprovisionAnswer>, ApiError> {
    let provisioner = super::provisioner(&state, &auth)?;
    let Json(body) = body?;
    let who = match (&body.user, body.pending) {
        (Some(user), false) => match user.parse::<UserId>() {
            Ok(id) => Leavers::Id(id),
            Err(_) => Leavers::User(
                Upn::parse(user).map_err(|e| ApiError::invalid("user", e.to_string()))?,
            ),
        },
        (None, true) => Leavers::Pending,
        _ => {
            return Err(ApiError::invalid(
                "body",
                "give either user or pending: true",
            ));
        }
    };
    let done = provisioner.deprovision(who).await?;
    Ok(Json(DeprovisionAnswer {
        users: done
            .into_iter()
            .map(|d| DeprovisionedDto {
                upn: d.upn,
                revoked: d.revoked,
                failures: d.failures,
            })
            .collect(),
    }))
}
