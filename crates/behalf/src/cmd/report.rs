//! `behalf report`: the provisioning report (who got which passkey, when, by whom, with what
//! result), read from the append-only event log.

use std::process::ExitCode;

use behalf_app::ops::report::{ReportQuery, ReportRow, write_csv};
use behalf_config::Config;
use clap::{Args, ValueEnum};
use serde_json::json;

use crate::cmd::provision::print_stdout;
use crate::context;

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

pub async fn run(mut config: Config, args: ReportArgs) -> anyhow::Result<ExitCode> {
    if args.sandbox {
        config.workspace = "sandbox".into();
    }
    let app = context::open_app(&config, None).await?;
    let query = ReportQuery {
        user: args.user.clone(),
        rp: args.rp.clone(),
        since: args.since.clone(),
        until: args.until.clone(),
        action_prefix: None,
        limit: None,
    };
    let rows = app.reader(&context::local_caller()).report(&query).await?;
    print_rows(&rows, args.format)?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the report in `format` on stdout.
pub fn print_rows(rows: &[ReportRow], format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => {
            let rows: Vec<_> = rows.iter().map(row_json).collect();
            print_stdout(&serde_json::to_string_pretty(&rows)?);
        }
        Format::Csv => write_csv(std::io::stdout(), rows)?,
        Format::Table => {
            print_stdout(&format!(
                "{:<24} {:<22} {:<36} {:<8} {}",
                "time", "action", "user", "outcome", "detail"
            ));
            for r in rows {
                let detail = [&r.reason, &r.error_code, &r.request_id]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" · ");
                print_stdout(&format!(
                    "{:<24} {:<22} {:<36} {:<8} {}",
                    r.time, r.action, r.upn, r.outcome, detail
                ));
            }
            print_stdout(&format!("{} events", rows.len()));
        }
    }
    Ok(())
}

fn row_json(row: &ReportRow) -> serde_json::Value {
    json!({
        "time": row.time,
        "actor": row.actor,
        "action": row.action,
        "user_id": row.user_id.map(|u| u.to_string()),
        "rp": if row.rp.is_empty() { None } else { Some(&row.rp) },
        "outcome": row.outcome,
        "detail": row.detail,
    })
}
