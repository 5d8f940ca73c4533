//! The user's own registration (the sandbox's My Security Info): a session from a Temporary
//! Access Pass sign-in, and a passkey registered with it through the same verification as
//! Graph's `fido2Methods`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::authenticator::{Make, TestKey};
use crate::common::*;

/// Two enabled users other than the admin.
async fn two_users(env: &Env) -> (String, String) {
    let v = json_of(
        env.get("/v1.0/users?$top=999&$select=userPrincipalName,accountEnabled")
            .await,
    )
    .await;
    let upns: Vec<String> = v["value"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .filter(|u| u["accountEnabled"] == true)
        .filter_map(|u| u["userPrincipalName"].as_str().map(str::to_owned))
        .filter(|u| !u.starts_with("admin@"))
        .take(2)
        .collect();
    assert_eq!(upns.len(), 2, "{v}");
    (upns[0].clone(), upns[1].clone())
}

/// Issues a one-time pass for `upn` and signs in with it: the session token.
async fn session_for(env: &Env, upn: &str) -> String {
    let tap = json_of(
        env.send(
            Method::POST,
            &format!("/v1.0/users/{upn}/authentication/temporaryAccessPassMethods"),
            Some(json!({"lifetimeInMinutes": 60, "isUsableOnce": true})),
        )
        .await,
    )
    .await;
    let pass = tap["temporaryAccessPass"].as_str().unwrap_or_default();
    let signed_in = env
        .admin(
            Method::POST,
            "/sandbox/signin/tap",
            json!({"upn": upn, "temporaryAccessPass": pass}),
        )
        .await;
    assert_eq!(signed_in.status(), 200);
    let v = json_of(signed_in).await;
    v["sessionToken"]
        .as_str()
        .unwrap_or_else(|| panic!("no session in {v}"))
        .to_owned()
}

async fn my_options(env: &Env, session: Option<&str>) -> reqwest::Response {
    let mut r = client().get(env.url("/sandbox/mysecurityinfo/fido2/creationOptions"));
    if let Some(s) = session {
        r = r.bearer_auth(s);
    }
    r.send().await.unwrap()
}

async fn my_register(env: &Env, session: &str, body: &Value) -> reqwest::Response {
    client()
        .post(env.url("/sandbox/mysecurityinfo/fido2"))
        .bearer_auth(session)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_user_signed_in_with_a_pass_registers_a_passkey_of_their_own() {
    let env = start(10).await;
    let (upn, other) = two_users(&env).await;
    assert_graph_error(
        my_options(&env, None).await,
        401,
        "InvalidAuthenticationToken",
    )
    .await;
    assert_graph_error(
        my_options(&env, Some("mysi_forged")).await,
        401,
        "InvalidAuthenticationToken",
    )
    .await;
    let session = session_for(&env, &upn).await;

    // A challenge Graph issued for another user is refused, as Graph refuses it.
    let others = json_of(
        env.get(&format!(
            "/v1.0/users/{other}/authentication/fido2Methods/creationOptions"
        ))
        .await,
    )
    .await;
    let body = TestKey::new().register_body(&others, &Make::default());
    let refused = my_register(&env, &session, &body).await;
    assert_eq!(refused.status(), 400);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("issued for another user")
    );

    let options = json_of(my_options(&env, Some(&session)).await).await;
    assert_eq!(options["publicKey"]["user"]["name"], upn.as_str());
    let mut body = TestKey::new().register_body(&options, &Make::default());
    body["displayName"] = json!("My own key");
    let r = my_register(&env, &session, &body).await;
    assert_eq!(r.status(), 201);
    let method = json_of(r).await;
    assert_eq!(method["displayName"], "My own key");
    // Graph lists it as the user's, with when it was registered.
    let listed = json_of(
        env.get(&format!("/v1.0/users/{upn}/authentication/fido2Methods"))
            .await,
    )
    .await;
    assert_eq!(listed["value"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed["value"][0]["id"], method["id"]);
    assert!(listed["value"][0]["createdDateTime"].is_string());

    // The same challenge cannot be used twice, and the session ends with the pass.
    assert_eq!(my_register(&env, &session, &body).await.status(), 400);
    env.advance(61 * 60).await;
    assert_graph_error(
        my_options(&env, Some(&session)).await,
        401,
        "InvalidAuthenticationToken",
    )
    .await;
}
