//! The write controller: the write bucket kept at the target mark (see the module
//! documentation of `pacing`).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::{PacingSettings, State};

/// Where the write bucket stands relative to the target, as the last answer said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Zone {
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
pub(super) struct Writes {
    /// The refill rate as measured (writes/s).
    pub(super) estimate: f64,
    pub(super) zone: Zone,
    /// Whether the target has been crossed since the last long fresh period: until then, burst.
    pub(super) anchored: bool,
    /// Our writes the budget took: answered with anything but 429 / 5xx / nothing.
    pub(super) admitted: u64,
    /// Recent crossings of the target: (when, `admitted` then), oldest first.
    pub(super) crossings: VecDeque<(Instant, u64)>,
    /// Start of the current probe interval: (when, `admitted` then).
    pub(super) probe_from: (Instant, u64),
    /// Since when answers have carried no header, and `admitted` then.
    pub(super) fresh_since: Option<(Instant, u64)>,
    /// When the last write was released (its scheduled slot).
    pub(super) last_slot: Option<Instant>,
    pub(super) paused_until: Option<Instant>,
}

impl State {
    /// The write rate allowed now.
    pub(super) fn write_rate(&self) -> f64 {
        rate_for(&self.settings, &self.writes, self.writes.zone)
    }

    /// `None`: a write may go now (and its slot is taken). `Some(t)`: ask again at `t`.
    pub(super) fn write_slot(&mut self, now: Instant) -> Option<Instant> {
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
    pub(super) fn write_quantum(&self) -> Duration {
        let slots = self.settings.write_release_slots;
        if slots <= 1 {
            return self.settings.release_quantum;
        }
        let gap = Duration::from_secs_f64(1.0 / self.write_rate());
        gap.saturating_mul(slots).max(self.settings.release_quantum)
    }

    /// A write the budget took, with the header it carried.
    pub(super) fn write_answered(&mut self, now: Instant, p: Option<f64>) {
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
    pub(super) fn write_throttled(&mut self, now: Instant) {
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
}

/// The write rate allowed on `zone`'s side of the target.
pub(super) fn rate_for(s: &PacingSettings, w: &Writes, zone: Zone) -> f64 {
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
