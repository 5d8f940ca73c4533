//! `behalf doctor`.

use std::process::ExitCode;

use behalf_config::Config;
use clap::Args;

#[derive(Debug, Args)]
pub struct DoctorArgs {}

pub async fn run(_config: Config, _args: DoctorArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`behalf doctor` is not available yet in this build (issue #5)")
}
