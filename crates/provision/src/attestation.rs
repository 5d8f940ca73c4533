//! The workspace's attestation identity: its CA (sealed in the vault) and the AAGUID it claims.

use behalf_authenticator::{
    Aaguid, Attestation, AttestationCa, AttestationSubject, AuthenticatorError, PrivateKey,
};
use behalf_vault::{Vault, VaultError};

const CA_KEY_SECRET: &str = "attestation-ca/key";
const CA_CERT_SECRET: &str = "attestation-ca/certificate";

/// How credentials are attested (config `provisioning.attestation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttestationMode {
    /// `packed` with an x5c chain from the workspace CA.
    Packed,
    /// `packed` self attestation.
    PackedSelf,
    None,
}

impl std::str::FromStr for AttestationMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "packed" => Ok(AttestationMode::Packed),
            "packed-self" => Ok(AttestationMode::PackedSelf),
            "none" => Ok(AttestationMode::None),
            other => Err(format!(
                "unknown attestation mode {other:?} (expected packed, packed-self or none)"
            )),
        }
    }
}

fn subject() -> AttestationSubject {
    AttestationSubject {
        country: "US".into(),
        organization: "Behalf".into(),
        common_name: "Behalf Workspace Attestation CA".into(),
    }
}

/// The attestation to make credentials with. For `packed`, the workspace CA is loaded from the
/// vault, or generated and sealed there on first use; a fresh leaf is issued for `aaguid` (leaves
/// need no storing: every one chains to the same CA).
pub async fn workspace_attestation(
    vault: &Vault,
    mode: AttestationMode,
    aaguid: Aaguid,
) -> Result<(Attestation, Option<AttestationCa>), VaultError> {
    let ca = match mode {
        AttestationMode::None => return Ok((Attestation::None, None)),
        AttestationMode::PackedSelf => return Ok((Attestation::PackedSelf, None)),
        AttestationMode::Packed => load_or_create_ca(vault).await?,
    };
    let key = ca.issue(aaguid, 5).map_err(authenticator_error)?;
    Ok((Attestation::Packed(key), Some(ca)))
}

async fn load_or_create_ca(vault: &Vault) -> Result<AttestationCa, VaultError> {
    if let (Some(key), Some(cert)) = (
        vault.get_secret(CA_KEY_SECRET).await?,
        vault.get_secret(CA_CERT_SECRET).await?,
    ) {
        let key = PrivateKey::from_bytes(key.expose()).map_err(authenticator_error)?;
        return Ok(AttestationCa::from_parts(
            subject(),
            key,
            cert.expose().to_vec(),
        ));
    }
    let ca = AttestationCa::generate(subject()).map_err(authenticator_error)?;
    // Two instances starting at once may both generate; the last write wins and both CAs'
    // leaves stay valid for what they signed, since verifiers trust by chain, not by identity.
    vault
        .put_secret(CA_CERT_SECRET, ca.certificate_der())
        .await?;
    vault
        .put_secret(CA_KEY_SECRET, ca.private_key().expose())
        .await?;
    Ok(ca)
}

fn authenticator_error(e: AuthenticatorError) -> VaultError {
    VaultError::Corrupt {
        what: "attestation CA".into(),
        reason: e.to_string(),
    }
}
