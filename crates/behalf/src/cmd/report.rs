//! `behalf report`.

use std::process::ExitCode;

use behalf_config::Config;
use clap::Args;

#[derive(Debug, Args)]
pub struct ReportArgs {}

pub async fn run(_config: Config, _args: ReportArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`behalf report` is not available yet in this build (issue #6)")
}
