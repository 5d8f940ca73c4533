//! The Temporary Access Pass method policy: read and changed as Graph documents it, and what it
//! means for issuing a pass and signing in with one.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

const POLICY: &str = "/v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass";

async fn set_tap_policy(env: &Env, patch: Value) {
    let r = env.admin(Method::PATCH, "/sandbox/tap-policy", patch).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
}

async fn issue(env: &Env, upn: &str, body: Value) -> reqwest::Response {
    env.send(
        Method::POST,
        &format!("/v1.0/users/{upn}/authentication/temporaryAccessPassMethods"),
        Some(body),
    )
    .await
}

async fn sign_in(env: &Env, upn: &str, pass: &str) -> reqwest::Response {
    env.admin(
        Method::POST,
        "/sandbox/signin/tap",
        json!({"upn": upn, "temporaryAccessPass": pass}),
    )
    .await
}

#[tokio::test]
async fn policy_reads_as_graph_documents_it_and_writes_need_the_permission() {
    let env = start(10).await;
    let p = json_of(env.get(POLICY).await).await;
    assert_eq!(
        p["@odata.type"],
        "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration"
    );
    assert_eq!(
        (
            p["state"].clone(),
            p["minimumLifetimeInMinutes"].clone(),
            p["maximumLifetimeInMinutes"].clone(),
            p["defaultLifetimeInMinutes"].clone(),
            p["defaultLength"].clone(),
            p["isUsableOnce"].clone(),
        ),
        (
            json!("enabled"),
            json!(60),
            json!(480),
            json!(60),
            json!(8),
            json!(false)
        )
    );
    assert_eq!(p["includeTargets"][0]["id"], "all_users");
    // The provisioning app reads policies only (Policy.Read.All).
    assert_graph_error(
        env.send(Method::PATCH, POLICY, Some(json!({"isUsableOnce": true})))
            .await,
        403,
        "Authorization_RequestDenied",
    )
    .await;
    let admin = env
        .mint(json!({"permissions": ["Policy.ReadWrite.AuthenticationMethod"]}))
        .await;
    let r = env
        .send_with(
            Method::PATCH,
            POLICY,
            Some(json!({"isUsableOnce": true, "maximumLifetimeInMinutes": 120})),
            &admin,
        )
        .await;
    assert_eq!(r.status(), 204);
    let p = json_of(env.get(POLICY).await).await;
    assert_eq!(
        (
            p["isUsableOnce"].clone(),
            p["maximumLifetimeInMinutes"].clone()
        ),
        (json!(true), json!(120))
    );
    // The default must stay within the limits.
    assert_graph_error(
        env.send_with(
            Method::PATCH,
            POLICY,
            Some(json!({"maximumLifetimeInMinutes": 50, "minimumLifetimeInMinutes": 10})),
            &admin,
        )
        .await,
        400,
        "Request_BadRequest",
    )
    .await;
}

#[tokio::test]
async fn issuing_follows_targets_state_and_limits() {
    let env = start(30).await;
    let groups = json_of(env.get("/v1.0/groups?$top=1").await).await;
    let gid = groups["value"][0]["id"]
        .as_str()
        .expect("group")
        .to_string();
    let members = json_of(
        env.get(&format!(
            "/v1.0/groups/{gid}/members?$select=userPrincipalName"
        ))
        .await,
    )
    .await;
    let member = members["value"][0]["userPrincipalName"]
        .as_str()
        .expect("member")
        .to_string();
    let users = json_of(
        env.get("/v1.0/users?$select=userPrincipalName&$top=30")
            .await,
    )
    .await;
    let member_upns: Vec<&str> = members["value"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["userPrincipalName"].as_str())
        .collect();
    let outsider = users["value"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["userPrincipalName"].as_str())
        .find(|u| !member_upns.contains(u) && !u.starts_with("admin@"))
        .expect("a user outside the group")
        .to_string();

    // Excluded: Graph refuses the pass, naming the policy.
    set_tap_policy(
        &env,
        json!({"excludeTargets": [{"targetType": "group", "id": gid}]}),
    )
    .await;
    let e = assert_graph_error(issue(&env, &member, json!({})).await, 400, "badRequest").await;
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("UserCredentialPolicy"),
        "{e}"
    );
    assert_eq!(issue(&env, &outsider, json!({})).await.status(), 201);

    // Included only through the group: the outsider is refused, the member is not.
    set_tap_policy(
        &env,
        json!({"excludeTargets": [], "includeTargets": [{"targetType": "group", "id": gid}]}),
    )
    .await;
    assert_graph_error(issue(&env, &outsider, json!({})).await, 400, "badRequest").await;
    let r = issue(&env, &member, json!({})).await;
    assert_eq!(r.status(), 201);
    let tap = json_of(r).await;
    assert_eq!(
        tap["lifetimeInMinutes"], 60,
        "the policy's default lifetime"
    );

    // Lifetimes outside the policy's limits, and a reusable pass where the policy says once.
    set_tap_policy(
        &env,
        json!({"includeTargets": [{"targetType": "group", "id": "all_users"}],
               "minimumLifetimeInMinutes": 30, "maximumLifetimeInMinutes": 90, "isUsableOnce": true}),
    )
    .await;
    for bad in [29, 91] {
        let e = assert_graph_error(
            issue(&env, &outsider, json!({"lifetimeInMinutes": bad})).await,
            400,
            "badRequest",
        )
        .await;
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("(30 to 90)"),
            "{e}"
        );
    }
    assert_graph_error(
        issue(&env, &outsider, json!({"isUsableOnce": false})).await,
        400,
        "badRequest",
    )
    .await;
    let tap = json_of(issue(&env, &outsider, json!({"lifetimeInMinutes": 90})).await).await;
    assert_eq!(tap["isUsableOnce"], true);

    // Disabled: nobody gets a pass.
    set_tap_policy(&env, json!({"state": "disabled"})).await;
    assert_graph_error(issue(&env, &outsider, json!({})).await, 400, "badRequest").await;
    // A group that does not exist cannot be targeted.
    let r = env
        .admin(
            Method::PATCH,
            "/sandbox/tap-policy",
            json!({"excludeTargets": [{"targetType": "group", "id": "00000000-0000-4000-8000-000000000000"}]}),
        )
        .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn sign_in_with_a_pass_once_within_its_lifetime() {
    let env = start(10).await;
    let users = json_of(
        env.get("/v1.0/users?$select=userPrincipalName&$top=3")
            .await,
    )
    .await;
    let upn = users["value"][2]["userPrincipalName"]
        .as_str()
        .expect("user")
        .to_string();
    let tap = json_of(
        issue(
            &env,
            &upn,
            json!({"isUsableOnce": true, "lifetimeInMinutes": 60}),
        )
        .await,
    )
    .await;
    let pass = tap["temporaryAccessPass"]
        .as_str()
        .expect("pass")
        .to_string();

    assert_eq!(sign_in(&env, &upn, "wrong-pass").await.status(), 400);
    let r = sign_in(&env, &upn, &pass).await;
    assert_eq!(r.status(), 200);
    let v = json_of(r).await;
    assert_eq!(v["upn"], upn.as_str());
    assert_eq!(v["methodId"], tap["id"]);
    let again = sign_in(&env, &upn, &pass).await;
    assert_eq!(again.status(), 400);
    let again = again.text().await.unwrap_or_default();
    assert!(again.contains("already been used"), "{again}");
    let listed = json_of(
        env.get(&format!(
            "/v1.0/users/{upn}/authentication/temporaryAccessPassMethods"
        ))
        .await,
    )
    .await;
    assert_eq!(listed["value"][0]["methodUsabilityReason"], "OneTimeUsed");

    // A reusable pass still stops at the end of its lifetime.
    let tap = json_of(issue(&env, &upn, json!({"lifetimeInMinutes": 60})).await).await;
    let pass = tap["temporaryAccessPass"]
        .as_str()
        .expect("pass")
        .to_string();
    assert_eq!(sign_in(&env, &upn, &pass).await.status(), 200);
    assert_eq!(sign_in(&env, &upn, &pass).await.status(), 200);
    env.advance(3600).await;
    let e = sign_in(&env, &upn, &pass).await;
    assert_eq!(e.status(), 400);
    let e = e.text().await.unwrap_or_default();
    assert!(e.contains("expired"), "{e}");
}
