//! `behalf outbound run | list`: the writes to Entra ID queued by the panel or the API (users,
//! groups, members), sent from this machine as the server's workers send them, and listed.

use std::process::ExitCode;
use std::time::Duration;

use behalf_config::Config;
use behalf_domain::{WriteState, format_millis};
use clap::{Args, Subcommand};

use crate::cmd::provision::print_stdout;
use crate::context;

#[derive(Debug, Args)]
pub struct OutboundArgs {
    #[command(subcommand)]
    pub command: OutboundCommand,
}

#[derive(Debug, Subcommand)]
pub enum OutboundCommand {
    /// Send the queued writes until none is left to send (waiting out Graph's Retry-After and
    /// backoffs); exit 3 when some failed and wait for an admin.
    Run,
    /// List the writes (default: those not done).
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Comma-separated states: pending, sending, done, failed, discarded.
    #[arg(long, value_name = "S", default_value = "pending,sending,failed")]
    pub state: String,
    #[arg(long)]
    pub json: bool,
}

/// The longest a run sleeps for a write's next attempt before looking again.
const NAP: Duration = Duration::from_secs(30);

pub async fn run(config: Config, args: OutboundArgs) -> anyhow::Result<ExitCode> {
    let app = context::open_app(&config, None).await?;
    let result = run_on(&app, args.command).await;
    app.close().await;
    result
}

async fn run_on(app: &behalf_app::App, command: OutboundCommand) -> anyhow::Result<ExitCode> {
    let operator = context::local(app.operator(&context::local_caller()))?;
    match command {
        OutboundCommand::Run => {
            let (_stop_tx, stop) = tokio::sync::watch::channel(false);
            let (mut done, mut retried) = (0, 0);
            loop {
                let s = operator.run_writes(&stop).await?;
                done += s.done;
                retried += s.retried;
                if s.done + s.failed + s.retried > 0 {
                    continue;
                }
                // Nothing claimable now: wait for the first write that waits on time, or stop
                // when none does (what is left waits on a failed write, for an admin).
                match operator.next_write_in().await? {
                    Some(ms) => {
                        let wait = Duration::from_millis(u64::try_from(ms).unwrap_or(0));
                        tokio::time::sleep(wait.clamp(Duration::from_millis(50), NAP)).await;
                    }
                    None => break,
                }
            }
            let failed = operator
                .reader()
                .directory_writes(&[WriteState::Failed], 10_000)
                .await?;
            eprintln!(
                "{done} writes reached Entra ID ({retried} tried again later); {} failed",
                failed.len()
            );
            for w in &failed {
                eprintln!(
                    "  {} {} {}: {}",
                    w.id,
                    w.kind,
                    w.subject,
                    w.error.as_deref().unwrap_or("")
                );
            }
            Ok(if failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
        OutboundCommand::List(args) => {
            let mut states = Vec::new();
            for s in args
                .state
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                states.push(s.parse::<WriteState>()?);
            }
            let writes = operator.reader().directory_writes(&states, 10_000).await?;
            if args.json {
                let rows: Vec<serde_json::Value> = writes
                    .iter()
                    .map(|w| {
                        serde_json::json!({
                            "id": w.id, "kind": w.kind, "subject": w.subject, "state": w.state,
                            "attempts": w.attempts, "graph_id": w.graph_id, "error": w.error,
                            "created_by": w.created_by, "created_at": format_millis(w.created_at),
                        })
                    })
                    .collect();
                print_stdout(&serde_json::to_string_pretty(&rows)?);
            } else {
                print_stdout(&format!(
                    "{:<36} {:<13} {:<9} {:>3} {:<40} error",
                    "id", "kind", "state", "try", "subject"
                ));
                for w in &writes {
                    print_stdout(&format!(
                        "{:<36} {:<13} {:<9} {:>3} {:<40} {}",
                        w.id,
                        w.kind,
                        w.state,
                        w.attempts,
                        w.subject,
                        w.error.as_deref().unwrap_or("")
                    ));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
