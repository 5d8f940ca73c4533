//! Pushes a seeded sandbox tenant of N users to a SCIM endpoint with the sandbox's Entra-like
//! SCIM client (configuration save, Test connection, one initial cycle), prints the cycle's
//! report, and optionally writes the pushed userNames one a line (the SCIM load benchmark's
//! input, `bench/scim_load.sh`). The bearer token comes from `SCIM_TOKEN`, never the command line.
//!
//! SCIM_TOKEN=… cargo run --release -p behalf-sandbox --example scim_push -- \
//!     --url http://127.0.0.1:8080/scim/v2 --users 20000 [--groups 13] [--names-out names.txt]
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout)] // a tool that prints its report

use std::io::Write as _;
use std::path::PathBuf;

use behalf_sandbox::{PushOptions, Sandbox, SandboxConfig, ScimPush};
use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    /// The SCIM root, e.g. http://127.0.0.1:8080/scim/v2
    #[arg(long)]
    url: String,
    /// Users in the seeded tenant (the admin included).
    #[arg(long, default_value_t = 1000)]
    users: usize,
    /// Groups in the seeded tenant (default: one per department plus project groups).
    #[arg(long)]
    groups: Option<usize>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Write the tenant's userNames here, one a line.
    #[arg(long)]
    names_out: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let token = std::env::var("SCIM_TOKEN").map_err(|_| "set SCIM_TOKEN to the bearer token")?;
    let sandbox = Sandbox::start(SandboxConfig {
        users: args.users,
        groups: args.groups,
        ..SandboxConfig::default()
    })
    .await?;
    let options = PushOptions {
        concurrency: args.concurrency,
        ..PushOptions::default()
    };
    let mut push = ScimPush::with_options(&args.url, token, options);
    push.save_configuration().await?;
    push.test_connection().await?;
    let report = push.initial_cycle(&sandbox).await;
    println!("{report}");
    if let Some(path) = &args.names_out {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for upn in sandbox.user_principal_names() {
            writeln!(out, "{upn}")?;
        }
        out.flush()?;
    }
    sandbox.shutdown().await;
    if report.failures.is_empty() {
        Ok(())
    } else {
        Err(format!("{} failures", report.failures.len()).into())
    }
}
