//! `report`, `tap`, `deprovision` and `import` on a server: one request each, the answer shown
//! exactly as the local command shows its own.

use std::process::ExitCode;

use behalf_app::ops::deprovision::Deprovisioned;
use behalf_app::ops::report::ReportRow;
use behalf_app::ops::tap::IssuedTap;
use behalf_directory::{ImportMode, ImportSummary};
use behalf_domain::{Secret, UserId};
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::client::Remote;
use crate::cmd::deprovision::{DeprovisionArgs, print_deprovisioned};
use crate::cmd::import::{ImportArgs, print_summary};
use crate::cmd::provision::EXIT_SOME_FAILED;
use crate::cmd::report::{ReportArgs, print_rows};
use crate::cmd::tap::{TapArgs, print_tap};

/// A report row as the API sends it ([`ReportRow`] is only `Serialize`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Row {
    time: String,
    actor: String,
    action: String,
    user_id: Option<UserId>,
    upn: String,
    rp: String,
    outcome: String,
    // The API may send `null` for an empty text; both read as "".
    reason: Option<String>,
    error_code: Option<String>,
    request_id: Option<String>,
    detail: serde_json::Value,
}

impl From<Row> for ReportRow {
    fn from(r: Row) -> ReportRow {
        ReportRow {
            time: r.time,
            actor: r.actor,
            action: r.action,
            user_id: r.user_id,
            upn: r.upn,
            rp: r.rp,
            outcome: r.outcome,
            reason: r.reason.unwrap_or_default(),
            error_code: r.error_code.unwrap_or_default(),
            request_id: r.request_id.unwrap_or_default(),
            detail: r.detail,
        }
    }
}

pub async fn report(remote: &Remote, args: &ReportArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !args.sandbox,
        "--sandbox picks this machine's sandbox workspace: drop it, the server reports its own workspace"
    );
    let mut query = vec![("format", "json")];
    for (name, value) in [
        ("user", &args.user),
        ("rp", &args.rp),
        ("since", &args.since),
        ("until", &args.until),
    ] {
        if let Some(value) = value {
            query.push((name, value.as_str()));
        }
    }
    let rows: Vec<Row> = remote
        .json(remote.request(Method::GET, "/api/v1/report").query(&query))
        .await?;
    let rows: Vec<ReportRow> = rows.into_iter().map(ReportRow::from).collect();
    print_rows(&rows, args.format)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Deserialize)]
struct Tap {
    user: String,
    temporary_access_pass: String,
    lifetime_in_minutes: u32,
    #[serde(default)]
    is_usable_once: bool,
    start_date_time: Option<String>,
}

pub async fn tap(remote: &Remote, args: &TapArgs) -> anyhow::Result<ExitCode> {
    let request = remote.request(Method::POST, "/api/v1/tap").json(&json!({
        "user": args.user,
        "lifetime_minutes": args.lifetime,
        "usable_once": args.once,
    }));
    let tap: Tap = remote.json(request).await?;
    let issued = IssuedTap {
        user: tap.user,
        method_id: None,
        temporary_access_pass: Secret::new(tap.temporary_access_pass),
        lifetime_in_minutes: tap.lifetime_in_minutes,
        is_usable_once: tap.is_usable_once,
        start_date_time: tap.start_date_time,
    };
    print_tap(&issued, args.json);
    Ok(ExitCode::SUCCESS)
}

#[derive(Deserialize)]
struct DeprovisionAnswer {
    users: Vec<DeprovisionedUser>,
}

#[derive(Deserialize)]
struct DeprovisionedUser {
    upn: String,
    #[serde(default)]
    revoked: u64,
    #[serde(default)]
    failures: Vec<String>,
}

pub async fn deprovision(remote: &Remote, args: &DeprovisionArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !args.sandbox.sandbox,
        "--sandbox starts a sandbox tenant on this machine: drop --server, or drop --sandbox"
    );
    let body = match &args.user {
        Some(upn) => json!({"user": upn}),
        None => json!({"pending": true}),
    };
    let answer: DeprovisionAnswer = remote
        .json(
            remote
                .request(Method::POST, "/api/v1/deprovision")
                .json(&body),
        )
        .await?;
    let done: Vec<Deprovisioned> = answer
        .users
        .into_iter()
        .map(|u| Deprovisioned {
            upn: u.upn,
            revoked: u.revoked,
            failures: u.failures,
        })
        .collect();
    print_deprovisioned(&done, args.json);
    Ok(if done.iter().any(|d| !d.failures.is_empty()) {
        ExitCode::from(EXIT_SOME_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// [`ImportSummary`] as the API sends it (it is only `Serialize`); missing counts read as 0.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Summary {
    mode: Option<String>,
    fell_back_to_full: bool,
    users_seen: u64,
    users_created: u64,
    users_updated: u64,
    users_soft_deleted: u64,
    users_hard_deleted: u64,
    groups_seen: u64,
    groups_created: u64,
    groups_updated: u64,
    groups_deleted: u64,
    memberships_added: u64,
    memberships_removed: u64,
    memberships_unchanged: u64,
    pages: u64,
    users_total: i64,
    groups_total: i64,
    memberships_total: i64,
    duration_ms: u64,
    throttled: u64,
    retries: u64,
}

impl From<Summary> for ImportSummary {
    fn from(s: Summary) -> ImportSummary {
        ImportSummary {
            mode: match s.mode.as_deref() {
                Some("full") => Some(ImportMode::Full),
                Some("delta") => Some(ImportMode::Delta),
                _ => None,
            },
            fell_back_to_full: s.fell_back_to_full,
            users_seen: s.users_seen,
            users_created: s.users_created,
            users_updated: s.users_updated,
            users_soft_deleted: s.users_soft_deleted,
            users_hard_deleted: s.users_hard_deleted,
            groups_seen: s.groups_seen,
            groups_created: s.groups_created,
            groups_updated: s.groups_updated,
            groups_deleted: s.groups_deleted,
            memberships_added: s.memberships_added,
            memberships_removed: s.memberships_removed,
            memberships_unchanged: s.memberships_unchanged,
            pages: s.pages,
            users_total: s.users_total,
            groups_total: s.groups_total,
            memberships_total: s.memberships_total,
            duration_ms: s.duration_ms,
            throttled: s.throttled,
            retries: s.retries,
        }
    }
}

pub async fn import(remote: &Remote, args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let mode = if args.delta { "delta" } else { "full" };
    let path = format!("/api/v1/connections/{}/import", segment(&args.connection));
    let summary: Summary = remote
        .json(
            remote
                .request(Method::POST, &path)
                .json(&json!({"mode": mode})),
        )
        .await?;
    print_summary(&summary.into(), args.json)?;
    Ok(ExitCode::SUCCESS)
}

/// `text` as one URL path segment: everything but RFC 3986's unreserved characters
/// percent-encoded, so a connection named `a/b` or `..` stays one segment.
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `behalf --server URL mail activation | reset`: the server issues the passes (or links) and
/// sends the mails.
pub async fn mail(remote: &Remote, args: &crate::cmd::mail::MailArgs) -> anyhow::Result<ExitCode> {
    use crate::cmd::mail::{MailCommand, Sent};
    let (request, json, kind) = match &args.command {
        MailCommand::Activation(a) => (
            remote
                .request(Method::POST, "/api/v1/mail/activation")
                .json(&json!({"users": a.users, "to": a.to})),
            a.json,
            Sent::Activation,
        ),
        MailCommand::Reset(a) => (
            remote
                .request(Method::POST, "/api/v1/mail/reset")
                .json(&json!({"users": a.users})),
            a.json,
            Sent::Reset,
        ),
    };
    let outcomes: Vec<behalf_app::ops::mail::MailOutcome> = remote.json(request).await?;
    crate::cmd::mail::print_outcomes(&outcomes, json, kind)?;
    Ok(crate::cmd::mail::exit_code(&outcomes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_name_is_one_path_segment() {
        assert_eq!(segment("entra"), "entra");
        assert_eq!(segment("my-conn_2"), "my-conn_2");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
        assert_eq!(segment(".."), "%2E%2E");
        assert_eq!(segment("é"), "%C3%A9");
    }

    #[test]
    fn report_rows_and_summaries_as_the_api_sends_them() {
        let rows: Vec<Row> = serde_json::from_str(
            r#"[{"time":"2024-01-01T00:00:00Z","actor":"server","action":"passkey.registered","user_id":"0190a0b0-0000-7000-8000-000000000001",
                 "upn":"a@x","rp":"login.microsoft.com","outcome":"success","reason":"","error_code":null,"request_id":"r","detail":{"upn":"a@x"}}]"#,
        )
        .unwrap();
        let row = ReportRow::from(rows.into_iter().next().unwrap());
        assert_eq!(row.action, "passkey.registered");
        assert!(row.user_id.is_some());
        assert_eq!(row.error_code, "");
        let summary: Summary =
            serde_json::from_str(r#"{"mode":"delta","users_seen":3,"future_field":1}"#).unwrap();
        let summary = ImportSummary::from(summary);
        assert_eq!(summary.mode, Some(ImportMode::Delta));
        assert_eq!(summary.users_seen, 3);
    }
}
