//! Security keys (where a passkey's private key lives) and passkeys (a credential at an RP).

use behalf_domain::{
    Passkey, PasskeyId, PasskeyState, SecurityKey, SecurityKeyId, SecurityKeyKind,
    SecurityKeyState, UserId, WorkspaceId, now_millis,
};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

use crate::rows::Reader;
use crate::{Store, StoreError};

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
        let now = now_millis();
        let sql = format!(
            "INSERT INTO security_keys (id, workspace_id, user_id, kind, state, label, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'assigned', $5, $6, $6) RETURNING {KEY_COLUMNS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(SecurityKeyId::new().to_string())
            .bind(workspace_id.to_string())
            .bind(user_id.to_string())
            .bind(kind.as_str())
            .bind(label)
            .bind(now)
            .fetch_one(self.pool())
            .await?;
        key_from(&row)
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
        let done =
            sqlx::query("UPDATE security_keys SET state = $1, updated_at = $2 WHERE id = $3")
                .bind(state.as_str())
                .bind(now_millis())
                .bind(id.to_string())
                .execute(self.pool())
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind: "security key",
                key: id.to_string(),
            });
        }
        Ok(())
    }

    pub async fn insert_passkey(&self, new: &NewPasskey) -> Result<Passkey, StoreError> {
        let sql = format!(
            "INSERT INTO passkeys (id, workspace_id, user_id, security_key_id, rp_id, credential_id, public_key_cose, \
             aaguid, state, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'created', $9, $10) \
             RETURNING {PASSKEY_COLUMNS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(new.id.to_string())
            .bind(new.workspace_id.to_string())
            .bind(new.user_id.to_string())
            .bind(new.security_key_id.to_string())
            .bind(new.rp_id.as_str())
            .bind(new.credential_id.clone())
            .bind(new.public_key_cose.clone())
            .bind(new.aaguid.as_str())
            .bind(new.created_by.as_str())
            .bind(now_millis())
            .fetch_one(self.pool())
            .await?;
        passkey_from(&row)
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
        self.set_passkey_state(id, PasskeyState::Registered, Some(rp_method_id))
            .await
    }

    pub async fn mark_passkey_revoked(&self, id: PasskeyId) -> Result<(), StoreError> {
        self.set_passkey_state(id, PasskeyState::Revoked, None)
            .await
    }

    async fn set_passkey_state(
        &self,
        id: PasskeyId,
        state: PasskeyState,
        rp_method_id: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = now_millis();
        let (registered_at, revoked_at) = match state {
            PasskeyState::Created => (None, None),
            PasskeyState::Registered => (Some(now), None),
            PasskeyState::Revoked => (None, Some(now)),
        };
        let done = sqlx::query(
            "UPDATE passkeys SET state = $1, rp_method_id = COALESCE($2, rp_method_id), \
             registered_at = COALESCE($3, registered_at), revoked_at = COALESCE($4, revoked_at) WHERE id = $5",
        )
        .bind(state.as_str())
        .bind(rp_method_id)
        .bind(registered_at)
        .bind(revoked_at)
        .bind(id.to_string())
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind: "passkey",
                key: id.to_string(),
            });
        }
        Ok(())
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
}
