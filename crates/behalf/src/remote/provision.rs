//! `behalf --server URL provision …`: the server queues and runs the job; the CLI follows its
//! progress over Server-Sent Events and ends as a local run does (progress bar, `failures.csv`,
//! summary, exit code).

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use behalf_app::ops::provision::FailureRow;
use behalf_domain::JobMode;
use behalf_provision::csv_input;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::client::Remote;
use super::sse;
use crate::cmd::provision::{Outcome, ProvisionArgs, exit_code, report_summary, write_failures};

/// A job as the API shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct Job {
    pub id: String,
    #[serde(default)]
    pub kind: String,
    pub state: String,
    /// Nothing left to do (the server may say so before it marks the job completed).
    #[serde(default)]
    pub finished: bool,
    #[serde(default)]
    pub counts: Counts,
}

impl Job {
    fn is_open(&self) -> bool {
        self.state == "open" && !self.finished
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct Counts {
    pub pending: u64,
    pub options_fetched: u64,
    pub credential_created: u64,
    pub waiting_for_user: u64,
    pub registered: u64,
    pub failed: u64,
    pub skipped: u64,
    pub total: u64,
    pub open: u64,
}

impl Counts {
    fn done(&self) -> u64 {
        self.registered + self.failed + self.skipped
    }
}

#[derive(Debug, Deserialize)]
struct Queued {
    job: Job,
    #[serde(default)]
    rejected: Vec<RejectedRow>,
}

#[derive(Debug, Deserialize)]
struct RejectedRow {
    line: Option<u64>,
    #[serde(default)]
    upn: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    reason: String,
    error_code: Option<String>,
    request_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ItemPage {
    items: Vec<Item>,
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Item {
    #[serde(default)]
    upn: String,
    state: String,
    reason: Option<String>,
    error_code: Option<String>,
    request_id: Option<String>,
}

/// What the local flags mean on a server, or why they cannot be honoured there.
fn check_args(args: &ProvisionArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        !args.dry_run,
        "--dry-run runs on this machine only: drop --server to see what a run would do here"
    );
    anyhow::ensure!(
        !args.sandbox.sandbox,
        "--sandbox starts a sandbox tenant on this machine: drop --server, or run `behalf serve --sandbox` and point --server at it"
    );
    anyhow::ensure!(
        args.concurrency.is_none(),
        "--concurrency is the server's setting (provisioning.concurrency in its configuration)"
    );
    Ok(())
}

pub async fn run(remote: &Remote, args: &ProvisionArgs, verbose: bool) -> anyhow::Result<ExitCode> {
    check_args(args)?;
    let started = Instant::now();
    // One key per invocation: if the answer to the POST is lost and reqwest's connection pool
    // retries it, the server hands back the same job instead of queuing a second one.
    let key = uuid::Uuid::new_v4().to_string();
    let mut lines = HashMap::new();
    let mode = if args.manual {
        JobMode::Manual
    } else {
        JobMode::OnBehalf
    };
    let request = if let Some(path) = &args.csv {
        let body =
            std::fs::read(path).with_context(|| format!("cannot open {}", path.display()))?;
        // The server reports a user's CSV line only for rows it turned away; the lines of the
        // rest are read here so that failures.csv names them as a local run does.
        if let Ok(input) = csv_input::parse(body.as_slice()) {
            lines = input.rows.iter().map(|r| (r.upn.key(), r.line)).collect();
        }
        remote
            .request(Method::POST, &format!("/api/v1/jobs/csv?mode={mode}"))
            .header(reqwest::header::CONTENT_TYPE, "text/csv")
            .body(body)
    } else if !args.user.is_empty() {
        remote
            .request(Method::POST, "/api/v1/jobs")
            .json(&json!({"upns": args.user, "mode": mode}))
    } else {
        remote
            .request(Method::POST, "/api/v1/jobs")
            .json(&json!({"automatic": true, "mode": mode}))
    };
    let queued: Queued = remote.json(request.header("Idempotency-Key", &key)).await?;
    if mode == JobMode::Manual {
        eprintln!("{}", crate::cmd::provision::MANUAL_NOTE);
    }
    tracing::debug!(job = %queued.job.id, kind = %queued.job.kind, "queued");

    let mut failures: Vec<FailureRow> = queued
        .rejected
        .into_iter()
        .map(|r| FailureRow {
            line: r.line,
            upn: r.upn,
            outcome: r.outcome,
            reason: r.reason,
            error_code: r.error_code,
            request_id: r.request_id,
        })
        .collect();
    let rejected = failures.len();

    let bar = Bar::new(&queued.job, verbose);
    let mut last = queued.job.clone();
    let stopped = tokio::select! {
        followed = follow(remote, &queued.job, &bar, &mut last) => {
            followed?;
            false
        }
        Ok(()) = tokio::signal::ctrl_c() => true,
    };
    bar.finish();
    if stopped {
        eprintln!(
            "\nstopped following job {}: the server goes on with it (`behalf --server {} report` shows what it did)",
            last.id, remote.base
        );
    }

    for state in ["failed", "skipped"] {
        for item in items(remote, &last.id, state).await? {
            failures.push(FailureRow {
                line: lines.get(&item.upn.to_lowercase()).copied(),
                upn: item.upn,
                outcome: item.state,
                reason: item.reason.unwrap_or_default(),
                error_code: item.error_code,
                request_id: item.request_id,
            });
        }
    }
    failures.sort_by_key(|f| (f.line, f.upn.clone()));
    write_failures(&args.failures, &failures)?;
    let failed = failures.iter().filter(|f| f.is_failure()).count();
    let counts = last.counts;
    // The job's counts: on a job this run created, what this run did; on an open job it joined
    // (`--automatic` again), the whole job, as failures.csv lists the whole job's failures.
    let outcome = Outcome {
        registered: counts.registered,
        failed: counts.failed,
        skipped: counts.skipped,
        rejected,
        remaining: i64::try_from(counts.open).unwrap_or(i64::MAX),
        stopped: stopped || last.state == "cancelled",
    };
    // Graph's request counters are the server's, not this process's.
    report_summary(
        args,
        &outcome,
        &failures,
        started.elapsed(),
        serde_json::Value::Null,
    );
    Ok(exit_code(&outcome, failed))
}

/// Follows the job's event stream until its `done` event, updating `last` with every Job the
/// server sends. A stream that breaks off (a restart, a proxy's idle timeout) is opened again:
/// the server starts each stream with the job as it is.
async fn follow(remote: &Remote, job: &Job, bar: &Bar, last: &mut Job) -> anyhow::Result<()> {
    if !job.is_open() {
        return Ok(());
    }
    let path = format!("/api/v1/jobs/{}/events", job.id);
    let mut broken = 0u32;
    loop {
        let request = remote
            .request(Method::GET, &path)
            .header(reqwest::header::ACCEPT, "text/event-stream");
        let outcome = async {
            let mut response = remote.send(request).await?;
            let mut parser = sse::Parser::default();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| anyhow::anyhow!("the job's event stream broke off: {e}"))?
            {
                for event in parser.push(&chunk).map_err(anyhow::Error::msg)? {
                    if event.event == "error" {
                        // The server could not read the job; its words, on one line.
                        let message = event.data.split_whitespace().collect::<Vec<_>>().join(" ");
                        anyhow::bail!("following job {}: {message}", job.id);
                    }
                    let job: Job = match serde_json::from_str(&event.data) {
                        Ok(job) => job,
                        Err(e) => {
                            tracing::debug!(event = %event.event, error = %e, "an event that is no job");
                            continue;
                        }
                    };
                    bar.show(&job);
                    let done = event.event == "done" || !job.is_open();
                    *last = job;
                    if done {
                        return Ok::<bool, anyhow::Error>(true);
                    }
                }
            }
            Ok(false)
        }
        .await;
        match outcome {
            Ok(true) => return Ok(()),
            // Refusals (404, 401) will not change on a retry.
            Err(e) if e.downcast_ref::<super::client::Refused>().is_some() => return Err(e),
            Err(e) if broken >= 5 => return Err(e),
            Ok(false) if broken >= 5 => {
                anyhow::bail!("the server ended the job's event stream before the job finished")
            }
            broken_off => {
                broken += 1;
                if let Err(e) = broken_off {
                    tracing::warn!(error = %e, "following the job again");
                }
                tokio::time::sleep(Duration::from_secs(u64::from(broken))).await;
            }
        }
    }
}

/// Every item of `job` in `state`, page by page.
async fn items(remote: &Remote, job: &str, state: &str) -> anyhow::Result<Vec<Item>> {
    let path = format!("/api/v1/jobs/{job}/items");
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut request = remote
            .request(Method::GET, &path)
            .query(&[("state", state)]);
        if let Some(cursor) = &after {
            request = request.query(&[("after", cursor)]);
        }
        let page: ItemPage = remote.json(request).await?;
        let empty = page.items.is_empty();
        all.extend(page.items);
        match page.next {
            // A cursor with an empty page would loop forever on a server bug.
            Some(next) if !empty && after.as_ref() != Some(&next) => after = Some(next),
            _ => return Ok(all),
        }
    }
}

/// The progress display of a local run, fed from the server's job counts: a bar on a terminal,
/// a plain `progress:` line every few seconds otherwise.
struct Bar {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    /// Done when following started: the rate counts only what happened since.
    done_at_start: u64,
    last_line: std::sync::Mutex<Option<Instant>>,
}

impl Bar {
    fn new(job: &Job, verbose: bool) -> Bar {
        // `-v` prints one line per user locally; remotely there are no per-user events, and
        // plain lines suit a verbose log better than a bar.
        let bar = (std::io::stderr().is_terminal() && !verbose).then(|| {
            let bar = indicatif::ProgressBar::new(job.counts.total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} {msg} [{elapsed_precise}, ETA {eta}]",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let bar = Bar {
            bar,
            started: Instant::now(),
            done_at_start: job.counts.done(),
            last_line: std::sync::Mutex::new(None),
        };
        bar.show(job);
        bar
    }

    fn show(&self, job: &Job) {
        let c = &job.counts;
        let rate = c.done().saturating_sub(self.done_at_start) as f64
            / self.started.elapsed().as_secs_f64().max(0.001);
        match &self.bar {
            Some(bar) => {
                bar.set_length(c.total);
                bar.set_position(c.done());
                bar.set_message(format!(
                    "registered {} · failed {} · skipped {} · {rate:.1}/s",
                    c.registered, c.failed, c.skipped
                ));
            }
            None => {
                let mut last = self.last_line.lock().unwrap_or_else(|e| e.into_inner());
                let due = last.is_none_or(|t| t.elapsed() >= Duration::from_secs(5));
                if due && job.is_open() {
                    *last = Some(Instant::now());
                    eprintln!(
                        "progress: {}/{} done (registered {}, failed {}, skipped {}), {rate:.1}/s",
                        c.done(),
                        c.total,
                        c.registered,
                        c.failed,
                        c.skipped
                    );
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_as_the_api_shows_it() {
        let job: Job = serde_json::from_str(
            r#"{"id":"0190a0b0-0000-7000-8000-000000000001","kind":"automatic","state":"open","created_by":"admin:a@x","created_at":1,
                "counts":{"pending":2,"options_fetched":0,"credential_created":1,"registered":5,"failed":1,"skipped":1,"total":10,"open":3}}"#,
        )
        .unwrap();
        assert!(job.is_open());
        assert_eq!(job.counts.done(), 7);
        assert_eq!(job.counts.open, 3);
        let page: ItemPage = serde_json::from_str(
            r#"{"items":[{"id":"i","user_id":"u","upn":"a@x","state":"failed","reason":"no","error_code":null,"request_id":"r","attempts":2}],"next":null}"#,
        )
        .unwrap();
        assert_eq!(page.items[0].state, "failed");
        assert!(page.next.is_none());
    }
}
