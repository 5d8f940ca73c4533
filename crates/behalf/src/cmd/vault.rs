//! `behalf vault rotate-key`: replaces the workspace's master key, on this machine (the panel's
//! Settings → Vault and `POST /api/v1/vault/rotate` do the same on a running server).

use std::process::ExitCode;

use behalf_config::Config;
use clap::{Args, Subcommand};
use serde_json::json;

use crate::cmd::provision::print_stdout;
use crate::context;

#[derive(Debug, Args)]
pub struct VaultArgs {
    #[command(subcommand)]
    pub command: VaultCommand,
    /// In the sandbox workspace (the one `serve --sandbox` uses).
    #[arg(long, global = true)]
    pub sandbox: bool,
}

#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// Generate a new master key, re-wrap every sealed credential and secret with it, and
    /// replace the key file. The old key opens nothing afterwards; back up the new file and
    /// restart running servers that share the database.
    RotateKey(RotateArgs),
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    #[arg(long)]
    pub json: bool,
}

pub async fn run(mut config: Config, args: VaultArgs) -> anyhow::Result<ExitCode> {
    if args.sandbox {
        config.workspace = "sandbox".into();
    }
    let app = context::open_app(&config, None).await?;
    let result = async {
        let owner = context::local(app.owner(&context::local_caller()))?;
        match args.command {
            VaultCommand::RotateKey(a) => {
                let r = owner.rotate_master_key().await?;
                if a.json {
                    print_stdout(&json!(r).to_string());
                } else {
                    print_stdout(&format!(
                        "Rotated the master key {} → {}: {} sealed rows re-wrapped. The new key is in {}; back it up, and restart other instances that share the database.",
                        r.old_key_id, r.new_key_id, r.rewrapped, r.key_file
                    ));
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
    .await;
    app.close().await;
    result
}
