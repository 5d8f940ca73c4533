//! `behalf doctor [--json]`: reads the tenant's passkey (FIDO2) policy and the app's permissions
//! and says, in plain words, what would stop provisioning. Exits 1 when something would.

use std::process::ExitCode;

use behalf_app::ops::doctor::{DoctorReport, Status};
use behalf_config::Config;
use clap::Args;

use super::graph_setup::Graph;
use crate::context;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
    /// The AAGUID the passkeys will carry (default: provisioning.aaguid).
    #[arg(long, value_name = "GUID")]
    pub aaguid: Option<String>,
}

#[allow(clippy::print_stdout)] // the findings are the command's output
pub async fn run(config: Config, args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let graph = Graph::open(&config)?;
    let app = context::open_app(&config, Some(graph.directory())).await?;
    let report = app
        .reader(&context::local_caller())
        .doctor(args.aaguid.as_deref())
        .await;
    graph.finish().await?;
    let report = report?;
    print_report(&report, args.json)?;
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[allow(clippy::print_stdout)]
pub fn print_report(report: &DoctorReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    for f in &report.findings {
        let tag = match f.status {
            Status::Ok => "ok     ",
            Status::Warning => "warning",
            Status::Problem => "PROBLEM",
        };
        println!("{tag}  {}: {}", f.check, f.message);
    }
    if report.ok {
        println!("Nothing found that would stop provisioning.");
    } else {
        println!(
            "{} problem(s) would stop provisioning; fix them in the Entra admin center and run `behalf doctor` again.",
            report.problems()
        );
    }
    Ok(())
}
