//! `behalf --server URL login`: a device authorization (RFC 8628 in spirit). The CLI holds a
//! device code (the store keeps its hash) and polls with it; the human types the short user
//! code into the panel, where an admin approves it with a scope. The first poll after the
//! approval gets the admin, once.

use behalf_domain::{Admin, AdminId, DeviceLoginId, Millis, TokenScope, WorkspaceId, now_millis};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

use crate::admins::{ADMIN_COLUMNS, admin_from};
use crate::rows::Reader;
use crate::{Store, StoreError};

/// A device login as the approval page shows it (never the device code's hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceLogin {
    pub id: DeviceLoginId,
    pub workspace_id: WorkspaceId,
    pub user_code: String,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub approved_by: Option<AdminId>,
    pub approved_at: Option<Millis>,
    pub scope: Option<TokenScope>,
    pub consumed_at: Option<Millis>,
}

/// What a poll with a device code finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevicePoll {
    /// No admin has approved it yet.
    Pending,
    /// Approved: this poll consumed it, and the CLI's token may be issued for `admin`.
    Approved { admin: Admin, scope: TokenScope },
    /// Approved by an admin who has been disabled since: it cannot complete.
    Denied,
    /// Its time ran out before a poll consumed it.
    Expired,
    /// An earlier poll consumed it.
    Consumed,
    /// No device login has this code.
    Unknown,
}

const LOGIN_COLUMNS: &str = "id, workspace_id, user_code, created_at, expires_at, approved_by, \
                             approved_at, scope, consumed_at";

fn login_from(row: &AnyRow) -> Result<DeviceLogin, StoreError> {
    let r = Reader::new(row, "device_logins");
    Ok(DeviceLogin {
        id: r.parse("id")?,
        workspace_id: r.parse("workspace_id")?,
        user_code: r.text("user_code")?,
        created_at: r.int("created_at")?,
        expires_at: r.int("expires_at")?,
        approved_by: r.opt_parse("approved_by")?,
        approved_at: r.opt_int("approved_at")?,
        scope: r.opt_parse("scope")?,
        consumed_at: r.opt_int("consumed_at")?,
    })
}

impl Store {
    /// Starts a device login. A `user_code` or device code already in use (even by an expired
    /// login) is a [`StoreError::UniqueViolation`]: the caller draws another.
    pub async fn create_device_login(
        &self,
        workspace_id: WorkspaceId,
        device_code_hash: &str,
        user_code: &str,
        expires_at: Millis,
    ) -> Result<DeviceLogin, StoreError> {
        let sql = format!(
            "INSERT INTO device_logins (id, workspace_id, device_code_hash, user_code, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {LOGIN_COLUMNS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(DeviceLoginId::new().to_string())
            .bind(workspace_id.to_string())
            .bind(device_code_hash)
            .bind(user_code)
            .bind(now_millis())
            .bind(expires_at)
            .fetch_one(self.pool())
            .await?;
        login_from(&row)
    }

    /// The workspace's device login with this user code (compared exactly: the caller
    /// normalises what the human typed), whatever its state.
    pub async fn find_device_login(
        &self,
        workspace_id: WorkspaceId,
        user_code: &str,
    ) -> Result<Option<DeviceLogin>, StoreError> {
        let sql = format!(
            "SELECT {LOGIN_COLUMNS} FROM device_logins WHERE workspace_id = $1 AND user_code = $2"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(workspace_id.to_string())
            .bind(user_code)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(login_from).transpose()
    }

    /// Approves a pending, unexpired device login of the workspace for `admin_id` (an admin of
    /// the same workspace, not disabled) with `scope`. Returns whether it was approved; false
    /// when it was already approved, consumed, expired, or not found.
    pub async fn approve_device_login(
        &self,
        workspace_id: WorkspaceId,
        id: DeviceLoginId,
        admin_id: AdminId,
        scope: TokenScope,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE device_logins SET approved_by = $1, approved_at = $2, scope = $3 \
             WHERE id = $4 AND workspace_id = $5 AND approved_at IS NULL AND consumed_at IS NULL \
             AND expires_at > $2 \
             AND $1 IN (SELECT id FROM admins WHERE workspace_id = $5 AND disabled = 0)",
        )
        .bind(admin_id.to_string())
        .bind(now_millis())
        .bind(scope.as_str())
        .bind(id.to_string())
        .bind(workspace_id.to_string())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// What the device login with this code has come to. An approved one is consumed by this
    /// poll in one conditional UPDATE, so of concurrent polls exactly one sees `Approved`.
    pub async fn poll_device_login(
        &self,
        device_code_hash: &str,
    ) -> Result<DevicePoll, StoreError> {
        let now = now_millis();
        let consumed = sqlx::query(
            "UPDATE device_logins SET consumed_at = $1 WHERE device_code_hash = $2 \
             AND approved_at IS NOT NULL AND consumed_at IS NULL AND expires_at > $1 \
             AND approved_by IN (SELECT id FROM admins WHERE disabled = 0) \
             RETURNING approved_by, scope",
        )
        .bind(now)
        .bind(device_code_hash)
        .fetch_optional(self.pool())
        .await?;
        if let Some(row) = consumed {
            let r = Reader::new(&row, "device_logins");
            let admin_id: AdminId = r.parse("approved_by")?;
            let scope: TokenScope = r.parse("scope")?;
            let sql = format!("SELECT {ADMIN_COLUMNS} FROM admins a WHERE a.id = $1");
            let admin = sqlx::query(AssertSqlSafe(sql))
                .bind(admin_id.to_string())
                .fetch_optional(self.pool())
                .await?;
            // Deleted between the two statements: the approval went with the admin.
            return match admin {
                Some(row) => Ok(DevicePoll::Approved {
                    admin: admin_from(&row)?,
                    scope,
                }),
                None => Ok(DevicePoll::Denied),
            };
        }
        let row = sqlx::query(
            "SELECT d.approved_at, d.consumed_at, d.expires_at, a.disabled AS approver_disabled \
             FROM device_logins d LEFT JOIN admins a ON a.id = d.approved_by WHERE d.device_code_hash = $1",
        )
        .bind(device_code_hash)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(DevicePoll::Unknown);
        };
        let r = Reader::new(&row, "device_logins");
        Ok(if r.opt_int("consumed_at")?.is_some() {
            DevicePoll::Consumed
        } else if r.int("expires_at")? <= now {
            DevicePoll::Expired
        } else if r.opt_int("approved_at")?.is_some() && r.opt_int("approver_disabled")? == Some(1)
        {
            DevicePoll::Denied
        } else {
            // Not approved yet, or approved just after the UPDATE looked: the next poll takes it.
            DevicePoll::Pending
        })
    }
}
