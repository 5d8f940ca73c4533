//! Assembling the layers for a command: store → workspace → vault → authenticator → Graph → engine.

use std::str::FromStr;

use anyhow::Context as _;
use behalf_authenticator::{Aaguid, Authenticator, AuthenticatorConfig};
use behalf_config::Config;
use behalf_domain::{Secret, Workspace};
use behalf_graph::{ApiVersion, Credential, GraphClient, GraphSettings, TlsSettings};
use behalf_provision::{AttestationMode, Engine, EngineOptions, workspace_attestation};
use behalf_store::Store;
use behalf_vault::{MasterKey, Vault};

use crate::context;
use crate::microsoft::MicrosoftGraph;

/// The engine every provisioning command uses.
pub type MicrosoftEngine = Engine<MicrosoftGraph, Vault>;

/// The store, the configured workspace and its vault.
#[derive(Debug, Clone)]
pub struct Opened {
    pub store: Store,
    pub workspace: Workspace,
    pub vault: Vault,
}

pub async fn open(config: &Config) -> anyhow::Result<Opened> {
    let store = context::open_store(config).await?;
    let workspace = store.ensure_workspace(&config.workspace).await?;
    let (master_key, _path) =
        MasterKey::resolve(config.master_key_file.as_deref(), &config.data_dir)
            .context("cannot load the workspace master key")?;
    let vault = Vault::new(store.clone(), workspace.id, master_key);
    Ok(Opened {
        store,
        workspace,
        vault,
    })
}

/// Graph settings from `[entra]` and `[tls]`, with a client secret or a certificate.
pub fn graph_settings(config: &Config) -> anyhow::Result<GraphSettings> {
    let entra = &config.entra;
    let tenant = entra
        .tenant_id
        .clone()
        .context("no tenant configured: set entra.tenant_id (or BEHALF_ENTRA__TENANT_ID)")?;
    let client_id = entra
        .client_id
        .clone()
        .context("no app configured: set entra.client_id (or BEHALF_ENTRA__CLIENT_ID)")?;
    let credential = match (&entra.client_secret, &entra.certificate_file) {
        (Some(secret), _) => Credential::ClientSecret {
            client_id,
            secret: Secret::new(secret.expose()),
        },
        (None, Some(path)) => {
            let certificate = behalf_graph::CertificateCredential::from_pem_file(path)
                .with_context(|| format!("cannot use the certificate in {}", path.display()))?;
            Credential::Certificate {
                client_id,
                certificate: std::sync::Arc::new(certificate),
            }
        }
        (None, None) => anyhow::bail!(
            "no app credential configured: set entra.client_secret (or BEHALF_ENTRA__CLIENT_SECRET_FILE) or entra.certificate_file"
        ),
    };
    let mut settings = GraphSettings::new(tenant, credential)
        .with_endpoints(&entra.graph_base_url, &entra.login_base_url);
    settings.api_version = match entra.api_version.as_str() {
        "beta" => ApiVersion::Beta,
        "v1.0" => ApiVersion::V1,
        other => anyhow::bail!("entra.api_version must be \"beta\" or \"v1.0\", not {other:?}"),
    };
    settings.tls = TlsSettings {
        ca_file: config.tls.ca_file.clone(),
        os_trust_store: config.tls.local_ssl_verify,
        disable_verification: config.tls.disable_ssl_verify,
    };
    Ok(settings)
}

pub fn graph_client(config: &Config) -> anyhow::Result<GraphClient> {
    Ok(GraphClient::new(graph_settings(config)?)?)
}

/// The provisioning engine for the configured workspace and tenant.
pub async fn engine(
    config: &Config,
    opened: &Opened,
    graph: GraphClient,
    actor: String,
) -> anyhow::Result<MicrosoftEngine> {
    let aaguid = Aaguid::parse(&config.provisioning.aaguid).map_err(|e| {
        anyhow::anyhow!("provisioning.aaguid {:?}: {e}", config.provisioning.aaguid)
    })?;
    let mode = AttestationMode::from_str(&config.provisioning.attestation)
        .map_err(|e| anyhow::anyhow!("provisioning.attestation: {e}"))?;
    let (attestation, _ca) = workspace_attestation(&opened.vault, mode, aaguid).await?;
    let authenticator = Authenticator::new(
        AuthenticatorConfig {
            aaguid,
            attestation,
        },
        opened.vault.clone(),
    );
    let rp = MicrosoftGraph {
        client: graph,
        challenge_timeout_minutes: Some(config.provisioning.challenge_timeout_minutes),
    };
    let options = EngineOptions {
        concurrency: config.provisioning.concurrency,
        display_name_template: config.provisioning.display_name_template.clone(),
        actor,
        auto_assign_vault_key: config.provisioning.auto_assign_vault_key,
        ..EngineOptions::default()
    };
    Ok(Engine::new(
        opened.store.clone(),
        opened.workspace.id,
        rp,
        authenticator,
        options,
    ))
}

/// Who is acting, for the event log: the operating-system user running the CLI.
pub fn cli_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}
