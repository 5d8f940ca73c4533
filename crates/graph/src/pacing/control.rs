//! One budget's controller: a token bucket kept at the target mark of
//! `x-ms-throttle-limit-percentage` (see the module documentation of `pacing`). The pacer has
//! two: the resource units every request draws on, and the write budget.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::PacingSettings;
use super::capacity::Capacity;

/// Where a bucket stands relative to the target, as the last answer that drew on it said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Zone {
    /// Nothing answered yet: the bucket may be full or empty (right after another run).
    Unknown,
    /// No pressure header (more than 20 % left).
    Fresh,
    /// A header below the target.
    Below,
    /// A header at or above the target.
    Above,
}

/// A bucket's controller. Amounts are in the bucket's unit: writes, or resource units.
#[derive(Debug)]
pub(super) struct Control {
    /// The refill rate as measured (units/s).
    pub(super) estimate: f64,
    pub(super) zone: Zone,
    /// Whether the target has been crossed since the last long fresh period: until then, burst.
    pub(super) anchored: bool,
    /// What the bucket took from us: draws answered with anything but 429 / 5xx / nothing.
    pub(super) admitted: f64,
    /// Recent crossings of the target: (when, `admitted` then), oldest first.
    crossings: VecDeque<(Instant, f64)>,
    /// Start of the current probe interval: (when, `admitted` then).
    probe_from: (Instant, f64),
    /// Since when answers have carried no header, and `admitted` then.
    fresh_since: Option<(Instant, f64)>,
    /// While no header comes back, the rate grows from the burst rate (slow start: it doubles
    /// each `fresh_doubling` of answers at the rate), so that nothing but the latency holds back
    /// a client that nothing pushes back on. 0 outside of a fresh period (the burst rate).
    fresh_rate: f64,
    /// When the last draw was released (its scheduled slot), for a gated bucket.
    pub(super) last_slot: Option<Instant>,
    pub(super) paused_until: Option<Instant>,
    /// The last gentle cut (a sporadic 429 or 503), so that a run of them is one lesson a second.
    last_gentle_cut: Option<Instant>,
    /// Hard ceiling (units/s), whatever the feedback says.
    pub(super) ceiling: Option<f64>,
    /// Times the header crossed the target.
    pub(super) crossings_seen: u64,
    /// The last header (0 when the last answer had none).
    last_level: f64,
    /// Probe intervals in a row below the target that raised the estimate.
    raises: u32,
    /// The bucket's size, as the headers show it.
    capacity: Capacity,
    /// Below the target, spend what the bucket holds beyond the cushion (`spare_rate`). The
    /// write budget's controller does; the resource units' does not: every request draws on
    /// them, with up to the caller's concurrency in flight, and against the sandbox at 64 × 50
    /// ms it used 94.7–95.1 % of the budget with it where it used 95.3–95.4 % without.
    pub(super) spends_spare: bool,
}

/// How far behind `now` a bucket's schedule may lag, so that the slots missed meanwhile go at
/// once: `banked` slots, and never less than one release `quantum`. Requests are released a
/// quantum's worth at a time anyway; with less than a quantum banked, a clump of answers coming
/// back together (the last release's) would find its slots just past `now` and wait for the end
/// of the next quantum, adding up to a quantum to every round trip of a client that no budget
/// holds back: at 64 workers and 50 ms, a third of the latency limit instead of all of it.
fn banked_allowance(gap: Duration, banked: u32, quantum: Duration) -> Duration {
    gap.saturating_mul(banked).max(quantum)
}

impl Control {
    pub(super) fn new(estimate: f64, s: &PacingSettings, now: Instant) -> Control {
        Control {
            estimate: estimate.clamp(s.min_rate, s.max_rate),
            zone: Zone::Unknown,
            anchored: false,
            admitted: 0.0,
            crossings: VecDeque::new(),
            probe_from: (now, 0.0),
            fresh_since: None,
            fresh_rate: 0.0,
            last_slot: None,
            paused_until: None,
            last_gentle_cut: None,
            ceiling: None,
            crossings_seen: 0,
            last_level: 0.0,
            raises: 0,
            capacity: Capacity::default(),
            spends_spare: false,
        }
    }

    /// The rate allowed now (units/s).
    pub(super) fn rate(&self, s: &PacingSettings) -> f64 {
        self.rate_in(s, self.zone)
    }

    /// The rate allowed on `zone`'s side of the target.
    fn rate_in(&self, s: &PacingSettings, zone: Zone) -> f64 {
        let factor = match zone {
            // One draw at the assumed rate tells where the bucket stands before the burst.
            Zone::Unknown => 1.0,
            Zone::Fresh => s.burst_factor,
            Zone::Below if !self.anchored => s.approach_factor,
            Zone::Below => 1.0 + s.dither,
            Zone::Above => 1.0 - s.dither,
        };
        let mut rate = self.estimate * factor;
        if zone == Zone::Below && self.anchored && self.spends_spare {
            rate += self.spare_rate(s);
        }
        if zone == Zone::Fresh && self.fresh_rate > 0.0 {
            rate = self.fresh_rate;
        }
        let ceiling = self.ceiling.unwrap_or(s.max_rate).min(s.max_rate);
        rate.clamp(s.min_rate.min(ceiling), ceiling)
    }

    /// Below the target, what the bucket holds above the cushion, spent over a
    /// `probe_interval` (units/s), at most the estimate again.
    ///
    /// Between crossings the estimate moves by steps a probe interval apart, which is slow
    /// when the refill left to us grows at once: when another client sharing the budget stops,
    /// the level falls while the estimate still says our old share, and what the bucket holds
    /// beyond the cushion is spent only after several raises, or never if the run ends first
    /// (the benchmark's two processes: 93 % of the budget used). The level says how much is
    /// there as soon as it falls; with the bucket's size known, it is spent in proportion. It
    /// vanishes at the target, so the turn there is as before; with no size measured (a
    /// header too coarse to show one) it is nothing, and the pacer is as before.
    fn spare_rate(&self, s: &PacingSettings) -> f64 {
        let Some(size) = self.capacity.size() else {
            return 0.0;
        };
        let below = (s.target - self.last_level).max(0.0);
        (below * size / s.probe_interval.as_secs_f64().max(1e-3)).min(self.estimate)
    }

    /// How many draws may be released together, of `wanted`: a clump spends at most a third of
    /// the cushion kept under the target (5 % of the bucket), so that a clump released just as
    /// the level reaches the target does not empty the bucket. A third of the cushion is 50
    /// draws of Graph's 3,000 (so `wanted` goes), 10 of 600 and one of 100 (a cushion of 5,
    /// where clumps of 8 now and then found the bucket empty): a small bucket is drawn on one
    /// request at a time. `wanted` while the size is not known.
    pub(super) fn clump(&self, s: &PacingSettings, wanted: u32) -> u32 {
        match self.capacity.size() {
            Some(size) => {
                let third = (size * (1.0 - s.target) / 3.0).floor();
                // In range after the clamp: the cast saturates.
                (third.clamp(1.0, f64::from(wanted.max(1)))) as u32
            }
            None => wanted,
        }
    }

    /// `None`: a draw of `cost` may go now (its slot is taken). `Some(t)`: ask again at `t`.
    /// An idle or late client may use at once the slots it missed in `banked` slots or in
    /// `quantum`, whichever is longer (see [`banked_allowance`]).
    pub(super) fn slot(
        &mut self,
        s: &PacingSettings,
        now: Instant,
        cost: f64,
        banked: u32,
        quantum: Duration,
    ) -> Option<Instant> {
        if let Some(until) = self.paused_until.filter(|t| *t > now) {
            return Some(until);
        }
        let gap = Duration::from_secs_f64(cost.max(0.01) / self.rate(s));
        let due = self.last_slot.map_or(now, |last| last + gap);
        if due > now {
            return Some(due);
        }
        // Late (a timer fires a little after its instant, or a clump is released) or idle: keep
        // the schedule, but bank no more than `banked` missed slots.
        let allowance = banked_allowance(gap, banked, quantum);
        self.last_slot = Some(due.max(now.checked_sub(allowance).unwrap_or(now)));
        None
    }

    /// Reserves the next slot for a draw of `cost` and returns it (an ungated bucket: every
    /// caller gets its own slot at once, and waits for it).
    pub(super) fn reserve(
        &mut self,
        s: &PacingSettings,
        now: Instant,
        cost: f64,
        banked: u32,
        quantum: Duration,
    ) -> Instant {
        let gap = Duration::from_secs_f64(cost.max(0.01) / self.rate(s));
        let allowance = banked_allowance(gap, banked, quantum);
        let next = self.last_slot.unwrap_or(now);
        let slot = next.max(now.checked_sub(allowance).unwrap_or(now));
        self.last_slot = Some(slot + gap);
        slot
    }

    /// A draw of `cost` the bucket took, with the header it carried.
    pub(super) fn answered(&mut self, s: &PacingSettings, now: Instant, p: Option<f64>, cost: f64) {
        self.admitted += cost;
        self.last_level = p.unwrap_or(0.0);
        self.capacity.answered(now, p, self.admitted, self.estimate);
        let zone = match p {
            None => Zone::Fresh,
            Some(p) if p >= s.target => Zone::Above,
            Some(_) => Zone::Below,
        };
        if zone == Zone::Fresh {
            // Slow start: at one answer per slot the rate doubles every `fresh_doubling`.
            let rate = self.rate_in(s, Zone::Fresh);
            let per_answer = cost / (rate * s.fresh_doubling.as_secs_f64().max(1e-3));
            self.fresh_rate = (rate * 2f64.powf(per_answer)).min(s.max_rate);
            let (since, n_since) = *self.fresh_since.get_or_insert((now, self.admitted));
            let long = now.duration_since(since);
            if long >= s.fresh_reset {
                // The bucket may have reached its cap, where refill is lost: the count of draws
                // since an old crossing no longer tells the refill rate, and the next approach to
                // the target is a fresh burst.
                self.anchored = false;
                self.crossings.clear();
            }
            if long >= s.fresh_probe {
                let burst = self.estimate * s.burst_factor;
                if self.admitted - n_since >= 0.8 * burst * long.as_secs_f64() {
                    self.estimate = (self.estimate * 1.5).min(s.max_rate);
                }
                self.fresh_since = Some((now, self.admitted));
            }
        } else {
            self.fresh_since = None;
            self.fresh_rate = 0.0;
        }
        // Only a step between the two sides of the target is a crossing at a known instant (from
        // or to "no header" the bucket went through the target unseen, e.g. while idle).
        let crossed = matches!(
            (self.zone, zone),
            (Zone::Below, Zone::Above) | (Zone::Above, Zone::Below)
        );
        let side_changed = (self.zone == Zone::Above) != (zone == Zone::Above);
        self.zone = zone;
        if crossed {
            self.crossings_seen += 1;
            self.anchored = true;
            while self
                .crossings
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > s.sample_horizon)
            {
                self.crossings.pop_front();
            }
            if let Some(&(t0, n0)) = self.crossings.front() {
                let span = now.duration_since(t0);
                if span >= s.sample_min {
                    // Same level at both crossings: what came in is exactly what we took.
                    let measured = (self.admitted - n0) / span.as_secs_f64();
                    self.estimate = measured.clamp(s.min_rate, s.max_rate);
                }
            }
            if self.crossings.len() >= 1024 {
                self.crossings.pop_front();
            }
            self.crossings.push_back((now, self.admitted));
        }
        if side_changed || !self.anchored {
            // A new side, or the first approach to the target (a burst: nothing to probe).
            self.probe_from = (now, self.admitted);
            self.raises = 0;
            return;
        }
        if zone == Zone::Fresh {
            // Between "0.8" and no header: still the same side; judge at the next header.
            return;
        }
        let (from, n_from) = self.probe_from;
        let interval = now.duration_since(from);
        if interval < s.probe_interval {
            return;
        }
        match zone {
            // Still short of the target after a whole interval of drawing slower than the
            // estimate: the estimate is too high.
            Zone::Above => {
                self.estimate = (self.estimate * (1.0 - s.dither)).max(s.min_rate);
                self.raises = 0;
            }
            // Still above the target after an interval of drawing faster than the estimate
            // (unless we had too little work to draw that fast): the estimate is too low. Each
            // interval in a row that says so doubles the step (10 %, 20 %, 40 %, 80 %): a client
            // sharing the budget that stops leaves its part to take up, and at 10 % an interval
            // twice the rate took 15 s to reach while the bucket filled unused.
            _ => {
                let slowest = self.estimate * (1.0 + s.dither) * interval.as_secs_f64();
                if self.admitted - n_from >= 0.8 * slowest {
                    let step = s.dither * f64::from(1u32 << self.raises.min(3));
                    self.estimate = (self.estimate * (1.0 + step)).min(s.max_rate);
                    self.raises += 1;
                }
            }
        }
        self.probe_from = (now, self.admitted);
    }

    /// A draw whose answer says nothing of this bucket's level (its header is another
    /// budget's): it counts in what the bucket took.
    pub(super) fn drawn(&mut self, cost: f64) {
        self.admitted += cost;
    }

    /// A 429 of this budget: the bucket is empty.
    pub(super) fn throttled(&mut self, s: &PacingSettings, now: Instant) {
        // The draws in flight when the bucket ran dry come back 429 together: one lesson.
        let new_episode = self.paused_until.is_none_or(|t| t <= now);
        if new_episode {
            self.estimate = (self.estimate * s.throttled_factor).max(s.min_rate);
        }
        self.zone = Zone::Above;
        self.anchored = true;
        self.fresh_rate = 0.0;
        self.probe_from = (now, self.admitted);
    }

    /// A sporadic 429 or a 503 on a draw of this bucket: lower the rate gently (at most once per
    /// `decrease_interval`), not as if the budget were spent. Not while hovering at the target:
    /// the rate there is the measured refill rate, which such an answer says nothing about.
    pub(super) fn gentle_cut(&mut self, s: &PacingSettings, now: Instant) -> bool {
        let may = self
            .last_gentle_cut
            .is_none_or(|t| now.duration_since(t) >= s.decrease_interval);
        if !may || self.anchored {
            return false;
        }
        self.last_gentle_cut = Some(now);
        if self.zone == Zone::Fresh {
            // The slow start's rate, not the estimate: it grows back as answers come.
            self.fresh_rate = self.rate(s) * s.decrease_factor;
        } else {
            self.estimate = (self.estimate * s.decrease_factor).max(s.min_rate);
        }
        true
    }

    /// Pauses the draws on this bucket until `now + d` (never shortens a pause); the time
    /// added, in ms.
    pub(super) fn pause(&mut self, now: Instant, d: Duration) -> u64 {
        let until = now + d;
        match self.paused_until {
            Some(t) if t >= until => 0,
            current => {
                let from = current.filter(|t| *t > now).unwrap_or(now);
                self.paused_until = Some(until);
                until.duration_since(from).as_millis() as u64
            }
        }
    }

    /// Whether the last answer said the bucket is past its limit (more than 1.0: Graph's
    /// header goes up to 1.8): a 429 that names no budget after it is this budget's. Not at
    /// the target: answers there read 0.9–1.0 all the time, and taking a sporadic 429 for the
    /// budget's would stop the budget for nothing.
    pub(super) fn pressed(&self) -> bool {
        self.last_level > 1.0
    }
}
