//! Assembling the layers for a command: store → workspace → vault → authenticator → Graph → engine.

use std::str::FromStr;

use anyhow::Context as _;
use behalf_authenticator::{Aaguid, Authenticator, AuthenticatorConfig};
use behalf_config::Config;
use behalf_domain::Workspace;
use behalf_graph::GraphClient;
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

/// A Graph client acting as the app (client credentials from `[entra]`).
pub fn graph_client(config: &Config) -> anyhow::Result<GraphClient> {
    Ok(GraphClient::new(crate::cmd::graph_setup::app_settings(
        config,
    )?)?)
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
