//! Client-side pacing, shared by every clone of a [`crate::GraphClient`] (one per app + tenant).
//!
//! Graph's identity throttling is a token bucket per app + tenant: resource units per 10 s and a
//! write budget (3,000 writes per 2.5 minutes per app + tenant) — see
//! <https://learn.microsoft.com/graph/throttling-limits#identity-and-access-service-limits>. Above
//! 80 % of a budget answers carry `x-ms-throttle-limit-percentage` (0.8–1.8); past it, 429 with
//! `Retry-After`. Bouncing off 429s wastes the budget and lengthens the penalty, so the pacer
//! spaces requests at an allowed rate and adapts it AIMD-style:
//! - no pressure header → additive increase (`increase_per_sec` requests/s per second of traffic);
//! - header above `hold_above` → hold; above `decrease_above` → multiplicative decrease
//!   (at most once per `decrease_interval`, since many answers in flight carry the same news);
//! - 429 / 503 → halve and pause *every* request until `Retry-After` has passed (Graph counts
//!   requests before that as early retries, whichever task sends them).
//!
//! Writes have their own rate (the write budget is the binding limit for provisioning) and an
//! explicit ceiling (`write_ceiling_per_sec`): set it to the budget (20/s for Graph's published
//! 3,000 per 150 s) to spend close to 100 % of it while the AIMD loop keeps 429s rare.

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
    /// Writes (POST/PATCH/DELETE) per second at start.
    pub initial_write_rate: f64,
    /// Hard ceiling on writes per second, whatever the feedback says.
    pub write_ceiling_per_sec: Option<f64>,
    /// Additive increase, in requests/s gained per second of unthrottled traffic.
    pub increase_per_sec: f64,
    /// `x-ms-throttle-limit-percentage` at or above which the rate stops growing.
    pub hold_above: f64,
    /// `x-ms-throttle-limit-percentage` at or above which the rate is cut.
    pub decrease_above: f64,
    /// Factor applied on a cut (0 < f < 1).
    pub decrease_factor: f64,
    /// Factor applied on a 429.
    pub throttled_factor: f64,
    /// Minimum time between two cuts.
    pub decrease_interval: Duration,
    /// How many requests may go back to back after an idle period.
    pub burst: u32,
}

impl Default for PacingSettings {
    fn default() -> Self {
        PacingSettings {
            initial_rate: 200.0,
            min_rate: 0.5,
            max_rate: 5_000.0,
            initial_write_rate: 18.0,
            write_ceiling_per_sec: None,
            increase_per_sec: 2.0,
            hold_above: 0.9,
            decrease_above: 0.97,
            decrease_factor: 0.9,
            throttled_factor: 0.5,
            decrease_interval: Duration::from_secs(1),
            burst: 10,
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
    /// Answers with status 503 / 504 (and other retried 5xx).
    pub unavailable: u64,
    /// Attempts that got no answer (reset, timeout).
    pub transport_errors: u64,
    /// Times the rate was cut because of `x-ms-throttle-limit-percentage`.
    pub slowdowns: u64,
    /// Time spent paused by `Retry-After`, all tasks together counted once per pause.
    pub paused_ms: u64,
    /// The allowed request rate now (requests/s).
    pub rate: f64,
    /// The allowed write rate now (writes/s).
    pub write_rate: f64,
    /// The last `x-ms-throttle-limit-percentage` seen (0 when the last answer had none).
    pub last_limit_percentage: f64,
}

#[derive(Debug)]
struct State {
    settings: PacingSettings,
    rate: f64,
    write_rate: f64,
    next_any: Instant,
    next_write: Instant,
    paused_until: Option<Instant>,
    last_cut: Option<Instant>,
    stats: PacingStats,
}

/// A shared pacer. Cloning shares the state.
#[derive(Debug, Clone)]
pub struct Pacer {
    state: Arc<Mutex<State>>,
}

/// What an answer told the pacer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Feedback {
    /// A normal answer, with `x-ms-throttle-limit-percentage` when present.
    Ok { limit_percentage: Option<f64> },
    /// 429: slow down and pause for at least `retry_after`.
    Throttled { retry_after: Option<Duration> },
    /// 503/504 (or another transient 5xx): pause for `retry_after` if given.
    Unavailable { retry_after: Option<Duration> },
    /// No answer at all.
    Transport,
}

impl Pacer {
    pub fn new(settings: PacingSettings) -> Pacer {
        let now = Instant::now();
        let write_rate = clamp_write(&settings, settings.initial_write_rate);
        Pacer {
            state: Arc::new(Mutex::new(State {
                rate: settings
                    .initial_rate
                    .clamp(settings.min_rate, settings.max_rate),
                write_rate,
                settings,
                next_any: now,
                next_write: now,
                paused_until: None,
                last_cut: None,
                stats: PacingStats::default(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the counters and the current rates.
    pub fn stats(&self) -> PacingStats {
        let s = self.lock();
        PacingStats {
            rate: s.rate,
            write_rate: s.write_rate,
            ..s.stats
        }
    }

    /// Changes the write ceiling while running (e.g. the engine learns the tenant's budget).
    pub fn set_write_ceiling(&self, per_sec: Option<f64>) {
        let mut s = self.lock();
        s.settings.write_ceiling_per_sec = per_sec;
        s.write_rate = clamp_write(&s.settings, s.write_rate);
    }

    /// Waits for this request's turn: its slot at the allowed rate, and any Retry-After pause.
    pub(crate) async fn acquire(&self, write: bool, retry: bool) {
        let slot = {
            let mut s = self.lock();
            let now = Instant::now();
            s.stats.requests += 1;
            if retry {
                s.stats.retries += 1;
            }
            let any_gap = Duration::from_secs_f64(1.0 / s.rate);
            let burst_any = any_gap.saturating_mul(s.settings.burst);
            let mut slot = s.next_any.max(now.checked_sub(burst_any).unwrap_or(now));
            if write {
                let w_gap = Duration::from_secs_f64(1.0 / s.write_rate);
                let burst_w = w_gap.saturating_mul(s.settings.burst);
                let w_slot = s.next_write.max(now.checked_sub(burst_w).unwrap_or(now));
                slot = slot.max(w_slot);
                s.next_write = slot + w_gap;
            }
            s.next_any = slot + any_gap;
            slot
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
        let mut s = self.lock();
        let now = Instant::now();
        match feedback {
            Feedback::Ok { limit_percentage } => {
                let p = limit_percentage.unwrap_or(0.0);
                s.stats.last_limit_percentage = p;
                if p >= s.settings.decrease_above {
                    let may_cut = s
                        .last_cut
                        .is_none_or(|t| now.duration_since(t) >= s.settings.decrease_interval);
                    if may_cut {
                        s.last_cut = Some(now);
                        s.stats.slowdowns += 1;
                        let f = s.settings.decrease_factor;
                        cut(&mut s, write, f);
                    }
                } else if p < s.settings.hold_above {
                    // Per answer, +increase/rate: at `rate` answers a second that is +increase/s.
                    let inc = s.settings.increase_per_sec;
                    s.rate = (s.rate + inc / s.rate).min(s.settings.max_rate);
                    if write {
                        let w = s.write_rate + inc / s.write_rate.max(1.0);
                        s.write_rate = clamp_write(&s.settings, w);
                    }
                }
            }
            Feedback::Throttled { retry_after } => {
                s.stats.throttled += 1;
                let f = s.settings.throttled_factor;
                s.last_cut = Some(now);
                cut(&mut s, write, f);
                pause(&mut s, now, retry_after);
            }
            Feedback::Unavailable { retry_after } => {
                s.stats.unavailable += 1;
                pause(&mut s, now, retry_after);
            }
            Feedback::Transport => s.stats.transport_errors += 1,
        }
    }

    /// Pauses every request until `until` (used for Retry-After of a failed attempt whose retry
    /// is scheduled by the caller).
    pub(crate) fn pause_for(&self, d: Duration) {
        let mut s = self.lock();
        let now = Instant::now();
        pause(&mut s, now, Some(d));
    }
}

fn cut(s: &mut State, write: bool, factor: f64) {
    s.rate = (s.rate * factor).max(s.settings.min_rate);
    if write {
        let w = s.write_rate * factor;
        s.write_rate = clamp_write(&s.settings, w);
    }
}

fn pause(s: &mut State, now: Instant, d: Option<Duration>) {
    let Some(d) = d else { return };
    let until = now + d;
    if s.paused_until.is_none_or(|t| t < until) {
        let from = s.paused_until.filter(|t| *t > now).unwrap_or(now);
        s.stats.paused_ms += until.duration_since(from).as_millis() as u64;
        s.paused_until = Some(until);
    }
}

fn clamp_write(settings: &PacingSettings, w: f64) -> f64 {
    let ceiling = settings
        .write_ceiling_per_sec
        .unwrap_or(settings.max_rate)
        .min(settings.max_rate);
    w.clamp(settings.min_rate.min(ceiling), ceiling)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    async fn a_429_pauses_every_clone_for_at_least_retry_after() {
        let pacer = Pacer::new(PacingSettings::default());
        let other = pacer.clone();
        pacer.feedback(
            false,
            Feedback::Throttled {
                retry_after: Some(Duration::from_secs(3)),
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

    #[test]
    fn aimd_grows_without_pressure_holds_near_the_limit_and_cuts_above_it() {
        let pacer = Pacer::new(PacingSettings {
            initial_rate: 10.0,
            decrease_interval: Duration::ZERO,
            ..PacingSettings::default()
        });
        for _ in 0..10 {
            pacer.feedback(
                false,
                Feedback::Ok {
                    limit_percentage: None,
                },
            );
        }
        let grown = pacer.stats().rate;
        assert!(grown > 11.0, "{grown}");
        pacer.feedback(
            false,
            Feedback::Ok {
                limit_percentage: Some(0.92),
            },
        );
        assert_eq!(pacer.stats().rate, grown, "held");
        pacer.feedback(
            false,
            Feedback::Ok {
                limit_percentage: Some(1.2),
            },
        );
        let cut = pacer.stats();
        assert!((cut.rate - grown * 0.9).abs() < 1e-9);
        assert_eq!(cut.slowdowns, 1);
        assert_eq!(cut.last_limit_percentage, 1.2);
    }

    #[test]
    fn the_write_ceiling_is_never_exceeded() {
        let pacer = Pacer::new(PacingSettings {
            initial_write_rate: 50.0,
            write_ceiling_per_sec: Some(20.0),
            ..PacingSettings::default()
        });
        assert_eq!(pacer.stats().write_rate, 20.0);
        for _ in 0..1000 {
            pacer.feedback(
                true,
                Feedback::Ok {
                    limit_percentage: None,
                },
            );
        }
        assert_eq!(pacer.stats().write_rate, 20.0);
        pacer.set_write_ceiling(Some(5.0));
        assert_eq!(pacer.stats().write_rate, 5.0);
    }
}
