//! Admins' panel sessions. The browser holds the session token and a CSRF token; the store
//! holds their hashes only, so a copy of the database signs no one in.

use behalf_domain::{Admin, AdminId, AdminSession, Millis, SessionId, WorkspaceId, now_millis};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

use crate::admins::{ADMIN_COLUMNS, admin_from};
use crate::rows::Reader;
use crate::{Store, StoreError};

/// How stale `last_seen_at` / `last_used_at` may get before a request writes it again: a busy
/// panel or script would otherwise write a row per request.
pub const TOUCH_INTERVAL_MS: Millis = 60_000;

/// A session about to be created; the hashes are of tokens the browser alone will hold.
#[derive(Debug, Clone, Copy)]
pub struct NewSession<'a> {
    pub workspace_id: WorkspaceId,
    pub admin_id: AdminId,
    pub token_hash: &'a str,
    pub csrf_hash: &'a str,
    pub expires_at: Millis,
    /// The client's address and user agent, shown in the admin's session list.
    pub address: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// A valid session with the admin it signs in, and the hash its requests' CSRF token must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionGrant {
    pub session: AdminSession,
    pub admin: Admin,
    pub csrf_hash: String,
}

fn session_from(row: &AnyRow) -> Result<AdminSession, StoreError> {
    let r = Reader::new(row, "admin_sessions");
    Ok(AdminSession {
        id: r.parse("session_id")?,
        admin_id: r.parse("session_admin_id")?,
        created_at: r.int("session_created_at")?,
        expires_at: r.int("expires_at")?,
        last_seen_at: r.int("last_seen_at")?,
    })
}

/// Whether a `last_seen_at` / `last_used_at` read at `seen` is stale at `now`.
pub(crate) fn needs_touch(seen: Option<Millis>, now: Millis) -> bool {
    seen.is_none_or(|seen| now - seen >= TOUCH_INTERVAL_MS)
}

impl Store {
    pub async fn create_session(&self, new: &NewSession<'_>) -> Result<AdminSession, StoreError> {
        let now = now_millis();
        let id = SessionId::new();
        sqlx::query(
            "INSERT INTO admin_sessions (id, workspace_id, admin_id, token_hash, csrf_hash, created_at, \
             expires_at, last_seen_at, address, user_agent) VALUES ($1, $2, $3, $4, $5, $6, $7, $6, $8, $9)",
        )
        .bind(id.to_string())
        .bind(new.workspace_id.to_string())
        .bind(new.admin_id.to_string())
        .bind(new.token_hash)
        .bind(new.csrf_hash)
        .bind(now)
        .bind(new.expires_at)
        .bind(new.address)
        .bind(new.user_agent)
        .execute(self.pool())
        .await?;
        Ok(AdminSession {
            id,
            admin_id: new.admin_id,
            created_at: now,
            expires_at: new.expires_at,
            last_seen_at: now,
        })
    }

    /// The session whose token hashes to `token_hash`, if it is neither revoked nor expired
    /// and its admin is not disabled.
    pub async fn find_session(&self, token_hash: &str) -> Result<Option<SessionGrant>, StoreError> {
        let sql = format!(
            "SELECT s.id AS session_id, s.admin_id AS session_admin_id, s.created_at AS session_created_at, \
             s.expires_at, s.last_seen_at, s.csrf_hash, {ADMIN_COLUMNS} \
             FROM admin_sessions s JOIN admins a ON a.id = s.admin_id \
             WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 AND a.disabled = 0"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(token_hash)
            .bind(now_millis())
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| {
            Ok(SessionGrant {
                session: session_from(&row)?,
                admin: admin_from(&row)?,
                csrf_hash: Reader::new(&row, "admin_sessions").text("csrf_hash")?,
            })
        })
        .transpose()
    }

    /// Records that the session was used now, unless it was within [`TOUCH_INTERVAL_MS`]: then
    /// nothing is written (nor sent). Returns whether it wrote.
    pub async fn touch_session(&self, session: &AdminSession) -> Result<bool, StoreError> {
        let now = now_millis();
        if !needs_touch(Some(session.last_seen_at), now) {
            return Ok(false);
        }
        // The guard repeats the check so that concurrent requests write once between them.
        let done = sqlx::query(
            "UPDATE admin_sessions SET last_seen_at = $1 WHERE id = $2 AND last_seen_at <= $3",
        )
        .bind(now)
        .bind(session.id.to_string())
        .bind(now - TOUCH_INTERVAL_MS)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Signs one session out. Returns whether it was still signed in.
    pub async fn revoke_session(&self, id: SessionId) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE admin_sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now_millis())
        .bind(id.to_string())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Signs an admin out everywhere (a password change, a suspected theft). Returns how many.
    pub async fn revoke_admin_sessions(&self, admin_id: AdminId) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE admin_sessions SET revoked_at = $1 WHERE admin_id = $2 AND revoked_at IS NULL",
        )
        .bind(now_millis())
        .bind(admin_id.to_string())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }
}
