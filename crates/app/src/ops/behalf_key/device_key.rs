//! A device's public key: an ECDSA P-256 key made by WebCrypto in the extension, sent as a JWK
//! (RFC 7517 / RFC 7518 §6.2), named by its RFC 7638 thumbprint, and used to verify RFC 9421
//! `ecdsa-p256-sha256` signatures (`r ‖ s`, as WebCrypto signs).

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::KeyFailure;

/// The affine coordinates of a P-256 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePublicKey {
    x: [u8; 32],
    y: [u8; 32],
}

impl DevicePublicKey {
    /// RFC 7518 §6.2.1: `kty` "EC", `crv` "P-256", `x` and `y` base64url of 32 bytes each. A
    /// private member (`d`) is refused: the private half never leaves the device.
    pub fn from_jwk(jwk: &Value) -> Result<Self, KeyFailure> {
        let bad = |reason: &str| KeyFailure::invalid("public_key", reason.to_owned());
        let member = |name: &str| jwk.get(name).and_then(Value::as_str);
        if member("kty") != Some("EC") || member("crv") != Some("P-256") {
            return Err(bad("must be an EC P-256 JWK (kty \"EC\", crv \"P-256\")"));
        }
        if jwk.get("d").is_some() {
            return Err(bad("holds a private key (d): send the public key only"));
        }
        let coordinate = |name: &str| -> Result<[u8; 32], KeyFailure> {
            let text = member(name).ok_or_else(|| bad("needs x and y"))?;
            let bytes = URL_SAFE_NO_PAD
                .decode(text)
                .map_err(|_| bad("x and y must be base64url without padding"))?;
            bytes
                .try_into()
                .map_err(|_| bad("x and y must be 32 bytes each"))
        };
        Ok(DevicePublicKey {
            x: coordinate("x")?,
            y: coordinate("y")?,
        })
    }

    pub fn from_jwk_text(text: &str) -> Result<Self, KeyFailure> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| KeyFailure::Internal(format!("a stored device key is not JSON: {e}")))?;
        Self::from_jwk(&value)
    }

    /// The JWK with its required members only, in RFC 7638 §3.2's lexicographic order: both the
    /// stored form and the thumbprint's input.
    pub fn to_jwk_text(&self) -> String {
        format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            URL_SAFE_NO_PAD.encode(self.x),
            URL_SAFE_NO_PAD.encode(self.y)
        )
    }

    /// RFC 7638 §3: base64url(SHA-256(the JWK's required members, ordered, no whitespace)).
    pub fn thumbprint(&self) -> String {
        let digest =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.to_jwk_text().as_bytes());
        URL_SAFE_NO_PAD.encode(digest.as_ref())
    }

    /// Whether `signature` (`r ‖ s`, 64 bytes: RFC 9421 §3.3.4) is this key's over `message`.
    /// A point not on the curve verifies nothing.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        // SEC 1 §2.3.3 uncompressed point: 0x04 ‖ x ‖ y.
        let mut point = Vec::with_capacity(65);
        point.push(0x04);
        point.extend_from_slice(&self.x);
        point.extend_from_slice(&self.y);
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
            .verify(message, signature)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
    use serde_json::json;

    use super::*;

    fn key_pair() -> (EcdsaKeyPair, DevicePublicKey) {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let public = pair.public_key().as_ref();
        let jwk = json!({
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&public[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&public[33..65]),
        });
        let key = DevicePublicKey::from_jwk(&jwk).unwrap();
        (pair, key)
    }

    #[test]
    fn rfc_7638_thumbprint_of_the_ordered_members() {
        // RFC 7638 has no P-256 example; this checks the order and the digest by hand.
        let key = DevicePublicKey {
            x: [1; 32],
            y: [2; 32],
        };
        let text = key.to_jwk_text();
        assert!(
            text.starts_with(r#"{"crv":"P-256","kty":"EC","x":"AQEB"#),
            "{text}"
        );
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
        assert_eq!(key.thumbprint(), URL_SAFE_NO_PAD.encode(digest.as_ref()));
        assert_eq!(key.thumbprint().len(), 43);
        assert_eq!(DevicePublicKey::from_jwk_text(&text).unwrap(), key);
    }

    #[test]
    fn a_signature_verifies_with_its_key_only() {
        let (pair, key) = key_pair();
        let (_, other) = key_pair();
        let rng = SystemRandom::new();
        let signature = pair.sign(&rng, b"base").unwrap();
        assert_eq!(signature.as_ref().len(), 64);
        assert!(key.verify(b"base", signature.as_ref()));
        assert!(!key.verify(b"base2", signature.as_ref()));
        assert!(!other.verify(b"base", signature.as_ref()));
    }

    #[test]
    fn jwks_that_are_not_public_p256_keys_are_refused_naming_why() {
        let (_, key) = key_pair();
        let good: Value = serde_json::from_str(&key.to_jwk_text()).unwrap();
        let mut private = good.clone();
        private["d"] = json!("AAAA");
        let mut rsa = good.clone();
        rsa["kty"] = json!("RSA");
        let mut short = good.clone();
        short["x"] = json!("AQID");
        for (jwk, words) in [(private, "private"), (rsa, "EC P-256"), (short, "32 bytes")] {
            let e = DevicePublicKey::from_jwk(&jwk).unwrap_err().to_string();
            assert!(e.contains(words), "{e}");
        }
        // A point that is not on the curve verifies nothing.
        let off = DevicePublicKey {
            x: [1; 32],
            y: [2; 32],
        };
        assert!(!off.verify(b"m", &[0; 64]));
    }
}
