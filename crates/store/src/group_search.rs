//! The panel's group list: a search by name, keyset pages in name order, and per group its
//! member count and whether writes to Entra ID wait on it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use behalf_domain::{Group, WorkspaceId};
use sqlx::AssertSqlSafe;

use crate::groups::{GROUP_COLUMNS, group_from};
use crate::rows::Reader;
use crate::{Store, StoreError};

/// The most groups one page holds.
pub const MAX_GROUP_PAGE: u32 = 500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupQuery {
    /// Part of the display name, in any case.
    pub q: Option<String>,
    /// [`GroupPage::next_cursor`] of the page before; None for the first page.
    pub cursor: Option<String>,
    /// Groups per page, 1 to [`MAX_GROUP_PAGE`].
    pub limit: u32,
}

impl Default for GroupQuery {
    fn default() -> Self {
        GroupQuery {
            q: None,
            cursor: None,
            limit: 50,
        }
    }
}

/// One group of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListRow {
    pub group: Group,
    pub members: i64,
    /// Writes on the group (its creation, deletion, memberships) not yet in Entra ID.
    pub pending_writes: i64,
    /// Writes on the group that failed and wait for an admin.
    pub failed_writes: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPage {
    pub groups: Vec<GroupListRow>,
    /// The cursor of the next page; None on the last page.
    pub next_cursor: Option<String>,
}

const CURSOR_VERSION: &str = "g1:";

/// A cursor holds the last row's sort key: its id (fixed width) then its display name.
fn encode_cursor(group: &Group) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "{CURSOR_VERSION}{}:{}",
        group.id, group.display_name
    ))
}

fn decode_cursor(cursor: &str) -> Result<(String, String), StoreError> {
    let invalid = || StoreError::InvalidInput {
        field: "cursor",
        reason: "not a cursor this server made; pass back the next_cursor of a previous page"
            .into(),
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let rest = text.strip_prefix(CURSOR_VERSION).ok_or_else(invalid)?;
    let (id, name) = rest.split_once(':').ok_or_else(invalid)?;
    if id.parse::<behalf_domain::GroupId>().is_err() {
        return Err(invalid());
    }
    Ok((id.to_owned(), name.to_owned()))
}

/// `q` as a LIKE pattern matching it anywhere, its own `%`, `_` and `\` taken literally.
fn contains_pattern(q: &str) -> String {
    let mut out = String::from("%");
    for c in q.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

impl Store {
    /// One page of the workspace's groups whose display name contains `query.q`, in name order.
    /// Groups are few next to users (thousands, not hundreds of thousands): the search tests
    /// each name, without an index of its own.
    pub async fn search_groups(
        &self,
        workspace_id: WorkspaceId,
        query: &GroupQuery,
    ) -> Result<GroupPage, StoreError> {
        if !(1..=MAX_GROUP_PAGE).contains(&query.limit) {
            return Err(StoreError::InvalidInput {
                field: "limit",
                reason: format!("{} is not between 1 and {MAX_GROUP_PAGE}", query.limit),
            });
        }
        let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
        let q = query
            .q
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(contains_pattern);
        let columns = GROUP_COLUMNS
            .split(", ")
            .map(|c| format!("g.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        // Placeholders are numbered in the order they are bound below.
        let mut conditions = vec!["g.workspace_id = $1".to_owned()];
        let mut next = 2;
        if after.is_some() {
            conditions.push(format!(
                "(g.display_name > ${n} OR (g.display_name = ${n} AND g.id > ${m}))",
                n = next,
                m = next + 1
            ));
            next += 2;
        }
        if q.is_some() {
            conditions.push(format!("lower(g.display_name) LIKE ${next} ESCAPE '\\'"));
            next += 1;
        }
        let sql = format!(
            "SELECT {columns}, \
             (SELECT COUNT(*) FROM group_members m WHERE m.group_id = g.id) AS members, \
             (SELECT COUNT(*) FROM directory_writes w WHERE w.group_id = g.id \
              AND w.state IN ('pending', 'sending')) AS pending_writes, \
             (SELECT COUNT(*) FROM directory_writes w WHERE w.group_id = g.id \
              AND w.state = 'failed') AS failed_writes \
             FROM directory_groups g WHERE {} ORDER BY g.display_name, g.id LIMIT ${next}",
            conditions.join(" AND ")
        );
        let mut statement = sqlx::query(AssertSqlSafe(sql)).bind(workspace_id.to_string());
        if let Some((id, name)) = &after {
            statement = statement.bind(name.clone()).bind(id.clone());
        }
        if let Some(q) = &q {
            statement = statement.bind(q.clone());
        }
        // One row more than the page tells whether there is a next page.
        let rows = statement
            .bind(i64::from(query.limit) + 1)
            .fetch_all(self.pool())
            .await?;
        let mut groups = rows
            .iter()
            .map(|row| {
                let r = Reader::new(row, "directory_groups");
                Ok(GroupListRow {
                    group: group_from(row)?,
                    members: r.int("members")?,
                    pending_writes: r.int("pending_writes")?,
                    failed_writes: r.int("failed_writes")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let next_cursor = if groups.len() > query.limit as usize {
            groups.truncate(query.limit as usize);
            groups.last().map(|g| encode_cursor(&g.group))
        } else {
            None
        };
        Ok(GroupPage {
            groups,
            next_cursor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_comes_back_as_it_was_made_and_a_forged_one_is_refused() {
        let group = Group {
            id: behalf_domain::GroupId::new(),
            workspace_id: WorkspaceId::new(),
            connection_id: None,
            external_id: None,
            display_name: "Sales: EMEA".into(),
            description: None,
            created_at: 0,
            updated_at: 0,
        };
        let (id, name) = decode_cursor(&encode_cursor(&group)).unwrap();
        assert_eq!((id, name.as_str()), (group.id.to_string(), "Sales: EMEA"));
        assert!(decode_cursor("not a cursor").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("g1:nope:Sales")).is_err());
    }

    #[test]
    fn a_search_takes_like_wildcards_literally() {
        assert_eq!(contains_pattern("50%_A\\b"), "%50\\%\\_a\\\\b%");
    }
}
