//! Sending queued writes to Entra ID: claim (leased), one Graph call each, record the outcome.
//!
//! Idempotency: a create is preceded by a lookup (a user by UPN, a group by mailNickname). Found
//! while the write is `sending` (it may have reached Graph before a crash or a lost answer), the
//! object is taken as ours; found while `pending` (never sent), it is somebody else's and the
//! write fails as a conflict. `sending` is committed before the POST, so a create is never sent
//! twice. A 429 or 503 with `Retry-After` is kept with the write (`next_attempt_at`), so no run
//! sends it early; other transient failures back off exponentially, and after
//! [`MAX_ATTEMPTS`] the write fails and waits for an admin.

use std::collections::HashMap;
use std::time::Duration;

use behalf_domain::{
    ConnectionId, EventAction, EventDetail, NewEvent, Outcome, Secret, WriteKind, WriteState,
    now_millis,
};
use behalf_graph::{GraphClient, GraphError, NewGroup, NewUser, Refusal};
use behalf_store::{DirectoryWrite, WriteFailure, WriteResult};
use futures::{FutureExt as _, StreamExt as _};
use rand::RngExt as _;
use tokio::sync::watch;

use crate::{AppError, Operator};

/// Attempts (claims that reached Graph or failed to) before a write waits for an admin.
pub const MAX_ATTEMPTS: i64 = 10;
/// How long a claim holds a write. A write is one Graph call (with the client's own retries
/// of reads), far shorter; a holder that dies is found by its pid on this host at once.
const LEASE: Duration = Duration::from_secs(300);
/// Writes claimed at a time, and sent at once.
const BATCH: i64 = 32;
const CONCURRENCY: usize = 8;

/// What one run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RunSummary {
    pub done: u64,
    pub failed: u64,
    /// Tried again later: backoff after a transient failure, or Graph's Retry-After.
    pub retried: u64,
}

/// A random initial password Entra's default policy accepts (16 characters, upper, lower,
/// digit, symbol), in a [`Secret`]. It is sent once in the create and kept nowhere.
pub fn password_for_new_user() -> Secret {
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
    const DIGIT: &[u8] = b"23456789";
    const SYMBOL: &[u8] = b"!#%+-=?@";
    let mut rng = rand::rng();
    let mut pick = |set: &[u8]| set[rng.random_range(0..set.len())] as char;
    let mut chars: Vec<char> = vec![pick(UPPER), pick(LOWER), pick(DIGIT), pick(SYMBOL)];
    let all: Vec<u8> = [UPPER, LOWER, DIGIT, SYMBOL].concat();
    while chars.len() < 16 {
        chars.push(pick(&all));
    }
    // Shuffle so the classes are not always in the first four places.
    for i in (1..chars.len()).rev() {
        let j = rng.random_range(0..=i);
        chars.swap(i, j);
    }
    Secret::new(chars.into_iter().collect::<String>())
}

/// The event detail naming a write.
pub(crate) fn write_detail(w: &DirectoryWrite) -> EventDetail {
    let mut d = EventDetail::default()
        .with("write", w.id.to_string())
        .with("kind", w.kind.as_str())
        .with("subject", &w.subject)
        .with("state", w.state.as_str())
        .with("attempts", w.attempts);
    if let Some(g) = &w.graph_id {
        d = d.with("graph_id", g);
    }
    if let Some(e) = &w.error {
        d = d.with("error", e);
    }
    if let Some(r) = &w.request_id {
        d = d.with("request_id", r);
    }
    d
}

/// The backoff before attempt `attempts + 1`: full jitter under min(5 min, 1 s · 2^(n-1)).
fn backoff(attempts: i64) -> i64 {
    let n = attempts.clamp(1, 20) as u32;
    let ceiling = 1_000i64.saturating_mul(1 << (n - 1).min(18)).min(300_000);
    rand::rng().random_range(ceiling / 2..=ceiling)
}

fn failure(e: &GraphError) -> WriteFailure {
    WriteFailure {
        message: e.in_words(),
        code: e.code().map(str::to_owned),
        request_id: e.request_id().map(str::to_owned),
    }
}

fn said(message: impl Into<String>) -> WriteFailure {
    WriteFailure {
        message: message.into(),
        ..WriteFailure::default()
    }
}

/// What to record for a Graph error at attempt `attempts` of a write; `sent`: the request may
/// have reached Graph (no answer).
fn on_error(e: &GraphError, attempts: i64, sent: bool) -> WriteResult {
    let now = now_millis();
    if let Some(wait) = e.retry_after()
        && matches!(e.status(), Some(429 | 503))
    {
        // Graph: wait the Retry-After before sending again, or be throttled longer.
        return WriteResult::Deferred {
            at: now + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2),
        };
    }
    if e.refusal() == Refusal::Transient && attempts < MAX_ATTEMPTS {
        return WriteResult::Retry {
            at: now + backoff(attempts),
            failure: failure(e),
            sent: sent && e.status().is_none(),
        };
    }
    WriteResult::Failed {
        failure: failure(e),
    }
}

/// How long the writes of a worker that died wait before they are claimed again: the engine's
/// rule for its items ([`behalf_provision::DEAD_HOLDER_HOLD`]), as the same can happen (a 429's
/// Retry-After read, the process dead before recording it).
fn dead_holder_hold_ms() -> i64 {
    i64::try_from(behalf_provision::DEAD_HOLDER_HOLD.as_millis()).unwrap_or(i64::MAX)
}

impl Operator<'_> {
    /// Sends every due write until none is claimable (or `stop` turns true). Writes waiting on
    /// time (a Retry-After, a backoff) are left for a later run.
    pub async fn run_writes(&self, stop: &watch::Receiver<bool>) -> Result<RunSummary, AppError> {
        let store = self.app.store();
        let workspace = self.app.workspace().id;
        let worker = behalf_provision::local_worker_id();
        for holder in store.write_lease_holders(workspace).await? {
            if behalf_provision::is_dead_local_worker(&holder) {
                let n = store
                    .release_write_leases_of(workspace, &holder, dead_holder_hold_ms())
                    .await?;
                tracing::info!(worker = %holder, released = n, "took back the writes of a worker that died");
            }
        }
        let mut clients: HashMap<ConnectionId, GraphClient> = HashMap::new();
        let mut summary = RunSummary::default();
        loop {
            if *stop.borrow() {
                break;
            }
            let lease_ms = i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
            let claimed = store
                .claim_writes(workspace, &worker, BATCH, lease_ms)
                .await?;
            if claimed.is_empty() {
                break;
            }
            for w in &claimed {
                if let std::collections::hash_map::Entry::Vacant(slot) =
                    clients.entry(w.connection_id)
                {
                    let name = store.get_connection(w.connection_id).await?.name;
                    let (graph, _) = self.graph_for(&name).await?;
                    slot.insert(graph.client.deferring());
                }
            }
            // Boxed, each owning its write and client: a stream of futures borrowing from
            // the loop trips the compiler's `Send` check of the workers' task.
            let sends: Vec<_> = claimed
                .iter()
                .map(|w| {
                    let (graph, w) = (clients[&w.connection_id].clone(), w.clone());
                    let worker = worker.clone();
                    async move {
                        self.send_one(&graph, &w, &worker, password_for_new_user())
                            .await
                    }
                    .boxed()
                })
                .collect();
            let results: Vec<Result<WriteResult, AppError>> = futures::stream::iter(sends)
                .buffered(CONCURRENCY)
                .collect()
                .await;
            for (w, result) in claimed.iter().zip(results) {
                match result {
                    Ok(WriteResult::Done { .. }) => summary.done += 1,
                    Ok(WriteResult::Failed { .. }) => summary.failed += 1,
                    Ok(_) => summary.retried += 1,
                    Err(e) => {
                        tracing::warn!(write = %w.id, error = %e.log_text(), "an outbound write could not be recorded; its lease runs out and it is tried again");
                    }
                }
            }
        }
        Ok(summary)
    }

    /// Sends a new user's create now, in the caller's request, and hands back the initial
    /// password it was created with, to be shown once (it is kept nowhere). `None` when the
    /// create could not go now (a worker took it first, Graph asked to wait, it failed): the
    /// write then goes on as any other, with a password nobody sees.
    pub(crate) async fn send_new_user_now(
        &self,
        write: &DirectoryWrite,
    ) -> Result<Option<Secret>, AppError> {
        let store = self.app.store();
        let worker = behalf_provision::local_worker_id();
        let lease_ms = i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
        let Some(w) = store
            .claim_write(write.workspace_id, write.id, &worker, lease_ms)
            .await?
        else {
            return Ok(None);
        };
        let name = store.get_connection(w.connection_id).await?.name;
        let (graph, _) = self.graph_for(&name).await?;
        let password = password_for_new_user();
        let result = self
            .send_one(&graph.client.deferring(), &w, &worker, password.clone())
            .await?;
        Ok(matches!(result, WriteResult::Done { .. }).then_some(password))
    }

    /// One write: its Graph call, then its outcome recorded (with the event when it ended).
    /// `password`: a new user's initial password, if the write creates one.
    async fn send_one(
        &self,
        graph: &GraphClient,
        w: &DirectoryWrite,
        worker: &str,
        password: Secret,
    ) -> Result<WriteResult, AppError> {
        let result = self.attempt(graph, w, worker, password).await?;
        let store = self.app.store();
        store.finish_write(w, worker, &result).await?;
        let (action, outcome) = match &result {
            WriteResult::Done { .. } => (EventAction::OutboundWritten, Outcome::Success),
            WriteResult::Failed { .. } => (EventAction::OutboundFailed, Outcome::Failure),
            _ => return Ok(result),
        };
        let after = store.get_write(w.workspace_id, w.id).await?;
        let mut event = NewEvent::new(w.created_by.clone(), action, outcome)
            .detail(write_detail(&after).with("sent_by", self.actor()));
        if let Some(u) = w.user_id {
            event = event.user(u);
        }
        store.append_event(w.workspace_id, event).await?;
        Ok(result)
    }

    /// The Graph side of one write.
    async fn attempt(
        &self,
        graph: &GraphClient,
        w: &DirectoryWrite,
        worker: &str,
        password: Secret,
    ) -> Result<WriteResult, AppError> {
        let store = self.app.store();
        let done = |id: Option<String>| Ok(WriteResult::Done { graph_id: id });
        let text = |k: &str| w.payload.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        // The Entra ids of the write's user and group, as Behalf knows them now.
        let user = match w.user_id {
            Some(id) => match store.get_user(id).await {
                Ok(u) => Some(u),
                Err(behalf_store::StoreError::NotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        let group = match w.group_id {
            Some(id) => match store.get_group(id).await {
                Ok(g) => Some(g),
                Err(behalf_store::StoreError::NotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        let user_graph_id = user.as_ref().and_then(|u| u.external_id.clone());
        let group_graph_id = group.as_ref().and_then(|g| g.external_id.clone());
        let not_in_entra = |what: &str| {
            Ok(WriteResult::Failed {
                failure: said(format!(
                    "{what} is not in Entra ID (its creation failed or was discarded): retry or discard that first"
                )),
            })
        };
        match w.kind {
            WriteKind::CreateUser => {
                if user_graph_id.is_some() {
                    return done(user_graph_id);
                }
                let Some(upn) = text("userPrincipalName") else {
                    return Ok(WriteResult::Failed {
                        failure: said("the write has no userPrincipalName"),
                    });
                };
                match graph.find_user(&upn).await {
                    Ok(Some(found)) if w.state == WriteState::Sending => {
                        return done(Some(found.id));
                    }
                    Ok(Some(found)) => {
                        return Ok(WriteResult::Failed {
                            failure: said(format!(
                                "conflict: {upn} exists already in Entra ID (object {}), and Behalf did not create it: delete one of them, or import the connection to take it",
                                found.id
                            )),
                        });
                    }
                    Ok(None) => {}
                    Err(e) => return Ok(on_error(&e, w.attempts, false)),
                }
                store.mark_write_sending(w.id, worker).await?;
                let new = NewUser {
                    user_principal_name: upn,
                    display_name: text("displayName").unwrap_or_default(),
                    mail_nickname: text("mailNickname").unwrap_or_default(),
                    account_enabled: w
                        .payload
                        .get("accountEnabled")
                        .and_then(|v| v.as_bool())
                        .unwrap_or(true),
                    department: text("department"),
                    // Shown once to the admin when the create was sent while they asked
                    // (`send_new_user_now`), else seen by nobody: the user signs in with a
                    // Temporary Access Pass or a reset link. Entra makes them change it.
                    password,
                    force_change_password: true,
                };
                match graph.create_user(&new).await {
                    Ok(created) => done(Some(created.id)),
                    Err(e) => Ok(on_error(&e, w.attempts, true)),
                }
            }
            WriteKind::UpdateUser => {
                let Some(id) = user_graph_id else {
                    return not_in_entra(&w.subject);
                };
                match graph.update_user(&id, &w.payload).await {
                    Ok(()) => done(Some(id)),
                    Err(e) => Ok(on_error(&e, w.attempts, false)),
                }
            }
            WriteKind::DeleteUser => {
                // Never created in Entra ID (discarded): nothing there to delete.
                let Some(id) = user_graph_id else {
                    return done(None);
                };
                match graph.delete_user(&id).await {
                    Ok(_) => done(Some(id)),
                    Err(e) => Ok(on_error(&e, w.attempts, false)),
                }
            }
            WriteKind::CreateGroup => {
                if group_graph_id.is_some() {
                    return done(group_graph_id);
                }
                let (Some(display_name), Some(nickname)) =
                    (text("displayName"), text("mailNickname"))
                else {
                    return Ok(WriteResult::Failed {
                        failure: said("the write has no displayName or mailNickname"),
                    });
                };
                match graph.find_group_by_mail_nickname(&nickname).await {
                    Ok(Some(found)) if w.state == WriteState::Sending => {
                        return done(Some(found.id));
                    }
                    Ok(Some(found)) => {
                        return Ok(WriteResult::Failed {
                            failure: said(format!(
                                "conflict: a group with the mailNickname {nickname} exists already in Entra ID (object {}), and Behalf did not create it",
                                found.id
                            )),
                        });
                    }
                    Ok(None) => {}
                    Err(e) => return Ok(on_error(&e, w.attempts, false)),
                }
                store.mark_write_sending(w.id, worker).await?;
                let new = NewGroup {
                    display_name,
                    mail_nickname: nickname,
                    description: text("description"),
                };
                match graph.create_group(&new).await {
                    Ok(created) => done(Some(created.id)),
                    Err(e) => Ok(on_error(&e, w.attempts, true)),
                }
            }
            WriteKind::DeleteGroup => {
                let Some(id) = group_graph_id else {
                    return done(None);
                };
                match graph.delete_group(&id).await {
                    Ok(_) => done(Some(id)),
                    Err(e) => Ok(on_error(&e, w.attempts, false)),
                }
            }
            WriteKind::AddMember | WriteKind::RemoveMember => {
                let added = w.kind == WriteKind::AddMember;
                let (Some(g), Some(u)) = (group_graph_id, user_graph_id) else {
                    if !added {
                        // One of them never reached Entra ID: it has no such membership.
                        return done(None);
                    }
                    return not_in_entra(&w.subject);
                };
                let sent = if added {
                    graph.add_group_member(&g, &u).await
                } else {
                    graph.remove_group_member(&g, &u).await
                };
                match sent {
                    Ok(_) => done(None),
                    Err(e) => Ok(on_error(&e, w.attempts, false)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_passwords_have_every_class_and_differ() {
        let a = password_for_new_user();
        let b = password_for_new_user();
        assert_ne!(a.expose(), b.expose());
        let p = a.expose();
        assert_eq!(p.chars().count(), 16);
        assert!(p.chars().any(|c| c.is_ascii_uppercase()));
        assert!(p.chars().any(|c| c.is_ascii_lowercase()));
        assert!(p.chars().any(|c| c.is_ascii_digit()));
        assert!(p.chars().any(|c| !c.is_ascii_alphanumeric()));
        assert_eq!(format!("{a:?}"), "<hidden>");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for n in 1..30 {
            let d = backoff(n);
            let ceiling = (1_000i64 << (n as u32 - 1).min(18)).min(300_000);
            assert!(d >= ceiling / 2 && d <= ceiling, "{n}: {d}");
        }
    }
}
