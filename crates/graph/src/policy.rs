//! The passkey (FIDO2) authentication method policy
//! (<https://learn.microsoft.com/graph/api/resources/fido2authenticationmethodconfiguration>).

use serde::{Deserialize, Serialize};

use crate::client::GraphClient;
use crate::error::GraphError;

pub const FIDO2_POLICY_PATH: &str =
    "policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fido2Policy {
    /// `enabled` or `disabled`.
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub is_self_service_registration_allowed: bool,
    #[serde(default)]
    pub is_attestation_enforced: bool,
    #[serde(default)]
    pub key_restrictions: KeyRestrictions,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyRestrictions {
    #[serde(default)]
    pub is_enforced: bool,
    /// `allow` or `block`.
    #[serde(default)]
    pub enforcement_type: String,
    #[serde(default)]
    pub aa_guids: Vec<String>,
}

impl Fido2Policy {
    pub fn is_enabled(&self) -> bool {
        self.state.eq_ignore_ascii_case("enabled")
    }

    /// Whether key restrictions would refuse an authenticator with this AAGUID.
    pub fn blocks_aaguid(&self, aaguid: &str) -> bool {
        let kr = &self.key_restrictions;
        if !kr.is_enforced {
            return false;
        }
        let listed = kr
            .aa_guids
            .iter()
            .any(|g| g.eq_ignore_ascii_case(aaguid.trim()));
        if kr.enforcement_type.eq_ignore_ascii_case("allow") {
            !listed
        } else {
            listed
        }
    }
}

impl GraphClient {
    /// `GET /policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2`
    /// (needs `Policy.Read.All`).
    pub async fn fido2_policy(&self) -> Result<Fido2Policy, GraphError> {
        let url = self.url(FIDO2_POLICY_PATH);
        self.get_json(&url, &[]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_restrictions_allow_and_block_lists() {
        let mut p = Fido2Policy {
            state: "enabled".into(),
            is_self_service_registration_allowed: true,
            is_attestation_enforced: false,
            key_restrictions: KeyRestrictions {
                is_enforced: false,
                enforcement_type: "block".into(),
                aa_guids: vec!["AAAAAAAA-0000-0000-0000-000000000001".into()],
            },
        };
        let listed = "aaaaaaaa-0000-0000-0000-000000000001";
        let other = "bbbbbbbb-0000-0000-0000-000000000002";
        assert!(!p.blocks_aaguid(listed), "not enforced");
        p.key_restrictions.is_enforced = true;
        assert!(p.blocks_aaguid(listed));
        assert!(!p.blocks_aaguid(other));
        p.key_restrictions.enforcement_type = "allow".into();
        assert!(!p.blocks_aaguid(listed));
        assert!(p.blocks_aaguid(other));
    }
}
