use super::*;
use reqwest::Method;

pub(super) fn ok(p: Option<f64>) -> Feedback {
    Feedback::Ok {
        limit_percentage: p,
        resource_units: Some(1.0),
    }
}

pub(super) fn post() -> CallKind {
    CallKind::of(
        &Method::POST,
        "https://graph.microsoft.com/beta/users/u@x.com/authentication/fido2Methods",
    )
}

pub(super) fn options() -> CallKind {
    CallKind::of(
        &Method::GET,
        "https://graph.microsoft.com/beta/users/u@x.com/authentication/fido2Methods/creationOptions(challengeTimeoutInMinutes=5)",
    )
}

fn list() -> CallKind {
    CallKind::of(&Method::GET, "https://graph.microsoft.com/v1.0/users")
}

fn throttled(secs: u64, budget: Option<Budget>) -> Feedback {
    Feedback::Throttled {
        retry_after: Some(Duration::from_secs(secs)),
        budget,
    }
}

#[tokio::test(start_paused = true)]
async fn requests_are_spaced_at_the_allowed_rate() {
    let pacer = Pacer::new(PacingSettings {
        units_per_sec: 10.0,
        burst: 0,
        ..PacingSettings::default()
    });
    let t0 = Instant::now();
    for _ in 0..11 {
        pacer.acquire(&list(), false).await;
    }
    // Nothing answered yet: 11 requests at the assumed 10/s, the 11th 1 s after the first.
    assert_eq!(Instant::now().duration_since(t0), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn requests_due_in_one_quantum_go_together_never_before_their_turn() {
    let quantum = Duration::from_millis(20);
    let pacer = Pacer::new(PacingSettings {
        units_per_sec: 200.0,
        burst: 0,
        release_quantum: quantum,
        ..PacingSettings::default()
    });
    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let pacer = pacer.clone();
        tasks.spawn(async move {
            pacer.acquire(&list(), false).await;
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
        release_quantum: Duration::from_millis(50),
        write_release_slots: 4,
        ..PacingSettings::default()
    });
    let t0 = Instant::now();
    let mut released = Vec::new();
    for _ in 0..13 {
        pacer.acquire(&post(), false).await;
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
        burst: 0,
        release_quantum: Duration::ZERO,
        write_release_slots: 0,
        ..PacingSettings::default()
    });
    let t0 = Instant::now();
    for _ in 0..11 {
        pacer.acquire(&post(), false).await;
    }
    assert_eq!(Instant::now().duration_since(t0), Duration::from_secs(1));
    // Past the target the rate drops to 90 % of the estimate: the next write waits 1/9 s.
    pacer.feedback(&post(), ok(Some(1.0)));
    let t1 = Instant::now();
    pacer.acquire(&post(), false).await;
    let gap = Instant::now().duration_since(t1);
    assert!(
        gap.abs_diff(Duration::from_secs_f64(1.0 / 9.0)) < Duration::from_millis(1),
        "{gap:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_resource_unit_429_pauses_every_clone_for_at_least_retry_after() {
    let pacer = Pacer::new(PacingSettings::default());
    let other = pacer.clone();
    pacer.feedback(&list(), throttled(3, Some(Budget::Units)));
    let t0 = Instant::now();
    other.acquire(&post(), true).await;
    assert!(Instant::now().duration_since(t0) >= Duration::from_secs(3));
    let st = pacer.stats();
    assert_eq!((st.throttled, st.units_throttled, st.retries), (1, 1, 1));
    assert!((st.units_estimate - 175.0).abs() < 1e-9, "halved from 350");
}

#[tokio::test(start_paused = true)]
async fn a_write_budget_429_pauses_writes_but_not_reads() {
    let pacer = Pacer::new(PacingSettings::default());
    let before = pacer.stats();
    pacer.feedback(&post(), throttled(2, Some(Budget::Writes)));
    let t0 = Instant::now();
    pacer.acquire(&list(), false).await;
    assert_eq!(Instant::now(), t0, "a read goes at once");
    pacer.acquire(&post(), true).await;
    assert!(Instant::now().duration_since(t0) >= Duration::from_secs(2));
    let st = pacer.stats();
    assert_eq!((st.throttled, st.write_throttled), (1, 1));
    assert_eq!(st.rate, before.rate, "the request rate is not cut");
    assert!(st.write_estimate < before.write_estimate);
}

#[tokio::test(start_paused = true)]
async fn a_sporadic_429_or_a_503_delays_nothing_else_and_lowers_the_rate_gently() {
    let pacer = Pacer::new(PacingSettings::default());
    for _ in 0..20 {
        pacer.feedback(&options(), ok(None));
    }
    let before = pacer.stats().rate;
    pacer.feedback(&options(), throttled(1, None));
    pacer.feedback(&options(), throttled(1, None));
    pacer.feedback(&post(), Feedback::Unavailable);
    let t0 = Instant::now();
    pacer.acquire(&options(), false).await;
    pacer.acquire(&post(), false).await;
    // At most a release quantum (50 ms), far from the Retry-After's second.
    assert!(
        Instant::now().duration_since(t0) <= Duration::from_millis(50),
        "no pause: only the answered request waits"
    );
    let st = pacer.stats();
    assert_eq!(
        (st.throttled, st.sporadic_throttled, st.unavailable),
        (2, 2, 1)
    );
    assert_eq!(st.paused_ms, 0);
    // Once a second at most per budget, by 10 %: the two 429s in a row are one cut.
    assert_eq!(st.slowdowns, 2);
    assert!(
        (st.rate - before * 0.9).abs() < 1e-6 * before,
        "{} → {}",
        before,
        st.rate
    );
}

#[tokio::test(start_paused = true)]
async fn a_bare_429_after_pressure_headers_is_the_budgets() {
    let pacer = Pacer::new(PacingSettings::default());
    pacer.feedback(&post(), ok(Some(0.9)));
    pacer.feedback(&post(), ok(Some(1.0)));
    pacer.feedback(&post(), throttled(2, None));
    assert_eq!(pacer.stats().write_throttled, 0, "at the target: sporadic");
    pacer.feedback(&post(), ok(Some(1.2)));
    pacer.feedback(&post(), throttled(2, None));
    let t0 = Instant::now();
    pacer.acquire(&list(), false).await;
    assert_eq!(Instant::now(), t0, "reads go on");
    pacer.acquire(&post(), true).await;
    assert!(Instant::now().duration_since(t0) >= Duration::from_secs(2));
    assert_eq!(pacer.stats().write_throttled, 1);
}

#[test]
fn a_pause_is_never_shortened_by_a_shorter_one() {
    let t0 = Instant::now();
    let mut s = State::new(PacingSettings::default(), t0);
    s.feedback(t0, &post(), throttled(5, Some(Budget::Writes)));
    s.feedback(t0, &post(), throttled(1, Some(Budget::Writes)));
    let settings = s.settings;
    assert_eq!(
        s.writes.slot(
            &settings,
            t0 + Duration::from_secs(2),
            1.0,
            0,
            Duration::ZERO
        ),
        Some(t0 + Duration::from_secs(5))
    );
    assert_eq!(s.stats.paused_ms, 5000);
}

#[test]
fn the_write_ceiling_is_never_exceeded() {
    let pacer = Pacer::new(PacingSettings {
        write_ceiling_per_sec: Some(20.0),
        ..PacingSettings::default()
    });
    assert_eq!(pacer.stats().write_rate, 20.0, "burst capped");
    for _ in 0..1000 {
        pacer.feedback(&post(), ok(None));
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
    s.feedback(t0, &post(), ok(None));
    assert!(
        s.write_rate() >= 200.0,
        "10 × 20/s or more while the bucket is fresh"
    );
    s.feedback(t0, &post(), ok(Some(0.8)));
    assert_eq!(s.write_rate(), 60.0, "approaching the target at 3 × 20/s");
    s.feedback(t0, &post(), ok(Some(1.0)));
    assert!((s.write_rate() - 18.0).abs() < 1e-9, "{}", s.write_rate());
    s.feedback(t0, &post(), ok(Some(0.9)));
    assert!((s.write_rate() - 22.0).abs() < 1e-9, "{}", s.write_rate());
    assert_eq!(s.stats().write_crossings, 2);
}

#[test]
fn with_nothing_pushing_back_the_rate_doubles_every_quarter_second_of_answers() {
    let t0 = Instant::now();
    let mut s = State::new(PacingSettings::default(), t0);
    s.feedback(t0, &list(), ok(None));
    let start = s.units.rate(&s.settings);
    assert!(
        (start / 3500.0 - 1.0).abs() < 0.01,
        "10 × the assumed 350 units/s: {start}"
    );
    // A quarter second of answers at the rate: twice the rate.
    let mut elapsed = 0.0;
    while elapsed < 0.25 {
        elapsed += 1.0 / s.units.rate(&s.settings);
        s.feedback(t0, &list(), ok(None));
    }
    let grown = s.units.rate(&s.settings);
    assert!((grown / start - 2.0).abs() < 0.05, "{start} → {grown}");
    // The same for writes, from 10 × 20/s.
    s.feedback(t0, &post(), ok(None));
    let mut elapsed = 0.0;
    while elapsed < 0.25 {
        elapsed += 1.0 / s.write_rate();
        s.feedback(t0, &post(), ok(None));
    }
    assert!(s.write_rate() > 1.9 * 200.0, "{}", s.write_rate());
    // A sporadic 429 takes 10 % off, and the answers after it make it up.
    let before = s.write_rate();
    s.feedback(t0, &post(), throttled(1, None));
    assert!((s.write_rate() - 0.9 * before).abs() < 1e-6 * before);
    for _ in 0..20 {
        s.feedback(t0, &post(), ok(None));
    }
    assert!(s.write_rate() > before);
}

#[test]
fn crossings_of_the_target_measure_the_refill_rate() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let mut s = State::new(PacingSettings::default(), t0);
    s.feedback(at(0), &post(), ok(Some(0.9)));
    s.feedback(at(0), &post(), ok(Some(1.0))); // crossing 1, after write 2
    // 8 s later, after write 102, back below the target: 100 writes in 8 s.
    for _ in 0..99 {
        s.feedback(at(4000), &post(), ok(Some(1.0)));
    }
    s.feedback(at(8000), &post(), ok(Some(0.9))); // crossing 2
    let est = s.writes.estimate;
    assert!((est - 100.0 / 8.0).abs() < 1e-9, "{est}");
}

#[test]
fn staying_on_the_wrong_side_moves_the_estimate() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let mut s = State::new(PacingSettings::default(), t0);
    s.feedback(at(0), &post(), ok(Some(0.9)));
    s.feedback(at(0), &post(), ok(Some(1.0)));
    s.feedback(at(2100), &post(), ok(Some(1.0)));
    assert!((s.writes.estimate - 18.0).abs() < 1e-9);
    // Below the target and writing as fast as allowed: the refill is faster than thought.
    s.feedback(at(2200), &post(), ok(Some(0.9)));
    let est = s.writes.estimate;
    for i in 1..=40 {
        s.feedback(at(2200 + i * 50), &post(), ok(Some(0.9)));
    }
    assert!((s.writes.estimate - est * 1.1).abs() < 1e-9);
    // Below the target with hardly any writes (no work): no conclusion.
    let est = s.writes.estimate;
    s.feedback(at(6500), &post(), ok(Some(0.9)));
    assert_eq!(s.writes.estimate, est);
}

#[tokio::test(start_paused = true)]
async fn a_get_whose_answers_carry_the_write_buckets_level_goes_through_the_write_gate() {
    let pacer = Pacer::new(PacingSettings::default());
    for _ in 0..3 {
        pacer.feedback(&post(), ok(Some(0.9)));
        pacer.feedback(&options(), ok(Some(0.9)));
    }
    assert_eq!(pacer.stats().kinds_on_write_budget, 2);
    // So a write-budget pause holds it back too, and a list of users still goes.
    pacer.feedback(&post(), throttled(2, Some(Budget::Writes)));
    let t0 = Instant::now();
    pacer.acquire(&list(), false).await;
    assert_eq!(Instant::now(), t0);
    pacer.acquire(&options(), false).await;
    assert!(Instant::now().duration_since(t0) >= Duration::from_secs(2));
}

#[test]
fn writes_into_a_small_bucket_go_one_at_a_time_once_its_size_shows() {
    // Answers 5 ms apart, each one write more: the header rises by 1 / size each time.
    let clump_after = |size: f64| {
        let settings = PacingSettings::default();
        let t0 = Instant::now();
        let mut s = State::new(settings, t0);
        for i in 0..20u32 {
            let level = 0.85 + f64::from(i) / size;
            s.feedback(
                t0 + Duration::from_millis(5 * u64::from(i)),
                &post(),
                ok(Some(level)),
            );
        }
        s.writes.clump(&settings, settings.write_release_slots)
    };
    // A cushion of 5: one at a time. Of 30: clumps of 10 at most, so the 8 wanted. Of 150: 8.
    assert_eq!(clump_after(100.0), 1);
    assert_eq!(clump_after(600.0), 8);
    assert_eq!(clump_after(3000.0), 8);
    // Before any size is known, the clumps wanted.
    let settings = PacingSettings::default();
    let s = State::new(settings, Instant::now());
    assert_eq!(s.writes.clump(&settings, 8), 8);
}
