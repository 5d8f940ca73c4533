//! Signing in at Microsoft with Behalf Key, as a user does (issue 17's first "Must show"): a
//! sandbox tenant whose users got their passkeys through Graph (`behalf import`, `behalf
//! provision --automatic`), `behalf serve` on it, a pairing code from the API, and Behalf Key
//! loaded unpacked in a real headless Chromium and paired through its popup. The user opens
//! `https://login.microsoft.com/` (the sandbox's sign-in page), types their UPN, clicks "Sign in
//! with a passkey", approves in Behalf Key's prompt with their PIN, and the page says "Signed in
//! as <upn>": the sandbox's independent verifier (webauthn-rs-core) accepted what Behalf signed
//! with the vault key. A wrong PIN shows the retries left and signs no one in; once the admin
//! revokes the device, the sign-in is refused and Behalf Key lets go.
//!
//! How Chromium is brought to the page under its real name (checked with Chromium 156):
//! `--host-resolver-rules="MAP login.microsoft.com 127.0.0.1:PORT"` sends the name to the
//! sandbox's HTTPS listener while the page's origin stays `https://login.microsoft.com` (port 443
//! as the page sees it; the rules take a port, as `--host-rules` does). The browser trusts the
//! sandbox's test CA through the NSS database in `$HOME/.pki/nssdb` of a temporary HOME made with
//! `certutil` (Debian's `libnss3-tools`, which `.ci/run` installs), set for chromedriver and so
//! for Chromium: without it the handshake fails (certificate_unknown), and Chromium refuses
//! WebAuthn on a page with a certificate error anyway. Debian's `chromium`, `chromium-driver`
//! and `certutil` are required: without them the test fails and says so, it never skips.

mod common;
mod panel;

use std::path::{Path, PathBuf};
use std::process::Command;

use behalf_sandbox::{Knobs, SandboxConfig};
use common::behalf_key::Admin;
use common::tenant::Tenant;
use panel::browser::{Browser, By};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const PIN: &str = "2468";
const WRONG_PIN: &str = "1357";
const SIGN_IN_PAGE: &str = "https://login.microsoft.com/";

/// `certutil` on PATH, or a failure that says where it comes from.
fn certutil() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("certutil"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`certutil` is not installed (not on PATH). This test makes Chromium trust the \
                 sandbox's test CA through an NSS database: `.ci/run` installs Debian's \
                 libnss3-tools (apt-get install libnss3-tools)"
            )
        })
}

/// A HOME whose NSS database (`$HOME/.pki/nssdb`, where Chromium on Linux reads the user's
/// trusted certificates) trusts `ca_pem` to identify web servers (`-t "C,,"`).
fn home_trusting(ca_pem: &str) -> tempfile::TempDir {
    let certutil = certutil();
    let home = tempfile::tempdir().unwrap();
    let nssdb = home.path().join(".pki/nssdb");
    std::fs::create_dir_all(&nssdb).unwrap();
    let ca = home.path().join("sandbox-ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let db = format!("sql:{}", nssdb.display());
    for args in [
        vec!["-d", &db, "-N", "--empty-password"],
        vec![
            "-d",
            &db,
            "-A",
            "-t",
            "C,,",
            "-n",
            "behalf-sandbox",
            "-i",
            ca.to_str().unwrap(),
        ],
    ] {
        let out = Command::new(&certutil).args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "certutil {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    home
}

/// The owner's API, over real HTTP with a bearer token.
/// Pairing through the popup, as the user does with the code their admin gave them.
async fn pair_in_popup(browser: &Browser, extension: &str, server: &str, code: &str, upn: &str) {
    browser
        .goto(&format!("chrome-extension://{extension}/pages/popup.html"))
        .await;
    for (field, value) in [
        ("#server", server),
        ("#code", code),
        ("#device", "Work laptop"),
        ("#pin", PIN),
        ("#pin2", PIN),
    ] {
        browser
            .wait_for(field)
            .await
            .send_keys(value)
            .await
            .unwrap();
    }
    browser.click("#pair button[type=submit]").await;
    text_until(
        browser,
        "#proxy",
        "to say Behalf Key holds the proxy",
        |t| t == "Behalf Key answers passkey requests",
    )
    .await;
    assert!(browser.text_of("#user").await.contains(upn));
}

/// A tenant with the sign-in page on whose users got a passkey through Graph, `behalf serve` on
/// it, the owner's API, and the UPNs of the users with a passkey.
async fn started() -> (Tenant, common::Server, Admin, Vec<String>) {
    let tenant = Tenant::start_with(SandboxConfig {
        users: 3,
        knobs: Knobs {
            graph_throttling: false,
            ..Knobs::default()
        },
        login_page: true,
        ..SandboxConfig::default()
    })
    .await;
    let (server, admin, upns) = common::behalf_key::serve_provisioned(&tenant, &[]).await;
    (tenant, server, admin, upns)
}

/// Chromium with Behalf Key loaded unpacked, `login.microsoft.com` mapped to the sandbox's
/// sign-in page, and `home` (whose NSS database trusts the sandbox's CA) as its HOME.
async fn browser(tenant: &Tenant, home: &Path) -> Browser {
    let extension = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../extension")
        .canonicalize()
        .expect("the repository has extension/");
    let path = extension.display();
    let page = tenant
        .sandbox
        .login_page_addr()
        .expect("the sandbox serves its sign-in page");
    Browser::start_with_env(
        &[
            format!("--load-extension={path}"),
            format!("--disable-extensions-except={path}"),
            format!("--host-resolver-rules=MAP login.microsoft.com {page}"),
        ],
        &[("HOME", home)],
    )
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

/// The text of `css` once `done` holds for it (read again while it does not).
async fn text_until(
    browser: &Browser,
    css: &str,
    what: &str,
    done: impl Fn(&str) -> bool,
) -> String {
    browser
        .eventually(&format!("`{css}` {what}"), async |b| {
            let element = b.driver().find(By::Css(css)).await.ok()?;
            if !element.is_displayed().await.ok()? {
                return None;
            }
            let text = element.text().await.ok()?;
            done(&text).then_some(text)
        })
        .await
}

/// Behalf Key's prompt, in a window WebDriver can drive. The extension opens its prompt with
/// `chrome.windows.create({type: "popup"})`; Chromium shows it (CDP lists it as a page target)
/// but chromedriver does not count such a window among its window handles, so the test opens
/// the same prompt page (`pages/prompt.html#<dialog id>`, the URL read from CDP's target list)
/// in a window of its own: the same question from the worker, the same form and answer. The
/// extension's own window closes when the request ends; the test closes its own with
/// [`leave_prompt`].
async fn to_prompt(browser: &Browser, extension: &str) {
    let prefix = format!("chrome-extension://{extension}/pages/prompt.html#");
    let url = browser
        .eventually("Behalf Key's prompt window to open", async |b| {
            let targets = b.cdp("Target.getTargets", json!({})).await;
            targets["targetInfos"]
                .as_array()?
                .iter()
                .filter(|t| t["type"] == "page")
                .filter_map(|t| t["url"].as_str())
                .find(|url| url.starts_with(&prefix))
                .map(str::to_owned)
        })
        .await;
    let window = browser.driver().new_window().await.unwrap();
    browser.driver().switch_to_window(window).await.unwrap();
    browser.goto(&url).await;
}

/// Whether a Behalf Key prompt is open now.
async fn prompt_open(browser: &Browser, extension: &str) -> bool {
    let prefix = format!("chrome-extension://{extension}/pages/prompt.html#");
    let targets = browser.cdp("Target.getTargets", json!({})).await;
    targets["targetInfos"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["url"].as_str())
        .any(|url| url.starts_with(&prefix))
}

/// Closes the test's prompt window and goes back to the sign-in page's.
async fn leave_prompt(browser: &Browser, main: &thirtyfour::WindowHandle) {
    browser.driver().close_window().await.unwrap();
    browser
        .driver()
        .switch_to_window(main.clone())
        .await
        .unwrap();
}

/// Opens the sign-in page, types `upn` and clicks "Sign in with a passkey".
async fn start_sign_in(browser: &Browser, upn: &str) {
    browser.goto(SIGN_IN_PAGE).await;
    let field = browser.wait_for("#upn").await;
    field.send_keys(upn).await.unwrap();
    browser.click("#passkey").await;
}

/// The page's troubleshooting details: (error code, message), as the page wrote them.
async fn details(browser: &Browser) -> (String, String) {
    let d = browser
        .script(
            "return [document.getElementById('detail-code').textContent, \
                     document.getElementById('detail-message').textContent];",
            vec![],
        )
        .await;
    (
        d[0].as_str().unwrap_or_default().to_owned(),
        d[1].as_str().unwrap_or_default().to_owned(),
    )
}

async fn sign_ins(tenant: &Tenant) -> u64 {
    tenant.state().await["signIns"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_signs_in_at_login_microsoft_com_with_behalf_key_and_their_pin() {
    let (tenant, server, admin, upns) = started().await;
    let upn = upns[0].as_str();
    let user_id = admin.user_id(upn).await;
    let issued = admin.pairing_code(&user_id).await;
    let code = issued.as_str();

    let home = home_trusting(tenant.sandbox.login_ca_pem().unwrap());
    let mut browser = browser(&tenant, home.path()).await;
    let extension = extension_id(&browser).await;
    let main = browser.driver().window().await.unwrap();

    pair_in_popup(&browser, &extension, &server.base_url, code, upn).await;

    // The sign-in page under its real name, trusted: a secure context at exactly
    // https://login.microsoft.com, where WebAuthn runs.
    browser.goto(SIGN_IN_PAGE).await;
    browser.wait_for("#upn").await;
    assert_eq!(browser.current_url().await, SIGN_IN_PAGE);
    let context = browser
        .script(
            "return {origin: location.origin, secure: window.isSecureContext};",
            vec![],
        )
        .await;
    assert_eq!(
        context,
        json!({"origin": "https://login.microsoft.com", "secure": true})
    );
    assert_eq!(browser.text_of("h1").await, "Sign in");
    assert_eq!(browser.unlabelled_controls().await, Vec::<String>::new());
    browser.screenshot("signin-microsoft-page").await;

    // The sign-in: UPN, the passkey button, Behalf Key's prompt with the PIN.
    start_sign_in(&browser, upn).await;
    to_prompt(&browser, &extension).await;
    assert_eq!(
        browser.text_of("#question").await,
        format!("Sign in to login.microsoft.com as {upn}?")
    );
    browser.screenshot("signin-behalf-key-prompt").await;
    browser.wait_for("#pin").await.send_keys(PIN).await.unwrap();
    browser.click("#yes").await;
    leave_prompt(&browser, &main).await;
    let signed_in = text_until(&browser, "#result", "to say who signed in", |t| {
        !t.is_empty()
    })
    .await;
    assert_eq!(signed_in, format!("Signed in as {upn}"));
    // No key reached the page: its origin's storage holds nothing of Behalf Key's (the device
    // key lives in the extension's own IndexedDB, the vault key on the server).
    let storage = browser
        .script(
            "return indexedDB.databases().then((dbs) => ({databases: dbs.map((d) => d.name), \
             local: localStorage.length, session: sessionStorage.length}));",
            vec![],
        )
        .await;
    assert_eq!(
        storage,
        json!({"databases": [], "local": 0, "session": 0}),
        "the page's storage"
    );
    assert!(
        !browser
            .driver()
            .find(By::Css("#error"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
    );
    browser.screenshot("signin-signed-in").await;
    assert_eq!(
        sign_ins(&tenant).await,
        1,
        "the sandbox's verifier accepted one sign-in"
    );

    // A wrong PIN: the prompt says so and how many retries are left; nobody is signed in.
    start_sign_in(&browser, upn).await;
    to_prompt(&browser, &extension).await;
    browser
        .wait_for("#pin")
        .await
        .send_keys(WRONG_PIN)
        .await
        .unwrap();
    browser.click("#yes").await;
    let retries = text_until(&browser, "#retries", "to show the retries left", |t| {
        !t.is_empty()
    })
    .await;
    assert_eq!(retries, "7 retries left before the PIN is blocked.");
    assert_eq!(browser.text_of("#error").await, "Wrong PIN.");
    browser.screenshot("signin-wrong-pin").await;
    // The user gives up: the page hears that no passkey answered, in Entra's words.
    browser.click("#no").await;
    leave_prompt(&browser, &main).await;
    let refused = text_until(&browser, "#error", "to say the sign-in failed", |t| {
        !t.is_empty()
    })
    .await;
    assert!(
        refused.starts_with("We couldn't sign you in with a passkey."),
        "{refused}"
    );
    assert!(
        !browser
            .driver()
            .find(By::Css("#result"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
    );
    let (code, message) = details(&browser).await;
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("NotAllowedError", "Behalf Key did not answer: declined."),
        "the browser's refusal, from Behalf Key"
    );
    assert_eq!(sign_ins(&tenant).await, 1, "a wrong PIN signed no one in");
    browser.screenshot("signin-declined").await;

    // The admin revokes the device: Behalf refuses it at once, Behalf Key hands the request back
    // without a prompt, the page says the sign-in failed, and the popup says why.
    let (status, devices) = admin
        .call(
            Method::GET,
            &format!("/api/v1/users/{user_id}/key-devices"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{devices}");
    let device = devices[0]["id"].as_str().unwrap();
    let (status, revoked) = admin
        .call(
            Method::POST,
            &format!("/api/v1/key-devices/{device}/revoke"),
            Some(json!({})),
        )
        .await;
    assert!(status.is_success(), "{revoked}");
    start_sign_in(&browser, upn).await;
    let refused = text_until(&browser, "#error", "to say the sign-in failed", |t| {
        !t.is_empty()
    })
    .await;
    assert!(
        refused.starts_with("We couldn't sign you in with a passkey."),
        "{refused}"
    );
    assert!(
        !prompt_open(&browser, &extension).await,
        "no prompt for a revoked device"
    );
    let (code, message) = details(&browser).await;
    // Told the device is revoked, Behalf Key forgets the pairing and lets go of the proxy
    // while the request is open, which Chromium ends with AbortError (extension/README.md,
    // "Handing back"); either way no passkey answered.
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("AbortError", "The operation was aborted."),
        "the request Behalf Key let go of"
    );
    assert_eq!(
        sign_ins(&tenant).await,
        1,
        "a revoked device signed no one in"
    );
    browser.screenshot("signin-revoked").await;
    browser
        .goto(&format!("chrome-extension://{extension}/pages/popup.html"))
        .await;
    text_until(&browser, "#message", "to say the device was revoked", |t| {
        t == "Your administrator revoked this device. Ask for a new pairing code."
    })
    .await;
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

/// The job's item for `upn`: (state, the item's JSON).
async fn item_of(admin: &Admin, job: &str, upn: &str) -> Option<(String, Value)> {
    let (_, page) = admin
        .call(Method::GET, &format!("/api/v1/jobs/{job}/items"), None)
        .await;
    page["items"]
        .as_array()?
        .iter()
        .find(|i| i["upn"] == upn)
        .map(|i| {
            (
                i["state"].as_str().unwrap_or_default().to_owned(),
                i.clone(),
            )
        })
}

/// A local-key job for `upn`: its id.
async fn local_job(admin: &Admin, upn: &str) -> String {
    let (status, job) = admin
        .call(
            Method::POST,
            "/api/v1/jobs",
            Some(json!({"upns": [upn], "mode": "local"})),
        )
        .await;
    assert!(status.is_success(), "{status} {job}");
    job["job"]["id"].as_str().unwrap().to_owned()
}

/// The popup, opened again until it lists a registration request; its text.
async fn request_in_popup(browser: &Browser, extension: &str) -> String {
    let popup = format!("chrome-extension://{extension}/pages/popup.html");
    browser
        .eventually("the request in Behalf Key's popup", async |b| {
            b.goto(&popup).await;
            let form = b.driver().find(By::Css("#requests form")).await.ok()?;
            form.text().await.ok().filter(|t| !t.is_empty())
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_key_is_approved_in_behalf_key_and_registered_at_graph_or_declined() {
    let (tenant, server, admin, upns) = started().await;
    let upn = upns[0].as_str();
    let code = admin.pairing_code(&admin.user_id(upn).await).await;
    let home = home_trusting(tenant.sandbox.login_ca_pem().unwrap());
    let mut browser = browser(&tenant, home.path()).await;
    let extension = extension_id(&browser).await;
    pair_in_popup(&browser, &extension, &server.base_url, &code, upn).await;
    let methods = |state: &Value| common::tenant::methods_per_user(state)[upn];
    let before = methods(&tenant.state().await);

    // The admin provisions the user with a local key: the item waits for the user.
    let job = local_job(&admin, upn).await;
    let asked = request_in_popup(&browser, &extension).await;
    assert!(
        asked.contains("asks to register a passkey for Microsoft: approve?"),
        "{asked}"
    );
    let (state, _) = item_of(&admin, &job, upn).await.unwrap();
    assert_eq!(state, "waiting_for_user");
    assert_eq!(
        methods(&tenant.state().await),
        before,
        "nothing registered yet"
    );
    browser.screenshot("local-key-request").await;

    // Approved with the PIN: the extension makes the credential (its own key, in the browser)
    // and the engine registers it at Graph, whose verifier (the sandbox's) checks it.
    let pin = browser.wait_for("#requests input[type=password]").await;
    pin.send_keys(PIN).await.unwrap();
    browser.click("#requests button[type=submit]").await;
    let (_, item) = browser
        .eventually("the local key's item registered", async |_| {
            item_of(&admin, &job, upn)
                .await
                .filter(|(state, _)| state != "waiting_for_user" && state != "credential_created")
        })
        .await;
    assert_eq!(item["state"], "registered", "{item}");
    assert_eq!(
        methods(&tenant.state().await),
        before + 1,
        "exactly one passkey more at the tenant"
    );

    // A second request, declined in the extension: the item ends "declined". (Once the first
    // job has ended: a job of the same kind still open would be continued, not made anew.)
    browser
        .eventually("the first local-key job to end", async |_| {
            let (_, done) = admin
                .call(Method::GET, &format!("/api/v1/jobs/{job}"), None)
                .await;
            (done["state"] == "completed").then_some(())
        })
        .await;
    let job = local_job(&admin, upn).await;
    request_in_popup(&browser, &extension).await;
    browser.click("#requests button[type=button]").await;
    let (_, item) = browser
        .eventually("the declined item", async |_| {
            item_of(&admin, &job, upn)
                .await
                .filter(|(state, _)| state == "failed")
        })
        .await;
    assert_eq!(item["error_code"], "declined", "{item}");
    assert_eq!(methods(&tenant.state().await), before + 1);
    browser.screenshot("local-key-declined").await;
    browser.assert_no_console_errors(&[]).await;
    browser.quit().await;
}

/// Answers the open prompt with a wrong PIN and waits for what it says next: the retries left,
/// or a notice (three wrong in a row; the PIN blocked) as `notice: <text>`.
async fn answer_wrong_pin(browser: &Browser, before: &str) -> String {
    browser
        .wait_for("#pin")
        .await
        .send_keys(WRONG_PIN)
        .await
        .unwrap();
    browser.click("#yes").await;
    browser
        .eventually("the prompt's next word on the PIN", async |b| {
            // Between two questions the prompt hides its form ("working"): only a shown form
            // is the next question.
            let form_shown = b
                .driver()
                .find(By::Css("#form"))
                .await
                .ok()?
                .is_displayed()
                .await
                .ok()?;
            if !form_shown {
                return None;
            }
            let question = b.driver().find(By::Css("#question")).await.ok()?;
            let pin_shown = b
                .driver()
                .find(By::Css("#pin-field"))
                .await
                .ok()?
                .is_displayed()
                .await
                .ok()?;
            if !pin_shown {
                let text = question.text().await.ok()?;
                return (!text.is_empty()).then(|| format!("notice: {text}"));
            }
            let retries = b.driver().find(By::Css("#retries")).await.ok()?;
            let text = retries.text().await.ok()?;
            (!text.is_empty() && text != before).then_some(text)
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_pins_in_the_prompt_count_down_and_then_lock_the_pin() {
    let (tenant, server, admin, upns) = started().await;
    let upn = upns[0].as_str();
    let code = admin.pairing_code(&admin.user_id(upn).await).await;
    let home = home_trusting(tenant.sandbox.login_ca_pem().unwrap());
    let mut browser = browser(&tenant, home.path()).await;
    let extension = extension_id(&browser).await;
    let main = browser.driver().window().await.unwrap();
    pair_in_popup(&browser, &extension, &server.base_url, &code, upn).await;

    // CTAP's counter, as the user sees it: 8 tries, three in a row per request.
    let mut said = Vec::new();
    for _request in 0..3 {
        start_sign_in(&browser, upn).await;
        to_prompt(&browser, &extension).await;
        let mut last = String::new();
        loop {
            last = answer_wrong_pin(&browser, &last).await;
            said.push(last.clone());
            if last.starts_with("notice: ") {
                break;
            }
        }
        browser.screenshot("signin-pin-notice").await;
        browser.click("#yes").await;
        leave_prompt(&browser, &main).await;
        text_until(&browser, "#error", "to say the sign-in failed", |t| {
            !t.is_empty()
        })
        .await;
    }
    let retries: Vec<&str> = said
        .iter()
        .filter(|s| !s.starts_with("notice: "))
        .map(|s| s.split(' ').next().unwrap_or_default())
        .collect();
    assert_eq!(retries, ["7", "6", "4", "3", "1"], "{said:?}");
    assert!(said[2].contains("3 wrong PINs in a row"), "{said:?}");
    assert!(said.last().unwrap().contains("PIN is blocked"), "{said:?}");
    assert_eq!(
        said.iter().filter(|s| s.starts_with("notice: ")).count(),
        3,
        "{said:?}"
    );

    // Blocked: even the right PIN no longer signs in.
    start_sign_in(&browser, upn).await;
    to_prompt(&browser, &extension).await;
    browser.wait_for("#pin").await.send_keys(PIN).await.unwrap();
    browser.click("#yes").await;
    let blocked = text_until(&browser, "#question", "to say the PIN is blocked", |t| {
        t.contains("blocked")
    })
    .await;
    assert!(blocked.contains("ask your administrator"), "{blocked}");
    browser.screenshot("signin-pin-blocked").await;
    browser.click("#yes").await;
    leave_prompt(&browser, &main).await;
    assert_eq!(
        sign_ins(&tenant).await,
        0,
        "no wrong or blocked PIN signed anyone in"
    );
    browser.assert_no_console_errors(&[]).await;
    browser.quit().await;
}
