//! The command line (SPEC §4).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("BEHALF_GIT_REVISION"),
    ")"
);

#[derive(Debug, Parser)]
#[command(name = "behalf", version = LONG_VERSION, about = "Registers passkeys into Microsoft Entra ID on behalf of an organisation's users")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes; they override `behalf.toml` and `BEHALF_*` variables.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file (default: ./behalf.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (SQLite database, master key).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite://… or postgres://… (default: SQLite in the data directory).
    #[arg(long, global = true, value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// More detail: one line per user in bulk runs, debug logs (`-vv` trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Logs as JSON lines.
    #[arg(long, global = true)]
    pub log_json: bool,
    /// Run the command on this Behalf server through its REST API instead of on this machine
    /// (`login`, `logout`, `provision`, `report`, `tap`, `deprovision`, `import`).
    #[arg(long, global = true, value_name = "URL", env = "BEHALF_SERVER")]
    pub server: Option<String>,
    /// The API token for `--server` (default: the one `behalf --server URL login` saved).
    #[arg(
        long,
        global = true,
        value_name = "TOKEN",
        env = "BEHALF_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: admin panel, REST API, SCIM endpoint and workers.
    Serve(ServeArgs),
    /// Sign in as an admin with the device-code flow (valid 12 hours).
    Login(crate::cmd::login::LoginArgs),
    /// Forget the admin sign-in.
    Logout,
    /// Import users and groups from Entra ID (full, or `--delta` since the last run).
    Import(crate::cmd::import::ImportArgs),
    /// Issue a Temporary Access Pass and print it once.
    Tap(crate::cmd::tap::TapArgs),
    /// Check the tenant's FIDO2 policy and the app's permissions before provisioning.
    Doctor(crate::cmd::doctor::DoctorArgs),
    /// Register passkeys for users on their behalf.
    Provision(crate::cmd::provision::ProvisionArgs),
    /// Revoke a user's passkeys at the relying party and destroy their keys.
    Deprovision(crate::cmd::deprovision::DeprovisionArgs),
    /// The provisioning report, from the event log.
    Report(crate::cmd::report::ReportArgs),
    /// Run a local emulated Entra ID tenant (Microsoft Graph + login endpoints).
    Sandbox(behalf_sandbox::Args),
    /// Admins of the panel and the API.
    Admin(crate::cmd::admin::AdminArgs),
    /// API tokens for `/api/v1` and `--server`.
    Token(crate::cmd::token::TokenArgs),
    /// Bearer tokens for `/scim/v2`, one SCIM connection each (Entra ID provisioning).
    ScimToken(crate::cmd::scim_token::ScimTokenArgs),
    /// The vault's master key: rotate it.
    Vault(crate::cmd::vault::VaultArgs),
    /// Onboarding mail: a Temporary Access Pass and the steps to add a passkey.
    Mail(crate::cmd::mail::MailArgs),
    /// Writes to Entra ID queued by the panel or the API: send them, list them.
    Outbound(crate::cmd::outbound::OutboundArgs),
    /// Behalf Key, the browser extension users sign in with: pairing codes, devices.
    Key(crate::cmd::key::KeyArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port and prints it).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Run no background workers (no directory sync, no provisioning jobs) in this instance.
    #[arg(long)]
    pub no_workers: bool,
    #[command(flatten)]
    pub sandbox: crate::sandbox_setup::SandboxArgs,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        // Catches clashing flag names and bad groups at test time instead of at a user's prompt.
        super::Cli::command().debug_assert();
    }
}
