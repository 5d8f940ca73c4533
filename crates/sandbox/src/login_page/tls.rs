//! The sign-in page's certificates: a test CA the sandbox makes each time it starts, and the
//! certificate for `login.microsoft.com` it issues. Nothing is kept: a browser trusts the CA for
//! one run only (the test imports [`crate::Sandbox::login_ca_pem`] into its own NSS database).
//!
//! What Chromium asks of a server certificate (checked against Chromium 156): the name in the
//! subjectAltName (the common name is not read, RFC 6125 §6.4.4), `serverAuth` in the extended
//! key usage, and a validity under 398 days; the CA needs basicConstraints CA:TRUE and
//! keyCertSign (RFC 5280 §4.2.1.9, §4.2.1.3).

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use time::{Duration, OffsetDateTime};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The CA (public part, PEM) and a TLS server configuration holding the page's certificate.
pub(crate) struct LoginTls {
    pub ca_pem: String,
    pub server: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for LoginTls {
    // The configuration holds the certificate's private key: it is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginTls").finish_non_exhaustive()
    }
}

fn random_serial() -> SerialNumber {
    let mut serial = [0u8; 16];
    rand::fill(&mut serial);
    // DER INTEGERs are signed: a clear top bit keeps the serial positive (RFC 5280 §4.1.2.2).
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    SerialNumber::from_slice(&serial)
}

/// A fresh CA and a certificate for `host` it signed, valid from an hour ago (clock skew) for a
/// week: long enough for any run, short of Chromium's 398-day limit.
pub(crate) fn make(host: &str) -> Result<LoginTls, String> {
    let now = OffsetDateTime::now_utc();
    let fail = |what: &str, e: rcgen::Error| format!("{what}: {e}");

    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| fail("the CA's key", e))?;
    let mut ca = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Behalf sandbox");
    dn.push(DnType::CommonName, "Behalf sandbox test CA (not Microsoft)");
    ca.distinguished_name = dn;
    // RFC 5280 §4.2.1.9: a CA that issues end-entity certificates only (path length 0).
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = now - Duration::hours(1);
    ca.not_after = now + Duration::days(7);
    ca.serial_number = Some(random_serial());
    let ca_cert = ca
        .self_signed(&ca_key)
        .map_err(|e| fail("the CA's certificate", e))?;
    let issuer = Issuer::new(ca, ca_key);

    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| fail("the page's key", e))?;
    let mut leaf =
        CertificateParams::new(vec![host.to_owned()]).map_err(|e| fail("the page's name", e))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, host);
    leaf.distinguished_name = dn;
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = now - Duration::hours(1);
    leaf.not_after = now + Duration::days(7);
    leaf.serial_number = Some(random_serial());
    let leaf_cert = leaf
        .signed_by(&leaf_key, &issuer)
        .map_err(|e| fail("the page's certificate", e))?;

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    // The chain as a server sends it: its own certificate, then the issuer's (RFC 8446 §4.4.2).
    let chain: Vec<CertificateDer<'static>> = vec![
        leaf_cert.der().clone().into_owned(),
        ca_cert.der().clone().into_owned(),
    ];
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("the page's certificate and key: {e}"))?;
    // The accept loop speaks HTTP/1.1 only.
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(LoginTls {
        ca_pem: ca_cert.pem(),
        server: Arc::new(server),
    })
}
