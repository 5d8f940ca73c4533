//! `behalf provision`: register passkeys for one user, a CSV of users, or every user that needs one.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use behalf_config::Config;
use behalf_domain::{ItemState, Upn, UserDraft, UserId};
use behalf_provision::{ItemReport, Progress, RelyingParty as _, RunSummary, csv_input};
use clap::{Args, ValueEnum};
use futures::StreamExt as _;
use serde_json::json;
use tokio::sync::watch;

use crate::sandbox_setup::{SandboxArgs, with_sandbox};
use crate::wiring::{self, MicrosoftEngine, Opened};

/// Exit code when the run finished but some users failed.
pub const EXIT_SOME_FAILED: u8 = 3;
/// Exit code when the run was stopped (Ctrl+C) before it finished.
pub const EXIT_STOPPED: u8 = 130;

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("who").required(true).args(["user", "csv", "automatic"]))]
pub struct ProvisionArgs {
    /// One user, by userPrincipalName.
    #[arg(long, value_name = "UPN")]
    pub user: Option<String>,
    /// Users from a CSV file with a `UPN` or `userPrincipalName` column.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Every imported user that is enabled and has no Behalf passkey yet.
    #[arg(long)]
    pub automatic: bool,
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

/// One line of `failures.csv`.
#[derive(Debug, Clone)]
struct Failure {
    line: Option<u64>,
    upn: String,
    outcome: &'static str,
    reason: String,
    error_code: Option<String>,
    request_id: Option<String>,
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

async fn provision(
    config: Config,
    args: &ProvisionArgs,
    verbose: bool,
) -> anyhow::Result<ExitCode> {
    let opened = wiring::open(&config).await?;
    let graph = wiring::graph_client(&config)?;
    let engine = wiring::engine(&config, &opened, graph.clone(), wiring::cli_actor()).await?;

    let mut failures = Vec::new();
    let mut lines: HashMap<UserId, u64> = HashMap::new();
    let (kind, users) = if let Some(upn) = &args.user {
        let upn = Upn::parse(upn)?;
        let user = find_or_fetch(&opened, &graph, &upn)
            .await?
            .with_context(|| format!("unknown user {upn}"))?;
        (format!("user:{}", upn.key()), vec![user])
    } else if let Some(path) = &args.csv {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let input = csv_input::parse(std::io::BufReader::new(file))
            .with_context(|| format!("{}", path.display()))?;
        for problem in input.problems {
            failures.push(Failure {
                line: Some(problem.line),
                upn: problem.value,
                outcome: "invalid",
                reason: problem.reason,
                error_code: None,
                request_id: None,
            });
        }
        let mut users = Vec::new();
        // Looked up concurrently (bounded like provisioning itself), answers kept in row order.
        let looked_up: Vec<_> = futures::stream::iter(input.rows)
            .map(|row| {
                let (opened, graph) = (&opened, &graph);
                async move {
                    let found = find_or_fetch(opened, graph, &row.upn).await;
                    (row, found)
                }
            })
            .buffered(config.provisioning.concurrency.max(1))
            .collect()
            .await;
        for (row, found) in looked_up {
            match found {
                Ok(Some(user)) => {
                    lines.insert(user, row.line);
                    users.push(user);
                }
                Ok(None) => failures.push(Failure {
                    line: Some(row.line),
                    upn: row.upn.to_string(),
                    outcome: "failed",
                    reason: "unknown user: not in the directory".into(),
                    error_code: Some("Request_ResourceNotFound".into()),
                    request_id: None,
                }),
                Err(e) => failures.push(Failure {
                    line: Some(row.line),
                    upn: row.upn.to_string(),
                    outcome: "failed",
                    reason: format!("cannot look the user up: {e:#}"),
                    error_code: None,
                    request_id: None,
                }),
            }
        }
        (format!("csv:{}", absolute(path).display()), users)
    } else {
        let users = opened
            .store
            .users_needing_passkey(opened.workspace.id, engine.rp().rp_id())
            .await?;
        ("automatic".to_owned(), users)
    };

    if args.dry_run {
        return dry_run(&opened, &users, &failures, args).await;
    }

    let job = engine.job_for(&kind, &users).await?;
    let total = opened.store.job_counts(job.id).await?;
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
    let summary = engine.run(job.id, &progress, stop_rx).await;
    ticker.abort();
    ctrl_c.abort();
    let summary = summary?;
    let elapsed = started.elapsed();

    for report in progress.reports() {
        if report.state == ItemState::Registered {
            continue;
        }
        failures.push(Failure {
            line: lines.get(&report.user_id).copied(),
            upn: report.upn,
            outcome: report.state.as_str(),
            reason: report.reason.unwrap_or_default(),
            error_code: report.error_code,
            request_id: report.request_id,
        });
    }
    failures.sort_by_key(|f| (f.line, f.upn.clone()));
    write_failures(&args.failures, &failures)?;
    let failed = failures.iter().filter(|f| f.outcome != "skipped").count();
    report_summary(
        args,
        &summary,
        &failures,
        rejected,
        elapsed,
        engine_stats(&engine),
    );

    Ok(if summary.stopped && summary.remaining > 0 {
        eprintln!(
            "stopped with {} users left: run the same command again to continue",
            summary.remaining
        );
        ExitCode::from(EXIT_STOPPED)
    } else if failed > 0 {
        ExitCode::from(EXIT_SOME_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// The user by UPN from the store, else from the directory (then remembered in the store).
async fn find_or_fetch(
    opened: &Opened,
    graph: &behalf_graph::GraphClient,
    upn: &Upn,
) -> anyhow::Result<Option<UserId>> {
    if let Some(user) = opened
        .store
        .find_user_by_upn(opened.workspace.id, upn)
        .await?
    {
        return Ok(Some(user.id));
    }
    let user = match graph.get_user(upn.as_str()).await {
        Ok(user) => user,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let draft = UserDraft {
        connection_id: None,
        external_id: Some(user.id.clone()),
        upn: Upn::parse(user.user_principal_name.as_deref().unwrap_or(upn.as_str()))?,
        display_name: user.display_name.clone().unwrap_or_else(|| upn.to_string()),
        mail: user.mail.clone(),
        department: user.department.clone(),
        enabled: user.account_enabled.unwrap_or(true),
    };
    opened
        .store
        .upsert_users(opened.workspace.id, std::slice::from_ref(&draft))
        .await?;
    Ok(opened
        .store
        .find_user_by_external_id(opened.workspace.id, &user.id)
        .await?
        .map(|u| u.id))
}

async fn dry_run(
    opened: &Opened,
    users: &[UserId],
    failures: &[Failure],
    args: &ProvisionArgs,
) -> anyhow::Result<ExitCode> {
    let mut would = Vec::new();
    for id in users {
        let user = opened.store.get_user(*id).await?;
        let action = if !user.enabled {
            "skip (disabled)"
        } else {
            "provision"
        };
        would.push(json!({"upn": user.upn.as_str(), "action": action}));
    }
    if args.json {
        let invalid: Vec<_> = failures
            .iter()
            .map(|f| json!({"line": f.line, "upn": f.upn, "reason": f.reason}))
            .collect();
        print_stdout(&json!({"dry_run": true, "users": would, "problems": invalid}).to_string());
    } else {
        for w in &would {
            eprintln!(
                "would {:<16} {}",
                w["action"].as_str().unwrap_or_default(),
                w["upn"].as_str().unwrap_or_default()
            );
        }
        for f in failures {
            eprintln!("line {}: {}: {}", f.line.unwrap_or(0), f.upn, f.reason);
        }
        eprintln!(
            "dry run: {} users would be provisioned; nothing was changed",
            would.len()
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

fn engine_stats(engine: &MicrosoftEngine) -> serde_json::Value {
    let stats = engine.rp().client.pacing_stats();
    json!({"requests": stats.requests, "throttled": stats.throttled, "retries": stats.retries})
}

fn report_summary(
    args: &ProvisionArgs,
    summary: &RunSummary,
    failures: &[Failure],
    rejected: usize,
    elapsed: Duration,
    stats: serde_json::Value,
) {
    let rate = (summary.registered + summary.failed + summary.skipped) as f64
        / elapsed.as_secs_f64().max(0.001);
    if args.json {
        let listed: Vec<_> = failures
            .iter()
            .map(|f| json!({"line": f.line, "upn": f.upn, "outcome": f.outcome, "reason": f.reason, "error_code": f.error_code, "request_id": f.request_id}))
            .collect();
        print_stdout(
            &json!({
                "registered": summary.registered,
                "failed": summary.failed,
                "skipped": summary.skipped,
                "rejected": rejected,
                "remaining": summary.remaining,
                "stopped": summary.stopped,
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
            summary.registered,
            summary.failed,
            summary.skipped,
            rejected,
        );
    }
}

fn write_failures(path: &Path, failures: &[Failure]) -> anyhow::Result<()> {
    let mut writer =
        csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    writer.write_record([
        "line",
        "upn",
        "outcome",
        "reason",
        "error_code",
        "request_id",
    ])?;
    for f in failures {
        writer.write_record([
            f.line.map(|l| l.to_string()).unwrap_or_default(),
            f.upn.clone(),
            f.outcome.to_owned(),
            f.reason.clone(),
            f.error_code.clone().unwrap_or_default(),
            f.request_id.clone().unwrap_or_default(),
        ])?;
    }
    writer.flush()?;
    Ok(())
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

#[allow(clippy::print_stdout)]
pub fn print_stdout(text: &str) {
    println!("{text}");
}
