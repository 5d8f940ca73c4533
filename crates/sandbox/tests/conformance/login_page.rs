//! The `https://login.microsoft.com` sign-in page over real TLS: served only when asked for,
//! under a certificate for that name from the sandbox's own test CA (a client that does not
//! trust the CA, or asks for another name, is refused at the handshake), with a CSP that allows
//! no inline script, and the sign-in endpoints on the page's own origin: a passkey registered
//! through Graph signs in there.

use std::net::SocketAddr;

use behalf_sandbox::SandboxConfig;
use reqwest::{Certificate, Client, Method, StatusCode};
use serde_json::{Value, json};

use crate::authenticator::{Make, TestKey};
use crate::common::*;

const UPN: &str = "admin@contoso.example";

/// A client that trusts only `ca_pem` and finds `name` at `addr`.
fn client_for(name: &str, addr: SocketAddr, ca_pem: &str) -> Client {
    Client::builder()
        .tls_certs_only([Certificate::from_pem(ca_pem.as_bytes()).unwrap()])
        .resolve(name, addr)
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_sign_in_page_is_off_unless_asked_for() {
    let env = start(3).await;
    assert_eq!(env.sb.login_page_addr(), None);
    assert_eq!(env.sb.login_ca_pem(), None);
}

#[tokio::test]
async fn the_sign_in_page_serves_https_login_microsoft_com_and_signs_in_with_a_passkey() {
    let env = start_with(SandboxConfig {
        users: 3,
        login_page: true,
        ..SandboxConfig::default()
    })
    .await;
    let addr = env.sb.login_page_addr().expect("the page listens");
    assert!(addr.ip().is_loopback(), "{addr}");
    let ca = env.sb.login_ca_pem().expect("the CA's certificate");
    assert!(
        ca.starts_with("-----BEGIN CERTIFICATE-----") && !ca.contains("PRIVATE KEY"),
        "the CA's certificate alone: {ca}"
    );
    // reqwest connects to the port in the URL (a resolve override gives only the address).
    let page = |path: &str| format!("https://login.microsoft.com:{}{path}", addr.port());
    let https = client_for("login.microsoft.com", addr, ca);

    let r = https.get(page("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let html = r.text().await.unwrap();
    assert!(html.contains("Sign in with a passkey"), "{html}");
    assert!(
        html.contains(r#"<script type="module" src="/signin.js"></script>"#)
            && html.matches("<script").count() == 1,
        "one script, from a file: {html}"
    );
    let r = https.get(page("/signin.js")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("navigator.credentials.get")
    );

    // A client that trusts only the public roots, or asks the same server for another name,
    // never gets past the handshake.
    let untrusting = Client::builder()
        .resolve("login.microsoft.com", addr)
        .build()
        .unwrap();
    let refused = untrusting.get(page("/")).send().await.unwrap_err();
    assert!(refused.is_connect(), "{refused:?}");
    let other_name = client_for("login.microsoftonline.com", addr, ca);
    let refused = other_name
        .get(format!(
            "https://login.microsoftonline.com:{}/",
            addr.port()
        ))
        .send()
        .await
        .unwrap_err();
    assert!(refused.is_connect(), "{refused:?}");

    // begin and finish on the page's origin: before a passkey, Entra's refusal; after one
    // registered through Graph, a sign-in the verifier accepts (and a replay it does not).
    let post = async |path: &str, body: &Value| {
        let r = https.post(page(path)).json(body).send().await.unwrap();
        let status = r.status();
        (status, r.json::<Value>().await.unwrap_or(Value::Null))
    };
    let (status, none) = post("/sandbox/signin/begin", &json!({"upn": UPN})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{none}");
    assert_eq!(
        none["error"]["message"],
        format!("'{UPN}' has no passkey registered.")
    );
    assert!(
        none["error"]["innerError"]["request-id"].is_string(),
        "{none}"
    );

    let mut key = TestKey::new();
    let options = json_of(
        env.get(&format!(
            "/beta/users/{UPN}/authentication/fido2Methods/creationOptions(challengeTimeoutInMinutes=10)"
        ))
        .await,
    )
    .await;
    let body = key.register_body(&options, &Make::default());
    let r = env
        .send(
            Method::POST,
            &format!("/beta/users/{UPN}/authentication/fido2Methods"),
            Some(body),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    let (status, begin) = post("/sandbox/signin/begin", &json!({"upn": UPN})).await;
    assert_eq!(status, StatusCode::OK, "{begin}");
    assert_eq!(begin["publicKey"]["rpId"], "login.microsoft.com");
    let assertion = key.assert(&begin);
    let (status, done) = post("/sandbox/signin/finish", &assertion).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["upn"], UPN);
    let (status, replay) = post("/sandbox/signin/finish", &assertion).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{replay}");
    let state = env.state().await;
    assert_eq!(
        (state["signIns"].as_u64(), state["signInsRejected"].as_u64()),
        (Some(1), Some(1)),
        "{state}"
    );
}
