//! `behalf import [--delta] [--json]`: users, groups and memberships from Entra ID.

use std::process::ExitCode;
use std::time::Duration;

use behalf_config::Config;
use behalf_directory::{ImportMode, ImportSummary, Progress};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::graph_setup::{self, Graph};
use crate::context;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Only what changed since the last import (a full import when there was none).
    #[arg(long)]
    pub delta: bool,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Name of the directory connection in the workspace.
    #[arg(long, default_value = "entra", value_name = "NAME")]
    pub connection: String,
}

/// A spinner with counts on a terminal; a line per phase and every ~10,000 users otherwise.
struct Reporter {
    bar: Option<ProgressBar>,
    last_line: std::sync::atomic::AtomicU64,
}

impl Progress for Reporter {
    fn phase(&self, name: &str) {
        match &self.bar {
            Some(bar) => bar.set_prefix(name.to_string()),
            None => eprintln!("importing {name}…"),
        }
    }

    fn page(&self, s: &ImportSummary) {
        let line = format!(
            "users {} (+{} ~{} -{}) · groups {} · memberships +{} -{}",
            s.users_seen,
            s.users_created,
            s.users_updated,
            s.users_soft_deleted + s.users_hard_deleted,
            s.groups_seen,
            s.memberships_added,
            s.memberships_removed
        );
        match &self.bar {
            Some(bar) => bar.set_message(line),
            None => {
                use std::sync::atomic::Ordering;
                let step = s.users_seen / 10_000;
                if self.last_line.swap(step, Ordering::Relaxed) != step {
                    eprintln!("{line}");
                }
            }
        }
    }
}

#[allow(clippy::print_stdout)] // the summary is the command's output
pub async fn run(config: Config, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let graph = Graph::open(&config)?;
    let app = context::open_app(&config, Some(graph.directory())).await?;
    let mode = if args.delta {
        ImportMode::Delta
    } else {
        ImportMode::Full
    };
    let bar = graph_setup::interactive().then(|| {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix:>6} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let reporter = Reporter {
        bar,
        last_line: std::sync::atomic::AtomicU64::new(0),
    };
    let result = match app.operator(&context::local_caller()) {
        Some(operator) => operator
            .import(&args.connection, mode, &reporter)
            .await
            .map_err(anyhow::Error::from),
        None => Err(anyhow::anyhow!("not allowed")),
    };
    if let Some(bar) = &reporter.bar {
        bar.finish_and_clear();
    }
    graph.finish().await?;
    let summary = result?;
    app.close().await;
    print_summary(&summary, args.json)?;
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::print_stdout)]
pub fn print_summary(summary: &ImportSummary, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(summary)?);
    } else {
        let mode = match summary.mode {
            Some(ImportMode::Delta) => "Delta import",
            _ if summary.fell_back_to_full => "Full import (no earlier import to continue from)",
            _ => "Full import",
        };
        println!(
            "{mode} done in {:.1} s: {} users seen ({} new, {} changed, {} deleted), {} groups seen ({} new, {} changed, {} deleted), memberships +{} -{}.",
            summary.duration_ms as f64 / 1000.0,
            summary.users_seen,
            summary.users_created,
            summary.users_updated,
            summary.users_soft_deleted + summary.users_hard_deleted,
            summary.groups_seen,
            summary.groups_created,
            summary.groups_updated,
            summary.groups_deleted,
            summary.memberships_added,
            summary.memberships_removed,
        );
        println!(
            "Now {} users, {} groups, {} memberships.",
            summary.users_total, summary.groups_total, summary.memberships_total
        );
    }
    Ok(())
}
