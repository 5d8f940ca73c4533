use super::*;

pub(super) fn ok(p: Option<f64>) -> Feedback {
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
