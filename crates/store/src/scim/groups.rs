//! Groups pushed by SCIM: rows of `directory_groups` with their SCIM columns; members are rows
//! of `group_members`, never copied into the stored resource.

use std::collections::{HashMap, HashSet};

use behalf_domain::{ConnectionId, Group, GroupId, NewEvent, UserId, WorkspaceId, now_millis};
use sqlx::{Any, AssertSqlSafe, Transaction};

use super::query::{Resource, ScimQuery};
use super::{SCIM_COLUMNS, ScimPage, ScimWrite, insert_event};
use crate::groups::{GROUP_COLUMNS, group_from};
use crate::rows::{Columns, Reader};
use crate::{Store, StoreError};

/// A member as a group's `members` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimMember {
    pub user_id: UserId,
    /// The user's display name (the `display` sub-attribute).
    pub display: String,
}

/// What a SCIM create or replace writes (`resource` without `id`, `meta` and `members`).
#[derive(Debug, Clone, Copy)]
pub struct ScimGroupWrite<'a> {
    pub display_name: &'a str,
    pub external_id: Option<&'a str>,
    pub resource: &'a serde_json::Value,
}

/// A SCIM group as stored; `members` when they were asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ScimGroupRow {
    pub group: Group,
    pub scim_external_id: Option<String>,
    pub version: i64,
    pub resource: serde_json::Value,
    pub members: Option<Vec<ScimMember>>,
}

/// How a write changes a group's members.
#[derive(Debug, Clone, Copy)]
pub enum ScimMembersChange<'a> {
    Keep,
    /// Exactly these (PUT, or a PATCH that replaced the list).
    Replace(&'a [UserId]),
    /// These added and those removed (Entra's member PATCHes).
    Edit {
        add: &'a [UserId],
        remove: &'a [UserId],
    },
}

fn row_from<R: Columns>(row: &R) -> Result<ScimGroupRow, StoreError> {
    let r = Reader::new(row, "directory_groups");
    Ok(ScimGroupRow {
        group: group_from(row)?,
        scim_external_id: r.opt_text("scim_external_id")?,
        version: r.int("scim_version")?,
        resource: match r.opt_text("scim_resource")? {
            Some(_) => r.json("scim_resource")?,
            None => serde_json::Value::Object(Default::default()),
        },
        members: None,
    })
}

impl super::FromColumns for ScimGroupRow {
    fn from_columns<R: Columns>(row: &R) -> Result<Self, StoreError> {
        row_from(row)
    }
}

async fn fetch_group(
    tx: &mut Transaction<'_, Any>,
    connection: ConnectionId,
    id: GroupId,
) -> Result<Option<ScimGroupRow>, StoreError> {
    let sql = format!(
        "SELECT {GROUP_COLUMNS}, {SCIM_COLUMNS} FROM directory_groups WHERE id = $1 AND connection_id = $2"
    );
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(id.to_string())
        .bind(connection.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(row_from).transpose()
}

/// Adds `users` to `group`; a user who is not a live user of the connection is refused,
/// naming the first such id.
async fn add_members(
    tx: &mut Transaction<'_, Any>,
    connection: ConnectionId,
    group: GroupId,
    users: &[UserId],
) -> Result<(), StoreError> {
    for chunk in users.chunks(400) {
        let sql = format!(
            "SELECT id FROM users WHERE connection_id = $1 AND scim_deleted_at IS NULL AND id IN ({})",
            crate::placeholders(2, chunk.len())
        );
        let mut q =
            sqlx::query_scalar::<_, String>(AssertSqlSafe(sql)).bind(connection.to_string());
        for u in chunk {
            q = q.bind(u.to_string());
        }
        let known: HashSet<String> = q.fetch_all(&mut **tx).await?.into_iter().collect();
        if let Some(unknown) = chunk.iter().find(|u| !known.contains(&u.to_string())) {
            return Err(StoreError::InvalidInput {
                field: "members",
                reason: format!("no user {unknown} in this connection"),
            });
        }
        let values: Vec<String> = (0..chunk.len())
            .map(|i| format!("($1, ${})", i + 2))
            .collect();
        let sql = format!(
            "INSERT INTO group_members (group_id, user_id) VALUES {} ON CONFLICT (group_id, user_id) DO NOTHING",
            values.join(", ")
        );
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(group.to_string());
        for u in chunk {
            q = q.bind(u.to_string());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn remove_members(
    tx: &mut Transaction<'_, Any>,
    group: GroupId,
    users: &[UserId],
) -> Result<(), StoreError> {
    for chunk in users.chunks(400) {
        let sql = format!(
            "DELETE FROM group_members WHERE group_id = $1 AND user_id IN ({})",
            crate::placeholders(2, chunk.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(group.to_string());
        for u in chunk {
            q = q.bind(u.to_string());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn change_members(
    tx: &mut Transaction<'_, Any>,
    connection: ConnectionId,
    group: GroupId,
    change: ScimMembersChange<'_>,
) -> Result<(), StoreError> {
    match change {
        ScimMembersChange::Keep => {}
        ScimMembersChange::Replace(users) => {
            sqlx::query("DELETE FROM group_members WHERE group_id = $1")
                .bind(group.to_string())
                .execute(&mut **tx)
                .await?;
            add_members(tx, connection, group, users).await?;
        }
        ScimMembersChange::Edit { add, remove } => {
            remove_members(tx, group, remove).await?;
            add_members(tx, connection, group, add).await?;
        }
    }
    Ok(())
}

impl Store {
    /// Creates a SCIM group of `connection` with `members`, and `event`, in one transaction.
    pub async fn create_scim_group(
        &self,
        workspace_id: WorkspaceId,
        connection: ConnectionId,
        write: &ScimGroupWrite<'_>,
        members: &[UserId],
        event: NewEvent,
    ) -> Result<ScimGroupRow, StoreError> {
        let id = GroupId::new();
        let now = now_millis();
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO directory_groups (id, workspace_id, connection_id, external_id, display_name, description, \
             created_at, updated_at, scim_external_id, scim_display_key, scim_version, scim_resource) \
             VALUES ($1, $2, $3, NULL, $4, NULL, $5, $5, $6, $7, 1, $8)",
        )
        .bind(id.to_string())
        .bind(workspace_id.to_string())
        .bind(connection.to_string())
        .bind(write.display_name)
        .bind(now)
        .bind(write.external_id)
        .bind(write.display_name.to_lowercase())
        .bind(write.resource.to_string())
        .execute(&mut *tx)
        .await?;
        add_members(&mut tx, connection, id, members).await?;
        insert_event(&mut tx, workspace_id, event).await?;
        let row =
            fetch_group(&mut tx, connection, id)
                .await?
                .ok_or_else(|| StoreError::NotFound {
                    kind: "group",
                    key: id.to_string(),
                })?;
        tx.commit().await?;
        Ok(row)
    }

    /// The connection's group `id`, with its members when `with_members`.
    pub async fn get_scim_group(
        &self,
        connection: ConnectionId,
        id: GroupId,
        with_members: bool,
    ) -> Result<Option<ScimGroupRow>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let row = fetch_group(&mut tx, connection, id).await?;
        tx.commit().await?;
        let Some(mut row) = row else { return Ok(None) };
        if with_members {
            let mut members = self.scim_members(&[id]).await?;
            row.members = Some(members.remove(&id).unwrap_or_default());
        }
        Ok(Some(row))
    }

    /// The members of `groups`, by group, in user id order.
    async fn scim_members(
        &self,
        groups: &[GroupId],
    ) -> Result<HashMap<GroupId, Vec<ScimMember>>, StoreError> {
        let mut out: HashMap<GroupId, Vec<ScimMember>> = HashMap::new();
        for chunk in groups.chunks(400) {
            let sql = format!(
                "SELECT m.group_id, m.user_id, u.display_name FROM group_members m JOIN users u ON u.id = m.user_id \
                 WHERE m.group_id IN ({}) ORDER BY m.group_id, m.user_id",
                crate::placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for g in chunk {
                q = q.bind(g.to_string());
            }
            for row in q.fetch_all(self.pool()).await? {
                let r = Reader::new(&row, "group_members");
                out.entry(r.parse("group_id")?)
                    .or_default()
                    .push(ScimMember {
                        user_id: r.parse("user_id")?,
                        display: r.text("display_name")?,
                    });
            }
        }
        Ok(out)
    }

    /// Replaces group `id`'s attributes (`write`, unless only members change) and changes its
    /// members, if it is at `expected_version` (None: whatever its version).
    pub async fn replace_scim_group(
        &self,
        connection: ConnectionId,
        id: GroupId,
        expected_version: Option<i64>,
        write: Option<&ScimGroupWrite<'_>>,
        members: ScimMembersChange<'_>,
        event: NewEvent,
    ) -> Result<ScimWrite<ScimGroupRow>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let Some(current) = fetch_group(&mut tx, connection, id).await? else {
            return Ok(ScimWrite::Gone);
        };
        if let Some(expected) = expected_version
            && expected != current.version
        {
            return Ok(ScimWrite::VersionMismatch {
                current: current.version,
            });
        }
        let now = now_millis();
        let done = match write {
            Some(w) => sqlx::query(
                "UPDATE directory_groups SET display_name = $1, scim_display_key = $2, scim_external_id = $3, \
                 scim_resource = $4, updated_at = $5, scim_version = scim_version + 1 \
                 WHERE id = $6 AND scim_version = $7",
            )
            .bind(w.display_name)
            .bind(w.display_name.to_lowercase())
            .bind(w.external_id)
            .bind(w.resource.to_string())
            .bind(now)
            .bind(id.to_string())
            .bind(current.version)
            .execute(&mut *tx)
            .await?,
            None => sqlx::query(
                "UPDATE directory_groups SET updated_at = $1, scim_version = scim_version + 1 \
                 WHERE id = $2 AND scim_version = $3",
            )
            .bind(now)
            .bind(id.to_string())
            .bind(current.version)
            .execute(&mut *tx)
            .await?,
        };
        if done.rows_affected() == 0 {
            return Ok(ScimWrite::VersionMismatch {
                current: current.version + 1,
            });
        }
        change_members(&mut tx, connection, id, members).await?;
        insert_event(&mut tx, current.group.workspace_id, event).await?;
        let row = fetch_group(&mut tx, connection, id).await?;
        tx.commit().await?;
        Ok(row.map_or(ScimWrite::Gone, ScimWrite::Done))
    }

    /// Deletes group `id` and its memberships.
    pub async fn delete_scim_group(
        &self,
        connection: ConnectionId,
        id: GroupId,
        expected_version: Option<i64>,
        event: NewEvent,
    ) -> Result<ScimWrite<()>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let Some(current) = fetch_group(&mut tx, connection, id).await? else {
            return Ok(ScimWrite::Gone);
        };
        if let Some(expected) = expected_version
            && expected != current.version
        {
            return Ok(ScimWrite::VersionMismatch {
                current: current.version,
            });
        }
        sqlx::query("DELETE FROM group_members WHERE group_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM directory_groups WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        insert_event(&mut tx, current.group.workspace_id, event).await?;
        tx.commit().await?;
        Ok(ScimWrite::Done(()))
    }

    /// One page of the connection's groups that match `query`, with members when asked.
    pub async fn list_scim_groups(
        &self,
        connection: ConnectionId,
        query: &ScimQuery,
        with_members: bool,
    ) -> Result<ScimPage<ScimGroupRow>, StoreError> {
        let columns = format!("{GROUP_COLUMNS}, {SCIM_COLUMNS}");
        let scope = "FROM directory_groups g WHERE g.connection_id = $1";
        let ScimPage {
            mut resources,
            total,
        } = self
            .scim_page::<ScimGroupRow>(Resource::Group, &columns, scope, connection, query)
            .await?;
        if with_members && !resources.is_empty() {
            let ids: Vec<GroupId> = resources.iter().map(|r| r.group.id).collect();
            let mut members = self.scim_members(&ids).await?;
            for r in &mut resources {
                r.members = Some(members.remove(&r.group.id).unwrap_or_default());
            }
        }
        Ok(ScimPage { resources, total })
    }
}
