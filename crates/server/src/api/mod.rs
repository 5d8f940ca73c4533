//! `/api/v1`: the REST API, documented as OpenAPI 3.1 at `/api/v1/openapi.json`.
//!
//! Routes are registered through utoipa-axum's `OpenApiRouter`, which adds a handler and its
//! documentation in one call: a route cannot exist without being in the document, and the
//! authorization test walks the document, so it cannot escape that test either.

mod actions;
mod admins;
mod behalf_key;
mod directory;
pub mod dto;
mod jobs;
mod mail;
mod outbound;
mod reports;
mod scim_tokens;
mod session;
mod users;

use std::str::FromStr;

use behalf_app::{Operator, Owner, Provisioner};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::ServerState;
use crate::auth::Auth;
use crate::problem::ApiError;

#[derive(OpenApi)]
#[openapi(
    info(title = "Behalf API", version = "1", description = "Registers passkeys into Microsoft Entra ID on behalf of users. Authenticate with `Authorization: Bearer <token>` (`behalf token create`), or a panel session cookie plus the `x-csrf-token` header on requests that change state. Errors are `application/problem+json`."),
    modifiers(&SecuritySchemes),
    tags(
        (name = "session", description = "Signing in"),
        (name = "users", description = "Users, their keys and passkeys"),
        (name = "jobs", description = "Provisioning jobs"),
        (name = "reports", description = "Report, audit log, doctor"),
        (name = "directory", description = "Directory connections, and outbound writes to Entra ID (users, groups, members) on a writable connection"),
        (name = "admins", description = "Admins and API tokens (owners)"),
        (name = "behalf_key", description = "Behalf Key: pairing codes for a user's browser extension, their devices and revocation"),
        (name = "scim", description = "SCIM connections' bearer tokens for /scim/v2 (owners and admins)"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::auth::SESSION_COOKIE,
            ))),
        );
    }
}

/// The API's routes and their document.
pub fn router() -> (axum::Router<ServerState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(session::login))
        .routes(routes!(session::logout))
        .routes(routes!(session::me))
        .routes(routes!(session::device_start))
        .routes(routes!(session::device_token))
        .routes(routes!(session::device_approve))
        .routes(routes!(session::setup))
        .routes(routes!(users::list_users))
        .routes(routes!(users::get_user))
        .routes(routes!(users::user_events))
        .routes(routes!(users::assign_key))
        .routes(routes!(users::revoke_key))
        .routes(routes!(actions::issue_tap))
        .routes(routes!(mail::send_activation))
        .routes(routes!(mail::send_reset))
        .routes(routes!(actions::deprovision))
        .routes(routes!(jobs::create_job, jobs::list_jobs))
        .routes(routes!(jobs::create_job_csv))
        .routes(routes!(jobs::get_job))
        .routes(routes!(jobs::job_items))
        .routes(routes!(jobs::job_failures))
        .routes(routes!(jobs::cancel_job))
        .routes(routes!(jobs::retry_job))
        .routes(routes!(jobs::job_events))
        .routes(routes!(reports::report))
        .routes(routes!(reports::audit))
        .routes(routes!(reports::doctor))
        .routes(routes!(directory::list, directory::create))
        .routes(routes!(directory::test))
        .routes(routes!(directory::import))
        .routes(routes!(outbound::set_writable))
        .routes(routes!(outbound::create_user))
        .routes(routes!(outbound::update_user, outbound::delete_user))
        .routes(routes!(outbound::user_sync))
        .routes(routes!(outbound::group_sync))
        .routes(routes!(outbound::create_group))
        .routes(routes!(outbound::delete_group))
        .routes(routes!(outbound::add_member, outbound::remove_member))
        .routes(routes!(outbound::list_writes))
        .routes(routes!(outbound::retry_write))
        .routes(routes!(outbound::discard_write))
        .routes(routes!(admins::list_admins, admins::create_admin))
        .routes(routes!(admins::delete_admin, admins::update_admin))
        .routes(routes!(admins::list_tokens, admins::create_token))
        .routes(routes!(admins::revoke_token))
        .routes(routes!(
            scim_tokens::list_scim_tokens,
            scim_tokens::create_scim_token
        ))
        .routes(routes!(scim_tokens::revoke_scim_token))
        .routes(routes!(behalf_key::issue_pairing))
        .routes(routes!(behalf_key::list_devices))
        .routes(routes!(behalf_key::revoke_device))
        .routes(routes!(behalf_key::mail_pairing))
        .routes(routes!(admins::vault_status))
        .routes(routes!(admins::rotate_master_key))
        .split_for_parts()
}

/// Parses a path or query id, naming the parameter when it is not one.
pub(crate) fn parse_id<T: FromStr>(field: &str, text: &str) -> Result<T, ApiError> {
    text.trim()
        .parse()
        .map_err(|_| ApiError::invalid(field, format!("{text:?} is not a valid id")))
}

/// Parses an optional enum-like parameter (empty is absent).
pub(crate) fn parse_opt<T: FromStr>(field: &str, text: Option<&str>) -> Result<Option<T>, ApiError>
where
    T::Err: std::fmt::Display,
{
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => t
            .parse()
            .map(Some)
            .map_err(|e: T::Err| ApiError::invalid(field, e.to_string())),
    }
}

// The handles. The capability extractors already refused a caller without the capability, so
// `None` here means the two checks disagree: a 403 rather than a panic.
pub(crate) fn provisioner<'a>(
    state: &'a ServerState,
    auth: &Auth,
) -> Result<Provisioner<'a>, ApiError> {
    state
        .app
        .provisioner(&auth.caller)
        .ok_or_else(|| ApiError::forbidden("provisioning"))
}

pub(crate) fn operator<'a>(state: &'a ServerState, auth: &Auth) -> Result<Operator<'a>, ApiError> {
    state
        .app
        .operator(&auth.caller)
        .ok_or_else(|| ApiError::forbidden("directory connections"))
}

pub(crate) fn owner<'a>(state: &'a ServerState, auth: &Auth) -> Result<Owner<'a>, ApiError> {
    state
        .app
        .owner(&auth.caller)
        .ok_or_else(|| ApiError::forbidden("an owner"))
}
