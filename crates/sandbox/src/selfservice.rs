//! The user's own registration experience, as Entra's My Security Info page
//! (<https://aka.ms/mysecurityinfo>) offers it: a user signed in with a Temporary Access Pass
//! (`/sandbox/signin/tap` answers a `sessionToken`) adds a passkey of their own. Sandbox-only
//! endpoints (My Security Info is a web page, not a Graph API), backed by the same creation
//! options and the same registration verification as Graph's `fido2Methods` (webauthn-rs-core:
//! the challenge, the FIDO2 policy, the attestation), so what a user registers here is what
//! Graph then lists, with the display name the user chose.
//!
//! - `GET /sandbox/mysecurityinfo/fido2/creationOptions` (Bearer: the session) → the
//!   `webauthnCredentialCreationOptions`, as Graph's `creationOptions` shapes them;
//! - `POST /sandbox/mysecurityinfo/fido2` `{"displayName", "publicKeyCredential"}` → 201 and the
//!   new `fido2AuthenticationMethod`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::authmethods::hex;
use crate::errors::{Result, SandboxError};
use crate::server::ApiVersion;
use crate::state::{Shared, Stats};

/// How long a session lasts at most; never past the pass that opened it.
const SESSION_MS: i64 = 3_600_000;

/// A user signed in to My Security Info.
#[derive(Debug, Clone)]
pub(crate) struct UserSession {
    pub user: u32,
    pub expires: i64,
}

/// Opens a session for user `pos` until `pass_ends` at the latest; the token is answered once
/// and kept only as its SHA-256.
pub(crate) fn open_session(shared: &Shared, pos: u32, now: i64, pass_ends: i64) -> String {
    let token = format!("mysi_{}", crate::oauth::random_token(32));
    let mut eph = shared.eph();
    eph.sessions.retain(|_, s| s.expires > now);
    eph.sessions.insert(
        hex(&Sha256::digest(token.as_bytes())),
        UserSession {
            user: pos,
            expires: pass_ends.min(now + SESSION_MS),
        },
    );
    token
}

/// The signed-in user (position, id) of a request's `Authorization: Bearer <session>`.
fn signed_in(shared: &Shared, headers: &HeaderMap) -> Result<(u32, Uuid)> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            SandboxError::InvalidToken("Sign in first: no session token was sent.".into())
        })?;
    let now = shared.clock.now_ms();
    let session = shared
        .eph()
        .sessions
        .get(&hex(&Sha256::digest(token.trim().as_bytes())))
        .cloned()
        .filter(|s| s.expires > now)
        .ok_or_else(|| {
            SandboxError::InvalidToken("The session is unknown or has expired.".into())
        })?;
    let dir = shared.read();
    let user = dir
        .users
        .get(session.user as usize)
        .filter(|u| u.account_enabled)
        .ok_or_else(|| SandboxError::SignIn("The user account is disabled.".into()))?;
    Ok((session.user, user.id))
}

/// `GET /sandbox/mysecurityinfo/fido2/creationOptions`
pub(crate) async fn creation_options(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Result<Json<Value>> {
    let (pos, user_id) = signed_in(&shared, &headers)?;
    // The page's own ceremony: Entra's fixed 5-minute challenge, as v1.0's creationOptions.
    crate::authmethods::creation_options_for(&shared, pos, user_id, 5, ApiVersion::V1).map(Json)
}

/// `POST /sandbox/mysecurityinfo/fido2`
pub(crate) async fn register(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let (pos, user_id) = signed_in(&shared, &headers)?;
    let result = crate::authmethods::register_for(&shared, pos, user_id, &body);
    match &result {
        Ok(_) => Stats::inc(&shared.stats.registrations),
        Err(_) => Stats::inc(&shared.stats.registrations_rejected),
    };
    result.map(|b| (StatusCode::CREATED, Json(b)).into_response())
}
