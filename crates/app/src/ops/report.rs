//! The provisioning report and the audit log: who got which passkey, when, by whom, with what
//! result, read from the append-only event log.

use behalf_domain::{Event, MICROSOFT_RP_ID, Millis, Upn, UserId, format_millis, parse_rfc3339};
use behalf_store::EventFilter;
use serde::Serialize;

use crate::{AppError, Reader};

/// The report's filters, as a person types them.
#[derive(Debug, Clone, Default)]
pub struct ReportQuery {
    /// A userPrincipalName or a Behalf user id.
    pub user: Option<String>,
    /// `microsoft` or an RP id.
    pub rp: Option<String>,
    /// RFC 3339, or a date `YYYY-MM-DD` (from its first instant).
    pub since: Option<String>,
    /// RFC 3339, or a date `YYYY-MM-DD` (to its last instant, inclusive).
    pub until: Option<String>,
    /// Only actions starting with this (`passkey.`, `admin.`).
    pub action_prefix: Option<String>,
    pub limit: Option<i64>,
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportRow {
    pub time: String,
    pub actor: String,
    pub action: String,
    pub user_id: Option<UserId>,
    pub upn: String,
    pub rp: String,
    pub outcome: String,
    pub reason: String,
    pub error_code: String,
    pub request_id: String,
    pub detail: serde_json::Value,
}

/// The CSV header, in the order of [`ReportRow::csv_fields`].
pub const CSV_HEADER: [&str; 9] = [
    "time",
    "actor",
    "action",
    "upn",
    "rp",
    "outcome",
    "reason",
    "error_code",
    "request_id",
];

impl ReportRow {
    fn from_event(event: &Event) -> ReportRow {
        let d = &event.detail;
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        ReportRow {
            time: format_millis(event.at),
            actor: event.actor.clone(),
            action: event.action.as_str().to_owned(),
            user_id: event.user_id,
            upn: text(&d.upn),
            rp: event.rp_id.clone().unwrap_or_default(),
            outcome: event.outcome.as_str().to_owned(),
            reason: text(&d.reason),
            error_code: text(&d.error_code),
            request_id: text(&d.request_id),
            detail: serde_json::to_value(d).unwrap_or_default(),
        }
    }

    pub fn csv_fields(&self) -> [&str; 9] {
        [
            &self.time,
            &self.actor,
            &self.action,
            &self.upn,
            &self.rp,
            &self.outcome,
            &self.reason,
            &self.error_code,
            &self.request_id,
        ]
    }
}

/// Writes `rows` as the report's CSV.
pub fn write_csv(writer: impl std::io::Write, rows: &[ReportRow]) -> csv::Result<()> {
    let mut writer = csv::Writer::from_writer(writer);
    writer.write_record(CSV_HEADER)?;
    for row in rows {
        writer.write_record(row.csv_fields())?;
    }
    writer.flush()?;
    Ok(())
}

fn parse_time(field: &str, text: &str, end_of_day: bool) -> Result<Millis, AppError> {
    let text = text.trim();
    let full = if text.len() == 10 {
        let suffix = if end_of_day {
            "T23:59:59.999Z"
        } else {
            "T00:00:00Z"
        };
        format!("{text}{suffix}")
    } else {
        text.to_owned()
    };
    parse_rfc3339(&full).map_err(|e| AppError::invalid(field, e.to_string()))
}

impl Reader<'_> {
    /// The events matching `query`, oldest first.
    pub async fn report(&self, query: &ReportQuery) -> Result<Vec<ReportRow>, AppError> {
        let store = self.app.store();
        let workspace = self.app.workspace().id;
        let user_id = match query.user.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => match text.parse::<UserId>() {
                Ok(id) => Some(id),
                Err(_) => {
                    let upn =
                        Upn::parse(text).map_err(|e| AppError::invalid("user", e.to_string()))?;
                    Some(
                        store
                            .find_user_by_upn(workspace, &upn)
                            .await?
                            .ok_or_else(|| AppError::NotFound {
                                what: "user",
                                key: upn.to_string(),
                            })?
                            .id,
                    )
                }
            },
        };
        let rp_id = match query.rp.as_deref().map(str::trim) {
            None | Some("") => None,
            Some("microsoft") => Some(MICROSOFT_RP_ID.to_owned()),
            Some(other) => Some(other.to_owned()),
        };
        let filter = EventFilter {
            user_id,
            rp_id,
            action_prefix: query.action_prefix.clone(),
            since: query
                .since
                .as_deref()
                .filter(|s| !s.trim().is_empty())
                .map(|t| parse_time("since", t, false))
                .transpose()?,
            until: query
                .until
                .as_deref()
                .filter(|s| !s.trim().is_empty())
                .map(|t| parse_time("until", t, true))
                .transpose()?,
            limit: query.limit,
        };
        let events = store.list_events(workspace, &filter).await?;
        Ok(events.iter().map(ReportRow::from_event).collect())
    }
}
