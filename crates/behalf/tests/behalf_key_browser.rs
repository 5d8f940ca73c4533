//! Behalf Key in a real headless Chromium: Debian's `chromium` started by `chromedriver` with the
//! unpacked extension (`--load-extension`, and `--disable-extensions-except` the same folder),
//! on a relying-party page of the test's own served over HTTP at `http://localhost:<port 0>`
//! (a secure context, so WebAuthn runs there). Debian's `chromium` and `chromium-driver` are
//! required (`.ci/run` installs them); without them the test fails, it does not skip.
//!
//! What a user of an unpaired Behalf Key sees: the extension is loaded and says it is not
//! paired, its worker holds no WebAuthn proxy, its main-world script is in the page and passes
//! the page's calls through: a `create` and a `get` reach the browser's authenticator (a CDP
//! virtual authenticator stands in for a platform or USB key), and a `get` for a credential
//! nobody has ends in the browser's NotAllowedError rather than hanging. Paired with the real
//! `behalf serve --sandbox` through the popup, it holds the proxy and answers for itself;
//! revoked by an admin, it lets go. On a second website of the test's own (a WebAuthn relying
//! party verifying with webauthn-rs-core), an admin's Behalf Key registers a passkey on behalf
//! of a user, and that user signs in there from their own browser profile.
//!
//! Found on the way: CDP's virtual authenticator environment (`WebAuthn.enable`) takes a tab's
//! requests before the webAuthenticationProxy does, so the proxy is tested on a page without one.

mod common;
mod panel;

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use panel::browser::{Browser, By};
use panel::server::{Panel, cli};

/// The relying party's page: `ask(kind, options)` runs navigator.credentials[kind] and answers
/// what the page got (the credential's JSON, or the error's name and message).
const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test RP</title>
<script>
window.ask = async (kind, options) => {
  try {
    const c = await navigator.credentials[kind](options);
    return { ok: true, id: c.id, type: c.type, attachment: c.authenticatorAttachment, json: c.toJSON() };
  } catch (e) {
    return { ok: false, name: e.name, message: e.message };
  }
};
</script></head><body><h1>Test RP</h1></body></html>"#;

/// A one-page HTTP server on a free port of 127.0.0.1, for as long as the test runs.
async fn serve_page() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&request);
                let (status, body) = if line.starts_with("GET / ") {
                    ("200 OK", PAGE)
                } else {
                    ("404 Not Found", "")
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    port
}

/// Chromium with Behalf Key loaded unpacked from the repository's `extension/`.
async fn browser_with_extension() -> Browser {
    let extension = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../extension")
        .canonicalize()
        .expect("the repository has extension/");
    let path = extension.display();
    Browser::start_with_args(&[
        format!("--load-extension={path}"),
        format!("--disable-extensions-except={path}"),
    ])
    .await
}

/// The extension's id, read from its service worker's URL once Chromium has started it.
async fn extension_id(browser: &Browser) -> String {
    browser
        .eventually("Behalf Key's service worker to run", async |b| {
            let targets = b.cdp("Target.getTargets", json!({})).await;
            targets["targetInfos"]
                .as_array()?
                .iter()
                .filter(|t| t["type"] == "service_worker")
                .filter_map(|t| t["url"].as_str())
                .find(|url| url.ends_with("/background.js"))
                .and_then(|url| url.strip_prefix("chrome-extension://"))
                .and_then(|rest| rest.split('/').next())
                .map(str::to_owned)
        })
        .await
}

/// Adds a CDP virtual authenticator (USB, CTAP2, user present and verified) to the page shown:
/// the browser's own authenticator, as a security key would be.
async fn browser_authenticator(browser: &Browser) {
    browser.cdp("WebAuthn.enable", json!({})).await;
    browser
        .cdp(
            "WebAuthn.addVirtualAuthenticator",
            json!({"options": {
                "protocol": "ctap2", "transport": "usb", "hasResidentKey": true,
                "hasUserVerification": true, "isUserVerified": true,
                "automaticPresenceSimulation": true,
            }}),
        )
        .await;
}

const CREATE: &str = "{publicKey: {challenge: crypto.getRandomValues(new Uint8Array(32)), \
    rp: {id: 'localhost', name: 'Test RP'}, \
    user: {id: new Uint8Array([1, 2, 3, 4]), name: 'alice', displayName: 'Alice'}, \
    pubKeyCredParams: [{type: 'public-key', alg: -7}], timeout: 20000}}";

async fn ask(browser: &Browser, kind: &str, options: &str) -> Value {
    let script = format!("return window.ask('{kind}', {options});");
    browser.script(&script, vec![]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpaired_behalf_key_leaves_webauthn_to_the_browser() {
    let port = serve_page().await;
    let mut browser = browser_with_extension().await;
    let id = extension_id(&browser).await;

    // The popup, as the toolbar button opens it: not paired, and it says whose WebAuthn it is.
    browser
        .goto(&format!("chrome-extension://{id}/pages/popup.html"))
        .await;
    let unpaired = browser.text_of("#unpaired").await;
    assert_eq!(
        unpaired,
        "Not paired: this browser's own passkeys and security keys are in use."
    );
    assert!(browser.has("form#pair").await, "the pairing form is shown");
    assert_eq!(
        browser.unlabelled_controls().await,
        Vec::<String>::new(),
        "every field of the pairing form has a label"
    );
    // The worker's own record of the proxy: not attached while unpaired.
    let proxy = browser
        .script(
            "return chrome.storage.session.get('proxy').then(v => v.proxy);",
            vec![],
        )
        .await;
    assert_eq!(proxy["state"], "detached", "proxy state: {proxy}");

    // The relying party's page, with a virtual authenticator as the browser's own.
    browser.goto(&format!("http://localhost:{port}/")).await;
    browser.wait_for("h1").await;
    let wrapped = browser
        .script("return navigator.credentials.get.toString();", vec![])
        .await;
    assert!(
        !wrapped
            .as_str()
            .unwrap_or_default()
            .contains("[native code]"),
        "Behalf Key's main-world script wraps navigator.credentials.get: {wrapped}"
    );
    browser_authenticator(&browser).await;

    let created = ask(&browser, "create", CREATE).await;
    assert_eq!(
        created["ok"], true,
        "the browser's authenticator made the credential: {created}"
    );
    assert_eq!(created["type"], "public-key");
    assert_eq!(
        created["json"]["response"]["transports"],
        json!(["usb"]),
        "made by the browser's (virtual USB) authenticator, not Behalf Key: {created}"
    );

    let signed_in = ask(
        &browser,
        "get",
        &format!(
            "{{publicKey: {{challenge: crypto.getRandomValues(new Uint8Array(32)), rpId: 'localhost', \
              allowCredentials: [{{type: 'public-key', id: Uint8Array.from(atob('{}'.replace(/-/g, '+').replace(/_/g, '/')), c => c.charCodeAt(0))}}], \
              timeout: 20000}}}}",
            created["id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(
        signed_in["ok"], true,
        "the browser's authenticator signed in: {signed_in}"
    );
    assert_eq!(signed_in["id"], created["id"]);

    // A credential no authenticator has: the browser's own refusal, well inside the timeout.
    let started = std::time::Instant::now();
    let refused = ask(
        &browser,
        "get",
        "{publicKey: {challenge: new Uint8Array(32), rpId: 'localhost', \
          allowCredentials: [{type: 'public-key', id: new Uint8Array(16)}], timeout: 120000}}",
    )
    .await;
    assert_eq!(refused["ok"], false, "{refused}");
    assert_eq!(refused["name"], "NotAllowedError", "{refused}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the refusal came without waiting out the request's 120 s: {:?}",
        started.elapsed()
    );
    browser.assert_no_console_errors(&[]).await;
    browser.quit().await;
}

const OWNER: &str = "owner@contoso.example";

/// The real `behalf serve --sandbox` with an owner's API token.
struct Behalf {
    server: Panel,
    token: String,
}

impl Behalf {
    async fn start(users: usize) -> Behalf {
        let data = tempfile::tempdir().unwrap();
        let password = data.path().join("password.txt");
        std::fs::write(&password, "correct horse battery staple\n").unwrap();
        let password = password.to_str().unwrap();
        cli(
            data.path(),
            &[
                "admin",
                "create",
                "--sandbox",
                "--email",
                OWNER,
                "--role",
                "owner",
                "--password-file",
                password,
            ],
        );
        let token = cli(
            data.path(),
            &[
                "token",
                "create",
                "--sandbox",
                "--admin",
                OWNER,
                "--name",
                "key",
                "--scope",
                "admin",
            ],
        )
        .trim()
        .to_owned();
        Behalf {
            server: Panel::start_in(data, users).await,
            token,
        }
    }

    /// `/api/v1` as the owner; fails unless the answer is a success.
    async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .server
            .http
            .request(method, self.server.url(path))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.unwrap();
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    /// The `n`th user Behalf imported from the sandbox: (id, UPN).
    async fn user(&self, n: usize) -> (String, String) {
        let users = self.api(reqwest::Method::GET, "/api/v1/users", None).await;
        let user = &users["users"][n];
        (
            user["id"].as_str().unwrap().to_owned(),
            user["upn"].as_str().unwrap().to_owned(),
        )
    }

    /// A one-time pairing code for the user, for a device of `role`.
    async fn pairing_code(&self, user_id: &str, role: &str) -> String {
        let issued = self
            .api(
                reqwest::Method::POST,
                &format!("/api/v1/users/{user_id}/key-pairings"),
                Some(json!({"role": role})),
            )
            .await;
        issued["code"].as_str().unwrap().to_owned()
    }
}

/// The text of `css` once it is `expected`, failing with what it said instead.
async fn text_becomes(browser: &Browser, css: &str, expected: &str) {
    let what = format!("`{css}` to say {expected:?}");
    browser
        .eventually(&what, async |b| {
            let text = b
                .driver()
                .find(By::Css(css))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            (text == expected).then_some(())
        })
        .await;
}

/// Pairs through the popup as a user does, and waits for the popup to say the proxy is held.
async fn pair(browser: &Browser, popup: &str, server: &str, code: &str, device: &str, pin: &str) {
    browser.goto(popup).await;
    for (field, value) in [
        ("#server", server),
        ("#code", code),
        ("#device", device),
        ("#pin", pin),
        ("#pin2", pin),
    ] {
        browser
            .wait_for(field)
            .await
            .send_keys(value)
            .await
            .unwrap();
    }
    browser.click("#pair button[type=submit]").await;
    text_becomes(browser, "#proxy", "Behalf Key answers passkey requests").await;
}

/// Starts `navigator.credentials[kind]` on the page without waiting for it (the prompt window
/// needs the WebDriver session meanwhile); [`settled`] reads its outcome.
async fn start_asking(browser: &Browser, kind: &str, options_json: &Value) {
    let parse = if kind == "create" {
        "PublicKeyCredential.parseCreationOptionsFromJSON"
    } else {
        "PublicKeyCredential.parseRequestOptionsFromJSON"
    };
    let script = format!(
        "window.pending = window.ask('{kind}', {{publicKey: {parse}(arguments[0])}}); return true;"
    );
    browser.script(&script, vec![options_json.clone()]).await;
}

async fn settled(browser: &Browser) -> Value {
    browser.script("return window.pending;", vec![]).await
}

/// Behalf Key's prompt: waits for its window, opens the same page (its URL names the dialog) in
/// a tab of the test's session (chromedriver lists no extension popup window among its window
/// handles), checks the question, fills `fields`, submits, and goes back to the site's tab.
async fn answer_prompt(browser: &Browser, question: &str, fields: &[(&str, &str)]) {
    let driver = browser.driver();
    let site = driver.window().await.unwrap();
    let prompt = browser
        .eventually("Behalf Key's prompt window", async |b| {
            let targets = b.cdp("Target.getTargets", json!({})).await;
            targets["targetInfos"]
                .as_array()?
                .iter()
                .filter_map(|t| t["url"].as_str())
                .find(|url| url.contains("/pages/prompt.html#"))
                .map(str::to_owned)
        })
        .await;
    let tab = driver.new_tab().await.unwrap();
    driver.switch_to_window(tab).await.unwrap();
    browser.goto(&prompt).await;
    text_becomes(browser, "#question", question).await;
    assert_eq!(browser.unlabelled_controls().await, Vec::<String>::new());
    for (field, value) in fields {
        browser
            .wait_for(field)
            .await
            .send_keys(*value)
            .await
            .unwrap();
    }
    browser.click("#yes").await;
    // Back to the site's tab at once: Chromium refuses a create's answer for a page without focus.
    driver.close_window().await.unwrap();
    driver.switch_to_window(site).await.unwrap();
}

/// Pairing through the popup with a code an admin issued from the real server, then: the popup
/// shows the user, device, role and retries from Behalf and that Behalf Key answers passkey
/// requests; the site's create and get reach Behalf Key, which has nothing for this site and
/// says so at once (a user device registers nothing itself; no credential). The admin revokes
/// the device: the popup says so and offers pairing again, and the proxy is let go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paired_behalf_key_takes_the_proxy_and_a_revoked_one_gives_it_back() {
    let behalf = Behalf::start(3).await;
    let (user_id, upn) = behalf.user(0).await;
    let code = behalf.pairing_code(&user_id, "user").await;

    let port = serve_page().await;
    let mut browser = browser_with_extension().await;
    let id = extension_id(&browser).await;
    let popup = format!("chrome-extension://{id}/pages/popup.html");
    pair(
        &browser,
        &popup,
        &behalf.server.base,
        &code,
        "Test laptop",
        "1234",
    )
    .await;
    assert!(browser.text_of("#user").await.contains(&upn));
    assert_eq!(browser.text_of("#device-name").await, "Test laptop");
    assert_eq!(browser.text_of("#role").await, "user");
    assert_eq!(browser.text_of("#retries").await, "8");
    let devices = behalf
        .api(
            reqwest::Method::GET,
            &format!("/api/v1/users/{user_id}/key-devices"),
            None,
        )
        .await;
    let device = devices
        .as_array()
        .and_then(|d| d.first())
        .unwrap_or_else(|| panic!("Behalf lists the paired device: {devices}"));

    // No virtual authenticator on this page: CDP's WebAuthn environment takes requests before
    // the webAuthenticationProxy does. Without one, the browser's own way would wait for a key
    // that never comes, so a prompt refusal naming Behalf Key is the proxy's.
    browser.goto(&format!("http://localhost:{port}/")).await;
    browser.wait_for("h1").await;
    let refused = ask(&browser, "create", CREATE).await;
    assert_eq!(refused["ok"], false, "{refused}");
    assert_eq!(refused["name"], "NotAllowedError", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("Behalf Key") && m.contains("registers nothing")),
        "Behalf Key, holding the proxy, answered the create itself: {refused}"
    );
    let refused = ask(
        &browser,
        "get",
        "{publicKey: {challenge: new Uint8Array(32), rpId: 'localhost', timeout: 20000}}",
    )
    .await;
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("no credential")),
        "Behalf Key has no credential for localhost and said so: {refused}"
    );

    // The admin revokes the device.
    let revoke = format!(
        "/api/v1/key-devices/{}/revoke",
        device["id"].as_str().unwrap()
    );
    behalf.api(reqwest::Method::POST, &revoke, None).await;
    browser.goto(&popup).await;
    text_becomes(
        &browser,
        "#message",
        "Your administrator revoked this device. Ask for a new pairing code.",
    )
    .await;
    assert!(browser.has("form#pair").await);
    let proxy = browser
        .script(
            "return chrome.storage.session.get('proxy').then(v => v.proxy);",
            vec![],
        )
        .await;
    assert_eq!(proxy["state"], "detached", "proxy state: {proxy}");
    browser.assert_no_console_errors(&[]).await;
    browser.quit().await;
}

/// Issue 17's second website: an admin's paired Behalf Key answers the site's create with
/// "register for user X" (the prompt, the admin's PIN); the site's own verifier (webauthn-rs)
/// accepts the registration. User X then signs in there from their own browser profile, their
/// Behalf Key asking to approve and for their PIN, and the site's verifier accepts the assertion,
/// user verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_registers_for_a_user_at_a_website_and_the_user_signs_in_there() {
    let behalf = Behalf::start(3).await;
    let (admin_id, _) = behalf.user(0).await;
    let (user_id, user_upn) = behalf.user(1).await;
    let port = serve_page().await;
    let origin = format!("http://localhost:{port}");
    let site = webauthn_rs_core::WebauthnCore::new_unsafe_experts_only(
        "Test RP",
        "localhost",
        vec![url::Url::parse(&origin).unwrap()],
        Duration::from_secs(300),
        None,
        None,
    );

    // The admin's browser.
    let admin = browser_with_extension().await;
    let id = extension_id(&admin).await;
    let code = behalf.pairing_code(&admin_id, "admin").await;
    let popup = format!("chrome-extension://{id}/pages/popup.html");
    pair(
        &admin,
        &popup,
        &behalf.server.base,
        &code,
        "Admin laptop",
        "9753",
    )
    .await;
    assert_eq!(admin.text_of("#role").await, "admin");
    admin.goto(&format!("{origin}/")).await;
    admin.wait_for("h1").await;
    let builder = site
        .new_challenge_register_builder(b"site-user-7", &user_upn, "Site user")
        .unwrap()
        .user_verification_policy(webauthn_rs_core::proto::UserVerificationPolicy::Required);
    let (ccr, registration) = site.generate_challenge_register(builder).unwrap();
    let options = serde_json::to_value(&ccr).unwrap()["publicKey"].clone();
    start_asking(&admin, "create", &options).await;
    answer_prompt(
        &admin,
        &format!(
            "Test RP ({origin}) asks to register a passkey. Register for which user? Your own \
             PIN approves it."
        ),
        &[("#for-user", user_upn.as_str()), ("#pin", "9753")],
    )
    .await;
    let created = settled(&admin).await;
    assert_eq!(created["ok"], true, "{created}");
    let credential: webauthn_rs_core::proto::RegisterPublicKeyCredential =
        serde_json::from_value(created["json"].clone()).unwrap();
    let registered = site
        .register_credential(&credential, &registration, None)
        .unwrap_or_else(|e| panic!("the site's verifier refused the registration: {e:?}"));
    admin.quit().await;

    // The user's own browser profile.
    let user = browser_with_extension().await;
    let id = extension_id(&user).await;
    let code = behalf.pairing_code(&user_id, "user").await;
    let popup = format!("chrome-extension://{id}/pages/popup.html");
    pair(
        &user,
        &popup,
        &behalf.server.base,
        &code,
        "User laptop",
        "2468",
    )
    .await;
    user.goto(&format!("{origin}/")).await;
    user.wait_for("h1").await;
    let builder = site
        .new_challenge_authenticate_builder(vec![registered.clone()], None)
        .unwrap();
    let (rcr, authentication) = site.generate_challenge_authenticate(builder).unwrap();
    let options = serde_json::to_value(&rcr).unwrap()["publicKey"].clone();
    start_asking(&user, "get", &options).await;
    answer_prompt(
        &user,
        &format!("Sign in to localhost as {user_upn}?"),
        &[("#pin", "2468")],
    )
    .await;
    let signed_in = settled(&user).await;
    assert_eq!(signed_in["ok"], true, "{signed_in}");
    let assertion: webauthn_rs_core::proto::PublicKeyCredential =
        serde_json::from_value(signed_in["json"].clone()).unwrap();
    let result = site
        .authenticate_credential(&assertion, &authentication)
        .unwrap_or_else(|e| panic!("the site's verifier refused the assertion: {e:?}"));
    assert!(result.user_verified(), "the PIN made it user verified");
    assert_eq!(result.cred_id(), &registered.cred_id);
    user.quit().await;
}
