//! A passkey sign-in check (sandbox-only, not a Graph API): proves that a provisioned passkey can
//! actually sign in at `login.microsoft.com`. Assertion options and verification come from
//! webauthn-rs-core; the signature counter must move forward, as Entra requires of security keys.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use webauthn_rs_core::proto::PublicKeyCredential;

use crate::errors::{Result, SandboxError};
use crate::state::{PendingSignIn, Shared, Stats};

/// `POST /sandbox/signin/begin` `{"upn"}` → `{"publicKey": {challenge, rpId, allowCredentials, …}}`
pub(crate) async fn begin(State(shared): State<Arc<Shared>>, body: Bytes) -> Result<Json<Value>> {
    let m = crate::users::parse_body(&body)?;
    let upn = m
        .get("upn")
        .and_then(Value::as_str)
        .ok_or_else(|| SandboxError::BadRequest("'upn' is required.".into()))?;
    let (pos, creds) = {
        let dir = shared.read();
        let pos = crate::users::lookup(&dir, upn)?;
        if !dir.users[pos as usize].account_enabled {
            return Err(SandboxError::SignIn("The user account is disabled.".into()));
        }
        let creds: Vec<_> = dir
            .fido2
            .get(&pos)
            .map(|ms| ms.iter().map(|m| m.credential.clone()).collect())
            .unwrap_or_default();
        (pos, creds)
    };
    if creds.is_empty() {
        return Err(SandboxError::SignIn(format!(
            "'{upn}' has no passkey registered."
        )));
    }
    let builder = shared
        .webauthn
        .new_challenge_authenticate_builder(creds, None)
        .map_err(|e| SandboxError::Internal(e.to_string()))?;
    let (rcr, st) = shared
        .webauthn
        .generate_challenge_authenticate(builder)
        .map_err(|e| SandboxError::Internal(e.to_string()))?;
    let v = serde_json::to_value(&rcr).map_err(|e| SandboxError::Internal(e.to_string()))?;
    let challenge = v["publicKey"]["challenge"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let now = shared.clock.now_ms();
    let mut eph = shared.eph();
    eph.signins.retain(|_, s| s.expires > now);
    eph.signins.insert(
        challenge,
        PendingSignIn {
            user: pos,
            expires: now + 300_000,
            state: st,
        },
    );
    Ok(Json(v))
}

/// `POST /sandbox/signin/finish` with the assertion (`PublicKeyCredential` JSON; `rawId` and
/// `type` may be omitted) → `{"upn", "userId", "fido2MethodId", "counter", "userVerified"}`.
pub(crate) async fn finish(State(shared): State<Arc<Shared>>, body: Bytes) -> Result<Json<Value>> {
    let r = finish_inner(&shared, &body);
    match &r {
        Ok(_) => Stats::inc(&shared.stats.signins),
        Err(_) => Stats::inc(&shared.stats.signins_rejected),
    };
    r.map(Json)
}

fn finish_inner(shared: &Shared, body: &Bytes) -> Result<Value> {
    let mut v: Value = serde_json::from_slice(body)
        .map_err(|_| SandboxError::SignIn("The assertion is not JSON.".into()))?;
    // Glue: browsers send rawId and type, simple clients may not; both equal what they can be derived from.
    if v.get("rawId").is_none() {
        v["rawId"] = v.get("id").cloned().unwrap_or(Value::Null);
    }
    if v.get("type").is_none() {
        v["type"] = json!("public-key");
    }
    let cd = v["response"]["clientDataJSON"]
        .as_str()
        .and_then(|s| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok());
    let cd: Value = cd
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| SandboxError::SignIn("clientDataJSON is missing or malformed.".into()))?;
    let challenge = cd["challenge"].as_str().unwrap_or_default();
    let pkc: PublicKeyCredential = serde_json::from_value(v)
        .map_err(|e| SandboxError::SignIn(format!("The assertion is malformed: {e}")))?;
    let pending =
        shared.eph().signins.remove(challenge).ok_or_else(|| {
            SandboxError::SignIn("Unknown or already used sign-in challenge.".into())
        })?;
    if shared.clock.now_ms() >= pending.expires {
        return Err(SandboxError::SignIn(
            "The sign-in challenge has expired.".into(),
        ));
    }
    let result = shared
        .webauthn
        .authenticate_credential(&pkc, &pending.state)
        .map_err(|e| SandboxError::SignIn(format!("The assertion was rejected: {e}")))?;
    let mut dir = shared.write();
    let upn = dir.users[pending.user as usize].upn.clone();
    let user_id = dir.users[pending.user as usize].id;
    let method = dir
        .fido2
        .get_mut(&pending.user)
        .and_then(|ms| {
            ms.iter_mut()
                .find(|m| m.credential.cred_id.as_slice() == result.cred_id().as_slice())
        })
        .ok_or_else(|| SandboxError::SignIn("The passkey was deleted during sign-in.".into()))?;
    if result.counter() > method.credential.counter {
        method.credential.counter = result.counter();
    }
    Ok(json!({
        "upn": upn,
        "userId": user_id,
        "fido2MethodId": method.id,
        "credentialId": URL_SAFE_NO_PAD.encode(result.cred_id().as_slice()),
        "counter": result.counter(),
        "userVerified": result.user_verified(),
    }))
}

/// `POST /sandbox/signin/tap` `{"upn", "temporaryAccessPass"}` → `{"upn", "userId", "methodId",
/// "sessionToken"}` (the session adds a passkey at `/sandbox/mysecurityinfo`, `selfservice`):
/// signs in with a Temporary Access Pass as Entra's sign-in page does. The pass must be the
/// user's, inside its lifetime, unused if it is one-time (a one-time pass is spent here), and the
/// TAP policy must still cover the user: Entra checks the policy again at sign-in
/// ("Temporary Access Pass sign in was blocked due to User Credential Policy").
pub(crate) async fn tap(State(shared): State<Arc<Shared>>, body: Bytes) -> Result<Json<Value>> {
    let r = tap_inner(&shared, &body);
    match &r {
        Ok(_) => Stats::inc(&shared.stats.signins),
        Err(_) => Stats::inc(&shared.stats.signins_rejected),
    };
    r.map(Json)
}

fn tap_inner(shared: &Shared, body: &Bytes) -> Result<Value> {
    let m = crate::users::parse_body(body)?;
    let field = |k: &str| {
        m.get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| SandboxError::BadRequest(format!("'{k}' is required.")))
    };
    let (upn, pass) = (field("upn")?, field("temporaryAccessPass")?);
    let now = shared.clock.now_ms();
    let mut dir = shared.write();
    let pos = crate::users::lookup(&dir, upn)?;
    if !dir.users[pos as usize].account_enabled {
        return Err(SandboxError::SignIn("The user account is disabled.".into()));
    }
    if !crate::tap_policy::covers(&dir, &dir.tap_policy, pos) {
        return Err(SandboxError::SignIn(
            "Temporary Access Pass sign in was blocked due to User Credential Policy.".into(),
        ));
    }
    let digest = crate::taps::pass_digest(pass);
    let (user_id, user_upn) = {
        let u = &dir.users[pos as usize];
        (u.id, u.upn.clone())
    };
    let t = dir
        .taps
        .get_mut(&pos)
        .and_then(|ts| ts.iter_mut().find(|t| t.pass_sha256 == digest))
        .ok_or_else(|| {
            SandboxError::SignIn("The Temporary Access Pass is not valid for this user.".into())
        })?;
    let end = t.start + i64::from(t.lifetime_minutes) * 60_000;
    if now < t.start {
        return Err(SandboxError::SignIn(
            "The Temporary Access Pass is not valid yet.".into(),
        ));
    }
    if now >= end {
        return Err(SandboxError::SignIn(
            "The Temporary Access Pass has expired.".into(),
        ));
    }
    if t.usable_once && t.used {
        return Err(SandboxError::SignIn(
            "The Temporary Access Pass has already been used.".into(),
        ));
    }
    t.used = true;
    let method_id = t.id;
    drop(dir);
    // Signed in: a session for the user's own registration experience (My Security Info),
    // which ends with the pass at the latest.
    let session = crate::selfservice::open_session(shared, pos, now, end);
    Ok(json!({"upn": user_upn, "userId": user_id, "methodId": method_id, "sessionToken": session}))
}
