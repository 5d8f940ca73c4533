//! `behalf mail activation --user UPN [--user UPN…] [--to ADDRESS] [--json]`: issues each user a
//! Temporary Access Pass and mails it with the sign-in steps through the `[mail]` relay. The pass
//! is never printed, stored or logged: only the mail carries it. Exits 3 when some mails failed.
//!
//! `behalf mail reset --user UPN [--user UPN…] [--json]`: mails each user a one-time link to the
//! page of `behalf serve` where they set a new password for Entra ID (`[mail] public_url`, else
//! the address `serve` listens on). The link, like the pass, is in the mail only.

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
    /// Mail each user a one-time link to set a new password, which Behalf writes to Entra ID.
    Reset(ResetArgs),
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    /// A user's UPN; repeat for several.
    #[arg(long = "user", value_name = "UPN", required = true)]
    pub users: Vec<String>,
    /// Print the outcomes as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Which mail the outcomes are of, for their words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    Activation,
    Reset,
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
    if matches!(args.command, MailCommand::Reset(_))
        && config
            .mail
            .public_url
            .as_deref()
            .is_none_or(|u| u.trim().is_empty())
    {
        // Run here, not through a server: the links name `listen`, which may not be where
        // users reach `behalf serve`.
        eprintln!(
            "note: mail.public_url is not set: the links name {} (the listen address)",
            behalf_app::ops::reset::public_base(&config)
        );
    }
    let graph = Graph::open(&config)?;
    let app = context::open_app(&config, Some(graph.directory())).await?;
    let (kind, json) = match &args.command {
        MailCommand::Activation(a) => (Sent::Activation, a.json),
        MailCommand::Reset(a) => (Sent::Reset, a.json),
    };
    let result = match app.provisioner(&context::local_caller()) {
        Some(p) => match &args.command {
            MailCommand::Activation(a) => p.send_activation(&a.users, a.to.as_deref()).await,
            MailCommand::Reset(a) => p.send_reset_link(&a.users).await,
        }
        .map_err(anyhow::Error::from),
        None => Err(anyhow!("not allowed")),
    };
    graph.finish().await?;
    app.close().await;
    let outcomes = result?;
    print_outcomes(&outcomes, json, kind)?;
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
pub fn print_outcomes(outcomes: &[MailOutcome], json: bool, kind: Sent) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(outcomes)?);
        return Ok(());
    }
    for o in outcomes {
        match (&o.error, &o.to, &o.expires) {
            (None, Some(to), Some(expires)) => match kind {
                Sent::Activation => println!(
                    "sent     {}: activation mail to {to}, pass valid until {expires}",
                    o.upn
                ),
                Sent::Reset => println!(
                    "sent     {}: password-reset link to {to}, valid once until {expires}",
                    o.upn
                ),
            },
            (error, _, _) => println!(
                "FAILED   {}: {}",
                o.upn,
                error.as_deref().unwrap_or("not sent")
            ),
        }
    }
    Ok(())
}
