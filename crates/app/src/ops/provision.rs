//! Provisioning: which users (one, a selection, a CSV, everyone who needs a passkey), the job
//! that registers them, and running it.

use std::collections::HashMap;

use behalf_domain::{ItemState, Job, JobId, JobMode, Upn, UserDraft, UserId};
use behalf_provision::{Progress, RelyingParty as _, RunSummary, csv_input::CsvInput};
use futures::StreamExt as _;
use serde::Serialize;
use tokio::sync::watch;

use crate::{AppError, Provisioner};

/// Who to provision.
#[derive(Debug, Clone)]
pub enum Selection {
    /// One user by UPN; looked up in the directory when Behalf has not imported them yet.
    User(Upn),
    /// Users Behalf knows, by id (the panel's and the API's selections).
    Users(Vec<UserId>),
    /// Several users by UPN (`--user` given more than once); one Behalf and the directory do
    /// not know is [`Prepared::rejected`], the rest go on.
    Upns(Vec<Upn>),
    /// The rows of a CSV (`provision --csv`); `source` names it in the job's kind.
    Csv { input: CsvInput, source: String },
    /// Every enabled user who has no Behalf passkey on the RP yet.
    Automatic,
}

/// Why a row of the selection was turned away before provisioning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    /// The CSV line, when the selection was a CSV.
    pub line: Option<u64>,
    pub upn: String,
    pub outcome: RejectedAs,
    pub reason: String,
    pub error_code: Option<String>,
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RejectedAs {
    /// The row itself is malformed (not a UPN, a duplicate).
    Invalid,
    /// The row names nobody Behalf or the directory knows, or the lookup failed.
    Failed,
}

impl RejectedAs {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectedAs::Invalid => "invalid",
            RejectedAs::Failed => "failed",
        }
    }
}

/// A selection resolved to users: what a job would be made of.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The job's kind: re-running the same kind continues the same open job.
    pub kind: String,
    /// Registered on the users' behalf, or by the users with a pass mailed to them.
    pub mode: JobMode,
    pub users: Vec<UserId>,
    pub rejected: Vec<Rejected>,
    /// The CSV line of each user, when the selection was a CSV.
    pub lines: HashMap<UserId, u64>,
}

impl Prepared {
    /// The same users in a job of `mode`. A manual or local job's kind says so (`manual:…`,
    /// `local:…`), so that it never continues an open job of another mode for the same selection.
    pub fn in_mode(mut self, mode: JobMode) -> Prepared {
        if mode != JobMode::OnBehalf && self.mode != mode {
            self.kind = format!("{mode}:{}", self.kind);
        }
        self.mode = mode;
        self
    }
}

/// One user of a dry run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Planned {
    pub upn: String,
    pub action: PlannedAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlannedAction {
    Provision,
    SkipDisabled,
}

impl PlannedAction {
    pub fn describe(self) -> &'static str {
        match self {
            PlannedAction::Provision => "provision",
            PlannedAction::SkipDisabled => "skip (disabled)",
        }
    }
}

impl Provisioner<'_> {
    /// Resolves `selection` to users. A single unknown user is an error; a CSV's bad rows are
    /// [`Prepared::rejected`] and the rest go on.
    pub async fn prepare(&self, selection: Selection) -> Result<Prepared, AppError> {
        let engine = self.app.engine()?;
        let store = self.app.store();
        let workspace = self.app.workspace().id;
        let mut prepared = Prepared {
            kind: String::new(),
            mode: JobMode::OnBehalf,
            users: Vec::new(),
            rejected: Vec::new(),
            lines: HashMap::new(),
        };
        match selection {
            Selection::User(upn) => {
                let user = self
                    .find_or_fetch(&upn)
                    .await?
                    .ok_or_else(|| AppError::NotFound {
                        what: "user",
                        key: upn.to_string(),
                    })?;
                prepared.kind = format!("user:{}", upn.key());
                prepared.users.push(user);
            }
            Selection::Users(ids) => {
                let found = store.get_users(&ids).await?;
                if found.len() != ids.len() {
                    let known: std::collections::HashSet<_> = found.iter().map(|u| u.id).collect();
                    let missing = ids.iter().find(|id| !known.contains(id));
                    return Err(AppError::NotFound {
                        what: "user",
                        key: missing.map(ToString::to_string).unwrap_or_default(),
                    });
                }
                // Each selection is a job of its own (a new kind), so it can be followed alone.
                prepared.kind = format!("selection:{}", uuid::Uuid::now_v7());
                prepared.users = ids;
            }
            Selection::Upns(upns) => {
                let mut keys: Vec<String> = upns.iter().map(Upn::key).collect();
                keys.sort();
                keys.dedup();
                prepared.kind = format!("upns:{}", keys.join(","));
                let mut seen = std::collections::HashSet::new();
                for upn in upns {
                    if !seen.insert(upn.key()) {
                        continue;
                    }
                    match self.find_or_fetch(&upn).await {
                        Ok(Some(user)) => prepared.users.push(user),
                        Ok(None) => prepared.rejected.push(Rejected {
                            line: None,
                            upn: upn.to_string(),
                            outcome: RejectedAs::Failed,
                            reason: "unknown user: not in the directory".into(),
                            error_code: Some("Request_ResourceNotFound".into()),
                            request_id: None,
                        }),
                        Err(e) => prepared.rejected.push(Rejected {
                            line: None,
                            upn: upn.to_string(),
                            outcome: RejectedAs::Failed,
                            reason: format!("cannot look the user up: {e}"),
                            error_code: None,
                            request_id: None,
                        }),
                    }
                }
            }
            Selection::Csv { input, source } => {
                for problem in input.problems {
                    prepared.rejected.push(Rejected {
                        line: Some(problem.line),
                        upn: problem.value,
                        outcome: RejectedAs::Invalid,
                        reason: problem.reason,
                        error_code: None,
                        request_id: None,
                    });
                }
                // Looked up concurrently (bounded like provisioning itself), kept in row order.
                let concurrency = self.app.config().provisioning.concurrency.max(1);
                let looked_up: Vec<_> = futures::stream::iter(input.rows)
                    .map(|row| async move {
                        let found = self.find_or_fetch(&row.upn).await;
                        (row, found)
                    })
                    .buffered(concurrency)
                    .collect()
                    .await;
                for (row, found) in looked_up {
                    match found {
                        Ok(Some(user)) => {
                            prepared.lines.insert(user, row.line);
                            prepared.users.push(user);
                        }
                        Ok(None) => prepared.rejected.push(Rejected {
                            line: Some(row.line),
                            upn: row.upn.to_string(),
                            outcome: RejectedAs::Failed,
                            reason: "unknown user: not in the directory".into(),
                            error_code: Some("Request_ResourceNotFound".into()),
                            request_id: None,
                        }),
                        Err(e) => {
                            let (code, request_id) = match &e {
                                AppError::Upstream {
                                    code, request_id, ..
                                } => (code.clone(), request_id.clone()),
                                _ => (None, None),
                            };
                            prepared.rejected.push(Rejected {
                                line: Some(row.line),
                                upn: row.upn.to_string(),
                                outcome: RejectedAs::Failed,
                                reason: format!("cannot look the user up: {e}"),
                                error_code: code,
                                request_id,
                            });
                        }
                    }
                }
                prepared.kind = format!("csv:{source}");
            }
            Selection::Automatic => {
                prepared.kind = "automatic".into();
                prepared.users = store
                    .users_needing_passkey(workspace, engine.rp().rp_id())
                    .await?;
            }
        }
        Ok(prepared)
    }

    /// What a job of `prepared` would do, changing nothing.
    pub async fn plan(&self, prepared: &Prepared) -> Result<Vec<Planned>, AppError> {
        let users = self.app.store().get_users(&prepared.users).await?;
        Ok(users
            .into_iter()
            .map(|user| Planned {
                upn: user.upn.to_string(),
                action: if user.enabled {
                    PlannedAction::Provision
                } else {
                    PlannedAction::SkipDisabled
                },
            })
            .collect())
    }

    /// The job for `prepared`: the open job of the same kind with these users added (so a
    /// re-run continues it, its failed items retried), or a new one. The workers are told.
    pub async fn queue(&self, prepared: &Prepared) -> Result<Job, AppError> {
        let engine = self.app.engine()?;
        self.check_mode(prepared)?;
        let job = engine
            .job_for_mode(
                &prepared.kind,
                prepared.mode,
                &prepared.users,
                &self.actor(),
            )
            .await?;
        self.app.notify_jobs_queued();
        self.audit_queued(&job, prepared).await?;
        Ok(job)
    }

    /// Whether a job of `prepared`'s mode can do its work here: a manual job mails every user a
    /// pass, so it is refused before it exists when mail cannot go out.
    pub(crate) fn check_mode(&self, prepared: &Prepared) -> Result<(), AppError> {
        match prepared.mode {
            JobMode::OnBehalf => Ok(()),
            JobMode::Manual => crate::ops::mail::mailer(self.app).map(|_| ()).map_err(|e| {
                AppError::NotConfigured(format!(
                    "the manual path mails each user a Temporary Access Pass: {e}"
                ))
            }),
            // Each user approves in their own Behalf Key; one without a device waits until they
            // pair one (or the request expires).
            JobMode::Local => Ok(()),
        }
    }

    pub(crate) async fn audit_queued(
        &self,
        job: &Job,
        prepared: &Prepared,
    ) -> Result<(), AppError> {
        self.app
            .audit(
                self.actor(),
                behalf_domain::EventAction::JobQueued,
                behalf_domain::Outcome::Success,
                behalf_domain::EventDetail::default()
                    .with("job_id", job.id)
                    .with("kind", &prepared.kind)
                    .with("mode", prepared.mode)
                    .with("users", prepared.users.len())
                    .with("rejected", prepared.rejected.len()),
            )
            .await
    }

    /// Works on `job` in this process until nothing is left to claim or `stop` turns true.
    pub async fn run(
        &self,
        job: JobId,
        progress: &Progress,
        stop: watch::Receiver<bool>,
    ) -> Result<RunSummary, AppError> {
        Ok(self.app.engine()?.run(job, progress, stop).await?)
    }

    /// The user by UPN from the store, else from the directory (then remembered in the store).
    async fn find_or_fetch(&self, upn: &Upn) -> Result<Option<UserId>, AppError> {
        let store = self.app.store();
        let workspace = self.app.workspace().id;
        if let Some(user) = store.find_user_by_upn(workspace, upn).await? {
            return Ok(Some(user.id));
        }
        let graph = &self.app.engine()?.rp().client;
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
        store
            .upsert_users(workspace, std::slice::from_ref(&draft))
            .await?;
        Ok(store
            .find_user_by_external_id(workspace, &user.id)
            .await?
            .map(|u| u.id))
    }
}

/// One line of a failures CSV: a user not registered, with why. The CLI writes them to
/// `failures.csv`; the API serves a job's as `failures.csv`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureRow {
    pub line: Option<u64>,
    pub upn: String,
    pub outcome: String,
    pub reason: String,
    pub error_code: Option<String>,
    pub request_id: Option<String>,
}

impl From<Rejected> for FailureRow {
    fn from(r: Rejected) -> Self {
        FailureRow {
            line: r.line,
            upn: r.upn,
            outcome: r.outcome.as_str().to_owned(),
            reason: r.reason,
            error_code: r.error_code,
            request_id: r.request_id,
        }
    }
}

impl FailureRow {
    /// Whether the row counts as a failure (a skipped user is reported but is no failure).
    pub fn is_failure(&self) -> bool {
        self.outcome != ItemState::Skipped.as_str()
    }
}

/// Writes `rows` as the failures CSV (`line,upn,outcome,reason,error_code,request_id`).
pub fn write_failures_csv(writer: impl std::io::Write, rows: &[FailureRow]) -> csv::Result<()> {
    let mut writer = csv::Writer::from_writer(writer);
    writer.write_record([
        "line",
        "upn",
        "outcome",
        "reason",
        "error_code",
        "request_id",
    ])?;
    for f in rows {
        writer.write_record([
            f.line.map(|l| l.to_string()).unwrap_or_default(),
            f.upn.clone(),
            f.outcome.clone(),
            f.reason.clone(),
            f.error_code.clone().unwrap_or_default(),
            f.request_id.clone().unwrap_or_default(),
        ])?;
    }
    writer.flush()?;
    Ok(())
}
