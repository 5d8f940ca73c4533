//! Client-side pacing, shared by every clone of a [`crate::GraphClient`] (one per app + tenant).
//!
//! Graph's identity throttling is a token bucket per app + tenant: resource units per 10 s and a
//! write budget (3,000 writes per 2.5 minutes per app + tenant) — see
//! <https://learn.microsoft.com/graph/throttling-limits#identity-and-access-service-limits>. Above
//! 80 % of a budget answers carry `x-ms-throttle-limit-percentage` (0.8–1.8; 1.0 = "you start to
//! see throttling"); past it, 429 with `Retry-After`. Bouncing off 429s wastes the budget and
//! lengthens the penalty, so the pacer spaces requests instead.
//!
//! **All requests** (the resource-unit budget) follow AIMD on the answers to reads: no pressure
//! header → additive increase; header above `hold_above` → hold; above `decrease_above` → cut (at
//! most once per `decrease_interval`); a 429 → cut by `throttled_factor` and pause every request
//! until `Retry-After` has passed.
//!
//! **Writes** (the binding limit for provisioning) have their own controller, which treats the
//! write bucket as a buffer and keeps its level at the `write_target` mark (0.95: 5 % of the
//! budget left in the bucket):
//! - The header says on which side of the mark the bucket is. Below it (no header, or a value under
//!   the mark) writes go faster than the refill rate, above it slower: `estimate × (1 ± dither)`.
//!   The bucket then hovers at the mark and the average write rate is the refill rate — the whole
//!   budget is used — while 5 % of it stays as a cushion against 429s. Until the mark is first
//!   reached (the initial burst), writes go at `estimate × write_burst_factor`, and from the
//!   first header on at `estimate × write_approach_factor`.
//! - The refill rate is *measured*: whenever the header crosses the mark the bucket holds the same
//!   number of tokens as at the previous crossing, so the refill rate over that span is exactly the
//!   number of our writes admitted in between divided by the time between the crossings. It starts
//!   from `write_budget_per_sec` (Graph's published 20/s) and adapts to another budget or to another
//!   instance sharing the app. Between crossings, staying on the wrong side too long (a probe
//!   interval) moves the estimate by `dither`.
//! - Writes are released one at a time through a FIFO gate, each at the rate of the moment, so a
//!   change of rate applies to the very next write and the overshoot after a crossing is only the
//!   writes in flight.
//! - A 429 whose `x-ms-throttle-scope` / `x-ms-throttle-information` names the write limit pauses
//!   writes only, until `Retry-After`: reads go on (the write budget does not limit them). Any
//!   other 429 pauses every request (Graph counts requests before `Retry-After` as early retries).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

mod settings;
mod writes;

pub use settings::PacingSettings;
use writes::{Writes, Zone};

/// Counters for benchmarks and reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct PacingStats {
    /// Requests sent (each attempt counts).
    pub requests: u64,
    /// Attempts that were retries of an earlier attempt.
    pub retries: u64,
    /// Answers with status 429.
    pub throttled: u64,
    /// Of those, 429s of the write budget (they pause writes only).
    pub write_throttled: u64,
    /// Answers with status 503 / 504 (and other retried 5xx).
    pub unavailable: u64,
    /// Attempts that got no answer (reset, timeout).
    pub transport_errors: u64,
    /// Times the request rate was cut because of `x-ms-throttle-limit-percentage` on reads.
    pub slowdowns: u64,
    /// Time spent paused by `Retry-After`, all tasks together counted once per pause.
    pub paused_ms: u64,
    /// The allowed request rate now (requests/s).
    pub rate: f64,
    /// The allowed write rate now (writes/s).
    pub write_rate: f64,
    /// The write budget's refill rate as measured (writes/s).
    pub write_estimate: f64,
    /// Times the header crossed the write target (each one a measurement point).
    pub write_crossings: u64,
    /// The last `x-ms-throttle-limit-percentage` seen (0 when the last answer had none).
    pub last_limit_percentage: f64,
}

/// Which requests a 429 or a pause applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Every request (resource units, or a limit we cannot tell).
    All,
    /// Writes only (the write budget).
    Writes,
}

/// What an answer told the pacer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Feedback {
    /// A normal answer (or a refusal that was not throttling), with
    /// `x-ms-throttle-limit-percentage` when present.
    Ok { limit_percentage: Option<f64> },
    /// 429: slow down and pause for at least `retry_after`.
    Throttled {
        retry_after: Option<Duration>,
        scope: Scope,
    },
    /// 503/504 (or another transient 5xx): pause for `retry_after` if given.
    Unavailable { retry_after: Option<Duration> },
    /// No answer at all.
    Transport,
}

#[derive(Debug)]
struct State {
    settings: PacingSettings,
    /// Where release quanta are counted from.
    started: Instant,
    rate: f64,
    next_any: Instant,
    paused_until: Option<Instant>,
    last_cut: Option<Instant>,
    writes: Writes,
    stats: PacingStats,
}

/// A shared pacer. Cloning shares the state.
#[derive(Debug, Clone)]
pub struct Pacer {
    state: Arc<Mutex<State>>,
    /// Writes wait for their turn one at a time, in order, so that each is released at the rate
    /// of the moment it goes (not of the moment it started waiting).
    write_gate: Arc<tokio::sync::Mutex<()>>,
}

impl Pacer {
    pub fn new(settings: PacingSettings) -> Pacer {
        Pacer {
            state: Arc::new(Mutex::new(State::new(settings, Instant::now()))),
            write_gate: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the counters and the current rates.
    pub fn stats(&self) -> PacingStats {
        self.lock().stats()
    }

    /// Changes the write ceiling while running (e.g. the operator caps the tool's share).
    pub fn set_write_ceiling(&self, per_sec: Option<f64>) {
        let mut s = self.lock();
        s.settings.write_ceiling_per_sec = per_sec;
    }

    /// Waits for this request's turn: its slot at the allowed rates, and any Retry-After pause.
    pub(crate) async fn acquire(&self, write: bool, retry: bool) {
        {
            let mut s = self.lock();
            s.stats.requests += 1;
            if retry {
                s.stats.retries += 1;
            }
        }
        if write {
            let _turn = self.write_gate.lock().await;
            loop {
                // Recomputed after every wait: the rate or a pause may have changed meanwhile.
                let wait = {
                    let mut s = self.lock();
                    let now = Instant::now();
                    let quantum = s.write_quantum();
                    s.write_slot(now).map(|t| s.released_at(t, now, quantum))
                };
                match wait {
                    Some(until) => tokio::time::sleep_until(until).await,
                    None => break,
                }
            }
        }
        let slot = {
            let mut s = self.lock();
            let now = Instant::now();
            let slot = s.any_slot(now);
            s.released_at(slot, now, s.settings.release_quantum)
        };
        tokio::time::sleep_until(slot).await;
        // A pause may have started while this task waited for its slot: honour it too.
        loop {
            let until = self.lock().paused_until;
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t).await,
                _ => break,
            }
        }
    }

    /// Adapts the rates to an answer.
    pub(crate) fn feedback(&self, write: bool, feedback: Feedback) {
        self.lock().feedback(Instant::now(), write, feedback);
    }

    /// Pauses the requests of `scope` for `d` (the caller's Retry-After wait, jitter included,
    /// before it retries).
    pub(crate) fn pause_for(&self, d: Duration, scope: Scope) {
        let mut s = self.lock();
        let now = Instant::now();
        s.pause(now, Some(d), scope);
    }
}

impl State {
    fn new(settings: PacingSettings, now: Instant) -> State {
        let estimate = settings
            .write_budget_per_sec
            .clamp(settings.min_rate, settings.max_rate);
        State {
            rate: settings
                .initial_rate
                .clamp(settings.min_rate, settings.max_rate),
            settings,
            started: now,
            next_any: now,
            paused_until: None,
            last_cut: None,
            writes: Writes {
                estimate,
                zone: Zone::Unknown,
                anchored: false,
                admitted: 0,
                crossings: VecDeque::new(),
                probe_from: (now, 0),
                fresh_since: None,
                last_slot: None,
                paused_until: None,
            },
            stats: PacingStats::default(),
        }
    }

    fn stats(&self) -> PacingStats {
        PacingStats {
            rate: self.rate,
            write_rate: self.write_rate(),
            write_estimate: self.writes.estimate,
            ..self.stats
        }
    }

    /// When a request whose turn comes at `slot` is released: at once if its turn has come
    /// (an idle client does not wait), else at the end of the `quantum` `slot` falls in.
    fn released_at(&self, slot: Instant, now: Instant, quantum: Duration) -> Instant {
        if slot <= now {
            return slot;
        }
        let quantum = quantum.as_nanos();
        let since = slot.saturating_duration_since(self.started).as_nanos();
        if quantum == 0 || since.is_multiple_of(quantum) {
            return slot;
        }
        let end = (since / quantum + 1) * quantum;
        self.started + Duration::from_nanos(u64::try_from(end).unwrap_or(u64::MAX))
    }

    /// Reserves the next slot at the request rate and returns it.
    fn any_slot(&mut self, now: Instant) -> Instant {
        let gap = Duration::from_secs_f64(1.0 / self.rate);
        let allowance = gap.saturating_mul(self.settings.burst);
        let slot = self.next_any.max(now.checked_sub(allowance).unwrap_or(now));
        self.next_any = slot + gap;
        slot
    }

    fn feedback(&mut self, now: Instant, write: bool, feedback: Feedback) {
        match feedback {
            Feedback::Ok { limit_percentage } => {
                self.stats.last_limit_percentage = limit_percentage.unwrap_or(0.0);
                if write {
                    self.write_answered(now, limit_percentage);
                }
                // On a write the header may be the write budget's: it says nothing about
                // resource units, so only reads (and header-less writes) steer the request rate.
                if !write || limit_percentage.is_none() {
                    self.aimd(now, limit_percentage.unwrap_or(0.0));
                }
            }
            Feedback::Throttled { retry_after, scope } => {
                self.stats.throttled += 1;
                if write && scope == Scope::Writes {
                    self.stats.write_throttled += 1;
                    self.write_throttled(now);
                    self.pause(now, retry_after, Scope::Writes);
                } else {
                    self.last_cut = Some(now);
                    let f = self.settings.throttled_factor;
                    self.rate = (self.rate * f).max(self.settings.min_rate);
                    self.pause(now, retry_after, Scope::All);
                }
            }
            Feedback::Unavailable { retry_after } => {
                self.stats.unavailable += 1;
                self.pause(now, retry_after, Scope::All);
            }
            Feedback::Transport => self.stats.transport_errors += 1,
        }
    }

    /// AIMD of the request rate from one answer's `x-ms-throttle-limit-percentage` (0 = none).
    fn aimd(&mut self, now: Instant, p: f64) {
        let s = self.settings;
        if p >= s.decrease_above {
            let may_cut = self
                .last_cut
                .is_none_or(|t| now.duration_since(t) >= s.decrease_interval);
            if may_cut {
                self.last_cut = Some(now);
                self.stats.slowdowns += 1;
                self.rate = (self.rate * s.decrease_factor).max(s.min_rate);
            }
        } else if p < s.hold_above {
            // Per answer, +increase/rate: at `rate` answers a second that is +increase/s.
            self.rate = (self.rate + s.increase_per_sec / self.rate).min(s.max_rate);
        }
    }

    fn pause(&mut self, now: Instant, d: Option<Duration>, scope: Scope) {
        let Some(d) = d else { return };
        let until = now + d;
        let current = match scope {
            Scope::All => self.paused_until,
            Scope::Writes => self.writes.paused_until,
        };
        if current.is_none_or(|t| t < until) {
            let from = current.filter(|t| *t > now).unwrap_or(now);
            self.stats.paused_ms += until.duration_since(from).as_millis() as u64;
            match scope {
                Scope::All => self.paused_until = Some(until),
                Scope::Writes => self.writes.paused_until = Some(until),
            }
        }
    }
}

#[cfg(test)]
mod simulator;
#[cfg(test)]
mod tests;
