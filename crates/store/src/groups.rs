//! Groups and memberships, keyed by the directory's ids when they come from a directory.

use behalf_domain::{Group, GroupDraft, GroupId, UserId, WorkspaceId, now_millis};
use sqlx::AssertSqlSafe;

use crate::rows::{Columns, Reader};
use crate::users::UpsertCounts;
use crate::{Store, StoreError};

pub(crate) const GROUP_COLUMNS: &str = "id, workspace_id, connection_id, external_id, display_name, description, created_at, updated_at";

pub(crate) fn group_from<R: Columns>(row: &R) -> Result<Group, StoreError> {
    let r = Reader::new(row, "directory_groups");
    Ok(Group {
        id: r.parse("id")?,
        workspace_id: r.parse("workspace_id")?,
        connection_id: r.opt_parse("connection_id")?,
        external_id: r.opt_text("external_id")?,
        display_name: r.text("display_name")?,
        description: r.opt_text("description")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
    })
}

/// A membership change named by the directory's ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipChange {
    pub group_external_id: String,
    pub user_external_id: String,
    pub added: bool,
}

impl Store {
    /// Creates or updates groups (matched on the directory's id) in one transaction.
    pub async fn upsert_groups(
        &self,
        workspace_id: WorkspaceId,
        drafts: &[GroupDraft],
    ) -> Result<UpsertCounts, StoreError> {
        let mut counts = UpsertCounts::default();
        let mut tx = self.pool().begin().await?;
        let now = now_millis();
        for draft in drafts {
            let created_at: i64 = sqlx::query_scalar(
                "INSERT INTO directory_groups (id, workspace_id, connection_id, external_id, display_name, description, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
                 ON CONFLICT (workspace_id, external_id) DO UPDATE SET display_name = excluded.display_name, \
                 description = excluded.description, connection_id = excluded.connection_id, updated_at = excluded.updated_at \
                 RETURNING created_at",
            )
            .bind(GroupId::new().to_string())
            .bind(workspace_id.to_string())
            .bind(draft.connection_id.map(|c| c.to_string()))
            .bind(draft.external_id.as_deref())
            .bind(draft.display_name.as_str())
            .bind(draft.description.as_deref())
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            if created_at == now {
                counts.created += 1;
            } else {
                counts.updated += 1;
            }
        }
        tx.commit().await?;
        Ok(counts)
    }

    /// Deletes groups the directory deleted (their memberships go with them).
    pub async fn delete_groups(
        &self,
        workspace_id: WorkspaceId,
        external_ids: &[String],
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool().begin().await?;
        let mut deleted = 0;
        for external_id in external_ids {
            let done = sqlx::query(
                "DELETE FROM directory_groups WHERE workspace_id = $1 AND external_id = $2",
            )
            .bind(workspace_id.to_string())
            .bind(external_id.as_str())
            .execute(&mut *tx)
            .await?;
            deleted += done.rows_affected();
        }
        tx.commit().await?;
        Ok(deleted)
    }

    /// Applies membership changes; a change naming a group or user not (yet) known is counted in
    /// the second number and otherwise ignored, since the next full import brings it. Runs of
    /// adds and of removals go in multi-row statements (batches as
    /// [`crate::users::BATCH_BYTES`] says), in the order given.
    pub async fn apply_memberships(
        &self,
        workspace_id: WorkspaceId,
        changes: &[MembershipChange],
    ) -> Result<(u64, u64), StoreError> {
        let mut tx = self.pool().begin().await?;
        let (mut applied, mut unknown) = (0, 0);
        for run in changes.chunk_by(|a, b| a.added == b.added) {
            let size =
                |c: &MembershipChange| c.group_external_id.len() + c.user_external_id.len() + 8;
            for chunk in crate::users::batches(run, size, 1_000) {
                // Pairs of external ids, matched to the workspace's groups and users; a pair
                // naming nothing known matches no row. Comma joins with a WHERE: SQLite's
                // `INSERT … SELECT … ON CONFLICT` needs one to parse.
                let values: Vec<String> = (0..chunk.len())
                    .map(|i| format!("(${}, ${})", 2 * i + 2, 2 * i + 3))
                    .collect();
                let pairs = format!(
                    "SELECT g.id, u.id FROM (VALUES {}) AS v, directory_groups g, users u \
                     WHERE g.workspace_id = $1 AND g.external_id = v.column1 \
                     AND u.workspace_id = $1 AND u.external_id = v.column2",
                    values.join(", ")
                );
                let sql = if chunk[0].added {
                    format!(
                        "INSERT INTO group_members (group_id, user_id) {pairs} \
                         ON CONFLICT (group_id, user_id) DO NOTHING"
                    )
                } else {
                    format!("DELETE FROM group_members WHERE (group_id, user_id) IN ({pairs})")
                };
                let mut query = sqlx::query(AssertSqlSafe(sql)).bind(workspace_id.to_string());
                for change in chunk {
                    query = query
                        .bind(change.group_external_id.as_str())
                        .bind(change.user_external_id.as_str());
                }
                let done = query.execute(&mut *tx).await?.rows_affected();
                // A pair repeated in the chunk, already so, or naming something unknown changed
                // nothing: each counts in the second number, as written one by one.
                applied += done;
                unknown += chunk.len() as u64 - done;
            }
        }
        tx.commit().await?;
        Ok((applied, unknown))
    }

    pub async fn find_group_by_external_id(
        &self,
        workspace_id: WorkspaceId,
        external_id: &str,
    ) -> Result<Option<Group>, StoreError> {
        let sql = format!(
            "SELECT {GROUP_COLUMNS} FROM directory_groups WHERE workspace_id = $1 AND external_id = $2"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(workspace_id.to_string())
            .bind(external_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(group_from).transpose()
    }

    pub async fn list_groups(&self, workspace_id: WorkspaceId) -> Result<Vec<Group>, StoreError> {
        let sql = format!(
            "SELECT {GROUP_COLUMNS} FROM directory_groups WHERE workspace_id = $1 ORDER BY display_name, id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(workspace_id.to_string())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(group_from).collect()
    }

    /// The groups the user is a member of, by name.
    pub async fn user_groups(&self, user_id: UserId) -> Result<Vec<Group>, StoreError> {
        let sql = format!(
            "SELECT {GROUP_COLUMNS} FROM directory_groups WHERE id IN \
             (SELECT group_id FROM group_members WHERE user_id = $1) ORDER BY display_name, id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(user_id.to_string())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(group_from).collect()
    }

    pub async fn group_member_ids(&self, group_id: GroupId) -> Result<Vec<UserId>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT user_id FROM group_members WHERE group_id = $1 ORDER BY user_id",
        )
        .bind(group_id.to_string())
        .fetch_all(self.pool())
        .await?;
        ids.iter()
            .map(|id| {
                id.parse()
                    .map_err(|e| crate::error::corrupt("group_members", e))
            })
            .collect()
    }

    pub async fn count_memberships(&self, workspace_id: WorkspaceId) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM group_members m JOIN directory_groups g ON g.id = m.group_id WHERE g.workspace_id = $1",
        )
        .bind(workspace_id.to_string())
        .fetch_one(self.pool())
        .await?)
    }
}
