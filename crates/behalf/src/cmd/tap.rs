//! `behalf tap`.

use std::process::ExitCode;

use behalf_config::Config;
use clap::Args;

#[derive(Debug, Args)]
pub struct TapArgs {}

pub async fn run(_config: Config, _args: TapArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`behalf tap` is not available yet in this build (issue #5)")
}
