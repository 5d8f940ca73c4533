//! The append-only event log: audit trail and provisioning report in one.

use behalf_domain::{Event, Millis, NewEvent, UserId, WorkspaceId};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

use crate::rows::Reader;
use crate::{Store, StoreError, WriteSet};

const EVENT_COLUMNS: &str = "id, workspace_id, at, actor, action, user_id, rp_id, outcome, detail";

fn event_from(row: &AnyRow) -> Result<Event, StoreError> {
    let r = Reader::new(row, "events");
    Ok(Event {
        id: r.parse("id")?,
        workspace_id: r.parse("workspace_id")?,
        at: r.int("at")?,
        actor: r.text("actor")?,
        action: r.parse("action")?,
        user_id: r.opt_parse("user_id")?,
        rp_id: r.opt_text("rp_id")?,
        outcome: r.parse("outcome")?,
        detail: match r.json("detail")? {
            // Events written before details were typed may hold `null`.
            serde_json::Value::Null => Default::default(),
            value => {
                serde_json::from_value(value).map_err(|e| crate::error::corrupt("events", e))?
            }
        },
    })
}

/// Which events a report wants. Every field narrows; all `None` is everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub user_id: Option<UserId>,
    pub rp_id: Option<String>,
    pub action_prefix: Option<String>,
    pub since: Option<Millis>,
    pub until: Option<Millis>,
    pub limit: Option<i64>,
}

impl Store {
    pub async fn append_event(
        &self,
        workspace_id: WorkspaceId,
        event: NewEvent,
    ) -> Result<Event, StoreError> {
        let mut set = WriteSet::new();
        let event = set.append_event(workspace_id, event);
        self.commit(set).await?;
        Ok(event)
    }

    /// Events in the order they were written.
    pub async fn list_events(
        &self,
        workspace_id: WorkspaceId,
        filter: &EventFilter,
    ) -> Result<Vec<Event>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE workspace_id = $1 \
             AND ($2 = '' OR user_id = $2) AND ($3 = '' OR rp_id = $3) \
             AND ($4 = '' OR action LIKE $4 ESCAPE '\\') AND at >= $5 AND at <= $6 ORDER BY seq LIMIT $7"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(workspace_id.to_string())
            .bind(filter.user_id.map(|u| u.to_string()).unwrap_or_default())
            .bind(filter.rp_id.clone().unwrap_or_default())
            .bind(
                filter
                    .action_prefix
                    .as_ref()
                    // A prefix, not a pattern: `_` (as in `security_key.`) and `%` match themselves.
                    .map(|p| {
                        let escaped = p
                            .replace('\\', "\\\\")
                            .replace('%', "\\%")
                            .replace('_', "\\_");
                        format!("{escaped}%")
                    })
                    .unwrap_or_default(),
            )
            .bind(filter.since.unwrap_or(i64::MIN))
            .bind(filter.until.unwrap_or(i64::MAX))
            .bind(filter.limit.unwrap_or(i64::MAX))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(event_from).collect()
    }
}
