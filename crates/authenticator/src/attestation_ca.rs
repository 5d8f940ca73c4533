//! The per-workspace attestation CA and the attestation certificates it issues
//! (WebAuthn L3 §8.2.1 "Packed Attestation Statement Certificate Requirements").
//!
//! rcgen builds the certificates with no crypto backend of its own: it hands the to-be-signed
//! bytes to [`RcgenKey`], which signs with the same key code as every credential.

use rcgen::string::PrintableString;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, DnValue, IsCa,
    Issuer, KeyUsagePurpose, PublicKeyData, SerialNumber, SignatureAlgorithm, SigningKey,
};
use time::{Duration, OffsetDateTime};

use crate::AuthenticatorError;
use crate::credential::Aaguid;
use crate::keys::PrivateKey;

/// OID id-fido-gen-ce-aaguid (FIDO Metadata / WebAuthn L3 §8.2.1).
pub const AAGUID_EXTENSION_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 45724, 1, 1, 4];

/// Who the CA and its certificates say they belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationSubject {
    /// ISO 3166 country code (PrintableString), e.g. "US".
    pub country: String,
    /// The vendor's legal name (here: the organisation running Behalf).
    pub organization: String,
    /// The CA's common name; the leaf's common name is derived from it.
    pub common_name: String,
}

/// A P-256 key seen through rcgen's signing interface.
struct RcgenKey<'a> {
    key: &'a PrivateKey,
    public: Vec<u8>,
}

impl<'a> RcgenKey<'a> {
    fn new(key: &'a PrivateKey) -> Result<Self, AuthenticatorError> {
        let public = key.verifying_key().to_sec1_point(false).as_bytes().to_vec();
        Ok(RcgenKey { key, public })
    }
}

impl PublicKeyData for RcgenKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        &self.public
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl SigningKey for RcgenKey<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Ok(self.key.sign(msg))
    }
}

fn attestation_error(e: impl std::fmt::Display) -> AuthenticatorError {
    AuthenticatorError::Attestation(e.to_string())
}

fn random_serial() -> SerialNumber {
    let mut serial = [0u8; 16];
    rand::fill(&mut serial);
    // DER INTEGERs are signed: a clear top bit keeps the serial positive.
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    SerialNumber::from_slice(&serial)
}

fn printable(field: &str, value: &str) -> Result<DnValue, AuthenticatorError> {
    PrintableString::try_from(value)
        .map(DnValue::PrintableString)
        .map_err(|_| {
            AuthenticatorError::invalid(
                "attestation subject",
                field,
                format!("{value:?} is not a PrintableString"),
            )
        })
}

/// The CA's name and key usages. Rebuilt the same way each time so that a CA reloaded from
/// storage issues certificates whose issuer matches its own subject byte for byte.
fn ca_params(subject: &AttestationSubject) -> Result<CertificateParams, AuthenticatorError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, printable("country", &subject.country)?);
    dn.push(DnType::OrganizationName, subject.organization.as_str());
    dn.push(DnType::CommonName, subject.common_name.as_str());
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(params)
}

/// A workspace's attestation CA: a self-signed P-256 root, kept by Behalf (its key sealed in the
/// vault), whose certificate an administrator can hand to a relying party that checks attestation.
#[derive(Debug, Clone)]
pub struct AttestationCa {
    subject: AttestationSubject,
    key: PrivateKey,
    certificate_der: Vec<u8>,
}

impl AttestationCa {
    /// A new CA valid for 20 years from an hour ago (clock skew between us and a verifier).
    pub fn generate(subject: AttestationSubject) -> Result<Self, AuthenticatorError> {
        let key = PrivateKey::generate();
        let mut params = ca_params(&subject)?;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(20 * 365);
        params.serial_number = Some(random_serial());
        let signer = RcgenKey::new(&key)?;
        let cert = params.self_signed(&signer).map_err(attestation_error)?;
        Ok(AttestationCa {
            subject,
            key,
            certificate_der: cert.der().to_vec(),
        })
    }

    /// A CA saved earlier: its subject, key and certificate as [`Self::generate`] made them.
    pub fn from_parts(
        subject: AttestationSubject,
        key: PrivateKey,
        certificate_der: Vec<u8>,
    ) -> Self {
        AttestationCa {
            subject,
            key,
            certificate_der,
        }
    }

    pub fn subject(&self) -> &AttestationSubject {
        &self.subject
    }

    pub fn private_key(&self) -> &PrivateKey {
        &self.key
    }

    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    pub fn certificate_pem(&self) -> String {
        pem_certificate(&self.certificate_der)
    }

    /// Issues the attestation certificate for authenticators of model `aaguid`, valid for
    /// `years` (and from an hour ago).
    pub fn issue(&self, aaguid: Aaguid, years: u16) -> Result<AttestationKey, AuthenticatorError> {
        let issuer = Issuer::new(ca_params(&self.subject)?, RcgenKey::new(&self.key)?);
        let key = PrivateKey::generate();

        let mut params = CertificateParams::default();
        // §8.2.1: Subject C, O, OU = "Authenticator Attestation", CN.
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CountryName,
            printable("country", &self.subject.country)?,
        );
        dn.push(DnType::OrganizationName, self.subject.organization.as_str());
        dn.push(DnType::OrganizationalUnitName, "Authenticator Attestation");
        dn.push(
            DnType::CommonName,
            format!("{} {aaguid}", self.subject.common_name),
        );
        params.distinguished_name = dn;
        // §8.2.1: Basic Constraints CA = false.
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        // §8.2.1: id-fido-gen-ce-aaguid, an OCTET STRING holding the 16 bytes, not critical.
        let mut value = vec![0x04, 0x10];
        value.extend_from_slice(&aaguid.0);
        let mut extension = CustomExtension::from_oid_content(AAGUID_EXTENSION_OID, value);
        extension.set_criticality(false);
        params.custom_extensions.push(extension);
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(365 * i64::from(years.max(1)));
        params.serial_number = Some(random_serial());

        let public = RcgenKey::new(&key)?;
        let cert = params
            .signed_by(&public, &issuer)
            .map_err(attestation_error)?;
        Ok(AttestationKey {
            aaguid,
            key,
            chain: vec![cert.der().to_vec()],
        })
    }
}

/// The key that signs `packed` attestation statements, with its certificate chain for `x5c`
/// (leaf first; the root stays out, as verifiers hold it as a trust anchor).
#[derive(Debug, Clone)]
pub struct AttestationKey {
    aaguid: Aaguid,
    key: PrivateKey,
    chain: Vec<Vec<u8>>,
}

impl AttestationKey {
    pub fn from_parts(aaguid: Aaguid, key: PrivateKey, chain: Vec<Vec<u8>>) -> Self {
        AttestationKey { aaguid, key, chain }
    }

    pub fn aaguid(&self) -> Aaguid {
        self.aaguid
    }

    pub fn private_key(&self) -> &PrivateKey {
        &self.key
    }

    /// DER certificates, attestation certificate first.
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }
}

fn pem_certificate(der: &[u8]) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}
