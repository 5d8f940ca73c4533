//! Onboarding mail: "send activation mail" and "send password-reset link" for one user or a
//! selection.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use behalf_app::ops::mail::MailOutcome;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ServerState;
use crate::auth::CanProvision;
use crate::problem::ApiError;

#[derive(Debug, Deserialize, ToSchema)]
pub struct ActivationRequest {
    /// The users' UPNs (at most 500).
    pub users: Vec<String>,
    /// Another address for a single user's mail (a private one, a manager's).
    pub to: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MailOutcomeDto {
    pub upn: String,
    pub to: Option<String>,
    pub sent: bool,
    /// When the pass or link stops working (RFC 3339).
    pub expires: Option<String>,
    /// Why the mail was not sent, in words.
    pub error: Option<String>,
}

impl From<MailOutcome> for MailOutcomeDto {
    fn from(o: MailOutcome) -> Self {
        MailOutcomeDto {
            upn: o.upn,
            to: o.to,
            sent: o.sent,
            expires: o.expires,
            error: o.error,
        }
    }
}

/// Issues each user a Temporary Access Pass and mails it with the steps to add a passkey. The
/// pass is in the mail only: not in this answer, the database or the logs. One user's failure
/// does not stop the others: each outcome says what happened.
#[utoipa::path(post, path = "/api/v1/mail/activation", tag = "users", request_body = ActivationRequest,
    responses((status = 200, body = Vec<MailOutcomeDto>), (status = 400), (status = 403), (status = 503)),
    security(("bearer" = []), ("session" = [])))]
pub async fn send_activation(
    State(state): State<ServerState>,
    CanProvision(auth): CanProvision,
    body: Result<Json<ActivationRequest>, JsonRejection>,
) -> Result<Json<Vec<MailOutcomeDto>>, ApiError> {
    let provisioner = super::provisioner(&state, &auth)?;
    let Json(body) = body?;
    let outcomes = provisioner
        .send_activation(&body.users, body.to.as_deref())
        .await?;
    Ok(Json(outcomes.into_iter().map(Into::into).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ResetLinkRequest {
    /// The users' UPNs (at most 500).
    pub users: Vec<String>,
}

/// Mails each user a one-time link (valid for `[mail] reset_link_minutes`) to Behalf's page
/// where they set a new password, which Behalf writes to Entra ID and never keeps. The link is
/// in the mail only: not in this answer, the database or the logs. One user's failure does not
/// stop the others: each outcome says what happened.
#[utoipa::path(post, path = "/api/v1/mail/reset", tag = "users", request_body = ResetLinkRequest,
    responses((status = 200, body = Vec<MailOutcomeDto>), (status = 400), (status = 403), (status = 503)),
    security(("bearer" = []), ("session" = [])))]
pub async fn send_reset(
    State(state): State<ServerState>,
    CanProvision(auth): CanProvision,
    body: Result<Json<ResetLinkRequest>, JsonRejection>,
) -> Result<Json<Vec<MailOutcomeDto>>, ApiError> {
    let provisioner = super::provisioner(&state, &auth)?;
    let Json(body) = body?;
    let outcomes = provisioner.send_reset_link(&body.users).await?;
    Ok(Json(outcomes.into_iter().map(Into::into).collect()))
}
