//! `behalf scim-token create | list | revoke`: the bearer tokens an identity provider (Entra
//! ID's provisioning service) sends to `/scim/v2`, one SCIM connection each, managed on this
//! machine.

use std::process::ExitCode;

use behalf_app::ops::scim_tokens::ScimTokenView;
use behalf_config::Config;
use behalf_domain::{Millis, ScimTokenId, format_millis};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::cmd::provision::print_stdout;
use crate::context;

#[derive(Debug, Args)]
pub struct ScimTokenArgs {
    #[command(subcommand)]
    pub command: ScimTokenCommand,
    /// In the sandbox workspace (the one `serve --sandbox` uses).
    #[arg(long, global = true)]
    pub sandbox: bool,
}

#[derive(Debug, Subcommand)]
pub enum ScimTokenCommand {
    /// Create a token for the SCIM connection N (made if there is none); printed once, on stdout.
    Create(CreateArgs),
    /// List the SCIM tokens (never the tokens themselves).
    List(ListArgs),
    /// Revoke a SCIM token: it stops working at once.
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The SCIM connection (say, the Entra enterprise application that provisions Behalf).
    #[arg(long, value_name = "N")]
    pub name: String,
    /// Queue a passkey for every new active user the connection pushes.
    #[arg(long, conflicts_with = "no_auto_provision")]
    pub auto_provision: bool,
    /// Do not (the default for a new connection).
    #[arg(long)]
    pub no_auto_provision: bool,
    /// Print a JSON object (the token included) instead of the bare token.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The token's id, from `behalf scim-token list`.
    pub id: ScimTokenId,
}

pub async fn run(mut config: Config, args: ScimTokenArgs) -> anyhow::Result<ExitCode> {
    if args.sandbox {
        config.workspace = "sandbox".into();
    }
    let base_url = format!("http://{}/scim/v2", config.listen);
    let app = context::open_app(&config, None).await?;
    let result = run_on(&app, args.command, &base_url).await;
    app.close().await;
    result
}

async fn run_on(
    app: &behalf_app::App,
    command: ScimTokenCommand,
    base_url: &str,
) -> anyhow::Result<ExitCode> {
    let operator = context::local(app.operator(&context::local_caller()))?;
    match command {
        ScimTokenCommand::Create(args) => {
            let auto = match (args.auto_provision, args.no_auto_provision) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            };
            let created = operator.create_scim_token(&args.name, auto).await?;
            // stdout carries the token alone (or its JSON), so `T=$(behalf scim-token create …)`
            // works; what it is and where to send it go to stderr.
            if args.json {
                print_stdout(
                    &json!({
                        "id": created.id,
                        "connection": created.connection,
                        "auto_provision": created.auto_provision,
                        "scim_base_url": base_url,
                        "token": created.token.expose(),
                    })
                    .to_string(),
                );
            } else {
                print_stdout(created.token.expose());
            }
            eprintln!(
                "SCIM token {} for connection {} (new active users {}). It is shown only this once.\n\
                 Tenant URL: {base_url} (as this server is reached from the identity provider; \
                 behind a proxy, its public address)",
                created.id,
                created.connection,
                if created.auto_provision {
                    "get a passkey queued"
                } else {
                    "are not provisioned automatically"
                },
            );
        }
        ScimTokenCommand::List(args) => {
            let tokens = operator.list_scim_tokens().await?;
            if args.json {
                print_stdout(&serde_json::to_string_pretty(&tokens)?);
            } else {
                print_table(&tokens);
            }
        }
        ScimTokenCommand::Revoke(args) => {
            operator.revoke_scim_token(args.id).await?;
            print_stdout(&format!("Revoked SCIM token {}.", args.id));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(tokens: &[ScimTokenView]) {
    let time = |t: Option<Millis>| t.map(format_millis).unwrap_or_else(|| "-".into());
    print_stdout(&format!(
        "{:<36} {:<24} {:<5} {:<24} {:<24} {}",
        "id", "connection", "auto", "created", "last used", "revoked"
    ));
    for t in tokens {
        print_stdout(&format!(
            "{:<36} {:<24} {:<5} {:<24} {:<24} {}",
            t.id,
            t.connection,
            if t.auto_provision { "yes" } else { "no" },
            format_millis(t.created_at),
            time(t.last_used_at),
            time(t.revoked_at)
        ));
    }
    print_stdout(&format!("{} SCIM tokens", tokens.len()));
}
