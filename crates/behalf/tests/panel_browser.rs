//! The admin panel in a real browser: headless Chromium driven over WebDriver against the real
//! binary, `behalf serve --sandbox` on port 0. Debian's `chromium` and `chromium-driver` are
//! required (`.ci/run` installs them); without them these tests fail, they do not skip.
//! Screenshots of the pages go to `target/panel-screenshots/` and each is named in the output
//! (`cargo nextest run -p behalf --test panel_browser --no-capture` shows them).

mod common;
mod panel;

use panel::browser::Browser;
use panel::server::{Panel, cli};

const PASSWORD: &str = "correct horse battery staple";

/// The harness on a page the server has without the panel: an admin invited with
/// `behalf admin create` opens their one-time setup link in Chromium, sets a password in its
/// form (every field labelled), and can sign in with it afterwards; the link does not work twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invited_admin_sets_their_password_through_the_setup_link() {
    let data = tempfile::tempdir().unwrap();
    let invited = "invited@example.com";
    let created = cli(
        data.path(),
        &[
            "admin",
            "create",
            "--sandbox",
            "--email",
            invited,
            "--role",
            "viewer",
        ],
    );
    let token = created
        .split("setup?token=")
        .nth(1)
        .unwrap_or_else(|| panic!("admin create printed no setup link: {created}"))
        .trim()
        .to_owned();
    let panel = Panel::start_in(data, 20).await;
    let mut browser = Browser::start().await;

    browser
        .goto(&panel.url(&format!("/setup?token={token}")))
        .await;
    let password = browser.wait_for("input#password").await;
    assert_eq!(
        browser.unlabelled_controls().await,
        Vec::<String>::new(),
        "every field of the setup form has a label"
    );
    browser.screenshot("setup").await;
    password.send_keys(PASSWORD).await.unwrap();
    browser
        .wait_for("button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let heading = browser
        .eventually("the setup to be done", async |b| {
            let h1 = b.text_of("h1").await;
            (h1 != "Set up your Behalf account").then_some(h1)
        })
        .await;
    assert_eq!(heading, "Done", "{}", browser.text_of("main").await);
    assert!(browser.text_of("main").await.contains(invited));
    browser.screenshot("setup-done").await;

    // The password chosen in the browser signs in; the link was used up.
    let login = |password: &str| {
        panel
            .http
            .post(panel.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"email": invited, "password": password}))
            .send()
    };
    assert_eq!(login(PASSWORD).await.unwrap().status(), 200);
    assert_eq!(
        login("not the password at all").await.unwrap().status(),
        401
    );
    browser
        .goto(&panel.url(&format!("/setup?token={token}")))
        .await;
    browser
        .wait_for("input#password")
        .await
        .send_keys("another password entirely")
        .await
        .unwrap();
    browser
        .wait_for("button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    browser
        .eventually("the used link to be refused", async |b| {
            (b.text_of("h1").await == "That did not work").then_some(())
        })
        .await;
    assert_eq!(
        login("another password entirely").await.unwrap().status(),
        401
    );

    browser.assert_no_console_errors().await;
    browser.quit().await;
}
