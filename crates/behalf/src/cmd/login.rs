//! `behalf login` (device code), `behalf login --status`, `behalf logout`.

use std::process::ExitCode;

use anyhow::Context as _;
use behalf_config::Config;
use behalf_graph::{DeviceCodeLogin, TokenPermissions, http_client};
use clap::Args;

use super::graph_setup::{self, Session, now_unix};

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Tenant id or domain (default: entra.tenant_id).
    #[arg(long, value_name = "TENANT")]
    pub tenant: Option<String>,
    /// Public client (app) id for the sign-in (default: entra.client_id).
    #[arg(long, value_name = "ID", env = "BEHALF_LOGIN_CLIENT_ID")]
    pub client_id: Option<String>,
    /// Use the device-code flow (the only interactive flow; accepted for clarity).
    #[arg(long)]
    pub device_code: bool,
    /// Show whether a sign-in is active (exit 1 when not).
    #[arg(long)]
    pub status: bool,
}

#[allow(clippy::print_stdout)] // the code, the URL and the outcome are this command's output
pub async fn run(config: Config, args: LoginArgs) -> anyhow::Result<ExitCode> {
    let path = graph_setup::session_path()?;
    if args.status {
        return match Session::load(&path)? {
            Some(s) if s.is_valid() => {
                println!(
                    "Signed in as {} to tenant {}, valid for {} more minutes.",
                    s.upn.as_deref().unwrap_or("(unknown user)"),
                    s.tenant_id,
                    (s.valid_until - now_unix()) / 60
                );
                Ok(ExitCode::SUCCESS)
            }
            Some(s) => {
                println!(
                    "The sign-in as {} has expired (sessions last {} hours). Run `behalf login`.",
                    s.upn.as_deref().unwrap_or("(unknown user)"),
                    graph_setup::SESSION_HOURS
                );
                Ok(ExitCode::FAILURE)
            }
            None => {
                println!("Not signed in. Run `behalf login`.");
                Ok(ExitCode::FAILURE)
            }
        };
    }
    let tenant = match args.tenant.clone() {
        Some(t) => t,
        None => behalf_app::graph_settings::tenant(&config)?,
    };
    let client_id = args
        .client_id
        .clone()
        .or_else(|| config.entra.client_id.clone())
        .context("no client id: pass --client-id (a public client app) or set entra.client_id")?;
    let http = http_client(
        &behalf_app::graph_settings::tls(&config),
        std::time::Duration::from_secs(30),
    )?;
    let graph = config.entra.graph_base_url.trim_end_matches('/');
    let resource = if graph.starts_with("https://") {
        graph.to_string()
    } else {
        behalf_graph::GLOBAL_GRAPH.to_string()
    };
    let scope = format!("{resource}/.default offline_access");
    let login = DeviceCodeLogin::new(
        http,
        &config.entra.login_base_url,
        &tenant,
        &client_id,
        &scope,
    );
    let start = login.start().await?;
    println!(
        "To sign in, open {} and enter the code {}",
        start.verification_uri, start.user_code
    );
    println!(
        "Waiting for the sign-in (the code expires in {} minutes)…",
        start.expires_in.as_secs().div_ceil(60)
    );
    let tokens = login.wait(&start).await?;
    let upn = TokenPermissions::from_jwt(tokens.access_token.expose()).and_then(|p| p.upn);
    let session = Session::new(&tenant, &client_id, &config, upn.clone(), &tokens);
    session.save(&path)?;
    println!(
        "Signed in as {} for {} hours.",
        upn.as_deref().unwrap_or("(unknown user)"),
        graph_setup::SESSION_HOURS
    );
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::print_stdout)]
pub async fn logout(_config: Config) -> anyhow::Result<ExitCode> {
    let path = graph_setup::session_path()?;
    match std::fs::remove_file(&path) {
        Ok(()) => println!("Signed out."),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => println!("Not signed in."),
        Err(e) => return Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
    Ok(ExitCode::SUCCESS)
}
