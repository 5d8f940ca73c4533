//! Certificate credentials: client assertions signed with an app certificate
//! (<https://learn.microsoft.com/entra/identity-platform/certificate-credentials>), accepted when
//! they are right and refused with Entra's AADSTS codes when they are not.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use behalf_sandbox::{PROVISIONING_CLIENT_ID, READER_CLIENT_ID, SandboxConfig, default_apps};
use reqwest::{Method, Response};
use rsa::RsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
use serde_json::{Value, json};
use sha2::Digest;

use crate::common::*;

const APP_PEM: &str = include_str!("../fixtures/app-certificate.pem");
const OTHER_PEM: &str = include_str!("../fixtures/other-certificate.pem");

/// A test certificate: its DER, private key and JWT header thumbprints.
struct TestCert {
    pem: &'static str,
    key: RsaPrivateKey,
    x5t: String,
    x5t_s256: String,
}

fn block<'a>(pem: &'a str, label: &str) -> &'a str {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem
        .find(&begin)
        .unwrap_or_else(|| panic!("no {label} in fixture"));
    let stop = pem[start..]
        .find(&end)
        .unwrap_or_else(|| panic!("no end of {label}"))
        + start
        + end.len();
    &pem[start..stop]
}

fn cert(pem: &'static str) -> TestCert {
    let body: String = block(pem, "CERTIFICATE")
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = STANDARD
        .decode(body)
        .unwrap_or_else(|e| panic!("fixture DER: {e}"));
    let key = RsaPrivateKey::from_pkcs8_pem(block(pem, "PRIVATE KEY"))
        .unwrap_or_else(|e| panic!("fixture key: {e}"));
    TestCert {
        pem,
        key,
        x5t: URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(&der)),
        x5t_s256: URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&der)),
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A signed JWT with `header` (alg taken from it) and `claims`, signed by `key`.
fn jwt(key: &RsaPrivateKey, header: Value, claims: Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = match header["alg"].as_str() {
        Some("PS256") => rsa::pss::SigningKey::<sha2::Sha256>::new(key.clone())
            .sign_with_rng(&mut rand::rng(), input.as_bytes())
            .to_vec(),
        _ => rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone())
            .sign(input.as_bytes())
            .to_vec(),
    };
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// The documented claims for `client` at `aud`, issued at `at`.
fn claims(client: &str, aud: &str, at: i64) -> Value {
    json!({
        "aud": aud, "iss": client, "sub": client,
        "jti": uuid::Uuid::new_v4().to_string(),
        "nbf": at, "iat": at, "exp": at + 600,
    })
}

async fn post_assertion(env: &Env, client: &str, assertion: &str) -> Response {
    env.http
        .post(env.sb.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap_or_else(|e| panic!("token: {e}"))
}

/// A sandbox whose provisioning app has the fixture certificate registered (and its secret).
async fn with_app_certificate() -> Env {
    let mut apps = default_apps();
    for a in &mut apps {
        if a.client_id == PROVISIONING_CLIENT_ID {
            a.certificates.push(APP_PEM.to_string());
        }
    }
    start_with(SandboxConfig {
        users: 5,
        apps,
        ..SandboxConfig::default()
    })
    .await
}

async fn assert_description(r: Response, status: u16, code: u64, contains: &str) {
    let v = assert_aad_error(r, status, "invalid_client", code).await;
    let d = v["error_description"].as_str().unwrap_or_default();
    assert!(d.contains(contains), "{d}");
    assert_eq!(
        v["error_uri"],
        json!(format!(
            "https://login.microsoftonline.com/error?code={code}"
        ))
    );
}

#[tokio::test]
async fn a_certificate_assertion_gets_a_token_with_rs256_and_ps256() {
    let env = with_app_certificate().await;
    let c = cert(APP_PEM);
    let id = PROVISIONING_CLIENT_ID.to_string();
    let aud = env.sb.token_url();
    // PS256 naming the certificate by SHA-256 thumbprint (the current documentation) …
    let ps = jwt(
        &c.key,
        json!({"alg": "PS256", "typ": "JWT", "x5t#S256": c.x5t_s256}),
        claims(&id, &aud, now()),
    );
    // … and RS256 by SHA-1 thumbprint (the older one), at the verified domain's endpoint.
    let by_domain = aud.replace(&env.sb.tenant_id().to_string(), "contoso.example");
    let rs = jwt(
        &c.key,
        json!({"alg": "RS256", "typ": "JWT", "x5t": c.x5t}),
        claims(&id, &by_domain, now()),
    );
    // The tenant shows the public certificate, never the key that came in the same PEM.
    let info = json_of(
        env.http
            .get(format!("{}/sandbox/info", env.sb.base_url()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .await;
    let shown = info.to_string();
    assert!(shown.contains("BEGIN CERTIFICATE") && !shown.contains("PRIVATE KEY"));
    for assertion in [ps, rs] {
        let r = post_assertion(&env, &id, &assertion).await;
        assert_eq!(r.status(), 200);
        let v = json_of(r).await;
        let token = v["access_token"].as_str().unwrap_or_default().to_string();
        assert_eq!(env.get_with("/v1.0/users", &token).await.status(), 200);
    }
}

#[tokio::test]
async fn bad_assertions_are_refused_with_aadsts_codes() {
    let env = with_app_certificate().await;
    let (app, other) = (cert(APP_PEM), cert(OTHER_PEM));
    let id = PROVISIONING_CLIENT_ID.to_string();
    let aud = env.sb.token_url();
    let header = |c: &TestCert| json!({"alg": "RS256", "typ": "JWT", "x5t#S256": c.x5t_s256});

    // A certificate the app does not have.
    let r = post_assertion(
        &env,
        &id,
        &jwt(&other.key, header(&other), claims(&id, &aud, now())),
    )
    .await;
    assert_description(r, 401, 700027, "not registered on application").await;
    // The app's certificate named, another key signing.
    let r = post_assertion(
        &env,
        &id,
        &jwt(&other.key, header(&app), claims(&id, &aud, now())),
    )
    .await;
    assert_description(r, 401, 700027, "failed signature validation").await;
    // Claims changed after signing.
    let good = jwt(&app.key, header(&app), claims(&id, &aud, now()));
    let mut parts: Vec<String> = good.split('.').map(String::from).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(claims(&id, &aud, now() + 5).to_string());
    let r = post_assertion(&env, &id, &parts.join(".")).await;
    assert_description(r, 401, 700027, "failed signature validation").await;
    // Expired an hour ago, and not valid for another hour.
    let r = post_assertion(
        &env,
        &id,
        &jwt(&app.key, header(&app), claims(&id, &aud, now() - 4_200)),
    )
    .await;
    assert_description(r, 401, 700024, "not within its valid time range").await;
    let r = post_assertion(
        &env,
        &id,
        &jwt(&app.key, header(&app), claims(&id, &aud, now() + 3_600)),
    )
    .await;
    assert_description(r, 401, 700024, "not within its valid time range").await;
    // Another realm's token endpoint, another tenant, the Graph audience.
    for wrong in [
        format!(
            "https://login.microsoftonline.com/{}/oauth2/v2.0/token",
            env.sb.tenant_id()
        ),
        aud.replace(
            &env.sb.tenant_id().to_string(),
            "11111111-2222-3333-4444-555555555555",
        ),
        "https://graph.microsoft.com".to_string(),
    ] {
        let r = post_assertion(
            &env,
            &id,
            &jwt(&app.key, header(&app), claims(&id, &wrong, now())),
        )
        .await;
        assert_description(r, 401, 700023, "audience claim does not match").await;
    }
    // Issued by (and about) another client.
    let r = post_assertion(
        &env,
        &id,
        &jwt(
            &app.key,
            header(&app),
            claims(&READER_CLIENT_ID.to_string(), &aud, now()),
        ),
    )
    .await;
    assert_description(r, 401, 700021, "doesn't match 'client_id'").await;
    // Entra takes RSA signatures only.
    let r = post_assertion(
        &env,
        &id,
        &jwt(
            &app.key,
            json!({"alg": "ES256", "x5t#S256": app.x5t_s256}),
            claims(&id, &aud, now()),
        ),
    )
    .await;
    assert_description(r, 401, 5002738, "'ES256' is not a supported").await;
    // Not a JWT.
    let r = post_assertion(&env, &id, "not-a-jwt").await;
    assert_aad_error(r, 400, "invalid_request", 50027).await;
    // No assertion type.
    let r = env
        .http
        .post(env.sb.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("client_assertion", good.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_aad_error(r, 400, "invalid_request", 900144).await;
    // A public client has nothing to sign with.
    let cli = behalf_sandbox::CLI_CLIENT_ID.to_string();
    let r = post_assertion(
        &env,
        &cli,
        &jwt(&app.key, header(&app), claims(&cli, &aud, now())),
    )
    .await;
    assert_aad_error(r, 400, "invalid_client", 700025).await;
    // The secret still works next to the certificate.
    let token = client_credentials(&env.http, &env.sb, &id, env.sb.client_secret()).await;
    assert!(!token.is_empty());
}

#[tokio::test]
async fn certificates_uploaded_at_run_time_sign_in_until_removed_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cfg = SandboxConfig {
        users: 5,
        state_file: Some(dir.path().join("tenant.json")),
        ..SandboxConfig::default()
    };
    let env = start_with(cfg.clone()).await;
    let c = cert(APP_PEM);
    let id = READER_CLIENT_ID.to_string();
    let path = format!("/sandbox/apps/{id}/certificates");
    let assertion = |env: &Env| {
        jwt(
            &c.key,
            json!({"alg": "PS256", "typ": "JWT", "x5t#S256": c.x5t_s256}),
            claims(&id, &env.sb.token_url(), now()),
        )
    };
    let r = post_assertion(&env, &id, &assertion(&env)).await;
    assert_description(r, 401, 700027, "not registered on application").await;

    // Upload the PEM (certificate and key: the key is ignored, as the portal takes .cer/.pem).
    let r = env
        .http
        .post(format!("{}{path}", env.sb.base_url()))
        .body(c.pem)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status(), 201);
    let credential = json_of(r).await;
    assert_eq!(credential["type"], "AsymmetricX509Cert");
    assert_eq!(credential["x5t#S256"], json!(c.x5t_s256));
    let key_id = credential["keyId"].as_str().unwrap_or_default().to_string();
    // The same certificate twice, and something that is no certificate.
    let again = env
        .admin(Method::POST, &path, json!({"key": "bm90IGEgY2VydA=="}))
        .await;
    assert_eq!(again.status(), 400);
    let r = post_assertion(&env, &id, &assertion(&env)).await;
    assert_eq!(r.status(), 200);
    env.sb.shutdown().await;

    // Restarted from the state file: still registered.
    let env = start_with(cfg).await;
    let listed = json_of(
        env.http
            .get(format!("{}{path}", env.sb.base_url()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .await;
    assert_eq!(listed["value"][0]["keyId"], json!(key_id));
    assert_eq!(
        post_assertion(&env, &id, &assertion(&env)).await.status(),
        200
    );

    // Removed: refused again.
    let r = env
        .http
        .delete(format!("{}{path}/{key_id}", env.sb.base_url()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status(), 204);
    let r = post_assertion(&env, &id, &assertion(&env)).await;
    assert_description(r, 401, 700027, "not registered on application").await;
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    let env = with_app_certificate().await;
    let c = cert(APP_PEM);
    let id = PROVISIONING_CLIENT_ID.to_string();
    // The fixture is valid for a century: move the sandbox's clock past its end.
    let ahead = 101 * 366 * 86_400;
    env.advance(ahead).await;
    let r = post_assertion(
        &env,
        &id,
        &jwt(
            &c.key,
            json!({"alg": "RS256", "x5t#S256": c.x5t_s256}),
            claims(&id, &env.sb.token_url(), now() + ahead),
        ),
    )
    .await;
    assert_description(r, 401, 700027, "The key used is expired").await;
}
