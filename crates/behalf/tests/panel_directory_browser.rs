//! The panel's directory forms in a real browser: headless Chromium against the real binary,
//! `behalf serve --sandbox` on port 0, its writes reaching the sandbox tenant through Graph,
//! which the test reads back over Graph. An owner marks the connection writable, creates a user
//! (pending, then in Entra ID), edits it, creates a group and changes its members, sees a write
//! Graph refuses fail in the queue and discards it, deletes the user behind a confirm page; a
//! viewer sees none of the forms and is refused (403) when posting one anyway. Screenshots go to
//! `target/panel-screenshots/directory-*.png`.

mod common;
mod panel;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use panel::browser::{Browser, By};
use panel::server::{Panel, Printed};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";
/// How long a write may take to reach the sandbox.
const WRITE_PATIENCE: Duration = Duration::from_secs(60);

/// The sandbox tenant `serve --sandbox` runs, read and written over Graph as its app.
struct Graph {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Graph {
    async fn of(panel: &Panel) -> Graph {
        let http = reqwest::Client::new();
        let minted: Value = http
            .post(format!("{}/sandbox/token", panel.sandbox))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Graph {
            base: panel.sandbox.clone(),
            token: minted["access_token"].as_str().unwrap().to_owned(),
            http,
        }
    }

    /// `GET /v1.0{path}`: (status, body).
    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}/v1.0{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Every object of a collection, following `@odata.nextLink`.
    async fn all(&self, path: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut next = Some(format!("{}/v1.0{path}", self.base));
        while let Some(url) = next {
            let page: Value = self
                .http
                .get(&url)
                .bearer_auth(&self.token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            out.extend(page["value"].as_array().unwrap().iter().cloned());
            next = page["@odata.nextLink"].as_str().map(str::to_owned);
        }
        out
    }

    /// The user with this UPN at the sandbox, if there is one.
    async fn user(&self, upn: &str) -> Option<Value> {
        let (status, body) = self
            .get(&format!(
                "/users/{upn}?$select=id,userPrincipalName,displayName,accountEnabled"
            ))
            .await;
        match status {
            200 => Some(body),
            404 => None,
            other => panic!("GET /users/{upn}: {other} {body}"),
        }
    }

    /// The groups with this display name at the sandbox, each with its members' UPNs.
    async fn groups_named(&self, name: &str) -> Vec<BTreeSet<String>> {
        let mut out = Vec::new();
        for g in self.all("/groups?$top=999").await {
            if g["displayName"].as_str() != Some(name) {
                continue;
            }
            let id = g["id"].as_str().unwrap();
            out.push(
                self.all(&format!(
                    "/groups/{id}/members?$top=999&$select=userPrincipalName"
                ))
                .await
                .iter()
                .map(|m| m["userPrincipalName"].as_str().unwrap().to_lowercase())
                .collect(),
            );
        }
        out
    }

    /// Creates a user at the sandbox behind Behalf's back; answers its object id.
    async fn create_user(&self, upn: &str, name: &str) -> String {
        let nickname = upn.split('@').next().unwrap();
        let r = self
            .http
            .post(format!("{}/v1.0/users", self.base))
            .bearer_auth(&self.token)
            .json(&json!({
                "accountEnabled": true, "displayName": name, "mailNickname": nickname,
                "userPrincipalName": upn, "passwordProfile": {"password": "Xy7!kq2#Lm9$wZ"}
            }))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    async fn delete(&self, path: &str) {
        let r = self
            .http
            .delete(format!("{}/v1.0{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 204, "DELETE {path}");
    }

    async fn knobs(&self, patch: Value) {
        let r = self
            .http
            .patch(format!("{}/sandbox/knobs", self.base))
            .json(&patch)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "knobs: {}", r.status());
        let now: Value = r.json().await.unwrap();
        for (knob, value) in patch.as_object().unwrap() {
            assert_eq!(&now[knob], value, "the knob {knob} took: {now}");
        }
    }
}

/// Polls `probe` until it answers `Some` (the condition decides; the sleep only paces the
/// polling), failing with `what` after [`WRITE_PATIENCE`].
async fn at_the_sandbox<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WRITE_PATIENCE;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "waited {WRITE_PATIENCE:?} for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sign_in_with_the_printed_link(browser: &Browser, panel: &Panel) {
    let link = panel.printed(Printed::SignInLink).await;
    browser.goto(&link).await;
    browser
        .eventually("the sign-in link to land on /users", async |b| {
            (b.current_path().await == "/users" && b.has("table#users-table").await).then_some(())
        })
        .await;
}

async fn csrf_of_the_page(browser: &Browser) -> String {
    browser
        .wait_for("input[name=csrf]")
        .await
        .value()
        .await
        .unwrap()
        .expect("a CSRF token in the form")
}

/// Types `text` into the (emptied) field matching `css`.
async fn fill(browser: &Browser, css: &str, text: &str) {
    let field = browser.wait_for(css).await;
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// Accepts the `data-confirm` dialog that the click before opened.
async fn accept_the_confirm(browser: &Browser) -> String {
    let text = browser
        .eventually("the confirm dialog", async |b| {
            b.driver().get_alert_text().await.ok()
        })
        .await;
    browser.driver().accept_alert().await.unwrap();
    text
}

/// The sync state the page shows now (`#sync-state`), once it is `want`'s.
async fn sync_state_becomes(browser: &Browser, want: &str) -> String {
    browser
        .eventually(&format!("the sync state to say {want:?}"), async |b| {
            let text = b.text_of("#sync-state").await;
            text.starts_with(want).then_some(text)
        })
        .await
}

/// The user id on a `/users/{id}` page.
async fn user_id_of_the_page(browser: &Browser) -> String {
    browser
        .eventually("a user's page", async |b| {
            let path = b.current_path().await;
            let id = path.strip_prefix("/users/")?;
            (id.len() == 36 && b.has("#user-directory").await).then(|| id.to_owned())
        })
        .await
}

/// Creates `upn` with the New user form and waits for its page to say the create failed as a
/// conflict.
async fn create_and_see_it_fail(browser: &Browser, panel: &Panel, upn: &str) {
    browser.goto(&panel.url("/users/new")).await;
    fill(browser, "#new-upn", upn).await;
    fill(browser, "#new-display-name", "Made in Behalf").await;
    browser.click("#new-user-submit").await;
    user_id_of_the_page(browser).await;
    let failed = sync_state_becomes(browser, "failed: ").await;
    assert!(failed.contains("exists already"), "{failed}");
    assert!(browser.has("#sync form.write-retry").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_writes_users_groups_and_members_to_entra_id_and_a_viewer_may_not() {
    let data = tempfile::tempdir().unwrap();
    // No background delta import during the test: a user made at the sandbox behind Behalf's
    // back (the conflict below) must stay unknown to Behalf.
    std::fs::write(
        data.path().join("behalf.toml"),
        "[sync]\ninterval_secs = 0\n",
    )
    .unwrap();
    let panel = Panel::start_in(data, 20).await;
    let graph = Graph::of(&panel).await;
    let mut browser = Browser::start().await;
    sign_in_with_the_printed_link(&browser, &panel).await;
    let seeded: Vec<String> = graph
        .all("/users?$select=userPrincipalName&$top=999")
        .await
        .iter()
        .map(|u| u["userPrincipalName"].as_str().unwrap().to_lowercase())
        .collect();
    let domain = seeded[0].split('@').nth(1).unwrap().to_owned();

    // Read-only to begin with: no form, and the reason in one line.
    browser.goto(&panel.url("/users/new")).await;
    let why = browser.text_of("#not-writable").await;
    assert!(why.contains("No connection is writable"), "{why}");
    browser.goto(&panel.url("/users")).await;
    browser.click("table#users-table a.user-link").await;
    let seeded_user = user_id_of_the_page(&browser).await;
    let why = browser.text_of("#not-writable").await;
    assert!(
        why.contains("read-only"),
        "a read-only user's page says why: {why}"
    );
    assert!(
        !browser.has("form#edit-user").await,
        "no edit form while read-only"
    );
    browser.screenshot("directory-user-read-only").await;

    // The owner marks the sandbox connection writable on Directory → Writes to Entra ID.
    browser.goto(&panel.url("/directory")).await;
    browser.click("a#writes-link").await;
    browser
        .click("tr[data-connection=sandbox] button[data-action=writable]")
        .await;
    accept_the_confirm(&browser).await;
    browser
        .eventually("the connection to be writable", async |b| {
            let state = b
                .text_of("tr[data-connection=sandbox] .writable-state")
                .await;
            state.starts_with("writable").then_some(())
        })
        .await;
    browser.screenshot("directory-writes-writable").await;

    // A new user, from the users page's "New user". The sandbox answers every Graph request
    // 503 (with a Retry-After) for a while, so that the user's page is seen while the create
    // waits to be sent; then it answers again and the create goes through.
    let ada = format!("ada.lovelace@{domain}");
    graph
        .knobs(json!({"failEvery": 1, "retryAfterSecs": 1}))
        .await;
    browser.goto(&panel.url("/users")).await;
    browser.click("a#new-user").await;
    fill(&browser, "#new-upn", &ada).await;
    fill(&browser, "#new-display-name", "Ada Lovelace").await;
    assert_eq!(browser.unlabelled_controls().await, Vec::<String>::new());
    browser.screenshot("directory-new-user").await;
    browser.click("#new-user-submit").await;
    let ada_id = user_id_of_the_page(&browser).await;
    assert_eq!(browser.text_of("#sync-state").await, "pending");
    browser.screenshot("directory-user-pending").await;
    graph.knobs(json!({"failEvery": 0})).await;
    sync_state_becomes(&browser, "in Entra ID").await;
    browser.screenshot("directory-user-in-entra").await;
    let at_sandbox = graph.user(&ada).await.expect("the user is at the sandbox");
    assert_eq!(at_sandbox["displayName"], "Ada Lovelace");
    assert_eq!(at_sandbox["accountEnabled"], true);

    // Its display name edited on its page.
    fill(&browser, "#edit-display-name", "Ada King").await;
    browser.click("#edit-user-submit").await;
    browser
        .eventually("Behalf's record to have the new name", async |b| {
            b.text_of("h1").await.starts_with("Ada King").then_some(())
        })
        .await;
    sync_state_becomes(&browser, "in Entra ID").await;
    at_the_sandbox("the new display name at the sandbox", async || {
        let u = graph.user(&ada).await?;
        (u["displayName"] == "Ada King").then_some(())
    })
    .await;

    // A user created with "show an initial password once": the answer page shows it, once.
    let grace = format!("grace.hopper@{domain}");
    browser.goto(&panel.url("/users/new")).await;
    fill(&browser, "#new-upn", &grace).await;
    fill(&browser, "#new-display-name", "Grace Hopper").await;
    browser.click("#new-show-password").await;
    browser.click("#new-user-submit").await;
    let password = browser.text_of("#initial-password").await;
    assert!(
        password.len() >= 16,
        "an initial password is shown: {password:?}"
    );
    assert_eq!(browser.text_of("#sync-state").await, "in Entra ID");
    browser.screenshot("directory-user-password-once").await;
    browser.click("a#to-user").await;
    user_id_of_the_page(&browser).await;
    let page: String = serde_json::from_value(
        browser
            .script("return document.documentElement.outerHTML;", vec![])
            .await,
    )
    .unwrap();
    assert!(!page.contains(&password), "the password is not shown again");
    assert!(graph.user(&grace).await.is_some());

    // A group with two members added and one removed.
    let (first, second) = (seeded[1].clone(), seeded[2].clone());
    browser.goto(&panel.url("/users")).await;
    browser.click("nav#nav a[href='/groups']").await;
    browser.click("a#new-group").await;
    fill(&browser, "#group-display-name", "Analytical Engines").await;
    browser.click("#new-group-submit").await;
    let group_id = browser
        .eventually("the group's page", async |b| {
            let path = b.current_path().await;
            let id = path.strip_prefix("/groups/")?.to_owned();
            b.has("form#add-member").await.then_some(id)
        })
        .await;
    sync_state_becomes(&browser, "in Entra ID").await;
    // The first member through the suggestions shown while typing, the second typed in full.
    fill(&browser, "#member-upn", &first[..first.len() - 3]).await;
    browser
        .click(&format!("#candidates li button[aria-label='Add {first}']"))
        .await;
    browser
        .eventually("the first member in the list", async |b| {
            b.has("#members-table tr[data-user-id]").await.then_some(())
        })
        .await;
    fill(&browser, "#member-upn", &second).await;
    browser.click("#add-member-submit").await;
    browser
        .eventually("two members in the list", async |b| {
            (b.all("#members-table tr[data-user-id]").await.len() == 2).then_some(())
        })
        .await;
    sync_state_becomes(&browser, "in Entra ID").await;
    browser.screenshot("directory-group-two-members").await;
    browser
        .click(&format!(
            "#members-table button[aria-label='Remove {first}']"
        ))
        .await;
    browser
        .eventually("one member left in the list", async |b| {
            (b.all("#members-table tr[data-user-id]").await.len() == 1).then_some(())
        })
        .await;
    sync_state_becomes(&browser, "in Entra ID").await;
    let members = at_the_sandbox("the group's one member at the sandbox", async || {
        let groups = graph.groups_named("Analytical Engines").await;
        let [members] = groups.as_slice() else {
            assert!(groups.len() < 2, "the group was created twice: {groups:?}");
            return None;
        };
        (members.len() == 1).then(|| members.clone())
    })
    .await;
    assert_eq!(members, BTreeSet::from([second.clone()]));
    // The API says the same of the group: its creation and three membership writes, all done.
    let sync: Value = panel
        .http
        .get(panel.url(&format!("/api/v1/directory/groups/{group_id}/sync")))
        .header("cookie", browser.cookie_header().await)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sync["state"], "synced", "{sync}");
    let kinds: Vec<&str> = sync["writes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["create_group", "add_member", "add_member", "remove_member"]
    );
    browser.screenshot("directory-group").await;

    // A user that exists at the sandbox but not in Behalf: Graph has the UPN, so the create
    // fails as a conflict, said in words on the user's page and in the queue. The admin does
    // as the words say (the other one is deleted at the sandbox, for good) and Retry sends the
    // create again, which goes through.
    let taken = format!("taken.elsewhere@{domain}");
    let elsewhere = graph.create_user(&taken, "Made elsewhere").await;
    let failed_row = "#writes-table tr[data-state=failed]";
    create_and_see_it_fail(&browser, &panel, &taken).await;
    browser.goto(&panel.url("/directory/writes")).await;
    let words = browser.text_of(&format!("{failed_row} .write-error")).await;
    assert!(words.contains("exists already in Entra ID"), "{words}");
    assert!(browser.text_of(failed_row).await.contains(&taken));
    browser.screenshot("directory-writes-failed").await;
    graph.delete(&format!("/users/{elsewhere}")).await;
    graph
        .delete(&format!("/directory/deletedItems/{elsewhere}"))
        .await;
    browser
        .click(&format!("{failed_row} form.write-retry button"))
        .await;
    at_the_sandbox("the retried create at the sandbox", async || {
        let u = graph.user(&taken).await?;
        (u["displayName"] == "Made in Behalf").then_some(())
    })
    .await;
    browser
        .eventually("the retried write to leave the queue", async |b| {
            b.goto(&panel.url("/directory/writes")).await;
            (b.has("#queue").await && !b.has(failed_row).await).then_some(())
        })
        .await;

    // Another such conflict, discarded: it leaves the queue, and nothing reaches the sandbox.
    let again = format!("taken.again@{domain}");
    graph.create_user(&again, "Made elsewhere too").await;
    create_and_see_it_fail(&browser, &panel, &again).await;
    browser.goto(&panel.url("/directory/writes")).await;
    assert!(browser.text_of(failed_row).await.contains(&again));
    browser
        .click(&format!("{failed_row} form.write-discard button"))
        .await;
    accept_the_confirm(&browser).await;
    browser
        .eventually("the discarded write to leave the queue", async |b| {
            (b.current_path().await.starts_with("/directory/writes")
                && b.has("#queue").await
                && !b.has(failed_row).await)
                .then_some(())
        })
        .await;
    browser.screenshot("directory-writes-discarded").await;
    assert_eq!(
        graph.user(&again).await.unwrap()["displayName"],
        "Made elsewhere too",
        "the discarded create did not touch the sandbox's user"
    );

    // The first user deleted, behind the confirm page.
    browser.goto(&panel.url(&format!("/users/{ada_id}"))).await;
    browser.click("#delete-user").await;
    let asked = browser.text_of("h1").await;
    assert!(
        asked.contains(&ada),
        "the confirm page names the user: {asked}"
    );
    browser.screenshot("directory-delete-user-confirm").await;
    browser.click("#confirm").await;
    browser
        .eventually("the deletion's page", async |b| {
            b.current_path()
                .await
                .starts_with("/directory/writes/")
                .then_some(())
        })
        .await;
    sync_state_becomes(&browser, "in Entra ID").await;
    browser.screenshot("directory-user-deleted").await;
    at_the_sandbox("the user gone from the sandbox", async || {
        graph.user(&ada).await.is_none().then_some(())
    })
    .await;

    // A viewer: invited by the owner, signed in with a password; no forms, and refused.
    let csrf = csrf_of_the_page(&browser).await;
    let viewer = "viewer@example.com";
    let invited: Value = panel
        .http
        .post(panel.url("/api/v1/admins"))
        .header("cookie", browser.cookie_header().await)
        .header("x-csrf-token", &csrf)
        .json(&json!({"email": viewer, "role": "viewer"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let setup = invited["setup_token"].as_str().unwrap().to_owned();
    browser.clear_cookies().await;
    browser
        .goto(&panel.url(&format!("/setup?token={setup}")))
        .await;
    fill(&browser, "input#password", PASSWORD).await;
    browser.click("button[type=submit]").await;
    browser
        .eventually("the viewer's setup", async |b| {
            (b.text_of("h1").await == "Done").then_some(())
        })
        .await;
    browser.goto(&panel.url("/login")).await;
    fill(&browser, "form#login input#email", viewer).await;
    fill(&browser, "form#login input#password", PASSWORD).await;
    browser.click("form#login button[type=submit]").await;
    browser
        .eventually("the viewer's users page", async |b| {
            (b.current_path().await == "/users" && b.has("table#users-table").await).then_some(())
        })
        .await;
    assert!(!browser.has("a#new-user").await, "a viewer has no New user");
    browser
        .goto(&panel.url(&format!("/users/{seeded_user}")))
        .await;
    browser.wait_for("#user-directory").await;
    assert!(!browser.has("form#edit-user").await);
    assert!(!browser.has("#delete-user").await);
    browser
        .goto(&panel.url(&format!("/groups/{group_id}")))
        .await;
    browser.wait_for("#members-table").await;
    assert!(!browser.has("form#add-member").await);
    assert!(!browser.has("#delete-group").await);
    assert!(!browser.has("form.remove-member").await);
    browser.goto(&panel.url("/groups")).await;
    browser.wait_for("#groups-table").await;
    assert!(!browser.has("a#new-group").await);
    browser.goto(&panel.url("/directory/writes")).await;
    browser.wait_for("#writable-table").await;
    assert!(!browser.has("button[data-action]").await);
    browser.screenshot("directory-viewer-writes").await;
    // A form posted anyway, with the viewer's own CSRF token: 403, and nothing changes.
    let viewer_csrf = browser
        .script(
            "return JSON.parse(document.body.getAttribute('hx-headers'))['x-csrf-token'];",
            vec![],
        )
        .await
        .as_str()
        .unwrap()
        .to_owned();
    browser
        .script(
            "const f = document.createElement('form'); f.method = 'post'; f.action = arguments[1];\
             for (const [k, v] of [['csrf', arguments[0]], ['display_name', 'Renamed by a viewer']]) {\
               const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i); }\
             document.body.appendChild(f); f.submit();",
            vec![
                viewer_csrf.clone().into(),
                format!("/users/{seeded_user}/edit").into(),
            ],
        )
        .await;
    browser
        .eventually("the refusal page", async |b| {
            (b.current_path().await.ends_with("/edit")).then_some(())?;
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
    assert_eq!(status, 403, "a viewer's edit is refused");
    let cookie = browser.cookie_header().await;
    for (path, form) in [
        (
            "/users/new".to_owned(),
            vec![
                ("upn", format!("mallory@{domain}")),
                ("display_name", "Mallory".into()),
            ],
        ),
        (
            format!("/groups/{group_id}/members"),
            vec![("upn", first.clone())],
        ),
        (
            format!("/groups/{group_id}/delete"),
            vec![("confirmed", "1".into())],
        ),
        (
            "/directory/writable".to_owned(),
            vec![("connection", "sandbox".into()), ("writable", "0".into())],
        ),
    ] {
        let mut fields = vec![("csrf", viewer_csrf.clone())];
        fields.extend(form);
        let r = panel
            .http
            .post(panel.url(&path))
            .header("cookie", &cookie)
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "a viewer posting {path}");
    }
    assert!(graph.user(&format!("mallory@{domain}")).await.is_none());
    assert_eq!(
        graph.groups_named("Analytical Engines").await,
        vec![BTreeSet::from([second])],
        "the viewer changed nothing at the sandbox"
    );
    browser
        .assert_no_console_errors(&[(&format!("/users/{seeded_user}/edit"), 403)])
        .await;
    browser.quit().await;
}
