//! The vault's tables: sealed credentials and sealed workspace secrets.
//!
//! This module only moves rows; sealing and opening happen in `behalf-vault`, which alone holds
//! the master key. Every query is scoped to a workspace.

use behalf_domain::WorkspaceId;
use sqlx::any::AnyRow;

use crate::rows::Reader;
use crate::{Store, StoreError};

/// Which vault table a sealed row lives in (for rotation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VaultTable {
    Credentials,
    Secrets,
}

impl VaultTable {
    pub fn name(self) -> &'static str {
        match self {
            VaultTable::Credentials => "vault_credentials",
            VaultTable::Secrets => "vault_secrets",
        }
    }
}

/// A data key as sealed by a master key: what rotation rewrites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedDataKey {
    pub master_key_id: String,
    pub wrapped_data_key: Vec<u8>,
}

/// One `vault_credentials` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultCredentialRow {
    pub rp_id: String,
    pub credential_id: Vec<u8>,
    pub user_handle: Vec<u8>,
    pub user_name: String,
    pub user_display_name: String,
    pub algorithm: i64,
    pub public_key_cose: Vec<u8>,
    pub aaguid: String,
    pub sign_count: i64,
    pub cred_protect: Option<i64>,
    pub created_at: i64,
    pub key: WrappedDataKey,
    pub sealed_secret: Vec<u8>,
}

/// A sealed row named for rotation: `(rp_id, credential_id)` or `(name, [])`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedRowRef {
    pub table: VaultTable,
    /// `rp_id` for credentials, `name` for secrets.
    pub scope: String,
    /// The credential id; empty for secrets.
    pub id: Vec<u8>,
    pub key: WrappedDataKey,
}

pub(crate) const CREDENTIAL_COLUMNS: &str = "rp_id, credential_id, user_handle, user_name, user_display_name, algorithm, \
     public_key_cose, aaguid, sign_count, cred_protect, created_at, master_key_id, wrapped_data_key, sealed_secret";

fn credential_from(row: &AnyRow) -> Result<VaultCredentialRow, StoreError> {
    let r = Reader::new(row, "vault_credentials");
    Ok(VaultCredentialRow {
        rp_id: r.text("rp_id")?,
        credential_id: r.bytes("credential_id")?,
        user_handle: r.bytes("user_handle")?,
        user_name: r.text("user_name")?,
        user_display_name: r.text("user_display_name")?,
        algorithm: r.int("algorithm")?,
        public_key_cose: r.bytes("public_key_cose")?,
        aaguid: r.text("aaguid")?,
        sign_count: r.int("sign_count")?,
        cred_protect: r.opt_int("cred_protect")?,
        created_at: r.int("created_at")?,
        key: WrappedDataKey {
            master_key_id: r.text("master_key_id")?,
            wrapped_data_key: r.bytes("wrapped_data_key")?,
        },
        sealed_secret: r.bytes("sealed_secret")?,
    })
}

impl Store {
    pub async fn vault_get_credential(
        &self,
        workspace_id: WorkspaceId,
        rp_id: &str,
        credential_id: &[u8],
    ) -> Result<Option<VaultCredentialRow>, StoreError> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM vault_credentials \
             WHERE workspace_id = $1 AND rp_id = $2 AND credential_id = $3"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(workspace_id.to_string())
            .bind(rp_id)
            .bind(credential_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(credential_from).transpose()
    }

    /// The first of `credential_ids` held for `rp_id` (in the caller's order).
    pub async fn vault_find_first_credential(
        &self,
        workspace_id: WorkspaceId,
        rp_id: &str,
        credential_ids: &[Vec<u8>],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        // Exclude / allow lists are a handful of ids: one indexed lookup each.
        for id in credential_ids {
            let found: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM vault_credentials WHERE workspace_id = $1 AND rp_id = $2 AND credential_id = $3",
            )
            .bind(workspace_id.to_string())
            .bind(rp_id)
            .bind(id.as_slice())
            .fetch_optional(self.pool())
            .await?;
            if found.is_some() {
                return Ok(Some(id.clone()));
            }
        }
        Ok(None)
    }

    /// Credentials for `rp_id` (and user handle, when given), newest first.
    pub async fn vault_list_credentials(
        &self,
        workspace_id: WorkspaceId,
        rp_id: &str,
        user_handle: Option<&[u8]>,
    ) -> Result<Vec<VaultCredentialRow>, StoreError> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM vault_credentials WHERE workspace_id = $1 AND rp_id = $2 \
             AND ($3 = 0 OR user_handle = $4) ORDER BY created_at DESC, credential_id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(workspace_id.to_string())
            .bind(rp_id)
            .bind(i64::from(user_handle.is_some()))
            .bind(user_handle.unwrap_or_default())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(credential_from).collect()
    }

    /// Adds one to the counter in one statement (atomic across instances) and returns it;
    /// `None` when the credential does not exist.
    pub async fn vault_increment_sign_count(
        &self,
        workspace_id: WorkspaceId,
        rp_id: &str,
        credential_id: &[u8],
    ) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "UPDATE vault_credentials SET sign_count = sign_count + 1 \
             WHERE workspace_id = $1 AND rp_id = $2 AND credential_id = $3 RETURNING sign_count",
        )
        .bind(workspace_id.to_string())
        .bind(rp_id)
        .bind(credential_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Deletes the credential row (sealed key included); `true` when it existed.
    pub async fn vault_delete_credential(
        &self,
        workspace_id: WorkspaceId,
        rp_id: &str,
        credential_id: &[u8],
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM vault_credentials WHERE workspace_id = $1 AND rp_id = $2 AND credential_id = $3")
            .bind(workspace_id.to_string())
            .bind(rp_id)
            .bind(credential_id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Creates or replaces the sealed secret `name`.
    pub async fn vault_put_secret(
        &self,
        workspace_id: WorkspaceId,
        name: &str,
        key: &WrappedDataKey,
        sealed_secret: &[u8],
        created_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO vault_secrets (workspace_id, name, created_at, master_key_id, wrapped_data_key, sealed_secret) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (workspace_id, name) DO UPDATE SET \
             created_at = excluded.created_at, master_key_id = excluded.master_key_id, \
             wrapped_data_key = excluded.wrapped_data_key, sealed_secret = excluded.sealed_secret",
        )
        .bind(workspace_id.to_string())
        .bind(name)
        .bind(created_at)
        .bind(key.master_key_id.as_str())
        .bind(key.wrapped_data_key.as_slice())
        .bind(sealed_secret)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The sealed secret `name`: its wrapped data key and ciphertext.
    pub async fn vault_get_secret(
        &self,
        workspace_id: WorkspaceId,
        name: &str,
    ) -> Result<Option<(WrappedDataKey, Vec<u8>)>, StoreError> {
        let row = sqlx::query(
            "SELECT master_key_id, wrapped_data_key, sealed_secret FROM vault_secrets WHERE workspace_id = $1 AND name = $2",
        )
        .bind(workspace_id.to_string())
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            let r = Reader::new(&row, "vault_secrets");
            Ok((
                WrappedDataKey {
                    master_key_id: r.text("master_key_id")?,
                    wrapped_data_key: r.bytes("wrapped_data_key")?,
                },
                r.bytes("sealed_secret")?,
            ))
        })
        .transpose()
    }

    pub async fn vault_delete_secret(
        &self,
        workspace_id: WorkspaceId,
        name: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM vault_secrets WHERE workspace_id = $1 AND name = $2")
            .bind(workspace_id.to_string())
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Up to `limit` sealed rows of `table` whose data key is wrapped by a master key other than
    /// `current_key_id`: what a rotation still has to re-wrap.
    pub async fn vault_rows_to_rewrap(
        &self,
        workspace_id: WorkspaceId,
        table: VaultTable,
        current_key_id: &str,
        limit: i64,
    ) -> Result<Vec<SealedRowRef>, StoreError> {
        let sql = match table {
            VaultTable::Credentials => {
                "SELECT rp_id AS scope, credential_id AS id, master_key_id, wrapped_data_key FROM vault_credentials \
                 WHERE workspace_id = $1 AND master_key_id <> $2 ORDER BY rp_id, credential_id LIMIT $3"
            }
            VaultTable::Secrets => {
                "SELECT name AS scope, master_key_id, wrapped_data_key FROM vault_secrets \
                 WHERE workspace_id = $1 AND master_key_id <> $2 ORDER BY name LIMIT $3"
            }
        };
        let rows = sqlx::query(sql)
            .bind(workspace_id.to_string())
            .bind(current_key_id)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| {
                let r = Reader::new(row, table.name());
                Ok(SealedRowRef {
                    table,
                    scope: r.text("scope")?,
                    id: if table == VaultTable::Credentials {
                        r.bytes("id")?
                    } else {
                        Vec::new()
                    },
                    key: WrappedDataKey {
                        master_key_id: r.text("master_key_id")?,
                        wrapped_data_key: r.bytes("wrapped_data_key")?,
                    },
                })
            })
            .collect()
    }

    /// Replaces a row's wrapped data key, only if it is still the one `row` read (so two
    /// rotations racing cannot overwrite each other's work). `true` when it was replaced.
    pub async fn vault_rewrap(
        &self,
        workspace_id: WorkspaceId,
        row: &SealedRowRef,
        new_key: &WrappedDataKey,
    ) -> Result<bool, StoreError> {
        let query = match row.table {
            VaultTable::Credentials => sqlx::query(
                "UPDATE vault_credentials SET master_key_id = $1, wrapped_data_key = $2 \
                 WHERE workspace_id = $3 AND rp_id = $4 AND credential_id = $5 AND master_key_id = $6 AND wrapped_data_key = $7",
            )
            .bind(new_key.master_key_id.as_str())
            .bind(new_key.wrapped_data_key.as_slice())
            .bind(workspace_id.to_string())
            .bind(row.scope.as_str())
            .bind(row.id.as_slice()),
            VaultTable::Secrets => sqlx::query(
                "UPDATE vault_secrets SET master_key_id = $1, wrapped_data_key = $2 \
                 WHERE workspace_id = $3 AND name = $4 AND master_key_id = $5 AND wrapped_data_key = $6",
            )
            .bind(new_key.master_key_id.as_str())
            .bind(new_key.wrapped_data_key.as_slice())
            .bind(workspace_id.to_string())
            .bind(row.scope.as_str()),
        };
        let done = query
            .bind(row.key.master_key_id.as_str())
            .bind(row.key.wrapped_data_key.as_slice())
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// How many sealed rows each master key id wraps, for `behalf vault status`-style reports.
    pub async fn vault_master_key_usage(
        &self,
        workspace_id: WorkspaceId,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT master_key_id, COUNT(*) AS n FROM (\
               SELECT master_key_id FROM vault_credentials WHERE workspace_id = $1 \
               UNION ALL SELECT master_key_id FROM vault_secrets WHERE workspace_id = $1) AS k \
             GROUP BY master_key_id ORDER BY master_key_id",
        )
        .bind(workspace_id.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let r = Reader::new(row, "vault_credentials");
                Ok((r.text("master_key_id")?, r.int("n")?))
            })
            .collect()
    }
}
