//! The pacer's knobs.

use std::time::Duration;

/// Knobs of the pacer. The defaults suit a single app against Graph's published budgets; the
/// controllers measure the budgets they meet, so other sizes and windows need no other knobs.
#[derive(Debug, Clone, Copy)]
pub struct PacingSettings {
    /// Lowest and highest rate either controller allows (units/s).
    pub min_rate: f64,
    pub max_rate: f64,
    /// The resource-unit budget's refill rate assumed until it is measured (units/s). Graph
    /// publishes 3,500 / 5,000 / 8,000 per 10 s per app + tenant by tenant size: the smallest.
    pub units_per_sec: f64,
    /// The write budget's refill rate assumed until it is measured (writes/s). Graph publishes
    /// 3,000 writes per 150 s per app + tenant, i.e. 20/s.
    pub write_budget_per_sec: f64,
    /// Hard ceiling on writes per second, whatever the feedback says.
    pub write_ceiling_per_sec: Option<f64>,
    /// Factor applied to a budget's estimate on a 429 of that budget (the bucket is empty: back
    /// off hard; the next crossing of the target measures the rate again).
    pub throttled_factor: f64,
    /// Factor applied on a sporadic 429 (one no budget explains) or a 503: gently.
    pub decrease_factor: f64,
    /// Minimum time between two gentle cuts of one budget.
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
    /// keeps in the bucket (5 %: 150 of Graph's 3,000), at the same rate over time; in a bucket
    /// whose size the headers show to be small, fewer (at most a third of the cushion: one
    /// write at a time in a bucket of 100, whose cushion is 5).
    pub write_release_slots: u32,
    /// A bucket's level to hover at, as `x-ms-throttle-limit-percentage` (fraction used).
    pub target: f64,
    /// Until the first pressure header, a budget is drawn on this many times faster than its
    /// estimate, and faster still as answers keep coming back without one (`fresh_doubling`).
    pub burst_factor: f64,
    /// While no pressure header comes back, the rate doubles with each this long of answers at
    /// the rate (slow start): the latency limit is reached in a few of them.
    pub fresh_doubling: Duration,
    /// From the first pressure header (80 % used) to the target, a budget is drawn on this many
    /// times faster than its estimate: the last stretch at a pace the turn at the target can stop
    /// within the cushion, however small the bucket.
    pub approach_factor: f64,
    /// Relative deviation from the refill rate while hovering (0.1: ±10 %), and the step by which
    /// the estimate moves when a probe interval passes on the wrong side of the target.
    pub dither: f64,
    /// How long a bucket may stay on one side of the target before the estimate is moved.
    pub probe_interval: Duration,
    /// Two crossings of the target less than this apart give no measurement (too noisy).
    pub sample_min: Duration,
    /// Crossings older than this are forgotten, so that the measurement follows a changing rate.
    pub sample_horizon: Duration,
    /// After this long with no pressure header the bucket may have filled up to its cap (where
    /// refill is lost), so crossings before it no longer measure the refill rate.
    pub fresh_reset: Duration,
    /// With no pressure header for this long while drawing as fast as allowed, the estimate is
    /// raised by half: a bucket that the burst does not dent refills faster than assumed.
    pub fresh_probe: Duration,
}

impl Default for PacingSettings {
    fn default() -> Self {
        PacingSettings {
            min_rate: 0.5,
            max_rate: 20_000.0,
            units_per_sec: 350.0,
            write_budget_per_sec: 20.0,
            write_ceiling_per_sec: None,
            throttled_factor: 0.5,
            decrease_factor: 0.9,
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
            target: 0.95,
            // The overshoot at the turn is the draws in flight (bounded by the caller's
            // concurrency), not the burst rate.
            burst_factor: 10.0,
            fresh_doubling: Duration::from_millis(250),
            approach_factor: 3.0,
            dither: 0.1,
            probe_interval: Duration::from_secs(2),
            sample_min: Duration::from_secs(5),
            sample_horizon: Duration::from_secs(30),
            fresh_reset: Duration::from_secs(10),
            // The burst (10 × the assumed rate) draws a full published budget down to the 80 %
            // mark in 14 s when the assumption holds.
            fresh_probe: Duration::from_secs(20),
        }
    }
}
