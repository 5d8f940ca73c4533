//! Sign-in failures counted per account and per address, with a lock-out that says how long.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed sign-ins allowed per account, and per address, within [`FAILURE_WINDOW`].
const MAX_FAILURES: u32 = 5;
const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// The first lock-out; each further failure while locked doubles it, up to [`MAX_LOCKOUT`].
const FIRST_LOCKOUT: Duration = Duration::from_secs(30);
const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);

/// Counts failed sign-ins per key (an account, an address) and locks a key out after
/// [`MAX_FAILURES`] in [`FAILURE_WINDOW`]. Written here rather than with `governor`: what is
/// limited is failures, not requests (a person who types the password right is never slowed),
/// and the answer must say how long to wait. Per instance: several instances each allow as
/// many, which still bounds guessing.
#[derive(Debug, Default)]
pub(crate) struct SignInLimiter {
    keys: Mutex<HashMap<String, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    first: Instant,
    locked_until: Option<Instant>,
    lockout: Duration,
}

impl Failures {
    /// No failure yet, counting from `now`.
    fn fresh(now: Instant) -> Failures {
        Failures {
            count: 0,
            first: now,
            locked_until: None,
            lockout: FIRST_LOCKOUT,
        }
    }
}

impl SignInLimiter {
    /// How long `key` must still wait, if it is locked out.
    pub(super) fn wait(&self, key: &str) -> Option<Duration> {
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let until = keys.get(key)?.locked_until?;
        until.checked_duration_since(Instant::now())
    }

    pub(super) fn fail(&self, key: &str) {
        let now = Instant::now();
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if keys.len() > 100_000 {
            // Bounded memory under a spray of addresses: forget what is past its window.
            keys.retain(|_, f| now.duration_since(f.first) < FAILURE_WINDOW);
        }
        let f = keys.entry(key.to_owned()).or_insert(Failures::fresh(now));
        if now.duration_since(f.first) >= FAILURE_WINDOW && f.locked_until.is_none_or(|u| u <= now)
        {
            *f = Failures::fresh(now);
        }
        f.count += 1;
        if f.count >= MAX_FAILURES {
            f.locked_until = Some(now + f.lockout);
            f.lockout = (f.lockout * 2).min(MAX_LOCKOUT);
        }
    }

    pub(super) fn succeed(&self, key: &str) {
        self.keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_locks_after_five_failures_and_forgets_on_success() {
        let limiter = SignInLimiter::default();
        for _ in 0..4 {
            limiter.fail("a");
            assert!(limiter.wait("a").is_none());
        }
        limiter.fail("a");
        let wait = limiter.wait("a").expect("locked out");
        assert!(
            wait <= FIRST_LOCKOUT && wait > FIRST_LOCKOUT / 2,
            "{wait:?}"
        );
        assert!(limiter.wait("b").is_none(), "other keys are not affected");
        limiter.succeed("a");
        assert!(limiter.wait("a").is_none());
    }
}
