//! `/reports`: the provisioning report (who got which passkey, when, by whom, with what result)
//! with its filters and CSV, and `/reports/audit`: what admins did (sign-ins, admins, tokens,
//! settings).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use behalf_app::ops::report::{ReportQuery, ReportRow, write_csv};
use serde::Deserialize;

use super::layout::{Layout, Panel, PanelError, Section, render};
use crate::ServerState;

/// Rows a page shows; the CSV has them all.
const PAGE_ROWS: i64 = 500;

/// The report's filters as the form (and the CSV link) carry them.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub rp: String,
    /// `YYYY-MM-DD` (from its first instant).
    #[serde(default)]
    pub from: String,
    /// `YYYY-MM-DD` (to its last instant).
    #[serde(default)]
    pub to: String,
    /// Which events: [`REPORT_KINDS`]' values (empty: passkeys).
    #[serde(default)]
    pub kind: String,
}

/// The report's kinds of event: (value, label, action prefix). The first is the default: the
/// provisioning report is about passkeys; "everything" is what `behalf report` lists.
pub const REPORT_KINDS: [(&str, &str, Option<&str>); 5] = [
    (
        "",
        "Passkeys (created, registered, revoked)",
        Some("passkey."),
    ),
    (
        "provision",
        "Provisioning skipped or failed",
        Some("provision."),
    ),
    ("tap", "Temporary Access Passes", Some("tap.")),
    ("user", "Deprovisioned users", Some("user.")),
    ("all", "Every event", None),
];

impl Filters {
    /// The action prefix of the chosen kind, or why the kind is none of them.
    fn action_prefix(&self) -> Result<Option<&'static str>, behalf_app::AppError> {
        REPORT_KINDS
            .iter()
            .find(|(value, _, _)| *value == self.kind.trim())
            .map(|(_, _, prefix)| *prefix)
            .ok_or_else(|| {
                behalf_app::AppError::invalid(
                    "kind",
                    format!("{:?} is not one of the report's kinds", self.kind),
                )
            })
    }

    /// (value, label, selected) for the kind select.
    pub fn kinds(&self) -> Vec<(&'static str, &'static str, bool)> {
        REPORT_KINDS
            .iter()
            .map(|(v, l, _)| (*v, *l, *v == self.kind.trim()))
            .collect()
    }

    fn query(&self, action_prefix: Option<&str>, limit: Option<i64>) -> ReportQuery {
        let some = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        ReportQuery {
            user: some(&self.user),
            rp: some(&self.rp),
            since: some(&self.from),
            until: some(&self.to),
            action_prefix: action_prefix.map(str::to_owned),
            limit,
        }
    }

    pub fn query_string(&self) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("user", &self.user),
            ("rp", &self.rp),
            ("from", &self.from),
            ("to", &self.to),
            ("kind", &self.kind),
        ] {
            if !v.trim().is_empty() {
                out.append_pair(k, v.trim());
            }
        }
        out.finish()
    }

    pub fn csv_url(&self) -> String {
        match self.query_string() {
            q if q.is_empty() => "/reports/report.csv".into(),
            q => format!("/reports/report.csv?{q}"),
        }
    }

    pub fn any(&self) -> bool {
        !self.query_string().is_empty()
    }
}

#[derive(Template)]
#[template(path = "reports.html")]
struct ReportsPage {
    layout: Layout,
    filters: Filters,
    rows: Vec<ReportRow>,
    /// The page stopped at [`PAGE_ROWS`]: more rows match.
    truncated: bool,
    limit: i64,
    /// Why the filters were not usable (a bad date, an unknown user).
    error: Option<String>,
}

/// `GET /reports?user=…&rp=…&from=…&to=…`.
pub async fn show(
    State(state): State<ServerState>,
    panel: Panel,
    Query(filters): Query<Filters>,
) -> Result<Response, PanelError> {
    let reader = state.app.reader(&panel.caller);
    let prefix = filters.action_prefix()?;
    let (rows, error) = match reader
        .report(&filters.query(prefix, Some(PAGE_ROWS + 1)))
        .await
    {
        Ok(rows) => (rows, None),
        // A filter that names nothing is said beside the form, which stays as typed.
        Err(e @ (behalf_app::AppError::Invalid { .. } | behalf_app::AppError::NotFound { .. })) => {
            (Vec::new(), Some(e.to_string()))
        }
        Err(e) => return Err(e.into()),
    };
    let truncated = rows.len() as i64 > PAGE_ROWS;
    Ok(render(&ReportsPage {
        layout: panel.layout("Reports", Section::Reports),
        filters,
        rows: rows.into_iter().take(PAGE_ROWS as usize).collect(),
        truncated,
        limit: PAGE_ROWS,
        error,
    }))
}

/// `GET /reports/report.csv?…`: every matching row, with the header `behalf report --format
/// csv` writes.
pub async fn csv(
    State(state): State<ServerState>,
    panel: Panel,
    Query(filters): Query<Filters>,
) -> Result<Response, PanelError> {
    let prefix = filters.action_prefix()?;
    let rows = state
        .app
        .reader(&panel.caller)
        .report(&filters.query(prefix, None))
        .await?;
    let mut body = Vec::new();
    write_csv(&mut body, &rows).map_err(|e| PanelError::App(behalf_app::AppError::internal(e)))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"behalf-report.csv\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response())
}

/// What the audit page can narrow to, and the event actions each takes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKind {
    All,
    SignIns,
    Admins,
    Tokens,
    Settings,
}

impl AuditKind {
    const ALL: [AuditKind; 5] = [
        AuditKind::All,
        AuditKind::SignIns,
        AuditKind::Admins,
        AuditKind::Tokens,
        AuditKind::Settings,
    ];

    fn as_str(self) -> &'static str {
        match self {
            AuditKind::All => "",
            AuditKind::SignIns => "sign-ins",
            AuditKind::Admins => "admins",
            AuditKind::Tokens => "tokens",
            AuditKind::Settings => "settings",
        }
    }

    fn label(self) -> &'static str {
        match self {
            AuditKind::All => "Everything admins did",
            AuditKind::SignIns => "Sign-ins",
            AuditKind::Admins => "Admins (invited, changed, removed)",
            AuditKind::Tokens => "API tokens and CLI sign-ins",
            AuditKind::Settings => "Settings (master key, directory connections)",
        }
    }

    fn parse(text: &str) -> Result<AuditKind, PanelError> {
        AuditKind::ALL
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| {
                behalf_app::AppError::invalid(
                    "kind",
                    format!("{text:?}: choose sign-ins, admins, tokens or settings"),
                )
                .into()
            })
    }

    /// The action prefixes of the event log this kind reads (`admin.sign` is signed in, sign-in
    /// refused, signed out).
    fn prefixes(self) -> &'static [&'static str] {
        match self {
            AuditKind::All => &[
                "admin.",
                "token.",
                "cli_login.",
                "scim_token.",
                "vault.",
                "connection.",
                // Users, groups and members written to Entra ID: asked for, written, failed.
                "outbound.",
            ],
            AuditKind::SignIns => &["admin.sign"],
            AuditKind::Admins => &[
                "admin.created",
                "admin.removed",
                "admin.set_up",
                "admin.updated",
                "admin.disabled",
                "admin.enabled",
            ],
            AuditKind::Tokens => &["token.", "cli_login.", "scim_token."],
            AuditKind::Settings => &["vault.", "connection."],
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuditFilters {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    from: String,
    to: String,
    /// (value, label, selected)
    kinds: Vec<(&'static str, &'static str, bool)>,
    rows: Vec<ReportRow>,
    truncated: bool,
    limit: i64,
    error: Option<String>,
}

/// `GET /reports/audit?kind=…&from=…&to=…`: admin events, newest first.
pub async fn audit(
    State(state): State<ServerState>,
    panel: Panel,
    Query(f): Query<AuditFilters>,
) -> Result<Response, PanelError> {
    let kind = AuditKind::parse(f.kind.trim())?;
    let reader = state.app.reader(&panel.caller);
    let filters = Filters {
        from: f.from.clone(),
        to: f.to.clone(),
        ..Filters::default()
    };
    let mut rows = Vec::new();
    let mut error = None;
    let mut truncated = false;
    for prefix in kind.prefixes() {
        match reader
            .report(&filters.query(Some(prefix), Some(PAGE_ROWS + 1)))
            .await
        {
            Ok(found) => {
                truncated |= found.len() as i64 > PAGE_ROWS;
                rows.extend(found);
            }
            Err(e @ behalf_app::AppError::Invalid { .. }) => {
                error = Some(e.to_string());
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    // RFC 3339 times of one format sort as they read; newest first.
    rows.sort_by(|a, b| b.time.cmp(&a.time));
    truncated |= rows.len() as i64 > PAGE_ROWS;
    rows.truncate(PAGE_ROWS as usize);
    Ok(render(&AuditPage {
        layout: panel.layout("Audit log", Section::Reports),
        from: f.from,
        to: f.to,
        kinds: AuditKind::ALL
            .into_iter()
            .map(|k| (k.as_str(), k.label(), k == kind))
            .collect(),
        rows,
        truncated,
        limit: PAGE_ROWS,
        error,
    }))
}
