//! Attestation objects (WebAuthn L3 §6.5.4) in the `packed` (§8.2) and `none` (§8.7) formats.

use ciborium::Value;

use crate::AuthenticatorError;
use crate::attestation_ca::AttestationKey;
use crate::auth_data::cbor;
use crate::keys::PrivateKey;
use crate::options::ES256;

/// How this authenticator attests the credentials it makes.
#[derive(Debug, Clone)]
pub enum Attestation {
    /// `none`: no statement; the relying party learns only the AAGUID.
    None,
    /// `packed` self attestation: the credential key signs its own registration.
    PackedSelf,
    /// `packed` full (basic) attestation with an `x5c` chain from the workspace's attestation CA.
    Packed(AttestationKey),
}

impl Attestation {
    pub fn format(&self) -> &'static str {
        match self {
            Attestation::None => "none",
            Attestation::PackedSelf | Attestation::Packed(_) => "packed",
        }
    }
}

/// `attStmt` for `auth_data || client_data_hash`, signed by the credential key (self) or the
/// attestation key (full).
pub(crate) fn statement(
    attestation: &Attestation,
    credential_key: &PrivateKey,
    auth_data: &[u8],
    client_data_hash: &[u8; 32],
) -> Result<Value, AuthenticatorError> {
    let signed = || [auth_data, client_data_hash.as_slice()].concat();
    // Keys in CTAP2 canonical order: "alg" < "sig" < "x5c" (same length, bytewise).
    Ok(match attestation {
        // §8.7: attStmt is an empty map.
        Attestation::None => Value::Map(Vec::new()),
        // §8.2 signing procedure, self attestation: alg matches the credential key, sig by it.
        Attestation::PackedSelf => Value::Map(vec![
            (Value::Text("alg".into()), Value::Integer(ES256.into())),
            (
                Value::Text("sig".into()),
                Value::Bytes(credential_key.sign(&signed())),
            ),
        ]),
        // §8.2 signing procedure, full attestation: sig by the attestation key, x5c its chain.
        Attestation::Packed(key) => Value::Map(vec![
            (Value::Text("alg".into()), Value::Integer(ES256.into())),
            (
                Value::Text("sig".into()),
                Value::Bytes(key.private_key().sign(&signed())),
            ),
            (
                Value::Text("x5c".into()),
                Value::Array(
                    key.chain()
                        .iter()
                        .map(|der| Value::Bytes(der.clone()))
                        .collect(),
                ),
            ),
        ]),
    })
}

/// §6.5.4: `{"fmt": …, "attStmt": …, "authData": …}`, canonical key order (by length).
pub(crate) fn attestation_object(fmt: &str, statement: Value, auth_data: Vec<u8>) -> Vec<u8> {
    cbor(&Value::Map(vec![
        (Value::Text("fmt".into()), Value::Text(fmt.into())),
        (Value::Text("attStmt".into()), statement),
        (Value::Text("authData".into()), Value::Bytes(auth_data)),
    ]))
}
