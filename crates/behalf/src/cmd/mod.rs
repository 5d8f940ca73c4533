//! One module per subcommand; each returns the process exit code.

mod serve;

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::{context, logging};

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = context::load_config(&cli.global)?;
    logging::init(&config, cli.global.verbose, cli.global.log_json);
    match cli.command {
        Command::Serve(args) => serve::run(config, args).await,
    }
}
