//! Directory connections and their sync position.

use behalf_domain::{ConnectionId, ConnectionKind, DirectoryConnection, WorkspaceId, now_millis};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

use crate::rows::Reader;
use crate::{Store, StoreError};

const CONNECTION_COLUMNS: &str = "id, workspace_id, kind, name, tenant_id, client_id, graph_base_url, \
                                  login_base_url, users_delta_link, groups_delta_link, created_at, updated_at";

fn connection_from(row: &AnyRow) -> Result<DirectoryConnection, StoreError> {
    let r = Reader::new(row, "directory_connections");
    Ok(DirectoryConnection {
        id: r.parse("id")?,
        workspace_id: r.parse("workspace_id")?,
        kind: r.parse("kind")?,
        name: r.text("name")?,
        tenant_id: r.opt_text("tenant_id")?,
        client_id: r.opt_text("client_id")?,
        graph_base_url: r.opt_text("graph_base_url")?,
        login_base_url: r.opt_text("login_base_url")?,
        users_delta_link: r.opt_text("users_delta_link")?,
        groups_delta_link: r.opt_text("groups_delta_link")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
    })
}

/// Where a connection reaches its directory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectionTarget {
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub graph_base_url: Option<String>,
    pub login_base_url: Option<String>,
}

impl Store {
    /// The workspace's directory connections, by name.
    pub async fn list_connections(
        &self,
        workspace_id: WorkspaceId,
    ) -> Result<Vec<DirectoryConnection>, StoreError> {
        let sql = format!(
            "SELECT {CONNECTION_COLUMNS} FROM directory_connections WHERE workspace_id = $1 ORDER BY name"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(workspace_id.to_string())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(connection_from).collect()
    }

    /// The connection named `name`, created or re-pointed at `target`. When the target changes
    /// (another tenant or cloud), the saved delta links no longer apply and are dropped.
    pub async fn ensure_connection(
        &self,
        workspace_id: WorkspaceId,
        kind: ConnectionKind,
        name: &str,
        target: &ConnectionTarget,
    ) -> Result<DirectoryConnection, StoreError> {
        let now = now_millis();
        let sql = format!(
            "INSERT INTO directory_connections (id, workspace_id, kind, name, tenant_id, client_id, graph_base_url, \
             login_base_url, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
             ON CONFLICT (workspace_id, name) DO UPDATE SET \
             users_delta_link = CASE WHEN directory_connections.tenant_id IS NOT DISTINCT FROM excluded.tenant_id \
                AND directory_connections.graph_base_url IS NOT DISTINCT FROM excluded.graph_base_url \
                THEN directory_connections.users_delta_link ELSE NULL END, \
             groups_delta_link = CASE WHEN directory_connections.tenant_id IS NOT DISTINCT FROM excluded.tenant_id \
                AND directory_connections.graph_base_url IS NOT DISTINCT FROM excluded.graph_base_url \
                THEN directory_connections.groups_delta_link ELSE NULL END, \
             kind = excluded.kind, tenant_id = excluded.tenant_id, client_id = excluded.client_id, \
             graph_base_url = excluded.graph_base_url, login_base_url = excluded.login_base_url, \
             updated_at = excluded.updated_at RETURNING {CONNECTION_COLUMNS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(ConnectionId::new().to_string())
            .bind(workspace_id.to_string())
            .bind(kind.as_str())
            .bind(name)
            .bind(target.tenant_id.as_deref())
            .bind(target.client_id.as_deref())
            .bind(target.graph_base_url.as_deref())
            .bind(target.login_base_url.as_deref())
            .bind(now)
            .fetch_one(self.pool())
            .await?;
        connection_from(&row)
    }

    pub async fn get_connection(
        &self,
        id: ConnectionId,
    ) -> Result<DirectoryConnection, StoreError> {
        let sql = format!("SELECT {CONNECTION_COLUMNS} FROM directory_connections WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref()
            .map(connection_from)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound {
                kind: "directory connection",
                key: id.to_string(),
            })
    }

    /// Saves where the next delta round starts. `None` leaves a link as it is.
    pub async fn save_delta_links(
        &self,
        id: ConnectionId,
        users: Option<&str>,
        groups: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE directory_connections SET users_delta_link = COALESCE($1, users_delta_link), \
             groups_delta_link = COALESCE($2, groups_delta_link), updated_at = $3 WHERE id = $4",
        )
        .bind(users)
        .bind(groups)
        .bind(now_millis())
        .bind(id.to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
