//! `behalf provision`: register passkeys for one user, a CSV of users, or every user that needs one.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use behalf_app::ops::provision::{FailureRow, Planned, Rejected, Selection, write_failures_csv};
use behalf_config::Config;
use behalf_domain::{ItemState, JobMode, Upn};
use behalf_provision::{ItemReport, Progress, csv_input};
use clap::{Args, ValueEnum};
use serde_json::json;
use tokio::sync::watch;

use crate::context;
use crate::sandbox_setup::{SandboxArgs, with_sandbox};

/// What a manual run says before it starts waiting: it may wait for a pass's whole lifetime.
pub(crate) const MANUAL_NOTE: &str = "each user is mailed a Temporary Access Pass; waiting until they register a passkey or their pass expires (Ctrl+C stops watching; the server's workers, or this command again, go on)";

/// Exit code when the run finished but some users failed.
pub const EXIT_SOME_FAILED: u8 = 3;
/// Exit code when the run was stopped (Ctrl+C) before it finished.
pub const EXIT_STOPPED: u8 = 130;

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("who").required(true).args(["user", "csv", "automatic"]))]
pub struct ProvisionArgs {
    /// A user, by userPrincipalName (again for more users).
    #[arg(long, value_name = "UPN")]
    pub user: Vec<String>,
    /// Users from a CSV file with a `UPN` or `userPrincipalName` column.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Every imported user that is enabled and has no Behalf passkey yet.
    #[arg(long)]
    pub automatic: bool,
    /// The manual path: mail each user a Temporary Access Pass (`[mail]` must be configured)
    /// and wait until they register a passkey themselves or the pass expires.
    #[arg(long)]
    pub manual: bool,
    /// The relying party.
    #[arg(long, value_enum, default_value_t = Rp::Microsoft)]
    pub rp: Rp,
    /// Users provisioned at the same time.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Say what would be done; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// A JSON summary on stdout (progress stays on stderr).
    #[arg(long)]
    pub json: bool,
    /// Where to write the users that failed or were skipped, with why (rewritten each run).
    #[arg(long, value_name = "FILE", default_value = "failures.csv")]
    pub failures: PathBuf,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Rp {
    Microsoft,
}

/// TLS options for reaching Graph.
#[derive(Debug, Args)]
pub struct TlsArgs {
    /// Accept any TLS certificate (troubleshooting only).
    #[arg(long)]
    pub disable_ssl_verify: bool,
    /// Trust the operating system's certificate store (corporate TLS inspection).
    #[arg(long)]
    pub local_ssl_verify: bool,
    /// Also trust the CA certificates in this PEM file.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
}

impl TlsArgs {
    pub fn apply(&self, config: &mut Config) {
        if self.disable_ssl_verify {
            tracing::warn!(
                "TLS certificate verification is DISABLED: anyone on the network path can read and change this traffic"
            );
            config.tls.disable_ssl_verify = true;
        }
        config.tls.local_ssl_verify |= self.local_ssl_verify;
        if let Some(ca) = &self.ca_file {
            config.tls.ca_file = Some(ca.clone());
        }
    }
}

/// `verbose` (the global `-v`) prints one line per user.
pub async fn run(
    mut config: Config,
    args: ProvisionArgs,
    verbose: bool,
) -> anyhow::Result<ExitCode> {
    args.tls.apply(&mut config);
    if let Some(n) = args.concurrency {
        anyhow::ensure!(n > 0, "--concurrency must be at least 1");
        config.provisioning.concurrency = n;
    }
    let sandbox = args.sandbox.clone();
    with_sandbox(config, &sandbox, |config| async move {
        provision(config, &args, verbose).await
    })
    .await
}

/// Who `args` names, as the application layer takes it.
fn selection(args: &ProvisionArgs) -> anyhow::Result<Selection> {
    match &args.user[..] {
        [] => {}
        [upn] => return Ok(Selection::User(Upn::parse(upn)?)),
        upns => {
            return Ok(Selection::Upns(
                upns.iter()
                    .map(|u| Upn::parse(u))
                    .collect::<Result<_, _>>()?,
            ));
        }
    }
    if let Some(path) = &args.csv {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let input = csv_input::parse(std::io::BufReader::new(file))
            .with_context(|| format!("{}", path.display()))?;
        return Ok(Selection::Csv {
            input,
            source: absolute(path).display().to_string(),
        });
    }
    Ok(Selection::Automatic)
}

async fn provision(
    config: Config,
    args: &ProvisionArgs,
    verbose: bool,
) -> anyhow::Result<ExitCode> {
    let app = context::open_app(&config, None).await?;
    let provisioner = context::local(app.provisioner(&context::local_caller()))?;
    let mode = if args.manual {
        JobMode::Manual
    } else {
        JobMode::OnBehalf
    };
    let prepared = provisioner.prepare(selection(args)?).await?.in_mode(mode);
    if args.dry_run {
        let planned = provisioner.plan(&prepared).await?;
        return dry_run(&planned, &prepared.rejected, args);
    }
    let mut failures: Vec<FailureRow> = prepared
        .rejected
        .iter()
        .cloned()
        .map(FailureRow::from)
        .collect();

    let job = provisioner.queue(&prepared).await?;
    if mode == JobMode::Manual {
        eprintln!("{MANUAL_NOTE}");
    }
    let total = app.store().job_counts(job.id).await?;
    let progress = Arc::new(Progress::with_callback(move |report: &ItemReport| {
        if verbose {
            eprintln!(
                "{:<10} {}{}",
                report.state.as_str(),
                report.upn,
                report
                    .reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            );
        }
    }));
    let (stop_tx, stop_rx) = watch::channel(false);
    let ctrl_c = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\nstopping: finishing the users in flight (Ctrl+C again to abort)…");
            let _ = stop_tx.send(true);
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(i32::from(EXIT_STOPPED));
            }
        }
    });
    // Rows turned away before provisioning (malformed, duplicate, unknown user).
    let rejected = failures.len();
    let started = Instant::now();
    let to_do = u64::try_from(total.open()).unwrap_or(0);
    let ticker = spawn_progress(Arc::clone(&progress), to_do, verbose);
    let summary = provisioner.run(job.id, &progress, stop_rx).await;
    ticker.abort();
    ctrl_c.abort();
    let summary = summary?;
    let elapsed = started.elapsed();

    for report in progress.reports() {
        if report.state == ItemState::Registered {
            continue;
        }
        failures.push(FailureRow {
            line: prepared.lines.get(&report.user_id).copied(),
            upn: report.upn,
            outcome: report.state.as_str().to_owned(),
            reason: report.reason.unwrap_or_default(),
            error_code: report.error_code,
            request_id: report.request_id,
        });
    }
    failures.sort_by_key(|f| (f.line, f.upn.clone()));
    write_failures(&args.failures, &failures)?;
    let failed = failures.iter().filter(|f| f.is_failure()).count();
    let outcome = Outcome {
        registered: summary.registered,
        failed: summary.failed,
        skipped: summary.skipped,
        rejected,
        remaining: summary.remaining,
        stopped: summary.stopped,
    };
    report_summary(args, &outcome, &failures, elapsed, graph_stats(&app));
    Ok(exit_code(&outcome, failed))
}

/// What a run did, whether it ran here or on a server.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub registered: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Rows turned away before provisioning.
    pub rejected: usize,
    pub remaining: i64,
    pub stopped: bool,
}

/// 130 when stopped with users left, 3 when someone failed, else 0.
pub fn exit_code(outcome: &Outcome, failed: usize) -> ExitCode {
    if outcome.stopped && outcome.remaining > 0 {
        eprintln!(
            "stopped with {} users left: run the same command again to continue",
            outcome.remaining
        );
        ExitCode::from(EXIT_STOPPED)
    } else if failed > 0 {
        ExitCode::from(EXIT_SOME_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}

fn dry_run(
    planned: &[Planned],
    rejected: &[Rejected],
    args: &ProvisionArgs,
) -> anyhow::Result<ExitCode> {
    if args.json {
        let invalid: Vec<_> = rejected
            .iter()
            .map(|f| json!({"line": f.line, "upn": f.upn, "reason": f.reason}))
            .collect();
        let users: Vec<_> = planned
            .iter()
            .map(|p| json!({"upn": p.upn, "action": p.action.describe()}))
            .collect();
        print_stdout(&json!({"dry_run": true, "users": users, "problems": invalid}).to_string());
    } else {
        for p in planned {
            eprintln!("would {:<16} {}", p.action.describe(), p.upn);
        }
        for f in rejected {
            eprintln!("line {}: {}: {}", f.line.unwrap_or(0), f.upn, f.reason);
        }
        eprintln!(
            "dry run: {} users would be provisioned; nothing was changed",
            planned.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn spawn_progress(
    progress: Arc<Progress>,
    total: u64,
    verbose: bool,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started = Instant::now();
        if std::io::stderr().is_terminal() && !verbose {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} {msg} [{elapsed_precise}, ETA {eta}]",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            loop {
                let s = progress.snapshot();
                bar.set_position(s.done());
                let rate = s.done() as f64 / started.elapsed().as_secs_f64().max(0.001);
                bar.set_message(format!(
                    "registered {} · failed {} · skipped {} · {rate:.1}/s",
                    s.registered, s.failed, s.skipped
                ));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        } else {
            // Not a terminal (CI, a log file): a plain line every few seconds.
            let mut last = u64::MAX;
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let s = progress.snapshot();
                if s.done() != last {
                    last = s.done();
                    let rate = s.done() as f64 / started.elapsed().as_secs_f64().max(0.001);
                    eprintln!(
                        "progress: {}/{total} done (registered {}, failed {}, skipped {}), {rate:.1}/s",
                        s.done(),
                        s.registered,
                        s.failed,
                        s.skipped
                    );
                }
            }
        }
    })
}

fn graph_stats(app: &behalf_app::App) -> serde_json::Value {
    let stats = app.pacing_stats().unwrap_or_default();
    json!({"requests": stats.requests, "throttled": stats.throttled, "retries": stats.retries})
}

/// Prints the summary: a JSON object on stdout with `--json`, else one line on stderr.
pub fn report_summary(
    args: &ProvisionArgs,
    outcome: &Outcome,
    failures: &[FailureRow],
    elapsed: Duration,
    stats: serde_json::Value,
) {
    let rate = (outcome.registered + outcome.failed + outcome.skipped) as f64
        / elapsed.as_secs_f64().max(0.001);
    if args.json {
        let listed: Vec<_> = failures
            .iter()
            .map(|f| json!({"line": f.line, "upn": f.upn, "outcome": f.outcome, "reason": f.reason, "error_code": f.error_code, "request_id": f.request_id}))
            .collect();
        print_stdout(
            &json!({
                "registered": outcome.registered,
                "failed": outcome.failed,
                "skipped": outcome.skipped,
                "rejected": outcome.rejected,
                "remaining": outcome.remaining,
                "stopped": outcome.stopped,
                "seconds": elapsed.as_secs_f64(),
                "users_per_second": rate,
                "graph": stats,
                "problems": listed,
            })
            .to_string(),
        );
    } else {
        // The file is rewritten every run; it is worth a look only when it lists someone.
        let details = if failures.is_empty() {
            String::new()
        } else {
            format!("; details in {}", args.failures.display())
        };
        eprintln!(
            "done in {:.1}s: {} registered, {} failed, {} skipped, {} rows rejected ({rate:.1} users/s){details}",
            elapsed.as_secs_f64(),
            outcome.registered,
            outcome.failed,
            outcome.skipped,
            outcome.rejected,
        );
    }
}

/// Rewrites the local failures file.
pub fn write_failures(path: &Path, failures: &[FailureRow]) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    write_failures_csv(std::io::BufWriter::new(file), failures)
        .with_context(|| format!("cannot write {}", path.display()))
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

#[allow(clippy::print_stdout)]
pub fn print_stdout(text: &str) {
    println!("{text}");
}
