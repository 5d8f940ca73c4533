//! `behalf deprovision`.

use std::process::ExitCode;

use behalf_config::Config;
use clap::Args;

#[derive(Debug, Args)]
pub struct DeprovisionArgs {}

pub async fn run(_config: Config, _args: DeprovisionArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`behalf deprovision` is not available yet in this build (issue #6)")
}
