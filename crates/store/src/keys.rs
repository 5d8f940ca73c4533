//! Security keys (where a passkey's private key lives) and passkeys (a credential at an RP).

use std::collections::HashMap;

use behalf_domain::{
    Passkey, PasskeyId, PasskeyState, SecurityKey, SecurityKeyId, SecurityKeyKind,
    SecurityKeyState, UserId, WorkspaceId,
};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

use crate::rows::Reader;
use crate::{Store, StoreError, WriteSet};

const KEY_COLUMNS: &str = "id, workspace_id, user_id, kind, state, label, created_at, updated_at";
const PASSKEY_COLUMNS: &str = "id, workspace_id, user_id, security_key_id, rp_id, credential_id, public_key_cose, \
                               aaguid, rp_method_id, state, created_by, created_at, registered_at, revoked_at";

fn key_from(row: &AnyRow) -> Result<SecurityKey, StoreError> {
    let r = Reader::new(row, "security_keys");
    Ok(SecurityKey {
        id: r.parse("id")?,
        workspace_id: r.parse("workspace_id")?,
        user_id: r.parse("user_id")?,
        kind: r.parse("kind")?,
        state: r.parse("state")?,
        label: r.text("label")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
    })
}

pub(crate) fn passkey_from(row: &AnyRow) -> Result<Passkey, StoreError> {
    let r = Reader::new(row, "passkeys");
    Ok(Passkey {
        id: r.parse("id")?,
        workspace_id: r.parse("workspace_id")?,
        user_id: r.parse("user_id")?,
        security_key_id: r.parse("security_key_id")?,
        rp_id: r.text("rp_id")?,
        credential_id: r.bytes("credential_id")?,
        public_key_cose: r.bytes("public_key_cose")?,
        aaguid: r.text("aaguid")?,
        rp_method_id: r.opt_text("rp_method_id")?,
        state: r.parse("state")?,
        created_by: r.text("created_by")?,
        created_at: r.int("created_at")?,
        registered_at: r.opt_int("registered_at")?,
        revoked_at: r.opt_int("revoked_at")?,
    })
}

/// A passkey about to be registered: its credential already exists in the vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPasskey {
    pub id: PasskeyId,
    pub workspace_id: WorkspaceId,
    pub user_id: UserId,
    pub security_key_id: SecurityKeyId,
    pub rp_id: String,
    pub credential_id: Vec<u8>,
    pub public_key_cose: Vec<u8>,
    pub aaguid: String,
    pub created_by: String,
}

impl Store {
    /// The user's security key of `kind` that is not revoked, assigning a new one if there is none.
    pub async fn assign_security_key(
        &self,
        workspace_id: WorkspaceId,
        user_id: UserId,
        kind: SecurityKeyKind,
        label: &str,
    ) -> Result<SecurityKey, StoreError> {
        if let Some(key) = self.current_security_key(user_id, kind).await? {
            return Ok(key);
        }
        let mut set = WriteSet::new();
        let key = set.assign_security_key(workspace_id, user_id, kind, label);
        self.commit(set).await?;
        Ok(key)
    }

    /// The user's newest assigned or active key of `kind`.
    pub async fn current_security_key(
        &self,
        user_id: UserId,
        kind: SecurityKeyKind,
    ) -> Result<Option<SecurityKey>, StoreError> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM security_keys WHERE user_id = $1 AND kind = $2 AND state <> 'revoked' \
             ORDER BY created_at DESC, id DESC LIMIT 1"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(user_id.to_string())
            .bind(kind.as_str())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(key_from).transpose()
    }

    /// [`Store::current_security_key`] of each of these users that has one.
    pub async fn current_security_keys(
        &self,
        user_ids: &[UserId],
        kind: SecurityKeyKind,
    ) -> Result<HashMap<UserId, SecurityKey>, StoreError> {
        let mut out = HashMap::with_capacity(user_ids.len());
        for chunk in user_ids.chunks(500) {
            let sql = format!(
                "SELECT {KEY_COLUMNS} FROM security_keys WHERE kind = $1 AND state <> 'revoked' \
                 AND user_id IN ({}) ORDER BY created_at, id",
                crate::placeholders(2, chunk.len())
            );
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(kind.as_str());
            for id in chunk {
                query = query.bind(id.to_string());
            }
            for row in query.fetch_all(self.pool()).await? {
                // Oldest first: the newest of a user's keys is inserted last and wins.
                let key = key_from(&row)?;
                out.insert(key.user_id, key);
            }
        }
        Ok(out)
    }

    pub async fn security_keys_of(&self, user_id: UserId) -> Result<Vec<SecurityKey>, StoreError> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM security_keys WHERE user_id = $1 ORDER BY created_at, id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(user_id.to_string())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(key_from).collect()
    }

    pub async fn set_security_key_state(
        &self,
        id: SecurityKeyId,
        state: SecurityKeyState,
    ) -> Result<(), StoreError> {
        let mut set = WriteSet::new();
        set.set_security_key_state(id, state);
        self.commit(set).await
    }

    pub async fn insert_passkey(&self, new: &NewPasskey) -> Result<Passkey, StoreError> {
        let mut set = WriteSet::new();
        let passkey = set.insert_passkey(new);
        self.commit(set).await?;
        Ok(passkey)
    }

    pub async fn get_passkey(&self, id: PasskeyId) -> Result<Passkey, StoreError> {
        let sql = format!("SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref()
            .map(passkey_from)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound {
                kind: "passkey",
                key: id.to_string(),
            })
    }

    /// Records that the RP accepted the passkey, with the RP's own id for it.
    pub async fn mark_passkey_registered(
        &self,
        id: PasskeyId,
        rp_method_id: &str,
    ) -> Result<(), StoreError> {
        let mut set = WriteSet::new();
        set.mark_passkey_registered(id, rp_method_id);
        self.commit(set).await
    }

    pub async fn mark_passkey_revoked(&self, id: PasskeyId) -> Result<(), StoreError> {
        let mut set = WriteSet::new();
        set.mark_passkey_revoked(id);
        self.commit(set).await
    }

    /// The user's passkeys on `rp_id` (all states), oldest first.
    pub async fn passkeys_of(
        &self,
        user_id: UserId,
        rp_id: &str,
    ) -> Result<Vec<Passkey>, StoreError> {
        let sql = format!(
            "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE user_id = $1 AND rp_id = $2 ORDER BY created_at, id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(user_id.to_string())
            .bind(rp_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(passkey_from).collect()
    }

    /// The passkeys on `rp_id` (all states) of each of these users, oldest first.
    pub async fn passkeys_of_users(
        &self,
        user_ids: &[UserId],
        rp_id: &str,
    ) -> Result<HashMap<UserId, Vec<Passkey>>, StoreError> {
        let mut out: HashMap<UserId, Vec<Passkey>> = HashMap::new();
        for chunk in user_ids.chunks(500) {
            let sql = format!(
                "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE rp_id = $1 AND user_id IN ({}) \
                 ORDER BY created_at, id",
                crate::placeholders(2, chunk.len())
            );
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(rp_id);
            for id in chunk {
                query = query.bind(id.to_string());
            }
            for row in query.fetch_all(self.pool()).await? {
                let passkey = passkey_from(&row)?;
                out.entry(passkey.user_id).or_default().push(passkey);
            }
        }
        Ok(out)
    }

    /// Whether any passkey record holds this credential.
    pub async fn passkey_exists(
        &self,
        rp_id: &str,
        credential_id: &[u8],
    ) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM passkeys WHERE rp_id = $1 AND credential_id = $2",
        )
        .bind(rp_id)
        .bind(credential_id.to_vec())
        .fetch_one(self.pool())
        .await?;
        Ok(n > 0)
    }

    pub async fn count_passkeys(
        &self,
        workspace_id: WorkspaceId,
        state: PasskeyState,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM passkeys WHERE workspace_id = $1 AND state = $2",
        )
        .bind(workspace_id.to_string())
        .bind(state.as_str())
        .fetch_one(self.pool())
        .await?)
    }

    /// Every passkey of the user, on every relying party, oldest first.
    pub async fn all_passkeys_of(&self, user_id: UserId) -> Result<Vec<Passkey>, StoreError> {
        let sql = format!(
            "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE user_id = $1 ORDER BY created_at, id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(user_id.to_string())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(passkey_from).collect()
    }

    pub async fn get_security_key(&self, id: SecurityKeyId) -> Result<SecurityKey, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM security_keys WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "security key",
                key: id.to_string(),
            })?;
        key_from(&row)
    }
}
