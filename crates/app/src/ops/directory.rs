//! Directory import: users, groups and memberships from Entra ID.

use behalf_directory::{ImportMode, ImportOptions, ImportSummary, Progress};

use crate::{AppError, Operator, graph_settings};

impl Operator<'_> {
    /// Imports from the configured tenant into `connection` (a full round, or `Delta` since the
    /// last one), reporting pages to `progress`.
    pub async fn import(
        &self,
        connection: &str,
        mode: ImportMode,
        progress: &dyn Progress,
    ) -> Result<ImportSummary, AppError> {
        let graph = self.app.directory_graph()?;
        let config = self.app.config();
        let actor = self.graph_actor(&graph.acting);
        let options = ImportOptions {
            workspace: config.workspace.clone(),
            connection: connection.to_owned(),
            target: graph_settings::target(config, &graph.tenant),
            mode,
            actor,
        };
        Ok(behalf_directory::import(self.app.store(), &graph.client, &options, progress).await?)
    }
}

/// A directory connection as the API lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConnectionView {
    pub id: behalf_domain::ConnectionId,
    pub name: String,
    pub kind: behalf_domain::ConnectionKind,
    pub tenant_id: Option<String>,
    pub graph_base_url: Option<String>,
    /// Whether a delta import can continue from the last one.
    pub has_delta_link: bool,
    /// Seconds between the server's delta imports (0: off); the same for every connection.
    pub sync_interval_secs: u64,
    pub updated_at: behalf_domain::Millis,
}

impl crate::Reader<'_> {
    pub async fn connections(&self) -> Result<Vec<ConnectionView>, AppError> {
        let interval = self.app.config().sync.interval_secs;
        let connections = self
            .app
            .store()
            .list_connections(self.app.workspace().id)
            .await?;
        Ok(connections
            .into_iter()
            .map(|c| ConnectionView {
                id: c.id,
                name: c.name,
                kind: c.kind,
                tenant_id: c.tenant_id,
                graph_base_url: c.graph_base_url,
                has_delta_link: c.users_delta_link.is_some(),
                sync_interval_secs: interval,
                updated_at: c.updated_at,
            })
            .collect())
    }
}

impl Operator<'_> {
    /// Checks that Graph answers for the configured tenant: a token, and its permissions.
    pub async fn test_connection(&self) -> Result<Vec<String>, AppError> {
        let graph = self.app.directory_graph()?;
        let permissions = graph.client.token_permissions().await?;
        Ok(permissions
            .map(|p| p.roles.into_iter().chain(p.scopes).collect())
            .unwrap_or_default())
    }
}
