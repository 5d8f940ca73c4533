//! Users pushed by SCIM: rows of `users` with their SCIM columns and emails.

use behalf_domain::{ConnectionId, NewEvent, Upn, User, UserId, WorkspaceId, now_millis};
use sqlx::{Any, AssertSqlSafe, Transaction};

use super::query::{Resource, ScimQuery};
use super::{SCIM_COLUMNS, ScimPage, ScimWrite, insert_event};
use crate::rows::{Columns, Reader, flag};
use crate::users::{USER_COLUMNS, mail_key, name_key, user_from};
use crate::{Store, StoreError};

/// One of a user's emails, as filters see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimEmail {
    pub value: String,
    pub kind: Option<String>,
    pub primary: bool,
}

/// What a SCIM create or replace writes. `resource` is the RFC 7643 resource without `id` and
/// `meta` (the store keeps those in columns).
#[derive(Debug, Clone, Copy)]
pub struct ScimUserWrite<'a> {
    pub upn: &'a Upn,
    pub display_name: Option<&'a str>,
    pub external_id: Option<&'a str>,
    pub active: bool,
    pub mail: Option<&'a str>,
    pub department: Option<&'a str>,
    pub emails: &'a [ScimEmail],
    pub resource: &'a serde_json::Value,
}

/// A SCIM user as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ScimUserRow {
    pub user: User,
    pub scim_external_id: Option<String>,
    pub version: i64,
    pub resource: serde_json::Value,
}

/// The users a SCIM connection (`$1`) lists and finds: its own, not DELETEd.
pub(super) const LISTED: &str =
    "FROM users u WHERE u.connection_id = $1 AND u.scim_deleted_at IS NULL";

fn row_from<R: Columns>(row: &R) -> Result<ScimUserRow, StoreError> {
    let r = Reader::new(row, "users");
    Ok(ScimUserRow {
        user: user_from(row)?,
        scim_external_id: r.opt_text("scim_external_id")?,
        version: r.int("scim_version")?,
        resource: match r.opt_text("scim_resource")? {
            Some(_) => r.json("scim_resource")?,
            None => serde_json::Value::Object(Default::default()),
        },
    })
}

impl super::FromColumns for ScimUserRow {
    fn from_columns<R: Columns>(row: &R) -> Result<Self, StoreError> {
        row_from(row)
    }
}

async fn write_emails(
    tx: &mut Transaction<'_, Any>,
    user: UserId,
    emails: &[ScimEmail],
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM scim_user_emails WHERE user_id = $1")
        .bind(user.to_string())
        .execute(&mut **tx)
        .await?;
    for (i, chunk) in emails.chunks(100).enumerate() {
        let values: Vec<String> = (0..chunk.len())
            .map(|j| {
                let b = j * 5;
                format!(
                    "(${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO scim_user_emails (user_id, position, value_key, type_key, is_primary) VALUES {}",
            values.join(", ")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (j, email) in chunk.iter().enumerate() {
            query = query
                .bind(user.to_string())
                .bind((i * 100 + j) as i64)
                .bind(email.value.to_lowercase())
                .bind(email.kind.as_deref().map(str::to_lowercase))
                .bind(flag(email.primary));
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

fn resource_text(resource: &serde_json::Value) -> String {
    resource.to_string()
}

impl Store {
    /// Creates a SCIM user of `connection` (or brings back one of the connection's DELETEd
    /// users with the same userName), with `event` (its user set here) in the same transaction.
    /// A userName taken by anyone else in the workspace is a [`StoreError::UniqueViolation`].
    pub async fn create_scim_user(
        &self,
        workspace_id: WorkspaceId,
        connection: ConnectionId,
        write: &ScimUserWrite<'_>,
        event: NewEvent,
    ) -> Result<ScimUserRow, StoreError> {
        let now = now_millis();
        let mut tx = self.pool().begin().await?;
        let existing: Option<(String, Option<String>, Option<i64>)> = sqlx::query_as(
            "SELECT id, connection_id, scim_deleted_at FROM users WHERE workspace_id = $1 AND upn_key = $2",
        )
        .bind(workspace_id.to_string())
        .bind(write.upn.key())
        .fetch_optional(&mut *tx)
        .await?;
        let id = match existing {
            None => {
                let id = UserId::new();
                sqlx::query(
                    "INSERT INTO users (id, workspace_id, connection_id, external_id, upn, upn_key, display_name, \
                     name_key, mail, mail_key, department, enabled, lifecycle, created_at, updated_at, \
                     scim_external_id, scim_display_key, scim_version, scim_resource) \
                     VALUES ($1, $2, $3, NULL, $4, $5, $6, $7, $8, $9, $10, $11, 'active', $12, $12, $13, $14, 1, $15)",
                )
                .bind(id.to_string())
                .bind(workspace_id.to_string())
                .bind(connection.to_string())
                .bind(write.upn.to_string())
                .bind(write.upn.key())
                .bind(display(write))
                .bind(name_key(&display(write)))
                .bind(write.mail)
                .bind(write.mail.map(mail_key))
                .bind(write.department)
                .bind(flag(write.active))
                .bind(now)
                .bind(write.external_id)
                .bind(write.display_name.map(str::to_lowercase))
                .bind(resource_text(write.resource))
                .execute(&mut *tx)
                .await?;
                id
            }
            Some((id, Some(conn), Some(_))) if conn == connection.to_string() => {
                // RFC 7644 §3.6: a deleted resource is gone for the client; a new one of the
                // same userName reuses the row its passkeys and events refer to. Re-created
                // active, it is active again (its deprovisioning, if still pending, is called off).
                sqlx::query(
                    "UPDATE users SET upn = $1, display_name = $2, name_key = $3, mail = $4, mail_key = $5, \
                     department = $6, enabled = $7, lifecycle = CASE WHEN $7 = 1 THEN 'active' ELSE lifecycle END, \
                     created_at = $8, updated_at = $8, scim_external_id = $9, scim_display_key = $10, \
                     scim_version = scim_version + 1, scim_resource = $11, scim_deleted_at = NULL WHERE id = $12",
                )
                .bind(write.upn.to_string())
                .bind(display(write))
                .bind(name_key(&display(write)))
                .bind(write.mail)
                .bind(write.mail.map(mail_key))
                .bind(write.department)
                .bind(flag(write.active))
                .bind(now)
                .bind(write.external_id)
                .bind(write.display_name.map(str::to_lowercase))
                .bind(resource_text(write.resource))
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
                id.parse().map_err(|e| crate::error::corrupt("users", e))?
            }
            Some(_) => {
                return Err(StoreError::UniqueViolation {
                    what: "users.upn_key".into(),
                });
            }
        };
        write_emails(&mut tx, id, write.emails).await?;
        insert_event(&mut tx, workspace_id, event.user(id)).await?;
        let row =
            fetch_user(&mut tx, connection, id)
                .await?
                .ok_or_else(|| StoreError::NotFound {
                    kind: "user",
                    key: id.to_string(),
                })?;
        tx.commit().await?;
        Ok(row)
    }

    /// The connection's user `id`, unless DELETEd.
    pub async fn get_scim_user(
        &self,
        connection: ConnectionId,
        id: UserId,
    ) -> Result<Option<ScimUserRow>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS}, {SCIM_COLUMNS} FROM users WHERE id = $1 AND connection_id = $2 \
             AND scim_deleted_at IS NULL"
        );
        let binds = [
            super::Bind::Text(id.to_string()),
            super::Bind::Text(connection.to_string()),
        ];
        let rows: Vec<ScimUserRow> = self.scim_rows(sql, &binds).await?;
        Ok(rows.into_iter().next())
    }

    /// Replaces user `id` if it is still at `expected_version`. A user turned inactive is
    /// disabled and marked for deprovisioning, as the directory import marks a user Entra ID
    /// disabled; one turned active again comes back to `active`. A userName taken by another
    /// user is a [`StoreError::UniqueViolation`].
    pub async fn replace_scim_user(
        &self,
        connection: ConnectionId,
        id: UserId,
        expected_version: i64,
        write: &ScimUserWrite<'_>,
        event: NewEvent,
    ) -> Result<ScimWrite<ScimUserRow>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let Some(current) = fetch_user(&mut tx, connection, id).await? else {
            return Ok(ScimWrite::Gone);
        };
        if current.version != expected_version {
            return Ok(ScimWrite::VersionMismatch {
                current: current.version,
            });
        }
        let done = sqlx::query(
            "UPDATE users SET upn = $1, upn_key = $2, display_name = $3, name_key = $4, mail = $5, \
             mail_key = $6, department = $7, enabled = $8, \
             lifecycle = CASE WHEN $8 = 0 AND lifecycle = 'active' THEN 'deprovision_pending' \
                WHEN $8 = 1 AND enabled = 0 AND lifecycle <> 'active' THEN 'active' ELSE lifecycle END, \
             updated_at = $9, scim_external_id = $10, scim_display_key = $11, \
             scim_version = scim_version + 1, scim_resource = $12 \
             WHERE id = $13 AND connection_id = $14 AND scim_version = $15 AND scim_deleted_at IS NULL",
        )
        .bind(write.upn.to_string())
        .bind(write.upn.key())
        .bind(display(write))
        .bind(name_key(&display(write)))
        .bind(write.mail)
        .bind(write.mail.map(mail_key))
        .bind(write.department)
        .bind(flag(write.active))
        .bind(now_millis())
        .bind(write.external_id)
        .bind(write.display_name.map(str::to_lowercase))
        .bind(resource_text(write.resource))
        .bind(id.to_string())
        .bind(connection.to_string())
        .bind(expected_version)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            // Written by another request since it was read (PostgreSQL, several instances).
            return Ok(ScimWrite::VersionMismatch {
                current: expected_version + 1,
            });
        }
        write_emails(&mut tx, id, write.emails).await?;
        insert_event(&mut tx, current.user.workspace_id, event.user(id)).await?;
        let row = fetch_user(&mut tx, connection, id).await?;
        tx.commit().await?;
        Ok(row.map_or(ScimWrite::Gone, ScimWrite::Done))
    }

    /// DELETEs user `id` (RFC 7644 §3.6): it answers 404 from now on, but its row stays, disabled
    /// and marked for deprovisioning as the import marks a user removed from Entra ID; it
    /// leaves its groups. `expected_version`: the client's If-Match, if any.
    pub async fn delete_scim_user(
        &self,
        connection: ConnectionId,
        id: UserId,
        expected_version: Option<i64>,
        event: NewEvent,
    ) -> Result<ScimWrite<User>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let Some(current) = fetch_user(&mut tx, connection, id).await? else {
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
        sqlx::query(
            "UPDATE users SET enabled = 0, updated_at = $1, scim_deleted_at = $1, scim_version = scim_version + 1, \
             lifecycle = CASE WHEN lifecycle = 'active' THEN 'deprovision_pending' ELSE lifecycle END \
             WHERE id = $2 AND connection_id = $3",
        )
        .bind(now)
        .bind(id.to_string())
        .bind(connection.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM group_members WHERE user_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        insert_event(&mut tx, current.user.workspace_id, event.user(id)).await?;
        tx.commit().await?;
        let mut user = current.user;
        user.enabled = false;
        if user.lifecycle == behalf_domain::Lifecycle::Active {
            user.lifecycle = behalf_domain::Lifecycle::DeprovisionPending;
        }
        Ok(ScimWrite::Done(user))
    }

    /// One page of the connection's users that match `query`, and how many match in all.
    pub async fn list_scim_users(
        &self,
        connection: ConnectionId,
        query: &ScimQuery,
    ) -> Result<ScimPage<ScimUserRow>, StoreError> {
        if let (Some(lookups), Some(key)) = (self.lookups(), query.user_name_lookup())
            && let Some(found) = lookups.user(connection, key).await
        {
            let resources: Vec<_> = found.into_iter().collect();
            let total = resources.len() as u64;
            return Ok(ScimPage { resources, total });
        }
        let columns = format!("{USER_COLUMNS}, {SCIM_COLUMNS}");
        self.scim_page(Resource::User, &columns, LISTED, connection, query)
            .await
    }
}

fn display(write: &ScimUserWrite<'_>) -> String {
    write
        .display_name
        .map_or_else(|| write.upn.to_string(), str::to_owned)
}

async fn fetch_user(
    tx: &mut Transaction<'_, Any>,
    connection: ConnectionId,
    id: UserId,
) -> Result<Option<ScimUserRow>, StoreError> {
    let sql = format!(
        "SELECT {USER_COLUMNS}, {SCIM_COLUMNS} FROM users WHERE id = $1 AND connection_id = $2 \
         AND scim_deleted_at IS NULL"
    );
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(id.to_string())
        .bind(connection.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(row_from).transpose()
}
