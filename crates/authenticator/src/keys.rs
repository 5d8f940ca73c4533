//! Secret key material: zeroed on drop, `<hidden>` when printed, compared in constant time.

use std::fmt;

use aws_lc_rs::agreement;
use aws_lc_rs::encoding::AsBigEndian;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use p256::ecdsa::VerifyingKey;
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

/// A credential's (or attestation) P-256 private key: the 32-byte scalar, and the key pair
/// parsed from it once, because computing the public key is a scalar multiplication as costly
/// as a signature and one registration needs both from the same key.
///
/// Key generation and signing run on aws-lc (through aws-lc-rs, the crypto provider rustls
/// already builds for us): a registration costs one key generation and one or two signatures,
/// and aws-lc's constant-time P-256 does each several times faster than RustCrypto's `p256`,
/// which stays for what it does well here: the public key as a point to encode (COSE, X.509)
/// and verification in tests.
#[derive(Clone)]
pub struct PrivateKey {
    bytes: SecretBytes,
    /// aws-lc frees (and thereby cleanses, `OPENSSL_free`) the key when the last clone drops.
    key: EcdsaKeyPair,
    public: VerifyingKey,
}

impl PrivateKey {
    pub fn generate() -> Self {
        // aws-lc draws from its own CSPRNG, seeded by the operating system's; it fails only
        // without memory, which aborts the process anyway.
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING)
            .expect("aws-lc generates a P-256 key");
        // A fixed-length big-endian scalar in a buffer that zeroes itself on drop.
        let scalar = key
            .private_key()
            .as_be_bytes()
            .expect("aws-lc encodes its own P-256 key");
        PrivateKey {
            bytes: SecretBytes(scalar.as_ref().to_vec()),
            public: public_of(&key),
            key,
        }
    }

    /// Reads a scalar back; refuses anything that is not a valid non-zero P-256 scalar.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AuthenticatorError> {
        let not_a_key = || AuthenticatorError::Corrupt("not a P-256 private key".into());
        // A stored key is always 32 bytes: a short slice is not a left-padded one.
        if bytes.len() != 32 {
            return Err(AuthenticatorError::Corrupt(
                "a P-256 private key is 32 bytes".into(),
            ));
        }
        // aws-lc-rs builds a signing key pair only from the scalar *and* its public point; its
        // ECDH key computes that point from the scalar alone, after checking 0 < scalar < n.
        let public = agreement::PrivateKey::from_private_key(&agreement::ECDH_P256, bytes)
            .map_err(|_| not_a_key())?
            .compute_public_key()
            .map_err(|_| not_a_key())?;
        let key = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            bytes,
            public.as_ref(),
        )
        .map_err(|_| not_a_key())?;
        Ok(PrivateKey {
            bytes: SecretBytes(bytes.to_vec()),
            public: public_of(&key),
            key,
        })
    }

    pub fn expose(&self) -> &[u8] {
        self.bytes.expose()
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.public
    }

    /// ECDSA P-256 / SHA-256 over `message`, DER-encoded as WebAuthn and X.509 want it.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        // aws-lc ignores the generator passed (it signs with its own CSPRNG-derived nonce), and
        // fails only without memory.
        self.key
            .sign(&SystemRandom::new(), message)
            .expect("aws-lc signs with a valid P-256 key")
            .as_ref()
            .to_vec()
    }
}

/// The key pair's public point (uncompressed SEC1, as aws-lc gives it) as a `p256` key.
fn public_of(key: &EcdsaKeyPair) -> VerifyingKey {
    VerifyingKey::from_sec1_bytes(key.public_key().as_ref())
        .expect("aws-lc's P-256 public key is a valid point")
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
