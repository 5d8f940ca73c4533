//! `behalf tap --user UPN [--lifetime 60m] [--once]`: issues a Temporary Access Pass and prints it
//! once. The event log records that a pass was issued, never the pass.

use std::process::ExitCode;

use behalf_app::ops::tap::IssuedTap;
use behalf_config::Config;
use clap::Args;
use serde_json::json;

use super::graph_setup::Graph;
use crate::context;

#[derive(Debug, Args)]
pub struct TapArgs {
    /// The user's UPN (or Entra object id).
    #[arg(long, value_name = "UPN")]
    pub user: String,
    /// How long the pass is valid: minutes, or with a unit (`90m`, `8h`, `1d`); 10 min .. 30 days.
    #[arg(long, default_value = "60m", value_parser = parse_lifetime)]
    pub lifetime: u32,
    /// The pass works for one sign-in only.
    #[arg(long)]
    pub once: bool,
    /// Print the answer as JSON (the pass included) instead of a sentence.
    #[arg(long)]
    pub json: bool,
}

/// `60`, `60m`, `8h`, `1d` → minutes, within Entra's 10..43200.
pub fn parse_lifetime(s: &str) -> Result<u32, String> {
    let s = s.trim();
    let (digits, factor) = match s.char_indices().last() {
        Some((i, 'm')) => (&s[..i], 1),
        Some((i, 'h')) => (&s[..i], 60),
        Some((i, 'd')) => (&s[..i], 1440),
        _ => (s, 1),
    };
    let n: u32 = digits
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like 60m, 8h or 1d"))?;
    let minutes = n.checked_mul(factor).ok_or("too long")?;
    if !(10..=43_200).contains(&minutes) {
        return Err(format!(
            "{minutes} minutes is outside what Entra allows (10 minutes to 30 days)"
        ));
    }
    Ok(minutes)
}

pub async fn run(config: Config, args: TapArgs) -> anyhow::Result<ExitCode> {
    let graph = Graph::open(&config)?;
    let app = context::open_app(&config, Some(graph.directory())).await?;
    let result = match app.provisioner(&context::local_caller()) {
        Some(provisioner) => provisioner
            .issue_tap(&args.user, args.lifetime, args.once)
            .await
            .map_err(anyhow::Error::from),
        None => Err(anyhow::anyhow!("not allowed")),
    };
    graph.finish().await?;
    app.close().await;
    print_tap(&result?, args.json);
    Ok(ExitCode::SUCCESS)
}

/// Shows the pass, once: that is the command's purpose.
#[allow(clippy::print_stdout)]
pub fn print_tap(tap: &IssuedTap, json: bool) {
    if json {
        println!(
            "{}",
            json!({
                "user": tap.user,
                "temporaryAccessPass": tap.temporary_access_pass.expose(),
                "lifetimeInMinutes": tap.lifetime_in_minutes,
                "isUsableOnce": tap.is_usable_once,
                "startDateTime": tap.start_date_time,
            })
        );
    } else {
        println!(
            "Temporary Access Pass for {}: {}",
            tap.user,
            tap.temporary_access_pass.expose()
        );
        println!(
            "Valid {} minutes{}. It is shown only this once and is not stored.",
            tap.lifetime_in_minutes,
            if tap.is_usable_once {
                ", for one sign-in"
            } else {
                ""
            }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::parse_lifetime;

    #[test]
    fn lifetimes() {
        assert_eq!(parse_lifetime("60m"), Ok(60));
        assert_eq!(parse_lifetime("90"), Ok(90));
        assert_eq!(parse_lifetime("8h"), Ok(480));
        assert_eq!(parse_lifetime("30d"), Ok(43_200));
        assert!(parse_lifetime("5m").is_err());
        assert!(parse_lifetime("31d").is_err());
        assert!(parse_lifetime("soon").is_err());
    }
}
