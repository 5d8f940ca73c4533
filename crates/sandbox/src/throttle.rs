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
    /// Client → instant (sandbox clock, ms) before which it should not call again.
    not_before: HashMap<Uuid, i64>,
    /// Client → instant before which it should not write again (a write-budget 429 throttles
    /// writes only; reading meanwhile is fine).
    no_writes_before: HashMap<Uuid, i64>,
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

fn refill(b: &mut Bucket, capacity: f64, window_ms: u64, now: i64) {
    let rate = capacity / window_ms.max(1) as f64;
    let elapsed = (now - b.last_ms).max(0) as f64;
    b.tokens = (b.tokens + elapsed * rate).min(capacity);
    b.last_ms = now;
}

fn wait_secs(missing: f64, capacity: f64, window_ms: u64) -> u64 {
    let rate_per_ms = capacity / window_ms.max(1) as f64;
    ((missing / rate_per_ms) / 1000.0).ceil().max(1.0) as u64
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

fn scope(shared: &Shared, kind: &str, app: Uuid) -> String {
    format!("Tenant_Application/{kind}/{}/{app}", shared.tenant_id)
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

    let is_write = method != Method::GET && method != Method::HEAD;
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

    let throttled = |st: &mut ThrottleState, secs: u64, kind: &str, info: &str| {
        let until = now + secs as i64 * 1000;
        st.retry_not_before.insert(request_key.clone(), until);
        if kind == "WriteBudget" {
            st.no_writes_before.insert(app, until);
        } else {
            st.not_before.insert(app, until);
        }
        shared.stats.throttled.fetch_add(1, Ordering::Relaxed);
        SandboxError::Throttled {
            retry_after_secs: secs,
            scope: scope(shared, kind, app),
            information: info.into(),
        }
    };

    if knobs.throttle_every > 0 && n.is_multiple_of(knobs.throttle_every) {
        return Err(throttled(
            &mut st,
            knobs.retry_after_secs,
            "ReadWrite",
            "ResourceUnitLimitExceeded",
        ));
    }
    let passed_throttle_knob = Stats::inc(&shared.stats.not_throttled_by_knob);
    if knobs.fail_every > 0 && passed_throttle_knob.is_multiple_of(knobs.fail_every) {
        shared.stats.unavailable.fetch_add(1, Ordering::Relaxed);
        let until = now + knobs.retry_after_secs as i64 * 1000;
        st.not_before.insert(app, until);
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
    refill(&mut ru, ru_capacity, knobs.resource_unit_window_ms, now);
    let mut wb = *st.writes.entry(app).or_insert(Bucket {
        tokens: w_capacity,
        last_ms: now,
    });
    refill(&mut wb, w_capacity, knobs.write_window_ms, now);

    if ru.tokens < f64::from(units) {
        st.resource_units.insert(app, ru);
        let secs = wait_secs(
            f64::from(units) - ru.tokens,
            ru_capacity,
            knobs.resource_unit_window_ms,
        );
        return Err(throttled(
            &mut st,
            secs,
            "ReadWrite",
            "ResourceUnitLimitExceeded",
        ));
    }
    if is_write && wb.tokens < 1.0 {
        st.writes.insert(app, wb);
        shared
            .stats
            .write_budget_throttled
            .fetch_add(1, Ordering::Relaxed);
        let secs = wait_secs(1.0 - wb.tokens, w_capacity, knobs.write_window_ms);
        return Err(throttled(
            &mut st,
            secs,
            "WriteBudget",
            "WriteLimitExceeded",
        ));
    }
    ru.tokens -= f64::from(units);
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
            refill(&mut b, capacity, knobs.write_window_ms, now);
            (app.to_string(), b.tokens)
        })
        .collect()
}
