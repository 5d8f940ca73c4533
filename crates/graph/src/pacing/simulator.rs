//! The write controller in closed loop against a simulated bucket (simulated time).

use std::collections::VecDeque;

use super::*;
use crate::pacing::tests::ok;

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
