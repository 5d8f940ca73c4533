//! App certificates and the client assertions signed with them: certificate credentials of the
//! Microsoft identity platform
//! (<https://learn.microsoft.com/entra/identity-platform/certificate-credentials>).
//!
//! An app registration holds public certificates (Entra's `keyCredentials`, type
//! `AsymmetricX509Cert`). A confidential client proves who it is with
//! `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer` and a JWT whose
//! header names the certificate by thumbprint (`x5t#S256`: base64url SHA-256 of the DER, or the
//! older `x5t`: base64url SHA-1) and whose claims are `aud` = the tenant's token endpoint,
//! `iss` = `sub` = the client id, `jti`, `nbf`/`iat` and `exp`. The signature is RS256 or PS256
//! over the certificate's RSA key: Entra accepts RSA certificates only (EC keys are refused, see
//! <https://github.com/Azure/azure-sdk-for-net/issues/6521>).
//!
//! Refusals carry the AADSTS codes Entra sends for them:
//! - 700027: the thumbprint names no certificate of the app ("The certificate with identifier
//!   used to sign the client assertion is not registered on application"), the certificate has
//!   expired ("[Reason - The key used is expired.]"), or the signature does not verify ("Client
//!   assertion failed signature validation").
//! - 700024: `exp` is past or `nbf` is ahead ("Client assertion is not within its valid time range").
//! - 700023: `aud` is not this tenant's token endpoint ("Client assertion audience claim does not
//!   match Realm issuer").
//! - 700021: `iss`/`sub` are not the `client_id` ("Client assertion application identifier doesn't
//!   match 'client_id' parameter").
//! - 50027: not a JWT at all ("JWT token is invalid or malformed"); 5002738: an algorithm other
//!   than RS256 / PS256.
//!
//! The codes are from the Azure SDK troubleshooting guides
//! (<https://learn.microsoft.com/azure/developer/java/sdk/troubleshooting-authentication-service-principal>)
//! and Entra's error reference (<https://learn.microsoft.com/entra/identity-platform/reference-error-codes>).

use std::collections::HashMap;

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rsa::RsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Digest;
use uuid::Uuid;
use x509_cert::Certificate;
use x509_cert::der::{Decode, DecodePem, Encode};

use crate::errors::{Result, SandboxError};
use crate::state::{Shared, iso};

pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Clock skew tolerated on `nbf` and `exp`, as Entra (like IdentityModel's default) allows.
const SKEW_SECS: i64 = 300;

/// A certificate registered on an app at run time (`POST /sandbox/apps/{id}/certificates`);
/// persisted with the tenant in the state file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredCertificate {
    pub client_id: Uuid,
    pub key_id: Uuid,
    /// Standard base64 of the DER certificate, as Graph's `keyCredential.key`.
    pub der: String,
}

/// A parsed app certificate.
#[derive(Debug, Clone)]
pub(crate) struct AppCertificate {
    pub key_id: Uuid,
    pub der: Vec<u8>,
    /// base64url SHA-1 of the DER (the JWT header's `x5t`).
    pub x5t: String,
    /// base64url SHA-256 of the DER (`x5t#S256`).
    pub x5t_s256: String,
    /// Upper-case hex SHA-1, as Entra shows thumbprints (`customKeyIdentifier`).
    pub thumbprint: String,
    pub subject: String,
    /// Unix milliseconds.
    pub not_before: i64,
    pub not_after: i64,
    pub public_key: RsaPublicKey,
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

impl AppCertificate {
    /// Parses a certificate given as PEM (the first `CERTIFICATE` block; a private key next to it
    /// is ignored) or as base64 DER (Graph's `keyCredential.key`). Only RSA keys are accepted.
    pub fn parse(input: &str, key_id: Uuid) -> std::result::Result<AppCertificate, String> {
        let input = input.trim();
        let der = if input.starts_with("-----BEGIN") {
            let block = pem_block(input, "CERTIFICATE")
                .ok_or("no '-----BEGIN CERTIFICATE-----' block in the PEM")?;
            Certificate::from_pem(block.as_bytes())
                .and_then(|c| c.to_der())
                .map_err(|e| format!("the PEM certificate is not valid X.509: {e}"))?
        } else {
            let compact: String = input.split_whitespace().collect();
            STANDARD
                .decode(compact)
                .map_err(|_| "the certificate is neither PEM nor base64 DER".to_string())?
        };
        Self::from_der(der, key_id)
    }

    pub fn from_der(der: Vec<u8>, key_id: Uuid) -> std::result::Result<AppCertificate, String> {
        let cert = Certificate::from_der(&der)
            .map_err(|e| format!("the certificate is not valid X.509: {e}"))?;
        let tbs = cert.tbs_certificate();
        let spki = tbs
            .subject_public_key_info()
            .to_der()
            .map_err(|e| format!("the certificate's public key cannot be read: {e}"))?;
        let public_key = RsaPublicKey::from_public_key_der(&spki).map_err(|_| {
            "the certificate's key is not RSA: the Microsoft identity platform accepts RSA certificates only"
                .to_string()
        })?;
        let millis = |t: x509_cert::time::Time| t.to_unix_duration().as_millis() as i64;
        let validity = tbs.validity();
        Ok(AppCertificate {
            key_id,
            x5t: URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(&der)),
            x5t_s256: URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&der)),
            thumbprint: hex_upper(&sha1::Sha1::digest(&der)),
            subject: tbs.subject().to_string(),
            not_before: millis(validity.not_before),
            not_after: millis(validity.not_after),
            public_key,
            der,
        })
    }

    /// The certificate alone, as PEM.
    pub fn pem(&self) -> String {
        let b64 = STANDARD.encode(&self.der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .filter_map(|c| std::str::from_utf8(c).ok())
            .collect();
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        )
    }

    /// Graph's `keyCredential` for this certificate, plus the JWT header thumbprints.
    pub fn key_credential(&self) -> Value {
        json!({
            "keyId": self.key_id,
            "type": "AsymmetricX509Cert",
            "usage": "Verify",
            "displayName": self.subject,
            "customKeyIdentifier": self.thumbprint,
            "startDateTime": iso(self.not_before),
            "endDateTime": iso(self.not_after),
            "x5t": self.x5t,
            "x5t#S256": self.x5t_s256,
        })
    }
}

/// The first PEM block with this label, armour included.
fn pem_block<'a>(pem: &'a str, label: &str) -> Option<&'a str> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)?;
    let stop = pem[start..].find(&end)? + start + end.len();
    Some(&pem[start..stop])
}

/// Every certificate of an app: the configured ones and those registered at run time.
pub(crate) fn app_certificates(shared: &Shared, client_id: Uuid) -> Vec<AppCertificate> {
    let mut out: Vec<AppCertificate> = shared
        .config_certificates
        .iter()
        .filter(|(id, _)| *id == client_id)
        .map(|(_, c)| c.clone())
        .collect();
    let dir = shared.read();
    out.extend(
        dir.app_certificates
            .iter()
            .filter(|s| s.client_id == client_id)
            .filter_map(|s| {
                let der = STANDARD.decode(&s.der).ok()?;
                AppCertificate::from_der(der, s.key_id).ok()
            }),
    );
    out
}

fn invalid_client(code: u32, description: String) -> SandboxError {
    SandboxError::aad(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        code,
        description,
    )
}

fn malformed() -> SandboxError {
    SandboxError::aad(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        50027,
        "AADSTS50027: JWT token is invalid or malformed.",
    )
}

#[derive(Deserialize)]
struct Header {
    alg: Option<String>,
    x5t: Option<String>,
    #[serde(rename = "x5t#S256")]
    x5t_s256: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    aud: Option<Value>,
    iss: Option<String>,
    sub: Option<String>,
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
}

/// Authenticates a confidential client by its certificate assertion (the form of a token request).
pub(crate) fn verify_assertion(
    shared: &Shared,
    client_id: Uuid,
    form: &HashMap<String, String>,
) -> Result<()> {
    match form.get("client_assertion_type").map(String::as_str) {
        Some(JWT_BEARER) => {}
        Some(other) => {
            return Err(SandboxError::aad(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                format!(
                    "AADSTS900144: The request body must contain the following parameter: 'client_assertion_type' with the value '{JWT_BEARER}' (got '{other}')."
                ),
            ));
        }
        None => {
            return Err(SandboxError::aad(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                "AADSTS900144: The request body must contain the following parameter: 'client_assertion_type'.",
            ));
        }
    }
    let Some(assertion) = form.get("client_assertion").filter(|a| !a.is_empty()) else {
        return Err(SandboxError::aad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "AADSTS900144: The request body must contain the following parameter: 'client_assertion'.",
        ));
    };
    let mut parts = assertion.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let header: Header = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(malformed)?;
    let claims: Claims = URL_SAFE_NO_PAD
        .decode(c)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(malformed)?;
    let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| malformed())?;
    let alg = header.alg.unwrap_or_default();
    if alg != "RS256" && alg != "PS256" {
        return Err(invalid_client(
            5002738,
            format!(
                "AADSTS5002738: Invalid JWT token. '{alg}' is not a supported signature algorithm. Supported signing algorithms are: 'RS256, PS256'"
            ),
        ));
    }

    // The certificate: by x5t#S256 when given (the current documentation), else by x5t.
    let certificates = app_certificates(shared, client_id);
    let named = match (&header.x5t_s256, &header.x5t) {
        (Some(t), _) => certificates.iter().find(|k| &k.x5t_s256 == t),
        (None, Some(t)) => certificates.iter().find(|k| &k.x5t == t),
        (None, None) => {
            return Err(invalid_client(
                700027,
                "AADSTS700027: Client assertion failed signature validation. [Reason - The assertion header names no certificate: 'x5t#S256' or 'x5t' is required.]".into(),
            ));
        }
    };
    let Some(cert) = named else {
        let given = header
            .x5t_s256
            .as_deref()
            .or(header.x5t.as_deref())
            .unwrap_or_default();
        return Err(invalid_client(
            700027,
            format!(
                "AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{given}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'.]"
            ),
        ));
    };
    let now_ms = shared.clock.now_ms();
    if now_ms > cert.not_after || now_ms < cert.not_before {
        return Err(invalid_client(
            700027,
            format!(
                "AADSTS700027: Client assertion contains an invalid signature. [Reason - The key used is expired., Thumbprint of key used by client: '{}', Found key 'Start={}, End={}']",
                cert.thumbprint,
                iso(cert.not_before),
                iso(cert.not_after)
            ),
        ));
    }
    let signed = format!("{h}.{c}");
    let verified = if alg == "RS256" {
        rsa::pkcs1v15::Signature::try_from(signature.as_slice())
            .ok()
            .is_some_and(|sig| {
                rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(cert.public_key.clone())
                    .verify(signed.as_bytes(), &sig)
                    .is_ok()
            })
    } else {
        rsa::pss::Signature::try_from(signature.as_slice())
            .ok()
            .is_some_and(|sig| {
                rsa::pss::VerifyingKey::<sha2::Sha256>::new(cert.public_key.clone())
                    .verify(signed.as_bytes(), &sig)
                    .is_ok()
            })
    };
    if !verified {
        return Err(invalid_client(
            700027,
            "AADSTS700027: Client assertion failed signature validation.".into(),
        ));
    }

    let client = client_id.to_string();
    let names_client = |v: &Option<String>| {
        v.as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case(&client))
    };
    if !names_client(&claims.iss) || !names_client(&claims.sub) {
        return Err(invalid_client(
            700021,
            "AADSTS700021: Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials.".into(),
        ));
    }
    let aud = match &claims.aud {
        Some(Value::String(a)) => a.as_str(),
        // A list of audiences is not accepted (seen refused with 50027 in the field).
        _ => return Err(malformed()),
    };
    if !audience_matches(shared, aud) {
        return Err(invalid_client(
            700023,
            format!(
                "AADSTS700023: Client assertion audience claim does not match Realm issuer. Audience '{aud}' is not this tenant's token endpoint. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials."
            ),
        ));
    }
    let now = now_ms / 1000;
    let (Some(exp), nbf) = (claims.exp, claims.nbf.or(claims.iat)) else {
        return Err(malformed());
    };
    if exp + SKEW_SECS <= now || nbf.is_some_and(|n| n - SKEW_SECS > now) {
        let secs = |t: i64| iso(t.saturating_mul(1000));
        return Err(invalid_client(
            700024,
            format!(
                "AADSTS700024: Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials.",
                secs(now),
                nbf.map_or_else(|| "(none)".into(), secs),
                secs(exp)
            ),
        ));
    }
    Ok(())
}

/// `aud` must be this tenant's token endpoint (`{login}/{tenant}/oauth2/v2.0/token`), the tenant
/// named by id or by verified domain; the v1 endpoint `…/oauth2/token`, which older libraries put
/// there, is accepted too. The login host must be this one (a national cloud's token endpoint is
/// another realm); `localhost` and `127.0.0.1` are the same host here.
fn audience_matches(shared: &Shared, aud: &str) -> bool {
    let (Ok(url), Ok(base)) = (url::Url::parse(aud), url::Url::parse(&shared.base_url)) else {
        return false;
    };
    let host = |u: &url::Url| match u.host_str() {
        Some("localhost") => Some("127.0.0.1".to_string()),
        h => h.map(str::to_ascii_lowercase),
    };
    if url.scheme() != base.scheme()
        || host(&url) != host(&base)
        || url.port_or_known_default() != base.port_or_known_default()
    {
        return false;
    }
    let segments: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
    let Some((tenant, rest)) = segments.split_first() else {
        return false;
    };
    let ours = tenant.eq_ignore_ascii_case(&shared.tenant_id.to_string())
        || tenant.eq_ignore_ascii_case(&shared.domain);
    ours && (rest == ["oauth2", "v2.0", "token"] || rest == ["oauth2", "token"])
}
