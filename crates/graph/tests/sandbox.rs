//! The client against the in-process sandbox tenant, over HTTP.

use std::time::Duration;

use behalf_domain::Secret;
use behalf_graph::{
    ApiVersion, Credential, DeleteOutcome, GraphClient, GraphSettings, PacingSettings, RetryPolicy,
};
use behalf_sandbox::{Knobs, Sandbox, SandboxConfig};
use serde_json::{Value, json};

async fn sandbox(users: usize, knobs: Knobs) -> Sandbox {
    Sandbox::start(SandboxConfig {
        users,
        knobs,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

fn settings(s: &Sandbox, version: ApiVersion) -> GraphSettings {
    let mut g = GraphSettings::new(
        s.tenant_id().to_string(),
        Credential::ClientSecret {
            client_id: s.client_id().to_string(),
            secret: Secret::new(s.client_secret()),
        },
    )
    .with_endpoints(s.graph_url(), s.login_url());
    g.api_version = version;
    g
}

fn client(s: &Sandbox, version: ApiVersion) -> GraphClient {
    GraphClient::new(settings(s, version)).expect("client")
}

async fn sandbox_state(s: &Sandbox) -> Value {
    reqwest::get(format!("{}/sandbox/state", s.base_url()))
        .await
        .expect("state")
        .json()
        .await
        .expect("json")
}

async fn second_user(g: &GraphClient) -> String {
    let page = g.users_page(None).await.expect("users");
    page.value[1].user_principal_name.clone().expect("upn")
}

#[tokio::test]
async fn creation_options_then_list_methods_round_trip() {
    let s = sandbox(10, Knobs::default()).await;
    for version in [ApiVersion::Beta, ApiVersion::V1] {
        let g = client(&s, version);
        let upn = second_user(&g).await;
        let options = g
            .fido2_creation_options(&upn, Some(60))
            .await
            .expect("creation options");
        let public_key = options.get("publicKey").unwrap_or(&options);
        assert_eq!(public_key["rp"]["id"], "login.microsoft.com", "{options}");
        assert!(
            public_key["challenge"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
        );
        assert!(options["challengeTimeoutDateTime"].is_string());
        let methods = g.list_fido2_methods(&upn).await.expect("list");
        assert!(methods.is_empty());
        // A method that does not exist: delete reports it as already gone, not as a failure.
        assert_eq!(
            g.delete_fido2_method(&upn, "bm9uZQ").await.expect("delete"),
            DeleteOutcome::AlreadyGone
        );
    }
    s.shutdown().await;
}

#[tokio::test]
async fn graph_errors_keep_code_message_and_request_id() {
    let s = sandbox(5, Knobs::default()).await;
    let g = client(&s, ApiVersion::Beta);
    let e = g
        .get_user("nobody@contoso.example")
        .await
        .expect_err("no such user");
    assert_eq!(e.status(), Some(404));
    assert_eq!(e.code(), Some("Request_ResourceNotFound"));
    assert!(e.request_id().is_some_and(|r| !r.is_empty()));
    assert!(e.to_string().contains(e.request_id().unwrap_or("?")));
    // Out-of-range challenge timeout: Graph's 400 comes back as an error, not retried.
    let upn = second_user(&g).await;
    let e = g
        .fido2_creation_options(&upn, Some(1))
        .await
        .expect_err("timeout out of range");
    assert_eq!(e.status(), Some(400));
    assert!(!e.is_retryable());
    assert_eq!(g.pacing_stats().retries, 0);
    // Wrong secret: the token endpoint's refusal, with its OAuth error code.
    let mut bad = settings(&s, ApiVersion::Beta);
    bad.credential = Credential::ClientSecret {
        client_id: s.client_id().to_string(),
        secret: Secret::new("wrong"),
    };
    let e = GraphClient::new(bad)
        .expect("client")
        .get_user(&upn)
        .await
        .expect_err("bad secret");
    assert_eq!(e.code(), Some("invalid_client"));
    assert!(!e.to_string().contains("wrong"));
    s.shutdown().await;
}

#[tokio::test]
async fn tap_is_issued_and_hidden_in_debug_output() {
    let s = sandbox(5, Knobs::default()).await;
    let g = client(&s, ApiVersion::V1);
    let upn = second_user(&g).await;
    let tap = g
        .create_temporary_access_pass(&upn, 60, true)
        .await
        .expect("tap");
    assert_eq!(tap.lifetime_in_minutes, 60);
    assert!(tap.is_usable_once);
    assert!(tap.temporary_access_pass.expose().len() >= 8);
    let shown = format!("{tap:?}");
    assert!(
        !shown.contains(tap.temporary_access_pass.expose()),
        "{shown}"
    );
    assert!(shown.contains("<hidden>"));
    let e = g
        .create_temporary_access_pass(&upn, 5, false)
        .await
        .expect_err("lifetime below 10 minutes");
    assert_eq!(e.status(), Some(400));
    s.shutdown().await;
}

/// The password grant (ROPC) of the sandbox's token endpoint, as a user's program signs in.
async fn signs_in(s: &Sandbox, upn: &str, password: &str) -> bool {
    let r = reqwest::Client::new()
        .post(s.token_url())
        .form(&[
            ("grant_type", "password"),
            ("client_id", &behalf_sandbox::CLI_CLIENT_ID.to_string()),
            ("scope", "User.ReadWrite.All"),
            ("username", upn),
            ("password", password),
        ])
        .send()
        .await
        .expect("token");
    r.status() == 200
}

#[tokio::test]
async fn a_password_is_set_or_refused_in_entras_words() {
    let s = sandbox(5, Knobs::default()).await;
    let g = client(&s, ApiVersion::V1);
    let upn = second_user(&g).await;
    let e = g
        .set_password(&upn, &Secret::new("weakling"), false)
        .await
        .expect_err("too weak");
    assert_eq!(e.refusal(), behalf_graph::Refusal::Invalid);
    assert!(
        e.message()
            .is_some_and(|m| m.contains("does not comply with password complexity")),
        "{e}"
    );
    assert!(!e.to_string().contains("weakling"), "{e}");
    assert!(!signs_in(&s, &upn, "weakling").await);
    g.set_password(&upn, &Secret::new("Correct-Horse-42"), false)
        .await
        .expect("set");
    assert!(signs_in(&s, &upn, "Correct-Horse-42").await);
    // Asked to change it at the next sign-in: a program's sign-in is refused until then.
    g.set_password(&upn, &Secret::new("Battery-Staple-7"), true)
        .await
        .expect("set");
    assert!(!signs_in(&s, &upn, "Battery-Staple-7").await);
    assert!(!signs_in(&s, &upn, "Correct-Horse-42").await);
    s.shutdown().await;
}

#[tokio::test]
async fn policy_and_token_permissions() {
    let s = sandbox(5, Knobs::default()).await;
    let g = client(&s, ApiVersion::Beta);
    let p = g.fido2_policy().await.expect("policy");
    assert!(p.is_enabled());
    assert!(p.is_self_service_registration_allowed);
    let perms = g.token_permissions().await.expect("token").expect("a JWT");
    assert!(perms.has_any(&[behalf_graph::PERMISSION_AUTH_METHODS]));
    s.shutdown().await;
}

#[tokio::test]
async fn an_expired_token_is_renewed_once_on_401() {
    let s = sandbox(5, Knobs::default()).await;
    let g = client(&s, ApiVersion::Beta);
    let upn = second_user(&g).await;
    let before = sandbox_state(&s).await["tokenRequests"]
        .as_u64()
        .unwrap_or(0);
    // The sandbox's clock jumps past the token's lifetime: our cache still thinks it valid,
    // Graph (the sandbox) answers 401, and the client renews and retries.
    reqwest::Client::new()
        .post(format!("{}/sandbox/clock/advance", s.base_url()))
        .json(&json!({"seconds": 7200}))
        .send()
        .await
        .expect("advance");
    let user = g.get_user(&upn).await.expect("renewed and retried");
    assert_eq!(user.user_principal_name.as_deref(), Some(upn.as_str()));
    let after = sandbox_state(&s).await["tokenRequests"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(after, before + 1, "exactly one renewal");
    s.shutdown().await;
}

#[tokio::test]
async fn throttling_and_failures_are_retried_never_before_retry_after() {
    let s = sandbox(
        300,
        Knobs {
            throttle_every: 3,
            fail_every: 7,
            retry_after_secs: 1,
            ..Knobs::default()
        },
    )
    .await;
    let mut set = settings(&s, ApiVersion::V1);
    set.page_size = 25;
    set.retry = RetryPolicy {
        max_attempts: 6,
        base: Duration::from_millis(50),
        cap: Duration::from_secs(2),
    };
    set.pacing = PacingSettings::default();
    let g = GraphClient::new(set).expect("client");
    let mut seen = 0;
    let mut next: Option<String> = None;
    loop {
        let page = g.users_page(next.as_deref()).await.expect("page");
        seen += page.value.len();
        match page.next_link {
            Some(n) => next = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, 300);
    let st = sandbox_state(&s).await;
    assert_eq!(st["earlyRetries"], 0, "{st}");
    assert!(st["throttled429"].as_u64().unwrap_or(0) >= 3, "{st}");
    let stats = g.pacing_stats();
    assert_eq!(stats.throttled, st["throttled429"].as_u64().unwrap_or(0));
    assert!(stats.unavailable >= 1);
    assert_eq!(stats.retries, stats.throttled + stats.unavailable);
    s.shutdown().await;
}

#[tokio::test]
async fn dropped_connections_are_retried_for_reads() {
    let s = sandbox(
        120,
        Knobs {
            drop_every: 4,
            ..Knobs::default()
        },
    )
    .await;
    let mut set = settings(&s, ApiVersion::V1);
    set.page_size = 10;
    set.retry.base = Duration::from_millis(20);
    let g = GraphClient::new(set).expect("client");
    let mut seen = 0;
    let mut next: Option<String> = None;
    loop {
        let page = g.users_page(next.as_deref()).await.expect("page");
        seen += page.value.len();
        match page.next_link {
            Some(n) => next = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, 120);
    assert!(g.pacing_stats().transport_errors >= 2);
    s.shutdown().await;
}

#[tokio::test]
async fn writes_are_paced_to_the_write_budget_without_429s_or_early_retries() {
    // A small budget at Graph's rate (100 writes per 5 s = 20/s), so the test spends the burst
    // and then writes at the refill rate for a few seconds.
    let s = sandbox(
        20,
        Knobs {
            write_budget: 100,
            write_window_ms: 5_000,
            ..Knobs::default()
        },
    )
    .await;
    let g = client(&s, ApiVersion::V1);
    let upn = second_user(&g).await;
    let started = std::time::Instant::now();
    let writes = 250;
    let outcomes = futures::future::join_all((0..16).map(|worker| {
        let g = g.clone();
        let upn = upn.clone();
        async move {
            let mut gone = 0;
            // A distinct method id per request: each DELETE is its own request, never a retry.
            for i in (worker..writes).step_by(16) {
                let outcome = g.delete_fido2_method(&upn, &format!("bm9uZQ{i}")).await;
                if matches!(outcome, Ok(DeleteOutcome::AlreadyGone)) {
                    gone += 1;
                }
            }
            gone
        }
    }))
    .await;
    let elapsed = started.elapsed();
    assert_eq!(outcomes.iter().sum::<usize>(), writes);
    let st = sandbox_state(&s).await;
    assert_eq!(st["earlyRetries"], 0, "{st}");
    assert_eq!(st["writesAdmitted"], writes, "{st}");
    assert!(st["writeBudget429"].as_u64().unwrap_or(99) <= 2, "{st}");
    // 150 writes beyond the burst at 20/s: 7.5 s, plus the cushion the pacer keeps.
    assert!(elapsed < Duration::from_secs(11), "{elapsed:?}");
    s.shutdown().await;
}
