//! The user list: a prefix search and filters over a workspace's users, paged by a cursor.
//!
//! Pages are ordered by `upn_key`, which is unique in a workspace (`UNIQUE (workspace_id,
//! upn_key)`), so it alone is a total order and the key of the keyset paging: a page starts
//! after the last `upn_key` of the one before, an index range scan whatever the page's depth,
//! stable under inserts and deletes. Ordering by (upn_key, id) would name the same order; the
//! id is left out so that both backends walk the unique index without a sort for the tie-break.
//! Search keys are compared bytewise on both backends (see migration 0004), so a cursor and a
//! prefix mean the same thing on each.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use behalf_domain::{
    ConnectionKind, GroupId, SecurityKeyKind, User, UserId, UserSource, WorkspaceId,
};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

use crate::rows::Reader;
use crate::users::user_from;
use crate::{Backend, Store, StoreError};

/// The largest page [`Store::search_users`] serves.
pub const MAX_PAGE: u32 = 500;

/// What the user list asks for. Every filter given must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserQuery {
    /// A prefix of the UPN, the display name or the mail address, in any case.
    pub q: Option<String>,
    /// Members of this group.
    pub group: Option<GroupId>,
    pub enabled: Option<bool>,
    /// Whether the user has a `registered` passkey on any relying party.
    pub has_passkey: Option<bool>,
    /// Users with a security key of this kind that is not revoked.
    pub key_kind: Option<SecurityKeyKind>,
    /// Where the user came from: their directory connection's kind, or none (made in Behalf).
    pub source: Option<UserSource>,
    /// [`UserPage::next_cursor`] of the page before; None for the first page.
    pub cursor: Option<String>,
    /// Users per page, 1 to [`MAX_PAGE`].
    pub limit: u32,
}

impl Default for UserQuery {
    fn default() -> Self {
        UserQuery {
            q: None,
            group: None,
            enabled: None,
            has_passkey: None,
            key_kind: None,
            source: None,
            cursor: None,
            limit: 50,
        }
    }
}

/// One user of the list, with what the list shows about their passkeys and keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserListRow {
    pub user: User,
    /// Whether the user has a `registered` passkey on any relying party.
    pub has_passkey: bool,
    /// How many `registered` passkeys the user has.
    pub passkeys: i64,
    /// The kinds of the user's security keys that are not revoked, each once, sorted.
    pub key_kinds: Vec<SecurityKeyKind>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPage {
    pub users: Vec<UserListRow>,
    /// The cursor of the next page; None on the last page.
    pub next_cursor: Option<String>,
}

const CURSOR_VERSION: &str = "u1:";

fn encode_cursor(upn_key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_VERSION}{upn_key}"))
}

fn decode_cursor(cursor: &str) -> Result<String, StoreError> {
    let invalid = |reason: &str| StoreError::InvalidInput {
        field: "cursor",
        reason: format!("{reason}; pass back the next_cursor of a previous page"),
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| invalid("not a cursor this server made (not base64url)"))?;
    let text = String::from_utf8(bytes).map_err(|_| invalid("not a cursor this server made"))?;
    text.strip_prefix(CURSOR_VERSION)
        .filter(|key| !key.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| invalid("not a cursor this server made"))
}

/// How many users in UPN order a search tests before it collects its matches instead (see
/// [`Store::search_users`]).
const SCAN_WINDOW: usize = 2_000;

/// The values bound to the statements being assembled (their clauses are constants of this
/// module; values are never spliced in).
struct Sql {
    binds: Vec<Value>,
}

enum Value {
    Text(String),
    Int(i64),
}

impl Sql {
    /// Binds `value` and returns its placeholder.
    fn param(&mut self, value: Value) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }
}

impl Store {
    /// One page of the workspace's users matching `query`, ordered by UPN (case-insensitively).
    pub async fn search_users(
        &self,
        workspace_id: WorkspaceId,
        query: &UserQuery,
    ) -> Result<UserPage, StoreError> {
        if !(1..=MAX_PAGE).contains(&query.limit) {
            return Err(StoreError::InvalidInput {
                field: "limit",
                reason: format!("{} is not between 1 and {MAX_PAGE}", query.limit),
            });
        }
        let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
        let mut sql = Sql { binds: Vec::new() };
        let ws = sql.param(Value::Text(workspace_id.to_string()));
        // Where the page may start: the workspace, after the cursor.
        let mut base = vec![format!("u.workspace_id = {ws}")];
        if let Some(after) = after {
            let a = sql.param(Value::Text(after));
            base.push(format!("u.upn_key > {a}"));
        }
        let mut filters = Vec::new();
        // On SQLite, how to collect the users a sparse filter keeps through an index, best
        // first (see below).
        let mut drivers = Vec::new();
        if let Some(q) = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            // A prefix as a range, [q, q + the greatest character): bytewise comparison makes it
            // an index range scan of each key's index.
            let q = q.to_lowercase();
            let upper = format!("{q}{}", char::MAX);
            let (lo, hi) = (sql.param(Value::Text(q)), sql.param(Value::Text(upper)));
            filters.push(format!(
                "((u.upn_key >= {lo} AND u.upn_key < {hi}) OR (u.name_key >= {lo} AND u.name_key < {hi}) \
                 OR (u.mail_key >= {lo} AND u.mail_key < {hi}))"
            ));
            drivers.push(format!(
                "SELECT id FROM users WHERE workspace_id = {ws} AND upn_key >= {lo} AND upn_key < {hi} \
                 UNION SELECT id FROM users WHERE workspace_id = {ws} AND name_key >= {lo} AND name_key < {hi} \
                 UNION SELECT id FROM users WHERE workspace_id = {ws} AND mail_key >= {lo} AND mail_key < {hi}"
            ));
        }
        if let Some(group) = query.group {
            let g = sql.param(Value::Text(group.to_string()));
            filters.push(format!(
                "EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = {g} AND m.user_id = u.id)"
            ));
            drivers.push(format!(
                "SELECT user_id AS id FROM group_members WHERE group_id = {g}"
            ));
        }
        if let Some(enabled) = query.enabled {
            let e = sql.param(Value::Int(i64::from(enabled)));
            filters.push(format!("u.enabled = {e}"));
        }
        if let Some(kind) = query.key_kind {
            let k = sql.param(Value::Text(kind.as_str().to_owned()));
            filters.push(format!(
                "EXISTS (SELECT 1 FROM security_keys k WHERE k.user_id = u.id AND k.kind = {k} \
                 AND k.state <> 'revoked')"
            ));
            drivers.push(format!(
                "SELECT DISTINCT user_id AS id FROM security_keys WHERE kind = {k} AND state <> 'revoked'"
            ));
        }
        if let Some(has) = query.has_passkey {
            filters.push(format!(
                "{}EXISTS (SELECT 1 FROM passkeys p WHERE p.user_id = u.id AND p.state = 'registered')",
                if has { "" } else { "NOT " }
            ));
            if has {
                drivers.push(
                    "SELECT DISTINCT user_id AS id FROM passkeys WHERE state = 'registered'"
                        .to_owned(),
                );
            }
        }
        let connection_kind = match query.source {
            None => None,
            Some(UserSource::Behalf) => {
                filters.push("u.connection_id IS NULL".to_owned());
                None
            }
            Some(UserSource::EntraId) => Some(ConnectionKind::EntraId),
            Some(UserSource::Scim) => Some(ConnectionKind::Scim),
        };
        if let Some(kind) = connection_kind {
            let k = sql.param(Value::Text(kind.as_str().to_owned()));
            filters.push(format!(
                "u.connection_id IN (SELECT c.id FROM directory_connections c \
                 WHERE c.workspace_id = {ws} AND c.kind = {k})"
            ));
        }
        // One row more than the page tells whether there is a next page.
        let limit = sql.param(Value::Int(i64::from(query.limit) + 1));
        let columns = format!(
            "{}, u.upn_key, (SELECT COUNT(*) FROM passkeys p WHERE p.user_id = u.id \
             AND p.state = 'registered') AS passkeys",
            crate::users::USER_COLUMNS
                .split(", ")
                .map(|c| format!("u.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let base = base.join(" AND ");
        let filters = filters
            .iter()
            .map(|f| format!(" AND {f}"))
            .collect::<String>();
        let plain = format!(
            "SELECT {columns} FROM users u WHERE {base}{filters} ORDER BY u.upn_key LIMIT {limit}"
        );
        // Walking the UPN index in order and testing each user costs the page size divided by
        // the share of users a filter keeps; collecting the matches through an index and
        // sorting them costs that share of all users. PostgreSQL's planner estimates the share
        // from its statistics (a prefix from the key's histogram, a group from group_id's
        // common values) and picks; measured, it does (BENCHMARKS.md). SQLite keeps no
        // statistics and always walks the index, which for a rare match (a name, a small group)
        // reads all 100,000 users: 40–70 ms. So on SQLite a search first walks a window of the
        // next SCAN_WINDOW users, which fills the page for any filter keeping more than 1 in
        // 40; only when it does not are the matches collected, and then they are few (or the
        // window reached the end of the list).
        let mut rows = if filters.is_empty() || self.backend() == Backend::Postgres {
            self.fetch_users(&plain, &sql.binds).await?
        } else {
            let window = format!(
                "SELECT {columns} FROM (SELECT * FROM users u WHERE {base} ORDER BY u.upn_key \
                 LIMIT {SCAN_WINDOW}) u WHERE 1 = 1{filters} ORDER BY u.upn_key LIMIT {limit}"
            );
            let rows = self.fetch_users(&window, &sql.binds).await?;
            if rows.len() > query.limit as usize {
                rows
            } else if let Some(driver) = drivers.first() {
                // CROSS JOIN makes SQLite read the driver first, then each match by id.
                let collect = format!(
                    "SELECT {columns} FROM ({driver}) d CROSS JOIN users u \
                     WHERE u.id = d.id AND {base}{filters} ORDER BY u.upn_key LIMIT {limit}"
                );
                self.fetch_users(&collect, &sql.binds).await?
            } else {
                // Only filters no index serves (enabled, source, no passkey): walk on.
                self.fetch_users(&plain, &sql.binds).await?
            }
        };
        let more = rows.len() > query.limit as usize;
        rows.truncate(query.limit as usize);
        let next_cursor = match rows.last() {
            Some(last) if more => Some(encode_cursor(&Reader::new(last, "users").text("upn_key")?)),
            _ => None,
        };
        let mut users = Vec::with_capacity(rows.len());
        for row in &rows {
            let passkeys = Reader::new(row, "users").int("passkeys")?;
            users.push(UserListRow {
                user: user_from(row)?,
                has_passkey: passkeys > 0,
                passkeys,
                key_kinds: Vec::new(),
            });
        }
        let ids: Vec<UserId> = users.iter().map(|u| u.user.id).collect();
        let mut kinds = self.key_kinds_of(&ids).await?;
        for row in &mut users {
            row.key_kinds = kinds.remove(&row.user.id).unwrap_or_default();
        }
        Ok(UserPage { users, next_cursor })
    }

    async fn fetch_users(&self, text: &str, binds: &[Value]) -> Result<Vec<AnyRow>, StoreError> {
        let mut statement = sqlx::query(AssertSqlSafe(text.to_owned()));
        for value in binds {
            statement = match value {
                Value::Text(text) => statement.bind(text.clone()),
                Value::Int(n) => statement.bind(*n),
            };
        }
        Ok(statement.fetch_all(self.pool()).await?)
    }

    /// The kinds of the users' keys that are not revoked, each once, sorted.
    async fn key_kinds_of(
        &self,
        ids: &[UserId],
    ) -> Result<HashMap<UserId, Vec<SecurityKeyKind>>, StoreError> {
        let mut out: HashMap<UserId, Vec<SecurityKeyKind>> = HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let sql = format!(
            "SELECT DISTINCT user_id, kind FROM security_keys WHERE state <> 'revoked' AND user_id IN ({})",
            crate::placeholders(1, ids.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(id.to_string());
        }
        for row in query.fetch_all(self.pool()).await? {
            let r = Reader::new(&row, "security_keys");
            out.entry(r.parse("user_id")?)
                .or_default()
                .push(r.parse("kind")?);
        }
        for kinds in out.values_mut() {
            kinds.sort();
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::{decode_cursor, encode_cursor};

    #[test]
    fn cursors_round_trip_and_strangers_are_refused() {
        let key = "émile.zola@contoso.com";
        assert_eq!(decode_cursor(&encode_cursor(key)).unwrap(), key);
        for bad in ["", "!!!", "dTE6", "eDE6YQ", "////"] {
            let err = decode_cursor(bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    crate::StoreError::InvalidInput {
                        field: "cursor",
                        ..
                    }
                ),
                "{bad:?}: {err:?}"
            );
        }
    }
}
