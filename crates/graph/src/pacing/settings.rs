//! The pacer's knobs.

use std::time::Duration;

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
