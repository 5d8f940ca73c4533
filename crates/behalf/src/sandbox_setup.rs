//! `--sandbox`: run a command against an in-process emulated tenant instead of a real one.
//!
//! The sandbox keeps its state in the data directory (`sandbox/tenant.json`) and Behalf uses a
//! workspace of its own (`sandbox`), so running the same command again continues against the
//! same tenant, exactly as it would against a real one.

use std::future::Future;

use anyhow::Context as _;
use behalf_config::Config;
use behalf_directory::{ImportMode, NoProgress};
use behalf_domain::Secret;
use behalf_sandbox::{Sandbox, SandboxConfig};
use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct SandboxArgs {
    /// Run against an in-process sandbox tenant (seeded users, real Graph behaviour).
    #[arg(long)]
    pub sandbox: bool,
    /// Users the sandbox tenant is seeded with (on first use).
    #[arg(long, value_name = "N", default_value_t = 200, requires = "sandbox")]
    pub sandbox_users: usize,
    /// Latency the sandbox adds to every request.
    #[arg(long, value_name = "MS", default_value_t = 0, requires = "sandbox")]
    pub sandbox_latency_ms: u64,
}

/// Runs `body` with `config` pointed at a sandbox when `--sandbox` is given, else as it is.
pub async fn with_sandbox<F, Fut, T>(
    mut config: Config,
    args: &SandboxArgs,
    body: F,
) -> anyhow::Result<T>
where
    F: FnOnce(Config) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    if !args.sandbox {
        return body(config).await;
    }
    let state_dir = config.data_dir.join("sandbox");
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("cannot create {}", state_dir.display()))?;
    let mut sandbox_config = SandboxConfig {
        users: args.sandbox_users,
        ..SandboxConfig::default()
    };
    sandbox_config.state_file = Some(state_dir.join("tenant.json"));
    sandbox_config.knobs.latency_ms = args.sandbox_latency_ms;
    let sandbox = Sandbox::start(sandbox_config)
        .await
        .context("cannot start the sandbox tenant")?;
    eprintln!(
        "sandbox tenant {} at {}",
        sandbox.tenant_id(),
        sandbox.base_url()
    );
    config.workspace = "sandbox".into();
    config.entra.tenant_id = Some(sandbox.tenant_id().to_string());
    config.entra.client_id = Some(sandbox.client_id().to_string());
    config.entra.client_secret = Some(Secret::new(sandbox.client_secret()));
    config.entra.certificate_file = None;
    config.sync.connection = "sandbox".into();
    config.entra.graph_base_url = sandbox.graph_url();
    config.entra.login_base_url = sandbox.login_url();
    let result = async {
        import_users(&config).await?;
        body(config).await
    }
    .await;
    sandbox.shutdown().await;
    result
}

/// Brings the sandbox's users and groups into the store with the same directory import as
/// `behalf import`. It asks for a delta round, but the sandbox listens on a new port each run and
/// a connection whose Graph address changed starts over, so in practice this is a full round.
async fn import_users(config: &Config) -> anyhow::Result<()> {
    let app = crate::context::open_app(config, None).await?;
    let operator = crate::context::local(app.operator(&crate::context::local_caller()))?;
    let summary = operator
        .import(&config.sync.connection, ImportMode::Delta, &NoProgress)
        .await?;
    app.close().await;
    eprintln!(
        "imported the sandbox tenant: {} users ({} new, {} changed)",
        summary.users_total, summary.users_created, summary.users_updated
    );
    Ok(())
}
