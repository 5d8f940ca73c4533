//! Workspaces and their administrators.

use behalf_domain::{Admin, AdminId, Role, Workspace, WorkspaceId, now_millis};
use sqlx::any::AnyRow;

use crate::rows::{Reader, flag};
use crate::{Store, StoreError};

fn workspace_from(row: &AnyRow) -> Result<Workspace, StoreError> {
    let r = Reader::new(row, "workspaces");
    Ok(Workspace {
        id: r.parse("id")?,
        name: r.text("name")?,
        created_at: r.int("created_at")?,
    })
}

fn admin_from(row: &AnyRow) -> Result<Admin, StoreError> {
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

impl Store {
    /// The workspace named `name`, created on first use. The CLI works in one workspace.
    pub async fn ensure_workspace(&self, name: &str) -> Result<Workspace, StoreError> {
        sqlx::query("INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
            .bind(WorkspaceId::new().to_string())
            .bind(name)
            .bind(now_millis())
            .execute(self.pool())
            .await?;
        let row = sqlx::query("SELECT id, name, created_at FROM workspaces WHERE name = $1")
            .bind(name)
            .fetch_one(self.pool())
            .await?;
        workspace_from(&row)
    }

    pub async fn create_admin(
        &self,
        workspace_id: WorkspaceId,
        username: &str,
        role: Role,
        can_edit_users: bool,
        password_hash: Option<&str>,
    ) -> Result<Admin, StoreError> {
        let row = sqlx::query(
            "INSERT INTO admins (id, workspace_id, username, role, can_edit_users, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             RETURNING id, workspace_id, username, role, can_edit_users, created_at",
        )
        .bind(AdminId::new().to_string())
        .bind(workspace_id.to_string())
        .bind(username)
        .bind(role.as_str())
        .bind(flag(can_edit_users))
        .bind(password_hash)
        .bind(now_millis())
        .fetch_one(self.pool())
        .await?;
        admin_from(&row)
    }

    /// The admin and its password hash (for sign-in only).
    pub async fn find_admin(
        &self,
        workspace_id: WorkspaceId,
        username: &str,
    ) -> Result<Option<(Admin, Option<String>)>, StoreError> {
        let row = sqlx::query(
            "SELECT id, workspace_id, username, role, can_edit_users, created_at, password_hash \
             FROM admins WHERE workspace_id = $1 AND username = $2",
        )
        .bind(workspace_id.to_string())
        .bind(username)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            let hash = Reader::new(&row, "admins").opt_text("password_hash")?;
            Ok((admin_from(&row)?, hash))
        })
        .transpose()
    }
}
