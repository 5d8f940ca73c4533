//! FIDO2 creation options, registration verification, sign-in, TAP and the FIDO2 policy.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::Method;
use serde_json::{Value, json};

use crate::authenticator::{AAGUID, Make, TestKey};
use crate::common::*;

const UPN: &str = "admin@contoso.example";

async fn options(env: &Env, upn: &str) -> Value {
    let r = env.get(&format!("/beta/users/{upn}/authentication/fido2Methods/creationOptions(challengeTimeoutInMinutes=10)")).await;
    assert_eq!(r.status(), 200);
    json_of(r).await
}

async fn register(env: &Env, upn: &str, key: &mut TestKey, how: &Make) -> reqwest::Response {
    let o = options(env, upn).await;
    let body = key.register_body(&o, how);
    env.send(
        Method::POST,
        &format!("/beta/users/{upn}/authentication/fido2Methods"),
        Some(body),
    )
    .await
}

async fn second_user(env: &Env) -> String {
    let v = json_of(
        env.get("/v1.0/users?$top=2&$select=userPrincipalName")
            .await,
    )
    .await;
    v["value"][1]["userPrincipalName"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn set_policy(env: &Env, patch: Value) {
    assert_eq!(
        env.admin(Method::PATCH, "/sandbox/policy", patch)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn creation_options_shape_and_timeouts() {
    let env = start(10).await;
    let v = json_of(
        env.get(&format!(
            "/v1.0/users/{UPN}/authentication/fido2Methods/creationOptions"
        ))
        .await,
    )
    .await;
    let pk = &v["publicKey"];
    assert!(
        v["@odata.context"]
            .as_str()
            .is_some_and(|c| c.ends_with("webauthnCredentialCreationOptions"))
    );
    assert!(v["challengeTimeoutDateTime"].is_string());
    assert!(
        pk["challenge"]
            .as_str()
            .is_some_and(|c| URL_SAFE_NO_PAD.decode(c).is_ok())
    );
    assert_eq!(
        pk["rp"],
        json!({"id": "login.microsoft.com", "name": "Microsoft"})
    );
    assert_eq!(pk["user"]["name"], json!(UPN));
    assert!(
        pk["user"]["id"]
            .as_str()
            .is_some_and(|i| URL_SAFE_NO_PAD.decode(i).is_ok())
    );
    assert_eq!(
        pk["pubKeyCredParams"],
        json!([{"type": "public-key", "alg": -7}, {"type": "public-key", "alg": -257}])
    );
    assert_eq!(
        pk["authenticatorSelection"],
        json!({"authenticatorAttachment": "cross-platform", "requireResidentKey": true, "userVerification": "required"})
    );
    assert_eq!(pk["attestation"], "direct");
    assert_eq!(pk["timeout"], 300_000);
    assert_eq!(
        pk["extensions"]["credentialProtectionPolicy"],
        "userVerificationOptional"
    );
    assert_eq!(pk["extensions"]["hmacCreateSecret"], true);
    assert_eq!(pk["excludeCredentials"], json!([]));

    let base = format!("/beta/users/{UPN}/authentication/fido2Methods/creationOptions");
    assert_eq!(
        env.get(&format!("{base}(challengeTimeoutInMinutes=43200)"))
            .await
            .status(),
        200
    );
    assert_eq!(
        env.get(&format!("{base}?challengeTimeoutInMinutes=5"))
            .await
            .status(),
        200
    );
    for bad in [
        "(challengeTimeoutInMinutes=4)",
        "(challengeTimeoutInMinutes=43201)",
        "(challengeTimeoutInMinutes=abc)",
        "?challengeTimeoutInMinutes=0",
    ] {
        assert_graph_error(env.get(&format!("{base}{bad}")).await, 400, "badRequest").await;
    }
    let v1 = format!(
        "/v1.0/users/{UPN}/authentication/fido2Methods/creationOptions(challengeTimeoutInMinutes=60)"
    );
    assert_graph_error(env.get(&v1).await, 400, "badRequest").await;
    assert_graph_error(
        env.get("/beta/users/ghost@contoso.example/authentication/fido2Methods/creationOptions")
            .await,
        404,
        "Request_ResourceNotFound",
    )
    .await;
}

#[tokio::test]
async fn register_list_sign_in_delete() {
    let env = start(10).await;
    let mut key = TestKey::new();
    let r = register(&env, UPN, &mut key, &Make::default()).await;
    assert_eq!(r.status(), 201);
    let m = json_of(r).await;
    assert_eq!(
        m["@odata.type"],
        "#microsoft.graph.fido2AuthenticationMethod"
    );
    assert_eq!(m["aaGuid"], AAGUID);
    assert_eq!(m["attestationLevel"], "notAttested");
    assert_eq!(m["displayName"], "Test key");
    assert!(m["createdDateTime"].is_string() && m["attestationCertificates"].is_array());
    let id = m["id"].as_str().unwrap_or_default().to_string();

    let list = json_of(
        env.get(&format!("/v1.0/users/{UPN}/authentication/fido2Methods"))
            .await,
    )
    .await;
    assert_eq!(list["value"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        env.get(&format!(
            "/v1.0/users/{UPN}/authentication/fido2Methods/{id}"
        ))
        .await
        .status(),
        200
    );
    let st = env.state().await;
    assert_eq!(st["fido2MethodsPerUser"][UPN], 1);

    // The provisioned passkey signs in, and a replayed assertion does not.
    let begin = json_of(
        env.admin(Method::POST, "/sandbox/signin/begin", json!({"upn": UPN}))
            .await,
    )
    .await;
    assert_eq!(begin["publicKey"]["rpId"], "login.microsoft.com");
    let assertion = key.assert(&begin);
    let r = env
        .admin(Method::POST, "/sandbox/signin/finish", assertion.clone())
        .await;
    assert_eq!(r.status(), 200);
    let done = json_of(r).await;
    assert_eq!(
        (
            done["upn"].clone(),
            done["fido2MethodId"].clone(),
            done["counter"].clone()
        ),
        (json!(UPN), json!(id), json!(1))
    );
    assert_eq!(
        env.admin(Method::POST, "/sandbox/signin/finish", assertion)
            .await
            .status(),
        400
    );
    // A cloned authenticator (counter going backwards) is refused.
    let begin = json_of(
        env.admin(Method::POST, "/sandbox/signin/begin", json!({"upn": UPN}))
            .await,
    )
    .await;
    key.set_counter(0);
    assert_eq!(
        env.admin(Method::POST, "/sandbox/signin/finish", key.assert(&begin))
            .await
            .status(),
        400
    );

    // excludeCredentials lists the key, in the configured encoding.
    let o = options(&env, UPN).await;
    assert_eq!(
        o["publicKey"]["excludeCredentials"][0]["id"],
        json!(URL_SAFE_NO_PAD.encode(&key.cred_id))
    );
    env.admin(
        Method::PATCH,
        "/sandbox/knobs",
        json!({"excludeCredentialsEncoding": "base64"}),
    )
    .await;
    let o = options(&env, UPN).await;
    assert_eq!(
        o["publicKey"]["excludeCredentials"][0]["id"],
        json!(STANDARD.encode(&key.cred_id))
    );
    env.admin(
        Method::PATCH,
        "/sandbox/knobs",
        json!({"excludeCredentialsEncoding": "base64UrlPaddingDigit"}),
    )
    .await;
    let o = options(&env, UPN).await;
    // 32 bytes → 43 base64url characters, one `=` dropped → suffix "1".
    assert_eq!(
        o["publicKey"]["excludeCredentials"][0]["id"],
        json!(format!("{}1", URL_SAFE_NO_PAD.encode(&key.cred_id)))
    );

    assert_eq!(
        env.send(
            Method::DELETE,
            &format!("/v1.0/users/{UPN}/authentication/fido2Methods/{id}"),
            None
        )
        .await
        .status(),
        204
    );
    let list = json_of(
        env.get(&format!("/v1.0/users/{UPN}/authentication/fido2Methods"))
            .await,
    )
    .await;
    assert_eq!(list["value"], json!([]));
    assert_graph_error(
        env.send(
            Method::DELETE,
            &format!("/v1.0/users/{UPN}/authentication/fido2Methods/{id}"),
            None,
        )
        .await,
        404,
        "Request_ResourceNotFound",
    )
    .await;
}

#[tokio::test]
async fn none_attestation_is_accepted_by_default() {
    let env = start(10).await;
    let r = register(
        &env,
        UPN,
        &mut TestKey::new(),
        &Make {
            fmt: "none",
            ..Make::default()
        },
    )
    .await;
    assert_eq!(r.status(), 201);
    assert_eq!(json_of(r).await["attestationLevel"], "notAttested");
}

#[tokio::test]
async fn registration_errors() {
    let env = start(10).await;
    let path = format!("/beta/users/{UPN}/authentication/fido2Methods");
    let reject = |r: reqwest::Response| assert_graph_error(r, 400, "invalidRequest");

    // Replayed challenge: the first use succeeds, the second is refused.
    let o = options(&env, UPN).await;
    let r = env
        .send(
            Method::POST,
            &path,
            Some(TestKey::new().register_body(&o, &Make::default())),
        )
        .await;
    assert_eq!(r.status(), 201);
    reject(
        env.send(
            Method::POST,
            &path,
            Some(TestKey::new().register_body(&o, &Make::default())),
        )
        .await,
    )
    .await;
    // A challenge the tenant never issued.
    let forged = Make {
        challenge: Some(URL_SAFE_NO_PAD.encode([7u8; 32])),
        ..Make::default()
    };
    reject(register(&env, UPN, &mut TestKey::new(), &forged).await).await;
    // Expired challenge (10 minutes requested).
    let o = options(&env, UPN).await;
    env.advance(601).await;
    reject(
        env.send(
            Method::POST,
            &path,
            Some(TestKey::new().register_body(&o, &Make::default())),
        )
        .await,
    )
    .await;
    // A challenge issued for another user.
    let other = second_user(&env).await;
    let o = options(&env, &other).await;
    reject(
        env.send(
            Method::POST,
            &path,
            Some(TestKey::new().register_body(&o, &Make::default())),
        )
        .await,
    )
    .await;

    for (what, how) in [
        (
            "wrong origin",
            Make {
                origin: "https://evil.example".into(),
                ..Make::default()
            },
        ),
        (
            "wrong rpIdHash",
            Make {
                rp_id: "contoso.example".into(),
                ..Make::default()
            },
        ),
        (
            "wrong type",
            Make {
                kind: "webauthn.get".into(),
                ..Make::default()
            },
        ),
        (
            "no user verification",
            Make {
                uv: false,
                ..Make::default()
            },
        ),
        (
            "fido-u2f format",
            Make {
                fmt: "fido-u2f",
                ..Make::default()
            },
        ),
        (
            "tpm format",
            Make {
                fmt: "tpm",
                ..Make::default()
            },
        ),
    ] {
        let v = reject(register(&env, UPN, &mut TestKey::new(), &how).await).await;
        eprintln!("{what}: {}", v["error"]["message"]);
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("rejected")),
            "{what}: {v}"
        );
    }

    // Duplicate credential id, even for another user.
    let mut key = TestKey::new();
    assert_eq!(
        register(&env, UPN, &mut key, &Make::default())
            .await
            .status(),
        201
    );
    reject(register(&env, UPN, &mut key.clone_id(), &Make::default()).await).await;
    reject(register(&env, &other, &mut key.clone_id(), &Make::default()).await).await;

    // Malformed bodies.
    assert_graph_error(
        env.send(Method::POST, &path, Some(json!({"displayName": "x"})))
            .await,
        400,
        "badRequest",
    )
    .await;
    let st = env.state().await;
    assert!(
        st["registrationsRejected"].as_u64().unwrap_or(0) >= 12,
        "{st}"
    );
}

#[tokio::test]
async fn policy_key_restrictions_and_attestation_enforcement() {
    let env = start(10).await;
    set_policy(&env, json!({"keyRestrictions": {"isEnforced": true, "enforcementType": "block", "aaGuids": [AAGUID]}})).await;
    let v = assert_graph_error(
        register(&env, UPN, &mut TestKey::new(), &Make::default()).await,
        400,
        "invalidRequest",
    )
    .await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("AAGUID")
    );
    set_policy(&env, json!({"keyRestrictions": {"isEnforced": true, "enforcementType": "allow", "aaGuids": ["cb69481e-8ff7-4039-93ec-0a2729a154a8"]}})).await;
    assert_graph_error(
        register(&env, UPN, &mut TestKey::new(), &Make::default()).await,
        400,
        "invalidRequest",
    )
    .await;
    set_policy(&env, json!({"keyRestrictions": {"isEnforced": true, "enforcementType": "allow", "aaGuids": [AAGUID]}})).await;
    assert_eq!(
        register(&env, UPN, &mut TestKey::new(), &Make::default())
            .await
            .status(),
        201
    );
    set_policy(
        &env,
        json!({"keyRestrictions": {"isEnforced": false}, "isAttestationEnforced": true}),
    )
    .await;
    assert_graph_error(
        register(&env, UPN, &mut TestKey::new(), &Make::default()).await,
        400,
        "invalidRequest",
    )
    .await;
    assert_graph_error(
        register(
            &env,
            UPN,
            &mut TestKey::new(),
            &Make {
                fmt: "none",
                ..Make::default()
            },
        )
        .await,
        400,
        "invalidRequest",
    )
    .await;

    // Policy reads through Graph; bad values are refused.
    let p = json_of(
        env.get(
            "/v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2",
        )
        .await,
    )
    .await;
    assert_eq!(
        (p["state"].clone(), p["isAttestationEnforced"].clone()),
        (json!("enabled"), json!(true))
    );
    assert_eq!(
        env.admin(
            Method::PATCH,
            "/sandbox/policy",
            json!({"state": "sometimes"})
        )
        .await
        .status(),
        400
    );

    set_policy(
        &env,
        json!({"isAttestationEnforced": false, "state": "disabled"}),
    )
    .await;
    let r = env
        .get(&format!(
            "/beta/users/{UPN}/authentication/fido2Methods/creationOptions"
        ))
        .await;
    assert_graph_error(r, 403, "accessDenied").await;
    set_policy(
        &env,
        json!({"state": "enabled", "isSelfServiceRegistrationAllowed": false}),
    )
    .await;
    let r = env
        .get(&format!(
            "/v1.0/users/{UPN}/authentication/fido2Methods/creationOptions"
        ))
        .await;
    assert_graph_error(r, 400, "badRequest").await;

    // A delegated admin with the policy scope can change it through Graph.
    let delegated = env
        .mint(json!({"clientId": behalf_sandbox::CLI_CLIENT_ID.to_string(), "upn": UPN}))
        .await;
    let r = env
        .send_with(
            Method::PATCH,
            "/beta/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2",
            Some(json!({"isSelfServiceRegistrationAllowed": true})),
            &delegated,
        )
        .await;
    assert_eq!(r.status(), 204);
}

#[tokio::test]
async fn own_account_is_405() {
    let env = start(10).await;
    let delegated = env
        .mint(json!({"clientId": behalf_sandbox::CLI_CLIENT_ID.to_string(), "upn": UPN}))
        .await;
    let r = env
        .get_with(
            &format!("/beta/users/{UPN}/authentication/fido2Methods/creationOptions"),
            &delegated,
        )
        .await;
    assert_graph_error(r, 405, "methodNotAllowed").await;
    let o = options(&env, UPN).await;
    let body = TestKey::new().register_body(&o, &Make::default());
    let r = env
        .send_with(
            Method::POST,
            &format!("/beta/users/{UPN}/authentication/fido2Methods"),
            Some(body),
            &delegated,
        )
        .await;
    assert_graph_error(r, 405, "methodNotAllowed").await;
    // The same admin may provision someone else.
    let other = second_user(&env).await;
    let r = env
        .get_with(
            &format!("/beta/users/{other}/authentication/fido2Methods/creationOptions"),
            &delegated,
        )
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn temporary_access_pass() {
    let env = start(10).await;
    let other = second_user(&env).await;
    let path = format!("/v1.0/users/{other}/authentication/temporaryAccessPassMethods");
    for bad in [9, 43_201] {
        assert_graph_error(
            env.send(Method::POST, &path, Some(json!({"lifetimeInMinutes": bad})))
                .await,
            400,
            "badRequest",
        )
        .await;
    }
    let r = env
        .send(
            Method::POST,
            &path,
            Some(json!({"lifetimeInMinutes": 60, "isUsableOnce": true})),
        )
        .await;
    assert_eq!(r.status(), 201);
    let tap = json_of(r).await;
    assert_eq!(tap["temporaryAccessPass"].as_str().map(str::len), Some(8));
    assert_eq!(
        (
            tap["lifetimeInMinutes"].clone(),
            tap["isUsableOnce"].clone(),
            tap["isUsable"].clone()
        ),
        (json!(60), json!(true), json!(true))
    );
    let list = json_of(env.get(&path).await).await;
    assert_eq!(list["value"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        list["value"][0]["temporaryAccessPass"],
        Value::Null,
        "the pass is shown once only"
    );
    assert_graph_error(
        env.send(
            Method::POST,
            "/v1.0/users/ghost@contoso.example/authentication/temporaryAccessPassMethods",
            Some(json!({})),
        )
        .await,
        404,
        "Request_ResourceNotFound",
    )
    .await;
}
