//! `behalf report`: the provisioning report (who got which passkey, when, by whom, with what
//! result), read from the append-only event log.

use std::process::ExitCode;

use anyhow::Context as _;
use behalf_config::Config;
use behalf_domain::{Event, Upn, format_millis, parse_rfc3339};
use behalf_store::EventFilter;
use clap::{Args, ValueEnum};
use serde_json::json;

use crate::cmd::provision::print_stdout;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Only this user (userPrincipalName or Behalf user id).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Only this relying party (`microsoft` or an RP id).
    #[arg(long, value_name = "NAME")]
    pub rp: Option<String>,
    /// From this time (RFC 3339, or a date YYYY-MM-DD).
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Until this time (RFC 3339, or a date YYYY-MM-DD, inclusive).
    #[arg(long, value_name = "T")]
    pub until: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Use the sandbox workspace (where `--sandbox` runs record their events).
    #[arg(long)]
    pub sandbox: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

fn parse_time(text: &str, end_of_day: bool) -> anyhow::Result<i64> {
    if text.len() == 10 {
        let suffix = if end_of_day {
            "T23:59:59.999Z"
        } else {
            "T00:00:00Z"
        };
        return Ok(parse_rfc3339(&format!("{text}{suffix}"))?);
    }
    Ok(parse_rfc3339(text)?)
}

pub async fn run(mut config: Config, args: ReportArgs) -> anyhow::Result<ExitCode> {
    if args.sandbox {
        config.workspace = "sandbox".into();
    }
    let store = crate::context::open_store(&config).await?;
    let workspace = store.ensure_workspace(&config.workspace).await?;
    let user_id = match &args.user {
        None => None,
        Some(text) => match text.parse() {
            Ok(id) => Some(id),
            Err(_) => {
                let upn = Upn::parse(text)?;
                Some(
                    store
                        .find_user_by_upn(workspace.id, &upn)
                        .await?
                        .with_context(|| format!("unknown user {upn}"))?
                        .id,
                )
            }
        },
    };
    let rp_id = args.rp.as_deref().map(|rp| match rp {
        "microsoft" => behalf_domain::MICROSOFT_RP_ID.to_owned(),
        other => other.to_owned(),
    });
    let filter = EventFilter {
        user_id,
        rp_id,
        action_prefix: None,
        since: args
            .since
            .as_deref()
            .map(|t| parse_time(t, false))
            .transpose()
            .context("--since")?,
        until: args
            .until
            .as_deref()
            .map(|t| parse_time(t, true))
            .transpose()
            .context("--until")?,
        limit: None,
    };
    let events = store.list_events(workspace.id, &filter).await?;
    match args.format {
        Format::Json => {
            let rows: Vec<_> = events.iter().map(row_json).collect();
            print_stdout(&serde_json::to_string_pretty(&rows)?);
        }
        Format::Csv => {
            let mut writer = csv::Writer::from_writer(std::io::stdout());
            writer.write_record([
                "time",
                "actor",
                "action",
                "upn",
                "rp",
                "outcome",
                "reason",
                "error_code",
                "request_id",
            ])?;
            for e in &events {
                writer.write_record(row_fields(e))?;
            }
            writer.flush()?;
        }
        Format::Table => {
            print_stdout(&format!(
                "{:<24} {:<22} {:<36} {:<8} {}",
                "time", "action", "user", "outcome", "detail"
            ));
            for e in &events {
                let f = row_fields(e);
                let detail = [&f[6], &f[7], &f[8]]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" · ");
                print_stdout(&format!(
                    "{:<24} {:<22} {:<36} {:<8} {}",
                    f[0], f[2], f[3], f[5], detail
                ));
            }
            print_stdout(&format!("{} events", events.len()));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn detail_str(event: &Event, key: &str) -> String {
    event
        .detail
        .get(key)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned()
}

fn row_fields(event: &Event) -> [String; 9] {
    [
        format_millis(event.at),
        event.actor.clone(),
        event.action.clone(),
        detail_str(event, "upn"),
        event.rp_id.clone().unwrap_or_default(),
        event.outcome.as_str().to_owned(),
        detail_str(event, "reason"),
        detail_str(event, "error_code"),
        detail_str(event, "request_id"),
    ]
}

fn row_json(event: &Event) -> serde_json::Value {
    json!({
        "time": format_millis(event.at),
        "actor": event.actor,
        "action": event.action,
        "user_id": event.user_id.map(|u| u.to_string()),
        "rp": event.rp_id,
        "outcome": event.outcome.as_str(),
        "detail": event.detail,
    })
}
