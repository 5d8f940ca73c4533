//! `behalf mail activation --user UPN [--user UPN…] [--to ADDRESS] [--json]`: issues each user a
//! Temporary Access Pass and mails it with the sign-in steps through the `[mail]` relay. The pass
//! is never printed, stored or logged: only the mail carries it. Exits 3 when some mails failed.

use std::process::ExitCode;

use anyhow::anyhow;
use behalf_app::ops::mail::MailOutcome;
use behalf_config::Config;
use clap::{Args, Subcommand};

use super::graph_setup::Graph;
use crate::context;

#[derive(Debug, Args)]
pub struct MailArgs {
    #[command(subcommand)]
    pub command: MailCommand,
}

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Issue a Temporary Access Pass to each user and mail it with the steps to add a passkey.
    Activation(ActivationArgs),
}

#[derive(Debug, Args)]
pub struct ActivationArgs {
    /// A user's UPN; repeat for several.
    #[arg(long = "user", value_name = "UPN", required = true)]
    pub users: Vec<String>,
    /// Send the (one) user's mail to this address instead of their own.
    #[arg(long, value_name = "ADDRESS")]
    pub to: Option<String>,
    /// Print the outcomes as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(config: Config, args: MailArgs) -> anyhow::Result<ExitCode> {
    let MailCommand::Activation(args) = args.command;
    let graph = Graph::open(&config)?;
    let app = context::open_app(&config, Some(graph.directory())).await?;
    let result = match app.provisioner(&context::local_caller()) {
        Some(p) => p
            .send_activation(&args.users, args.to.as_deref())
            .await
            .map_err(anyhow::Error::from),
        None => Err(anyhow!("not allowed")),
    };
    graph.finish().await?;
    app.close().await;
    let outcomes = result?;
    print_outcomes(&outcomes, args.json)?;
    Ok(exit_code(&outcomes))
}

pub fn exit_code(outcomes: &[MailOutcome]) -> ExitCode {
    if outcomes.iter().all(|o| o.sent) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    }
}

#[allow(clippy::print_stdout)] // the outcomes are the command's output
pub fn print_outcomes(outcomes: &[MailOutcome], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(outcomes)?);
        return Ok(());
    }
    for o in outcomes {
        match (&o.error, &o.to, &o.expires) {
            (None, Some(to), Some(expires)) => println!(
                "sent     {}: activation mail to {to}, pass valid until {expires}",
                o.upn
            ),
            (error, _, _) => println!(
                "FAILED   {}: {}",
                o.upn,
                error.as_deref().unwrap_or("not sent")
            ),
        }
    }
    Ok(())
}
