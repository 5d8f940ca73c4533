//! What the panel and the API read beside the queue: whether a user or group may be written to
//! Entra ID (and why not, in words), a group's sync state, the group list, a user by UPN.

use behalf_domain::{ConnectionId, ConnectionKind, DirectoryConnection, Group, GroupId, Upn, User};
use behalf_store::{DirectoryWrite, GroupPage, GroupQuery};

use super::SyncState;
use crate::{AppError, Reader};

/// Whether Behalf may write a user's or group's changes to Entra ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Writability {
    /// Its connection is an Entra ID connection marked writable.
    Writable { connection: String },
    /// Its connection is read-only (the default): Behalf only imports from it.
    ReadOnly { connection: String },
    /// A SCIM connection: the identity provider pushes it; Behalf writes only to Entra ID.
    Scim { connection: String },
    /// Made in Behalf, in no directory: there is nothing in Entra ID to change.
    NoDirectory,
}

impl Writability {
    pub fn is_writable(&self) -> bool {
        matches!(self, Writability::Writable { .. })
    }

    /// Why Behalf does not write it, in one line; None when it does.
    pub fn why_not(&self) -> Option<String> {
        match self {
            Writability::Writable { .. } => None,
            Writability::ReadOnly { connection } => Some(format!(
                "It comes from the connection {connection}, which is read-only: Behalf imports from it and writes nothing back until an admin marks it writable (Directory → Writes to Entra ID)."
            )),
            Writability::Scim { connection } => Some(format!(
                "It comes from the SCIM connection {connection}: the identity provider pushes its changes, and Behalf writes only to Entra ID connections."
            )),
            Writability::NoDirectory => Some(
                "It was made in Behalf outside any directory connection: there is nothing in Entra ID to change.".into(),
            ),
        }
    }
}

/// A directory connection and whether Behalf writes to it.
#[derive(Debug, Clone)]
pub struct ConnectionWritability {
    pub connection: DirectoryConnection,
    pub writable: bool,
}

impl Reader<'_> {
    /// Whether changes to something of `connection` reach Entra ID.
    pub async fn writability(
        &self,
        connection: Option<ConnectionId>,
    ) -> Result<Writability, AppError> {
        let Some(id) = connection else {
            return Ok(Writability::NoDirectory);
        };
        let store = self.app.store();
        let c = store.get_connection(id).await?;
        Ok(match c.kind {
            ConnectionKind::Scim => Writability::Scim { connection: c.name },
            ConnectionKind::EntraId if store.connection_writable(id).await? => {
                Writability::Writable { connection: c.name }
            }
            ConnectionKind::EntraId => Writability::ReadOnly { connection: c.name },
        })
    }

    /// The workspace's connections, each with whether Behalf writes to it.
    pub async fn connection_writability(&self) -> Result<Vec<ConnectionWritability>, AppError> {
        let store = self.app.store();
        let mut out = Vec::new();
        for connection in store.list_connections(self.app.workspace().id).await? {
            let writable = store.connection_writable(connection.id).await?;
            out.push(ConnectionWritability {
                connection,
                writable,
            });
        }
        Ok(out)
    }

    /// The connection new users and groups are created in, if one is writable.
    pub async fn writable_connection(&self) -> Result<Option<DirectoryConnection>, AppError> {
        Ok(self
            .app
            .store()
            .writable_connection(self.app.workspace().id)
            .await?)
    }

    /// The group, if it belongs to this workspace (else not found, as if it did not exist).
    pub async fn directory_group(&self, id: GroupId) -> Result<Group, AppError> {
        let group = self.app.store().get_group(id).await?;
        if group.workspace_id != self.app.workspace().id {
            return Err(AppError::NotFound {
                what: "group",
                key: id.to_string(),
            });
        }
        Ok(group)
    }

    /// Whether a group's changes (its creation, its members, its deletion) have reached Entra
    /// ID, with its writes.
    pub async fn group_sync_state(
        &self,
        id: GroupId,
    ) -> Result<(SyncState, Vec<DirectoryWrite>), AppError> {
        self.directory_group(id).await?;
        let writes = self.app.store().writes_of(None, Some(id)).await?;
        Ok((SyncState::of(&writes), writes))
    }

    /// One page of the workspace's groups whose name contains the search, in name order.
    pub async fn search_groups(&self, query: &GroupQuery) -> Result<GroupPage, AppError> {
        Ok(self
            .app
            .store()
            .search_groups(self.app.workspace().id, query)
            .await?)
    }

    /// The workspace's user with this UPN (in any case).
    pub async fn user_by_upn(&self, upn: &str) -> Result<User, AppError> {
        let parsed = Upn::parse(upn)?;
        self.app
            .store()
            .find_user_by_upn(self.app.workspace().id, &parsed)
            .await?
            .ok_or_else(|| AppError::NotFound {
                what: "user",
                key: parsed.to_string(),
            })
    }
}
