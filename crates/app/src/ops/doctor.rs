//! `doctor`: reads the tenant's passkey (FIDO2) policy and the app's permissions and says, in
//! plain words, what would stop provisioning and how to fix it.

use behalf_config::{AttestationMode, Config};
use behalf_graph::{ApiVersion, Fido2Policy, PERMISSION_AUTH_METHODS, PERMISSION_PASSKEYS};
use serde::Serialize;

use crate::{AppError, DirectoryGraph, GraphActing, Reader};

mod tap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warning,
    Problem,
}

/// One check and what it found, in words an admin can act on.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub status: Status,
    pub message: String,
}

/// Everything `doctor` found; `ok` is false when something would stop provisioning.
#[derive(Debug, Default, Serialize)]
pub struct DoctorReport {
    pub ok: bool,
    pub findings: Vec<Finding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<Fido2Policy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tap_policy: Option<behalf_graph::TapPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Option<behalf_graph::TokenPermissions>,
}

impl DoctorReport {
    fn add(&mut self, check: &'static str, status: Status, message: impl Into<String>) {
        self.findings.push(Finding {
            check,
            status,
            message: message.into(),
        });
    }

    /// How many findings would stop provisioning.
    pub fn problems(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.status == Status::Problem)
            .count()
    }
}

impl Reader<'_> {
    /// Checks the tenant for what provisioning needs. `aaguid` is the one the passkeys will
    /// carry (default: `provisioning.aaguid`).
    pub async fn doctor(&self, aaguid: Option<&str>) -> Result<DoctorReport, AppError> {
        let config = self.app.config();
        let aaguid = aaguid
            .unwrap_or(config.provisioning.aaguid.as_str())
            .to_owned();
        let graph = self.app.directory_graph()?;
        let mut r = examine(config, &graph, &aaguid).await;
        if !r.findings.iter().any(|f| f.check == "sign-in") {
            tap::findings(&mut r, self.app, &graph).await;
            r.ok = !r.findings.iter().any(|f| f.status == Status::Problem);
        }
        Ok(r)
    }
}

async fn examine(config: &Config, graph: &DirectoryGraph, aaguid: &str) -> DoctorReport {
    let mut r = DoctorReport::default();
    let v1 = graph.client.api_version() == ApiVersion::V1;

    // Permissions, from the token itself.
    match graph.client.token_permissions().await {
        Err(e) => {
            r.add(
                "sign-in",
                Status::Problem,
                format!("cannot get a token for Graph: {e}"),
            );
            r.ok = false;
            return r;
        }
        Ok(None) => r.add(
            "permissions",
            Status::Warning,
            "the access token is not a JWT, so its permissions cannot be read",
        ),
        Ok(Some(p)) => {
            let wanted: &[&str] = if v1 {
                &[PERMISSION_AUTH_METHODS, PERMISSION_PASSKEYS]
            } else {
                &[PERMISSION_AUTH_METHODS]
            };
            let kind = match graph.acting {
                GraphActing::App => "application permission",
                GraphActing::Admin { .. } => "delegated permission",
            };
            if p.has_any(wanted) {
                r.add(
                    "permissions",
                    Status::Ok,
                    format!(
                        "the token has {}",
                        wanted
                            .iter()
                            .find(|w| p.has_any(&[w]))
                            .unwrap_or(&wanted[0])
                    ),
                );
            } else {
                r.add(
                    "permissions",
                    Status::Problem,
                    format!(
                        "the token lacks {} ({kind}{}): Graph will refuse every passkey registration with 403. Grant it to the app and give admin consent.",
                        PERMISSION_AUTH_METHODS,
                        if v1 { format!(", or {PERMISSION_PASSKEYS} on v1.0") } else { String::new() }
                    ),
                );
            }
            if let GraphActing::Admin { upn } = &graph.acting {
                r.add(
                    "admin account",
                    Status::Warning,
                    format!(
                        "signed in as {}: Graph refuses to register passkeys for the caller's own account (405), so that one user cannot be provisioned this way",
                        upn.as_deref().unwrap_or("an admin")
                    ),
                );
            }
            r.permissions = Some(p);
        }
    }

    // The passkey (FIDO2) method policy.
    match graph.client.fido2_policy().await {
        Err(e) if e.status() == Some(403) => r.add(
            "FIDO2 policy",
            Status::Warning,
            format!(
                "cannot read the passkey (FIDO2) policy: grant Policy.Read.All to check it ({e})"
            ),
        ),
        Err(e) => r.add(
            "FIDO2 policy",
            Status::Warning,
            format!("cannot read the passkey (FIDO2) policy: {e}"),
        ),
        Ok(p) => {
            policy_findings(&mut r, &p, config, aaguid);
            r.policy = Some(p);
        }
    }
    r.ok = !r.findings.iter().any(|f| f.status == Status::Problem);
    r
}

fn policy_findings(r: &mut DoctorReport, p: &Fido2Policy, config: &Config, aaguid: &str) {
    if p.is_enabled() {
        r.add(
            "FIDO2 policy",
            Status::Ok,
            "the passkey (FIDO2) method is enabled",
        );
    } else {
        r.add(
            "FIDO2 policy",
            Status::Problem,
            "the passkey (FIDO2) authentication method is disabled in the tenant's authentication methods policy: enable it (Entra admin center → Authentication methods → Passkey (FIDO2))",
        );
    }
    if p.is_self_service_registration_allowed {
        r.add(
            "self-service setup",
            Status::Ok,
            "self-service set up is allowed",
        );
    } else {
        r.add(
            "self-service setup",
            Status::Problem,
            "'Allow self-service set up' is off in the passkey (FIDO2) policy: Graph refuses registrations on behalf of users until it is on",
        );
    }
    if p.is_attestation_enforced {
        let why = match config.provisioning.attestation {
            AttestationMode::Packed => {
                "Behalf's keys carry 'packed' attestation from the workspace's own CA, which is not in Microsoft's FIDO metadata, so Entra will reject them"
            }
            AttestationMode::None => {
                "Behalf is configured for 'none' attestation, which an enforcing tenant rejects"
            }
            AttestationMode::PackedSelf => {
                "Behalf's self-attested keys are not in Microsoft's FIDO metadata, so Entra will reject them"
            }
        };
        r.add(
            "attestation",
            Status::Problem,
            format!("the policy enforces attestation: {why}. Turn 'Enforce attestation' off for the provisioned users"),
        );
    } else {
        r.add("attestation", Status::Ok, "attestation is not enforced");
    }
    let kr = &p.key_restrictions;
    if p.blocks_aaguid(aaguid) {
        let how = if kr.enforcement_type.eq_ignore_ascii_case("allow") {
            "is not in the policy's list of allowed AAGUIDs"
        } else {
            "is in the policy's list of blocked AAGUIDs"
        };
        r.add(
            "key restrictions",
            Status::Problem,
            format!("the AAGUID {aaguid} that Behalf's passkeys carry {how}: add it to the allow list (or take it off the block list)"),
        );
    } else if kr.is_enforced {
        r.add(
            "key restrictions",
            Status::Ok,
            format!(
                "key restrictions are enforced ({}) and allow {aaguid}",
                kr.enforcement_type
            ),
        );
    } else {
        r.add(
            "key restrictions",
            Status::Ok,
            "no key restrictions are enforced",
        );
    }
}
