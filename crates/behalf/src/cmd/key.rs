//! `behalf key pair | devices | revoke`: Behalf Key, the browser extension a user signs in with.
//! An admin issues a one-time pairing code for a user (printed once, on stdout), lists a user's
//! paired devices and revokes one. On this machine (the configuration and the master key).

use std::process::ExitCode;

use behalf_config::Config;
use behalf_domain::{DeviceRole, KeyDevice, KeyDeviceId, format_millis};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::cmd::provision::print_stdout;
use crate::context;

#[derive(Debug, Args)]
pub struct KeyArgs {
    #[command(subcommand)]
    pub command: KeyCommand,
    /// In the sandbox workspace (the one `serve --sandbox` uses).
    #[arg(long, global = true)]
    pub sandbox: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// A one-time code (15 minutes) that pairs a user's Behalf Key extension; printed once.
    Pair(PairArgs),
    /// A user's paired devices, revoked ones included.
    Devices(DevicesArgs),
    /// Revoke a device: its next request is refused.
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
pub struct PairArgs {
    /// The user's UPN.
    #[arg(long, value_name = "UPN")]
    pub user: String,
    /// Pair an administrator's device, which also registers passkeys on other users' behalf.
    #[arg(long)]
    pub admin: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DevicesArgs {
    #[arg(long, value_name = "UPN")]
    pub user: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The device's id, from `behalf key devices`.
    pub id: KeyDeviceId,
}

pub async fn run(mut config: Config, args: KeyArgs) -> anyhow::Result<ExitCode> {
    if args.sandbox {
        config.workspace = "sandbox".into();
    }
    let server_url = format!("http://{}", config.listen);
    let app = context::open_app(&config, None).await?;
    let result = run_on(&app, args.command, &server_url).await;
    app.close().await;
    result
}

fn device_json(d: &KeyDevice) -> serde_json::Value {
    json!({
        "id": d.id, "name": d.name, "role": d.role, "thumbprint": d.thumbprint,
        "created_at": format_millis(d.created_at),
        "last_seen_at": d.last_seen_at.map(format_millis),
        "revoked_at": d.revoked_at.map(format_millis),
    })
}

async fn run_on(
    app: &behalf_app::App,
    command: KeyCommand,
    server_url: &str,
) -> anyhow::Result<ExitCode> {
    let caller = context::local_caller();
    let provisioner = context::local(app.provisioner(&caller))?;
    match command {
        KeyCommand::Pair(args) => {
            let user = provisioner.reader().user_by_upn(&args.user).await?;
            let role = if args.admin {
                DeviceRole::Admin
            } else {
                DeviceRole::User
            };
            let issued = provisioner.issue_key_pairing(user.id, role).await?;
            // stdout carries the code alone (or its JSON); what to do with it goes to stderr.
            if args.json {
                print_stdout(
                    &json!({
                        "code": issued.code.expose(),
                        "user": user.upn.as_str(),
                        "role": role,
                        "expires_at": format_millis(issued.pairing.expires_at),
                        "server_url": server_url,
                    })
                    .to_string(),
                );
            } else {
                print_stdout(issued.code.expose());
            }
            eprintln!(
                "Pairing code for {} ({role} device), shown only this once; it works once, until {}.\n\
                 In Behalf Key: server {server_url} (as users reach this server), this code, a device \
                 name and the PIN.",
                user.upn,
                format_millis(issued.pairing.expires_at),
            );
        }
        KeyCommand::Devices(args) => {
            let reader = provisioner.reader();
            let user = reader.user_by_upn(&args.user).await?;
            let devices = reader.key_devices(user.id).await?;
            if args.json {
                let list: Vec<_> = devices.iter().map(device_json).collect();
                print_stdout(&serde_json::to_string_pretty(&list)?);
            } else if devices.is_empty() {
                eprintln!("{} has no Behalf Key device", user.upn);
            } else {
                for d in &devices {
                    let state = match d.revoked_at {
                        Some(at) => format!("revoked {}", format_millis(at)),
                        None => format!(
                            "last seen {}",
                            d.last_seen_at.map_or("never".into(), format_millis)
                        ),
                    };
                    print_stdout(&format!("{}\t{}\t{}\t{state}", d.id, d.role, d.name));
                }
            }
        }
        KeyCommand::Revoke(args) => {
            let device = provisioner.revoke_key_device(args.id).await?;
            eprintln!("revoked {} ({})", device.name, device.id);
        }
    }
    Ok(ExitCode::SUCCESS)
}
