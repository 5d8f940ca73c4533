//! The Temporary Access Pass authentication method policy
//! (<https://learn.microsoft.com/graph/api/resources/temporaryaccesspassauthenticationmethodconfiguration>).

use serde::{Deserialize, Serialize};

use crate::client::GraphClient;
use crate::error::GraphError;

pub const TAP_POLICY_PATH: &str =
    "policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass";

/// Graph: the id that targets every user in an `includeTargets` entry.
pub const ALL_USERS_TARGET: &str = "all_users";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TapPolicy {
    /// `enabled` or `disabled`.
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub include_targets: Vec<PolicyTarget>,
    #[serde(default)]
    pub exclude_targets: Vec<PolicyTarget>,
    #[serde(default)]
    pub default_lifetime_in_minutes: Option<u32>,
    #[serde(default)]
    pub minimum_lifetime_in_minutes: Option<u32>,
    #[serde(default)]
    pub maximum_lifetime_in_minutes: Option<u32>,
    /// Graph: "If true, all the passes in the tenant will be restricted to one-time use."
    #[serde(default)]
    pub is_usable_once: bool,
    #[serde(default)]
    pub default_length: Option<u32>,
}

/// An `includeTargets` / `excludeTargets` entry: a group's object id, or [`ALL_USERS_TARGET`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyTarget {
    #[serde(default)]
    pub target_type: String,
    pub id: String,
}

impl PolicyTarget {
    pub fn is_all_users(&self) -> bool {
        self.id.eq_ignore_ascii_case(ALL_USERS_TARGET)
    }
}

impl TapPolicy {
    pub fn is_enabled(&self) -> bool {
        self.state.eq_ignore_ascii_case("enabled")
    }

    pub fn includes_all_users(&self) -> bool {
        self.include_targets.iter().any(PolicyTarget::is_all_users)
    }

    /// Whether a pass of `minutes` fits the policy's lifetime limits (Entra's 10..43200 when the
    /// policy names none).
    pub fn allows_lifetime(&self, minutes: u32) -> bool {
        let lo = self.minimum_lifetime_in_minutes.unwrap_or(10);
        let hi = self.maximum_lifetime_in_minutes.unwrap_or(43_200);
        (lo..=hi).contains(&minutes)
    }
}

impl GraphClient {
    /// `GET /policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass`
    /// (needs `Policy.Read.All`).
    pub async fn tap_policy(&self) -> Result<TapPolicy, GraphError> {
        let url = self.url(TAP_POLICY_PATH);
        self.get_json(&url, &[]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_graphs_document() {
        let p: TapPolicy = serde_json::from_value(serde_json::json!({
            "@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration",
            "id": "TemporaryAccessPass", "state": "enabled",
            "defaultLifetimeInMinutes": 60, "defaultLength": 8,
            "minimumLifetimeInMinutes": 60, "maximumLifetimeInMinutes": 480, "isUsableOnce": false,
            "includeTargets": [{"targetType": "group", "id": "all_users", "isRegistrationRequired": false}],
            "excludeTargets": [{"targetType": "group", "id": "b0f4ce4e-0000-4000-8000-000000000001"}]
        }))
        .expect("policy");
        assert!(p.is_enabled() && p.includes_all_users());
        assert_eq!(p.exclude_targets.len(), 1);
        assert!(p.allows_lifetime(60) && p.allows_lifetime(480));
        assert!(!p.allows_lifetime(59) && !p.allows_lifetime(481));
    }
}
