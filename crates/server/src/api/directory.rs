//! Directory connections: list, test, import now.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use behalf_app::ops::directory::{AppCredential, NewEntraConnection};
use behalf_directory::{ImportMode, ImportSummary, NoProgress};
use behalf_domain::{Secret, format_millis};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ServerState;
use crate::auth::{Auth, CanOperate};
use crate::problem::ApiError;

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionDto {
    pub name: String,
    pub kind: String,
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub graph_base_url: Option<String>,
    pub has_delta_link: bool,
    /// Seconds between the server's delta imports (0: off).
    pub sync_interval_secs: u64,
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionsDto {
    pub connections: Vec<ConnectionDto>,
}

/// The workspace's directory connections.
#[utoipa::path(get, path = "/api/v1/connections", tag = "directory",
    responses((status = 200, body = ConnectionsDto)), security(("bearer" = []), ("session" = [])))]
pub async fn list(
    State(state): State<ServerState>,
    auth: Auth,
) -> Result<Json<ConnectionsDto>, ApiError> {
    let views = state.app.reader(&auth.caller).connections().await?;
    Ok(Json(ConnectionsDto {
        connections: views.into_iter().map(dto).collect(),
    }))
}

fn dto(c: behalf_app::ops::directory::ConnectionView) -> ConnectionDto {
    ConnectionDto {
        name: c.name,
        kind: c.kind.to_string(),
        tenant_id: c.tenant_id,
        client_id: c.client_id,
        graph_base_url: c.graph_base_url,
        has_delta_link: c.has_delta_link,
        sync_interval_secs: c.sync_interval_secs,
        updated_at: format_millis(c.updated_at),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateConnectionRequest {
    pub name: String,
    /// The tenant id (a GUID) or one of its domains.
    pub tenant_id: String,
    /// The app registration's application (client) id.
    pub client_id: String,
    /// The app's client secret (give this or `certificate_pem`). Sealed by the vault.
    #[schema(value_type = Option<String>, format = Password)]
    pub client_secret: Option<Secret>,
    /// The app's certificate and RSA private key, PEM. Sealed by the vault.
    #[schema(value_type = Option<String>, format = Password)]
    pub certificate_pem: Option<Secret>,
}

/// Connects an Entra ID tenant with an app registration's client secret or certificate
/// (tried at once; sealed by the vault).
#[utoipa::path(post, path = "/api/v1/connections", tag = "directory", request_body = CreateConnectionRequest,
    responses((status = 201, body = ConnectionDto), (status = 400), (status = 403), (status = 409), (status = 502)), security(("bearer" = []), ("session" = [])))]
pub async fn create(
    State(state): State<ServerState>,
    CanOperate(auth): CanOperate,
    body: Result<Json<CreateConnectionRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<ConnectionDto>), ApiError> {
    let operator = super::operator(&state, &auth)?;
    let Json(body) = body?;
    let credential = match (body.client_secret, body.certificate_pem) {
        (Some(s), None) => AppCredential::ClientSecret(s),
        (None, Some(pem)) => AppCredential::Certificate(pem),
        _ => {
            return Err(ApiError::invalid(
                "client_secret",
                "give either client_secret or certificate_pem",
            ));
        }
    };
    let view = operator
        .add_entra_connection(NewEntraConnection {
            name: body.name,
            tenant_id: body.tenant_id,
            client_id: body.client_id,
            credential,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(dto(view))))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TestAnswer {
    pub ok: bool,
    /// The permissions the app's token carries.
    pub permissions: Vec<String>,
}

/// Checks that the tenant answers: a token for Graph, and its permissions.
#[utoipa::path(post, path = "/api/v1/connections/{name}/test", tag = "directory", params(("name" = String, Path)),
    responses((status = 200, body = TestAnswer), (status = 403), (status = 502)), security(("bearer" = []), ("session" = [])))]
pub async fn test(
    State(state): State<ServerState>,
    CanOperate(auth): CanOperate,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<TestAnswer>, ApiError> {
    let operator = super::operator(&state, &auth)?;
    let _name = name?;
    let permissions = operator.test_connection(&_name.0).await?;
    Ok(Json(TestAnswer {
        ok: true,
        permissions,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ImportRequest {
    /// `full` or `delta` (default: delta, a full import when there was none).
    pub mode: Option<String>,
}

/// Imports users, groups and memberships now.
#[utoipa::path(post, path = "/api/v1/connections/{name}/import", tag = "directory", params(("name" = String, Path)),
    request_body = ImportRequest,
    responses((status = 200, body = Object), (status = 403), (status = 502)), security(("bearer" = []), ("session" = [])))]
pub async fn import(
    State(state): State<ServerState>,
    CanOperate(auth): CanOperate,
    name: Result<Path<String>, PathRejection>,
    body: Result<Json<ImportRequest>, JsonRejection>,
) -> Result<Json<ImportSummary>, ApiError> {
    let operator = super::operator(&state, &auth)?;
    let Path(name) = name?;
    let Json(body) = body?;
    let mode = match body.mode.as_deref().unwrap_or("delta") {
        "full" => ImportMode::Full,
        "delta" => ImportMode::Delta,
        other => {
            return Err(ApiError::invalid(
                "mode",
                format!("{other:?}: use full or delta"),
            ));
        }
    };
    Ok(Json(operator.import(&name, mode, &NoProgress).await?))
}
