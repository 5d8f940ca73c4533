//! The Behalf side of an outbound change: the rows changed at once (a new user or group, a
//! display name, a membership) and the write queued, in one transaction; and which connection
//! may be written to.

use behalf_domain::{
    ConnectionId, DirectoryConnection, Group, GroupId, User, UserDraft, UserId, WorkspaceId,
    WriteKind, now_millis,
};
use serde_json::Value;
use sqlx::AssertSqlSafe;

use super::{DirectoryWrite, NewWrite, UserChange, insert_write};
use crate::groups::{GROUP_COLUMNS, group_from};
use crate::rows::flag;
use crate::users::{USER_COLUMNS, mail_key, name_key, user_from};
use crate::{Store, StoreError};

impl Store {
    /// Marks a connection writable (Behalf may create, change and delete its users and groups)
    /// or read-only.
    pub async fn set_connection_writable(
        &self,
        id: ConnectionId,
        writable: bool,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE directory_connections SET writable = $1, updated_at = $2 WHERE id = $3",
        )
        .bind(flag(writable))
        .bind(now_millis())
        .bind(id.to_string())
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind: "directory connection",
                key: id.to_string(),
            });
        }
        Ok(())
    }

    /// Whether Behalf may write to the connection.
    pub async fn connection_writable(&self, id: ConnectionId) -> Result<bool, StoreError> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT writable FROM directory_connections WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(self.pool())
                .await?;
        v.map(|v| v != 0).ok_or_else(|| StoreError::NotFound {
            kind: "directory connection",
            key: id.to_string(),
        })
    }

    /// Creates a user in Behalf (on `connection`, no Entra id yet) and queues its creation in
    /// Entra ID, in one transaction. A UPN taken in the workspace is a unique violation.
    pub async fn outbound_create_user(
        &self,
        workspace_id: WorkspaceId,
        draft: &UserDraft,
        mail_nickname: &str,
        payload: &Value,
        actor: &str,
    ) -> Result<(User, DirectoryWrite), StoreError> {
        let connection = draft.connection_id.ok_or(StoreError::InvalidInput {
            field: "connection",
            reason: "an outbound user belongs to a connection".into(),
        })?;
        let mut tx = self.pool().begin().await?;
        let now = now_millis();
        let sql = format!(
            "INSERT INTO users (id, workspace_id, connection_id, external_id, upn, upn_key, display_name, name_key, \
             mail, mail_key, department, enabled, lifecycle, created_at, updated_at, mail_nickname) \
             VALUES ($1, $2, $3, NULL, $4, $5, $6, $7, $8, $9, $10, $11, 'active', $12, $12, $13) RETURNING {USER_COLUMNS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(UserId::new().to_string())
            .bind(workspace_id.to_string())
            .bind(connection.to_string())
            .bind(draft.upn.to_string())
            .bind(draft.upn.key())
            .bind(draft.display_name.clone())
            .bind(name_key(&draft.display_name))
            .bind(draft.mail.clone())
            .bind(draft.mail.as_deref().map(mail_key))
            .bind(draft.department.clone())
            .bind(flag(draft.enabled))
            .bind(now)
            .bind(mail_nickname)
            .fetch_one(&mut *tx)
            .await?;
        let user = user_from(&row)?;
        let write = insert_write(
            &mut tx,
            workspace_id,
            connection,
            NewWrite {
                kind: WriteKind::CreateUser,
                user_id: Some(user.id),
                group_id: None,
                subject: user.upn.to_string(),
                payload,
            },
            actor,
        )
        .await?;
        tx.commit().await?;
        Ok((user, write))
    }

    /// Changes a Behalf user now and queues the change (`payload`) for Entra ID.
    pub async fn outbound_update_user(
        &self,
        user: &User,
        connection: ConnectionId,
        change: &UserChange,
        payload: &Value,
        actor: &str,
    ) -> Result<DirectoryWrite, StoreError> {
        let mut tx = self.pool().begin().await?;
        let display = change.display_name.as_deref();
        let department = change.department.clone();
        sqlx::query(
            "UPDATE users SET display_name = COALESCE($1, display_name), name_key = COALESCE($2, name_key), \
             department = CASE WHEN $3 = 1 THEN $4 ELSE department END, enabled = COALESCE($5, enabled), \
             updated_at = $6 WHERE id = $7",
        )
        .bind(display)
        .bind(display.map(name_key))
        .bind(flag(department.is_some()))
        .bind(department.flatten())
        .bind(change.enabled.map(flag))
        .bind(now_millis())
        .bind(user.id.to_string())
        .execute(&mut *tx)
        .await?;
        let write = insert_write(
            &mut tx,
            user.workspace_id,
            connection,
            NewWrite {
                kind: WriteKind::UpdateUser,
                user_id: Some(user.id),
                group_id: None,
                subject: user.upn.to_string(),
                payload,
            },
            actor,
        )
        .await?;
        tx.commit().await?;
        Ok(write)
    }

    /// Queues a user's deletion in Entra ID; Behalf's row goes once it is done.
    pub async fn outbound_delete_user(
        &self,
        user: &User,
        connection: ConnectionId,
        actor: &str,
    ) -> Result<DirectoryWrite, StoreError> {
        let mut tx = self.pool().begin().await?;
        let write = insert_write(
            &mut tx,
            user.workspace_id,
            connection,
            NewWrite {
                kind: WriteKind::DeleteUser,
                user_id: Some(user.id),
                group_id: None,
                subject: user.upn.to_string(),
                payload: &Value::Object(Default::default()),
            },
            actor,
        )
        .await?;
        tx.commit().await?;
        Ok(write)
    }

    /// Creates a group in Behalf and queues its creation in Entra ID.
    #[allow(clippy::too_many_arguments, reason = "one row's columns")]
    pub async fn outbound_create_group(
        &self,
        workspace_id: WorkspaceId,
        connection: ConnectionId,
        display_name: &str,
        description: Option<&str>,
        mail_nickname: &str,
        payload: &Value,
        actor: &str,
    ) -> Result<(Group, DirectoryWrite), StoreError> {
        let mut tx = self.pool().begin().await?;
        let now = now_millis();
        let sql = format!(
            "INSERT INTO directory_groups (id, workspace_id, connection_id, external_id, display_name, description, \
             created_at, updated_at, mail_nickname) VALUES ($1, $2, $3, NULL, $4, $5, $6, $6, $7) RETURNING {GROUP_COLUMNS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(GroupId::new().to_string())
            .bind(workspace_id.to_string())
            .bind(connection.to_string())
            .bind(display_name)
            .bind(description)
            .bind(now)
            .bind(mail_nickname)
            .fetch_one(&mut *tx)
            .await?;
        let group = group_from(&row)?;
        let write = insert_write(
            &mut tx,
            workspace_id,
            connection,
            NewWrite {
                kind: WriteKind::CreateGroup,
                user_id: None,
                group_id: Some(group.id),
                subject: group.display_name.clone(),
                payload,
            },
            actor,
        )
        .await?;
        tx.commit().await?;
        Ok((group, write))
    }

    /// Queues a group's deletion in Entra ID; Behalf's row (and its memberships) go once done.
    pub async fn outbound_delete_group(
        &self,
        group: &Group,
        connection: ConnectionId,
        actor: &str,
    ) -> Result<DirectoryWrite, StoreError> {
        let mut tx = self.pool().begin().await?;
        let write = insert_write(
            &mut tx,
            group.workspace_id,
            connection,
            NewWrite {
                kind: WriteKind::DeleteGroup,
                user_id: None,
                group_id: Some(group.id),
                subject: group.display_name.clone(),
                payload: &Value::Object(Default::default()),
            },
            actor,
        )
        .await?;
        tx.commit().await?;
        Ok(write)
    }

    /// Adds (or removes) a member in Behalf now and queues the same in Entra ID. `None` when
    /// Behalf already had it so: nothing to write.
    pub async fn outbound_membership(
        &self,
        group: &Group,
        user: &User,
        connection: ConnectionId,
        added: bool,
        actor: &str,
    ) -> Result<Option<DirectoryWrite>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let sql = if added {
            "INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) ON CONFLICT (group_id, user_id) DO NOTHING"
        } else {
            "DELETE FROM group_members WHERE group_id = $1 AND user_id = $2"
        };
        let changed = sqlx::query(sql)
            .bind(group.id.to_string())
            .bind(user.id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if changed == 0 {
            return Ok(None);
        }
        let write = insert_write(
            &mut tx,
            group.workspace_id,
            connection,
            NewWrite {
                kind: if added {
                    WriteKind::AddMember
                } else {
                    WriteKind::RemoveMember
                },
                user_id: Some(user.id),
                group_id: Some(group.id),
                subject: format!("{} ← {}", group.display_name, user.upn),
                payload: &Value::Object(Default::default()),
            },
            actor,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(write))
    }

    pub async fn get_group(&self, id: GroupId) -> Result<Group, StoreError> {
        let sql = format!("SELECT {GROUP_COLUMNS} FROM directory_groups WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref()
            .map(group_from)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound {
                kind: "group",
                key: id.to_string(),
            })
    }

    /// The group created through Behalf with this mailNickname, if any.
    pub async fn find_group_by_mail_nickname(
        &self,
        workspace_id: WorkspaceId,
        nickname: &str,
    ) -> Result<Option<Group>, StoreError> {
        let sql = format!(
            "SELECT {GROUP_COLUMNS} FROM directory_groups WHERE workspace_id = $1 AND mail_nickname = $2"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(workspace_id.to_string())
            .bind(nickname)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(group_from).transpose()
    }

    /// The mailNickname recorded for a user or a group created through Behalf.
    pub async fn mail_nickname(
        &self,
        user: Option<UserId>,
        group: Option<GroupId>,
    ) -> Result<Option<String>, StoreError> {
        let (sql, id) = match (user, group) {
            (Some(u), _) => (
                "SELECT mail_nickname FROM users WHERE id = $1",
                u.to_string(),
            ),
            (None, Some(g)) => (
                "SELECT mail_nickname FROM directory_groups WHERE id = $1",
                g.to_string(),
            ),
            (None, None) => return Ok(None),
        };
        let v: Option<Option<String>> = sqlx::query_scalar(sql)
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(v.flatten())
    }

    /// The connection Behalf writes new users and groups to: the writable one (the first by
    /// name when there are several).
    pub async fn writable_connection(
        &self,
        workspace_id: WorkspaceId,
    ) -> Result<Option<DirectoryConnection>, StoreError> {
        let id: Option<String> = sqlx::query_scalar(
            "SELECT id FROM directory_connections WHERE workspace_id = $1 AND writable = 1 ORDER BY name LIMIT 1",
        )
        .bind(workspace_id.to_string())
        .fetch_optional(self.pool())
        .await?;
        match id {
            Some(id) => Ok(Some(
                self.get_connection(
                    id.parse()
                        .map_err(|e| crate::error::corrupt("directory_connections", e))?,
                )
                .await?,
            )),
            None => Ok(None),
        }
    }
}
