//! Signing in and out, the CLI's device login, and first-run setup.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use behalf_app::auth::DeviceLoginPoll;
use behalf_app::{AppError, Caller};
use behalf_domain::{Secret, format_millis};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::dto::AdminDto;
use crate::ServerState;
use crate::auth::{Auth, session_cookie};
use crate::problem::ApiError;

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    #[schema(value_type = String, format = Password)]
    pub password: Secret,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginAnswer {
    pub admin: AdminDto,
    /// Send it as `x-csrf-token` with every request that changes state.
    pub csrf_token: String,
    pub expires_at: String,
}

/// Signs in with a password; the session comes back as a Secure, HttpOnly, SameSite=Strict
/// cookie.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "session", request_body = LoginRequest,
    responses((status = 200, body = LoginAnswer), (status = 401), (status = 429)), security(()))]
pub async fn login(
    State(state): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let address = peer.ip().to_string();
    let signed_in = state
        .app
        .sign_in(&body.email, &body.password, Some(&address), user_agent)
        .await?;
    let cookie = session_cookie(signed_in.session_token.expose(), signed_in.expires_at);
    let answer = LoginAnswer {
        admin: AdminDto::from(&signed_in.admin),
        csrf_token: signed_in.csrf_token.expose().to_owned(),
        expires_at: format_millis(signed_in.expires_at),
    };
    let mut response = Json(answer).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|_| AppError::internal("bad cookie"))?,
    );
    Ok(response)
}

/// Signs out: ends the panel session, or revokes the API token the request carries (how
/// `behalf --server URL logout` gives its token up).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "session",
    responses((status = 204), (status = 401)), security(("bearer" = []), ("session" = [])))]
pub async fn logout(State(state): State<ServerState>, auth: Auth) -> Result<Response, ApiError> {
    if let Some(session) = &auth.session {
        state.app.sign_out(session).await?;
    }
    if let Some(token) = auth.token {
        state
            .app
            .reader(&auth.caller)
            .revoke_own_token(token)
            .await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "behalf_session=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict",
        ),
    );
    Ok(response)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeAnswer {
    pub admin: AdminDto,
    /// `session` or `token`.
    pub via: String,
    pub may_provision: bool,
    pub may_operate: bool,
    pub is_owner: bool,
}

/// Who the caller is, and what they may do.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "session",
    responses((status = 200, body = MeAnswer), (status = 401)), security(("bearer" = []), ("session" = [])))]
pub async fn me(auth: Auth) -> Result<Json<MeAnswer>, ApiError> {
    let Caller::Admin { admin, .. } = &auth.caller else {
        return Err(AppError::Unauthenticated.into());
    };
    Ok(Json(MeAnswer {
        admin: AdminDto::from(admin),
        via: if auth.session.is_some() {
            "session"
        } else {
            "token"
        }
        .into(),
        may_provision: auth.caller.may_provision(),
        may_operate: auth.caller.may_operate(),
        is_owner: auth.caller.is_owner(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceStartAnswer {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub expires_in: u64,
    pub interval: u64,
}

/// Starts a CLI sign-in (`behalf --server URL login`): an admin approves `user_code`.
#[utoipa::path(post, path = "/api/v1/auth/device", tag = "session",
    responses((status = 200, body = DeviceStartAnswer)), security(()))]
pub async fn device_start(
    State(state): State<ServerState>,
    headers: HeaderMap,
) -> Result<Json<DeviceStartAnswer>, ApiError> {
    let started = state.app.start_device_login().await?;
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    Ok(Json(DeviceStartAnswer {
        device_code: started.device_code.expose().to_owned(),
        user_code: started.user_code,
        verification_uri: format!("http://{host}/api/v1/auth/device/approve"),
        expires_in: started.expires_in,
        interval: started.interval,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DeviceTokenRequest {
    #[schema(value_type = String)]
    pub device_code: Secret,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceTokenAnswer {
    pub access_token: String,
    pub token_type: String,
    pub expires_at: String,
}

/// The CLI's poll: `400` with `"error": "authorization_pending"` until an admin approves, then
/// the token (once).
#[utoipa::path(post, path = "/api/v1/auth/device/token", tag = "session", request_body = DeviceTokenRequest,
    responses((status = 200, body = DeviceTokenAnswer), (status = 400)), security(()))]
pub async fn device_token(
    State(state): State<ServerState>,
    body: Result<Json<DeviceTokenRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let (error, detail) = match state
        .app
        .poll_device_login(body.device_code.expose())
        .await?
    {
        DeviceLoginPoll::Token { token, expires_at } => {
            return Ok(Json(DeviceTokenAnswer {
                access_token: token.expose().to_owned(),
                token_type: "Bearer".into(),
                expires_at: format_millis(expires_at),
            })
            .into_response());
        }
        DeviceLoginPoll::Pending => (
            "authorization_pending",
            "waiting for an admin to approve the code",
        ),
        DeviceLoginPoll::Gone => (
            "expired_token",
            "this sign-in expired, was used or refused: run `behalf --server URL login` again",
        ),
    };
    let body = json!({
        "type": format!("https://behalf.dev/problems/{error}"),
        "title": "Sign-in not complete",
        "status": 400,
        "detail": detail,
        "error": error,
    });
    Ok((
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DeviceApproveRequest {
    pub user_code: String,
}

/// Approves a CLI sign-in: the CLI acts as the approving admin for 12 hours.
#[utoipa::path(post, path = "/api/v1/auth/device/approve", tag = "session", request_body = DeviceApproveRequest,
    responses((status = 204), (status = 401), (status = 404)), security(("bearer" = []), ("session" = [])))]
pub async fn device_approve(
    State(state): State<ServerState>,
    auth: Auth,
    body: Result<Json<DeviceApproveRequest>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(body) = body?;
    state
        .app
        .reader(&auth.caller)
        .approve_device_login(&body.user_code)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SetupRequest {
    #[schema(value_type = String)]
    pub token: Secret,
    /// The first owner's email (an invited admin's is already known).
    pub email: Option<String>,
    #[schema(value_type = String, format = Password)]
    pub password: Secret,
}

/// Uses a one-time setup link: sets an invited admin's password, or creates the first owner.
#[utoipa::path(post, path = "/api/v1/auth/setup", tag = "session", request_body = SetupRequest,
    responses((status = 200, body = AdminDto), (status = 400)), security(()))]
pub async fn setup(
    State(state): State<ServerState>,
    body: Result<Json<SetupRequest>, JsonRejection>,
) -> Result<Json<AdminDto>, ApiError> {
    let Json(body) = body?;
    let admin = state
        .app
        .complete_setup(body.token.expose(), body.email.as_deref(), &body.password)
        .await?;
    Ok(Json(AdminDto::from(&admin)))
}
