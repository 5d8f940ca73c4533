//! `behalf sandbox … scim-push`: the tenant pushed to a SCIM endpoint, for people trying Behalf's
//! `/scim/v2` (or any SCIM service) by hand.

use std::time::Duration;

use super::{PushOptions, ScimPush};
use crate::Sandbox;

/// Subcommands of `behalf sandbox`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum SandboxCommand {
    /// Push the tenant to a SCIM 2.0 endpoint as Entra's provisioning service does: read
    /// /Schemas, test the connection, run an initial cycle, then (with --every) an incremental
    /// cycle at that interval until Ctrl+C. The sandbox serves meanwhile, so its Graph can change
    /// users between cycles.
    ScimPush(ScimPushArgs),
}

#[derive(Clone, clap::Args)]
pub struct ScimPushArgs {
    /// The SCIM root, e.g. http://127.0.0.1:8080/scim/v2
    #[arg(long)]
    pub url: String,
    /// The bearer token of the SCIM connection (`behalf scim-token create`).
    #[arg(long, env = "BEHALF_SCIM_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Seconds between incremental cycles (Entra runs one about every 40 minutes); without it,
    /// one initial cycle and stop.
    #[arg(long, value_name = "SECONDS")]
    pub every: Option<u64>,
}

impl std::fmt::Debug for ScimPushArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimPushArgs")
            .field("url", &self.url)
            .field("token", &"<hidden>")
            .field("concurrency", &self.concurrency)
            .field("every", &self.every)
            .finish()
    }
}

/// Runs the push against a started sandbox; a failed configuration check or connection test
/// is the error, a cycle's failures are printed in its report.
#[allow(clippy::print_stdout)] // the reports are this command's output
pub(crate) async fn run(sandbox: &Sandbox, args: &ScimPushArgs) -> Result<(), String> {
    let options = PushOptions {
        concurrency: args.concurrency,
        ..PushOptions::default()
    };
    let mut push = ScimPush::with_options(&args.url, args.token.clone(), options);
    push.save_configuration()
        .await
        .map_err(|e| format!("saving the configuration: {e}"))?;
    push.test_connection()
        .await
        .map_err(|e| format!("test connection: {e}"))?;
    println!("{}", push.initial_cycle(sandbox).await);
    let Some(every) = args.every else {
        return Ok(());
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(every)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
        println!("{}", push.incremental_cycle(sandbox).await);
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, Parser};

    use super::SandboxCommand;

    /// `behalf sandbox` as the binary defines it: the sandbox's flags, flattened.
    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: crate::Args,
    }

    #[test]
    fn scim_push_is_a_subcommand_after_the_sandbox_flags() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "sandbox",
            "--users",
            "50",
            "scim-push",
            "--url",
            "http://127.0.0.1:8080/scim/v2",
            "--token",
            "t0k3n",
            "--every",
            "30",
        ])
        .unwrap();
        assert_eq!(cli.args.users, 50);
        let Some(SandboxCommand::ScimPush(push)) = cli.args.command else {
            panic!("no scim-push in {cli:?}");
        };
        assert_eq!(push.url, "http://127.0.0.1:8080/scim/v2");
        assert_eq!((push.token.as_str(), push.every), ("t0k3n", Some(30)));
        // Without a subcommand the sandbox just serves.
        let cli = Cli::try_parse_from(["sandbox", "--users", "5"]).unwrap();
        assert!(cli.args.command.is_none());
    }

    #[test]
    fn the_token_stays_out_of_debug_output() {
        let cli = Cli::try_parse_from(["sandbox", "scim-push", "--url", "u", "--token", "s3cr3t"])
            .unwrap();
        let debug = format!("{cli:?}");
        assert!(
            !debug.contains("s3cr3t") && debug.contains("<hidden>"),
            "{debug}"
        );
    }
}
