//! Envelope encryption: a secret is sealed with its own random data key, and the data key is
//! sealed with the master key. Both with AES-256-GCM; both bind where they belong through the
//! associated data, so a sealed value copied into another row (or a data key attached to
//! another secret) fails to open rather than opening as the wrong thing.
//!
//! Sealed form: `version (1) | nonce (12) | ciphertext | tag (16)`.
//!
//! Nonces are random. Each data key seals exactly one message, so its nonce cannot repeat; the
//! master key seals one data key per row, and 96-bit random nonces stay safe far beyond the
//! 2^32 messages per key NIST SP 800-38D allows — rotate the master key long before that.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

use behalf_authenticator::SecretBytes;

use crate::VaultError;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
pub(crate) const KEY_LEN: usize = 32;

/// Associated data: the purpose and the row's identity, each part length-prefixed so that no
/// two different identities can encode the same bytes.
pub(crate) fn aad(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = b"behalf-vault/v1".to_vec();
    for part in parts {
        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

pub(crate) fn seal(key: &[u8], plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, VaultError> {
    let cipher = Aes256Gcm::new_from_slice(key)
        .map_err(|_| VaultError::MasterKey("key is not 32 bytes".into()))?;
    let mut nonce = [0u8; NONCE_LEN];
    rand::fill(&mut nonce);
    let ciphertext = cipher
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| VaultError::MasterKey("encryption failed".into()))?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

pub(crate) fn open(
    key: &[u8],
    sealed: &[u8],
    aad: &[u8],
    what: &str,
) -> Result<SecretBytes, VaultError> {
    let corrupt = |reason: &str| VaultError::Corrupt {
        what: what.to_owned(),
        reason: reason.to_owned(),
    };
    match sealed.first() {
        Some(&VERSION) => {}
        Some(v) => return Err(corrupt(&format!("unknown format version {v}"))),
        None => return Err(corrupt("empty")),
    }
    if sealed.len() < 1 + NONCE_LEN + TAG_LEN {
        return Err(corrupt("truncated"));
    }
    let cipher = Aes256Gcm::new_from_slice(key)
        .map_err(|_| VaultError::MasterKey("key is not 32 bytes".into()))?;
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&sealed[1..1 + NONCE_LEN]);
    // The tag check inside decrypt is constant-time (aes-gcm compares with subtle).
    let plaintext = cipher
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: &sealed[1 + NONCE_LEN..],
                aad,
            },
        )
        .map_err(|_| VaultError::Unseal {
            what: what.to_owned(),
        })?;
    Ok(SecretBytes::new(plaintext))
}

#[cfg(test)]
mod tests;
