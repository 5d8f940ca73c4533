//! The configuration's `[entra]` and `[tls]` as Graph client settings.

use std::sync::Arc;

use behalf_config::Config;
use behalf_graph::{ApiVersion, CertificateCredential, Credential, GraphSettings, TlsSettings};

use crate::AppError;

/// Settings for `tenant` with any credential (the app's own, or an admin's delegated tokens).
pub fn base_settings(
    config: &Config,
    tenant: &str,
    credential: Credential,
) -> Result<GraphSettings, AppError> {
    let entra = &config.entra;
    let mut settings = GraphSettings::new(tenant, credential)
        .with_endpoints(&entra.graph_base_url, &entra.login_base_url);
    settings.api_version = api_version(entra.api_version);
    settings.tls = tls(config);
    Ok(settings)
}

/// The Graph client's API version for the configured one.
fn api_version(configured: behalf_config::ApiVersion) -> ApiVersion {
    match configured {
        behalf_config::ApiVersion::Beta => ApiVersion::Beta,
        behalf_config::ApiVersion::V1 => ApiVersion::V1,
    }
}

pub fn tls(config: &Config) -> TlsSettings {
    TlsSettings {
        ca_file: config.tls.ca_file.clone(),
        os_trust_store: config.tls.local_ssl_verify,
        disable_verification: config.tls.disable_ssl_verify,
    }
}

pub fn tenant(config: &Config) -> Result<String, AppError> {
    config.entra.tenant_id.clone().ok_or_else(|| {
        AppError::NotConfigured(
            "no tenant configured: set entra.tenant_id (or BEHALF_ENTRA__TENANT_ID), or sign in with `behalf login --tenant T`".into(),
        )
    })
}

/// Whether `[entra]` names an app with a credential, so the app can act on its own.
pub fn has_app_credential(config: &Config) -> bool {
    let entra = &config.entra;
    entra.tenant_id.is_some()
        && entra.client_id.is_some()
        && (entra.client_secret.is_some() || entra.certificate_file.is_some())
}

/// Client-credentials settings from `[entra]`: a client secret, else a certificate.
pub fn app_settings(config: &Config) -> Result<GraphSettings, AppError> {
    let entra = &config.entra;
    let tenant = tenant(config)?;
    let client_id = entra.client_id.clone().ok_or_else(|| {
        AppError::NotConfigured(
            "no app configured: set entra.client_id (or BEHALF_ENTRA__CLIENT_ID)".into(),
        )
    })?;
    let credential = match (&entra.client_secret, &entra.certificate_file) {
        (Some(secret), _) => Credential::ClientSecret {
            client_id,
            secret: secret.clone(),
        },
        (None, Some(path)) => Credential::Certificate {
            client_id,
            certificate: Arc::new(
                CertificateCredential::from_pem_file(path)
                    .map_err(|e| AppError::invalid("entra.certificate_file", e.to_string()))?,
            ),
        },
        (None, None) => {
            return Err(AppError::NotConfigured(
                "not signed in and no app credential configured: run `behalf login`, or set entra.client_secret (BEHALF_ENTRA__CLIENT_SECRET_FILE) or entra.certificate_file".into(),
            ));
        }
    };
    base_settings(config, &tenant, credential)
}

/// The connection target recorded with imported users.
pub fn target(config: &Config, tenant: &str) -> behalf_store::ConnectionTarget {
    let trimmed = |url: &str| Some(url.trim_end_matches('/').to_string());
    behalf_store::ConnectionTarget {
        tenant_id: Some(tenant.to_string()),
        client_id: config.entra.client_id.clone(),
        graph_base_url: trimmed(&config.entra.graph_base_url),
        login_base_url: trimmed(&config.entra.login_base_url),
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    use base64::Engine as _;
    use behalf_config::Sources;

    use super::*;

    fn pem(label: &str, der: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        format!("-----BEGIN {label}-----\n{b64}\n-----END {label}-----\n")
    }

    #[test]
    fn an_ec_app_certificate_is_refused_when_the_settings_are_built() {
        let key =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .expect("key");
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("app.pem");
        std::fs::write(
            &path,
            format!(
                "{}{}",
                pem("CERTIFICATE", b"\x30\x03\x02\x01\x01"),
                pem("PRIVATE KEY", key.as_ref())
            ),
        )
        .expect("write");
        let env = [
            ("BEHALF_ENTRA__TENANT_ID", "t"),
            ("BEHALF_ENTRA__CLIENT_ID", "c"),
            (
                "BEHALF_ENTRA__CERTIFICATE_FILE",
                path.to_str().expect("utf-8"),
            ),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let config = Config::load_with_env(Sources::default(), env).expect("loads");
        let e = app_settings(&config).expect_err("EC is refused");
        assert_eq!(
            e.to_string(),
            format!(
                "entra.certificate_file: {}: the key is EC, and Entra ID signs apps in with RSA certificates only (AADSTS5002738); make an RSA certificate",
                path.display()
            )
        );
    }
}
