//! The admin panel in a real browser: headless Chromium driven over WebDriver against the real
//! binary, `behalf serve --sandbox` on port 0. Debian's `chromium` and `chromium-driver` are
//! required (`.ci/run` installs them); without them these tests fail, they do not skip.
//! Screenshots of the pages go to `target/panel-screenshots/` and each is named in the output
//! (`cargo nextest run -p behalf --test panel_browser --no-capture` shows them).

mod common;
mod panel;

use panel::browser::{Browser, By, DESKTOP, PHONE};
use panel::server::{Panel, Printed, cli};

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
    browser.click("button[type=submit]").await;
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
    browser.click("button[type=submit]").await;
    browser
        .eventually("the used link to be refused", async |b| {
            (b.text_of("h1").await == "That did not work").then_some(())
        })
        .await;
    assert_eq!(
        login("another password entirely").await.unwrap().status(),
        401
    );

    browser.assert_no_console_errors(&[]).await;
    browser.quit().await;
}

/// Signs the browser in with the one-time link `serve --sandbox` printed and waits for the
/// users page it lands on.
async fn sign_in_with_the_printed_link(browser: &Browser, panel: &Panel) {
    let link = panel.printed(Printed::SignInLink).await;
    assert!(
        link.starts_with(&panel.url("/login/link?token=")),
        "the sign-in link is this server's /login/link: {link}"
    );
    browser.goto(&link).await;
    browser
        .eventually("the sign-in link to land on /users", async |b| {
            (b.current_path().await == "/users" && b.has("table#users-table").await).then_some(())
        })
        .await;
}

/// What every signed-in page has: the navigation to the five sections, one `<h1>` in `<main>`,
/// the progress region at the top.
async fn assert_frame(browser: &Browser) {
    let page = browser.current_path().await;
    let links: Vec<String> = serde_json::from_value(
        browser
            .script(
                "return Array.from(document.querySelectorAll('nav#nav a')).map(a => a.getAttribute('href'));",
                vec![],
            )
            .await,
    )
    .unwrap();
    for section in ["/users", "/jobs", "/directory", "/reports", "/settings"] {
        assert!(
            links.iter().any(|l| l == section),
            "{page}: nav#nav links to {section} ({links:?})"
        );
    }
    assert_eq!(
        browser.all("main h1").await.len(),
        1,
        "{page}: one <h1> in <main>"
    );
    assert!(browser.has("#job-progress").await, "{page}: #job-progress");
}

/// The session's CSRF token, from a form of the page shown.
async fn csrf_of_the_page(browser: &Browser) -> String {
    browser
        .wait_for("input[name=csrf]")
        .await
        .value()
        .await
        .unwrap()
        .expect("a CSRF token in the form")
}

/// `GET path` with the browser's cookies, outside the browser (headers, status).
async fn fetch_as_browser(panel: &Panel, browser: &Browser, path: &str) -> reqwest::Response {
    panel
        .http
        .get(panel.url(path))
        .header("cookie", browser.cookie_header().await)
        .send()
        .await
        .unwrap()
}

/// The page's Content-Security-Policy allows no inline or evaluated script.
fn assert_strict_csp(path: &str, response: &reqwest::Response) {
    let csp = response
        .headers()
        .get("content-security-policy")
        .unwrap_or_else(|| panic!("{path}: no Content-Security-Policy header"))
        .to_str()
        .unwrap()
        .to_owned();
    let directive = |name: &str| {
        csp.split(';')
            .map(str::trim)
            .find(|d| d.split_whitespace().next() == Some(name))
            .map(str::to_owned)
    };
    let scripts = directive("script-src")
        .or_else(|| directive("default-src"))
        .unwrap_or_else(|| panic!("{path}: the CSP does not restrict scripts: {csp}"));
    assert!(
        !scripts.contains("'unsafe-inline'") && !scripts.contains("'unsafe-eval'"),
        "{path}: scripts may run inline or from eval: {csp}"
    );
    assert!(
        !scripts.contains('*') && !scripts.contains("data:"),
        "{path}: scripts from anywhere: {csp}"
    );
}

/// The users page's rows now: (user id, UPN) in order.
async fn rows(browser: &Browser) -> Vec<(String, String)> {
    serde_json::from_value(
        browser
            .script(
                "return Array.from(document.querySelectorAll('table#users-table tr[data-user-id]'))\
                   .map(tr => [tr.dataset.userId, tr.querySelector('a.user-link').textContent.trim()]);",
                vec![],
            )
            .await,
    )
    .unwrap()
}

/// Ticks the row checkbox of each user in `ids` on the users page.
async fn tick(browser: &Browser, ids: &[String]) {
    for id in ids {
        browser
            .click(&format!(
                "tr[data-user-id=\"{id}\"] input[type=checkbox][name=user][value=\"{id}\"]"
            ))
            .await;
    }
}

/// Waits for the job page's progress bar to reach its end and says how it ended.
async fn progress_to_the_end(browser: &Browser) -> (String, String) {
    browser
        .eventually("the progress bar to reach the end", async |b| {
            let region = b.driver().find(By::Css("#job-progress")).await.ok()?;
            let state = region.attr("data-state").await.ok()??;
            if !matches!(state.as_str(), "done" | "failed" | "cancelled") {
                return None;
            }
            let bar = b
                .driver()
                .find(By::Css("progress#job-progress-bar"))
                .await
                .ok()?;
            let value = bar.attr("value").await.ok()??;
            let max = bar.attr("max").await.ok()??;
            (value == max).then_some(())?;
            let text = b.driver().find(By::Css("#job-progress-text")).await.ok()?;
            Some((state, text.text().await.ok()?))
        })
        .await
}

/// Provisions `ids` from the users page (they are ticked there) and waits for the job's end.
async fn provision(browser: &Browser, ids: &[String]) -> String {
    tick(browser, ids).await;
    let count = browser.text_of("#selection-count").await;
    assert!(
        count.contains(&ids.len().to_string()),
        "the action bar counts the selection: {count}"
    );
    browser
        .click("#actions button[name=action][value=provision]")
        .await;
    browser
        .eventually("provisioning to open its job page", async |b| {
            let path = b.current_path().await;
            let id = path.strip_prefix("/jobs/")?.to_owned();
            b.has("table#items-table").await.then_some(id)
        })
        .await
}

/// The whole workflow the panel exists for, as an IT admin clicks it, then what a viewer may
/// not do: sign in with the printed link; search; filter; select 50 users; provision; watch
/// the progress bar reach the end; the user's passkeys tab; a Temporary Access Pass shown
/// once; a viewer created by the owner signs in with the password form, sees no provision
/// button, and a provision posted anyway is refused (403). On the way: the CSP, console
/// errors, keyboard access and labels, a phone-size layout, a screenshot of each page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_provisions_fifty_users_and_a_viewer_may_not() {
    let panel = Panel::start(150).await;
    let mut browser = Browser::start().await;

    // Signed out, the panel is the sign-in page.
    browser.goto(&panel.url("/")).await;
    browser.wait_for("form#login input#email").await;
    assert_eq!(browser.current_path().await, "/login");
    browser.screenshot("sign-in").await;
    sign_in_with_the_printed_link(&browser, &panel).await;
    assert_frame(&browser).await;
    let all = rows(&browser).await;
    assert_eq!(all.len(), 50, "a page of 50 of the 150 imported users");
    browser.screenshot("users").await;

    // Every control of the users page is labelled, and Tab reaches the search and the actions.
    assert_eq!(browser.unlabelled_controls().await, Vec::<String>::new());
    let order = browser.tab_order(400).await;
    for wanted in [
        "input#search",
        "button#select-all-matching",
        "button[action=provision]",
        "button[action=assign-key]",
        "button[action=tap]",
        "button[action=deprovision]",
        "button[action=export]",
    ] {
        assert!(
            order
                .iter()
                .any(|f| f == wanted || f.starts_with(&format!("{wanted}["))),
            "Tab reaches {wanted}; it went through {order:?}"
        );
    }

    // Search as you type: a user's UPN narrows the table to them, without a page load.
    let (target_id, target_upn) = all[17].clone();
    let local = target_upn.split('@').next().unwrap().to_owned();
    browser.script("window.__same_page = true;", vec![]).await;
    browser
        .wait_for("input#search")
        .await
        .send_keys(&local)
        .await
        .unwrap();
    let found = browser
        .eventually("the search to narrow the table", async |b| {
            let now = rows(b).await;
            (now.len() < 50 && now.iter().all(|(_, upn)| upn.starts_with(&local))).then_some(now)
        })
        .await;
    assert!(found.iter().any(|(id, _)| *id == target_id), "{found:?}");
    assert_eq!(
        browser
            .script("return window.__same_page === true;", vec![])
            .await,
        true,
        "the results were swapped in place (htmx), not by loading a page"
    );
    browser.screenshot("users-search").await;
    let fragment = panel
        .http
        .get(panel.url(&format!("/users?q={local}")))
        .header("cookie", browser.cookie_header().await)
        .header("hx-request", "true")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        fragment
            .trim_start()
            .starts_with("<div id=\"users-results\"")
            && !fragment.contains("<html"),
        "HX-Request answers the #users-results fragment alone: {fragment:.200}"
    );

    // Filter to enabled users, select 50 of them, provision.
    browser.goto(&panel.url("/users")).await;
    browser
        .click("form#filters select#f-enabled option[value=yes]")
        .await;
    let enabled = browser
        .eventually("the filter to apply", async |b| {
            let path = b.current_path().await;
            let now = rows(b).await;
            (path.contains("enabled=yes") && now.len() == 50).then_some(now)
        })
        .await;
    let chosen: Vec<String> = enabled.iter().map(|(id, _)| id.clone()).collect();
    let job = provision(&browser, &chosen).await;
    browser.screenshot("job-progress").await;
    assert_frame(&browser).await;
    let (state, text) = progress_to_the_end(&browser).await;
    assert_eq!(state, "done", "{text}");
    assert!(text.contains("50 of 50"), "{text}");
    assert!(text.contains("0 failed"), "{text}");
    browser.goto(&panel.url(&format!("/jobs/{job}"))).await;
    let items = browser.all("table#items-table tbody tr").await.len();
    assert_eq!(items, 50, "one item per selected user");
    assert!(browser.has("a#failures-csv").await);
    browser.screenshot("job").await;
    browser.goto(&panel.url("/jobs")).await;
    browser
        .wait_for(&format!("table#jobs-table a[href=\"/jobs/{job}\"]"))
        .await;
    assert_frame(&browser).await;
    browser.screenshot("jobs").await;

    // The user's passkeys tab shows the passkey just registered at "Microsoft".
    let (user_id, user_upn) = enabled[3].clone();
    browser.goto(&panel.url(&format!("/users/{user_id}"))).await;
    browser.click("a#tab-passkeys").await;
    let passkey = browser
        .eventually("the passkeys tab", async |b| {
            let row = b
                .driver()
                .find(By::Css("table#passkeys-table tbody tr"))
                .await
                .ok()?;
            row.text().await.ok()
        })
        .await;
    assert!(browser.current_path().await.contains("tab=passkeys"));
    assert!(
        passkey.contains("login.microsoft.com"),
        "the passkey's relying party: {passkey}"
    );
    assert_eq!(
        browser.all("table#passkeys-table tbody tr").await.len(),
        1,
        "one passkey for {user_upn}"
    );
    for tab in ["#tab-details", "#tab-groups", "#tab-keys", "#tab-events"] {
        assert!(browser.has(&format!("a[role=tab]{tab}")).await, "{tab}");
    }
    browser.screenshot("user-passkeys").await;

    // A Temporary Access Pass for one user: shown once, in a dialog. The ended job's bar
    // stays at the top of other pages until dismissed.
    browser.goto(&panel.url("/users")).await;
    browser
        .wait_for("#job-progress[data-state=done] progress#job-progress-bar")
        .await;
    tick(&browser, std::slice::from_ref(&user_id)).await;
    browser
        .click("#actions button[name=action][value=tap]")
        .await;
    let pass = browser.text_of("dialog#tap-dialog[open] #tap-value").await;
    assert!(pass.trim().len() >= 8, "a pass in the dialog: {pass:?}");
    browser.screenshot("tap-dialog").await;
    browser.goto(&panel.url("/users")).await;
    browser.wait_for("table#users-table").await;
    let source = browser.driver().source().await.unwrap();
    assert!(!source.contains(pass.trim()), "the pass is shown once only");

    // The pages of this flow, signed in, and the sign-in page: a strict CSP on each.
    for path in [
        "/users".to_owned(),
        format!("/users/{user_id}?tab=passkeys"),
        "/jobs".to_owned(),
        format!("/jobs/{job}"),
    ] {
        let response = fetch_as_browser(&panel, &browser, &path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        assert_strict_csp(&path, &response);
    }
    let login = panel.http.get(panel.url("/login")).send().await.unwrap();
    assert_strict_csp("/login", &login);

    // A phone: the users page fits the width (the table scrolls inside itself).
    browser.window(PHONE).await;
    browser.goto(&panel.url("/users")).await;
    browser.wait_for("table#users-table").await;
    let overflow = browser
        .script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
            vec![],
        )
        .await;
    assert_eq!(overflow, 0, "the users page scrolls sideways on a phone");
    browser.screenshot("users-phone").await;
    browser.window(DESKTOP).await;

    // The owner invites a viewer through the API, with the session and its CSRF token.
    let csrf = csrf_of_the_page(&browser).await;
    let viewer = "viewer@example.com";
    let created: serde_json::Value = panel
        .http
        .post(panel.url("/api/v1/admins"))
        .header("cookie", browser.cookie_header().await)
        .header("x-csrf-token", &csrf)
        .json(&serde_json::json!({"email": viewer, "role": "viewer"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let setup = created["setup_token"]
        .as_str()
        .unwrap_or_else(|| panic!("a setup token for the viewer: {created}"))
        .to_owned();

    // The viewer sets a password with the link, then signs in with the password form.
    browser.clear_cookies().await;
    browser
        .goto(&panel.url(&format!("/setup?token={setup}")))
        .await;
    browser
        .wait_for("input#password")
        .await
        .send_keys(PASSWORD)
        .await
        .unwrap();
    browser.click("button[type=submit]").await;
    browser
        .eventually("the viewer's setup", async |b| {
            (b.text_of("h1").await == "Done").then_some(())
        })
        .await;
    browser.goto(&panel.url("/login")).await;
    browser
        .wait_for("form#login input#email")
        .await
        .send_keys(viewer)
        .await
        .unwrap();
    browser
        .wait_for("form#login input#password")
        .await
        .send_keys("not the viewer's password")
        .await
        .unwrap();
    browser.click("form#login button[type=submit]").await;
    let refusal = browser.text_of("[role=alert]").await;
    assert!(!refusal.is_empty(), "a failed sign-in says so");
    browser.screenshot("sign-in-failed").await;
    browser
        .wait_for("form#login input#email")
        .await
        .clear()
        .await
        .unwrap();
    browser
        .wait_for("form#login input#email")
        .await
        .send_keys(viewer)
        .await
        .unwrap();
    browser
        .wait_for("form#login input#password")
        .await
        .send_keys(PASSWORD)
        .await
        .unwrap();
    browser.click("form#login button[type=submit]").await;
    browser
        .eventually("the viewer's users page", async |b| {
            (b.current_path().await == "/users" && b.has("table#users-table").await).then_some(())
        })
        .await;
    assert!(
        !browser.has("button[name=action][value=provision]").await,
        "a viewer sees no provision button"
    );
    assert!(
        browser
            .has("#actions button[name=action][value=export]")
            .await
    );
    browser.screenshot("viewer-users").await;

    // A provision posted anyway, a real form submission with the viewer's CSRF token: 403.
    let viewer_csrf = csrf_of_the_page(&browser).await;
    browser
        .script(
            "const f = document.createElement('form'); f.method = 'post'; f.action = '/users/actions';\
             for (const [k, v] of [['csrf', arguments[0]], ['action', 'provision'], ['user', arguments[1]]]) {\
               const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i); }\
             document.body.appendChild(f); f.submit();",
            vec![viewer_csrf.clone().into(), target_id.clone().into()],
        )
        .await;
    let why = browser
        .eventually("the refusal page", async |b| {
            (b.current_path().await == "/users/actions").then_some(())?;
            let alert = b.driver().find(By::Css("[role=alert]")).await.ok()?;
            alert.text().await.ok()
        })
        .await;
    let status = browser
        .script(
            "return performance.getEntriesByType('navigation')[0].responseStatus;",
            vec![],
        )
        .await;
    assert_eq!(status, 403, "the refusal's status; it said: {why}");
    assert!(!why.trim().is_empty());
    browser.screenshot("viewer-refused").await;
    let direct = panel
        .http
        .post(panel.url("/users/actions"))
        .header("cookie", browser.cookie_header().await)
        .form(&[
            ("csrf", viewer_csrf.as_str()),
            ("action", "provision"),
            ("user", target_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), 403);
    // Nothing was queued for the viewer: the owner's job is still the only one.
    browser.goto(&panel.url("/jobs")).await;
    let jobs = browser.all("table#jobs-table tbody tr").await.len();
    assert_eq!(jobs, 1, "one job, the owner's");

    // The refused sign-in (401) and the refused provision (403) are the only failed loads.
    browser
        .assert_no_console_errors(&[("/login", 401), ("/users/actions", 403)])
        .await;
    browser.quit().await;
}

/// The pages of the panel's navigation (path, the section's name in screenshots).
const MAIN_PAGES: &[(&str, &str)] = &[
    ("/users", "users"),
    ("/jobs", "jobs"),
    ("/directory", "directory"),
    ("/reports", "reports"),
    ("/reports/audit", "audit"),
    ("/settings", "settings"),
];

/// The rest of the navigation, with data in it: import from the sandbox on the directory page,
/// provision a few users, filter the provisioning report to one of them and download its CSV
/// (its rows are that user's), the audit log, the settings page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_import_report_csv_audit_and_settings() {
    let panel = Panel::start(60).await;
    let mut browser = Browser::start().await;
    sign_in_with_the_printed_link(&browser, &panel).await;

    // Import now, from the directory page.
    browser.goto(&panel.url("/directory")).await;
    assert_frame(&browser).await;
    let import = browser
        .wait_for("#connections form.import button[data-action=import]")
        .await;
    assert!(browser.has("#doctor").await, "the doctor's findings");
    browser.screenshot("directory").await;
    // A full round, so the import has the tenant's users to count (serve imported them at
    // start, and a delta round now would find nothing new).
    if let Some(full) = browser
        .all("#connections form.import select option[value=full]")
        .await
        .into_iter()
        .next()
    {
        full.click().await.unwrap();
    }
    import.click().await.unwrap();
    let imported = browser
        .eventually("the import to finish", async |b| {
            if b.has("#job-progress[data-state=done]").await {
                return Some(None);
            }
            let flash = b.driver().find(By::Css("#flash")).await.ok()?;
            let text = flash.text().await.ok()?;
            (!text.trim().is_empty()).then_some(Some(text))
        })
        .await;
    if let Some(flash) = imported {
        assert!(
            flash.contains("60 users"),
            "the import's flash counts the tenant's 60 users: {flash}"
        );
    }
    browser.screenshot("directory-imported").await;

    // Three users get a passkey.
    browser.goto(&panel.url("/users?enabled=yes")).await;
    browser.wait_for("table#users-table").await;
    let some: Vec<(String, String)> = rows(&browser).await.into_iter().take(3).collect();
    let ids: Vec<String> = some.iter().map(|(id, _)| id.clone()).collect();
    provision(&browser, &ids).await;
    let (state, text) = progress_to_the_end(&browser).await;
    assert_eq!(state, "done", "{text}");

    // The report, filtered to one user and today; its CSV has the same filters.
    let (_, upn) = &some[1];
    browser.goto(&panel.url("/reports")).await;
    assert_frame(&browser).await;
    browser
        .wait_for("form#report-filters input#report-user")
        .await
        .send_keys(upn)
        .await
        .unwrap();
    browser.wait_for("input#report-rp").await;
    for field in ["#report-from", "#report-to"] {
        let kind = browser
            .wait_for(&format!("input{field}"))
            .await
            .attr("type")
            .await
            .unwrap();
        assert_eq!(kind.as_deref(), Some("date"), "{field}");
    }
    browser.click("button#report-apply").await;
    let shown = browser
        .eventually("the filtered report", async |b| {
            b.current_path().await.contains("user=").then_some(())?;
            let table = b.driver().find(By::Css("table#report-table")).await.ok()?;
            table.text().await.ok()
        })
        .await;
    assert!(shown.contains(upn.as_str()), "{shown}");
    for (other_upn, _) in some.iter().filter(|(_, u)| u != upn).map(|(i, u)| (u, i)) {
        assert!(
            !shown.contains(other_upn.as_str()),
            "the report is narrowed to {upn}: {shown}"
        );
    }
    browser.screenshot("reports").await;
    let href = browser
        .wait_for("a#report-csv")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert!(
        href.contains("user="),
        "the CSV link carries the filters: {href}"
    );
    let csv_response = fetch_as_browser(&panel, &browser, &href).await;
    assert!(
        csv_response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        csv_response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    browser.click("a#report-csv").await;
    let file = browser.downloaded(".csv").await;
    let mut reader = csv::Reader::from_path(&file).unwrap();
    let headers = reader.headers().unwrap().clone();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert!(
        !records.is_empty(),
        "the CSV has the user's rows ({})",
        file.display()
    );
    for record in &records {
        assert!(
            record.iter().any(|field| field.eq_ignore_ascii_case(upn)),
            "every row of the CSV is {upn}'s: {headers:?} {record:?}"
        );
    }

    // The audit log records the job, and the settings page has its four parts.
    browser.goto(&panel.url("/reports/audit")).await;
    let audit = browser.text_of("table#audit-table").await;
    assert!(!audit.trim().is_empty());
    assert_frame(&browser).await;
    browser.screenshot("audit").await;
    browser.goto(&panel.url("/settings")).await;
    for part in ["#admins", "#tokens", "#vault", "#attestation"] {
        browser.wait_for(part).await;
    }
    assert_frame(&browser).await;
    assert_eq!(browser.unlabelled_controls().await, Vec::<String>::new());
    browser.screenshot("settings").await;

    for (path, name) in MAIN_PAGES {
        let response = fetch_as_browser(&panel, &browser, path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        assert_strict_csp(path, &response);
        browser.goto(&panel.url(path)).await;
        browser.wait_for("main h1").await;
        assert_eq!(
            browser.unlabelled_controls().await,
            Vec::<String>::new(),
            "{name}: every control labelled"
        );
    }
    browser.assert_no_console_errors(&[]).await;
    browser.quit().await;
}
