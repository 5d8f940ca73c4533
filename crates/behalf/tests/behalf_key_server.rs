//! Behalf Key's server side over real HTTP (docs/BEHALF_KEY.md): the real `behalf serve` on a
//! sandbox tenant whose users got their passkeys through Graph, and a client that does what the
//! extension does — a P-256 device key, RFC 9421 signatures, clientDataJSON as a browser builds
//! it — pairing, then signing in at the sandbox, whose independent verifier (webauthn-rs) checks
//! the assertion. Also: the PIN counts down and blocks, a revoked device and a replayed request
//! are refused, a pairing code works once and is not kept in clear.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use behalf_sandbox::Knobs;
use common::behalf_key::{Admin, ok};
use common::tenant::Tenant;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use url::Url;
use webauthn_rs_core::WebauthnCore;
use webauthn_rs_core::proto::{
    AttestationConveyancePreference, COSEAlgorithm, PublicKeyCredential,
    RegisterPublicKeyCredential, UserVerificationPolicy,
};

const ORIGIN: &str = "https://login.microsoft.com";
const RP_ID: &str = "login.microsoft.com";

/// The extension's side, as docs/BEHALF_KEY.md says it signs.
struct Device {
    key: EcdsaKeyPair,
    base: String,
    http: reqwest::Client,
}

/// A request exactly as the extension would send it, kept so it can be sent again.
struct Signed {
    method: Method,
    url: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Device {
    fn new(base: &str) -> Device {
        Device {
            key: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
            base: base.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    fn jwk(&self) -> Value {
        let p = self.key.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&p[1..33]), "y": URL_SAFE_NO_PAD.encode(&p[33..65])})
    }

    /// RFC 7638: SHA-256 over the required members in lexicographic order.
    fn thumbprint(&self) -> String {
        let jwk = self.jwk();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["x"].as_str().unwrap(),
            jwk["y"].as_str().unwrap()
        );
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
        URL_SAFE_NO_PAD.encode(digest.as_ref())
    }

    /// RFC 9421 §2.5 signature base, built by hand as the extension builds it.
    fn sign(&self, method: Method, path: &str, body: Option<&Value>) -> Signed {
        let url = format!("{}{path}", self.base);
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut nonce = [0u8; 16];
        aws_lc_rs::rand::fill(&mut nonce).unwrap();
        let nonce = URL_SAFE_NO_PAD.encode(nonce);
        let mut headers = Vec::new();
        let mut base = format!("\"@method\": {method}\n\"@target-uri\": {url}\n");
        let components = if body.is_empty() {
            r#"("@method" "@target-uri")"#
        } else {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &body);
            let field = format!("sha-256=:{}:", STANDARD.encode(digest.as_ref()));
            base.push_str(&format!("\"content-digest\": {field}\n"));
            headers.push(("content-digest", field));
            headers.push(("content-type", "application/json".to_owned()));
            r#"("@method" "@target-uri" "content-digest")"#
        };
        let params = format!(
            r#"{components};created={created};nonce="{nonce}";keyid="{}";alg="ecdsa-p256-sha256""#,
            self.thumbprint()
        );
        base.push_str(&format!("\"@signature-params\": {params}"));
        let signature = self
            .key
            .sign(&SystemRandom::new(), base.as_bytes())
            .unwrap();
        headers.push(("signature-input", format!("bk={params}")));
        headers.push((
            "signature",
            format!("bk=:{}:", STANDARD.encode(signature.as_ref())),
        ));
        Signed {
            method,
            url,
            headers,
            body,
        }
    }

    async fn send(&self, signed: &Signed) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(signed.method.clone(), &signed.url)
            .body(signed.body.clone());
        for (name, value) in &signed.headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.send(&self.sign(method, path, body.as_ref())).await
    }

    async fn pair(&self, code: &str, pin: &str) -> (StatusCode, Value) {
        let body = json!({"code": code, "device_name": "Test laptop", "public_key": self.jwk(), "pin": pin});
        self.call(Method::POST, "/key/v1/pair", Some(body)).await
    }

    /// A sign-in at the sandbox's `login.microsoft.com`, as the extension answers the page's
    /// `navigator.credentials.get`: the page's options, clientDataJSON as Chromium writes it,
    /// the server's signature, the PublicKeyCredential JSON back to the page.
    async fn sign_in(
        &self,
        tenant: &Tenant,
        upn: &str,
        pin: Option<&str>,
    ) -> Result<Value, (StatusCode, Value)> {
        let sandbox = tenant.sandbox.base_url();
        let options: Value = tenant
            .http
            .post(format!("{sandbox}/sandbox/signin/begin"))
            .json(&json!({"upn": upn}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let options = &options["publicKey"];
        let rp_id = options["rpId"].as_str().unwrap_or(RP_ID);
        let allow: Vec<Value> = options["allowCredentials"]
            .as_array()
            .map(|a| a.iter().map(|c| c["id"].clone()).collect())
            .unwrap_or_default();
        let (status, found) = self
            .call(
                Method::POST,
                "/key/v1/credentials/find",
                Some(json!({"rp_id": rp_id, "allow_credentials": allow})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{found}");
        let credential = found["credentials"][0].clone();
        assert_eq!(credential["user"]["name"], upn, "{found}");
        let client_data = format!(
            r#"{{"type":"webauthn.get","challenge":"{}","origin":"{ORIGIN}","crossOrigin":false}}"#,
            options["challenge"].as_str().unwrap()
        );
        let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, client_data.as_bytes());
        let mut body = json!({
            "credential_id": credential["id"], "rp_id": rp_id, "origin": ORIGIN,
            "client_data_hash": URL_SAFE_NO_PAD.encode(hash.as_ref()), "user_presence": true,
        });
        if let Some(pin) = pin {
            body["pin"] = json!(pin);
        }
        let (status, signed) = self
            .call(Method::POST, "/key/v1/assertions", Some(body))
            .await;
        if status != StatusCode::OK {
            return Err((status, signed));
        }
        let credential_json = json!({
            "id": credential["id"], "rawId": credential["id"], "type": "public-key",
            "response": {
                "clientDataJSON": URL_SAFE_NO_PAD.encode(client_data.as_bytes()),
                "authenticatorData": signed["authenticator_data"],
                "signature": signed["signature"],
                "userHandle": signed["user_handle"],
            },
            "clientExtensionResults": {},
        });
        let answer = tenant
            .http
            .post(format!("{sandbox}/sandbox/signin/finish"))
            .json(&credential_json)
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            // Microsoft (the sandbox) refused what Behalf signed.
            return Err((status, body));
        }
        Ok(signed)
    }
}

/// A sandbox tenant whose users got a passkey through Graph, `behalf serve` on it, an owner's
/// API token, and the UPNs of the users with a passkey.
async fn started() -> (Tenant, common::Server, Admin, Vec<String>) {
    started_with(&[]).await
}

/// As [`started`], with more environment for `behalf serve`.
async fn started_with(env: &[(&str, String)]) -> (Tenant, common::Server, Admin, Vec<String>) {
    let tenant = Tenant::start(
        3,
        Knobs {
            graph_throttling: false,
            ..Knobs::default()
        },
    )
    .await;
    let (server, admin, upns) = common::behalf_key::serve_provisioned(&tenant, env).await;
    (tenant, server, admin, upns)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paired_device_signs_in_at_microsoft_with_the_vault_key_and_nothing_else_does() {
    let (tenant, server, admin, upns) = started().await;
    let (alice, bob) = (&upns[0], &upns[1]);

    // Pairing: the code works once; the signature must be by the key being paired.
    let alice_id = admin.user_id(alice).await;
    let code = admin.pairing_code(&alice_id).await;
    let device = Device::new(&server.base_url);
    let (status, short) = device.pair(&code, "12").await;
    assert_eq!(
        (status, short["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("pin_policy")),
        "{short}"
    );
    let impostor = Device::new(&server.base_url);
    let forged = impostor.sign(
        Method::POST,
        "/key/v1/pair",
        Some(&json!({"code": code, "device_name": "x", "public_key": device.jwk(), "pin": "1234"})),
    );
    let (status, _) = impostor.send(&forged).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a pairing signed by another key than the one it registers"
    );
    let (status, paired) = device.pair(&code, "alice-pin-2468").await;
    assert_eq!(status, StatusCode::CREATED, "{paired}");
    assert_eq!(paired["user"]["upn"], alice.as_str());
    assert_eq!(paired["role"], "user");
    let (status, again) = Device::new(&server.base_url)
        .pair(&code, "alice-pin-2468")
        .await;
    assert_eq!(
        (status, again["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("pairing_code_invalid"))
    );

    let (status, me) = device.call(Method::GET, "/key/v1/me", None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(
        (me["user"]["upn"].as_str(), me["pin_retries"].as_i64()),
        (Some(alice.as_str()), Some(8))
    );

    // Sign-in at Microsoft (the sandbox's independent verifier), with and without the PIN:
    // UV is claimed only when the PIN was checked.
    let with_pin = device
        .sign_in(&tenant, alice, Some("alice-pin-2468"))
        .await
        .expect("signed in");
    let flags = |signed: &Value| {
        URL_SAFE_NO_PAD
            .decode(signed["authenticator_data"].as_str().unwrap())
            .unwrap()[32]
    };
    assert_eq!(flags(&with_pin) & 0x05, 0x05, "UP and UV");
    // Without the PIN Behalf does not claim UV, and Microsoft, which requires it, refuses.
    let (_, refused) = device.sign_in(&tenant, alice, None).await.unwrap_err();
    assert!(
        refused.to_string().contains("user verified bit is not set"),
        "{refused}"
    );

    // Alice's device holds nothing for Bob, nor for another site.
    let (status, found) = device
        .call(
            Method::POST,
            "/key/v1/credentials/find",
            Some(json!({"rp_id": "example.com"})),
        )
        .await;
    assert_eq!(
        (status, found["credentials"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
    let (status, wrong_origin) = device
        .call(
            Method::POST,
            "/key/v1/assertions",
            Some(json!({
            "credential_id": "AAAA", "rp_id": RP_ID, "origin": "https://evil.example",
            "client_data_hash": URL_SAFE_NO_PAD.encode([0u8; 32]), "user_presence": true})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{wrong_origin}");

    // A request sent twice is refused the second time (its nonce was seen).
    let signed = device.sign(Method::GET, "/key/v1/me", None);
    assert_eq!(device.send(&signed).await.0, StatusCode::OK);
    assert_eq!(
        device.send(&signed).await.0,
        StatusCode::UNAUTHORIZED,
        "a replay"
    );
    // An unpaired key is a stranger.
    assert_eq!(
        impostor.call(Method::GET, "/key/v1/me", None).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Bob's PIN: each wrong one costs a retry (CTAP: 8), then it is blocked, even for the
    // right PIN; a right one before that gives the retries back.
    let bob_id = admin.user_id(bob).await;
    let bobs = Device::new(&server.base_url);
    assert_eq!(
        bobs.pair(&admin.pairing_code(&bob_id).await, "bob-pin-1357")
            .await
            .0,
        StatusCode::CREATED
    );
    let (status, wrong) = bobs
        .sign_in(&tenant, bob, Some("wrong-pin-0000"))
        .await
        .unwrap_err();
    assert_eq!(
        (status, wrong["error"].as_str(), wrong["retries"].as_i64()),
        (StatusCode::FORBIDDEN, Some("pin_invalid"), Some(7)),
        "{wrong}"
    );
    bobs.sign_in(&tenant, bob, Some("bob-pin-1357"))
        .await
        .expect("the right PIN");
    assert_eq!(
        bobs.call(Method::GET, "/key/v1/me", None).await.1["pin_retries"],
        8
    );
    for left in (0..8).rev() {
        let (status, wrong) = bobs
            .sign_in(&tenant, bob, Some("wrong-pin-0000"))
            .await
            .unwrap_err();
        if left > 0 {
            assert_eq!(
                (status, wrong["retries"].as_i64()),
                (StatusCode::FORBIDDEN, Some(left)),
                "{wrong}"
            );
        } else {
            assert_eq!(
                (status, wrong["error"].as_str()),
                (StatusCode::LOCKED, Some("pin_blocked")),
                "{wrong}"
            );
        }
    }
    let (status, blocked) = bobs
        .sign_in(&tenant, bob, Some("bob-pin-1357"))
        .await
        .unwrap_err();
    assert_eq!(
        (status, blocked["error"].as_str()),
        (StatusCode::LOCKED, Some("pin_blocked"))
    );
    // A new pairing code lets Bob set a new PIN.
    let rescue = Device::new(&server.base_url);
    assert_eq!(
        rescue
            .pair(&admin.pairing_code(&bob_id).await, "bob-new-9753")
            .await
            .0,
        StatusCode::CREATED
    );
    rescue
        .sign_in(&tenant, bob, Some("bob-new-9753"))
        .await
        .expect("the new PIN");

    // Revoked: the device's next request is refused, in words the extension acts on.
    let (status, devices) = admin
        .call(
            Method::GET,
            &format!("/api/v1/users/{alice_id}/key-devices"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{devices}");
    let device_id = devices[0]["id"].as_str().unwrap().to_owned();
    let (status, revoked) = admin
        .call(
            Method::POST,
            &format!("/api/v1/key-devices/{device_id}/revoke"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    let (status, refused) = device.call(Method::GET, "/key/v1/me", None).await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("device_revoked"))
    );
    let (status, _) = device
        .call(
            Method::POST,
            "/key/v1/credentials/find",
            Some(json!({"rp_id": RP_ID})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a revoked device signs nothing"
    );

    // Every use is an event: who, which RP, from which origin and device.
    let (status, audit) = admin
        .call(Method::GET, "/api/v1/audit?action_prefix=behalf_key.", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let text = audit.to_string();
    for action in [
        "behalf_key.pairing_issued",
        "behalf_key.paired",
        "behalf_key.used",
        "behalf_key.pin_failed",
        "behalf_key.pin_blocked",
        "behalf_key.device_revoked",
    ] {
        assert!(text.contains(action), "{action} in {text}");
    }
    assert!(text.contains(ORIGIN) && text.contains(&device_id), "{text}");

    // Neither the pairing codes nor the PINs are kept in clear.
    drop(server);
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(tenant.data.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            stored.extend(std::fs::read(path).unwrap());
        }
    }
    for secret in [
        code.as_str(),
        "alice-pin-2468",
        "bob-pin-1357",
        "bob-new-9753",
    ] {
        assert!(
            !stored.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} stored in clear"
        );
    }
}

/// A second website, a WebAuthn relying party of its own with its own verifier (webauthn-rs).
const SHOP_ORIGIN: &str = "https://shop.example";
const SHOP_RP_ID: &str = "shop.example";

fn shop() -> WebauthnCore {
    WebauthnCore::new_unsafe_experts_only(
        "The shop",
        SHOP_RP_ID,
        vec![Url::parse(SHOP_ORIGIN).unwrap()],
        std::time::Duration::from_secs(300),
        None,
        None,
    )
}

fn client_data(kind: &str, challenge: &str, origin: &str) -> (String, String) {
    let json = format!(
        r#"{{"type":"{kind}","challenge":"{challenge}","origin":"{origin}","crossOrigin":false}}"#
    );
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, json.as_bytes());
    (json, URL_SAFE_NO_PAD.encode(hash.as_ref()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_registers_a_passkey_for_a_user_at_another_site_and_the_user_signs_in_there() {
    let (tenant, server, admin, upns) = started().await;
    let (alice, admins_own) = (&upns[0], &upns[1]);
    let alices = Device::new(&server.base_url);
    let alice_id = admin.user_id(alice).await;
    assert_eq!(
        alices
            .pair(&admin.pairing_code(&alice_id).await, "alice-pin-2468")
            .await
            .0,
        StatusCode::CREATED
    );
    // The admin's own device is paired with a code from the command line (`behalf key pair
    // --admin`), which prints the code alone on stdout.
    let admin_device = Device::new(&server.base_url);
    let out = tenant
        .run(&["key", "pair", "--user", admins_own, "--admin"])
        .await;
    ok(&out);
    let cli_code = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(cli_code.starts_with("bhp_"), "{cli_code}");
    let (status, paired) = admin_device.pair(&cli_code, "admin-pin-8642").await;
    assert_eq!(
        (status, paired["role"].as_str()),
        (StatusCode::CREATED, Some("admin")),
        "{paired}"
    );

    // The shop asks for a passkey for its account "alice@shop" (its own user handle).
    let rp = shop();
    let builder = rp
        .new_challenge_register_builder(b"shop-account-17", "alice@shop", "Alice at the shop")
        .unwrap()
        .attestation(AttestationConveyancePreference::None)
        .user_verification_policy(UserVerificationPolicy::Required)
        .credential_algorithms(vec![COSEAlgorithm::ES256])
        .require_resident_key(true);
    let (ccr, state) = rp.generate_challenge_register(builder).unwrap();
    let options = serde_json::to_value(&ccr).unwrap()["publicKey"].clone();
    let (json_text, hash) = client_data(
        "webauthn.create",
        options["challenge"].as_str().unwrap(),
        SHOP_ORIGIN,
    );
    let body = |pin: &str| {
        json!({
            "for_user": alice, "rp": options["rp"], "origin": SHOP_ORIGIN,
            "user": {"id": options["user"]["id"], "name": options["user"]["name"],
                "display_name": options["user"]["displayName"]},
            "client_data_hash": hash, "pub_key_cred_params": options["pubKeyCredParams"],
            "exclude_credentials": [], "pin": pin,
        })
    };
    // Alice's own device is not an admin's; a wrong admin PIN counts; a foreign origin is refused.
    let (status, refused) = alices
        .call(
            Method::POST,
            "/key/v1/registrations",
            Some(body("alice-pin-2468")),
        )
        .await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_admin")),
        "{refused}"
    );
    let (status, wrong) = admin_device
        .call(Method::POST, "/key/v1/registrations", Some(body("nope")))
        .await;
    assert_eq!(
        (status, wrong["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("pin_invalid")),
        "{wrong}"
    );
    let mut elsewhere = body("admin-pin-8642");
    elsewhere["origin"] = json!("https://evil.example");
    assert_eq!(
        admin_device
            .call(Method::POST, "/key/v1/registrations", Some(elsewhere))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );

    let (status, made) = admin_device
        .call(
            Method::POST,
            "/key/v1/registrations",
            Some(body("admin-pin-8642")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["user"], alice.as_str());
    // The page's PublicKeyCredential, verified by the shop.
    let registration: RegisterPublicKeyCredential = serde_json::from_value(json!({
        "id": made["credential_id"], "rawId": made["credential_id"], "type": "public-key",
        "response": {
            "clientDataJSON": URL_SAFE_NO_PAD.encode(json_text.as_bytes()),
            "attestationObject": made["attestation_object"], "transports": made["transports"],
        },
        "extensions": {},
    }))
    .unwrap();
    let credential = rp
        .register_credential(&registration, &state, None)
        .unwrap_or_else(|e| panic!("the shop refused the registration: {e:?} {made}"));
    // toJSON()'s publicKey is the same key, as SubjectPublicKeyInfo DER.
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(made["public_key"].as_str().unwrap())
            .unwrap()
            .len(),
        91
    );

    // Alice signs in at the shop from her own device: the credential is in her vault key.
    let builder = rp
        .new_challenge_authenticate_builder(vec![credential], None)
        .unwrap();
    let (rcr, auth_state) = rp.generate_challenge_authenticate(builder).unwrap();
    let request = serde_json::to_value(&rcr).unwrap()["publicKey"].clone();
    let (status, found) = alices
        .call(
            Method::POST,
            "/key/v1/credentials/find",
            Some(json!({"rp_id": SHOP_RP_ID})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(
        found["credentials"][0]["id"], made["credential_id"],
        "{found}"
    );
    assert_eq!(
        found["credentials"][0]["user"]["id"], options["user"]["id"],
        "the shop's user handle"
    );
    let (json_text, hash) = client_data(
        "webauthn.get",
        request["challenge"].as_str().unwrap(),
        SHOP_ORIGIN,
    );
    let (status, signed) = alices
        .call(
            Method::POST,
            "/key/v1/assertions",
            Some(json!({
            "credential_id": made["credential_id"], "rp_id": SHOP_RP_ID, "origin": SHOP_ORIGIN,
            "client_data_hash": hash, "user_presence": true, "pin": "alice-pin-2468"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{signed}");
    let assertion: PublicKeyCredential = serde_json::from_value(json!({
        "id": made["credential_id"], "rawId": made["credential_id"], "type": "public-key",
        "response": {
            "clientDataJSON": URL_SAFE_NO_PAD.encode(json_text.as_bytes()),
            "authenticatorData": signed["authenticator_data"], "signature": signed["signature"],
            "userHandle": signed["user_handle"],
        },
        "extensions": {},
    }))
    .unwrap();
    let result = rp.authenticate_credential(&assertion, &auth_state).unwrap();
    assert!(result.user_verified());
    // The admin's device holds nothing for the shop itself: the credential is Alice's.
    let (_, theirs) = admin_device
        .call(
            Method::POST,
            "/key/v1/credentials/find",
            Some(json!({"rp_id": SHOP_RP_ID})),
        )
        .await;
    assert_eq!(
        theirs["credentials"].as_array().map(Vec::len),
        Some(0),
        "{theirs}"
    );

    // `behalf key devices` lists the admin's device as an admin's.
    let out = tenant
        .run(&["key", "devices", "--user", admins_own, "--json"])
        .await;
    ok(&out);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            listed[0]["role"].as_str(),
            listed[0]["revoked_at"].is_null()
        ),
        (Some("admin"), true),
        "{listed}"
    );

    // The audit says who registered what for whom, where.
    let (_, audit) = admin
        .call(
            Method::GET,
            "/api/v1/audit?action_prefix=behalf_key.registered_for_user",
            None,
        )
        .await;
    let text = audit.to_string();
    assert!(
        text.contains(SHOP_ORIGIN)
            && text.contains(alice.as_str())
            && text.contains(admins_own.as_str()),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pairing_code_mailed_to_the_user_pairs_their_device_and_is_kept_nowhere() {
    let sink = common::smtp::Sink::start();
    let (tenant, server, admin, upns) = started_with(&[
        ("BEHALF_MAIL__RELAY", "127.0.0.1".to_owned()),
        ("BEHALF_MAIL__PORT", sink.port.to_string()),
        ("BEHALF_MAIL__SECURITY", "none".to_owned()),
        ("BEHALF_MAIL__FROM", "IT <it@contoso.example>".to_owned()),
    ])
    .await;
    let alice = &upns[0];
    let (status, sent) = admin
        .call(
            Method::POST,
            "/api/v1/mail/key-pairing",
            Some(json!({"users": [alice]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    assert_eq!(sent[0]["sent"], true, "{sent}");
    assert!(
        !sent.to_string().contains("bhp_"),
        "the code is in the mail only: {sent}"
    );
    let mail = common::smtp::unquote(&sink.messages(1)[0]);
    assert!(
        mail.contains(&server.base_url),
        "the server's address is in the mail: {mail}"
    );
    let at = mail.find("bhp_").expect("a pairing code in the mail");
    let code: String = mail[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    let device = Device::new(&server.base_url);
    let (status, paired) = device.pair(&code, "alice-pin-2468").await;
    assert_eq!(status, StatusCode::CREATED, "{paired}");
    assert_eq!(paired["user"]["upn"], alice.as_str());
    device
        .sign_in(&tenant, alice, Some("alice-pin-2468"))
        .await
        .expect("signed in with the mailed pairing");
    drop(server);
    let stored = common::smtp::stored_bytes(tenant.data.path());
    assert!(
        !common::smtp::contains(&stored, &code),
        "the code is not stored in clear"
    );
}

/// Polls `check` until it answers `Some`, or fails naming `what` after 30 s.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_key_waits_for_the_users_approval_and_is_registered_once_or_ends_declined() {
    use behalf_authenticator::{
        Aaguid, Attestation, Authenticator, AuthenticatorConfig, CreationOptions, MemoryStore,
    };
    let (tenant, server, admin, upns) = started().await;
    let (alice, bob) = (&upns[0], &upns[1]);
    let alices = Device::new(&server.base_url);
    let bobs = Device::new(&server.base_url);
    for (device, upn, pin) in [
        (&alices, alice, "alice-pin-2468"),
        (&bobs, bob, "bob-pin-1357"),
    ] {
        let id = admin.user_id(upn).await;
        assert_eq!(
            device.pair(&admin.pairing_code(&id).await, pin).await.0,
            StatusCode::CREATED
        );
    }
    let before = common::tenant::methods_per_user(&tenant.state().await);

    // The admin provisions both with a local key: each waits for the user's approval.
    let (status, job) = admin
        .call(
            Method::POST,
            "/api/v1/jobs",
            Some(json!({"upns": [alice, bob], "mode": "local"})),
        )
        .await;
    assert!(status.is_success(), "{status} {job}");
    let job_id = job["job"]["id"].as_str().unwrap().to_owned();
    let items = || async {
        let (_, page) = admin
            .call(Method::GET, &format!("/api/v1/jobs/{job_id}/items"), None)
            .await;
        page["items"].as_array().cloned().unwrap_or_default()
    };
    let state_of = |items: &[Value], upn: &str| {
        items
            .iter()
            .find(|i| i["upn"] == upn)
            .map(|i| (i["state"].as_str().unwrap_or("").to_owned(), i.clone()))
    };
    let request = eventually("alice's request in her Behalf Key", || async {
        let (_, listed) = alices.call(Method::GET, "/key/v1/requests", None).await;
        listed["requests"]
            .as_array()
            .and_then(|r| r.first().cloned())
    })
    .await;
    assert_eq!(
        (request["rp_id"].as_str(), request["rp_name"].as_str()),
        (Some(RP_ID), Some("Microsoft")),
        "{request}"
    );
    assert_eq!(
        alices.call(Method::GET, "/key/v1/me", None).await.1["pending_requests"],
        1
    );
    let waiting = items().await;
    assert_eq!(
        state_of(&waiting, alice).unwrap().0,
        "waiting_for_user",
        "{waiting:?}"
    );
    let request_id = request["id"].as_str().unwrap();

    // Bob's device cannot answer Alice's request; a wrong PIN does not approve it.
    let path = |what: &str| format!("/key/v1/requests/{request_id}/{what}");
    assert_eq!(
        bobs.call(
            Method::POST,
            &path("approve"),
            Some(json!({"pin": "bob-pin-1357"}))
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        alices
            .call(Method::POST, &path("approve"), Some(json!({"pin": "nope"})))
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    // Approved: fresh creation options from Graph; the extension makes the credential.
    let (status, approved) = alices
        .call(
            Method::POST,
            &path("approve"),
            Some(json!({"pin": "alice-pin-2468"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(approved["origin"], ORIGIN);
    let options = CreationOptions::from_value(&json!({"publicKey": approved["options"]})).unwrap();
    let (client_json, hash_b64) = client_data(
        "webauthn.create",
        approved["options"]["challenge"].as_str().unwrap(),
        ORIGIN,
    );
    let hash: [u8; 32] = URL_SAFE_NO_PAD
        .decode(&hash_b64)
        .unwrap()
        .try_into()
        .unwrap();
    // The extension's own authenticator (a key only it holds), `none` attestation.
    let own = Authenticator::new(
        AuthenticatorConfig {
            aaguid: Aaguid([0x44; 16]),
            attestation: Attestation::None,
        },
        MemoryStore::new(),
    );
    let (made, credential) = own
        .make_credential_with_client_data_hash(&options, &hash)
        .await
        .unwrap();
    use behalf_authenticator::CredentialStore as _;
    own.store().insert(&credential).await.unwrap();
    let credential_b64 = URL_SAFE_NO_PAD.encode(&made.credential.credential_id);
    // A clientDataJSON for another challenge is refused.
    let (forged_json, _) = client_data("webauthn.create", "another-challenge", ORIGIN);
    let body = |client: &str| {
        json!({
            "credential_id": credential_b64,
            "client_data_json": URL_SAFE_NO_PAD.encode(client.as_bytes()),
            "attestation_object": URL_SAFE_NO_PAD.encode(&made.attestation_object),
            "transports": ["internal"],
        })
    };
    assert_eq!(
        alices
            .call(Method::POST, &path("attestation"), Some(body(&forged_json)))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    let (status, sent) = alices
        .call(Method::POST, &path("attestation"), Some(body(&client_json)))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    // Sent twice, it is not taken twice.
    assert_ne!(
        alices
            .call(Method::POST, &path("attestation"), Some(body(&client_json)))
            .await
            .0,
        StatusCode::ACCEPTED
    );

    // The engine registers it at Graph, once; the sandbox's verifier checked the attestation.
    let registered = eventually("alice's item registered", || async {
        state_of(&items().await, alice).filter(|(s, _)| s == "registered")
    })
    .await;
    let after = common::tenant::methods_per_user(&tenant.state().await);
    assert_eq!(
        after[alice.as_str()],
        before[alice.as_str()] + 1,
        "one more passkey, exactly: {registered:?}"
    );

    // Alice signs in at Microsoft with it: her extension signs, the server checks her PIN.
    let sandbox = tenant.sandbox.base_url();
    let begin: Value = tenant
        .http
        .post(format!("{sandbox}/sandbox/signin/begin"))
        .json(&json!({"upn": alice}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (_, found) = alices
        .call(
            Method::POST,
            "/key/v1/credentials/find",
            Some(json!({"rp_id": RP_ID})),
        )
        .await;
    let local = found["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "local")
        .unwrap_or_else(|| panic!("a local credential in {found}"))
        .clone();
    assert_eq!(local["id"], credential_b64.as_str());
    // The server will not sign for a local key: the extension does.
    let (get_json, get_hash) = client_data(
        "webauthn.get",
        begin["publicKey"]["challenge"].as_str().unwrap(),
        ORIGIN,
    );
    let (status, _) = alices
        .call(
            Method::POST,
            "/key/v1/assertions",
            Some(json!({
        "credential_id": credential_b64, "rp_id": RP_ID, "origin": ORIGIN,
        "client_data_hash": get_hash, "user_presence": true, "pin": "alice-pin-2468"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, checked) = alices.call(Method::POST, "/key/v1/assertions/local", Some(json!({
        "credential_id": credential_b64, "rp_id": RP_ID, "origin": ORIGIN, "pin": "alice-pin-2468"}))).await;
    assert_eq!(
        (status, checked["user_verified"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{checked}"
    );
    let get_hash: [u8; 32] = URL_SAFE_NO_PAD
        .decode(&get_hash)
        .unwrap()
        .try_into()
        .unwrap();
    let signed = own
        .assert_with_client_data_hash(RP_ID, &made.credential.credential_id, &get_hash, true)
        .await
        .unwrap();
    let finish = tenant
        .http
        .post(format!("{sandbox}/sandbox/signin/finish"))
        .json(&json!({
            "id": credential_b64, "rawId": credential_b64, "type": "public-key",
            "response": {
                "clientDataJSON": URL_SAFE_NO_PAD.encode(get_json.as_bytes()),
                "authenticatorData": URL_SAFE_NO_PAD.encode(&signed.authenticator_data),
                "signature": URL_SAFE_NO_PAD.encode(&signed.signature),
                "userHandle": URL_SAFE_NO_PAD.encode(&signed.user_handle),
            },
            "clientExtensionResults": {},
        }))
        .send()
        .await
        .unwrap();
    assert!(
        finish.status().is_success(),
        "{}",
        finish.text().await.unwrap()
    );

    // Bob declines: his item ends declined, and nothing was registered for him.
    let bobs_request = eventually("bob's request", || async {
        let (_, listed) = bobs.call(Method::GET, "/key/v1/requests", None).await;
        listed["requests"]
            .as_array()
            .and_then(|r| r.first().cloned())
    })
    .await;
    let (status, _) = bobs
        .call(
            Method::POST,
            &format!(
                "/key/v1/requests/{}/decline",
                bobs_request["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, ended) = eventually("bob's item declined", || async {
        state_of(&items().await, bob).filter(|(s, _)| s == "failed")
    })
    .await;
    assert_eq!(ended["error_code"], "declined", "{ended}");
    assert_eq!(
        common::tenant::methods_per_user(&tenant.state().await)[bob.as_str()],
        before[bob.as_str()]
    );
    assert_eq!(
        bobs.call(Method::GET, "/key/v1/requests", None).await.1["requests"],
        json!([])
    );
}
