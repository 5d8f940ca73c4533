//! `behalf import`.

use std::process::ExitCode;

use behalf_config::Config;
use clap::Args;

#[derive(Debug, Args)]
pub struct ImportArgs {}

pub async fn run(_config: Config, _args: ImportArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`behalf import` is not available yet in this build (issue #5)")
}
