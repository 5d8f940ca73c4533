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

/// Knobs of the pacer. The defaults suit a single app against Graph's published budgets.
#[derive(Debug, Clone, Copy)]
pub struct PacingSettings {
    /// Requests per second at start (all requests, reads and writes).
    pub initial_rate: f64,
    pub min_rate: f64,
    pub max_rate: f64,
    /// Additive increase, in requests/s gained per second of unthrottled traffic.
    pub increase_per_sec: f64,
    /// `x-ms-throttle-limit-percentage` (on reads) at or above which the rate stops growing.
    pub hold_above: f64,
    /// `x-ms-throttle-limit-percentage` (on reads) at or above which the rate is cut.
    pub decrease_above: f64,
    /// Factor applied on a cut (0 < f < 1).
    pub decrease_factor: f64,
    /// Factor applied on a 429: to the request rate, or for the write budget's, to the estimate
    /// of its refill rate (the bucket is empty: back off hard; the next crossing of the target
    /// measures the rate again).
    pub throttled_factor: f64,
    /// Minimum time between two cuts.
    pub decrease_interval: Duration,
    /// How many requests may go back to back after an idle period.
    pub burst: u32,
    /// Requests whose slots fall in one quantum (counted from the pacer's start) are released
    /// together at its end: the same schedule and rate, delivered in clumps of `rate × quantum`.
    /// At the rates Graph allows, waking up (a context switch, then the database's thread woken
    /// for each commit) costs Behalf more CPU than the work per request; requests released
    /// together answer together and commit in one batch. Zero releases each at its own slot.
    pub release_quantum: Duration,
    /// Writes are released in clumps of this many slots of the write rate (never less than one
    /// `release_quantum`); 0 or 1: one quantum. Against a write budget writes go at its refill
    /// rate (Graph's: 20/s, one per 50 ms quantum), so without clumps every write, its answer and
    /// its commit would wake Behalf alone. A clump spends a few writes of the cushion the pacer
    /// keeps in the bucket (5 %: 150 of Graph's 3,000), at the same rate over time.
    pub write_release_slots: u32,
    /// The write budget's refill rate assumed until it is measured (writes/s). Graph publishes
    /// 3,000 writes per 150 s per app + tenant, i.e. 20/s.
    pub write_budget_per_sec: f64,
    /// Hard ceiling on writes per second, whatever the feedback says.
    pub write_ceiling_per_sec: Option<f64>,
    /// The write bucket's level to hover at, as `x-ms-throttle-limit-percentage` (fraction used).
    pub write_target: f64,
    /// Until the target is first reached, writes go this many times faster than the refill rate
    /// (the bucket starts full: spend it, but not so fast that the turn at the target overshoots).
    pub write_burst_factor: f64,
    /// From the first pressure header (80 % used) to the target, writes go this many times
    /// faster than the refill rate: the last stretch at a pace the turn at the target can stop
    /// within the cushion, however small the bucket.
    pub write_approach_factor: f64,
    /// Relative deviation from the refill rate while hovering (0.1: ±10 %), and the step by which
    /// the estimate moves when a probe interval passes on the wrong side of the target.
    pub write_dither: f64,
    /// How long the bucket may stay on one side of the target before the estimate is moved.
    pub write_probe_interval: Duration,
    /// Two crossings of the target less than this apart give no measurement (too noisy).
    pub write_sample_min: Duration,
    /// Crossings older than this are forgotten, so that the measurement follows a changing rate.
    pub write_sample_horizon: Duration,
    /// After this long with no pressure header the bucket may have filled up to its cap (where
    /// refill is lost), so crossings before it no longer measure the refill rate.
    pub write_fresh_reset: Duration,
    /// With no pressure header for this long while writing as fast as allowed, the estimate is
    /// raised by half: a bucket that the burst does not dent refills faster than assumed.
    pub write_fresh_probe: Duration,
}

impl Default for PacingSettings {
    fn default() -> Self {
        PacingSettings {
            initial_rate: 200.0,
            min_rate: 0.5,
            max_rate: 5_000.0,
            increase_per_sec: 2.0,
            hold_above: 0.9,
            decrease_above: 0.97,
            decrease_factor: 0.9,
            throttled_factor: 0.5,
            decrease_interval: Duration::from_secs(1),
            burst: 10,
            // Far below anything Graph measures (its budgets span 10 s and 150 s): at 200
            // requests/s, ten go together. The provisioning benchmark's CPU per user falls by more
            // than half from none to 50 ms; a longer quantum gains nothing more.
            release_quantum: Duration::from_millis(50),
            // At Graph's 20/s, clumps of 8 every 400 ms: the write-budget benchmark's CPU per user
            // goes 1.05 → 0.84 → 0.75 ms from 1 to 4 to 8 slots, with no 429 and no less of the
            // budget used.
            write_release_slots: 8,
            write_budget_per_sec: 20.0,
            write_ceiling_per_sec: None,
            write_target: 0.95,
            // The overshoot at the turn is the writes in flight (bounded by the caller's
            // concurrency), not the burst rate: 10 × lets an unthrottled run go at full speed.
            write_burst_factor: 10.0,
            write_approach_factor: 3.0,
            write_dither: 0.1,
            write_probe_interval: Duration::from_secs(2),
            write_sample_min: Duration::from_secs(5),
            write_sample_horizon: Duration::from_secs(30),
            write_fresh_reset: Duration::from_secs(10),
            // The burst (10 × the assumed rate) draws a full published budget down to the 80 %
            // mark in 14 s when the assumption holds.
            write_fresh_probe: Duration::from_secs(20),
        }
    }
}

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

/// Where the write bucket stands relative to the target, as the last answer said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Zone {
    /// No write answered yet: the bucket may be full or empty (right after another run).
    Unknown,
    /// No pressure header (more than 20 % left).
    Fresh,
    /// A header below the target.
    Below,
    /// A header at or above the target.
    Above,
}

/// The write controller (see the module documentation).
#[derive(Debug)]
struct Writes {
    /// The refill rate as measured (writes/s).
    estimate: f64,
    zone: Zone,
    /// Whether the target has been crossed since the last long fresh period: until then, burst.
    anchored: bool,
    /// Our writes the budget took: answered with anything but 429 / 5xx / nothing.
    admitted: u64,
    /// Recent crossings of the target: (when, `admitted` then), oldest first.
    crossings: VecDeque<(Instant, u64)>,
    /// Start of the current probe interval: (when, `admitted` then).
    probe_from: (Instant, u64),
    /// Since when answers have carried no header, and `admitted` then.
    fresh_since: Option<(Instant, u64)>,
    /// When the last write was released (its scheduled slot).
    last_slot: Option<Instant>,
    paused_until: Option<Instant>,
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

    /// The write rate allowed now.
    fn write_rate(&self) -> f64 {
        rate_for(&self.settings, &self.writes, self.writes.zone)
    }

    /// `None`: a write may go now (and its slot is taken). `Some(t)`: ask again at `t`.
    fn write_slot(&mut self, now: Instant) -> Option<Instant> {
        let paused = [self.paused_until, self.writes.paused_until]
            .into_iter()
            .flatten()
            .max();
        if let Some(until) = paused.filter(|t| *t > now) {
            return Some(until);
        }
        let gap = Duration::from_secs_f64(1.0 / self.write_rate());
        let due = self.writes.last_slot.map_or(now, |last| last + gap);
        if due > now {
            return Some(due);
        }
        // Late (a timer fires a little after its instant, or a clump is released) or idle: keep
        // the schedule, but bank no more than `burst` missed slots (a clump's at least).
        let banked = self.settings.burst.max(self.settings.write_release_slots);
        let allowance = gap.saturating_mul(banked);
        self.writes.last_slot = Some(due.max(now.checked_sub(allowance).unwrap_or(now)));
        None
    }

    /// The quantum writes are released in: `write_release_slots` slots at the write rate of the
    /// moment, at least one `release_quantum`.
    fn write_quantum(&self) -> Duration {
        let slots = self.settings.write_release_slots;
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

    /// A write the budget took, with the header it carried.
    fn write_answered(&mut self, now: Instant, p: Option<f64>) {
        let s = self.settings;
        let w = &mut self.writes;
        w.admitted += 1;
        let zone = match p {
            None => Zone::Fresh,
            Some(p) if p >= s.write_target => Zone::Above,
            Some(_) => Zone::Below,
        };
        if zone == Zone::Fresh {
            let (since, n_since) = *w.fresh_since.get_or_insert((now, w.admitted));
            let long = now.duration_since(since);
            if long >= s.write_fresh_reset {
                // The bucket may have reached its cap, where refill is lost: the count of writes
                // since an old crossing no longer tells the refill rate, and the next approach to
                // the target is a fresh burst.
                w.anchored = false;
                w.crossings.clear();
            }
            if long >= s.write_fresh_probe {
                let burst = rate_for(&s, w, Zone::Fresh);
                if (w.admitted - n_since) as f64 >= 0.8 * burst * long.as_secs_f64() {
                    w.estimate = (w.estimate * 1.5).min(s.max_rate);
                }
                w.fresh_since = Some((now, w.admitted));
            }
        } else {
            w.fresh_since = None;
        }
        // Only a step between the two sides of the target is a crossing at a known instant (from
        // or to "no header" the bucket went through the target unseen, e.g. while idle).
        let crossed = matches!(
            (w.zone, zone),
            (Zone::Below, Zone::Above) | (Zone::Above, Zone::Below)
        );
        let side_changed = (w.zone == Zone::Above) != (zone == Zone::Above);
        w.zone = zone;
        if crossed {
            self.stats.write_crossings += 1;
            w.anchored = true;
            while w
                .crossings
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > s.write_sample_horizon)
            {
                w.crossings.pop_front();
            }
            if let Some(&(t0, n0)) = w.crossings.front() {
                let span = now.duration_since(t0);
                if span >= s.write_sample_min {
                    // Same level at both crossings: what came in is exactly what we took.
                    let measured = (w.admitted - n0) as f64 / span.as_secs_f64();
                    w.estimate = measured.clamp(s.min_rate, s.max_rate);
                }
            }
            if w.crossings.len() >= 1024 {
                w.crossings.pop_front();
            }
            w.crossings.push_back((now, w.admitted));
        }
        if side_changed || !w.anchored {
            // A new side, or the first approach to the target (a burst: nothing to probe).
            w.probe_from = (now, w.admitted);
            return;
        }
        if zone == Zone::Fresh {
            // Between "0.8" and no header: still the same side; judge at the next header.
            return;
        }
        let (from, n_from) = w.probe_from;
        let interval = now.duration_since(from);
        if interval < s.write_probe_interval {
            return;
        }
        match zone {
            // Still short of the target after a whole interval of writing slower than the
            // estimate: the estimate is too high.
            Zone::Above => w.estimate = (w.estimate * (1.0 - s.write_dither)).max(s.min_rate),
            // Still above the target after an interval of writing faster than the estimate
            // (unless we had too little work to write that fast): the estimate is too low.
            _ => {
                let slowest = w.estimate * (1.0 + s.write_dither) * interval.as_secs_f64();
                if (w.admitted - n_from) as f64 >= 0.8 * slowest {
                    w.estimate = (w.estimate * (1.0 + s.write_dither)).min(s.max_rate);
                }
            }
        }
        w.probe_from = (now, w.admitted);
    }

    /// A 429 of the write budget: the bucket is empty.
    fn write_throttled(&mut self, now: Instant) {
        let s = self.settings;
        let w = &mut self.writes;
        // The writes in flight when the bucket ran dry come back 429 together: one lesson.
        let new_episode = w.paused_until.is_none_or(|t| t <= now);
        if new_episode {
            w.estimate = (w.estimate * s.throttled_factor).max(s.min_rate);
        }
        w.zone = Zone::Above;
        w.anchored = true;
        w.probe_from = (now, w.admitted);
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

/// The write rate allowed on `zone`'s side of the target.
fn rate_for(s: &PacingSettings, w: &Writes, zone: Zone) -> f64 {
    let factor = match zone {
        // One write at the assumed rate tells where the bucket stands before the burst.
        Zone::Unknown => 1.0,
        Zone::Fresh => s.write_burst_factor,
        Zone::Below if !w.anchored => s.write_approach_factor,
        Zone::Below => 1.0 + s.write_dither,
        Zone::Above => 1.0 - s.write_dither,
    };
    let ceiling = s
        .write_ceiling_per_sec
        .unwrap_or(s.max_rate)
        .min(s.max_rate);
    (w.estimate * factor).clamp(s.min_rate.min(ceiling), ceiling)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(p: Option<f64>) -> Feedback {
        Feedback::Ok {
            limit_percentage: p,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn requests_are_spaced_at_the_allowed_rate_after_the_burst() {
        let pacer = Pacer::new(PacingSettings {
            initial_rate: 10.0,
            max_rate: 10.0,
            burst: 0,
            ..PacingSettings::default()
        });
        let t0 = Instant::now();
        for _ in 0..11 {
            pacer.acquire(false, false).await;
        }
        // 11 requests at 10/s: the 11th goes 1 s after the first.
        assert_eq!(Instant::now().duration_since(t0), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn requests_due_in_one_quantum_go_together_never_before_their_turn() {
        let quantum = Duration::from_millis(20);
        let pacer = Pacer::new(PacingSettings {
            initial_rate: 200.0,
            max_rate: 200.0,
            burst: 0,
            release_quantum: quantum,
            ..PacingSettings::default()
        });
        let t0 = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..200 {
            let pacer = pacer.clone();
            tasks.spawn(async move {
                pacer.acquire(false, false).await;
                Instant::now().duration_since(t0)
            });
        }
        let mut released = tasks.join_all().await;
        released.sort();
        assert_released_in_clumps(&released, Duration::from_millis(5), quantum);
        // The same rate: 200 requests at 200/s take a second, in clumps of four.
        assert_eq!(released[199], Duration::from_secs(1));
        let mut clumps = released.clone();
        clumps.dedup();
        assert_eq!(clumps.len(), 51);
    }

    /// The `i`-th of `released` (sorted) went at its turn (`i × gap`) or within `clump` after
    /// it, and at the end of a clump, never before.
    fn assert_released_in_clumps(released: &[Duration], gap: Duration, clump: Duration) {
        for (i, at) in released.iter().enumerate() {
            let turn = gap * u32::try_from(i).unwrap();
            assert!(*at >= turn && *at < turn + clump, "{i} went at {at:?}");
            assert_eq!(at.as_nanos() % clump.as_nanos(), 0, "{at:?} ends no clump");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn writes_go_in_clumps_at_the_same_rate_never_before_their_turn() {
        let pacer = Pacer::new(PacingSettings {
            write_budget_per_sec: 20.0,
            write_burst_factor: 1.0,
            release_quantum: Duration::from_millis(50),
            write_release_slots: 4,
            ..PacingSettings::default()
        });
        let t0 = Instant::now();
        let mut released = Vec::new();
        for _ in 0..13 {
            pacer.acquire(true, false).await;
            released.push(Instant::now().duration_since(t0));
        }
        assert_released_in_clumps(
            &released,
            Duration::from_millis(50),
            Duration::from_millis(200),
        );
        // 13 writes at 20/s: the last one's turn is 600 ms; the first alone, then four a clump.
        assert_eq!(released[12], Duration::from_millis(600));
        let mut clumps = released.clone();
        clumps.dedup();
        assert_eq!(clumps.len(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn writes_are_released_at_the_write_rate_of_the_moment() {
        let pacer = Pacer::new(PacingSettings {
            write_budget_per_sec: 10.0,
            write_burst_factor: 1.0,
            burst: 0,
            release_quantum: Duration::ZERO,
            write_release_slots: 0,
            ..PacingSettings::default()
        });
        let t0 = Instant::now();
        for _ in 0..11 {
            pacer.acquire(true, false).await;
        }
        assert_eq!(Instant::now().duration_since(t0), Duration::from_secs(1));
        // Past the target the rate drops to 90 % of the estimate: the next write waits 1/9 s.
        pacer.feedback(true, ok(Some(1.0)));
        let t1 = Instant::now();
        pacer.acquire(true, false).await;
        let gap = Instant::now().duration_since(t1);
        assert!(
            gap.abs_diff(Duration::from_secs_f64(1.0 / 9.0)) < Duration::from_millis(1),
            "{gap:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_pauses_every_clone_for_at_least_retry_after() {
        let pacer = Pacer::new(PacingSettings::default());
        let other = pacer.clone();
        pacer.feedback(
            false,
            Feedback::Throttled {
                retry_after: Some(Duration::from_secs(3)),
                scope: Scope::All,
            },
        );
        let t0 = Instant::now();
        other.acquire(false, true).await;
        assert!(Instant::now().duration_since(t0) >= Duration::from_secs(3));
        let st = pacer.stats();
        assert_eq!(st.throttled, 1);
        assert_eq!(st.retries, 1);
        assert!(
            (st.rate - 100.0).abs() < 1e-9,
            "halved from 200: {}",
            st.rate
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_budget_429_pauses_writes_but_not_reads() {
        let pacer = Pacer::new(PacingSettings::default());
        let before = pacer.stats();
        pacer.feedback(
            true,
            Feedback::Throttled {
                retry_after: Some(Duration::from_secs(2)),
                scope: Scope::Writes,
            },
        );
        let t0 = Instant::now();
        pacer.acquire(false, false).await;
        assert_eq!(Instant::now(), t0, "a read goes at once");
        pacer.acquire(true, true).await;
        assert!(Instant::now().duration_since(t0) >= Duration::from_secs(2));
        let st = pacer.stats();
        assert_eq!((st.throttled, st.write_throttled), (1, 1));
        assert_eq!(st.rate, before.rate, "the request rate is not cut");
        assert!(st.write_estimate < before.write_estimate);
    }

    #[test]
    fn a_pause_is_never_shortened_by_a_shorter_one() {
        let t0 = Instant::now();
        let mut s = State::new(PacingSettings::default(), t0);
        s.pause(t0, Some(Duration::from_secs(5)), Scope::Writes);
        s.pause(t0, Some(Duration::from_secs(1)), Scope::Writes);
        assert_eq!(
            s.write_slot(t0 + Duration::from_secs(2)),
            Some(t0 + Duration::from_secs(5))
        );
        assert_eq!(s.stats.paused_ms, 5000);
    }

    #[test]
    fn aimd_on_reads_grows_without_pressure_holds_near_the_limit_and_cuts_above_it() {
        let t0 = Instant::now();
        let mut s = State::new(
            PacingSettings {
                initial_rate: 10.0,
                decrease_interval: Duration::ZERO,
                ..PacingSettings::default()
            },
            t0,
        );
        for _ in 0..10 {
            s.feedback(t0, false, ok(None));
        }
        let grown = s.rate;
        assert!(grown > 11.0, "{grown}");
        s.feedback(t0, false, ok(Some(0.92)));
        assert_eq!(s.rate, grown, "held");
        // A write's header may be the write budget's: it does not cut the request rate.
        s.feedback(t0, true, ok(Some(1.2)));
        assert_eq!(s.rate, grown);
        s.feedback(t0, false, ok(Some(1.2)));
        assert!((s.rate - grown * 0.9).abs() < 1e-9);
        assert_eq!(s.stats.slowdowns, 1);
        assert_eq!(s.stats.last_limit_percentage, 1.2);
    }

    #[test]
    fn the_write_ceiling_is_never_exceeded() {
        let pacer = Pacer::new(PacingSettings {
            write_ceiling_per_sec: Some(20.0),
            ..PacingSettings::default()
        });
        assert_eq!(pacer.stats().write_rate, 20.0, "burst capped");
        for _ in 0..1000 {
            pacer.feedback(true, ok(None));
        }
        assert_eq!(pacer.stats().write_rate, 20.0);
        pacer.set_write_ceiling(Some(5.0));
        assert_eq!(pacer.stats().write_rate, 5.0);
    }

    #[test]
    fn writes_burst_until_the_target_then_hover_around_the_estimate() {
        let t0 = Instant::now();
        let mut s = State::new(PacingSettings::default(), t0);
        assert_eq!(
            s.write_rate(),
            20.0,
            "the assumed rate until a write is answered"
        );
        s.feedback(t0, true, ok(None));
        assert_eq!(s.write_rate(), 200.0, "10 × 20/s while the bucket is fresh");
        s.feedback(t0, true, ok(Some(0.8)));
        assert_eq!(s.write_rate(), 60.0, "approaching the target at 3 × 20/s");
        s.feedback(t0, true, ok(Some(1.0)));
        assert!((s.write_rate() - 18.0).abs() < 1e-9, "{}", s.write_rate());
        s.feedback(t0, true, ok(Some(0.9)));
        assert!((s.write_rate() - 22.0).abs() < 1e-9, "{}", s.write_rate());
        assert_eq!(s.stats.write_crossings, 2);
    }

    #[test]
    fn crossings_of_the_target_measure_the_refill_rate() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut s = State::new(PacingSettings::default(), t0);
        s.feedback(at(0), true, ok(Some(0.9)));
        s.feedback(at(0), true, ok(Some(1.0))); // crossing 1, after write 2
        // 8 s later, after write 102, back below the target: 100 writes in 8 s.
        for _ in 0..99 {
            s.feedback(at(4000), true, ok(Some(1.0)));
        }
        s.feedback(at(8000), true, ok(Some(0.9))); // crossing 2
        let est = s.writes.estimate;
        assert!((est - 100.0 / 8.0).abs() < 1e-9, "{est}");
    }

    #[test]
    fn staying_on_the_wrong_side_moves_the_estimate() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut s = State::new(PacingSettings::default(), t0);
        s.feedback(at(0), true, ok(Some(0.9)));
        s.feedback(at(0), true, ok(Some(1.0)));
        s.feedback(at(2100), true, ok(Some(1.0)));
        assert!((s.writes.estimate - 18.0).abs() < 1e-9);
        // Below the target and writing as fast as allowed: the refill is faster than thought.
        s.feedback(at(2200), true, ok(Some(0.9)));
        let est = s.writes.estimate;
        for i in 1..=40 {
            s.feedback(at(2200 + i * 50), true, ok(Some(0.9)));
        }
        assert!((s.writes.estimate - est * 1.1).abs() < 1e-9);
        // Below the target with hardly any writes (no work): no conclusion.
        let est = s.writes.estimate;
        s.feedback(at(6500), true, ok(Some(0.9)));
        assert_eq!(s.writes.estimate, est);
    }

    /// A write bucket as the sandbox and Graph keep it: capacity, continuous refill, the
    /// `x-ms-throttle-limit-percentage` header (one decimal) above 80 % used, 429 when empty.
    struct Bucket {
        capacity: f64,
        refill_per_sec: f64,
        tokens: f64,
        at: Instant,
    }

    impl Bucket {
        fn admit(&mut self, now: Instant) -> Result<Option<f64>, Duration> {
            let dt = now.duration_since(self.at).as_secs_f64();
            self.tokens = (self.tokens + dt * self.refill_per_sec).min(self.capacity);
            self.at = now;
            if self.tokens < 1.0 {
                let secs = ((1.0 - self.tokens) / self.refill_per_sec).ceil().max(1.0);
                return Err(Duration::from_secs_f64(secs));
            }
            self.tokens -= 1.0;
            let used = 1.0 - self.tokens / self.capacity;
            Ok((used > 0.8).then(|| (used * 10.0).round() / 10.0))
        }
    }

    struct Run {
        admitted: u64,
        throttled: u64,
        seconds: f64,
        /// Writes admitted per second from the moment the burst is spent (the bucket first
        /// down to the target) until the end.
        steady_per_sec: f64,
        estimate: f64,
    }

    /// Closed loop: `n` writes through the pacer's write controller against `bucket`, `in_flight`
    /// at most at once, each answered `latency` after it is sent; a 429 is retried after its
    /// Retry-After. Simulated time: deterministic and instant.
    fn simulate(
        settings: PacingSettings,
        mut bucket: Bucket,
        n: u64,
        in_flight: usize,
        latency: Duration,
    ) -> Run {
        let t0 = bucket.at;
        let mut s = State::new(settings, t0);
        let mut now = t0;
        // Answers in flight: (due, outcome), kept sorted by due time (constant latency: FIFO).
        let mut answers: VecDeque<(Instant, Result<Option<f64>, Duration>)> = VecDeque::new();
        let (mut admitted, mut throttled, mut left) = (0u64, 0u64, n);
        let mut steady_from: Option<(Instant, u64)> = None;
        let mut retries = 0u64;
        while left + retries > 0 || !answers.is_empty() {
            let next_answer = answers.front().map(|(t, _)| *t);
            let can_send = left + retries > 0 && answers.len() < in_flight;
            let slot = if can_send {
                s.write_slot(now)
            } else {
                Some(now)
            };
            match (can_send, slot) {
                (true, None) => {
                    if retries > 0 {
                        retries -= 1;
                    } else {
                        left -= 1;
                    }
                    let outcome = bucket.admit(now);
                    if steady_from.is_none() && bucket.tokens < 0.06 * bucket.capacity {
                        steady_from = Some((now, admitted));
                    }
                    answers.push_back((now + latency, outcome));
                    continue;
                }
                (true, Some(t)) if next_answer.is_none_or(|a| t <= a) => {
                    now = t;
                    continue;
                }
                _ => {}
            }
            let Some((due, outcome)) = answers.pop_front() else {
                break;
            };
            now = now.max(due);
            match outcome {
                Ok(p) => {
                    admitted += 1;
                    s.feedback(now, true, ok(p));
                }
                Err(retry_after) => {
                    throttled += 1;
                    retries += 1;
                    s.feedback(
                        now,
                        true,
                        Feedback::Throttled {
                            retry_after: Some(retry_after),
                            scope: Scope::Writes,
                        },
                    );
                }
            }
        }
        let seconds = now.duration_since(t0).as_secs_f64();
        let (ts, ns) = steady_from.unwrap_or((t0, 0));
        Run {
            admitted,
            throttled,
            seconds,
            steady_per_sec: (admitted - ns) as f64 / now.duration_since(ts).as_secs_f64(),
            estimate: s.writes.estimate,
        }
    }

    fn graph_bucket(capacity: f64, refill_per_sec: f64) -> Bucket {
        Bucket {
            capacity,
            refill_per_sec,
            tokens: capacity,
            at: Instant::now(),
        }
    }

    #[test]
    fn against_graphs_budget_nearly_all_of_it_is_used_and_nothing_is_throttled() {
        for (in_flight, latency_ms) in [(16, 0), (64, 0), (16, 50), (64, 200)] {
            let run = simulate(
                PacingSettings::default(),
                graph_bucket(3000.0, 20.0),
                9000,
                in_flight,
                Duration::from_millis(latency_ms),
            );
            let budget = 3000.0 + 20.0 * run.seconds;
            let used = run.admitted as f64 / budget;
            let case = format!(
                "{in_flight} in flight, {latency_ms} ms: used {used:.3}, steady {:.2}/s, {} × 429, {:.0} s, estimate {:.2}",
                run.steady_per_sec, run.throttled, run.seconds, run.estimate
            );
            assert_eq!(run.throttled, 0, "{case}");
            assert!(used >= 0.97, "{case}");
            assert!(run.steady_per_sec >= 0.98 * 20.0, "{case}");
            assert!((run.estimate - 20.0).abs() < 1.0, "{case}");
        }
    }

    #[test]
    fn a_budget_other_than_the_published_one_is_measured() {
        // A quarter and half of the assumed refill (other instances share the app), double it,
        // and five times it (beyond what the burst alone would notice).
        for refill in [5.0, 10.0, 40.0, 100.0] {
            let run = simulate(
                PacingSettings::default(),
                graph_bucket(150.0 * refill, refill),
                (450.0 * refill) as u64,
                32,
                Duration::from_millis(20),
            );
            let used = run.admitted as f64 / (150.0 * refill + refill * run.seconds);
            let case = format!(
                "refill {refill}/s: used {used:.3}, steady {:.2}/s, {} × 429, estimate {:.2}",
                run.steady_per_sec, run.throttled, run.estimate
            );
            assert!(used >= 0.95, "{case}");
            assert!(
                run.throttled as f64 <= 0.005 * run.admitted as f64,
                "{case}"
            );
            assert!((run.estimate - refill).abs() < 0.05 * refill, "{case}");
        }
    }

    #[test]
    fn a_budget_already_spent_costs_a_few_429s_then_none() {
        let mut bucket = graph_bucket(3000.0, 20.0);
        bucket.tokens = 0.0;
        let run = simulate(
            PacingSettings::default(),
            bucket,
            6000,
            64,
            Duration::from_millis(50),
        );
        let case = format!(
            "steady {:.2}/s, {} × 429, estimate {:.2}",
            run.steady_per_sec, run.throttled, run.estimate
        );
        // Only the first write goes before anything is known: one 429, then none.
        assert!(run.throttled <= 3, "{case}");
        // The cushion at the target is built up first, and left at the end: 150 of 6,000.
        assert!(run.steady_per_sec >= 0.96 * 20.0, "{case}");
        assert!((run.estimate - 20.0).abs() < 1.0, "{case}");
    }
}
