//! Password-reset links: a one-time link mailed to a user, to the page where they set a new
//! password for Entra ID. The store keeps the link's token only as the HMAC the application
//! layer computed (`token_hash`), never the token and never a password.
//!
//! Every statement takes `now`, so expiry is tested by passing a later time, not by waiting.

use behalf_domain::{Millis, UserId, WorkspaceId};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

use crate::rows::Reader;
use crate::{Store, StoreError};

/// A reset link as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetLink {
    pub id: String,
    pub workspace_id: WorkspaceId,
    pub user_id: UserId,
    pub created_at: Millis,
    pub expires_at: Millis,
    /// When Entra ID accepted a password set through it (or, while that write is under way,
    /// when it was redeemed for it).
    pub used_at: Option<Millis>,
    /// Passwords Entra ID refused through this link.
    pub attempts: i64,
}

const COLUMNS: &str = "id, workspace_id, user_id, created_at, expires_at, used_at, attempts";

fn link_from(row: &AnyRow) -> Result<ResetLink, StoreError> {
    let r = Reader::new(row, "password_reset_links");
    Ok(ResetLink {
        id: r.text("id")?,
        workspace_id: r.parse("workspace_id")?,
        user_id: r.parse("user_id")?,
        created_at: r.int("created_at")?,
        expires_at: r.int("expires_at")?,
        used_at: r.opt_int("used_at")?,
        attempts: r.int("attempts")?,
    })
}

impl Store {
    /// Records a reset link for `user_id`, made at `now`, valid until `expires_at`.
    pub async fn create_reset_link(
        &self,
        workspace_id: WorkspaceId,
        user_id: UserId,
        token_hash: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<ResetLink, StoreError> {
        let sql = format!(
            "INSERT INTO password_reset_links (id, workspace_id, user_id, token_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(workspace_id.to_string())
            .bind(user_id.to_string())
            .bind(token_hash)
            .bind(now)
            .bind(expires_at)
            .fetch_one(self.pool())
            .await?;
        link_from(&row)
    }

    /// The workspace's link that hashes to `token_hash`, whatever its state (the page says
    /// which: expired, used, or ready).
    pub async fn find_reset_link(
        &self,
        workspace_id: WorkspaceId,
        token_hash: &str,
    ) -> Result<Option<ResetLink>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM password_reset_links WHERE workspace_id = $1 AND token_hash = $2"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(workspace_id.to_string())
            .bind(token_hash)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(link_from).transpose()
    }

    /// Uses up the link that hashes to `token_hash` at `now`: the link (with its user), or None
    /// when it is unknown, used, expired at `now`, or has had `max_attempts` refused passwords.
    /// One conditional UPDATE, so of concurrent requests with the same link exactly one gets it.
    pub async fn redeem_reset_link(
        &self,
        workspace_id: WorkspaceId,
        token_hash: &str,
        now: Millis,
        max_attempts: i64,
    ) -> Result<Option<ResetLink>, StoreError> {
        let sql = format!(
            "UPDATE password_reset_links SET used_at = $1 \
             WHERE workspace_id = $2 AND token_hash = $3 AND used_at IS NULL AND expires_at > $1 \
             AND attempts < $4 RETURNING {COLUMNS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(now)
            .bind(workspace_id.to_string())
            .bind(token_hash)
            .bind(max_attempts)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(link_from).transpose()
    }

    /// Gives back a link redeemed at `redeemed_at` whose password Entra ID refused: unused
    /// again, one attempt more. Only the redemption that took it gives it back (`used_at` must
    /// still be `redeemed_at`); returns whether it did.
    pub async fn release_reset_link(
        &self,
        id: &str,
        redeemed_at: Millis,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE password_reset_links SET used_at = NULL, attempts = attempts + 1 \
             WHERE id = $1 AND used_at = $2",
        )
        .bind(id)
        .bind(redeemed_at)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
