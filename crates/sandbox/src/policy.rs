//! The passkey (FIDO2) authentication method configuration
//! (<https://learn.microsoft.com/graph/api/fido2authenticationmethodconfiguration-update>).

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use crate::errors::{Result, SandboxError};
use crate::oauth::Caller;
use crate::server::ApiVersion;
use crate::state::{Fido2Policy, Shared};

const POLICY_READ: &[&str] = &["Policy.Read.All", "Policy.ReadWrite.AuthenticationMethod"];
const POLICY_WRITE: &[&str] = &["Policy.ReadWrite.AuthenticationMethod"];

pub(crate) fn policy_json(p: &Fido2Policy) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.fido2AuthenticationMethodConfiguration",
        "id": "Fido2",
        "state": p.state,
        "isSelfServiceRegistrationAllowed": p.is_self_service_registration_allowed,
        "isAttestationEnforced": p.is_attestation_enforced,
        "keyRestrictions": {
            "isEnforced": p.key_restrictions.is_enforced,
            "enforcementType": p.key_restrictions.enforcement_type,
            "aaGuids": p.key_restrictions.aa_guids,
        },
        "includeTargets": [{"targetType": "group", "id": "all_users", "isRegistrationRequired": false}],
        "excludeTargets": [],
    })
}

/// `GET /policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2`
pub(crate) async fn get_fido2(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Extension(v): Extension<ApiVersion>,
) -> Result<Json<Value>> {
    caller.require(POLICY_READ)?;
    let mut body = policy_json(&shared.read().policy);
    body["@odata.context"] = json!(format!(
        "{}/$metadata#policies/authenticationMethodsPolicy/authenticationMethodConfigurations/$entity",
        shared.graph_base(v.as_str())
    ));
    Ok(Json(body))
}

/// Applies a PATCH body to the policy (shared by Graph's PATCH and `/sandbox/policy`).
pub(crate) fn apply_patch(shared: &Shared, m: &Map<String, Value>) -> Result<()> {
    let bad = |what: &str| SandboxError::BadRequest(format!("Invalid value for '{what}'."));
    let mut p = shared.read().policy.clone();
    if let Some(s) = m.get("state") {
        match s.as_str() {
            Some(x @ ("enabled" | "disabled")) => p.state = x.into(),
            _ => return Err(bad("state")),
        }
    }
    if let Some(b) = m.get("isSelfServiceRegistrationAllowed") {
        p.is_self_service_registration_allowed = b
            .as_bool()
            .ok_or_else(|| bad("isSelfServiceRegistrationAllowed"))?;
    }
    if let Some(b) = m.get("isAttestationEnforced") {
        p.is_attestation_enforced = b.as_bool().ok_or_else(|| bad("isAttestationEnforced"))?;
    }
    if let Some(kr) = m.get("keyRestrictions") {
        let kr = kr.as_object().ok_or_else(|| bad("keyRestrictions"))?;
        if let Some(b) = kr.get("isEnforced") {
            p.key_restrictions.is_enforced = b
                .as_bool()
                .ok_or_else(|| bad("keyRestrictions.isEnforced"))?;
        }
        if let Some(t) = kr.get("enforcementType") {
            match t.as_str() {
                Some(x @ ("allow" | "block")) => p.key_restrictions.enforcement_type = x.into(),
                _ => return Err(bad("keyRestrictions.enforcementType")),
            }
        }
        if let Some(list) = kr.get("aaGuids") {
            let list = list
                .as_array()
                .ok_or_else(|| bad("keyRestrictions.aaGuids"))?;
            let mut out = Vec::new();
            for g in list {
                let s = g
                    .as_str()
                    .filter(|s| uuid::Uuid::parse_str(s).is_ok())
                    .ok_or_else(|| bad("keyRestrictions.aaGuids"))?;
                out.push(s.to_lowercase());
            }
            p.key_restrictions.aa_guids = out;
        }
    }
    shared.write().policy = p;
    Ok(())
}

/// `PATCH …/fido2`: 204.
pub(crate) async fn patch_fido2(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<StatusCode> {
    caller.require(POLICY_WRITE)?;
    let m = crate::users::parse_body(&body)?;
    apply_patch(&shared, &m)?;
    Ok(StatusCode::NO_CONTENT)
}
