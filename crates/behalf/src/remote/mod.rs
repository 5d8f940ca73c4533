//! The CLI as a client of a Behalf server: with `--server URL`, `login`, `logout`, `provision`,
//! `report`, `tap`, `deprovision` and `import` run on that server through its REST API
//! (`/api/v1`), as the admin its token names, and print what the local commands print.
//!
//! Nothing here opens the database or reads the master key: the server does the work, under the
//! permissions of the token's admin.

mod client;
mod login;
mod ops;
mod provision;
mod session;
mod sse;

use std::process::ExitCode;

use behalf_config::Config;

use crate::cli::Command;
use client::Remote;

/// Runs `command` on `server`. `token` is `--token` (or `BEHALF_TOKEN`).
pub async fn run(
    mut config: Config,
    server: &str,
    token: Option<&str>,
    command: Command,
    verbose: bool,
) -> anyhow::Result<ExitCode> {
    let base = client::normalise_base(server)?;
    // Signing in and out needs no token; everything else acts as the token's admin.
    let authenticated = |config: &Config| -> anyhow::Result<Remote> {
        Remote::new(&base, config, Some(session::token_for(&base, token)?))
    };
    match command {
        Command::Login(args) => login::login(&Remote::new(&base, &config, None)?, &args).await,
        Command::Logout => login::logout(&Remote::new(&base, &config, None)?).await,
        Command::Provision(args) => {
            args.tls.apply(&mut config);
            provision::run(&authenticated(&config)?, &args, verbose).await
        }
        Command::Deprovision(args) => {
            args.tls.apply(&mut config);
            ops::deprovision(&authenticated(&config)?, &args).await
        }
        Command::Report(args) => ops::report(&authenticated(&config)?, &args).await,
        Command::Tap(args) => ops::tap(&authenticated(&config)?, &args).await,
        Command::Import(args) => ops::import(&authenticated(&config)?, &args).await,
        Command::Mail(args) => ops::mail(&authenticated(&config)?, &args).await,
        other => anyhow::bail!(
            "`behalf {}` runs on this machine only: drop --server (and BEHALF_SERVER)",
            name(&other)
        ),
    }
}

/// The subcommand's name as typed.
fn name(command: &Command) -> &'static str {
    match command {
        Command::Serve(_) => "serve",
        Command::Login(_) => "login",
        Command::Logout => "logout",
        Command::Import(_) => "import",
        Command::Tap(_) => "tap",
        Command::Doctor(_) => "doctor",
        Command::Provision(_) => "provision",
        Command::Deprovision(_) => "deprovision",
        Command::Report(_) => "report",
        Command::Sandbox(_) => "sandbox",
        Command::Admin(_) => "admin",
        Command::Token(_) => "token",
        Command::ScimToken(_) => "scim-token",
        Command::Vault(_) => "vault",
        Command::Mail(_) => "mail",
        Command::Outbound(_) => "outbound",
        Command::Key(_) => "key",
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("behalf").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    #[test]
    fn server_and_token_are_global_flags() {
        for args in [
            &[
                "--server",
                "https://b.example",
                "--token",
                "bht_x",
                "provision",
                "--automatic",
            ][..],
            &[
                "provision",
                "--automatic",
                "--server",
                "https://b.example",
                "--token",
                "bht_x",
            ],
        ] {
            let cli = parse(args);
            assert_eq!(cli.global.server.as_deref(), Some("https://b.example"));
            assert_eq!(cli.global.token.as_deref(), Some("bht_x"));
            assert!(matches!(cli.command, Command::Provision(ref p) if p.automatic));
        }
        let cli = parse(&["--server", "https://b.example", "login"]);
        assert!(matches!(cli.command, Command::Login(_)) && cli.global.token.is_none());
    }

    #[test]
    fn the_token_value_is_never_shown_in_help() {
        use clap::CommandFactory as _;
        let mut command = Cli::command();
        let help = command.render_long_help().to_string();
        assert!(
            help.contains("BEHALF_TOKEN") && help.contains("BEHALF_SERVER"),
            "{help}"
        );
        let token = command
            .get_arguments()
            .find(|a| a.get_id() == "token")
            .unwrap();
        assert!(token.is_hide_env_values_set());
    }

    #[test]
    fn admin_and_token_commands_parse() {
        let cli = parse(&[
            "admin",
            "create",
            "--email",
            "o@example.com",
            "--role",
            "owner",
            "--password-file",
            "pw",
        ]);
        assert!(matches!(cli.command, Command::Admin(_)));
        let cli = parse(&[
            "token",
            "create",
            "--admin",
            "o@example.com",
            "--name",
            "ci",
            "--scope",
            "provision",
            "--expires",
            "never",
        ]);
        let Command::Token(token) = cli.command else {
            panic!("a token command")
        };
        let crate::cmd::token::TokenCommand::Create(create) = token.command else {
            panic!("token create")
        };
        assert_eq!(create.expires, crate::cmd::token::Expires(None));
        let cli = parse(&[
            "token",
            "create",
            "--admin",
            "o@example.com",
            "--name",
            "ci",
        ]);
        let Command::Token(token) = cli.command else {
            panic!("a token command")
        };
        let crate::cmd::token::TokenCommand::Create(create) = token.command else {
            panic!("token create")
        };
        assert_eq!(create.scope, crate::cmd::token::ScopeArg::Read);
        assert_eq!(
            create.expires,
            crate::cmd::token::Expires(Some(std::time::Duration::from_secs(90 * 86_400)))
        );
        assert!(
            Cli::try_parse_from([
                "behalf", "admin", "create", "--email", "a@x", "--role", "god"
            ])
            .is_err()
        );
    }
}
