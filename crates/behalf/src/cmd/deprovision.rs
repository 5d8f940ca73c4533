//! `behalf deprovision`: revoke a user's passkeys at the RP and destroy their keys.

use std::process::ExitCode;

use behalf_app::ops::deprovision::{Deprovisioned, Leavers};
use behalf_config::Config;
use behalf_domain::Upn;
use clap::Args;
use serde_json::json;

use crate::cmd::provision::{EXIT_SOME_FAILED, TlsArgs, print_stdout};
use crate::context;
use crate::sandbox_setup::{SandboxArgs, with_sandbox};

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
    let app = context::open_app(&config, None).await?;
    let provisioner = context::local(app.provisioner(&context::local_caller()))?;
    let who = match &args.user {
        Some(upn) => Leavers::User(Upn::parse(upn)?),
        None => Leavers::Pending,
    };
    let done = provisioner.deprovision(who).await?;
    print_deprovisioned(&done, args.json);
    Ok(if done.iter().any(|d| !d.failures.is_empty()) {
        ExitCode::from(EXIT_SOME_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// One line per user on stderr, or a JSON summary on stdout.
pub fn print_deprovisioned(done: &[Deprovisioned], json: bool) {
    if json {
        print_stdout(&json!({ "users": done }).to_string());
        return;
    }
    for d in done {
        eprintln!(
            "{}: {} passkeys revoked{}",
            d.upn,
            d.revoked,
            if d.failures.is_empty() {
                String::new()
            } else {
                format!(", failed: {}", d.failures.join("; "))
            }
        );
    }
}
