//! `behalf admin create`: an admin of the panel and the API, made on this machine (the first
//! owner of a new installation, or a rescue when nobody can sign in).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use behalf_config::Config;
use behalf_domain::{Role, Secret};
use clap::{Args, Subcommand, ValueEnum};

use crate::cmd::provision::print_stdout;
use crate::context;

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an admin; without --password-file, prints a one-time link to set the password.
    Create(CreateArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The admin's email address (their sign-in name).
    #[arg(long, value_name = "E")]
    pub email: String,
    #[arg(long, value_enum)]
    pub role: RoleArg,
    /// An admin (role `admin`) may also provision, issue passes and deprovision.
    #[arg(long)]
    pub edit_users: bool,
    /// Read the password from this file (one trailing newline is dropped) instead of printing a
    /// setup link. A file, not a flag: a flag's value would be in the shell history and `ps`.
    #[arg(long, value_name = "F")]
    pub password_file: Option<PathBuf>,
    /// In the sandbox workspace (the one `serve --sandbox` uses).
    #[arg(long)]
    pub sandbox: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    Owner,
    Admin,
    Viewer,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Owner => Role::Owner,
            RoleArg::Admin => Role::Admin,
            RoleArg::Viewer => Role::Viewer,
        }
    }
}

pub async fn run(mut config: Config, args: AdminArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        AdminCommand::Create(args) => {
            if args.sandbox {
                config.workspace = "sandbox".into();
            }
            create(config, args).await
        }
    }
}

async fn create(config: Config, args: CreateArgs) -> anyhow::Result<ExitCode> {
    let password = args
        .password_file
        .as_deref()
        .map(read_password)
        .transpose()?;
    let app = context::open_app(&config, None).await?;
    let created = context::local(app.owner(&context::local_caller()))?
        .create_admin(
            &args.email,
            args.role.into(),
            args.edit_users,
            password.as_ref(),
        )
        .await;
    app.close().await;
    let created = created?;
    let admin = &created.admin;
    print_stdout(&format!(
        "Created {} {}{}.",
        admin.role,
        admin.username,
        if admin.role == Role::Admin && admin.can_edit_users {
            " (may edit users)"
        } else {
            ""
        }
    ));
    if let Some(token) = &created.setup_token {
        print_stdout(&format!(
            "They set their password with this link (it works once, for 24 hours):\n{}/setup?token={}",
            public_base(config.listen),
            token.expose()
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// The password in `path`, without the newline an editor or `echo` leaves at its end.
fn read_password(path: &Path) -> anyhow::Result<Secret> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the password file {}", path.display()))?;
    let password = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    Ok(Secret::new(password))
}

/// Where a browser reaches the server. There is no public-URL setting yet, so this is the
/// address `serve` listens on; an unspecified address (0.0.0.0) is no address a browser can
/// open, so it becomes the local host's.
pub fn public_base(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, listen.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setup_link_base_is_an_address_a_browser_can_open() {
        assert_eq!(
            public_base("127.0.0.1:8080".parse().unwrap()),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            public_base("0.0.0.0:8080".parse().unwrap()),
            "http://127.0.0.1:8080"
        );
        assert_eq!(public_base("[::1]:80".parse().unwrap()), "http://[::1]:80");
    }

    #[test]
    fn one_trailing_newline_is_dropped_from_a_password_file() {
        let dir = tempfile::tempdir().unwrap();
        for (content, expected) in [
            ("secret pass\n", "secret pass"),
            ("secret pass\r\n", "secret pass"),
            ("secret pass", "secret pass"),
            ("secret pass\n\n", "secret pass\n"),
            (" spaced \n", " spaced "),
        ] {
            let path = dir.path().join("pw");
            std::fs::write(&path, content).unwrap();
            assert_eq!(read_password(&path).unwrap().expose(), expected);
        }
    }
}
