//! `behalf deprovision`: revoke a user's passkeys at the RP and destroy their keys.

use std::process::ExitCode;

use anyhow::Context as _;
use behalf_config::Config;
use behalf_domain::Upn;
use clap::Args;
use serde_json::json;

use crate::cmd::provision::{EXIT_SOME_FAILED, TlsArgs, print_stdout};
use crate::sandbox_setup::{SandboxArgs, with_sandbox};
use crate::wiring;

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("who").required(true).args(["user", "pending"]))]
pub struct DeprovisionArgs {
    /// The user, by userPrincipalName.
    #[arg(long, value_name = "UPN")]
    pub user: Option<String>,
    /// Every user an import or SCIM marked for deprovisioning (deleted or disabled upstream).
    #[arg(long)]
    pub pending: bool,
    /// A JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
}

pub async fn run(mut config: Config, args: DeprovisionArgs) -> anyhow::Result<ExitCode> {
    args.tls.apply(&mut config);
    let sandbox = args.sandbox.clone();
    with_sandbox(config, &sandbox, |config| async move {
        deprovision(config, &args).await
    })
    .await
}

async fn deprovision(config: Config, args: &DeprovisionArgs) -> anyhow::Result<ExitCode> {
    let opened = wiring::open(&config).await?;
    let graph = wiring::graph_client(&config)?;
    let engine = wiring::engine(&config, &opened, graph, wiring::cli_actor()).await?;
    let users = match &args.user {
        Some(upn) => {
            let upn = Upn::parse(upn)?;
            vec![
                opened
                    .store
                    .find_user_by_upn(opened.workspace.id, &upn)
                    .await?
                    .with_context(|| format!("unknown user {upn}: Behalf has no record of them"))?,
            ]
        }
        None => {
            opened
                .store
                .users_pending_deprovision(opened.workspace.id)
                .await?
        }
    };
    let mut results = Vec::new();
    let mut failed = 0;
    for user in &users {
        let summary = engine.deprovision(user).await?;
        failed += usize::from(!summary.failures.is_empty());
        if !args.json {
            eprintln!(
                "{}: {} passkeys revoked{}",
                user.upn,
                summary.revoked,
                if summary.failures.is_empty() {
                    String::new()
                } else {
                    format!(", failed: {}", summary.failures.join("; "))
                }
            );
        }
        results.push(json!({"upn": user.upn.as_str(), "revoked": summary.revoked, "failures": summary.failures}));
    }
    if args.json {
        print_stdout(&json!({"users": results}).to_string());
    }
    Ok(if failed > 0 {
        ExitCode::from(EXIT_SOME_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}
