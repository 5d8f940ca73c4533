//! Assembling the layers: store → workspace → vault → authenticator → Graph → engine.

use behalf_authenticator::{Aaguid, Authenticator, AuthenticatorConfig};
use behalf_config::Config;
use behalf_domain::Workspace;
use behalf_graph::GraphClient;
use behalf_mail::Mailer;
use behalf_provision::{AttestationMode, Engine, EngineOptions, workspace_attestation};
use behalf_store::Store;
use behalf_vault::{MasterKey, Vault};

use crate::AppError;
use crate::microsoft::MicrosoftGraph;

/// The engine every provisioning operation uses.
pub type MicrosoftEngine = Engine<MicrosoftGraph, Vault>;

/// The store, the configured workspace and its vault.
#[derive(Debug, Clone)]
pub struct Opened {
    pub store: Store,
    pub workspace: Workspace,
    pub vault: Vault,
    /// The master key's file, which a rotation replaces.
    pub master_key_path: std::path::PathBuf,
}

/// Opens (and migrates) the configured database.
pub async fn open_store(config: &Config) -> Result<Store, AppError> {
    let url = config.database_url();
    let options = behalf_store::StoreOptions {
        pool_size: config.database_pool_size,
    };
    Store::connect_with(url.expose(), options)
        .await
        .map_err(|e| AppError::NotConfigured(format!("the database is not usable: {e}")))
}

pub async fn open(config: &Config) -> Result<Opened, AppError> {
    let store = open_store(config).await?;
    let workspace = store.ensure_workspace(&config.workspace).await?;
    let key_error =
        |e| AppError::NotConfigured(format!("cannot load the workspace master key: {e}"));
    let (master_key, path) =
        MasterKey::resolve(config.master_key_file.as_deref(), &config.data_dir)
            .map_err(key_error)?;
    // A rotation that was interrupted left its new key beside the file: some rows may be
    // wrapped with it already, so it opens them until the rotation is run again.
    let pending = MasterKey::pending_path(&path);
    let previous = if pending.exists() {
        tracing::warn!(
            file = %pending.display(),
            "a master key rotation did not finish: run `behalf vault rotate-key` again"
        );
        vec![MasterKey::load(&pending).map_err(key_error)?]
    } else {
        Vec::new()
    };
    let vault = Vault::new(store.clone(), workspace.id, master_key).with_previous_keys(previous);
    Ok(Opened {
        store,
        workspace,
        vault,
        master_key_path: path,
    })
}

/// A Graph client acting as the app (client credentials from `[entra]`).
pub fn graph_client(config: &Config) -> Result<GraphClient, AppError> {
    GraphClient::new(crate::graph_settings::app_settings(config)?)
        .map_err(|e| AppError::NotConfigured(format!("cannot set up the Graph client: {e}")))
}

/// The provisioning engine for the configured workspace and tenant.
pub async fn engine(
    config: &Config,
    opened: &Opened,
    graph: GraphClient,
    actor: String,
) -> Result<MicrosoftEngine, AppError> {
    let aaguid = Aaguid(config.provisioning.aaguid.bytes());
    let mode = attestation_mode(config.provisioning.attestation);
    let (attestation, _ca) = workspace_attestation(&opened.vault, mode, aaguid)
        .await
        .map_err(AppError::internal)?;
    let authenticator = Authenticator::new(
        AuthenticatorConfig {
            aaguid,
            attestation,
        },
        opened.vault.clone(),
    );
    // The manual path: passes through the same Graph client, mailed through `[mail]`; a relay
    // that is not configured is said per item (and refused before a manual job is queued).
    let manual = crate::manual::GraphManualPath {
        client: graph.clone(),
        mailer: Mailer::new(&config.mail, config.tls.ca_file.as_deref()).map_err(|e| e.to_string()),
        lifetime_minutes: config.mail.tap_lifetime_minutes,
        usable_once: config.mail.tap_usable_once,
        poll: std::time::Duration::from_secs(config.manual.poll_seconds.max(1)),
    };
    let rp = MicrosoftGraph {
        client: graph,
        challenge_timeout_minutes: Some(config.provisioning.challenge_timeout_minutes),
    };
    let options = EngineOptions {
        concurrency: config.provisioning.concurrency,
        display_name_template: config.provisioning.display_name_template.clone(),
        actor,
        auto_assign_vault_key: config.provisioning.auto_assign_vault_key,
        manual: Some(std::sync::Arc::new(manual)),
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

/// The engine's attestation mode for the configured one (the same three spellings).
fn attestation_mode(configured: behalf_config::AttestationMode) -> AttestationMode {
    match configured {
        behalf_config::AttestationMode::Packed => AttestationMode::Packed,
        behalf_config::AttestationMode::PackedSelf => AttestationMode::PackedSelf,
        behalf_config::AttestationMode::None => AttestationMode::None,
    }
}
