//! Workspace administrators: who signs in to the panel and the API, with which role.
//!
//! An admin is named by their email, kept lowercased in the `username` column, so that sign-in
//! matches however it is typed. Only a password's hash is ever stored (the application layer
//! hashes); it is read back for sign-in alone ([`Store::find_admin`]).

use behalf_domain::{Admin, AdminId, Millis, Role, WorkspaceId, now_millis};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe};

use crate::rows::{Reader, flag};
use crate::{Store, StoreError};

/// An admin's columns, for queries that name the table `a` (most join it to what signs in).
pub(crate) const ADMIN_COLUMNS: &str =
    "a.id, a.workspace_id, a.username, a.role, a.can_edit_users, a.created_at";

pub(crate) fn admin_from(row: &AnyRow) -> Result<Admin, StoreError> {
    let r = Reader::new(row, "admins");
    Ok(Admin {
        id: r.parse("id")?,
        workspace_id: r.parse("workspace_id")?,
        username: r.text("username")?,
        role: r.parse("role")?,
        can_edit_users: r.flag("can_edit_users")?,
        created_at: r.int("created_at")?,
    })
}

/// The form an admin's email is stored and looked up in.
fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// An admin as the admin list shows them (never their password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminAccount {
    pub admin: Admin,
    /// A disabled admin's sessions and tokens stop working, and they cannot sign in.
    pub disabled: bool,
    /// Whether a password is set (an invited admin has none until their setup link is used).
    pub has_password: bool,
    pub updated_at: Millis,
}

const ACCOUNT_COLUMNS: &str = "a.id, a.workspace_id, a.username, a.role, a.can_edit_users, \
     a.created_at, a.disabled, a.updated_at, \
     CASE WHEN a.password_hash IS NULL THEN 0 ELSE 1 END AS has_password";

fn account_from(row: &AnyRow) -> Result<AdminAccount, StoreError> {
    let r = Reader::new(row, "admins");
    Ok(AdminAccount {
        admin: admin_from(row)?,
        disabled: r.flag("disabled")?,
        has_password: r.flag("has_password")?,
        updated_at: r.int("updated_at")?,
    })
}

fn not_found(id: AdminId) -> StoreError {
    StoreError::NotFound {
        kind: "admin",
        key: id.to_string(),
    }
}

impl Store {
    /// Creates an admin named by `email` (stored lowercased). An email already taken in the
    /// workspace, in any case, is a [`StoreError::UniqueViolation`].
    pub async fn create_admin(
        &self,
        workspace_id: WorkspaceId,
        email: &str,
        role: Role,
        can_edit_users: bool,
        password_hash: Option<&str>,
    ) -> Result<Admin, StoreError> {
        let now = now_millis();
        let row = sqlx::query(
            "INSERT INTO admins (id, workspace_id, username, role, can_edit_users, password_hash, \
             disabled, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $7) \
             RETURNING id, workspace_id, username, role, can_edit_users, created_at",
        )
        .bind(AdminId::new().to_string())
        .bind(workspace_id.to_string())
        .bind(email_key(email))
        .bind(role.as_str())
        .bind(flag(can_edit_users))
        .bind(password_hash)
        .bind(now)
        .fetch_one(self.pool())
        .await?;
        admin_from(&row)
    }

    /// The admin with this email (any case) and their password hash, for sign-in only. A
    /// disabled admin is not found: they cannot sign in.
    pub async fn find_admin(
        &self,
        workspace_id: WorkspaceId,
        email: &str,
    ) -> Result<Option<(Admin, Option<String>)>, StoreError> {
        let sql = format!(
            "SELECT {ADMIN_COLUMNS}, a.password_hash FROM admins a \
             WHERE a.workspace_id = $1 AND a.username = $2 AND a.disabled = 0"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(workspace_id.to_string())
            .bind(email_key(email))
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| {
            let hash = Reader::new(&row, "admins").opt_text("password_hash")?;
            Ok((admin_from(&row)?, hash))
        })
        .transpose()
    }

    pub async fn get_admin(&self, id: AdminId) -> Result<AdminAccount, StoreError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM admins a WHERE a.id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref()
            .map(account_from)
            .transpose()?
            .ok_or_else(|| not_found(id))
    }

    /// The workspace's admins by email.
    pub async fn list_admins(
        &self,
        workspace_id: WorkspaceId,
    ) -> Result<Vec<AdminAccount>, StoreError> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM admins a WHERE a.workspace_id = $1 ORDER BY a.username"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(workspace_id.to_string())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(account_from).collect()
    }

    /// Replaces the admin's password hash.
    pub async fn set_admin_password_hash(
        &self,
        workspace_id: WorkspaceId,
        id: AdminId,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        self.update_admin(workspace_id, id, "password_hash = $4", |q| {
            q.bind(password_hash.to_owned())
        })
        .await
    }

    pub async fn set_admin_role(
        &self,
        workspace_id: WorkspaceId,
        id: AdminId,
        role: Role,
        can_edit_users: bool,
    ) -> Result<(), StoreError> {
        self.update_admin(workspace_id, id, "role = $4, can_edit_users = $5", |q| {
            q.bind(role.as_str()).bind(flag(can_edit_users))
        })
        .await
    }

    /// Disables (or enables again) an admin. Their sessions and tokens are refused while they
    /// are disabled, without being revoked: enabling them again restores them.
    pub async fn set_admin_disabled(
        &self,
        workspace_id: WorkspaceId,
        id: AdminId,
        disabled: bool,
    ) -> Result<(), StoreError> {
        self.update_admin(workspace_id, id, "disabled = $4", |q| {
            q.bind(flag(disabled))
        })
        .await
    }

    /// Deletes an admin with their sessions, tokens, setup links, approved device logins and
    /// idempotency keys (the database cascades). Their events keep naming them.
    pub async fn delete_admin(
        &self,
        workspace_id: WorkspaceId,
        id: AdminId,
    ) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM admins WHERE id = $1 AND workspace_id = $2")
            .bind(id.to_string())
            .bind(workspace_id.to_string())
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(not_found(id));
        }
        Ok(())
    }

    /// How many owners of the workspace are not disabled, so that the application can refuse
    /// to remove, demote or disable the last one.
    pub async fn count_owners(&self, workspace_id: WorkspaceId) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM admins WHERE workspace_id = $1 AND role = 'owner' AND disabled = 0",
        )
        .bind(workspace_id.to_string())
        .fetch_one(self.pool())
        .await?)
    }

    /// `UPDATE admins SET {set}` (and `updated_at`) on the admin `id` of the workspace; `set`'s
    /// parameters start at `$4` and are bound by `bind`.
    async fn update_admin<'q>(
        &self,
        workspace_id: WorkspaceId,
        id: AdminId,
        set: &'static str,
        bind: impl FnOnce(Query<'q, Any, AnyArguments>) -> Query<'q, Any, AnyArguments>,
    ) -> Result<(), StoreError> {
        let sql =
            format!("UPDATE admins SET updated_at = $1, {set} WHERE id = $2 AND workspace_id = $3");
        let query = sqlx::query(AssertSqlSafe(sql))
            .bind(now_millis())
            .bind(id.to_string())
            .bind(workspace_id.to_string());
        let done = bind(query).execute(self.pool()).await?;
        if done.rows_affected() == 0 {
            return Err(not_found(id));
        }
        Ok(())
    }
}
