//! Passwords: `PATCH /users/{id}` with `passwordProfile` as Graph takes it (the permission, the
//! complexity policy's refusal), and the password grant (ROPC) that then signs the user in.

use behalf_sandbox::CLI_CLIENT_ID;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Env, assert_aad_error, assert_graph_error, json_of, start};

const GOOD: &str = "Correct-Horse-42";

async fn ropc(env: &Env, upn: &str, password: &str) -> reqwest::Response {
    env.http
        .post(env.sb.token_url())
        .form(&[
            ("grant_type", "password"),
            ("client_id", &CLI_CLIENT_ID.to_string()),
            ("scope", "User.ReadWrite.All offline_access"),
            ("username", upn),
            ("password", password),
        ])
        .send()
        .await
        .unwrap_or_else(|e| panic!("token: {e}"))
}

async fn set_password(
    env: &Env,
    upn: &str,
    password: &str,
    force: bool,
    token: &str,
) -> reqwest::Response {
    env.send_with(
        Method::PATCH,
        &format!("/v1.0/users/{upn}"),
        Some(json!({"passwordProfile": {"password": password, "forceChangePasswordNextSignIn": force}})),
        token,
    )
    .await
}

/// An enabled user other than the admin.
async fn a_user(env: &Env) -> String {
    let v = json_of(
        env.get("/v1.0/users?$select=userPrincipalName,accountEnabled")
            .await,
    )
    .await;
    v["value"]
        .as_array()
        .and_then(|us| {
            us.iter().find(|u| {
                u["accountEnabled"] == true
                    && !u["userPrincipalName"]
                        .as_str()
                        .unwrap_or("admin@")
                        .starts_with("admin@")
            })
        })
        .and_then(|u| u["userPrincipalName"].as_str())
        .map(String::from)
        .unwrap_or_else(|| panic!("no enabled user in {v}"))
}

#[tokio::test]
async fn a_password_set_through_graph_signs_in_and_the_old_one_does_not() {
    let env = start(5).await;
    let upn = a_user(&env).await;
    // A seeded user has no password: ROPC cannot sign them in.
    assert_aad_error(ropc(&env, &upn, GOOD).await, 400, "invalid_grant", 50126).await;

    // Entra's complexity policy, in Graph's words; nothing changes.
    for weak in ["password", "Short1!", "alllowercaseletters"] {
        let v = assert_graph_error(
            set_password(&env, &upn, weak, false, &env.token).await,
            400,
            "Request_BadRequest",
        )
        .await;
        assert_eq!(
            v["error"]["message"],
            "The specified password does not comply with password complexity requirements. Please provide a different password.",
            "{weak}"
        );
    }
    assert_aad_error(ropc(&env, &upn, GOOD).await, 400, "invalid_grant", 50126).await;

    let r = set_password(&env, &upn, GOOD, false, &env.token).await;
    assert_eq!(r.status(), 204);
    let r = ropc(&env, &upn, GOOD).await;
    assert_eq!(r.status(), 200);
    let v: Value = json_of(r).await;
    assert!(
        v["access_token"].is_string() && v["refresh_token"].is_string(),
        "{v}"
    );
    assert_aad_error(
        ropc(&env, &upn, "Correct-Horse-43").await,
        400,
        "invalid_grant",
        50126,
    )
    .await;

    // A new password replaces the old one.
    assert_eq!(
        set_password(&env, &upn, "Battery-Staple-7", false, &env.token)
            .await
            .status(),
        204
    );
    assert_aad_error(ropc(&env, &upn, GOOD).await, 400, "invalid_grant", 50126).await;
    assert_eq!(ropc(&env, &upn, "Battery-Staple-7").await.status(), 200);

    // Nobody's password is in what the sandbox shows of its state.
    let state = env.state().await.to_string();
    assert!(!state.contains("Battery-Staple-7") && !state.contains(GOOD));
    env.sb.shutdown().await;
}

#[tokio::test]
async fn force_change_disabled_accounts_unknown_users_and_permissions_answer_as_entra_does() {
    let env = start(5).await;
    let upn = a_user(&env).await;
    assert_eq!(
        set_password(&env, &upn, GOOD, true, &env.token)
            .await
            .status(),
        204
    );
    // The user must choose another password first: a program's sign-in cannot do that.
    assert_aad_error(ropc(&env, &upn, GOOD).await, 400, "invalid_grant", 50055).await;
    // Clearing the flag alone keeps the password.
    let r = env
        .send(
            Method::PATCH,
            &format!("/v1.0/users/{upn}"),
            Some(json!({"passwordProfile": {"forceChangePasswordNextSignIn": false}})),
        )
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(ropc(&env, &upn, GOOD).await.status(), 200);

    let r = env
        .send(
            Method::PATCH,
            &format!("/v1.0/users/{upn}"),
            Some(json!({"accountEnabled": false})),
        )
        .await;
    assert_eq!(r.status(), 204);
    assert_aad_error(ropc(&env, &upn, GOOD).await, 400, "invalid_grant", 50057).await;
    assert_aad_error(
        ropc(&env, "nobody@contoso.example", GOOD).await,
        400,
        "invalid_grant",
        50034,
    )
    .await;

    // Setting a password needs a permission that may: a reader's token is refused; the least
    // privileged User-PasswordProfile.ReadWrite.All may set it, but not change other properties.
    let reader = env.mint(json!({"permissions": ["User.Read.All"]})).await;
    assert_graph_error(
        set_password(&env, &upn, GOOD, false, &reader).await,
        403,
        "Authorization_RequestDenied",
    )
    .await;
    let narrow = env
        .mint(json!({"permissions": ["User-PasswordProfile.ReadWrite.All"]}))
        .await;
    assert_eq!(
        set_password(&env, &upn, "Battery-Staple-7", false, &narrow)
            .await
            .status(),
        204
    );
    assert_graph_error(
        env.send_with(
            Method::PATCH,
            &format!("/v1.0/users/{upn}"),
            Some(json!({"displayName": "x", "passwordProfile": {"password": GOOD}})),
            &narrow,
        )
        .await,
        403,
        "Authorization_RequestDenied",
    )
    .await;
    env.sb.shutdown().await;
}

#[tokio::test]
async fn a_created_user_signs_in_with_the_initial_password() {
    let env = start(1).await;
    let body = json!({"accountEnabled": true, "displayName": "New Hire", "mailNickname": "new.hire",
        "userPrincipalName": "new.hire@contoso.example",
        "passwordProfile": {"password": GOOD, "forceChangePasswordNextSignIn": false}});
    assert_eq!(
        env.send(Method::POST, "/v1.0/users", Some(body))
            .await
            .status(),
        201
    );
    assert_eq!(
        ropc(&env, "new.hire@contoso.example", GOOD).await.status(),
        200
    );
    // ROPC without a scope, or without the password, is a malformed request.
    let r = env
        .http
        .post(env.sb.token_url())
        .form(&[
            ("grant_type", "password"),
            ("client_id", &CLI_CLIENT_ID.to_string()),
            ("scope", "User.ReadWrite.All"),
            ("username", "new.hire@contoso.example"),
        ])
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_aad_error(r, 400, "invalid_request", 900144).await;
    env.sb.shutdown().await;
}
