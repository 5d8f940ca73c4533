//! Secret key material: zeroed on drop, `<hidden>` when printed, compared in constant time.

use std::fmt;

use p256::ecdsa::{SigningKey, VerifyingKey};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::AuthenticatorError;

/// Bytes that must never be printed or left behind in memory.
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(bytes)
    }

    /// `len` bytes from the operating system's CSPRNG (through rand's thread generator).
    pub fn random(len: usize) -> Self {
        let mut bytes = vec![0u8; len];
        rand::fill(&mut bytes[..]);
        SecretBytes(bytes)
    }

    /// The bytes in clear: call it only where they are used (a cipher, a signer).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<hidden>")
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        // Length is not secret; the content is.
        self.0.len() == other.0.len() && bool::from(self.0.ct_eq(&other.0))
    }
}

impl Eq for SecretBytes {}

/// A credential's (or attestation) P-256 private key: the 32-byte scalar, kept parsed as well
/// because parsing computes the public key (a scalar multiplication as costly as a signature),
/// and one registration needs the public key and a signature from the same key.
#[derive(Clone)]
pub struct PrivateKey {
    bytes: SecretBytes,
    /// Zeroed on drop by `ecdsa`, like `bytes`.
    key: SigningKey,
}

impl PrivateKey {
    pub fn generate() -> Self {
        use p256::elliptic_curve::Generate;
        // Straight from the operating system's CSPRNG.
        let key = SigningKey::generate();
        PrivateKey {
            bytes: SecretBytes(key.to_bytes().to_vec()),
            key,
        }
    }

    /// Reads a scalar back; refuses anything that is not a valid non-zero P-256 scalar.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AuthenticatorError> {
        // from_slice alone would left-pad a short slice; a stored key is always 32 bytes.
        if bytes.len() != 32 {
            return Err(AuthenticatorError::Corrupt(
                "a P-256 private key is 32 bytes".into(),
            ));
        }
        let key = SigningKey::from_slice(bytes)
            .map_err(|_| AuthenticatorError::Corrupt("not a P-256 private key".into()))?;
        Ok(PrivateKey {
            bytes: SecretBytes(bytes.to_vec()),
            key,
        })
    }

    pub fn expose(&self) -> &[u8] {
        self.bytes.expose()
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        *self.key.verifying_key()
    }

    /// ECDSA P-256 / SHA-256 over `message`, DER-encoded as WebAuthn and X.509 want it.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::Signer;
        let signature: p256::ecdsa::DerSignature = self.key.sign(message);
        signature.to_bytes().to_vec()
    }
}

impl PartialEq for PrivateKey {
    fn eq(&self, other: &Self) -> bool {
        // Constant time, through SecretBytes.
        self.bytes == other.bytes
    }
}

impl Eq for PrivateKey {}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<hidden>)")
    }
}

#[cfg(test)]
mod tests;
