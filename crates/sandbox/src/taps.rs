//! Temporary Access Passes on behalf of a user
//! (<https://learn.microsoft.com/graph/api/authentication-post-temporaryaccesspassmethods>):
//! issued within the tenant's TAP policy (`tap_policy`), kept only as a digest, listed and
//! deleted; one pass per user, as Entra keeps.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::RngExt;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::authmethods::{METHODS_READ, hex, target_user};
use crate::errors::{Result, SandboxError};
use crate::oauth::Caller;
use crate::server::ApiVersion;
use crate::state::{Shared, TapMethod, iso};
use crate::users::{self, context};

pub(crate) const TAP_WRITE: &[&str] = &[
    "UserAuthenticationMethod.ReadWrite.All",
    "UserAuthMethod-TAP.ReadWrite.All",
];

/// What the sandbox keeps of a pass: its SHA-256, in hex (the sign-in compares digests).
pub(crate) fn pass_digest(pass: &str) -> String {
    hex(&Sha256::digest(pass.as_bytes()))
}

pub(crate) fn tap_json(t: &TapMethod, now: i64, pass: Option<&str>) -> Value {
    let end = t.start + i64::from(t.lifetime_minutes) * 60_000;
    let spent = t.usable_once && t.used;
    let usable = now >= t.start && now < end && !spent;
    json!({
        "@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
        "id": t.id,
        "temporaryAccessPass": pass,
        "createdDateTime": iso(t.created),
        "startDateTime": iso(t.start),
        "lifetimeInMinutes": t.lifetime_minutes,
        "isUsableOnce": t.usable_once,
        "isUsable": usable,
        "methodUsabilityReason": if usable { "EnabledByPolicy" } else if spent { "OneTimeUsed" } else if now < t.start { "NotYetValid" } else { "Expired" },
    })
}

/// `POST /users/{id}/authentication/temporaryAccessPassMethods`: the pass is in this answer only.
pub(crate) async fn create_tap(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Extension(v): Extension<ApiVersion>,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<Response> {
    caller.require(TAP_WRITE)?;
    let (pos, _) = target_user(&shared, &caller, &key, false)?;
    let m: Map<String, Value> = if body.is_empty() {
        Map::new()
    } else {
        users::parse_body(&body)?
    };
    let lifetime = match m.get("lifetimeInMinutes") {
        None | Some(Value::Null) => None,
        Some(l) => match l.as_u64() {
            Some(n)
                if u32::try_from(n)
                    .is_ok_and(|n| crate::tap_policy::LIFETIME_BOUNDS.contains(&n)) =>
            {
                Some(n as u32)
            }
            _ => {
                return Err(SandboxError::BadRequestMethods(format!(
                    "The lifetimeInMinutes value {l} is outside the range allowed by the Temporary Access Pass policy (10 to 43200)."
                )));
            }
        },
    };
    let usable_once = match m.get("isUsableOnce") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            return Err(SandboxError::BadRequestMethods(
                "isUsableOnce must be a boolean.".into(),
            ));
        }
    };
    // The tenant's TAP policy decides whether this user may have a pass at all, and bounds it.
    let (lifetime, usable_once, length) =
        crate::tap_policy::admit(&shared.read(), pos, lifetime, usable_once)?;
    let now = shared.clock.now_ms();
    let start = match m.get("startDateTime").and_then(Value::as_str) {
        None => now,
        Some(s) => time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
            .map_err(|_| {
                SandboxError::BadRequestMethods(format!(
                    "startDateTime '{s}' is not a valid date and time."
                ))
            })?,
    };
    // A TAP is the policy's defaultLength (8 by default) of an alphabet without look-alikes.
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789+#!";
    let mut rng = rand::rng();
    let pass: String = (0..length)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    let tap = TapMethod {
        id: Uuid::new_v4(),
        created: now,
        start,
        lifetime_minutes: lifetime,
        usable_once,
        pass_sha256: pass_digest(&pass),
        used: false,
    };
    let mut body = tap_json(&tap, now, Some(&pass));
    body["@odata.context"] = json!(context(
        &shared,
        v,
        &format!("users('{key}')/authentication/temporaryAccessPassMethods/$entity"),
        None
    ));
    // Entra keeps one pass per user: a new one replaces the old.
    shared.write().taps.insert(pos, vec![tap]);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET …/temporaryAccessPassMethods`
pub(crate) async fn list_tap(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Extension(v): Extension<ApiVersion>,
    Path(key): Path<String>,
) -> Result<Json<Value>> {
    caller.require(METHODS_READ)?;
    let (pos, _) = target_user(&shared, &caller, &key, false)?;
    let now = shared.clock.now_ms();
    let dir = shared.read();
    let value: Vec<Value> = dir
        .taps
        .get(&pos)
        .map(|ts| ts.iter().map(|t| tap_json(t, now, None)).collect())
        .unwrap_or_default();
    Ok(Json(
        json!({"@odata.context": context(&shared, v, &format!("users('{key}')/authentication/temporaryAccessPassMethods"), None), "value": value}),
    ))
}

pub(crate) async fn get_tap(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path((key, method)): Path<(String, String)>,
) -> Result<Json<Value>> {
    caller.require(METHODS_READ)?;
    let (pos, _) = target_user(&shared, &caller, &key, false)?;
    let now = shared.clock.now_ms();
    let dir = shared.read();
    let t = dir
        .taps
        .get(&pos)
        .and_then(|ts| ts.iter().find(|t| t.id.to_string() == method))
        .ok_or_else(|| SandboxError::NotFound(method.clone()))?;
    Ok(Json(tap_json(t, now, None)))
}

pub(crate) async fn delete_tap(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path((key, method)): Path<(String, String)>,
) -> Result<StatusCode> {
    caller.require(TAP_WRITE)?;
    let (pos, _) = target_user(&shared, &caller, &key, false)?;
    let mut dir = shared.write();
    let taps = dir.taps.entry(pos).or_default();
    let i = taps
        .iter()
        .position(|t| t.id.to_string() == method)
        .ok_or_else(|| SandboxError::NotFound(method.clone()))?;
    taps.remove(i);
    Ok(StatusCode::NO_CONTENT)
}
