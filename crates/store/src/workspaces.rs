//! Workspaces (their administrators are in `admins`).

use behalf_domain::{Workspace, WorkspaceId, now_millis};
use sqlx::any::AnyRow;

use crate::rows::Reader;
use crate::{Store, StoreError};

fn workspace_from(row: &AnyRow) -> Result<Workspace, StoreError> {
    let r = Reader::new(row, "workspaces");
    Ok(Workspace {
        id: r.parse("id")?,
        name: r.text("name")?,
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

    /// Every workspace of the database, by name. One master key file serves them all, so a
    /// key rotation goes through each.
    pub async fn list_workspaces(&self) -> Result<Vec<Workspace>, StoreError> {
        let rows = sqlx::query("SELECT id, name, created_at FROM workspaces ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(workspace_from).collect()
    }
}
