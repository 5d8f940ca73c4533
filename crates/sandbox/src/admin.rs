//! Sandbox-only endpoints under `/sandbox/` for tests, demos and benchmarks. They take no Graph
//! token: the sandbox listens on 127.0.0.1 only, so only local processes reach them.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::certs::{AppCertificate, StoredCertificate, app_certificates};
use crate::config::Knobs;
use crate::errors::{Result, SandboxError};
use crate::state::{Life, Shared};
use crate::{oauth, policy, tap_policy};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/sandbox/state", get(state))
        .route("/sandbox/info", get(info))
        .route("/sandbox/knobs", get(get_knobs).patch(patch_knobs))
        .route("/sandbox/token", post(mint_token))
        .route("/sandbox/device", get(device_page).post(device_form))
        .route("/sandbox/device/approve", post(device_approve))
        .route("/sandbox/policy", get(get_policy).patch(patch_policy))
        .route(
            "/sandbox/tap-policy",
            get(get_tap_policy).patch(patch_tap_policy),
        )
        .route("/sandbox/clock/advance", post(advance_clock))
        .route("/sandbox/save", post(save))
        .route(
            "/sandbox/apps/{client_id}/certificates",
            get(list_certificates).post(add_certificate),
        )
        .route(
            "/sandbox/apps/{client_id}/certificates/{key_id}",
            axum::routing::delete(remove_certificate),
        )
}

/// `GET /sandbox/state`: counts for tests and dashboards.
async fn state(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let s = &shared.stats;
    // Before the directory lock: `admit` takes the throttle lock and then the directory's.
    let write_budget_left = crate::throttle::write_budget_left(&shared);
    let units_left = crate::throttle::units_left(&shared);
    let dir = shared.read();
    let active = dir.users.iter().filter(|u| u.life == Life::Active).count();
    let soft = dir
        .users
        .iter()
        .filter(|u| matches!(u.life, Life::SoftDeleted { .. }))
        .count();
    let per_user: serde_json::Map<String, Value> = dir
        .fido2
        .iter()
        .filter(|(_, ms)| !ms.is_empty())
        .map(|(u, ms)| (dir.users[*u as usize].upn.clone(), json!(ms.len())))
        .collect();
    let fido2_total: usize = dir.fido2.values().map(Vec::len).sum();
    let taps: usize = dir.taps.values().map(Vec::len).sum();
    let early = s
        .early_retries
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let early_total: u64 = early.values().sum();
    Json(json!({
        "tenantId": shared.tenant_id,
        "users": active,
        "deletedUsers": soft,
        "groups": dir.groups.iter().filter(|g| g.life == Life::Active).count(),
        "changes": dir.changes.len(),
        "fido2Methods": fido2_total,
        "fido2MethodsPerUser": per_user,
        "temporaryAccessPasses": taps,
        "policy": policy::policy_json(&dir.policy),
        "tapPolicy": tap_policy::policy_json(&dir.tap_policy),
        "requests": s.requests.load(Ordering::Relaxed),
        "graphRequests": s.graph_requests.load(Ordering::Relaxed),
        "tokenRequests": s.token_requests.load(Ordering::Relaxed),
        "throttled429": s.throttled.load(Ordering::Relaxed),
        "unavailable503": s.unavailable.load(Ordering::Relaxed),
        "dropped": s.dropped.load(Ordering::Relaxed),
        "answersDropped": s.answers_dropped.load(Ordering::Relaxed),
        "writes": s.writes.load(Ordering::Relaxed),
        "writesAdmitted": s.writes_admitted.load(Ordering::Relaxed),
        "writeBudget429": s.write_budget_throttled.load(Ordering::Relaxed),
        "writeBudgetLeft": write_budget_left,
        "unitsAdmitted": s.units_admitted.load(Ordering::Relaxed),
        "resourceUnitsLeft": units_left,
        "registrations": s.registrations.load(Ordering::Relaxed),
        "registrationsRejected": s.registrations_rejected.load(Ordering::Relaxed),
        "signIns": s.signins.load(Ordering::Relaxed),
        "signInsRejected": s.signins_rejected.load(Ordering::Relaxed),
        "earlyRetries": early_total,
        "earlyRetriesByClient": early,
    }))
}

/// `GET /sandbox/info`: where things are and which credentials to use.
async fn info(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let admin = shared.read().users.first().map(|u| u.upn.clone());
    Json(json!({
        "tenantId": shared.tenant_id,
        "domain": shared.domain,
        "loginUrl": shared.base_url,
        "graphUrl": shared.base_url,
        "tokenEndpoint": format!("{}/{}/oauth2/v2.0/token", shared.base_url, shared.tenant_id),
        "deviceCodeEndpoint": format!("{}/{}/oauth2/v2.0/devicecode", shared.base_url, shared.tenant_id),
        "adminUpn": admin,
        "apps": shared.apps,
    }))
}

async fn get_knobs(State(shared): State<Arc<Shared>>) -> Json<Knobs> {
    Json(shared.knobs())
}

/// `PATCH /sandbox/knobs` with any subset of the knobs (camelCase, as `GET` shows them).
async fn patch_knobs(State(shared): State<Arc<Shared>>, body: Bytes) -> Result<Json<Knobs>> {
    let patch = crate::users::parse_body(&body)?;
    let mut current =
        serde_json::to_value(shared.knobs()).map_err(|e| SandboxError::Internal(e.to_string()))?;
    for (k, v) in patch {
        current[k] = v;
    }
    let knobs: Knobs = serde_json::from_value(current)
        .map_err(|e| SandboxError::BadRequest(format!("Invalid knobs: {e}")))?;
    *shared.knobs.write().unwrap_or_else(|e| e.into_inner()) = knobs.clone();
    Ok(Json(knobs))
}

/// `POST /sandbox/token` `{"clientId"?, "tenantId"?, "upn"?, "permissions"?, "expiresInSeconds"?}`:
/// mints an access token directly, e.g. an expired one (negative lifetime) or one for another tenant.
async fn mint_token(State(shared): State<Arc<Shared>>, body: Bytes) -> Result<Json<Value>> {
    let m = if body.is_empty() {
        serde_json::Map::new()
    } else {
        crate::users::parse_body(&body)?
    };
    let client = match m.get("clientId").and_then(Value::as_str) {
        Some(s) => Uuid::parse_str(s)
            .map_err(|_| SandboxError::BadRequest("clientId is not a GUID.".into()))?,
        None => crate::config::PROVISIONING_CLIENT_ID,
    };
    let tid = m
        .get("tenantId")
        .and_then(Value::as_str)
        .map_or_else(|| shared.tenant_id.to_string(), String::from);
    let user = match m.get("upn").and_then(Value::as_str) {
        Some(upn) => {
            let dir = shared.read();
            let pos = crate::users::lookup(&dir, upn)?;
            Some((
                dir.users[pos as usize].id,
                dir.users[pos as usize].upn.clone(),
            ))
        }
        None => None,
    };
    let perms: Vec<String> = match m.get("permissions").and_then(Value::as_array) {
        Some(list) => list
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        None => shared
            .app(client)
            .map(|a| {
                if user.is_some() {
                    a.delegated_scopes.clone()
                } else {
                    a.app_roles.clone()
                }
            })
            .unwrap_or_default(),
    };
    let lifetime = m
        .get("expiresInSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(shared.token_lifetime_secs);
    let token = oauth::mint(&shared, &tid, client, user, &perms, lifetime)?;
    Ok(Json(
        json!({"access_token": token, "token_type": "Bearer", "expires_in": lifetime}),
    ))
}

const DEVICE_PAGE: &str = r#"<!doctype html><html><head><meta charset="utf-8"><title>Sandbox sign-in</title></head>
<body style="font-family:sans-serif;max-width:32em;margin:4em auto">
<h1>Enter code</h1><p>Sandbox tenant: approve a device sign-in as a user of the tenant.</p>
<form method="post" action="/sandbox/device">
<p><label>Code <input name="user_code" autofocus required></label></p>
<p><label>Sign in as <input name="upn" value="{admin}" required></label></p>
<p><button type="submit">Approve</button> <button type="submit" name="deny" value="1">Deny</button></p>
</form></body></html>"#;

async fn device_page(State(shared): State<Arc<Shared>>) -> Html<String> {
    let admin = shared
        .read()
        .users
        .first()
        .map(|u| u.upn.clone())
        .unwrap_or_default();
    Html(DEVICE_PAGE.replace("{admin}", &admin))
}

async fn device_form(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&body).into_owned().collect();
    let code = form.get("user_code").cloned().unwrap_or_default();
    let upn = form.get("upn").cloned().unwrap_or_default();
    match oauth::approve_device(&shared, &code, &upn, form.contains_key("deny")) {
        Ok(()) => Html(
            "<p>Done. You can close this window and return to the application.</p>".to_string(),
        )
        .into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, Html(format!("<p>{e}</p>"))).into_response(),
    }
}

/// `POST /sandbox/device/approve` `{"user_code", "upn"?, "deny"?}` (upn defaults to the admin).
async fn device_approve(State(shared): State<Arc<Shared>>, body: Bytes) -> Result<StatusCode> {
    let m = crate::users::parse_body(&body)?;
    let code = m
        .get("user_code")
        .and_then(Value::as_str)
        .ok_or_else(|| SandboxError::BadRequest("'user_code' is required.".into()))?;
    let admin = shared
        .read()
        .users
        .first()
        .map(|u| u.upn.clone())
        .unwrap_or_default();
    let upn = m
        .get("upn")
        .and_then(Value::as_str)
        .map_or(admin, String::from);
    let deny = m.get("deny").and_then(Value::as_bool).unwrap_or(false);
    oauth::approve_device(&shared, code, &upn, deny)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_policy(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(policy::policy_json(&shared.read().policy))
}

/// `PATCH /sandbox/policy`: the same body as Graph's PATCH, without needing a token.
async fn patch_policy(State(shared): State<Arc<Shared>>, body: Bytes) -> Result<Json<Value>> {
    let m = crate::users::parse_body(&body)?;
    policy::apply_patch(&shared, &m)?;
    Ok(Json(policy::policy_json(&shared.read().policy)))
}

async fn get_tap_policy(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(tap_policy::policy_json(&shared.read().tap_policy))
}

/// `PATCH /sandbox/tap-policy`: the same body as Graph's PATCH of the TAP policy, without a token.
async fn patch_tap_policy(State(shared): State<Arc<Shared>>, body: Bytes) -> Result<Json<Value>> {
    let m = crate::users::parse_body(&body)?;
    tap_policy::apply_patch(&shared, &m)?;
    Ok(Json(tap_policy::policy_json(&shared.read().tap_policy)))
}

/// `POST /sandbox/clock/advance` `{"seconds": N}`: moves the sandbox's clock forward, expiring
/// tokens, challenges and device codes and refilling throttling budgets without anyone sleeping.
async fn advance_clock(State(shared): State<Arc<Shared>>, body: Bytes) -> Result<Json<Value>> {
    let m = crate::users::parse_body(&body)?;
    let secs = m
        .get("seconds")
        .and_then(Value::as_i64)
        .filter(|s| *s >= 0)
        .ok_or_else(|| {
            SandboxError::BadRequest("'seconds' must be a non-negative integer.".into())
        })?;
    shared.clock.advance(secs * 1000);
    Ok(Json(
        json!({"now": crate::state::iso(shared.clock.now_ms())}),
    ))
}

async fn save(State(shared): State<Arc<Shared>>) -> Result<StatusCode> {
    let s = shared.clone();
    tokio::task::spawn_blocking(move || s.persist())
        .await
        .map_err(|e| SandboxError::Internal(e.to_string()))?
        .map_err(|e| SandboxError::Internal(format!("saving the state file failed: {e}")))?;
    Ok(StatusCode::NO_CONTENT)
}

fn app_id(shared: &Shared, raw: &str) -> Result<Uuid> {
    Uuid::parse_str(raw)
        .ok()
        .filter(|id| shared.app(*id).is_some())
        .ok_or_else(|| SandboxError::NotFound(format!("application {raw}")))
}

/// `GET /sandbox/apps/{clientId}/certificates`: the app's certificates as Graph's `keyCredentials`.
async fn list_certificates(
    State(shared): State<Arc<Shared>>,
    Path(client_id): Path<String>,
) -> Result<Json<Value>> {
    let id = app_id(&shared, &client_id)?;
    let value: Vec<Value> = app_certificates(&shared, id)
        .iter()
        .map(AppCertificate::key_credential)
        .collect();
    Ok(Json(json!({ "value": value })))
}

/// `POST /sandbox/apps/{clientId}/certificates` with a PEM body, or `{"key": "<base64 DER>"}`
/// (Graph's `keyCredential.key`): uploads a public certificate the app may then sign client
/// assertions with, as "Certificates & secrets" in the Entra admin center does. 201 with the
/// `keyCredential`; kept in the state file.
async fn add_certificate(
    State(shared): State<Arc<Shared>>,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>)> {
    let id = app_id(&shared, &client_id)?;
    let text = std::str::from_utf8(&body).map_err(|_| {
        SandboxError::BadRequest("The certificate must be PEM or base64 text.".into())
    })?;
    let input = if text.trim_start().starts_with('{') {
        let m = crate::users::parse_body(&body)?;
        m.get("key")
            .and_then(Value::as_str)
            .map(String::from)
            .ok_or_else(|| SandboxError::BadRequest("'key' (base64 DER) is required.".into()))?
    } else {
        text.to_string()
    };
    let cert = AppCertificate::parse(&input, Uuid::new_v4())
        .map_err(|e| SandboxError::BadRequest(format!("Invalid certificate: {e}.")))?;
    if app_certificates(&shared, id)
        .iter()
        .any(|c| c.x5t_s256 == cert.x5t_s256)
    {
        return Err(SandboxError::BadRequest(
            "Upload a certificate with a unique key: this one is already registered on the application.".into(),
        ));
    }
    shared.write().app_certificates.push(StoredCertificate {
        client_id: id,
        key_id: cert.key_id,
        der: base64::engine::general_purpose::STANDARD.encode(&cert.der),
    });
    Ok((StatusCode::CREATED, Json(cert.key_credential())))
}

/// `DELETE /sandbox/apps/{clientId}/certificates/{keyId}`: removes a certificate registered at
/// run time (configured ones stay): assertions signed with it are refused from then on.
async fn remove_certificate(
    State(shared): State<Arc<Shared>>,
    Path((client_id, key_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let id = app_id(&shared, &client_id)?;
    let key = Uuid::parse_str(&key_id).map_err(|_| SandboxError::NotFound(key_id.clone()))?;
    let mut dir = shared.write();
    let before = dir.app_certificates.len();
    dir.app_certificates
        .retain(|c| !(c.client_id == id && c.key_id == key));
    if dir.app_certificates.len() == before {
        return Err(SandboxError::NotFound(key_id));
    }
    Ok(StatusCode::NO_CONTENT)
}
