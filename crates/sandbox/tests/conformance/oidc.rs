//! OpenID Connect sign-in: discovery, keys, authorize (code + PKCE) and the authorization code
//! grant, with the refusals Microsoft documents.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use behalf_sandbox::{SIGNIN_CLIENT_ID, SIGNIN_CLIENT_SECRET};
use reqwest::{Client, Method, Response};
use rsa::signature::Verifier as _;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::common::*;

/// Query parameters to change (`None` leaves one out).
type Overrides<'a> = &'a [(&'a str, Option<&'a str>)];

const REDIRECT: &str = "http://127.0.0.1:4321/auth/oidc/callback";
const VERIFIER: &str = "a-verifier-of-at-least-forty-three-characters-0123456789";

fn no_redirects() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

fn authorize_url(env: &Env, overrides: &[(&str, Option<&str>)]) -> String {
    let client = SIGNIN_CLIENT_ID.to_string();
    let challenge = challenge(VERIFIER);
    let mut params: Vec<(&str, Option<String>)> = vec![
        ("client_id", Some(client)),
        ("response_type", Some("code".into())),
        ("redirect_uri", Some(REDIRECT.into())),
        ("scope", Some("openid profile email".into())),
        ("state", Some("the-state".into())),
        ("nonce", Some("the-nonce".into())),
        ("code_challenge", Some(challenge)),
        ("code_challenge_method", Some("S256".into())),
        ("login_hint", Some(env.sb.admin_upn())),
    ];
    for (k, v) in overrides {
        match params.iter_mut().find(|(n, _)| n == k) {
            Some(p) => p.1 = v.map(String::from),
            None => params.push((k, v.map(String::from))),
        }
    }
    let mut url = url::Url::parse(&format!(
        "{}/{}/oauth2/v2.0/authorize",
        env.sb.login_url(),
        env.sb.tenant_id()
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    for (k, v) in params {
        if let Some(v) = v {
            url.query_pairs_mut().append_pair(k, &v);
        }
    }
    url.to_string()
}

async fn authorize(env: &Env, overrides: &[(&str, Option<&str>)]) -> Response {
    no_redirects()
        .get(authorize_url(env, overrides))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The query of a 302's Location, which must lead to the redirect URI.
fn redirected(r: &Response) -> HashMap<String, String> {
    assert_eq!(r.status(), 302, "{r:?}");
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no location"));
    assert!(location.starts_with(REDIRECT), "{location}");
    url::Url::parse(location)
        .unwrap_or_else(|e| panic!("{e}"))
        .query_pairs()
        .into_owned()
        .collect()
}

async fn code_for(env: &Env, upn: &str) -> String {
    let q = redirected(&authorize(env, &[("login_hint", Some(upn))]).await);
    assert_eq!(q.get("state").map(String::as_str), Some("the-state"));
    q.get("code")
        .cloned()
        .unwrap_or_else(|| panic!("no code: {q:?}"))
}

async fn redeem(env: &Env, code: &str, overrides: &[(&str, &str)]) -> Response {
    let client = SIGNIN_CLIENT_ID.to_string();
    let mut form: Vec<(&str, &str)> = vec![
        ("grant_type", "authorization_code"),
        ("client_id", &client),
        ("client_secret", SIGNIN_CLIENT_SECRET),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("scope", "openid profile email"),
    ];
    for (k, v) in overrides {
        match form.iter_mut().find(|(n, _)| n == k) {
            Some(p) => p.1 = v,
            None => form.push((k, v)),
        }
    }
    env.http
        .post(env.sb.token_url())
        .form(&form)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

fn b64json(part: &str) -> Value {
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(part)
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A user of the first group with members, and the group's id.
async fn group_member(env: &Env) -> (String, String) {
    let groups = json_of(env.get("/v1.0/groups?$select=id").await).await;
    for g in groups["value"].as_array().into_iter().flatten() {
        let id = g["id"].as_str().unwrap_or_default().to_owned();
        let members = json_of(env.get(&format!("/v1.0/groups/{id}/members")).await).await;
        if let Some(upn) = members["value"]
            .as_array()
            .and_then(|m| m.first())
            .and_then(|m| m["userPrincipalName"].as_str())
        {
            return (upn.to_owned(), id);
        }
    }
    panic!("no group has members");
}

#[tokio::test]
async fn discovery_and_keys_are_as_microsoft_publishes_them() {
    let env = start(10).await;
    let tid = env.sb.tenant_id().to_string();
    for tenant in [tid.as_str(), "contoso.example"] {
        let r = env
            .http
            .get(format!(
                "{}/{tenant}/v2.0/.well-known/openid-configuration",
                env.sb.login_url()
            ))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status(), 200);
        let doc = json_of(r).await;
        let base = format!("{}/{tid}", env.sb.login_url());
        assert_eq!(doc["issuer"], json!(format!("{base}/v2.0")), "{doc}");
        assert_eq!(
            doc["authorization_endpoint"],
            json!(format!("{base}/oauth2/v2.0/authorize"))
        );
        assert_eq!(
            doc["token_endpoint"],
            json!(format!("{base}/oauth2/v2.0/token"))
        );
        assert_eq!(
            doc["jwks_uri"],
            json!(format!("{base}/discovery/v2.0/keys"))
        );
        assert_eq!(
            doc["id_token_signing_alg_values_supported"],
            json!(["RS256"])
        );
    }
    let r = env
        .http
        .get(format!("{}/{tid}/discovery/v2.0/keys", env.sb.login_url()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status(), 200);
    let jwks = json_of(r).await;
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    assert!(key["kid"].is_string() && key["n"].is_string());
    assert_eq!(key["e"], "AQAB");
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(key["n"].as_str().unwrap_or_default())
            .map(|n| n.len())
            .ok(),
        Some(256),
        "a 2048-bit modulus"
    );

    let r = env
        .http
        .get(format!(
            "{}/11111111-2222-3333-4444-555555555555/v2.0/.well-known/openid-configuration",
            env.sb.login_url()
        ))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_aad_error(r, 400, "invalid_request", 90002).await;
}

#[tokio::test]
async fn a_code_redeems_once_for_a_signed_id_token_with_the_users_groups() {
    let env = start(30).await;
    let (upn, group) = group_member(&env).await;
    let code = code_for(&env, &upn).await;
    let r = redeem(&env, &code, &[]).await;
    assert_eq!(r.status(), 200);
    let answer = json_of(r).await;
    assert_eq!(answer["token_type"], "Bearer");
    assert!(answer["access_token"].is_string());
    let scope = answer["scope"].as_str().unwrap_or_default();
    assert!(scope.contains("openid"), "{answer}");
    let id_token = answer["id_token"].as_str().unwrap_or_default();
    let parts: Vec<&str> = id_token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header = b64json(parts[0]);
    let claims = b64json(parts[1]);
    assert_eq!(header["alg"], "RS256");

    // The signature verifies with the published key.
    let jwks = json_of(
        env.http
            .get(format!(
                "{}/{}/discovery/v2.0/keys",
                env.sb.login_url(),
                env.sb.tenant_id()
            ))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .await;
    let jwk = &jwks["keys"][0];
    assert_eq!(jwk["kid"], header["kid"]);
    let int = |s: &Value| {
        rsa::BoxedUint::from_be_slice_vartime(
            &URL_SAFE_NO_PAD
                .decode(s.as_str().unwrap_or_default())
                .unwrap_or_else(|e| panic!("{e}")),
        )
    };
    let public =
        rsa::RsaPublicKey::new(int(&jwk["n"]), int(&jwk["e"])).unwrap_or_else(|e| panic!("{e}"));
    let verifier = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(public);
    let sig = rsa::pkcs1v15::Signature::try_from(
        URL_SAFE_NO_PAD
            .decode(parts[2])
            .unwrap_or_else(|e| panic!("{e}"))
            .as_slice(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let signed = format!("{}.{}", parts[0], parts[1]);
    assert!(verifier.verify(signed.as_bytes(), &sig).is_ok());
    let mut tampered = signed.clone().into_bytes();
    tampered[parts[0].len() + 5] ^= 1;
    assert!(verifier.verify(&tampered, &sig).is_err());

    let tid = env.sb.tenant_id().to_string();
    assert_eq!(
        claims["iss"],
        json!(format!("{}/{tid}/v2.0", env.sb.login_url()))
    );
    assert_eq!(claims["aud"], json!(SIGNIN_CLIENT_ID.to_string()));
    assert_eq!(claims["tid"], json!(tid));
    assert_eq!(claims["nonce"], "the-nonce");
    assert_eq!(claims["ver"], "2.0");
    assert_eq!(claims["preferred_username"], json!(upn));
    assert!(claims["name"].is_string() && claims["sub"].is_string());
    assert_eq!(claims["oid"], json!(env.user_id(&upn).await));
    assert!(
        claims["groups"]
            .as_array()
            .is_some_and(|g| g.contains(&json!(group))),
        "{claims}"
    );
    assert!(claims.get("roles").is_none(), "no app roles are modelled");
    let exp = claims["exp"].as_i64().unwrap_or_default();
    let iat = claims["iat"].as_i64().unwrap_or_default();
    assert_eq!(exp - iat, 3600);

    // Single use.
    let r = redeem(&env, &code, &[]).await;
    assert_aad_error(r, 400, "invalid_grant", 54005).await;
}

#[tokio::test]
async fn the_code_grant_refuses_what_entra_refuses() {
    let env = start(10).await;
    let admin = env.sb.admin_upn();

    let code = code_for(&env, &admin).await;
    let r = redeem(
        &env,
        &code,
        &[(
            "code_verifier",
            "another-verifier-of-at-least-forty-three-characters-000",
        )],
    )
    .await;
    assert_aad_error(r, 400, "invalid_grant", 501481).await;
    let r = redeem(&env, &code, &[("code_verifier", "")]).await;
    assert_aad_error(r, 400, "invalid_request", 900144).await;
    let r = redeem(
        &env,
        &code,
        &[("redirect_uri", "http://127.0.0.1:4321/elsewhere")],
    )
    .await;
    assert_aad_error(r, 400, "invalid_grant", 500112).await;
    let r = redeem(&env, &code, &[("client_secret", "wrong")]).await;
    assert_aad_error(r, 401, "invalid_client", 7000215).await;
    // Another app cannot redeem it.
    let r = redeem(
        &env,
        &code,
        &[
            ("client_id", &env.sb.client_id().to_string()),
            ("client_secret", env.sb.client_secret()),
        ],
    )
    .await;
    assert_aad_error(r, 400, "invalid_grant", 70000).await;
    // The refusals did not use it up.
    assert_eq!(redeem(&env, &code, &[]).await.status(), 200);

    let r = redeem(&env, "not-a-code", &[]).await;
    assert_aad_error(r, 400, "invalid_grant", 70000).await;

    // Ten minutes later a code is worthless.
    let code = code_for(&env, &admin).await;
    env.advance(601).await;
    let r = redeem(&env, &code, &[]).await;
    assert_aad_error(r, 400, "invalid_grant", 70008).await;
}

#[tokio::test]
async fn authorize_refuses_what_entra_refuses() {
    let env = start(10).await;

    // Not redirected: an unknown app, an unregistered redirect URI.
    let r = authorize(
        &env,
        &[("client_id", Some("00000000-0000-0000-0000-000000000001"))],
    )
    .await;
    assert_aad_error(r, 400, "unauthorized_client", 700016).await;
    let r = authorize(
        &env,
        &[(
            "redirect_uri",
            Some("https://evil.example/auth/oidc/callback"),
        )],
    )
    .await;
    assert_aad_error(r, 400, "invalid_request", 50011).await;
    let r = authorize(&env, &[("redirect_uri", None)]).await;
    assert_aad_error(r, 400, "invalid_request", 900144).await;
    // The provisioning app registered no redirect URI at all.
    let r = authorize(
        &env,
        &[("client_id", Some(&env.sb.client_id().to_string()))],
    )
    .await;
    assert_aad_error(r, 400, "invalid_request", 50011).await;

    // Redirected with an error and the state.
    let cases: &[(Overrides<'_>, &str, &str)] = &[
        (
            &[("code_challenge", None)],
            "invalid_request",
            "AADSTS900144",
        ),
        (
            &[("code_challenge_method", Some("plain"))],
            "invalid_request",
            "AADSTS501491",
        ),
        (
            &[("code_challenge_method", None)],
            "invalid_request",
            "AADSTS501491",
        ),
        (
            &[("code_challenge", Some("short"))],
            "invalid_request",
            "AADSTS501491",
        ),
        (
            &[("scope", Some("profile"))],
            "invalid_scope",
            "AADSTS70011",
        ),
        (
            &[("response_type", Some("token"))],
            "unsupported_response_type",
            "AADSTS700054",
        ),
        (&[("login_hint", None)], "login_required", "AADSTS50058"),
        (
            &[("login_hint", Some("nobody@contoso.example"))],
            "invalid_request",
            "AADSTS50034",
        ),
    ];
    for (overrides, error, code) in cases {
        let q = redirected(&authorize(&env, overrides).await);
        assert_eq!(
            q.get("error").map(String::as_str),
            Some(*error),
            "{overrides:?}: {q:?}"
        );
        assert!(
            q.get("error_description")
                .is_some_and(|d| d.starts_with(code)),
            "{overrides:?}: {q:?}"
        );
        assert_eq!(q.get("state").map(String::as_str), Some("the-state"));
        assert!(!q.contains_key("code"));
    }

    // A disabled user cannot sign in.
    let admin = env.sb.admin_upn();
    let users = json_of(env.get("/v1.0/users?$select=userPrincipalName").await).await;
    let other = users["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u["userPrincipalName"].as_str())
        .find(|u| *u != admin)
        .unwrap_or_else(|| panic!("a second user"))
        .to_owned();
    let r = env
        .send(
            Method::PATCH,
            &format!("/v1.0/users/{other}"),
            Some(json!({"accountEnabled": false})),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    let q = redirected(&authorize(&env, &[("login_hint", Some(&other))]).await);
    assert_eq!(q.get("error").map(String::as_str), Some("access_denied"));
    assert!(
        q.get("error_description")
            .is_some_and(|d| d.starts_with("AADSTS50057"))
    );

    // The port of a loopback redirect URI does not matter.
    let r = authorize(
        &env,
        &[(
            "redirect_uri",
            Some("http://127.0.0.1:9/auth/oidc/callback"),
        )],
    )
    .await;
    assert_eq!(r.status(), 302);
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        location.starts_with("http://127.0.0.1:9/auth/oidc/callback?code="),
        "{location}"
    );
}
