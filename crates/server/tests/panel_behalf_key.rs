//! The user page's Behalf Key tab over real HTTP: an owner issues a pairing code (shown once),
//! the device it pairs is listed by name and revoked from there; a viewer sees no forms and is
//! refused when posting anyway.

mod common;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use behalf_app::ops::behalf_key::{DevicePublicKey, PairRequest};
use behalf_domain::{Role, Secret, Upn, UserDraft};
use common::TestServer;
use common::panel::{browser, client, get};
use serde_json::json;

fn device_key() -> DevicePublicKey {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let p = pair.public_key().as_ref();
    DevicePublicKey::from_jwk(&json!({"kty": "EC", "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(&p[1..33]), "y": URL_SAFE_NO_PAD.encode(&p[33..65])}))
    .unwrap()
}

fn between<'a>(page: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = page.find(start)? + start.len();
    page[from..].split(end).next()
}

#[tokio::test]
async fn a_pairing_code_is_shown_once_and_its_device_is_listed_and_revoked_from_the_tab() {
    let server = TestServer::start().await;
    server.admin("owner@contoso.test", Role::Owner, true).await;
    server
        .admin("viewer@contoso.test", Role::Viewer, false)
        .await;
    let ws = server.app.workspace().id;
    server
        .app
        .store()
        .upsert_users(
            ws,
            &[UserDraft {
                connection_id: None,
                external_id: None,
                upn: Upn::parse("ada@contoso.test").unwrap(),
                display_name: "Ada".into(),
                mail: None,
                department: None,
                enabled: true,
            }],
        )
        .await
        .unwrap();
    let user = server
        .app
        .store()
        .find_user_by_upn(ws, &Upn::parse("ada@contoso.test").unwrap())
        .await
        .unwrap()
        .unwrap();
    let tab = format!("/users/{}?tab=devices", user.id);
    let owner = browser(&server, "owner@contoso.test").await;
    let page = get(&server, &owner.cookie, &tab).await;
    assert!(page.contains("No Behalf Key is paired"), "{page}");
    assert!(page.contains("Issue a pairing code") && page.contains("administrator's device"));

    let answer = client()
        .post(server.url(&format!("/users/{}/key-pairing", user.id)))
        .header("cookie", &owner.cookie)
        .form(&[("csrf", owner.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["cache-control"], "no-store");
    let shown = answer.text().await.unwrap();
    let code = between(&shown, "<code id=\"pairing-code\">", "</code>")
        .expect("the code on the page")
        .to_owned();
    assert!(code.starts_with("bhp_"), "{shown}");

    // The user's extension pairs with it (its signed request is the server's /key/v1 test's).
    server
        .app
        .pair_key_device(PairRequest {
            code: Secret::new(code.clone()),
            device_name: "Ada's laptop".into(),
            public_key: device_key(),
            pin: Secret::new("ada-pin-1234"),
        })
        .await
        .unwrap();
    let page = get(&server, &owner.cookie, &tab).await;
    assert!(
        page.contains("Ada&#39;s laptop") || page.contains("Ada's laptop"),
        "{page}"
    );
    assert!(!page.contains(&code), "the code is shown once");

    // A viewer sees the device but no form, and is refused when posting anyway.
    let viewer = browser(&server, "viewer@contoso.test").await;
    let seen = get(&server, &viewer.cookie, &tab).await;
    assert!(
        seen.contains("laptop")
            && !seen.contains("Issue a pairing code")
            && !seen.contains("/revoke\"")
    );
    let action = page
        .split("action=\"")
        .filter_map(|rest| rest.split('"').next())
        .find(|a| a.contains("/devices/"))
        .expect("a revoke form")
        .to_owned();
    let refused = client()
        .post(server.url(&action))
        .header("cookie", &viewer.cookie)
        .form(&[("csrf", viewer.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);

    let done = client()
        .post(server.url(&action))
        .header("cookie", &owner.cookie)
        .form(&[("csrf", owner.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    let page = get(&server, &owner.cookie, &tab).await;
    assert!(
        page.contains("revoked 20") && !page.contains("/revoke\""),
        "{page}"
    );
    server.stop().await;
}
