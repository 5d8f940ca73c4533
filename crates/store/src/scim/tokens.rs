//! SCIM connections and their bearer tokens. As with API tokens, the store sees only the HMAC
//! of a token the application showed once.

use behalf_domain::{
    ConnectionId, ConnectionKind, DirectoryConnection, Millis, ScimTokenId, WorkspaceId, now_millis,
};
use sqlx::any::AnyRow;

use crate::rows::{Reader, flag};
use crate::sessions::{TOUCH_INTERVAL_MS, needs_touch};
use crate::{Store, StoreError};

/// A valid token: the connection it opens, and whether that connection provisions new users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimTokenGrant {
    pub token_id: ScimTokenId,
    pub workspace_id: WorkspaceId,
    pub connection_id: ConnectionId,
    pub connection_name: String,
    pub auto_provision: bool,
    pub last_used_at: Option<Millis>,
}

/// A token as the token list shows it (never the token or its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimTokenEntry {
    pub id: ScimTokenId,
    pub name: String,
    pub connection_id: ConnectionId,
    pub connection_name: String,
    pub auto_provision: bool,
    pub created_by: String,
    pub created_at: Millis,
    pub last_used_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
}

fn entry_from(row: &AnyRow) -> Result<ScimTokenEntry, StoreError> {
    let r = Reader::new(row, "scim_tokens");
    Ok(ScimTokenEntry {
        id: r.parse("id")?,
        name: r.text("name")?,
        connection_id: r.parse("connection_id")?,
        connection_name: r.text("connection_name")?,
        auto_provision: r.flag("scim_auto_provision")?,
        created_by: r.text("created_by")?,
        created_at: r.int("created_at")?,
        last_used_at: r.opt_int("last_used_at")?,
        revoked_at: r.opt_int("revoked_at")?,
    })
}

const ENTRY_COLUMNS: &str = "t.id, t.name, t.connection_id, c.name AS connection_name, \
     c.scim_auto_provision, t.created_by, t.created_at, t.last_used_at, t.revoked_at";

impl Store {
    /// The SCIM connection named `name`, created if there is none. A connection of that name
    /// that reads Entra ID is not turned into a SCIM one: that is an [`StoreError::InvalidInput`].
    pub async fn ensure_scim_connection(
        &self,
        workspace_id: WorkspaceId,
        name: &str,
    ) -> Result<DirectoryConnection, StoreError> {
        let now = now_millis();
        sqlx::query(
            "INSERT INTO directory_connections (id, workspace_id, kind, name, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (workspace_id, name) DO NOTHING",
        )
        .bind(ConnectionId::new().to_string())
        .bind(workspace_id.to_string())
        .bind(ConnectionKind::Scim.as_str())
        .bind(name)
        .bind(now)
        .execute(self.pool())
        .await?;
        let connection = self
            .list_connections(workspace_id)
            .await?
            .into_iter()
            .find(|c| c.name == name)
            .ok_or_else(|| StoreError::NotFound {
                kind: "directory connection",
                key: name.to_owned(),
            })?;
        if connection.kind != ConnectionKind::Scim {
            return Err(StoreError::InvalidInput {
                field: "name",
                reason: format!(
                    "the connection {name:?} reads {}, not SCIM: choose another name",
                    connection.kind
                ),
            });
        }
        Ok(connection)
    }

    /// Whether a new active user pushed by the connection gets a passkey queued at once.
    pub async fn set_scim_auto_provision(
        &self,
        connection_id: ConnectionId,
        on: bool,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE directory_connections SET scim_auto_provision = $1, updated_at = $2 WHERE id = $3")
            .bind(flag(on))
            .bind(now_millis())
            .bind(connection_id.to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn create_scim_token(
        &self,
        workspace_id: WorkspaceId,
        connection_id: ConnectionId,
        name: &str,
        token_hash: &str,
        created_by: &str,
    ) -> Result<ScimTokenId, StoreError> {
        let id = ScimTokenId::new();
        sqlx::query(
            "INSERT INTO scim_tokens (id, workspace_id, connection_id, name, token_hash, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id.to_string())
        .bind(workspace_id.to_string())
        .bind(connection_id.to_string())
        .bind(name)
        .bind(token_hash)
        .bind(created_by)
        .bind(now_millis())
        .execute(self.pool())
        .await?;
        Ok(id)
    }

    /// The unrevoked token that hashes to `token_hash` (one lookup in its unique index).
    pub async fn find_scim_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<ScimTokenGrant>, StoreError> {
        let row = sqlx::query(
            "SELECT t.id, t.workspace_id, t.connection_id, c.name, c.scim_auto_provision, t.last_used_at \
             FROM scim_tokens t JOIN directory_connections c ON c.id = t.connection_id \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            let r = Reader::new(&row, "scim_tokens");
            Ok(ScimTokenGrant {
                token_id: r.parse("id")?,
                workspace_id: r.parse("workspace_id")?,
                connection_id: r.parse("connection_id")?,
                connection_name: r.text("name")?,
                auto_provision: r.flag("scim_auto_provision")?,
                last_used_at: r.opt_int("last_used_at")?,
            })
        })
        .transpose()
    }

    /// Whether the token is still unrevoked (a cheap re-check for a cached grant).
    pub async fn scim_token_is_live(&self, id: ScimTokenId) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM scim_tokens WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id.to_string())
        .fetch_one(self.pool())
        .await?;
        Ok(n > 0)
    }

    /// Records that the token was used now, unless it was within [`TOUCH_INTERVAL_MS`].
    pub async fn touch_scim_token(
        &self,
        id: ScimTokenId,
        last_used_at: Option<Millis>,
    ) -> Result<bool, StoreError> {
        let now = now_millis();
        if !needs_touch(last_used_at, now) {
            return Ok(false);
        }
        let done = sqlx::query(
            "UPDATE scim_tokens SET last_used_at = $1 WHERE id = $2 \
             AND (last_used_at IS NULL OR last_used_at <= $3)",
        )
        .bind(now)
        .bind(id.to_string())
        .bind(now - TOUCH_INTERVAL_MS)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The workspace's SCIM tokens, newest first, revoked ones included.
    pub async fn list_scim_tokens(
        &self,
        workspace_id: WorkspaceId,
    ) -> Result<Vec<ScimTokenEntry>, StoreError> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM scim_tokens t JOIN directory_connections c ON c.id = t.connection_id \
             WHERE t.workspace_id = $1 ORDER BY t.created_at DESC, t.id DESC"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(workspace_id.to_string())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(entry_from).collect()
    }

    /// Revokes a token of the workspace; false when there is no such unrevoked token.
    pub async fn revoke_scim_token(
        &self,
        workspace_id: WorkspaceId,
        id: ScimTokenId,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE scim_tokens SET revoked_at = $1 WHERE id = $2 AND workspace_id = $3 AND revoked_at IS NULL",
        )
        .bind(now_millis())
        .bind(id.to_string())
        .bind(workspace_id.to_string())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
