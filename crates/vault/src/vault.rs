//! [`Vault`]: a [`CredentialStore`] whose private keys exist in clear only in memory.

use async_trait::async_trait;
use std::sync::{Arc, RwLock};

use behalf_authenticator::{
    Aaguid, AuthenticatorError, CredProtect, Credential, CredentialInfo, CredentialSecret,
    CredentialStore, SecretBytes, b64url,
};
use behalf_domain::{WorkspaceId, now_millis};
use behalf_store::vault::{SealedRowRef, VaultCredentialRow, VaultTable, WrappedDataKey};
use behalf_store::{Store, WriteSet};

use crate::envelope::{KEY_LEN, aad, open, seal};
use crate::{MasterKey, VaultError};

/// Rows re-wrapped per round trip during rotation.
const ROTATION_BATCH: i64 = 200;

/// The vault of one workspace: sealed credentials and secrets in the [`Store`], opened with the
/// current master key (or, until rotation is done, a previous one).
#[derive(Debug, Clone)]
pub struct Vault {
    store: Store,
    workspace_id: WorkspaceId,
    /// Shared by every clone (the app's and the engine's), so that a key rotation switches them
    /// all at once.
    keys: Arc<RwLock<Keys>>,
}

/// The master key new rows are wrapped with, and those that may still wrap older rows.
#[derive(Debug, Clone)]
struct Keys {
    current: MasterKey,
    previous: Vec<MasterKey>,
}

/// What a rotation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationReport {
    /// Data keys re-wrapped with the current master key.
    pub rewrapped: u64,
}

/// Which row a sealed value belongs to: the associated data of both layers.
enum RowIdentity<'a> {
    Credential {
        rp_id: &'a str,
        credential_id: &'a [u8],
    },
    Secret {
        name: &'a str,
    },
}

impl RowIdentity<'_> {
    fn table(&self) -> VaultTable {
        match self {
            RowIdentity::Credential { .. } => VaultTable::Credentials,
            RowIdentity::Secret { .. } => VaultTable::Secrets,
        }
    }

    fn describe(&self) -> String {
        match self {
            RowIdentity::Credential {
                rp_id,
                credential_id,
            } => format!("credential {} on {rp_id}", b64url(credential_id)),
            RowIdentity::Secret { name } => format!("vault secret {name:?}"),
        }
    }

    /// `layer` is "secret" (the data key sealing the value) or "data-key" (the master key
    /// sealing the data key); the master key id is bound into the latter.
    fn aad(&self, workspace_id: &str, layer: &str, master_key_id: &str) -> Vec<u8> {
        let table = self.table().name().as_bytes();
        match self {
            RowIdentity::Credential {
                rp_id,
                credential_id,
            } => aad(&[
                layer.as_bytes(),
                table,
                workspace_id.as_bytes(),
                rp_id.as_bytes(),
                credential_id,
                master_key_id.as_bytes(),
            ]),
            RowIdentity::Secret { name } => aad(&[
                layer.as_bytes(),
                table,
                workspace_id.as_bytes(),
                name.as_bytes(),
                master_key_id.as_bytes(),
            ]),
        }
    }
}

impl Vault {
    /// The vault of `workspace_id` in `store`, sealing with `master_key`.
    pub fn new(store: Store, workspace_id: WorkspaceId, master_key: MasterKey) -> Self {
        Vault {
            store,
            workspace_id,
            keys: Arc::new(RwLock::new(Keys {
                current: master_key,
                previous: Vec::new(),
            })),
        }
    }

    fn keys(&self) -> Keys {
        // A poisoned lock still holds whole keys (they are replaced, never edited in place).
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn current(&self) -> MasterKey {
        self.keys().current
    }

    /// Keys that may still wrap some rows (after a master key change): they open those rows
    /// until [`Vault::rotate`] has re-wrapped them with the current key.
    pub fn with_previous_keys(self, previous: Vec<MasterKey>) -> Self {
        self.keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .previous = previous;
        self
    }

    pub fn workspace_id(&self) -> WorkspaceId {
        self.workspace_id
    }

    pub fn master_key_id(&self) -> String {
        self.current().id().to_owned()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn key_for(&self, id: &str, what: &RowIdentity<'_>) -> Result<MasterKey, VaultError> {
        let keys = self.keys();
        std::iter::once(&keys.current)
            .chain(&keys.previous)
            .find(|k| k.id() == id)
            .cloned()
            .ok_or_else(|| VaultError::UnknownMasterKey {
                what: what.describe(),
                key_id: id.to_owned(),
                available: std::iter::once(&keys.current)
                    .chain(&keys.previous)
                    .map(MasterKey::id)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Seals `plaintext` for `row`: a new data key encrypts it, the current master key wraps
    /// the data key.
    fn seal(
        &self,
        row: &RowIdentity<'_>,
        plaintext: &[u8],
    ) -> Result<(WrappedDataKey, Vec<u8>), VaultError> {
        let ws = self.workspace_id.to_string();
        let current = self.current();
        let data_key = SecretBytes::random(KEY_LEN);
        let sealed = seal(data_key.expose(), plaintext, &row.aad(&ws, "secret", ""))?;
        let wrapped = seal(
            current.expose(),
            data_key.expose(),
            &row.aad(&ws, "data-key", current.id()),
        )?;
        Ok((
            WrappedDataKey {
                master_key_id: current.id().to_owned(),
                wrapped_data_key: wrapped,
            },
            sealed,
        ))
    }

    fn unwrap_data_key(
        &self,
        row: &RowIdentity<'_>,
        key: &WrappedDataKey,
    ) -> Result<SecretBytes, VaultError> {
        let master = self.key_for(&key.master_key_id, row)?;
        let ws = self.workspace_id.to_string();
        let data_key = open(
            master.expose(),
            &key.wrapped_data_key,
            &row.aad(&ws, "data-key", master.id()),
            &row.describe(),
        )?;
        if data_key.len() != KEY_LEN {
            return Err(VaultError::Corrupt {
                what: row.describe(),
                reason: "data key is not 32 bytes".into(),
            });
        }
        Ok(data_key)
    }

    fn open(
        &self,
        row: &RowIdentity<'_>,
        key: &WrappedDataKey,
        sealed: &[u8],
    ) -> Result<SecretBytes, VaultError> {
        let data_key = self.unwrap_data_key(row, key)?;
        open(
            data_key.expose(),
            sealed,
            &row.aad(&self.workspace_id.to_string(), "secret", ""),
            &row.describe(),
        )
    }

    /// Seals and saves a workspace secret (an attestation CA key, a client secret) under `name`,
    /// replacing any previous value.
    pub async fn put_secret(&self, name: &str, secret: &[u8]) -> Result<(), VaultError> {
        let (key, sealed) = self.seal(&RowIdentity::Secret { name }, secret)?;
        self.store
            .vault_put_secret(self.workspace_id, name, &key, &sealed, now_millis())
            .await?;
        Ok(())
    }

    /// The secret `name` in clear, or `None`.
    pub async fn get_secret(&self, name: &str) -> Result<Option<SecretBytes>, VaultError> {
        let Some((key, sealed)) = self.store.vault_get_secret(self.workspace_id, name).await?
        else {
            return Ok(None);
        };
        self.open(&RowIdentity::Secret { name }, &key, &sealed)
            .map(Some)
    }

    pub async fn delete_secret(&self, name: &str) -> Result<bool, VaultError> {
        Ok(self
            .store
            .vault_delete_secret(self.workspace_id, name)
            .await?)
    }

    /// Re-wraps every data key sealed by a previous master key with the current one. The
    /// sealed secrets themselves are not touched (their data keys do not change). Safe to run
    /// again after an interruption, and from two instances at once.
    pub async fn rotate(&self) -> Result<RotationReport, VaultError> {
        let mut report = RotationReport::default();
        let ws = self.workspace_id.to_string();
        let current = self.current();
        for table in [VaultTable::Credentials, VaultTable::Secrets] {
            // A row wrapped by a key this instance lacks fails the rotation loudly (never a silent,
            // partial rotation); re-run it with that key among the previous ones.
            loop {
                let rows = self
                    .store
                    .vault_rows_to_rewrap(self.workspace_id, table, current.id(), ROTATION_BATCH)
                    .await?;
                if rows.is_empty() {
                    break;
                }
                let before = report.rewrapped;
                for row in &rows {
                    let identity = identity_of(row);
                    let data_key = self.unwrap_data_key(&identity, &row.key)?;
                    let wrapped = seal(
                        current.expose(),
                        data_key.expose(),
                        &identity.aad(&ws, "data-key", current.id()),
                    )?;
                    let new_key = WrappedDataKey {
                        master_key_id: current.id().to_owned(),
                        wrapped_data_key: wrapped,
                    };
                    if self
                        .store
                        .vault_rewrap(self.workspace_id, row, &new_key)
                        .await?
                    {
                        report.rewrapped += 1;
                    }
                }
                if report.rewrapped == before {
                    // Every row of the batch changed under us (another rotation); it will go on.
                    break;
                }
            }
        }
        Ok(report)
    }

    /// Makes `new` the master key of this vault and of every clone of it, re-wraps every data
    /// key with it, and then forgets the keys before it: from then on they open nothing here.
    ///
    /// The old keys open rows during the re-wrapping, so sealing and opening go on meanwhile. A
    /// row sealed with the old key by a call that began just before the switch is caught by the
    /// passes after the first; the old keys are dropped only when no row names them any more.
    pub async fn rotate_to(&self, new: MasterKey) -> Result<RotationReport, VaultError> {
        {
            let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
            if keys.current.id() == new.id() {
                return Err(VaultError::MasterKey(
                    "the new master key is the current one".into(),
                ));
            }
            let old = std::mem::replace(&mut keys.current, new);
            keys.previous.insert(0, old);
        }
        let mut report = RotationReport::default();
        // Three passes are far more than a sealing in flight at the switch needs.
        for _ in 0..3 {
            report.rewrapped += self.rotate().await?.rewrapped;
            let current = self.master_key_id();
            let usage = self.master_key_usage().await?;
            if usage.iter().all(|(id, _)| *id == current) {
                self.keys
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .previous
                    .clear();
                return Ok(report);
            }
        }
        Err(VaultError::MasterKey(
            "rows sealed with a previous master key kept appearing during rotation (another instance still uses it?); run the rotation again once every instance uses the new key".into(),
        ))
    }

    /// How many sealed rows each master key wraps (all should name the current key after a
    /// rotation; then previous keys can be destroyed).
    pub async fn master_key_usage(&self) -> Result<Vec<(String, i64)>, VaultError> {
        Ok(self.store.vault_master_key_usage(self.workspace_id).await?)
    }

    /// Seals `credential` and adds its insert to `set`, so that it commits together with the
    /// caller's own record of it (or not at all). The same RP and credential id twice fails the
    /// set.
    pub fn stage_credential(
        &self,
        set: &mut WriteSet,
        credential: &Credential,
    ) -> Result<(), VaultError> {
        let info = &credential.info;
        let identity = RowIdentity::Credential {
            rp_id: &info.rp_id,
            credential_id: &info.credential_id,
        };
        let plaintext = credential.secret.to_bytes();
        let (key, sealed_secret) = self.seal(&identity, plaintext.expose())?;
        let row = VaultCredentialRow {
            rp_id: info.rp_id.clone(),
            credential_id: info.credential_id.clone(),
            user_handle: info.user_handle.clone(),
            user_name: info.user_name.clone(),
            user_display_name: info.user_display_name.clone(),
            algorithm: info.algorithm,
            public_key_cose: info.public_key_cose.clone(),
            aaguid: info.aaguid.to_string(),
            sign_count: i64::from(info.sign_count),
            cred_protect: info.cred_protect.map(|p| i64::from(p.level())),
            created_at: info.created_at,
            key,
            sealed_secret,
        };
        set.vault_insert_credential(self.workspace_id, &row);
        Ok(())
    }

    fn credential_from_row(&self, row: VaultCredentialRow) -> Result<Credential, VaultError> {
        let identity = RowIdentity::Credential {
            rp_id: &row.rp_id,
            credential_id: &row.credential_id,
        };
        let plaintext = self.open(&identity, &row.key, &row.sealed_secret)?;
        let secret = CredentialSecret::from_bytes(plaintext.expose())?;
        Ok(Credential {
            info: info_from_row(row)?,
            secret,
        })
    }
}

fn identity_of(row: &SealedRowRef) -> RowIdentity<'_> {
    match row.table {
        VaultTable::Credentials => RowIdentity::Credential {
            rp_id: &row.scope,
            credential_id: &row.id,
        },
        VaultTable::Secrets => RowIdentity::Secret { name: &row.scope },
    }
}

fn info_from_row(row: VaultCredentialRow) -> Result<CredentialInfo, VaultError> {
    let corrupt = |reason: &str| VaultError::Corrupt {
        what: format!("credential {}", b64url(&row.credential_id)),
        reason: reason.into(),
    };
    let sign_count =
        u32::try_from(row.sign_count).map_err(|_| corrupt("sign_count out of range"))?;
    let cred_protect = row
        .cred_protect
        .map(|level| {
            u8::try_from(level)
                .ok()
                .and_then(CredProtect::from_level)
                .ok_or_else(|| corrupt("cred_protect out of range"))
        })
        .transpose()?;
    let aaguid = Aaguid::parse(&row.aaguid).map_err(|_| corrupt("aaguid is not a UUID"))?;
    Ok(CredentialInfo {
        credential_id: row.credential_id,
        rp_id: row.rp_id,
        user_handle: row.user_handle,
        user_name: row.user_name,
        user_display_name: row.user_display_name,
        algorithm: row.algorithm,
        public_key_cose: row.public_key_cose,
        aaguid,
        sign_count,
        cred_protect,
        created_at: row.created_at,
    })
}

fn to_store_error(e: VaultError) -> AuthenticatorError {
    match e {
        VaultError::Authenticator(inner) => inner,
        other => AuthenticatorError::store(other),
    }
}

#[async_trait]
impl CredentialStore for Vault {
    async fn insert(&self, credential: &Credential) -> Result<(), AuthenticatorError> {
        let mut set = WriteSet::new();
        self.stage_credential(&mut set, credential)
            .map_err(to_store_error)?;
        self.store
            .commit(set)
            .await
            .map_err(|e| to_store_error(e.into()))
    }

    async fn load(
        &self,
        rp_id: &str,
        credential_id: &[u8],
    ) -> Result<Option<Credential>, AuthenticatorError> {
        let row = self
            .store
            .vault_get_credential(self.workspace_id, rp_id, credential_id)
            .await
            .map_err(|e| to_store_error(e.into()))?;
        row.map(|row| self.credential_from_row(row))
            .transpose()
            .map_err(to_store_error)
    }

    async fn find_first(
        &self,
        rp_id: &str,
        credential_ids: &[Vec<u8>],
    ) -> Result<Option<Vec<u8>>, AuthenticatorError> {
        self.store
            .vault_find_first_credential(self.workspace_id, rp_id, credential_ids)
            .await
            .map_err(|e| to_store_error(e.into()))
    }

    async fn list(
        &self,
        rp_id: &str,
        user_handle: Option<&[u8]>,
    ) -> Result<Vec<CredentialInfo>, AuthenticatorError> {
        let rows = self
            .store
            .vault_list_credentials(self.workspace_id, rp_id, user_handle)
            .await
            .map_err(|e| to_store_error(e.into()))?;
        rows.into_iter()
            .map(|r| info_from_row(r).map_err(to_store_error))
            .collect()
    }

    async fn increment_sign_count(
        &self,
        rp_id: &str,
        credential_id: &[u8],
    ) -> Result<u32, AuthenticatorError> {
        let count = self
            .store
            .vault_increment_sign_count(self.workspace_id, rp_id, credential_id)
            .await
            .map_err(|e| to_store_error(e.into()))?
            .ok_or_else(|| AuthenticatorError::NoCredentials {
                rp_id: rp_id.to_owned(),
                allow_list: true,
            })?;
        u32::try_from(count).map_err(|_| AuthenticatorError::CounterExhausted {
            credential_id: b64url(credential_id),
        })
    }

    async fn delete(&self, rp_id: &str, credential_id: &[u8]) -> Result<bool, AuthenticatorError> {
        self.store
            .vault_delete_credential(self.workspace_id, rp_id, credential_id)
            .await
            .map_err(|e| to_store_error(e.into()))
    }
}

#[cfg(test)]
mod tests;
