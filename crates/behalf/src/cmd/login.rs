//! `behalf login`.

use std::process::ExitCode;

use behalf_config::Config;
use clap::Args;

#[derive(Debug, Args)]
pub struct LoginArgs {}

pub async fn run(_config: Config, _args: LoginArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`behalf login` is not available yet in this build (issue #5)")
}

pub async fn logout(_config: Config) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`behalf logout` is not available yet in this build (issue #5)")
}
