//! Where an item ends: its final state, why, and what is recorded with it.

use super::*;

/// Where one item ended: its final state and why.
pub(super) struct Finish {
    pub(super) state: ItemState,
    pub(super) outcome: ItemOutcome,
    /// The RP has the passkey: recorded with the item's final state, in one commit.
    pub(super) registration: Option<Registration>,
}

/// A passkey the RP accepted, and the key it lives on.
pub(super) struct Registration {
    pub(super) passkey_id: PasskeyId,
    pub(super) method_id: String,
    pub(super) key_id: behalf_domain::SecurityKeyId,
}

impl Finish {
    pub(super) fn skipped(reason: impl Into<String>) -> Self {
        Finish {
            state: ItemState::Skipped,
            outcome: ItemOutcome {
                reason: Some(reason.into()),
                ..Default::default()
            },
            registration: None,
        }
    }

    pub(super) fn failed(reason: impl Into<String>) -> Self {
        Finish {
            state: ItemState::Failed,
            outcome: ItemOutcome {
                reason: Some(reason.into()),
                ..Default::default()
            },
            registration: None,
        }
    }

    pub(super) fn rp_failed(context: &str, error: &RpError) -> Self {
        Finish {
            state: ItemState::Failed,
            outcome: ItemOutcome {
                reason: Some(format!("{context}: {}", error.message)),
                error_code: error.code.clone(),
                request_id: error.request_id.clone(),
                passkey_id: None,
            },
            registration: None,
        }
    }
}

/// Where one pass over an item ended.
pub(super) enum Step {
    Done(Finish, Option<PasskeyId>),
    /// Not finished, nothing lost: give the lease back and try again later.
    Retry(String),
    /// The RP asked not to be called again before `after` (a 429's or 503's `Retry-After`):
    /// give the lease back at once with the next attempt's time kept with the item, so the
    /// worker goes on with other items and no run, this one or the next, comes early.
    Later {
        why: String,
        after: Duration,
    },
    /// The step committed the item's new state itself, with its own events (the manual path);
    /// `Some` when that state is to be counted in the run's progress.
    Settled(Option<(ItemState, ItemOutcome)>),
}

pub(super) fn registered_finish(
    passkey_id: PasskeyId,
    method_id: String,
    key_id: behalf_domain::SecurityKeyId,
) -> Finish {
    Finish {
        state: ItemState::Registered,
        outcome: ItemOutcome::default(),
        registration: Some(Registration {
            passkey_id,
            method_id,
            key_id,
        }),
    }
}

/// Counts an item's committed outcome in the run's progress.
pub(super) fn report(progress: &Progress, user: &User, state: ItemState, outcome: &ItemOutcome) {
    progress.record(ItemReport {
        user_id: user.id,
        upn: user.upn.to_string(),
        state,
        reason: outcome.reason.clone(),
        error_code: outcome.error_code.clone(),
        request_id: outcome.request_id.clone(),
    });
}

/// 1 s after the first failed attempt, doubling, at most 30 s.
pub(super) fn retry_backoff(attempts: i64) -> Duration {
    let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 5)).unwrap_or(5);
    Duration::from_secs(2u64.pow(exponent)).min(Duration::from_secs(30))
}

pub(super) fn rp_refusal(context: &str, error: &RpError) -> Step {
    match error.kind {
        RpErrorKind::Unavailable => Step::unavailable(format!("{context}: {error}"), error),
        RpErrorKind::OwnAccount => Step::Done(
            Finish::skipped(
                "the signed-in admin's own account cannot be provisioned on its behalf",
            ),
            None,
        ),
        RpErrorKind::UnknownUser => Step::Done(
            Finish::rp_failed(&format!("{context}: unknown user"), error),
            None,
        ),
        RpErrorKind::Rejected => Step::Done(Finish::rp_failed(context, error), None),
    }
}

impl Step {
    /// No usable answer: try again later, no earlier than the RP asked.
    pub(super) fn unavailable(why: String, error: &RpError) -> Step {
        match error.retry_after {
            Some(after) => Step::Later { why, after },
            None => Step::Retry(why),
        }
    }

    pub(super) fn with_passkey(self, passkey_id: PasskeyId) -> Step {
        match self {
            Step::Done(finish, _) => Step::Done(finish, Some(passkey_id)),
            retry => retry,
        }
    }
}
