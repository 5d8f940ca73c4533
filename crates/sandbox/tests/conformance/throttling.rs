//! Fault knobs and Graph's throttling model; early retries are recorded.

use reqwest::Method;
use serde_json::json;

use crate::common::*;

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

#[tokio::test]
async fn throttle_knob_sends_retry_after_and_records_early_retries() {
    let env = start(10).await;
    env.admin(
        Method::PATCH,
        "/sandbox/knobs",
        json!({"throttleEvery": 3, "retryAfterSecs": 7}),
    )
    .await;
    assert_eq!(env.get("/v1.0/users?$top=1").await.status(), 200);
    assert_eq!(env.get("/v1.0/users?$top=1").await.status(), 200);
    let r = env.get("/v1.0/users?$top=1").await;
    assert_eq!(header(&r, "retry-after").as_deref(), Some("7"));
    assert!(
        header(&r, "x-ms-throttle-scope").is_some_and(|s| s.starts_with("Tenant_Application/"))
    );
    assert!(header(&r, "x-ms-throttle-information").is_some());
    assert_graph_error(r, 429, "TooManyRequests").await;
    let client = env.sb.client_id().to_string();
    assert_eq!(env.state().await["earlyRetriesByClient"].get(&client), None);
    // Retrying at once is an early retry, and is recorded against the client.
    env.get("/v1.0/users?$top=1").await;
    let st = env.state().await;
    assert_eq!(st["earlyRetriesByClient"][&client], 1);
    assert_eq!(st["throttled429"], 1);
    // Waiting the full Retry-After is not.
    env.advance(7).await;
    env.get("/v1.0/users?$top=1").await;
    assert_eq!(env.state().await["earlyRetriesByClient"][&client], 1);
}

#[tokio::test]
async fn write_budget_throttles_writes_with_graph_headers() {
    let env = start(10).await;
    env.admin(
        Method::PATCH,
        "/sandbox/knobs",
        json!({"writeBudget": 5, "writeWindowMs": 60_000}),
    )
    .await;
    let admin = env.sb.admin_upn();
    let mut last = None;
    for i in 0..5 {
        let r = env
            .send(
                Method::PATCH,
                &format!("/v1.0/users/{admin}"),
                Some(json!({"jobTitle": format!("t{i}")})),
            )
            .await;
        assert_eq!(r.status(), 204, "write {i}");
        assert_eq!(header(&r, "x-ms-resource-unit").as_deref(), Some("1"));
        last = Some(r);
    }
    let pct = last
        .as_ref()
        .and_then(|r| header(r, "x-ms-throttle-limit-percentage"));
    assert!(
        pct.and_then(|p| p.parse::<f64>().ok())
            .is_some_and(|p| (0.8..=1.8).contains(&p))
    );
    let r = env
        .send(
            Method::PATCH,
            &format!("/v1.0/users/{admin}"),
            Some(json!({"jobTitle": "over"})),
        )
        .await;
    let retry: u64 = header(&r, "retry-after")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    assert!((1..=12).contains(&retry), "retry-after {retry}");
    assert!(
        header(&r, "x-ms-throttle-scope").is_some_and(
            |s| s.contains("WriteBudget") && s.ends_with(&env.sb.client_id().to_string())
        )
    );
    assert_graph_error(r, 429, "TooManyRequests").await;
    // Reads are not writes: still served.
    assert_eq!(env.get(&format!("/v1.0/users/{admin}")).await.status(), 200);
    // After Retry-After the budget has refilled enough for one more write.
    env.advance(retry as i64).await;
    let r = env
        .send(
            Method::PATCH,
            &format!("/v1.0/users/{admin}"),
            Some(json!({"jobTitle": "later"})),
        )
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(env.state().await["earlyRetries"], 0);
}

#[tokio::test]
async fn resource_units_listing_users_costs_two() {
    let env = start(10).await;
    env.admin(
        Method::PATCH,
        "/sandbox/knobs",
        json!({"resourceUnits": 10, "resourceUnitWindowMs": 10_000}),
    )
    .await;
    for _ in 0..5 {
        let r = env.get("/v1.0/users?$top=1").await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-ms-resource-unit").as_deref(), Some("2"));
    }
    let r = env.get("/v1.0/users?$top=1").await;
    assert!(header(&r, "x-ms-throttle-information").is_some_and(|s| s.contains("ResourceUnit")));
    assert_graph_error(r, 429, "TooManyRequests").await;
}

#[tokio::test]
async fn fail_and_drop_knobs() {
    let env = start(10).await;
    env.admin(Method::PATCH, "/sandbox/knobs", json!({"failEvery": 2}))
        .await;
    assert_eq!(env.get("/v1.0/users?$top=1").await.status(), 200);
    let r = env.get("/v1.0/users?$top=1").await;
    assert!(header(&r, "retry-after").is_some());
    assert_graph_error(r, 503, "serviceNotAvailable").await;
    env.admin(
        Method::PATCH,
        "/sandbox/knobs",
        json!({"failEvery": 0, "dropEvery": 2}),
    )
    .await;
    // Counting starts with the requests already seen; find the dropped one among two tries.
    let mut outcomes = Vec::new();
    for _ in 0..2 {
        let r = env
            .http
            .get(env.url("/v1.0/users?$top=1"))
            .bearer_auth(&env.token)
            .send()
            .await;
        outcomes.push(r.is_ok());
    }
    assert_eq!(
        outcomes.iter().filter(|ok| !**ok).count(),
        1,
        "exactly one connection dropped: {outcomes:?}"
    );
    assert_eq!(env.state().await["dropped"], 1);
}

/// "429 every 10th, 503 every 50th": the two knobs count separately, so both faults happen even
/// though every 50th request is also a 10th.
#[tokio::test]
async fn throttle_and_fail_knobs_both_fire_when_their_periods_share_multiples() {
    let env = start(10).await;
    env.admin(
        Method::PATCH,
        "/sandbox/knobs",
        json!({"throttleEvery": 10, "failEvery": 50, "retryAfterSecs": 1}),
    )
    .await;
    let mut statuses = std::collections::BTreeMap::<u16, u32>::new();
    for _ in 0..500 {
        let r = env.get("/v1.0/users?$top=1").await;
        *statuses.entry(r.status().as_u16()).or_default() += 1;
        // Wait out any Retry-After so no request counts as an early retry.
        env.advance(1).await;
    }
    // 500 requests: 50 are answered 429; of the 450 others, every 50th (9) is answered 503.
    assert_eq!(statuses.get(&429), Some(&50), "{statuses:?}");
    assert_eq!(statuses.get(&503), Some(&9), "{statuses:?}");
    assert_eq!(statuses.get(&200), Some(&441), "{statuses:?}");
    assert_eq!(env.state().await["earlyRetries"], 0);
}
