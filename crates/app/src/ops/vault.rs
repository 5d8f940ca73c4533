//! The vault's master key: where it is, which key wraps how many rows, and its rotation.

use behalf_domain::{EventAction, EventDetail, Outcome};
use behalf_vault::{MasterKey, Vault, VaultError};
use serde::Serialize;

use crate::{AppError, Owner, Reader};

/// The master key as the settings page shows it (never the key).
#[derive(Debug, Clone, Serialize)]
pub struct VaultStatus {
    /// The key's public id (`mk1-…`), derived from the key.
    pub master_key_id: String,
    /// The file it is read from.
    pub key_file: String,
    /// Sealed rows (credentials and secrets) by the key that wraps them.
    pub usage: Vec<(String, i64)>,
    /// A rotation began and did not finish (its new key waits beside the file).
    pub rotation_pending: bool,
}

/// What a rotation did.
#[derive(Debug, Clone, Serialize)]
pub struct Rotated {
    pub old_key_id: String,
    pub new_key_id: String,
    /// Data keys re-wrapped with the new key, in every workspace of the database.
    pub rewrapped: u64,
    pub key_file: String,
}

fn vault_error(e: VaultError) -> AppError {
    match e {
        // The file cannot be written (a read-only secret mount, say), or this instance was
        // started with another key than the rows': the person can act on either. The messages
        // name key ids and files, never key material.
        VaultError::MasterKeyFile { .. }
        | VaultError::MasterKey(_)
        | VaultError::UnknownMasterKey { .. }
        | VaultError::Unseal { .. } => AppError::NotConfigured(e.to_string()),
        other => AppError::internal(other),
    }
}

impl Reader<'_> {
    pub async fn vault_status(&self) -> Result<VaultStatus, AppError> {
        let vault = self.app.vault();
        let path = &self.app.inner.opened.master_key_path;
        Ok(VaultStatus {
            master_key_id: vault.master_key_id(),
            key_file: path.display().to_string(),
            usage: vault.master_key_usage().await.map_err(vault_error)?,
            rotation_pending: MasterKey::pending_path(path).exists(),
        })
    }
}

impl Owner<'_> {
    /// Replaces the workspace's master key with a new one: every data key is re-wrapped with
    /// it, the key file is replaced, and the old key opens nothing afterwards.
    ///
    /// The steps keep every row readable whatever happens between them:
    /// 1. the new key is written beside the file (`master.key.next`, 0600); a start finds it
    ///    there and opens rows with it too;
    /// 2. the vault (every clone: the engine's too) seals with the new key and re-wraps the rows
    ///    wrapped with the old one;
    /// 3. the new key's file replaces the old one in one rename.
    ///
    /// An interrupted rotation is finished by running it again: it picks up the waiting key.
    /// Other instances sharing the database keep the old key in memory: restart them after.
    pub async fn rotate_master_key(&self) -> Result<Rotated, AppError> {
        let vault = self.app.vault();
        let path = self.app.inner.opened.master_key_path.clone();
        let pending = MasterKey::pending_path(&path);
        let old_key_id = vault.master_key_id();
        // The key the file holds now: other workspaces of the database are sealed by it too.
        let old = MasterKey::load(&path).map_err(vault_error)?;
        let new = if pending.exists() {
            MasterKey::load(&pending).map_err(vault_error)?
        } else {
            let key = MasterKey::generate();
            key.write_new(&pending).map_err(vault_error)?;
            key
        };
        let result = async {
            let report = if new.id() == old_key_id {
                // Step 2 finished before (this instance started from the new key); only the
                // rename is left.
                vault.rotate().await.map_err(vault_error)?
            } else {
                vault.rotate_to(new.clone()).await.map_err(vault_error)?
            };
            let mut report = report;
            // One key file serves every workspace of the database: their rows are re-wrapped
            // too before the file changes, or they would be sealed by a key nobody has.
            let store = self.app.store();
            for workspace in store.list_workspaces().await? {
                if workspace.id == self.app.workspace().id {
                    continue;
                }
                let other = Vault::new(store.clone(), workspace.id, new.clone())
                    .with_previous_keys(vec![old.clone()]);
                report.rewrapped += other.rotate().await.map_err(vault_error)?.rewrapped;
            }
            MasterKey::replace_file(&pending, &path).map_err(vault_error)?;
            Ok::<_, AppError>(report)
        }
        .await;
        let detail = EventDetail::default()
            .with("old_key_id", &old_key_id)
            .with("new_key_id", new.id());
        match result {
            Ok(report) => {
                self.app
                    .audit(
                        self.actor(),
                        EventAction::MasterKeyRotated,
                        Outcome::Success,
                        detail.with("rewrapped", report.rewrapped),
                    )
                    .await?;
                Ok(Rotated {
                    old_key_id,
                    new_key_id: new.id().to_owned(),
                    rewrapped: report.rewrapped,
                    key_file: path.display().to_string(),
                })
            }
            Err(e) => {
                self.app
                    .audit(
                        self.actor(),
                        EventAction::MasterKeyRotated,
                        Outcome::Failure,
                        detail.with("reason", e.to_string()),
                    )
                    .await?;
                Err(e)
            }
        }
    }
}
