//! API tokens (scripts' and the CLI's bearer tokens) and one-time setup links. As with
//! sessions, the store sees only the hashes of tokens the application showed once.

use behalf_domain::{
    Admin, AdminId, ApiToken, Millis, TokenId, TokenKind, TokenScope, WorkspaceId, now_millis,
};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

use crate::admins::{ADMIN_COLUMNS, admin_from};
use crate::rows::Reader;
use crate::sessions::{TOUCH_INTERVAL_MS, needs_touch};
use crate::{Store, StoreError};

const TOKEN_COLUMNS: &str = "t.id AS token_id, t.admin_id AS token_admin_id, t.name, t.scope, \
     t.kind, t.created_at AS token_created_at, t.expires_at, t.last_used_at, t.revoked_at";

fn token_from(row: &AnyRow) -> Result<ApiToken, StoreError> {
    let r = Reader::new(row, "api_tokens");
    Ok(ApiToken {
        id: r.parse("token_id")?,
        admin_id: r.parse("token_admin_id")?,
        name: r.text("name")?,
        scope: r.parse("scope")?,
        kind: r.parse("kind")?,
        created_at: r.int("token_created_at")?,
        expires_at: r.opt_int("expires_at")?,
        last_used_at: r.opt_int("last_used_at")?,
        revoked_at: r.opt_int("revoked_at")?,
    })
}

/// A token about to be created.
#[derive(Debug, Clone, Copy)]
pub struct NewApiToken<'a> {
    pub workspace_id: WorkspaceId,
    pub admin_id: AdminId,
    pub name: &'a str,
    pub scope: TokenScope,
    pub kind: TokenKind,
    pub token_hash: &'a str,
    /// None: valid until revoked.
    pub expires_at: Option<Millis>,
}

/// A valid token with the admin it acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub token: ApiToken,
    pub admin: Admin,
}

/// A token as the token list shows it: who it acts as, never its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenEntry {
    pub token: ApiToken,
    pub admin_email: String,
}

impl Store {
    pub async fn create_api_token(&self, new: &NewApiToken<'_>) -> Result<ApiToken, StoreError> {
        let now = now_millis();
        let id = TokenId::new();
        sqlx::query(
            "INSERT INTO api_tokens (id, workspace_id, admin_id, name, scope, kind, token_hash, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id.to_string())
        .bind(new.workspace_id.to_string())
        .bind(new.admin_id.to_string())
        .bind(new.name)
        .bind(new.scope.as_str())
        .bind(new.kind.as_str())
        .bind(new.token_hash)
        .bind(now)
        .bind(new.expires_at)
        .execute(self.pool())
        .await?;
        Ok(ApiToken {
            id,
            admin_id: new.admin_id,
            name: new.name.to_owned(),
            scope: new.scope,
            kind: new.kind,
            created_at: now,
            expires_at: new.expires_at,
            last_used_at: None,
            revoked_at: None,
        })
    }

    /// The token that hashes to `token_hash`, if it is neither revoked nor expired and its
    /// admin is not disabled.
    pub async fn find_api_token(&self, token_hash: &str) -> Result<Option<TokenGrant>, StoreError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS}, {ADMIN_COLUMNS} FROM api_tokens t JOIN admins a ON a.id = t.admin_id \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2) \
             AND a.disabled = 0"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(token_hash)
            .bind(now_millis())
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| {
            Ok(TokenGrant {
                token: token_from(&row)?,
                admin: admin_from(&row)?,
            })
        })
        .transpose()
    }

    /// Records that the token was used now, unless it was within [`TOUCH_INTERVAL_MS`] (then
    /// nothing is sent). Returns whether it wrote.
    pub async fn touch_api_token(&self, token: &ApiToken) -> Result<bool, StoreError> {
        let now = now_millis();
        if !needs_touch(token.last_used_at, now) {
            return Ok(false);
        }
        let done = sqlx::query(
            "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2 \
             AND (last_used_at IS NULL OR last_used_at <= $3)",
        )
        .bind(now)
        .bind(token.id.to_string())
        .bind(now - TOUCH_INTERVAL_MS)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The workspace's tokens, newest first, revoked and expired ones included (the list says
    /// what each was), with the email of the admin each acts as.
    pub async fn list_api_tokens(
        &self,
        workspace_id: WorkspaceId,
    ) -> Result<Vec<ApiTokenEntry>, StoreError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS}, a.username FROM api_tokens t JOIN admins a ON a.id = t.admin_id \
             WHERE t.workspace_id = $1 ORDER BY t.created_at DESC, t.id DESC"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(workspace_id.to_string())
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ApiTokenEntry {
                    token: token_from(row)?,
                    admin_email: Reader::new(row, "admins").text("username")?,
                })
            })
            .collect()
    }

    /// Revokes a token of the workspace. Returns whether it was still valid-or-expired (false:
    /// no such token in the workspace, or already revoked).
    pub async fn revoke_api_token(
        &self,
        workspace_id: WorkspaceId,
        id: TokenId,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND workspace_id = $3 AND revoked_at IS NULL",
        )
        .bind(now_millis())
        .bind(id.to_string())
        .bind(workspace_id.to_string())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records a one-time setup link for `admin_id`, valid until `expires_at`.
    pub async fn create_setup_token(
        &self,
        workspace_id: WorkspaceId,
        admin_id: AdminId,
        token_hash: &str,
        expires_at: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO setup_tokens (id, workspace_id, admin_id, token_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(workspace_id.to_string())
        .bind(admin_id.to_string())
        .bind(token_hash)
        .bind(now_millis())
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Uses up the setup link that hashes to `token_hash`: the admin it lets set a password,
    /// or None when it is unknown, used, expired, or its admin is disabled. One conditional
    /// UPDATE, so of concurrent requests with the same link exactly one gets the admin.
    pub async fn consume_setup_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<AdminId>, StoreError> {
        let admin: Option<String> = sqlx::query_scalar(
            "UPDATE setup_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL \
             AND expires_at > $1 AND admin_id IN (SELECT id FROM admins WHERE disabled = 0) \
             RETURNING admin_id",
        )
        .bind(now_millis())
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?;
        admin
            .map(|id| {
                id.parse()
                    .map_err(|e| crate::error::corrupt("setup_tokens", e))
            })
            .transpose()
    }
}
