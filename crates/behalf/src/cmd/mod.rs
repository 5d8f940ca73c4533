//! One module per subcommand; each returns the process exit code.

pub mod admin;
pub mod deprovision;
pub mod doctor;
pub mod graph_setup;
pub mod import;
pub mod key;
pub mod login;
pub mod mail;
pub mod outbound;
pub mod provision;
pub mod report;
pub mod scim_token;
mod serve;
pub mod tap;
pub mod token;
pub mod vault;

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::{context, logging};

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = context::load_config(&cli.global)?;
    logging::init(&config, cli.global.verbose, cli.global.log_json);
    if let Some(server) = &cli.global.server {
        return crate::remote::run(
            config,
            server,
            cli.global.token.as_deref(),
            cli.command,
            cli.global.verbose > 0,
        )
        .await;
    }
    match cli.command {
        Command::Serve(args) => serve::run(config, args).await,
        Command::Login(args) => login::run(config, args).await,
        Command::Logout => login::logout(config).await,
        Command::Import(args) => import::run(config, args).await,
        Command::Tap(args) => tap::run(config, args).await,
        Command::Doctor(args) => doctor::run(config, args).await,
        Command::Provision(args) => provision::run(config, args, cli.global.verbose > 0).await,
        Command::Deprovision(args) => deprovision::run(config, args).await,
        Command::Report(args) => report::run(config, args).await,
        Command::Sandbox(args) => {
            behalf_sandbox::run(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin(args) => admin::run(config, args).await,
        Command::Token(args) => token::run(config, args).await,
        Command::ScimToken(args) => scim_token::run(config, args).await,
        Command::Key(args) => key::run(config, args).await,
        Command::Vault(args) => vault::run(config, args).await,
        Command::Mail(args) => mail::run(config, args).await,
        Command::Outbound(args) => outbound::run(config, args).await,
    }
}
