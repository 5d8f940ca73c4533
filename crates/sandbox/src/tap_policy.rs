//! The Temporary Access Pass authentication method configuration
//! (<https://learn.microsoft.com/graph/api/temporaryaccesspassauthenticationmethodconfiguration-get>,
//! <https://learn.microsoft.com/graph/api/temporaryaccesspassauthenticationmethodconfiguration-update>)
//! and what it means for issuing a pass and signing in with one.

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
use crate::state::{Directory, PolicyTarget, Shared, TapPolicy};

const POLICY_READ: &[&str] = &["Policy.Read.All", "Policy.ReadWrite.AuthenticationMethod"];
const POLICY_WRITE: &[&str] = &["Policy.ReadWrite.AuthenticationMethod"];

/// Graph: "Value can be between 10 and 43200 minutes (equivalent to 30 days)."
pub(crate) const LIFETIME_BOUNDS: std::ops::RangeInclusive<u32> = 10..=43_200;
/// Graph: defaultLength "Must be between 8 and 48 characters."
const LENGTH_BOUNDS: std::ops::RangeInclusive<u32> = 8..=48;

/// What Entra answers when the policy does not let this user have a pass: creating one for a
/// user outside the policy's targets (or with the method disabled) is refused with this text.
pub(crate) const NOT_ALLOWED: &str = "Converged UserCredentialPolicy does not allow creating or updating this authentication method. AuthMethodType [TemporaryAccessPass].";

fn targets_json(ts: &[PolicyTarget], include: bool) -> Vec<Value> {
    ts.iter()
        .map(|t| {
            let mut v = json!({"targetType": t.target_type, "id": t.id});
            if include {
                v["isRegistrationRequired"] = json!(false);
            }
            v
        })
        .collect()
}

pub(crate) fn policy_json(p: &TapPolicy) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration",
        "id": "TemporaryAccessPass",
        "state": p.state,
        "defaultLifetimeInMinutes": p.default_lifetime_in_minutes,
        "defaultLength": p.default_length,
        "minimumLifetimeInMinutes": p.minimum_lifetime_in_minutes,
        "maximumLifetimeInMinutes": p.maximum_lifetime_in_minutes,
        "isUsableOnce": p.is_usable_once,
        "includeTargets": targets_json(&p.include_targets, true),
        "excludeTargets": targets_json(&p.exclude_targets, false),
    })
}

/// Whether the policy covers the user at `pos`: included (all users, or a member of an included
/// group) and not a member of an excluded group. Graph: "excludeTargets: Groups of users that
/// are excluded from the policy."
pub(crate) fn covers(dir: &Directory, p: &TapPolicy, pos: u32) -> bool {
    let member = |t: &PolicyTarget| {
        t.id == "all_users"
            || dir
                .find_group(&t.id)
                .is_some_and(|g| dir.groups[g as usize].members.binary_search(&pos).is_ok())
    };
    p.state == "enabled"
        && p.include_targets.iter().any(member)
        && !p.exclude_targets.iter().any(member)
}

/// `GET /policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass`
pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Extension(v): Extension<ApiVersion>,
) -> Result<Json<Value>> {
    caller.require(POLICY_READ)?;
    let mut body = policy_json(&shared.read().tap_policy);
    body["@odata.context"] = json!(format!(
        "{}/$metadata#policies/authenticationMethodsPolicy/authenticationMethodConfigurations/$entity",
        shared.graph_base(v.as_str())
    ));
    Ok(Json(body))
}

/// `PATCH …/TemporaryAccessPass`: 204.
pub(crate) async fn patch(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<StatusCode> {
    caller.require(POLICY_WRITE)?;
    let m = crate::users::parse_body(&body)?;
    apply_patch(&shared, &m)?;
    Ok(StatusCode::NO_CONTENT)
}

fn parse_targets(v: &Value, what: &str, dir: &Directory) -> Result<Vec<PolicyTarget>> {
    let bad = || SandboxError::BadRequest(format!("Invalid value for '{what}'."));
    let list = v.as_array().ok_or_else(bad)?;
    let mut out = Vec::new();
    for t in list {
        let id = t.get("id").and_then(Value::as_str).ok_or_else(bad)?;
        let kind = t
            .get("targetType")
            .and_then(Value::as_str)
            .unwrap_or("group");
        if kind != "group" {
            return Err(bad());
        }
        if id != "all_users" && dir.find_group(id).is_none() {
            return Err(SandboxError::BadRequest(format!(
                "Invalid value for '{what}': the group '{id}' does not exist."
            )));
        }
        out.push(PolicyTarget {
            target_type: kind.into(),
            id: id.into(),
        });
    }
    Ok(out)
}

/// Applies a PATCH body to the policy (shared by Graph's PATCH and `/sandbox/tap-policy`).
pub(crate) fn apply_patch(shared: &Shared, m: &Map<String, Value>) -> Result<()> {
    let bad = |what: &str| SandboxError::BadRequest(format!("Invalid value for '{what}'."));
    let mut dir = shared.write();
    let mut p = dir.tap_policy.clone();
    if let Some(s) = m.get("state") {
        match s.as_str() {
            Some(x @ ("enabled" | "disabled")) => p.state = x.into(),
            _ => return Err(bad("state")),
        }
    }
    let minutes = |k: &str| -> Result<Option<u32>> {
        match m.get(k) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| LIFETIME_BOUNDS.contains(n))
                .map(Some)
                .ok_or_else(|| bad(k)),
        }
    };
    if let Some(n) = minutes("minimumLifetimeInMinutes")? {
        p.minimum_lifetime_in_minutes = n;
    }
    if let Some(n) = minutes("maximumLifetimeInMinutes")? {
        p.maximum_lifetime_in_minutes = n;
    }
    if let Some(n) = minutes("defaultLifetimeInMinutes")? {
        p.default_lifetime_in_minutes = n;
    }
    if p.minimum_lifetime_in_minutes > p.maximum_lifetime_in_minutes {
        return Err(bad("minimumLifetimeInMinutes"));
    }
    // Graph: the default "can be any integer between the minimumLifetimeInMinutes and
    // maximumLifetimeInMinutes".
    if !(p.minimum_lifetime_in_minutes..=p.maximum_lifetime_in_minutes)
        .contains(&p.default_lifetime_in_minutes)
    {
        return Err(bad("defaultLifetimeInMinutes"));
    }
    if let Some(v) = m.get("defaultLength") {
        p.default_length = v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| LENGTH_BOUNDS.contains(n))
            .ok_or_else(|| bad("defaultLength"))?;
    }
    if let Some(v) = m.get("isUsableOnce") {
        p.is_usable_once = v.as_bool().ok_or_else(|| bad("isUsableOnce"))?;
    }
    if let Some(v) = m.get("includeTargets") {
        p.include_targets = parse_targets(v, "includeTargets", &dir)?;
    }
    if let Some(v) = m.get("excludeTargets") {
        p.exclude_targets = parse_targets(v, "excludeTargets", &dir)?;
    }
    dir.tap_policy = p;
    Ok(())
}

/// The lifetime and one-time use a new pass gets, or Graph's refusal. `lifetime` and `once` are
/// the request's `lifetimeInMinutes` and `isUsableOnce` (absent: the policy's defaults).
pub(crate) fn admit(
    dir: &Directory,
    pos: u32,
    lifetime: Option<u32>,
    once: Option<bool>,
) -> Result<(u32, bool, u32)> {
    let p = &dir.tap_policy;
    if !covers(dir, p, pos) {
        return Err(SandboxError::BadRequestMethods(NOT_ALLOWED.into()));
    }
    let lifetime = lifetime.unwrap_or(p.default_lifetime_in_minutes);
    let (lo, hi) = (p.minimum_lifetime_in_minutes, p.maximum_lifetime_in_minutes);
    if !(lo..=hi).contains(&lifetime) {
        return Err(SandboxError::BadRequestMethods(format!(
            "The lifetimeInMinutes value {lifetime} is outside the range allowed by the Temporary Access Pass policy ({lo} to {hi})."
        )));
    }
    // Graph: "If true, all the passes in the tenant will be restricted to one-time use."
    let once = match once {
        Some(false) if p.is_usable_once => {
            return Err(SandboxError::BadRequestMethods(
                "The Temporary Access Pass policy restricts passes to one-time use: isUsableOnce cannot be false.".into(),
            ));
        }
        Some(b) => b,
        None => p.is_usable_once,
    };
    Ok((lifetime, once, p.default_length))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Group, Life};

    fn dir_with_group() -> (Directory, String) {
        let mut dir = Directory::default();
        let id = uuid::Uuid::new_v4();
        dir.groups.push(Group {
            id,
            display_name: "Contractors".into(),
            description: None,
            mail_nickname: "contractors".into(),
            mail_enabled: false,
            security_enabled: true,
            created: 0,
            members: vec![1, 3],
            life: Life::Active,
        });
        dir.rebuild_indexes();
        (dir, id.to_string())
    }

    #[test]
    fn targets_decide_who_is_covered() {
        let (mut dir, g) = dir_with_group();
        let all = dir.tap_policy.clone();
        assert!(covers(&dir, &all, 0) && covers(&dir, &all, 1));
        let mut p = all.clone();
        p.exclude_targets = vec![PolicyTarget {
            target_type: "group".into(),
            id: g.clone(),
        }];
        assert!(covers(&dir, &p, 0));
        assert!(!covers(&dir, &p, 1), "a member of an excluded group");
        p.exclude_targets.clear();
        p.include_targets = vec![PolicyTarget {
            target_type: "group".into(),
            id: g,
        }];
        assert!(!covers(&dir, &p, 0), "not in the included group");
        assert!(covers(&dir, &p, 3));
        p.state = "disabled".into();
        assert!(!covers(&dir, &p, 3), "a disabled method covers no one");
        dir.tap_policy = p;
        assert!(matches!(
            admit(&dir, 3, Some(60), None),
            Err(SandboxError::BadRequestMethods(m)) if m == NOT_ALLOWED
        ));
    }

    #[test]
    fn lifetimes_and_one_time_use_follow_the_policy() {
        let (mut dir, _) = dir_with_group();
        assert_eq!(admit(&dir, 0, None, None).ok(), Some((60, false, 8)));
        assert!(admit(&dir, 0, Some(59), None).is_err());
        assert!(admit(&dir, 0, Some(481), None).is_err());
        assert_eq!(
            admit(&dir, 0, Some(480), Some(true)).ok(),
            Some((480, true, 8))
        );
        dir.tap_policy.is_usable_once = true;
        assert_eq!(admit(&dir, 0, None, None).ok(), Some((60, true, 8)));
        assert!(admit(&dir, 0, None, Some(false)).is_err());
    }
}
