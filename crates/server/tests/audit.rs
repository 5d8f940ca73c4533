//! What admins do is in the audit log, and a token can sign itself out.

mod common;

use behalf_domain::{Role, TokenScope};
use serde_json::Value;

#[tokio::test]
async fn sign_ins_and_token_changes_are_audit_events_and_a_token_can_revoke_itself() {
    let server = common::TestServer::start().await;
    server.admin("owner@example.com", Role::Owner, true).await;
    let client = reqwest::Client::new();
    let refused = client
        .post(server.url("/api/v1/auth/login"))
        .json(&serde_json::json!({"email": "owner@example.com", "password": "not the password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let (_cookie, _csrf) = server.sign_in("owner@example.com").await;
    let token = server.token("owner@example.com", TokenScope::Read).await;

    let audit = |prefix: &'static str| {
        client
            .get(server.url(&format!("/api/v1/audit?action_prefix={prefix}")))
            .bearer_auth(&token)
            .send()
    };
    let admin_events: Vec<Value> = audit("admin.").await.unwrap().json().await.unwrap();
    let actions: Vec<_> = admin_events
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            ("admin.created", "test"),
            ("admin.sign_in_refused", "anonymous"),
            ("admin.signed_in", "admin:owner@example.com"),
        ]
    );
    assert_eq!(admin_events[1]["detail"]["email"], "owner@example.com");
    let token_events: Vec<Value> = audit("token.").await.unwrap().json().await.unwrap();
    assert_eq!(token_events.len(), 1, "{token_events:?}");
    assert_eq!(token_events[0]["action"], "token.created");
    assert_eq!(token_events[0]["detail"]["scope"], "read");
    // `_` in a prefix is a character, not a wildcard.
    let none: Vec<Value> = audit("admin_").await.unwrap().json().await.unwrap();
    assert!(none.is_empty(), "{none:?}");

    let out = client
        .post(server.url("/api/v1/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    let after = audit("token.").await.unwrap();
    assert_eq!(after.status(), 401, "the token revoked itself");
    server.stop().await;
}
