//! Certificate credentials: a JWT client assertion signed with the app certificate's private key
//! (<https://learn.microsoft.com/entra/identity-platform/certificate-credentials>).
//!
//! Microsoft documents the assertion's header as `alg` (PS256 for RSA; RS256 still accepted, ES256
//! for EC keys), `typ` JWT and `x5t#S256` (base64url SHA-256 thumbprint of the certificate's DER;
//! the older `x5t`, SHA-1, is sent too for tenants that only know it), and its claims as `aud` (the
//! token endpoint), `iss` = `sub` = client id, `jti` (unique), `nbf`, `iat` and `exp` (≤ 10 min).

use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::Digest as _;

use crate::GraphError;

/// Which JWS algorithm signs the assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssertionAlgorithm {
    Ps256,
    Rs256,
    Es256,
}

impl AssertionAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            AssertionAlgorithm::Ps256 => "PS256",
            AssertionAlgorithm::Rs256 => "RS256",
            AssertionAlgorithm::Es256 => "ES256",
        }
    }
}

enum Key {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// An app certificate and its private key, loaded from one PEM file (or two).
pub struct CertificateCredential {
    key: Key,
    algorithm: AssertionAlgorithm,
    x5t: String,
    x5t_s256: String,
}

impl std::fmt::Debug for CertificateCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateCredential")
            .field("algorithm", &self.algorithm)
            .field("x5t#S256", &self.x5t_s256)
            .field("key", &"<hidden>")
            .finish()
    }
}

impl CertificateCredential {
    /// Reads a PEM file holding the certificate (first `CERTIFICATE` block) and its private key
    /// (PKCS#8 `PRIVATE KEY`, PKCS#1 `RSA PRIVATE KEY` or SEC1 `EC PRIVATE KEY`).
    pub fn from_pem_file(path: &Path) -> Result<CertificateCredential, GraphError> {
        let pem = std::fs::read(path).map_err(|e| {
            GraphError::Config(format!(
                "cannot read the certificate file {}: {e}",
                path.display()
            ))
        })?;
        Self::from_pem(&pem).map_err(|e| match e {
            GraphError::Config(m) => GraphError::Config(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    pub fn from_pem(pem: &[u8]) -> Result<CertificateCredential, GraphError> {
        let cert = CertificateDer::from_pem_slice(pem)
            .map_err(|e| GraphError::Config(format!("no certificate in the PEM: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(pem)
            .map_err(|e| GraphError::Config(format!("no private key in the PEM: {e}")))?;
        let bad = |what: &str, e: aws_lc_rs::error::KeyRejected| {
            GraphError::Config(format!("the {what} private key is not usable: {e}"))
        };
        let (key, algorithm) = match &key {
            PrivateKeyDer::Pkcs1(k) => (
                Key::Rsa(RsaKeyPair::from_der(k.secret_pkcs1_der()).map_err(|e| bad("RSA", e))?),
                AssertionAlgorithm::Ps256,
            ),
            PrivateKeyDer::Sec1(k) => (
                Key::Ec(
                    EcdsaKeyPair::from_private_key_der(
                        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                        k.secret_sec1_der(),
                    )
                    .map_err(|e| bad("EC (P-256)", e))?,
                ),
                AssertionAlgorithm::Es256,
            ),
            PrivateKeyDer::Pkcs8(k) => {
                let der = k.secret_pkcs8_der();
                match EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der) {
                    Ok(ec) => (Key::Ec(ec), AssertionAlgorithm::Es256),
                    Err(_) => (
                        Key::Rsa(RsaKeyPair::from_pkcs8(der).map_err(|e| bad("PKCS#8", e))?),
                        AssertionAlgorithm::Ps256,
                    ),
                }
            }
            _ => {
                return Err(GraphError::Config(
                    "unsupported private key format (use PKCS#8, PKCS#1 RSA or SEC1 EC P-256)"
                        .into(),
                ));
            }
        };
        Ok(CertificateCredential {
            key,
            algorithm,
            x5t: URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(cert.as_ref())),
            x5t_s256: URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(cert.as_ref())),
        })
    }

    /// Sign RSA assertions with RS256 instead of PS256.
    pub fn with_rs256(mut self) -> Self {
        if matches!(self.key, Key::Rsa(_)) {
            self.algorithm = AssertionAlgorithm::Rs256;
        }
        self
    }

    pub fn algorithm(&self) -> AssertionAlgorithm {
        self.algorithm
    }

    /// The base64url SHA-256 thumbprint Entra shows for the certificate.
    pub fn thumbprint_s256(&self) -> &str {
        &self.x5t_s256
    }

    /// A fresh client assertion for `audience` (the token endpoint URL), valid 10 minutes.
    pub fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        now_unix: i64,
    ) -> Result<String, GraphError> {
        let header = serde_json::json!({
            "alg": self.algorithm.as_str(),
            "typ": "JWT",
            "x5t": self.x5t,
            "x5t#S256": self.x5t_s256,
        });
        let claims = serde_json::json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now_unix,
            "iat": now_unix,
            "exp": now_unix + 600,
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let rng = SystemRandom::new();
        let failed = |_| GraphError::Config("signing the client assertion failed".into());
        let sig = match (&self.key, self.algorithm) {
            (Key::Ec(k), _) => k
                .sign(&rng, input.as_bytes())
                .map_err(failed)?
                .as_ref()
                .to_vec(),
            (Key::Rsa(k), alg) => {
                let padding: &dyn signature::RsaEncoding = if alg == AssertionAlgorithm::Rs256 {
                    &signature::RSA_PKCS1_SHA256
                } else {
                    &signature::RSA_PSS_SHA256
                };
                let mut out = vec![0u8; k.public_modulus_len()];
                k.sign(padding, &rng, input.as_bytes(), &mut out)
                    .map_err(failed)?;
                out
            }
        };
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::{KeyPair, UnparsedPublicKey};

    use super::*;

    fn pem(label: &str, der: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }

    fn parts(jwt: &str) -> (serde_json::Value, serde_json::Value, Vec<u8>, String) {
        let mut it = jwt.split('.');
        let h = it.next().unwrap_or_default();
        let c = it.next().unwrap_or_default();
        let s = it.next().unwrap_or_default();
        let dec = |p: &str| URL_SAFE_NO_PAD.decode(p).unwrap_or_default();
        (
            serde_json::from_slice(&dec(h)).unwrap_or_default(),
            serde_json::from_slice(&dec(c)).unwrap_or_default(),
            dec(s),
            format!("{h}.{c}"),
        )
    }

    // The certificate is only hashed (x5t), never parsed: any DER bytes stand in for it here.
    const FAKE_CERT: &[u8] = b"\x30\x03\x02\x01\x01";

    #[test]
    fn ec_key_signs_an_es256_assertion_with_the_documented_claims() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("key");
        let file = format!(
            "{}{}",
            pem("CERTIFICATE", FAKE_CERT),
            pem("PRIVATE KEY", pkcs8.as_ref())
        );
        let cred = CertificateCredential::from_pem(file.as_bytes()).expect("loads");
        assert_eq!(cred.algorithm(), AssertionAlgorithm::Es256);
        let aud = "https://login.microsoftonline.com/t/oauth2/v2.0/token";
        let jwt = cred.assertion("client-1", aud, 1_000).expect("signs");
        let (h, c, sig, input) = parts(&jwt);
        assert_eq!(h["alg"], "ES256");
        assert_eq!(
            h["x5t#S256"],
            URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(FAKE_CERT))
        );
        assert_eq!(
            h["x5t"],
            URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(FAKE_CERT))
        );
        assert_eq!(c["aud"], aud);
        assert_eq!(c["iss"], "client-1");
        assert_eq!(c["sub"], "client-1");
        assert_eq!(c["exp"], 1_600);
        assert!(c["jti"].as_str().is_some_and(|j| !j.is_empty()));
        let kp =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
                .expect("key");
        UnparsedPublicKey::new(
            &signature::ECDSA_P256_SHA256_FIXED,
            kp.public_key().as_ref(),
        )
        .verify(input.as_bytes(), &sig)
        .expect("the signature verifies");
        assert!(!format!("{cred:?}").contains("PRIVATE"));
    }

    #[test]
    fn rsa_key_signs_ps256_by_default_and_rs256_on_request() {
        let kp = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("key");
        let der = kp.as_der().expect("pkcs8");
        let file = format!(
            "{}{}",
            pem("CERTIFICATE", FAKE_CERT),
            pem("PRIVATE KEY", der.as_ref())
        );
        let public = kp.public_key().as_ref().to_vec();
        let cred = CertificateCredential::from_pem(file.as_bytes()).expect("loads");
        let (h, _, sig, input) = parts(&cred.assertion("c", "aud", 0).expect("signs"));
        assert_eq!(h["alg"], "PS256");
        UnparsedPublicKey::new(&signature::RSA_PSS_2048_8192_SHA256, &public)
            .verify(input.as_bytes(), &sig)
            .expect("PS256 verifies");
        let cred = cred.with_rs256();
        let (h, _, sig, input) = parts(&cred.assertion("c", "aud", 0).expect("signs"));
        assert_eq!(h["alg"], "RS256");
        UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &public)
            .verify(input.as_bytes(), &sig)
            .expect("RS256 verifies");
    }

    #[test]
    fn a_pem_without_a_key_or_certificate_is_a_clear_error() {
        let only_cert = pem("CERTIFICATE", FAKE_CERT);
        let e = CertificateCredential::from_pem(only_cert.as_bytes()).expect_err("no key");
        assert!(e.to_string().contains("no private key"), "{e}");
        let e = CertificateCredential::from_pem(b"garbage").expect_err("nothing");
        assert!(e.to_string().contains("no certificate"), "{e}");
    }
}
