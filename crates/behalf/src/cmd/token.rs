//! `behalf token create | list | revoke`: API tokens for `/api/v1` (scripts, CI, `--server`),
//! managed on this machine.

use std::process::ExitCode;
use std::time::Duration;

use behalf_app::auth::TokenView;
use behalf_config::Config;
use behalf_domain::{Millis, TokenId, TokenScope, format_millis};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use crate::cmd::provision::print_stdout;
use crate::context;

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
    /// In the sandbox workspace (the one `serve --sandbox` uses).
    #[arg(long, global = true)]
    pub sandbox: bool,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token acting as an admin; it is printed once, on stdout.
    Create(CreateArgs),
    /// List the tokens (never the tokens themselves).
    List(ListArgs),
    /// Revoke a token: it stops working at once.
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The admin the token acts as (their email).
    #[arg(long, value_name = "E")]
    pub admin: String,
    /// What the token is for, as the token list shows it.
    #[arg(long, value_name = "N")]
    pub name: String,
    /// How far the token reaches, within what its admin's role allows.
    #[arg(long, value_enum, default_value_t = ScopeArg::Read)]
    pub scope: ScopeArg,
    /// How long it works: `90d`, `12h`, `30m`, or `never`.
    #[arg(long, value_name = "DURATION", default_value = "90d", value_parser = parse_expires)]
    pub expires: Expires,
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
    /// The token's id, from `behalf token list`.
    pub id: TokenId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScopeArg {
    Read,
    Provision,
    Admin,
}

impl From<ScopeArg> for TokenScope {
    fn from(s: ScopeArg) -> TokenScope {
        match s {
            ScopeArg::Read => TokenScope::Read,
            ScopeArg::Provision => TokenScope::Provision,
            ScopeArg::Admin => TokenScope::Admin,
        }
    }
}

/// A token's lifetime: `None` never expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expires(pub Option<Duration>);

/// `90d`, `12h`, `30m`, `never`. A bare number is refused: minutes or days is a guess that
/// would make a token live 1,440 times longer or shorter than meant.
pub fn parse_expires(s: &str) -> Result<Expires, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("never") {
        return Ok(Expires(None));
    }
    let bad = || format!("'{s}' is not a duration like 90d, 12h, 30m or never");
    let (digits, unit_secs) = match s.char_indices().last() {
        Some((i, 'd')) => (&s[..i], 86_400),
        Some((i, 'h')) => (&s[..i], 3_600),
        Some((i, 'm')) => (&s[..i], 60),
        _ => return Err(bad()),
    };
    let n: u64 = digits.trim().parse().map_err(|_| bad())?;
    if n == 0 {
        return Err("a token must work for some time: give more than 0".into());
    }
    // Ten years is already more than a token should live; beyond it is a typo.
    let secs = n
        .checked_mul(unit_secs)
        .filter(|&secs| secs <= 10 * 366 * 86_400)
        .ok_or_else(|| format!("'{s}' is more than ten years: use `never` if that is meant"))?;
    Ok(Expires(Some(Duration::from_secs(secs))))
}

pub async fn run(mut config: Config, args: TokenArgs) -> anyhow::Result<ExitCode> {
    if args.sandbox {
        config.workspace = "sandbox".into();
    }
    let app = context::open_app(&config, None).await?;
    let result = run_on(&app, args.command).await;
    app.close().await;
    result
}

async fn run_on(app: &behalf_app::App, command: TokenCommand) -> anyhow::Result<ExitCode> {
    let owner = context::local(app.owner(&context::local_caller()))?;
    match command {
        TokenCommand::Create(args) => {
            let created = owner
                .create_token(
                    &args.admin.trim().to_lowercase(),
                    &args.name,
                    args.scope.into(),
                    args.expires.0,
                )
                .await?;
            let entry = &created.entry;
            // stdout carries the token alone (or its JSON), so `T=$(behalf token create …)`
            // works; what it is goes to stderr.
            if args.json {
                print_stdout(
                    &json!({
                        "id": entry.id,
                        "name": entry.name,
                        "admin": args.admin,
                        "scope": entry.scope,
                        "expires_at": entry.expires_at.map(format_millis),
                        "token": created.token.expose(),
                    })
                    .to_string(),
                );
            } else {
                print_stdout(created.token.expose());
            }
            eprintln!(
                "Token {} ({}) for {}, scope {}, {}. It is shown only this once.",
                entry.name,
                entry.id,
                args.admin,
                entry.scope,
                expiry(entry.expires_at)
            );
        }
        TokenCommand::List(args) => {
            let tokens = owner.list_tokens().await?;
            if args.json {
                print_stdout(&serde_json::to_string_pretty(&tokens)?);
            } else {
                print_table(&tokens);
            }
        }
        TokenCommand::Revoke(args) => {
            owner.revoke_token(args.id).await?;
            print_stdout(&format!("Revoked token {}.", args.id));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn expiry(expires_at: Option<Millis>) -> String {
    match expires_at {
        Some(at) => format!("expires {}", format_millis(at)),
        None => "never expires".into(),
    }
}

fn print_table(tokens: &[TokenView]) {
    let time = |t: Option<Millis>| t.map(format_millis).unwrap_or_else(|| "-".into());
    print_stdout(&format!(
        "{:<36} {:<20} {:<28} {:<9} {:<4} {:<24} {:<24} {}",
        "id", "name", "admin", "scope", "kind", "expires", "last used", "revoked"
    ));
    for t in tokens {
        print_stdout(&format!(
            "{:<36} {:<20} {:<28} {:<9} {:<4} {:<24} {:<24} {}",
            t.id,
            t.name,
            t.admin,
            t.scope,
            t.kind,
            time(t.expires_at),
            time(t.last_used_at),
            time(t.revoked_at)
        ));
    }
    print_stdout(&format!("{} tokens", tokens.len()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries() {
        let days = |n: u64| Ok(Expires(Some(Duration::from_secs(n * 86_400))));
        assert_eq!(parse_expires("90d"), days(90));
        assert_eq!(
            parse_expires("12h"),
            Ok(Expires(Some(Duration::from_secs(12 * 3600))))
        );
        assert_eq!(
            parse_expires("30m"),
            Ok(Expires(Some(Duration::from_secs(1800))))
        );
        assert_eq!(parse_expires("never"), Ok(Expires(None)));
        assert_eq!(parse_expires("Never"), Ok(Expires(None)));
        assert!(parse_expires("90").is_err(), "a bare number has no unit");
        assert!(parse_expires("0d").is_err());
        assert!(parse_expires("soon").is_err());
        assert!(parse_expires("d").is_err());
        assert!(parse_expires("99999999999999d").is_err());
        assert!(parse_expires("4000d").is_err(), "over ten years");
        assert_eq!(parse_expires("3650d"), days(3650));
    }
}
