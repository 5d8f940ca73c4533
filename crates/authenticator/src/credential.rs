//! What the authenticator keeps per credential.

use crate::AuthenticatorError;
use crate::encoding::b64url;
use crate::keys::{PrivateKey, SecretBytes};
use crate::options::CredProtect;

/// An authenticator model identifier (WebAuthn L3 §6.5.1), 16 bytes, shown as a UUID.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Aaguid(pub [u8; 16]);

impl Aaguid {
    /// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (hyphens optional).
    pub fn parse(text: &str) -> Result<Self, AuthenticatorError> {
        let hex: String = text.chars().filter(|c| *c != '-').collect();
        let bad = || AuthenticatorError::invalid("AAGUID", text, "is not a UUID (32 hex digits)");
        if hex.len() != 32 || !hex.is_ascii() {
            return Err(bad());
        }
        let mut out = [0u8; 16];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(Aaguid(out))
    }
}

impl std::fmt::Display for Aaguid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Aaguid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Aaguid({self})")
    }
}

/// The public half of a credential: everything a relying party or an operator may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialInfo {
    pub credential_id: Vec<u8>,
    pub rp_id: String,
    /// The relying party's user handle (`user.id`, decoded).
    pub user_handle: Vec<u8>,
    pub user_name: String,
    pub user_display_name: String,
    /// COSE algorithm (-7, ES256).
    pub algorithm: i64,
    /// The COSE_Key the relying party stores.
    pub public_key_cose: Vec<u8>,
    pub aaguid: Aaguid,
    /// The signature counter as last used (0 at registration).
    pub sign_count: u32,
    pub cred_protect: Option<CredProtect>,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
}

impl CredentialInfo {
    /// The credential id as WebAuthn JSON writes it (base64url, no padding).
    pub fn credential_id_b64(&self) -> String {
        b64url(&self.credential_id)
    }
}

/// The secret half: the private key and, with hmac-secret, the two CredRandom values
/// (CTAP 2.1 §12.5: one used with UV, one without).
#[derive(Clone, PartialEq, Eq)]
pub struct CredentialSecret {
    pub private_key: PrivateKey,
    pub cred_random: Option<SecretBytes>,
}

const SECRET_FORMAT_V1: u8 = 1;

impl CredentialSecret {
    /// A compact, versioned serialisation for a store to encrypt: `1 | key (32) | n | cred_random (n)`.
    pub fn to_bytes(&self) -> SecretBytes {
        let random = self
            .cred_random
            .as_ref()
            .map_or(&[][..], SecretBytes::expose);
        let mut out = Vec::with_capacity(34 + random.len());
        out.push(SECRET_FORMAT_V1);
        out.extend_from_slice(self.private_key.expose());
        out.push(random.len() as u8);
        out.extend_from_slice(random);
        SecretBytes::new(out)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AuthenticatorError> {
        let corrupt = |why: &str| AuthenticatorError::Corrupt(format!("credential secret: {why}"));
        match bytes.first() {
            Some(&SECRET_FORMAT_V1) => {}
            Some(v) => return Err(corrupt(&format!("unknown format {v}"))),
            None => return Err(corrupt("empty")),
        }
        if bytes.len() < 34 {
            return Err(corrupt("truncated"));
        }
        let private_key = PrivateKey::from_bytes(&bytes[1..33])?;
        let n = bytes[33] as usize;
        if bytes.len() != 34 + n {
            return Err(corrupt("wrong length"));
        }
        let cred_random = (n > 0).then(|| SecretBytes::new(bytes[34..].to_vec()));
        Ok(CredentialSecret {
            private_key,
            cred_random,
        })
    }
}

impl std::fmt::Debug for CredentialSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialSecret(<hidden>)")
    }
}

/// A whole credential as a [`crate::CredentialStore`] keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub info: CredentialInfo,
    pub secret: CredentialSecret,
}

#[cfg(test)]
mod tests;
