//! Throttling: the fault knobs (429 / 503 every Nth request) and Graph's identity-and-access
//! throttling model (<https://learn.microsoft.com/graph/throttling-limits#identity-and-access-service-limits>):
//! a token bucket of resource units per app + tenant (3,500 / 5,000 / 8,000 per 10 s for tenants of
//! < 50, 50–500, > 500 users; `GET users` costs 2, most requests 1) and a write budget (3,000
//! writes per 2.5 minutes per app + tenant). Answers carry `x-ms-resource-unit`, above 80 % of a
//! budget `x-ms-throttle-limit-percentage`, and a 429 carries `Retry-After`, `x-ms-throttle-scope`
//! and `x-ms-throttle-information`.
//!
//! The sandbox also remembers, per client, until when it was told to wait, and counts requests
//! that arrive earlier: a well-behaved client never retries before `Retry-After` has elapsed.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;

use axum::http::Method;
use uuid::Uuid;

use crate::errors::SandboxError;
use crate::state::{Shared, Stats};

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last_ms: i64,
}

#[derive(Debug, Default)]
pub(crate) struct ThrottleState {
    resource_units: HashMap<Uuid, Bucket>,
    writes: HashMap<Uuid, Bucket>,
    /// (client, "METHOD path") of each throttled request → instant before which sending that
    /// same request again is an early retry. Other requests that reach us inside the window
    /// were in flight before the client could read the 429, which no client can avoid; only a
    /// request re-sent too soon is what Microsoft's guidance forbids.
    retry_not_before: HashMap<(Uuid, String), i64>,
}

/// Headers for a request the model admitted.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Admitted {
    pub resource_units: u32,
    /// Highest fraction of a budget used, when above 0.8.
    pub limit_percentage: Option<f64>,
}

/// Refills `b` up to `now`, less what another client of the same app spends meanwhile
/// (`shared_per_sec`: it draws on the same bucket, so our share is what is left).
fn refill(b: &mut Bucket, capacity: f64, window_ms: u64, shared_per_sec: f64, now: i64) {
    let rate = capacity / window_ms.max(1) as f64 - shared_per_sec.max(0.0) / 1000.0;
    let elapsed = (now - b.last_ms).max(0) as f64;
    b.tokens = (b.tokens + elapsed * rate).clamp(0.0, capacity);
    b.last_ms = now;
}

/// Seconds until `missing` tokens have come in at `rate_per_ms` (what is left of the refill once
/// another client sharing the budget has taken its part), at least one.
fn wait_secs(missing: f64, rate_per_ms: f64) -> u64 {
    ((missing / rate_per_ms.max(1e-6)) / 1000.0)
        .ceil()
        .clamp(1.0, 3600.0) as u64
}

/// Resource-unit budget by tenant size, as published.
fn tenant_budget(users: usize) -> u32 {
    match users {
        0..50 => 3_500,
        50..=500 => 5_000,
        _ => 8_000,
    }
}

/// Cost of a request: listing users costs 2 resource units, most others 1.
fn cost(method: &Method, path: &str) -> u32 {
    let p = path.trim_end_matches('/');
    let list_users =
        p.ends_with("/users") || p.ends_with("/users/delta") || p.ends_with("/users/delta()");
    if method == Method::GET && list_users {
        2
    } else {
        1
    }
}

/// Which limit a budget 429 names in `x-ms-throttle-scope`
/// (`<Scope>/<Limit>/<ApplicationId>/<TenantId>`, Limit one of `Read`, `Write`, `ReadWrite`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    /// The resource-unit budget: every request draws on it.
    ReadWrite,
    /// The write budget.
    Write,
}

impl Limit {
    fn as_str(self) -> &'static str {
        match self {
            Limit::ReadWrite => "ReadWrite",
            Limit::Write => "Write",
        }
    }
}

fn scope(shared: &Shared, limit: Limit, app: Uuid) -> String {
    format!(
        "Tenant_Application/{}/{}/{app}",
        limit.as_str(),
        shared.tenant_id
    )
}

/// Whether a request draws on the write budget: every method but GET / HEAD, and
/// `creationOptions` (a GET that issues a challenge) when the knob says so — Microsoft does not
/// document which bucket that call draws on, so a client must not depend on either answer.
fn draws_on_writes(knobs: &crate::config::Knobs, method: &Method, path: &str) -> bool {
    let write_method = method != Method::GET && method != Method::HEAD;
    write_method
        || (knobs.creation_options_write
            && path
                .rsplit('/')
                .next()
                .is_some_and(|last| last.starts_with("creationOptions")))
}

/// Decides whether a Graph request from `app` is served. Called after authentication.
pub(crate) fn admit(
    shared: &Shared,
    app: Uuid,
    method: &Method,
    path: &str,
) -> Result<Admitted, SandboxError> {
    let knobs = shared.knobs();
    let n = Stats::inc(&shared.stats.graph_requests);
    let now = shared.clock.now_ms();
    let mut st = shared.throttle();

    let is_write = knobs.write_budget > 0 && draws_on_writes(&knobs, method, path);
    let request_key = (app, format!("{method} {path}"));
    let early = st
        .retry_not_before
        .get(&request_key)
        .is_some_and(|t| now < *t);
    st.retry_not_before.retain(|_, until| *until > now);
    if early {
        let mut early = shared
            .stats
            .early_retries
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *early.entry(app.to_string()).or_default() += 1;
    }

    // A budget 429 names its limit (scope and information headers); the fault knob's is bare,
    // like a sporadic 429 that no budget of the client's explains.
    let throttled = |st: &mut ThrottleState, secs: u64, limit: Option<Limit>| {
        let until = now + secs as i64 * 1000;
        st.retry_not_before.insert(request_key.clone(), until);
        shared.stats.throttled.fetch_add(1, Ordering::Relaxed);
        SandboxError::Throttled {
            retry_after_secs: secs,
            scope: limit.map(|l| scope(shared, l, app)),
            information: limit.map(|l| match l {
                Limit::ReadWrite => "ResourceUnitLimitExceeded".to_string(),
                Limit::Write => "WriteLimitExceeded".to_string(),
            }),
        }
    };

    if knobs.throttle_every > 0 && n.is_multiple_of(knobs.throttle_every) {
        return Err(throttled(&mut st, knobs.retry_after_secs, None));
    }
    let passed_throttle_knob = Stats::inc(&shared.stats.not_throttled_by_knob);
    if knobs.fail_every > 0 && passed_throttle_knob.is_multiple_of(knobs.fail_every) {
        shared.stats.unavailable.fetch_add(1, Ordering::Relaxed);
        let until = now + knobs.retry_after_secs as i64 * 1000;
        st.retry_not_before.insert(request_key, until);
        return Err(SandboxError::Unavailable {
            retry_after_secs: knobs.retry_after_secs,
        });
    }

    let units = cost(method, path);
    if !knobs.graph_throttling {
        return Ok(Admitted {
            resource_units: units,
            limit_percentage: None,
        });
    }
    let ru_capacity = f64::from(
        knobs
            .resource_units
            .unwrap_or_else(|| tenant_budget(shared.read().users.len())),
    );
    let w_capacity = f64::from(knobs.write_budget.max(1));

    let mut ru = *st.resource_units.entry(app).or_insert(Bucket {
        tokens: ru_capacity,
        last_ms: now,
    });
    refill(
        &mut ru,
        ru_capacity,
        knobs.resource_unit_window_ms,
        0.0,
        now,
    );
    let mut wb = *st.writes.entry(app).or_insert(Bucket {
        tokens: w_capacity,
        last_ms: now,
    });
    refill(
        &mut wb,
        w_capacity,
        knobs.write_window_ms,
        knobs.shared_writes_per_sec,
        now,
    );

    if ru.tokens < f64::from(units) {
        st.resource_units.insert(app, ru);
        let secs = wait_secs(
            f64::from(units) - ru.tokens,
            ru_capacity / knobs.resource_unit_window_ms.max(1) as f64,
        );
        return Err(throttled(&mut st, secs, Some(Limit::ReadWrite)));
    }
    if is_write && wb.tokens < 1.0 {
        st.writes.insert(app, wb);
        shared
            .stats
            .write_budget_throttled
            .fetch_add(1, Ordering::Relaxed);
        let net_rate =
            w_capacity / knobs.write_window_ms.max(1) as f64 - knobs.shared_writes_per_sec / 1000.0;
        let secs = wait_secs(1.0 - wb.tokens, net_rate);
        return Err(throttled(&mut st, secs, Some(Limit::Write)));
    }
    ru.tokens -= f64::from(units);
    shared
        .stats
        .units_admitted
        .fetch_add(u64::from(units), Ordering::Relaxed);
    if is_write {
        wb.tokens -= 1.0;
        shared.stats.writes_admitted.fetch_add(1, Ordering::Relaxed);
    }
    st.resource_units.insert(app, ru);
    st.writes.insert(app, wb);
    let used = (1.0 - ru.tokens / ru_capacity).max(if is_write {
        1.0 - wb.tokens / w_capacity
    } else {
        0.0
    });
    let limit_percentage = (used > 0.8).then_some(used.min(1.8));
    Ok(Admitted {
        resource_units: units,
        limit_percentage,
    })
}

/// Resource units left in each app's budget now (refilled up to the present).
pub(crate) fn units_left(shared: &Shared) -> BTreeMap<String, f64> {
    let knobs = shared.knobs();
    let now = shared.clock.now_ms();
    let capacity = f64::from(
        knobs
            .resource_units
            .unwrap_or_else(|| tenant_budget(shared.read().users.len())),
    );
    shared
        .throttle()
        .resource_units
        .iter()
        .map(|(app, b)| {
            let mut b = *b;
            refill(&mut b, capacity, knobs.resource_unit_window_ms, 0.0, now);
            (app.to_string(), b.tokens)
        })
        .collect()
}

/// Writes left in each app's write budget now (refilled up to the present), for
/// `/sandbox/state`: benchmarks sample it to see how a client spends the budget.
pub(crate) fn write_budget_left(shared: &Shared) -> BTreeMap<String, f64> {
    let knobs = shared.knobs();
    let now = shared.clock.now_ms();
    let capacity = f64::from(knobs.write_budget.max(1));
    shared
        .throttle()
        .writes
        .iter()
        .map(|(app, b)| {
            let mut b = *b;
            refill(
                &mut b,
                capacity,
                knobs.write_window_ms,
                knobs.shared_writes_per_sec,
                now,
            );
            (app.to_string(), b.tokens)
        })
        .collect()
}
