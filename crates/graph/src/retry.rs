//! When to try a request again, and how long to wait first.
//!
//! Microsoft's guidance (<https://learn.microsoft.com/graph/throttling#best-practices-to-handle-throttling>):
//! on 429 "wait the number of seconds specified in the Retry-After header" and retry; without the
//! header, back off exponentially. 503/504 are transient too. We never wait *less* than
//! `Retry-After` (a Graph that sees early retries throttles longer), and otherwise use exponential
//! backoff with full jitter (`uniform(0, min(cap, base·2^n))`), so that many clients that failed
//! together do not come back together.
//!
//! Hand-written rather than `backon`: the rule "at least Retry-After, else full-jitter backoff"
//! with a pacer that pauses every clone of the client is a dozen lines, and `backon`'s jitter adds
//! on top of the exponential delay instead of drawing below it.

use std::time::{Duration, SystemTime};

use rand::RngExt as _;

/// Parses `Retry-After`: delta-seconds (what Graph sends) or an HTTP-date (RFC 9110 §10.2.3).
/// A date in the past means "now" (zero); garbage means "no header".
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // Some proxies send fractional seconds; round up so that we never come back early.
    if let Ok(secs) = v.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(Duration::from_millis((secs * 1000.0).ceil() as u64));
    }
    let when = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822)
        .ok()
        .or_else(|| parse_imf_fixdate(v))?;
    let when =
        SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(when.unix_timestamp()).ok()?);
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (IMF-fixdate; "GMT" is not accepted by the RFC 2822 parser).
fn parse_imf_fixdate(v: &str) -> Option<time::OffsetDateTime> {
    let v = v.strip_suffix(" GMT")?;
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second]"
    );
    time::PrimitiveDateTime::parse(v, &fmt)
        .ok()
        .map(|p| p.assume_utc())
}

/// Exponential backoff with full jitter, bounded in attempts.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Total attempts, the first included (1 = never retry).
    pub max_attempts: u32,
    /// Delay ceiling before jitter for the first retry.
    pub base: Duration,
    /// No single wait is longer than this (unless Retry-After asks for more).
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The largest wait before retry number `retry` (1-based): `min(cap, base·2^(retry-1))`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1).min(20));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The wait before retry number `retry`: at least `retry_after` when the server sent one
    /// (plus a little jitter so that clones of the client do not return in lockstep), else a
    /// uniformly random duration in `[0, ceiling]`.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let mut rng = rand::rng();
        match retry_after {
            Some(at_least) => {
                let spread = (self.base.as_millis() as u64 / 2).max(1);
                at_least + Duration::from_millis(rng.random_range(0..=spread))
            }
            None => {
                let ceiling = self.ceiling(retry).as_millis() as u64;
                Duration::from_millis(rng.random_range(0..=ceiling))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_dates_and_garbage() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // 06 Nov 1994 08:49:37
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("1.2", now),
            Some(Duration::from_millis(1200))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 +0000", now),
            Some(Duration::from_secs(10))
        );
        // A date already past: retry now, not never.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }

    #[test]
    fn backoff_stays_within_its_exponential_ceiling_and_cap() {
        let p = RetryPolicy {
            max_attempts: 10,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
        };
        assert_eq!(p.ceiling(1), Duration::from_millis(100));
        assert_eq!(p.ceiling(2), Duration::from_millis(200));
        assert_eq!(p.ceiling(4), Duration::from_millis(800));
        assert_eq!(p.ceiling(6), Duration::from_secs(2));
        assert_eq!(p.ceiling(u32::MAX), Duration::from_secs(2));
        for retry in 1..12 {
            for _ in 0..200 {
                let d = p.delay(retry, None);
                assert!(d <= p.ceiling(retry), "retry {retry}: {d:?}");
            }
        }
        // Full jitter: the draws spread over the range instead of sitting at the ceiling.
        let draws: Vec<_> = (0..400).map(|_| p.delay(5, None)).collect();
        assert!(draws.iter().any(|d| *d < Duration::from_millis(800)));
        assert!(draws.iter().any(|d| *d > Duration::from_millis(800)));
    }

    #[test]
    fn retry_after_is_a_floor_never_shortened() {
        let p = RetryPolicy::default();
        for retry in 1..10 {
            let d = p.delay(retry, Some(Duration::from_secs(3)));
            assert!(d >= Duration::from_secs(3), "{d:?}");
            assert!(d <= Duration::from_secs(3) + p.base, "{d:?}");
        }
    }
}
