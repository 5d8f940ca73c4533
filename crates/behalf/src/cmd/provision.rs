//! `behalf provision`.

use std::process::ExitCode;

use behalf_config::Config;
use clap::Args;

#[derive(Debug, Args)]
pub struct ProvisionArgs {}

pub async fn run(_config: Config, _args: ProvisionArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`behalf provision` is not available yet in this build (issue #6)")
}
