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
    // A sporadic 429: no budget of the client's is named.
    assert_eq!(header(&r, "x-ms-throttle-scope"), None);
    assert_eq!(header(&r, "x-ms-throttle-information"), None);
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
    assert!(header(&r, "x-ms-throttle-scope").is_some_and(|s| s
        == format!(
            "Tenant_Application/Write/{}/{}",
            behalf_sandbox::TENANT_ID,
            env.sb.client_id()
        )));
    assert_eq!(
        header(&r, "x-ms-throttle-information").as_deref(),
        Some("WriteLimitExceeded")
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

/// The write budget's level, as the sandbox reports it, for the one app that has used it.
async fn writes_left(env: &Env) -> f64 {
    let st = env.state().await;
    let left = st["writeBudgetLeft"].as_object().expect("writeBudgetLeft");
    left.values()
        .next()
        .and_then(|v| v.as_f64())
        .expect("a level")
}

#[tokio::test]
async fn creation_options_draws_on_the_write_budget_only_when_the_knob_says_so() {
    let env = start(10).await;
    env.admin(
        Method::PATCH,
        "/sandbox/knobs",
        json!({"writeBudget": 100, "writeWindowMs": 3_600_000}),
    )
    .await;
    let user = env.sb.admin_upn();
    let options = format!(
        "/beta/users/{user}/authentication/fido2Methods/creationOptions(challengeTimeoutInMinutes=5)"
    );
    assert_eq!(env.get(&options).await.status(), 200);
    assert!(writes_left(&env).await > 99.9, "a read by default");
    env.admin(
        Method::PATCH,
        "/sandbox/knobs",
        json!({"creationOptionsWrite": true}),
    )
    .await;
    assert_eq!(env.get(&options).await.status(), 200);
    let left = writes_left(&env).await;
    assert!((98.9..99.1).contains(&left), "one write drawn: {left}");
}

#[tokio::test]
async fn another_client_sharing_the_budget_leaves_only_the_rest_of_its_refill() {
    let env = start(10).await;
    // 10 writes per 10 s (1/s), of which the other client takes 0.5/s.
    env.admin(
        Method::PATCH,
        "/sandbox/knobs",
        json!({"writeBudget": 10, "writeWindowMs": 10_000, "sharedWritesPerSec": 0.5}),
    )
    .await;
    let admin = env.sb.admin_upn();
    let path = format!("/v1.0/users/{admin}");
    let patch = |i: u32| {
        let body = json!({"jobTitle": format!("t{i}")});
        env.send(Method::PATCH, &path, Some(body))
    };
    assert_eq!(patch(0).await.status(), 204);
    env.advance(4).await;
    // 9 left + 4 s × (1 − 0.5)/s = 11, capped at 10.
    let left = writes_left(&env).await;
    assert!((9.9..10.1).contains(&left), "{left}");
    for i in 1..=10 {
        assert_eq!(patch(i).await.status(), 204, "write {i}");
    }
    let r = patch(11).await;
    // Two seconds to refill one write at the 0.5/s left to us.
    assert_eq!(header(&r, "retry-after").as_deref(), Some("2"));
    assert_graph_error(r, 429, "TooManyRequests").await;
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
    let st = env.state().await;
    assert_eq!(st["unitsAdmitted"], 10);
    let left = st["resourceUnitsLeft"]
        .as_object()
        .expect("resourceUnitsLeft");
    assert!(
        left.values().all(|v| v.as_f64().is_some_and(|l| l < 0.1)),
        "{st}"
    );
    let r = env.get("/v1.0/users?$top=1").await;
    assert!(header(&r, "x-ms-throttle-information").is_some_and(|s| s.contains("ResourceUnit")));
    assert!(header(&r, "x-ms-throttle-scope").is_some_and(|s| s.contains("/ReadWrite/")));
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

#[tokio::test]
async fn a_write_whose_answer_is_lost_was_made_all_the_same() {
    let env = start(1).await;
    env.admin(
        Method::PATCH,
        "/sandbox/knobs",
        json!({"dropAnswerEvery": 1}),
    )
    .await;
    // Reads are answered; a write is carried out and its answer lost.
    assert_eq!(env.get("/v1.0/users?$top=1").await.status(), 200);
    let body = json!({"accountEnabled": true, "displayName": "Lost", "mailNickname": "lost",
        "userPrincipalName": "lost@contoso.example", "passwordProfile": {"password": "Xy!12345678"}});
    let sent = env
        .http
        .post(env.url("/v1.0/users"))
        .bearer_auth(&env.token)
        .json(&body)
        .send()
        .await;
    assert!(sent.is_err(), "no answer: {sent:?}");
    assert_eq!(
        env.get("/v1.0/users/lost@contoso.example").await.status(),
        200,
        "the user was created"
    );
    assert_eq!(env.state().await["answersDropped"], 1);
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
