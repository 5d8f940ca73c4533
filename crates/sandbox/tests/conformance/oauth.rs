//! Token endpoint and Graph token validation.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

async fn post_token(env: &Env, tenant: &str, form: &[(&str, &str)]) -> reqwest::Response {
    env.http
        .post(format!("{}/{tenant}/oauth2/v2.0/token", env.sb.login_url()))
        .form(form)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn client_credentials_errors_use_aad_codes() {
    let env = start(10).await;
    let tid = env.sb.tenant_id().to_string();
    let id = env.sb.client_id().to_string();
    let scope = ("scope", "https://graph.microsoft.com/.default");
    let cc = ("grant_type", "client_credentials");

    let r = post_token(
        &env,
        &tid,
        &[cc, ("client_id", &id), ("client_secret", "wrong"), scope],
    )
    .await;
    assert_aad_error(r, 401, "invalid_client", 7000215).await;
    let r = post_token(&env, &tid, &[cc, ("client_id", &id), scope]).await;
    assert_aad_error(r, 401, "invalid_client", 7000218).await;
    let r = post_token(
        &env,
        &tid,
        &[
            cc,
            ("client_id", "00000000-0000-0000-0000-000000000001"),
            ("client_secret", "x"),
            scope,
        ],
    )
    .await;
    assert_aad_error(r, 400, "unauthorized_client", 700016).await;
    let r = post_token(
        &env,
        &tid,
        &[
            cc,
            ("client_id", &id),
            ("client_secret", env.sb.client_secret()),
            ("scope", "User.Read"),
        ],
    )
    .await;
    assert_aad_error(r, 400, "invalid_scope", 1002012).await;
    let r = post_token(
        &env,
        "11111111-2222-3333-4444-555555555555",
        &[
            cc,
            ("client_id", &id),
            ("client_secret", env.sb.client_secret()),
            scope,
        ],
    )
    .await;
    assert_aad_error(r, 400, "invalid_request", 90002).await;
    let r = post_token(
        &env,
        &tid,
        // RFC 8693 token exchange: Entra's on-behalf-of flow uses jwt-bearer instead.
        &[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("client_id", &id),
        ],
    )
    .await;
    assert_aad_error(r, 400, "unsupported_grant_type", 70003).await;

    // The verified domain works as the tenant segment too.
    let r = post_token(
        &env,
        "contoso.example",
        &[
            cc,
            ("client_id", &id),
            ("client_secret", env.sb.client_secret()),
            scope,
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    let v = json_of(r).await;
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3599);
    assert_eq!(
        v["access_token"].as_str().map(|t| t.split('.').count()),
        Some(3)
    );
}

#[tokio::test]
async fn graph_rejects_bad_tokens_with_401() {
    let env = start(10).await;
    let r = env
        .http
        .get(env.url("/v1.0/users"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(r.headers().get("www-authenticate").is_some());
    assert_graph_error(r, 401, "InvalidAuthenticationToken").await;
    assert_graph_error(
        env.get_with("/v1.0/users", "not-a-jwt").await,
        401,
        "InvalidAuthenticationToken",
    )
    .await;

    // A token whose signature was tampered with.
    let mut forged = env.token.clone();
    forged.push('A');
    assert_graph_error(
        env.get_with("/v1.0/users", &forged).await,
        401,
        "InvalidAuthenticationToken",
    )
    .await;

    let expired = env.mint(json!({"expiresInSeconds": -30})).await;
    let v = assert_graph_error(
        env.get_with("/v1.0/users", &expired).await,
        401,
        "InvalidAuthenticationToken",
    )
    .await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("expired")
    );

    let other_tenant = env
        .mint(json!({"tenantId": "11111111-2222-3333-4444-555555555555"}))
        .await;
    assert_graph_error(
        env.get_with("/v1.0/users", &other_tenant).await,
        401,
        "InvalidAuthenticationToken",
    )
    .await;

    // A good token works until the clock passes its expiry.
    assert_eq!(env.get("/v1.0/users?$top=1").await.status(), 200);
    env.advance(3600).await;
    assert_graph_error(
        env.get("/v1.0/users?$top=1").await,
        401,
        "InvalidAuthenticationToken",
    )
    .await;
}

#[tokio::test]
async fn missing_permissions_answer_403() {
    let env = start(10).await;
    let reader = client_credentials(
        &env.http,
        &env.sb,
        &behalf_sandbox::READER_CLIENT_ID.to_string(),
        behalf_sandbox::READER_CLIENT_SECRET,
    )
    .await;
    assert_eq!(
        env.get_with("/v1.0/users?$top=1", &reader).await.status(),
        200
    );
    let body = json!({"accountEnabled": true, "displayName": "X", "mailNickname": "x", "userPrincipalName": "x@contoso.example", "passwordProfile": {"password": "P@ssw0rd!x"}});
    let r = env
        .send_with(Method::POST, "/v1.0/users", Some(body), &reader)
        .await;
    assert_graph_error(r, 403, "Authorization_RequestDenied").await;
    let admin = env.sb.admin_upn();
    let r = env
        .get_with(
            &format!("/beta/users/{admin}/authentication/fido2Methods/creationOptions"),
            &reader,
        )
        .await;
    assert_graph_error(r, 403, "Authorization_RequestDenied").await;
    // The provisioning app may read the policy but not change it.
    let r = env
        .send(
            Method::PATCH,
            "/v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2",
            Some(json!({"state": "disabled"})),
        )
        .await;
    assert_graph_error(r, 403, "Authorization_RequestDenied").await;
}

#[tokio::test]
async fn request_ids_are_echoed() {
    let env = start(5).await;
    let r = env
        .http
        .get(env.url("/v1.0/users"))
        .bearer_auth(&env.token)
        .header("client-request-id", "abc-123")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        r.headers()
            .get("client-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("abc-123")
    );
    assert!(r.headers().get("request-id").is_some());
    let r = env
        .http
        .get(env.url("/v1.0/nothing-here"))
        .bearer_auth(&env.token)
        .header("client-request-id", "xyz")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let v = assert_graph_error(r, 404, "Request_ResourceNotFound").await;
    assert_eq!(v["error"]["innerError"]["client-request-id"], "xyz");
}

#[tokio::test]
async fn device_code_flow_pending_slow_down_approve_refresh_expire() {
    let env = start(10).await;
    let tid = env.sb.tenant_id().to_string();
    let cli = behalf_sandbox::CLI_CLIENT_ID.to_string();
    let dc_url = format!("{}/{tid}/oauth2/v2.0/devicecode", env.sb.login_url());
    let dc: Value = json_of(
        env.http
            .post(&dc_url)
            .form(&[
                ("client_id", cli.as_str()),
                (
                    "scope",
                    "https://graph.microsoft.com/.default offline_access",
                ),
            ])
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .await;
    let device_code = dc["device_code"].as_str().unwrap_or_default().to_string();
    let user_code = dc["user_code"].as_str().unwrap_or_default().to_string();
    assert!(
        dc["verification_uri"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/sandbox/device")
    );
    assert_eq!(dc["interval"], 5);
    let grant = "urn:ietf:params:oauth:grant-type:device_code";
    let form = [
        ("grant_type", grant),
        ("client_id", cli.as_str()),
        ("device_code", device_code.as_str()),
    ];
    let poll = || post_token(&env, &tid, &form);
    assert_aad_error(poll().await, 400, "authorization_pending", 70016).await;
    assert_aad_error(poll().await, 400, "slow_down", 70016).await;

    let r = env
        .admin(
            Method::POST,
            "/sandbox/device/approve",
            json!({"user_code": user_code}),
        )
        .await;
    assert_eq!(r.status(), 204);
    let v = json_of(poll().await).await;
    let access = v["access_token"].as_str().unwrap_or_default().to_string();
    let refresh = v["refresh_token"].as_str().unwrap_or_default().to_string();
    assert!(!access.is_empty() && !refresh.is_empty(), "{v}");
    // A delegated token works on Graph, including the policy write the CLI's scopes allow.
    assert_eq!(
        env.get_with("/v1.0/users?$top=1", &access).await.status(),
        200
    );
    // The device code is single use.
    assert_aad_error(poll().await, 400, "invalid_grant", 70000).await;

    let r = post_token(
        &env,
        &tid,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &cli),
            ("refresh_token", &refresh),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    let v = json_of(r).await;
    assert!(v["access_token"].is_string() && v["refresh_token"].is_string());
    // Refresh tokens rotate: the old one no longer works.
    let r = post_token(
        &env,
        &tid,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &cli),
            ("refresh_token", &refresh),
        ],
    )
    .await;
    assert_aad_error(r, 400, "invalid_grant", 70000).await;

    // An unapproved code expires.
    let dc: Value = json_of(
        env.http
            .post(&dc_url)
            .form(&[
                ("client_id", cli.as_str()),
                ("scope", "User.Read.All User.ReadWrite.All"),
            ])
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .await;
    let code2 = dc["device_code"].as_str().unwrap_or_default().to_string();
    env.advance(901).await;
    let r = post_token(
        &env,
        &tid,
        &[
            ("grant_type", grant),
            ("client_id", &cli),
            ("device_code", &code2),
        ],
    )
    .await;
    assert_aad_error(r, 400, "expired_token", 70020).await;
}
