//! Client-side pacing, shared by every clone of a [`crate::GraphClient`] (one per app + tenant).
//!
//! Graph's identity throttling is a token bucket per app + tenant for each of two budgets:
//! resource units (3,500 / 5,000 / 8,000 per 10 s by tenant size; most calls cost 1, listing
//! users 2, as `x-ms-resource-unit` says) and writes (3,000 per 150 s per app + tenant, 18,000 per
//! 300 s per tenant) — see
//! <https://learn.microsoft.com/graph/throttling-limits#identity-and-access-service-limits>. Above
//! 80 % of a budget answers carry `x-ms-throttle-limit-percentage` (0.8–1.8: the level of the
//! bucket the call drew on); past it, 429 with `Retry-After`, and `x-ms-throttle-scope`
//! (`<Scope>/<Limit>/<app>/<tenant>`, Limit `Read`, `Write` or `ReadWrite`) and
//! `x-ms-throttle-information` name the limit. Bouncing off 429s wastes the budget and
//! lengthens the penalty, so the pacer spaces requests instead.
//!
//! **Each budget has a controller** (`control.rs`) that treats its bucket as a buffer and keeps its
//! level at the `target` mark (0.95: 5 % of the budget left in the bucket). Every request draws
//! on the resource units (its learnt cost); the calls of the kinds that draw on the write budget
//! (`kinds.rs`: the methods that change state, and the GETs whose answers show they do) also go
//! through the write controller, one at a time through a FIFO gate, each at the rate of the
//! moment, so a change of rate applies to the very next write and the overshoot after a crossing
//! is only the writes in flight.
//! - The header says on which side of the mark the bucket is. Below it (no header, or a value under
//!   the mark) the budget is drawn on faster than its refill rate, above it slower:
//!   `estimate × (1 ± dither)`. The bucket then hovers at the mark and the average rate is the
//!   refill rate — the whole budget is used — while 5 % of it stays as a cushion against 429s.
//! - While no header comes back the rate starts at `estimate × burst_factor` and grows (slow
//!   start: it doubles with each `fresh_doubling` of answers), so nothing but the latency and the
//!   caller's concurrency holds back a client nothing pushes back on; from the first header (80 %)
//!   to the mark it goes at `estimate × approach_factor`.
//! - The refill rate is *measured*: whenever the header crosses the mark the bucket holds the same
//!   number of tokens as at the previous crossing, so the refill rate over that span is exactly
//!   what we drew in between divided by the time between the crossings. It starts from Graph's
//!   published figures and adapts to any size and window, and to another client sharing the
//!   budget (what it takes is simply not there for us). Between crossings, staying on the wrong
//!   side too long (a probe interval) moves the estimate by `dither`.
//! - The bucket's *size* is read off the headers too (`capacity.rs`: two answers close together
//!   differ by what was drawn over the size), where a header precise enough shows it. It says
//!   what a fraction cannot: how many writes may go together (a clump spends at most a third of
//!   the cushion, so a bucket of 100 is drawn on one write at a time, Graph's 3,000 in clumps of
//!   8), and, below the target, how much the write bucket holds beyond the cushion, which is
//!   spent over a probe interval on top of the estimate (the part of another client that
//!   stopped is taken up at once, not after several raises). With no size measured, neither
//!   applies.
//!
//! **What a 429 or a 503 says** (Microsoft: "wait the number of seconds specified in the
//! Retry-After header"; <https://learn.microsoft.com/graph/throttling>):
//! - A 429 that names a budget (scope / information headers), or that follows answers saying the
//!   bucket the call draws on is at the mark, means that budget is spent: its controller backs
//!   off (`throttled_factor`) and every call drawing on it waits until `Retry-After` — for the
//!   write budget the writes only; reads go on.
//! - A bare 429 with no pressure before it, or a 503, says nothing about a budget: only the
//!   request it answers waits (the client sleeps its `Retry-After`, or an exponential backoff
//!   with jitter, before retrying it), and the rate of the bucket it drew on is lowered gently
//!   (`decrease_factor`, once a second at most).

mod capacity;
mod control;
mod kinds;
mod settings;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use control::Control;
pub(crate) use kinds::CallKind;
use kinds::Kinds;
pub use settings::PacingSettings;

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
    /// Of those, 429s of the resource-unit budget (they pause every request).
    pub units_throttled: u64,
    /// Of those, sporadic 429s: no budget named, no pressure before (only the request waits).
    pub sporadic_throttled: u64,
    /// Answers with status 503 / 504 (and other retried 5xx).
    pub unavailable: u64,
    /// Attempts that got no answer (reset, timeout).
    pub transport_errors: u64,
    /// Gentle cuts of a rate after a sporadic 429 or a 503.
    pub slowdowns: u64,
    /// Time budgets were paused by `Retry-After`, all tasks together counted once per pause.
    pub paused_ms: u64,
    /// The allowed resource-unit rate now (units/s).
    pub rate: f64,
    /// The resource-unit budget's refill rate as measured (units/s).
    pub units_estimate: f64,
    /// The allowed write rate now (writes/s).
    pub write_rate: f64,
    /// The write budget's refill rate as measured (writes/s).
    pub write_estimate: f64,
    /// Times the header crossed the write target (each one a measurement point).
    pub write_crossings: u64,
    /// Kinds of calls believed to draw on the write budget.
    pub kinds_on_write_budget: u64,
    /// The last `x-ms-throttle-limit-percentage` seen (0 when the last answer had none).
    pub last_limit_percentage: f64,
}

/// The budget a 429 names (`x-ms-throttle-scope` / `x-ms-throttle-information`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Budget {
    /// Resource units (`Read` / `ReadWrite`, `ResourceUnitLimitExceeded`): every request.
    Units,
    /// The write budget (`Write`, `WriteLimitExceeded`).
    Writes,
}

/// What an answer told the pacer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Feedback {
    /// A normal answer (or a refusal that was not throttling), with
    /// `x-ms-throttle-limit-percentage` and `x-ms-resource-unit` when present.
    Ok {
        limit_percentage: Option<f64>,
        resource_units: Option<f64>,
    },
    /// 429, with the budget its headers name, if any.
    Throttled {
        retry_after: Option<Duration>,
        budget: Option<Budget>,
    },
    /// 503/504 (or another transient 5xx).
    Unavailable,
    /// No answer at all.
    Transport,
}

#[derive(Debug)]
struct State {
    settings: PacingSettings,
    /// Where release quanta are counted from.
    started: Instant,
    units: Control,
    writes: Control,
    kinds: Kinds,
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
        s.writes.ceiling = per_sec;
    }

    /// Waits for this request's turn: its slot at the allowed rates, and any Retry-After pause
    /// of a budget it draws on.
    pub(crate) async fn acquire(&self, kind: &CallKind, retry: bool) {
        let (writes, cost) = {
            let mut s = self.lock();
            s.stats.requests += 1;
            if retry {
                s.stats.retries += 1;
            }
            let k = s.kinds.get(kind);
            (k.writes, k.units)
        };
        if writes {
            let _turn = self.write_gate.lock().await;
            // Recomputed after every wait: the rate or a pause may have changed meanwhile.
            loop {
                let turn = self.lock().write_turn(Instant::now());
                match turn {
                    Some(until) => tokio::time::sleep_until(until).await,
                    None => break,
                }
            }
        }
        let slot = self.lock().units_turn(Instant::now(), cost);
        tokio::time::sleep_until(slot).await;
        // A pause may have started while this task waited for its slot: honour it too.
        loop {
            let until = {
                let s = self.lock();
                let writes_pause = if writes { s.writes.paused_until } else { None };
                s.units.paused_until.max(writes_pause)
            };
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t).await,
                _ => break,
            }
        }
    }

    /// Adapts the rates to an answer to a call of `kind`.
    pub(crate) fn feedback(&self, kind: &CallKind, feedback: Feedback) {
        self.lock().feedback(Instant::now(), kind, feedback);
    }
}

impl State {
    fn new(settings: PacingSettings, now: Instant) -> State {
        let mut writes = Control::new(settings.write_budget_per_sec, &settings, now);
        writes.ceiling = settings.write_ceiling_per_sec;
        writes.spends_spare = true;
        State {
            units: Control::new(settings.units_per_sec, &settings, now),
            writes,
            settings,
            started: now,
            kinds: Kinds::default(),
            stats: PacingStats::default(),
        }
    }

    fn stats(&self) -> PacingStats {
        PacingStats {
            rate: self.units.rate(&self.settings),
            units_estimate: self.units.estimate,
            write_rate: self.write_rate(),
            write_estimate: self.writes.estimate,
            write_crossings: self.writes.crossings_seen,
            kinds_on_write_budget: self.kinds.on_writes(),
            ..self.stats
        }
    }

    fn write_rate(&self) -> f64 {
        self.writes.rate(&self.settings)
    }

    /// When a write may go: `None` now, else ask again at the instant returned (a pause of
    /// either budget, or the end of the quantum the write's slot falls in).
    fn write_turn(&mut self, now: Instant) -> Option<Instant> {
        if let Some(until) = self.units.paused_until.filter(|t| *t > now) {
            return Some(until);
        }
        let quantum = self.write_quantum();
        let banked = self.writes.clump(
            &self.settings,
            self.settings.burst.max(self.settings.write_release_slots),
        );
        let settings = self.settings;
        self.writes
            .slot(&settings, now, 1.0, banked, quantum)
            .map(|t| self.released_at(t, now, quantum))
    }

    /// Reserves a draw of `cost` resource units and returns when it is released.
    fn units_turn(&mut self, now: Instant, cost: f64) -> Instant {
        let settings = self.settings;
        let slot = self.units.reserve(
            &settings,
            now,
            cost,
            settings.burst,
            settings.release_quantum,
        );
        self.released_at(slot, now, settings.release_quantum)
    }

    /// The quantum writes are released in: `write_release_slots` slots at the write rate of the
    /// moment (fewer in a small bucket: `Control::clump`), at least one `release_quantum`.
    fn write_quantum(&self) -> Duration {
        let slots = self
            .writes
            .clump(&self.settings, self.settings.write_release_slots);
        if slots <= 1 {
            return self.settings.release_quantum;
        }
        let gap = Duration::from_secs_f64(1.0 / self.write_rate());
        gap.saturating_mul(slots).max(self.settings.release_quantum)
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

    fn feedback(&mut self, now: Instant, kind: &CallKind, feedback: Feedback) {
        let s = self.settings;
        let k = self.kinds.get(kind);
        match feedback {
            Feedback::Ok {
                limit_percentage,
                resource_units,
            } => {
                self.stats.last_limit_percentage = limit_percentage.unwrap_or(0.0);
                self.kinds
                    .answered(kind, now, limit_percentage, resource_units);
                let cost = resource_units.unwrap_or(k.units);
                if k.writes {
                    self.writes.answered(&s, now, limit_percentage, 1.0);
                    // Its header may be the write budget's: it says nothing about resource
                    // units, but what it cost them counts.
                    self.units.drawn(cost);
                } else {
                    self.units.answered(&s, now, limit_percentage, cost);
                }
            }
            Feedback::Throttled {
                retry_after,
                budget,
            } => {
                self.stats.throttled += 1;
                // No budget named: the budget the call draws on if its last answers said it was
                // at the mark, else none (a sporadic 429).
                let budget = budget.or(if k.writes && self.writes.pressed() {
                    Some(Budget::Writes)
                } else if self.units.pressed() {
                    Some(Budget::Units)
                } else {
                    None
                });
                let (control, counter) = match budget {
                    Some(Budget::Writes) => {
                        if !k.writes {
                            self.kinds.throttled_by_writes(kind);
                        }
                        (&mut self.writes, &mut self.stats.write_throttled)
                    }
                    Some(Budget::Units) => (&mut self.units, &mut self.stats.units_throttled),
                    None => {
                        self.stats.sporadic_throttled += 1;
                        self.gentle_cut(now, k.writes);
                        return;
                    }
                };
                *counter += 1;
                control.throttled(&s, now);
                if let Some(d) = retry_after {
                    self.stats.paused_ms += control.pause(now, d);
                }
            }
            Feedback::Unavailable => {
                self.stats.unavailable += 1;
                self.gentle_cut(now, k.writes);
            }
            Feedback::Transport => self.stats.transport_errors += 1,
        }
    }

    /// A sporadic 429 or a 503 on a call drawing on the write budget or not.
    fn gentle_cut(&mut self, now: Instant, writes: bool) {
        let s = self.settings;
        let control = if writes {
            &mut self.writes
        } else {
            &mut self.units
        };
        if control.gentle_cut(&s, now) {
            self.stats.slowdowns += 1;
        }
    }
}

#[cfg(test)]
mod simulator;
#[cfg(test)]
mod tests;
