//! The REST operations behind the panel's Settings and Directory pages: changing and disabling
//! an admin, the vault's status and its master key rotation, connecting a tenant.

mod common;

use behalf_domain::{Role, TokenScope};
use common::TestServer;
use serde_json::{Value, json};

async fn call(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, server.url(path))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_owner_changes_disables_and_enables_an_admin_but_not_the_last_owner() {
    let server = TestServer::start().await;
    server.admin("owner@contoso.test", Role::Owner, false).await;
    server.admin("ada@contoso.test", Role::Viewer, false).await;
    let owner = server.token("owner@contoso.test", TokenScope::Admin).await;
    let ada_token = server.token("ada@contoso.test", TokenScope::Admin).await;
    let (_, list) = call(
        &server,
        reqwest::Method::GET,
        "/api/v1/admins",
        &owner,
        None,
    )
    .await;
    let id_of = |email: &str| {
        list["admins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["email"] == email)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (ada, me) = (id_of("ada@contoso.test"), id_of("owner@contoso.test"));

    let (status, body) = call(
        &server,
        reqwest::Method::PATCH,
        &format!("/api/v1/admins/{ada}"),
        &owner,
        Some(json!({"role": "admin", "can_edit_users": true})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["role"].as_str(), body["can_edit_users"].as_bool()),
        (Some("admin"), Some(true))
    );

    let (status, body) = call(
        &server,
        reqwest::Method::PATCH,
        &format!("/api/v1/admins/{ada}"),
        &owner,
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!((status, body["disabled"].as_bool()), (200, Some(true)));
    let (status, _) = call(
        &server,
        reqwest::Method::GET,
        "/api/v1/users",
        &ada_token,
        None,
    )
    .await;
    assert_eq!(status, 401, "a disabled admin's token is refused");
    call(
        &server,
        reqwest::Method::PATCH,
        &format!("/api/v1/admins/{ada}"),
        &owner,
        Some(json!({"disabled": false})),
    )
    .await;
    let (status, _) = call(
        &server,
        reqwest::Method::GET,
        "/api/v1/users",
        &ada_token,
        None,
    )
    .await;
    assert_eq!(status, 200, "enabled again, the token works again");

    for change in [json!({"role": "viewer"}), json!({"disabled": true})] {
        let (status, body) = call(
            &server,
            reqwest::Method::PATCH,
            &format!("/api/v1/admins/{me}"),
            &owner,
            Some(change),
        )
        .await;
        assert_eq!(status, 409, "{body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("last enabled owner"),
            "{body}"
        );
    }
    let (status, body) = call(
        &server,
        reqwest::Method::PATCH,
        &format!("/api/v1/admins/{ada}"),
        &owner,
        Some(json!({"role": "emperor"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    server.stop().await;
}

#[tokio::test]
async fn the_vault_rotates_over_the_api_and_reports_which_key_wraps_the_rows() {
    let server = TestServer::start().await;
    server.admin("owner@contoso.test", Role::Owner, false).await;
    let owner = server.token("owner@contoso.test", TokenScope::Admin).await;
    let (status, before) = call(&server, reqwest::Method::GET, "/api/v1/vault", &owner, None).await;
    assert_eq!(status, 200, "{before}");
    let old = before["master_key_id"].as_str().unwrap().to_owned();
    assert!(
        before["rows_by_key"][&old].as_i64().unwrap() >= 1,
        "the pepper is sealed: {before}"
    );

    let (status, rotated) = call(
        &server,
        reqwest::Method::POST,
        "/api/v1/vault/rotate",
        &owner,
        None,
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(rotated["old_key_id"], old.as_str());
    let new = rotated["new_key_id"].as_str().unwrap().to_owned();
    let (_, after) = call(&server, reqwest::Method::GET, "/api/v1/vault", &owner, None).await;
    assert_eq!(after["master_key_id"], new.as_str());
    assert_eq!(
        after["rows_by_key"].as_object().unwrap().len(),
        1,
        "{after}"
    );
    assert!(after["rows_by_key"][&new].as_i64().unwrap() >= 1);
    assert_eq!(after["rotation_pending"], false);
    // The owner's token (checked under the sealed pepper) still works.
    let (status, _) = call(&server, reqwest::Method::GET, "/api/v1/users", &owner, None).await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test]
async fn connecting_a_tenant_wants_one_credential_and_ids_that_are_ids() {
    let server = TestServer::start().await;
    server.admin("admin@contoso.test", Role::Admin, false).await;
    let admin = server.token("admin@contoso.test", TokenScope::Admin).await;
    for (body, field) in [
        (
            json!({"name": "x", "tenant_id": "contoso.onmicrosoft.com", "client_id": "00000000-0000-0000-0000-000000000001"}),
            "client_secret",
        ),
        (
            json!({"name": "x", "tenant_id": "not a tenant", "client_id": "00000000-0000-0000-0000-000000000001", "client_secret": "s"}),
            "tenant_id",
        ),
        (
            json!({"name": "x", "tenant_id": "contoso.onmicrosoft.com", "client_id": "nope", "client_secret": "s"}),
            "client_id",
        ),
        (
            json!({"name": "has space", "tenant_id": "contoso.onmicrosoft.com", "client_id": "00000000-0000-0000-0000-000000000001", "client_secret": "s"}),
            "name",
        ),
    ] {
        let (status, problem) = call(
            &server,
            reqwest::Method::POST,
            "/api/v1/connections",
            &admin,
            Some(body),
        )
        .await;
        assert_eq!(status, 400, "{problem}");
        assert!(problem.to_string().contains(field), "{field}: {problem}");
        assert!(
            !problem.to_string().contains("\"s\""),
            "the secret is not repeated"
        );
    }
    let (_, list) = call(
        &server,
        reqwest::Method::GET,
        "/api/v1/connections",
        &admin,
        None,
    )
    .await;
    assert_eq!(list["connections"], json!([]));
    server.stop().await;
}
