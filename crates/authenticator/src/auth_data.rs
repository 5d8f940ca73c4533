//! Authenticator data (WebAuthn L3 §6.1) and its extension outputs.
//!
//! ```text
//! rpIdHash (32) | flags (1) | signCount (4, big-endian)
//!   | attestedCredentialData: aaguid (16) | credentialIdLength (2) | credentialId | credentialPublicKey (COSE)
//!   | extensions (CBOR map)
//! ```

use ciborium::Value;
use sha2::{Digest, Sha256};

use crate::AuthenticatorError;

/// WebAuthn L3 §6.1 flag bits.
pub mod flags {
    /// User Present.
    pub const UP: u8 = 0x01;
    /// User Verified.
    pub const UV: u8 = 0x04;
    /// Backup Eligibility: clear, the key never leaves this authenticator (device-bound).
    pub const BE: u8 = 0x08;
    /// Backup State: clear, likewise.
    pub const BS: u8 = 0x10;
    /// Attested credential data included.
    pub const AT: u8 = 0x40;
    /// Extension data included.
    pub const ED: u8 = 0x80;
}

/// WebAuthn L3 §6.5.1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestedCredentialData {
    pub aaguid: [u8; 16],
    pub credential_id: Vec<u8>,
    /// The COSE_Key, as encoded bytes.
    pub public_key: Vec<u8>,
}

/// The authenticator extension outputs this authenticator produces (CTAP 2.1 §12).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtensionOutputs {
    /// `credProtect`: the level applied (1..=3).
    pub cred_protect: Option<u8>,
    /// `hmac-secret`: true when a CredRandom was made for the credential.
    pub hmac_secret: Option<bool>,
}

impl ExtensionOutputs {
    pub fn is_empty(&self) -> bool {
        self.cred_protect.is_none() && self.hmac_secret.is_none()
    }

    /// The CBOR map, keys in CTAP2 canonical order ("credProtect" < "hmac-secret": same length,
    /// then bytewise).
    pub fn to_cbor(&self) -> Value {
        let mut map = Vec::new();
        if let Some(level) = self.cred_protect {
            map.push((
                Value::Text("credProtect".into()),
                Value::Integer(level.into()),
            ));
        }
        if let Some(flag) = self.hmac_secret {
            map.push((Value::Text("hmac-secret".into()), Value::Bool(flag)));
        }
        Value::Map(map)
    }

    fn from_cbor(value: &Value) -> Result<Self, AuthenticatorError> {
        let map = value
            .as_map()
            .ok_or_else(|| corrupt("extensions are not a CBOR map"))?;
        let mut out = ExtensionOutputs::default();
        for (k, v) in map {
            match k.as_text() {
                Some("credProtect") => {
                    let level = v
                        .as_integer()
                        .and_then(|i| u8::try_from(i).ok())
                        .ok_or_else(|| corrupt("credProtect is not a small integer"))?;
                    out.cred_protect = Some(level);
                }
                Some("hmac-secret") => {
                    out.hmac_secret = Some(
                        v.as_bool()
                            .ok_or_else(|| corrupt("hmac-secret is not a boolean"))?,
                    );
                }
                // Other authenticators' extensions are not ours to judge.
                _ => {}
            }
        }
        Ok(out)
    }
}

/// Authenticator data, built or parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatorData {
    pub rp_id_hash: [u8; 32],
    pub flags: u8,
    pub sign_count: u32,
    pub attested: Option<AttestedCredentialData>,
    pub extensions: Option<ExtensionOutputs>,
}

pub fn rp_id_hash(rp_id: &str) -> [u8; 32] {
    Sha256::digest(rp_id.as_bytes()).into()
}

fn corrupt(why: &str) -> AuthenticatorError {
    AuthenticatorError::Corrupt(format!("authenticator data: {why}"))
}

/// CBOR encoding of a value this crate built itself (never fails for our values: no floats,
/// no tags, writing into a Vec).
pub(crate) fn cbor(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail with an IO error, and our values contain nothing
    // ciborium refuses; an empty result would be caught by any verifier.
    let _ = ciborium::into_writer(value, &mut out);
    out
}

impl AuthenticatorData {
    /// The serialized form. The AT and ED flags follow what is present, so they cannot lie.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut flags = self.flags & !(flags::AT | flags::ED);
        if self.attested.is_some() {
            flags |= flags::AT;
        }
        let extensions = self.extensions.as_ref().filter(|e| !e.is_empty());
        if extensions.is_some() {
            flags |= flags::ED;
        }
        let mut out = Vec::with_capacity(
            37 + self
                .attested
                .as_ref()
                .map_or(0, |a| 18 + a.credential_id.len() + a.public_key.len()),
        );
        out.extend_from_slice(&self.rp_id_hash);
        out.push(flags);
        out.extend_from_slice(&self.sign_count.to_be_bytes());
        if let Some(acd) = &self.attested {
            out.extend_from_slice(&acd.aaguid);
            // Credential ids we make are 32 bytes; a caller-made one over 1023 bytes (CTAP's
            // limit) is truncated in the length field, which is what makes a verifier reject it.
            out.extend_from_slice(
                &(acd.credential_id.len().min(u16::MAX as usize) as u16).to_be_bytes(),
            );
            out.extend_from_slice(&acd.credential_id);
            out.extend_from_slice(&acd.public_key);
        }
        if let Some(ext) = extensions {
            out.extend_from_slice(&cbor(&ext.to_cbor()));
        }
        out
    }

    /// Parses authenticator data; used to check our own output and by tests.
    pub fn parse(bytes: &[u8]) -> Result<Self, AuthenticatorError> {
        if bytes.len() < 37 {
            return Err(corrupt("shorter than 37 bytes"));
        }
        let mut rp_id_hash = [0u8; 32];
        rp_id_hash.copy_from_slice(&bytes[..32]);
        let flags = bytes[32];
        let sign_count = u32::from_be_bytes([bytes[33], bytes[34], bytes[35], bytes[36]]);
        let mut rest = &bytes[37..];
        let attested = if flags & flags::AT != 0 {
            if rest.len() < 18 {
                return Err(corrupt("attested credential data is truncated"));
            }
            let mut aaguid = [0u8; 16];
            aaguid.copy_from_slice(&rest[..16]);
            let len = u16::from_be_bytes([rest[16], rest[17]]) as usize;
            rest = &rest[18..];
            if rest.len() < len {
                return Err(corrupt("credential id is truncated"));
            }
            let credential_id = rest[..len].to_vec();
            rest = &rest[len..];
            let before = rest.len();
            let _key: Value =
                ciborium::from_reader(&mut rest).map_err(|_| corrupt("public key is not CBOR"))?;
            let consumed = before - rest.len();
            let start = bytes.len() - before;
            Some(AttestedCredentialData {
                aaguid,
                credential_id,
                public_key: bytes[start..start + consumed].to_vec(),
            })
        } else {
            None
        };
        let extensions = if flags & flags::ED != 0 {
            let value: Value =
                ciborium::from_reader(&mut rest).map_err(|_| corrupt("extensions are not CBOR"))?;
            Some(ExtensionOutputs::from_cbor(&value)?)
        } else {
            None
        };
        if !rest.is_empty() {
            return Err(corrupt("trailing bytes"));
        }
        Ok(AuthenticatorData {
            rp_id_hash,
            flags,
            sign_count,
            attested,
            extensions,
        })
    }
}

#[cfg(test)]
mod tests;
