//! The secrets Behalf hands out and how it keeps them: random tokens with a prefix, their
//! HMAC-SHA-256 under the vault-sealed pepper, argon2id passwords.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use behalf_domain::Secret;

use super::MIN_PASSWORD_CHARS;
use crate::{App, AppError};

const PEPPER_SECRET: &str = "auth.pepper";

/// Prefixes that say what a secret is when one turns up somewhere (a log, a ticket), and let a
/// secret scanner find it.
pub(super) const SESSION_PREFIX: &str = "bhs_";
pub(super) const CSRF_PREFIX: &str = "bhc_";
pub(super) const TOKEN_PREFIX: &str = "bht_";
pub(super) const SETUP_PREFIX: &str = "bhu_";
pub(super) const DEVICE_PREFIX: &str = "bhd_";
pub(super) const SIGN_IN_LINK_PREFIX: &str = "bhl_";
/// A SCIM connection's bearer token (what an identity provider sends to `/scim/v2`).
pub(crate) const SCIM_TOKEN_PREFIX: &str = "bhscim_";

/// A random secret: `prefix` + 32 random bytes in base64url.
pub(crate) fn random_secret(prefix: &str) -> Secret {
    let mut bytes = [0u8; 32];
    // aws-lc's system random source, which rustls already builds (no second RNG stack).
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random source works");
    Secret::new(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// A short code a person reads off one screen and types into another: 8 letters from an
/// alphabet without look-alikes, shown as `ABCD-EFGH`.
pub(super) fn user_code() -> String {
    const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random source works");
    let letters: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    format!("{}-{}", &letters[..4], &letters[4..])
}

/// Lowercase hex, the stored form of hashes and digests.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

fn hmac_key(pepper: &[u8]) -> aws_lc_rs::hmac::Key {
    aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, pepper)
}

pub(crate) fn hash_password(password: &Secret) -> Result<String, AppError> {
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| AppError::internal("no random source"))?;
    let salt = SaltString::encode_b64(&salt).map_err(AppError::internal)?;
    argon2::Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(AppError::internal)
}

pub(crate) fn verify_password(password: &Secret, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash to verify against when the account does not exist, so that "no such admin" and "wrong
/// password" take the same time.
pub(crate) fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        hash_password(&Secret::new("decoy password that matches nothing")).unwrap_or_default()
    })
}

pub(crate) fn check_password_rules(password: &Secret) -> Result<(), AppError> {
    if password.expose().chars().count() < MIN_PASSWORD_CHARS {
        return Err(AppError::invalid(
            "password",
            format!("use at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

pub(super) fn check_email(email: &str) -> Result<String, AppError> {
    let email = email.trim().to_lowercase();
    let valid = email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !email.chars().any(char::is_whitespace);
    if valid {
        Ok(email)
    } else {
        Err(AppError::invalid(
            "email",
            format!("{email:?} is not an email address"),
        ))
    }
}

impl App {
    /// The HMAC key that secrets are hashed under, made on first use and sealed in the vault
    /// (kept as the ready key: every request with a token hashes it).
    pub(super) async fn pepper(&self) -> Result<&aws_lc_rs::hmac::Key, AppError> {
        let pepper = self
            .inner
            .pepper
            .get_or_try_init(|| async {
                let vault = self.vault();
                if let Some(existing) = vault
                    .get_secret(PEPPER_SECRET)
                    .await
                    .map_err(AppError::internal)?
                {
                    return Ok::<_, AppError>(hmac_key(existing.expose()));
                }
                let mut fresh = [0u8; 32];
                aws_lc_rs::rand::fill(&mut fresh)
                    .map_err(|_| AppError::internal("no random source"))?;
                vault
                    .put_secret(PEPPER_SECRET, &fresh)
                    .await
                    .map_err(AppError::internal)?;
                // Another instance may have written its own at the same moment: whichever row
                // is there now is the pepper every instance uses.
                let stored = vault
                    .get_secret(PEPPER_SECRET)
                    .await
                    .map_err(AppError::internal)?
                    .ok_or_else(|| AppError::internal("the pepper vanished"))?;
                Ok(hmac_key(stored.expose()))
            })
            .await?;
        Ok(pepper)
    }

    /// The stored form of a secret: HMAC-SHA-256 under the pepper, hex.
    pub(crate) async fn secret_hash(&self, secret: &str) -> Result<String, AppError> {
        let tag = aws_lc_rs::hmac::sign(self.pepper().await?, secret.as_bytes());
        Ok(hex(tag.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_themselves() {
        let hash = hash_password(&Secret::new("correct horse battery")).unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password(
            &Secret::new("correct horse battery"),
            &hash
        ));
        assert!(!verify_password(
            &Secret::new("correct horse batterz"),
            &hash
        ));
        assert!(!verify_password(&Secret::new("x"), "not a hash"));
    }

    #[test]
    fn secrets_are_random_and_prefixed() {
        let a = random_secret(TOKEN_PREFIX);
        let b = random_secret(TOKEN_PREFIX);
        assert_ne!(a.expose(), b.expose());
        assert!(a.expose().starts_with("bht_") && a.expose().len() == 4 + 43);
        let code = user_code();
        assert_eq!(code.len(), 9);
        assert_eq!(&code[4..5], "-");
    }
}
