//! Certificate credentials: a JWT client assertion signed with the app certificate's private key
//! (<https://learn.microsoft.com/entra/identity-platform/certificate-credentials>).
//!
//! Microsoft documents the assertion's header as `alg` (PS256; RS256 still accepted), `typ` JWT
//! and `x5t#S256` (base64url SHA-256 thumbprint of the certificate's DER; the older `x5t`, SHA-1,
//! is sent too for tenants that only know it), and its claims as `aud` (the token endpoint), `iss`
//! = `sub` = client id, `jti` (unique), `nbf`, `iat` and `exp` (≤ 10 min). Entra ID signs apps in
//! with RSA certificates only: an ES256 assertion is refused (AADSTS5002738), so an EC key is
//! refused here, when the certificate file is read, rather than at the first token request.

use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::Digest as _;

use crate::GraphError;

/// Why an EC app certificate is refused.
pub const EC_KEY_REFUSED: &str = "the key is EC, and Entra ID signs apps in with RSA certificates only (AADSTS5002738); make an RSA certificate";

/// The DER of the `id-ecPublicKey` algorithm OID (1.2.840.10045.2.1), which a PKCS#8 EC key
/// names in its algorithm identifier.
const EC_PUBLIC_KEY_OID: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

/// Which JWS algorithm signs the assertion (both RSA: Entra accepts nothing else).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssertionAlgorithm {
    Ps256,
    Rs256,
}

impl AssertionAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            AssertionAlgorithm::Ps256 => "PS256",
            AssertionAlgorithm::Rs256 => "RS256",
        }
    }
}

/// An app certificate and its RSA private key, loaded from one PEM file.
pub struct CertificateCredential {
    key: RsaKeyPair,
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
    /// Reads a PEM file holding the certificate (first `CERTIFICATE` block) and its RSA private
    /// key (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`). An EC key is refused
    /// ([`EC_KEY_REFUSED`]).
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
        let key = match &key {
            PrivateKeyDer::Pkcs1(k) => {
                RsaKeyPair::from_der(k.secret_pkcs1_der()).map_err(|e| bad("RSA", e))?
            }
            PrivateKeyDer::Sec1(_) => return Err(GraphError::Config(EC_KEY_REFUSED.into())),
            PrivateKeyDer::Pkcs8(k) => {
                let der = k.secret_pkcs8_der();
                match RsaKeyPair::from_pkcs8(der) {
                    Ok(rsa) => rsa,
                    Err(_) if names_ec_algorithm(der) => {
                        return Err(GraphError::Config(EC_KEY_REFUSED.into()));
                    }
                    Err(e) => return Err(bad("PKCS#8 (RSA)", e)),
                }
            }
            _ => {
                return Err(GraphError::Config(
                    "unsupported private key format (use an RSA key, PKCS#8 or PKCS#1)".into(),
                ));
            }
        };
        Ok(CertificateCredential {
            key,
            algorithm: AssertionAlgorithm::Ps256,
            x5t: URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(cert.as_ref())),
            x5t_s256: URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(cert.as_ref())),
        })
    }

    /// Sign assertions with RS256 instead of PS256.
    pub fn with_rs256(mut self) -> Self {
        self.algorithm = AssertionAlgorithm::Rs256;
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
        let padding: &dyn signature::RsaEncoding = match self.algorithm {
            AssertionAlgorithm::Rs256 => &signature::RSA_PKCS1_SHA256,
            AssertionAlgorithm::Ps256 => &signature::RSA_PSS_SHA256,
        };
        let mut sig = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(padding, &SystemRandom::new(), input.as_bytes(), &mut sig)
            .map_err(|_| GraphError::Config("signing the client assertion failed".into()))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

/// Whether a PKCS#8 key's algorithm identifier (at its start, after the version) is EC.
fn names_ec_algorithm(pkcs8: &[u8]) -> bool {
    pkcs8.get(..pkcs8.len().min(32)).is_some_and(|head| {
        head.windows(EC_PUBLIC_KEY_OID.len())
            .any(|w| w == EC_PUBLIC_KEY_OID)
    })
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, UnparsedPublicKey};

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

    fn ec_key() -> EcdsaKeyPair {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("key");
        EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .expect("key")
    }

    fn assert_ec_refused(file: &str) {
        let e = CertificateCredential::from_pem(file.as_bytes()).expect_err("EC is refused");
        assert_eq!(
            e.to_string(),
            "the key is EC, and Entra ID signs apps in with RSA certificates only (AADSTS5002738); make an RSA certificate"
        );
    }

    #[test]
    fn an_ec_key_is_refused_because_entra_signs_apps_in_with_rsa_only() {
        let key = ec_key();
        let pkcs8 = key.to_pkcs8v1().expect("pkcs8");
        assert_ec_refused(&format!(
            "{}{}",
            pem("CERTIFICATE", FAKE_CERT),
            pem("PRIVATE KEY", pkcs8.as_ref())
        ));
        let sec1 = key.private_key().as_der().expect("sec1");
        assert_ec_refused(&format!(
            "{}{}",
            pem("CERTIFICATE", FAKE_CERT),
            pem("EC PRIVATE KEY", sec1.as_ref())
        ));
        // P-384 too: not only the curve ES256 would have used.
        let rng = SystemRandom::new();
        let p384 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, &rng)
            .expect("key");
        assert_ec_refused(&format!(
            "{}{}",
            pem("CERTIFICATE", FAKE_CERT),
            pem("PRIVATE KEY", p384.as_ref())
        ));
    }

    #[test]
    fn an_ec_certificate_file_is_refused_naming_the_file() {
        let key = ec_key().to_pkcs8v1().expect("pkcs8");
        let dir = std::env::temp_dir().join(format!("behalf-cert-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("app.pem");
        std::fs::write(
            &path,
            format!(
                "{}{}",
                pem("CERTIFICATE", FAKE_CERT),
                pem("PRIVATE KEY", key.as_ref())
            ),
        )
        .expect("write");
        let e = CertificateCredential::from_pem_file(&path).expect_err("EC is refused");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            e.to_string(),
            format!("{}: {EC_KEY_REFUSED}", path.display())
        );
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
