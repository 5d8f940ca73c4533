//! Users: imported, pushed by SCIM, or created in Behalf.

use std::collections::HashMap;

use behalf_domain::{Lifecycle, Upn, User, UserDraft, UserId, WorkspaceId, now_millis};
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe};

use crate::rows::{Columns, Reader, flag};
use crate::{Store, StoreError};

pub(crate) const USER_COLUMNS: &str = "id, workspace_id, connection_id, external_id, upn, display_name, mail, \
                            department, enabled, lifecycle, created_at, updated_at";

pub(crate) fn user_from<R: Columns>(row: &R) -> Result<User, StoreError> {
    let r = Reader::new(row, "users");
    Ok(User {
        id: r.parse("id")?,
        workspace_id: r.parse("workspace_id")?,
        connection_id: r.opt_parse("connection_id")?,
        external_id: r.opt_text("external_id")?,
        upn: r.parse::<Upn>("upn")?,
        display_name: r.text("display_name")?,
        mail: r.opt_text("mail")?,
        department: r.opt_text("department")?,
        enabled: r.flag("enabled")?,
        lifecycle: r.parse("lifecycle")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
    })
}

/// How many users an upsert batch created and changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpsertCounts {
    pub created: u64,
    pub updated: u64,
}

// On update: a user the directory disabled is marked for deprovisioning; one it enabled again
// (disabled before, enabled now) comes back to `active` so that it can be provisioned anew. An
// unchanged enabled user keeps its lifecycle: an admin's deprovisioning is not undone by an import.
const LIFECYCLE_ON_UPDATE: &str = "lifecycle = CASE \
        WHEN excluded.enabled = 0 AND users.lifecycle = 'active' THEN 'deprovision_pending' \
        WHEN excluded.enabled = 1 AND users.enabled = 0 AND users.lifecycle <> 'active' THEN 'active' \
        ELSE users.lifecycle END";

/// Parameters per row of [`insert_users`].
const USER_PARAMS: usize = 13;

/// Bound bytes per multi-row statement. Batching saves a round trip per row, but a statement
/// whose parameters pass about 16 KB was measured 30–40 times slower on PostgreSQL over TCP
/// (every execution stalls for tens of milliseconds: the delayed-ACK pattern of a socket without
/// TCP_NODELAY, which sqlx does not set). Batches are cut by size, not by count, since ids
/// and names vary in length.
pub(crate) const BATCH_BYTES: usize = 8 * 1024;

/// Cuts `items` into consecutive batches of at most [`BATCH_BYTES`] (by `size`, an estimate of
/// a row's encoded parameters) and `max_rows` rows; a row bigger than the budget goes alone.
pub(crate) fn batches<T>(items: &[T], size: impl Fn(&T) -> usize, max_rows: usize) -> Vec<&[T]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let n = size(item);
        if i > start && (bytes + n > BATCH_BYTES || i - start >= max_rows) {
            out.push(&items[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += n;
    }
    if start < items.len() {
        out.push(&items[start..]);
    }
    out
}

/// Encoded size of a draft's parameters: ids, texts, and a few bytes of framing each.
fn draft_bytes(d: &UserDraft) -> usize {
    let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    3 * 36
        + text(&d.external_id)
        + 2 * d.upn.as_str().len()
        + 2 * d.display_name.len()
        + 2 * text(&d.mail)
        + text(&d.department)
        + 16
        + USER_PARAMS * 4
}

/// The head of an `INSERT` of `rows` new `users` rows from drafts (each bound by
/// [`bind_draft`]; the last parameter of a row is the time it was written). Followed by an
/// `ON CONFLICT` clause (upsert) or only `RETURNING` (create).
fn insert_users(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let p: Vec<String> = (1..=USER_PARAMS)
                .map(|i| format!("${}", r * USER_PARAMS + i))
                .collect();
            format!(
                "({}, 'active', {now}, {now})",
                p[..USER_PARAMS - 1].join(", "),
                now = p[USER_PARAMS - 1]
            )
        })
        .collect();
    format!(
        "INSERT INTO users (id, workspace_id, connection_id, external_id, upn, upn_key, \
         display_name, name_key, mail, mail_key, department, enabled, lifecycle, created_at, \
         updated_at) VALUES {}",
        values.join(", ")
    )
}

/// The display name's search key: case-folded as [`Upn::key`] folds the UPN, so that one
/// lowercased query matches all three keys of the user list's search.
pub(crate) fn name_key(display_name: &str) -> String {
    display_name.to_lowercase()
}

/// The mail address's search key (see [`name_key`]).
pub(crate) fn mail_key(mail: &str) -> String {
    mail.to_lowercase()
}

/// Binds one row of [`insert_users`].
fn bind_draft<'q>(
    query: Query<'q, Any, AnyArguments>,
    workspace_id: WorkspaceId,
    draft: &UserDraft,
    now: i64,
) -> Query<'q, Any, AnyArguments> {
    query
        .bind(UserId::new().to_string())
        .bind(workspace_id.to_string())
        .bind(draft.connection_id.map(|c| c.to_string()))
        .bind(draft.external_id.clone())
        .bind(draft.upn.to_string())
        .bind(draft.upn.key())
        .bind(draft.display_name.clone())
        .bind(name_key(&draft.display_name))
        .bind(draft.mail.clone())
        .bind(draft.mail.as_deref().map(mail_key))
        .bind(draft.department.clone())
        .bind(flag(draft.enabled))
        .bind(now)
}

impl Store {
    /// Creates or updates users in one transaction. A draft with an `external_id` is matched on
    /// it (the directory's immutable id survives renames); one without is matched on its UPN.
    /// Drafts go in multi-row statements (see [`BATCH_BYTES`]); when one call names the same user
    /// twice the last draft wins, as it would written one by one (a statement may touch a row
    /// only once).
    pub async fn upsert_users(
        &self,
        workspace_id: WorkspaceId,
        drafts: &[UserDraft],
    ) -> Result<UpsertCounts, StoreError> {
        let mut by_external_id: Vec<&UserDraft> = Vec::new();
        let mut by_upn: Vec<&UserDraft> = Vec::new();
        let mut last: HashMap<(bool, String), usize> = HashMap::new();
        for (i, draft) in drafts.iter().enumerate() {
            let key = match &draft.external_id {
                Some(id) => (true, id.clone()),
                None => (false, draft.upn.key()),
            };
            last.insert(key, i);
        }
        for (i, draft) in drafts.iter().enumerate() {
            match &draft.external_id {
                Some(id) if last.get(&(true, id.clone())) == Some(&i) => by_external_id.push(draft),
                None if last.get(&(false, draft.upn.key())) == Some(&i) => by_upn.push(draft),
                _ => {}
            }
        }
        let mut counts = UpsertCounts::default();
        let mut tx = self.pool().begin().await?;
        let now = now_millis();
        for (conflict_target, rows) in [
            ("(workspace_id, external_id)", by_external_id),
            ("(workspace_id, upn_key)", by_upn),
        ] {
            for chunk in batches(&rows, |d| draft_bytes(d), 500) {
                let sql = format!(
                    "{} ON CONFLICT {conflict_target} DO UPDATE SET connection_id = excluded.connection_id, \
                     external_id = excluded.external_id, upn = excluded.upn, upn_key = excluded.upn_key, \
                     display_name = excluded.display_name, name_key = excluded.name_key, mail = excluded.mail, \
                     mail_key = excluded.mail_key, department = excluded.department, \
                     enabled = excluded.enabled, {LIFECYCLE_ON_UPDATE}, updated_at = excluded.updated_at \
                     RETURNING created_at",
                    insert_users(chunk.len())
                );
                let mut query = sqlx::query(AssertSqlSafe(sql));
                for draft in chunk {
                    query = bind_draft(query, workspace_id, draft, now);
                }
                for row in query.fetch_all(&mut *tx).await? {
                    // A row written now was created by this statement; an older one was updated.
                    if Reader::new(&row, "users").int("created_at")? == now {
                        counts.created += 1;
                    } else {
                        counts.updated += 1;
                    }
                }
            }
        }
        tx.commit().await?;
        Ok(counts)
    }

    /// Creates one user; a UPN or external id already taken is a [`StoreError::UniqueViolation`].
    pub async fn create_user(
        &self,
        workspace_id: WorkspaceId,
        draft: &UserDraft,
    ) -> Result<User, StoreError> {
        let now = now_millis();
        let sql = format!("{} RETURNING {USER_COLUMNS}", insert_users(1));
        let row = bind_draft(sqlx::query(AssertSqlSafe(sql)), workspace_id, draft, now)
            .fetch_one(self.pool())
            .await?;
        user_from(&row)
    }

    pub async fn get_user(&self, id: UserId) -> Result<User, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref()
            .map(user_from)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound {
                kind: "user",
                key: id.to_string(),
            })
    }

    /// The users with these ids (those that exist), in no particular order.
    pub async fn get_users(&self, ids: &[UserId]) -> Result<Vec<User>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT {USER_COLUMNS} FROM users WHERE id IN ({})",
                crate::placeholders(1, chunk.len())
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id.to_string());
            }
            for row in query.fetch_all(self.pool()).await? {
                out.push(user_from(&row)?);
            }
        }
        Ok(out)
    }

    /// The user with this UPN, compared case-insensitively as Entra ID does.
    pub async fn find_user_by_upn(
        &self,
        workspace_id: WorkspaceId,
        upn: &Upn,
    ) -> Result<Option<User>, StoreError> {
        let sql =
            format!("SELECT {USER_COLUMNS} FROM users WHERE workspace_id = $1 AND upn_key = $2");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(workspace_id.to_string())
            .bind(upn.key())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(user_from).transpose()
    }

    pub async fn find_user_by_external_id(
        &self,
        workspace_id: WorkspaceId,
        external_id: &str,
    ) -> Result<Option<User>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE workspace_id = $1 AND external_id = $2"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(workspace_id.to_string())
            .bind(external_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(user_from).transpose()
    }

    /// The users with these directory ids (those the store has), a few hundred ids per query.
    pub async fn find_users_by_external_ids(
        &self,
        workspace_id: WorkspaceId,
        external_ids: &[String],
    ) -> Result<Vec<User>, StoreError> {
        let mut out = Vec::with_capacity(external_ids.len());
        for chunk in external_ids.chunks(500) {
            let sql = format!(
                "SELECT {USER_COLUMNS} FROM users WHERE workspace_id = $1 AND external_id IN ({})",
                crate::placeholders(2, chunk.len())
            );
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(workspace_id.to_string());
            for id in chunk {
                query = query.bind(id.as_str());
            }
            for row in query.fetch_all(self.pool()).await? {
                out.push(user_from(&row)?);
            }
        }
        Ok(out)
    }

    /// One page of users in id order, after `after` (keyset paging: stable under inserts).
    pub async fn list_users(
        &self,
        workspace_id: WorkspaceId,
        after: Option<UserId>,
        limit: i64,
    ) -> Result<Vec<User>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE workspace_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(workspace_id.to_string())
            .bind(after.map(|a| a.to_string()).unwrap_or_default())
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(user_from).collect()
    }

    pub async fn count_users(&self, workspace_id: WorkspaceId) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE workspace_id = $1")
                .bind(workspace_id.to_string())
                .fetch_one(self.pool())
                .await?,
        )
    }

    /// Users that are active and enabled and have no registered passkey on `rp_id`.
    pub async fn users_needing_passkey(
        &self,
        workspace_id: WorkspaceId,
        rp_id: &str,
    ) -> Result<Vec<UserId>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT u.id FROM users u WHERE u.workspace_id = $1 AND u.lifecycle = 'active' AND u.enabled = 1 \
             AND NOT EXISTS (SELECT 1 FROM passkeys p WHERE p.user_id = u.id AND p.rp_id = $2 AND p.state = 'registered') \
             ORDER BY u.id",
        )
        .bind(workspace_id.to_string())
        .bind(rp_id)
        .fetch_all(self.pool())
        .await?;
        ids.iter()
            .map(|id| id.parse().map_err(|e| crate::error::corrupt("users", e)))
            .collect()
    }

    /// Users the directory deleted or disabled whose passkeys still need revoking.
    pub async fn users_pending_deprovision(
        &self,
        workspace_id: WorkspaceId,
    ) -> Result<Vec<User>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE workspace_id = $1 AND lifecycle = 'deprovision_pending' ORDER BY id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(workspace_id.to_string())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(user_from).collect()
    }

    pub async fn set_user_lifecycle(
        &self,
        id: UserId,
        lifecycle: Lifecycle,
    ) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE users SET lifecycle = $1, updated_at = $2 WHERE id = $3")
            .bind(lifecycle.as_str())
            .bind(now_millis())
            .bind(id.to_string())
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind: "user",
                key: id.to_string(),
            });
        }
        Ok(())
    }

    /// The directory removed these users: disable them and mark them for deprovisioning. Returns
    /// how many were known. Users are kept (their passkeys and events still refer to them).
    pub async fn mark_users_removed(
        &self,
        workspace_id: WorkspaceId,
        external_ids: &[String],
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool().begin().await?;
        let mut known = 0;
        let now = now_millis();
        for external_id in external_ids {
            let done = sqlx::query(
                "UPDATE users SET enabled = 0, updated_at = $1, lifecycle = CASE WHEN lifecycle = 'active' \
                 THEN 'deprovision_pending' ELSE lifecycle END WHERE workspace_id = $2 AND external_id = $3",
            )
            .bind(now)
            .bind(workspace_id.to_string())
            .bind(external_id.as_str())
            .execute(&mut *tx)
            .await?;
            known += done.rows_affected();
        }
        tx.commit().await?;
        Ok(known)
    }
}

#[cfg(test)]
mod tests {
    use super::{BATCH_BYTES, batches};

    #[test]
    fn batches_stay_under_the_byte_budget_and_the_row_cap() {
        let sizes = vec![1_000usize; 20];
        let cut = batches(&sizes, |s| *s, 500);
        assert!(cut.iter().all(|b| b.iter().sum::<usize>() <= BATCH_BYTES));
        assert_eq!(cut.iter().map(|b| b.len()).sum::<usize>(), 20);
        assert_eq!(cut[0].len(), BATCH_BYTES / 1_000);
        let rows = batches(&[1usize; 10], |s| *s, 3);
        assert_eq!(
            rows.iter().map(|b| b.len()).collect::<Vec<_>>(),
            [3, 3, 3, 1]
        );
        // A row bigger than the budget still goes, alone.
        let big = batches(&[BATCH_BYTES * 2, 1], |s| *s, 500);
        assert_eq!(big.iter().map(|b| b.len()).collect::<Vec<_>>(), [1, 1]);
        assert!(batches(&[] as &[usize], |s| *s, 500).is_empty());
    }
}
