//! A bucket's size, read off its pressure headers.
//!
//! Graph does not say how big a bucket is, only how full: `x-ms-throttle-limit-percentage` is
//! the fraction of it used. Two answers close together differ by what was drawn between them
//! over the size (the refill in a few milliseconds is next to nothing), so their ratio measures
//! the size. The pacer needs it where a fraction is not enough: the cushion it keeps under the
//! target is `(1 − target) × size` draws, 5 of a bucket of 100 and 150 of Graph's 3,000, and
//! what it may release together, or spend of a bucket left to it, is counted in draws.
//!
//! Every error of the measurement leans small, which only makes the pacer more careful:
//! - another client's draws between the two answers raise the level more than ours did;
//! - a header rounded coarsely (Microsoft documents no precision) mostly shows no change, which
//!   gives no sample, and now and then a whole step for a few draws, which gives a small one;
//! - answers that arrive out of the order they were counted in give a fall, which is skipped.
//!
//! The median of the recent samples is taken, so that one odd pair does not move it.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// Two answers further apart than this say more about the refill than about the size.
const CLOSE: Duration = Duration::from_millis(100);
/// Samples kept (the median of these is the size).
const KEPT: usize = 31;
/// Samples needed before a size is given.
const ENOUGH: usize = 5;

#[derive(Debug, Default)]
pub(super) struct Capacity {
    /// The last answer with a header: when, its level, and what had been drawn by then.
    last: Option<(Instant, f64, f64)>,
    samples: VecDeque<f64>,
    /// The median of `samples` once there are `ENOUGH`, worked out when a sample comes (far
    /// fewer than the pacer's reads of it: every write's turn asks for it).
    size: Option<f64>,
}

impl Capacity {
    /// An answer carrying the level `level` after `drawn` had been drawn in all; `refill` is the
    /// refill rate as estimated (units/s).
    pub(super) fn answered(&mut self, now: Instant, level: Option<f64>, drawn: f64, refill: f64) {
        let Some(level) = level else {
            // No header (under 80 %): the next one starts a new pair.
            self.last = None;
            return;
        };
        if let Some((t0, level0, drawn0)) = self.last.replace((now, level, drawn)) {
            let span = now.duration_since(t0);
            let rise = level - level0;
            let net = (drawn - drawn0) - refill * span.as_secs_f64();
            if span <= CLOSE && rise > 0.0 && net > 0.0 {
                if self.samples.len() == KEPT {
                    self.samples.pop_front();
                }
                self.samples.push_back(net / rise);
                self.size = (self.samples.len() >= ENOUGH).then(|| {
                    let mut sorted: Vec<f64> = self.samples.iter().copied().collect();
                    sorted.sort_by(f64::total_cmp);
                    sorted[sorted.len() / 2]
                });
            }
        }
    }

    /// The bucket's size as measured, once there are enough samples.
    pub(super) fn size(&self) -> Option<f64> {
        self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `n` answers of one draw each, `gap` apart, from a bucket of `size` refilling at
    /// `refill`/s, starting at `level`, with the header rounded to `decimals`.
    fn feed(
        size: f64,
        refill: f64,
        level: f64,
        n: usize,
        gap: Duration,
        decimals: i32,
    ) -> Capacity {
        let mut c = Capacity::default();
        let mut now = Instant::now();
        let (mut used, mut drawn) = (level * size, 0.0);
        let scale = 10f64.powi(decimals);
        for _ in 0..n {
            now += gap;
            used += 1.0 - refill * gap.as_secs_f64();
            drawn += 1.0;
            let header = ((used / size) * scale).round() / scale;
            c.answered(now, Some(header), drawn, refill);
        }
        c
    }

    #[test]
    fn an_exact_header_measures_the_size() {
        for size in [100.0, 600.0, 3000.0] {
            let c = feed(size, 20.0, 0.85, 20, Duration::from_millis(5), 6);
            let measured = c.size().expect("enough samples");
            assert!((measured - size).abs() / size < 0.02, "{size}: {measured}");
        }
    }

    #[test]
    fn a_coarse_header_never_overstates_the_size() {
        // One decimal: most pairs show no change; those that do overstate the rise.
        let c = feed(600.0, 20.0, 0.85, 400, Duration::from_millis(5), 1);
        assert!(c.size().is_none_or(|s| s <= 600.0), "{:?}", c.size());
    }

    #[test]
    fn answers_far_apart_or_a_falling_level_give_no_size() {
        let c = feed(600.0, 20.0, 0.9, 20, Duration::from_millis(500), 6);
        assert_eq!(c.size(), None);
        // Drawing slower than the refill: the level falls.
        let c = feed(600.0, 400.0, 0.9, 20, Duration::from_millis(5), 6);
        assert_eq!(c.size(), None);
    }

    #[test]
    fn another_clients_draws_make_it_smaller_not_larger() {
        let mut c = Capacity::default();
        let mut now = Instant::now();
        let (size, mut used, mut drawn) = (600.0, 540.0, 0.0);
        for _ in 0..20 {
            now += Duration::from_millis(5);
            // Ours and one of the other client's between each two of our answers.
            used += 2.0;
            drawn += 1.0;
            c.answered(now, Some(used / size), drawn, 0.0);
        }
        assert!(c.size().is_some_and(|s| s < size), "{:?}", c.size());
    }
}
