//! The admin panel's pages over real HTTP, as a browser without script would use them: sign-in,
//! the users page (search, paging, selection, export), a user's tabs, roles and CSRF. The
//! same flows in a real Chromium are `crates/behalf/tests/panel_browser.rs`.

mod common;

use behalf_domain::{Role, Upn, UserDraft};
use common::panel::{browser, client, get};
use common::{PASSWORD, TestServer};

async fn seed_users(server: &TestServer, n: usize) {
    let drafts: Vec<UserDraft> = (0..n)
        .map(|i| UserDraft {
            connection_id: None,
            external_id: None,
            upn: Upn::parse(&format!("user-{i:04}@contoso.test")).unwrap(),
            display_name: format!("Person {i:04}"),
            mail: Some(format!("person.{i:04}@contoso.test")),
            department: None,
            enabled: i % 10 != 9,
        })
        .collect();
    server
        .app
        .store()
        .upsert_users(server.app.workspace().id, &drafts)
        .await
        .unwrap();
}

async fn post(
    server: &TestServer,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    client()
        .post(server.url(path))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap()
}

fn user_ids(page: &str) -> Vec<String> {
    page.split("name=\"user\" value=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_signed_out_browser_is_sent_to_the_sign_in_page() {
    let server = TestServer::start().await;
    for path in ["/", "/users", "/jobs"] {
        let answer = client().get(server.url(path)).send().await.unwrap();
        assert_eq!(answer.status(), 303, "{path}");
        assert_eq!(answer.headers()["location"], "/login", "{path}");
    }
    // htmx is told to load the sign-in page instead of swapping it into a fragment.
    let answer = client()
        .get(server.url("/users?q=a"))
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.headers()["hx-redirect"], "/login");
    server.stop().await;
}

#[tokio::test]
async fn the_password_form_signs_in_and_says_why_when_it_does_not() {
    let server = TestServer::start().await;
    server.admin("owner@contoso.test", Role::Owner, true).await;
    let wrong = client()
        .post(server.url("/login"))
        .header("sec-fetch-site", "same-origin")
        .form(&[
            ("email", "owner@contoso.test"),
            ("password", "not the password at all"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let page = wrong.text().await.unwrap();
    assert!(
        page.contains("role=\"alert\"") && page.contains("do not match"),
        "{page}"
    );
    assert!(
        !page.contains("not the password at all"),
        "the page repeats the password"
    );

    // Posted from another site: refused (login CSRF), whatever the password.
    let forged = client()
        .post(server.url("/login"))
        .header("sec-fetch-site", "cross-site")
        .form(&[("email", "owner@contoso.test"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(forged.headers().get("set-cookie").is_none());

    let right = client()
        .post(server.url("/login"))
        .header("sec-fetch-site", "same-origin")
        .form(&[("email", "owner@contoso.test"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 303);
    assert_eq!(right.headers()["location"], "/users");
    let cookie = right.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let session = cookie.split(';').next().unwrap();
    let page = get(&server, session, "/users").await;
    assert!(page.contains("<h1>Users</h1>"));
    assert!(
        page.contains("owner@contoso.test"),
        "the frame names who is signed in"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_sign_in_link_signs_in_once() {
    let server = TestServer::start().await;
    let token = server
        .app
        .local_sign_in_link("owner@behalf.sandbox")
        .await
        .unwrap();
    let url = format!("/login/link?token={}", token.expose());
    let first = client().get(server.url(&url)).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let cookie = first.headers()["set-cookie"].to_str().unwrap().to_owned();
    let page = get(&server, cookie.split(';').next().unwrap(), "/users").await;
    assert!(page.contains("owner@behalf.sandbox"));
    assert!(
        page.contains("No users yet"),
        "the empty state says what to do: {page}"
    );

    let again = client().get(server.url(&url)).send().await.unwrap();
    assert_eq!(again.status(), 400);
    assert!(again.headers().get("set-cookie").is_none());
    assert!(again.text().await.unwrap().contains("used or expired"));
    server.stop().await;
}

#[tokio::test]
async fn the_users_page_searches_as_you_type_and_pages() {
    let server = TestServer::start().await;
    server
        .admin("viewer@contoso.test", Role::Viewer, false)
        .await;
    seed_users(&server, 120).await;
    let b = browser(&server, "viewer@contoso.test").await;

    let first = get(&server, &b.cookie, "/users").await;
    assert_eq!(user_ids(&first).len(), 50, "one page is 50 users");
    let next = first
        .split("id=\"next-page\" href=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a next-page link")
        .replace("&amp;", "&");
    let second = get(&server, &b.cookie, &next).await;
    let (a, z) = (user_ids(&first), user_ids(&second));
    assert_eq!(z.len(), 50);
    assert!(a.iter().all(|id| !z.contains(id)), "pages do not overlap");

    // What htmx asks for while typing: only the results, matching UPN, name or mail.
    let answer = client()
        .get(server.url("/users?q=user-003"))
        .header("cookie", &b.cookie)
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    let fragment = answer.text().await.unwrap();
    assert!(
        fragment.starts_with("<div id=\"users-results\">"),
        "{fragment}"
    );
    assert!(!fragment.contains("<html"));
    assert_eq!(user_ids(&fragment).len(), 10);
    let by_name = get(&server, &b.cookie, "/users?q=person%200011").await;
    assert_eq!(user_ids(&by_name).len(), 1);
    assert!(by_name.contains("user-0011@contoso.test"));
    let disabled = get(&server, &b.cookie, "/users?enabled=no").await;
    assert_eq!(user_ids(&disabled).len(), 12);
    let none = get(&server, &b.cookie, "/users?q=nobody-like-this").await;
    assert!(none.contains("No user matches this search"));
    let bad = client()
        .get(server.url("/users?enabled=maybe"))
        .header("cookie", &b.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("enabled"));
    server.stop().await;
}

#[tokio::test]
async fn a_viewer_sees_no_provision_button_and_is_refused_when_posting_anyway() {
    let server = TestServer::start().await;
    server
        .admin("viewer@contoso.test", Role::Viewer, false)
        .await;
    server.admin("owner@contoso.test", Role::Owner, true).await;
    seed_users(&server, 3).await;

    let owner = browser(&server, "owner@contoso.test").await;
    let page = get(&server, &owner.cookie, "/users").await;
    assert!(
        page.contains("value=\"provision\""),
        "an owner has the button"
    );
    assert!(
        page.contains("value=\"manual\"")
            && page.contains("Mail a pass and wait for the user's passkey"),
        "an owner may mail passes"
    );

    let viewer = browser(&server, "viewer@contoso.test").await;
    let page = get(&server, &viewer.cookie, "/users").await;
    for action in ["provision", "manual", "tap", "deprovision", "assign-key"] {
        assert!(
            !page.contains(&format!("value=\"{action}\"")),
            "{action} shown to a viewer"
        );
    }
    assert!(page.contains("value=\"export\""), "export is a read");
    let id = user_ids(&page).remove(0);
    for action in ["provision", "manual", "tap", "deprovision", "assign-key"] {
        let answer = post(
            &server,
            &viewer.cookie,
            "/users/actions",
            &[("csrf", &viewer.csrf), ("action", action), ("user", &id)],
        )
        .await;
        assert_eq!(answer.status(), 403, "{action}");
        let body = answer.text().await.unwrap();
        assert!(
            body.contains("role=\"alert\"") && body.contains("role does not allow"),
            "{body}"
        );
    }
    let events = server
        .app
        .store()
        .list_jobs(server.app.workspace().id, 10, None)
        .await
        .unwrap();
    assert!(events.is_empty(), "a refused request queued a job");
    server.stop().await;
}

#[tokio::test]
async fn a_form_without_this_sessions_csrf_token_is_refused() {
    let server = TestServer::start().await;
    server.admin("a@contoso.test", Role::Owner, true).await;
    server.admin("b@contoso.test", Role::Owner, true).await;
    seed_users(&server, 2).await;
    let a = browser(&server, "a@contoso.test").await;
    let b = browser(&server, "b@contoso.test").await;
    let id = user_ids(&get(&server, &a.cookie, "/users").await).remove(0);
    for csrf in ["", "bhc_forged", b.csrf.as_str()] {
        let answer = post(
            &server,
            &a.cookie,
            "/users/actions",
            &[("csrf", csrf), ("action", "export"), ("user", &id)],
        )
        .await;
        assert_eq!(answer.status(), 403, "csrf {csrf:?}");
        assert!(
            answer
                .text()
                .await
                .unwrap()
                .contains("This form has expired")
        );
    }
    // Sign-out is a form too.
    let answer = post(&server, &a.cookie, "/logout", &[]).await;
    assert_eq!(answer.status(), 403);
    let answer = post(&server, &a.cookie, "/logout", &[("csrf", &a.csrf)]).await;
    assert_eq!(answer.status(), 303);
    let after = client()
        .get(server.url("/users"))
        .header("cookie", &a.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 303, "the session ended");
    server.stop().await;
}

#[tokio::test]
async fn the_export_is_a_csv_that_provision_csv_reads() {
    let server = TestServer::start().await;
    server
        .admin("viewer@contoso.test", Role::Viewer, false)
        .await;
    seed_users(&server, 30).await;
    let b = browser(&server, "viewer@contoso.test").await;
    let ids = user_ids(&get(&server, &b.cookie, "/users").await);
    let answer = post(
        &server,
        &b.cookie,
        "/users/actions",
        &[
            ("csrf", &b.csrf),
            ("action", "export"),
            ("user", &ids[0]),
            ("user", &ids[1]),
        ],
    )
    .await;
    assert_eq!(answer.status(), 200);
    assert!(
        answer.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let csv = answer.bytes().await.unwrap();
    let parsed = behalf_provision::csv_input::parse(csv.as_ref()).unwrap();
    assert_eq!(parsed.rows.len(), 2, "{}", String::from_utf8_lossy(&csv));

    // Everyone who matches a search, not only the ticked rows.
    let answer = post(
        &server,
        &b.cookie,
        "/users/actions",
        &[
            ("csrf", &b.csrf),
            ("action", "export"),
            ("all_matching", "1"),
            ("q", "user-001"),
        ],
    )
    .await;
    let parsed =
        behalf_provision::csv_input::parse(answer.bytes().await.unwrap().as_ref()).unwrap();
    assert_eq!(parsed.rows.len(), 10);
    server.stop().await;
}

#[tokio::test]
async fn a_users_record_has_its_tabs_and_pages_carry_a_strict_policy() {
    let server = TestServer::start().await;
    server
        .admin("viewer@contoso.test", Role::Viewer, false)
        .await;
    seed_users(&server, 1).await;
    let b = browser(&server, "viewer@contoso.test").await;
    let id = user_ids(&get(&server, &b.cookie, "/users").await).remove(0);
    let details = get(&server, &b.cookie, &format!("/users/{id}")).await;
    assert!(details.contains("user-0000@contoso.test") && details.contains("created in Behalf"));
    let passkeys = get(&server, &b.cookie, &format!("/users/{id}?tab=passkeys")).await;
    assert!(passkeys.contains("id=\"tab-passkeys\" href") && passkeys.contains("No passkey yet"));

    let answer = client()
        .get(server.url("/users"))
        .header("cookie", &b.cookie)
        .send()
        .await
        .unwrap();
    let csp = answer.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(answer.headers()["x-frame-options"], "DENY");
    let page = answer.text().await.unwrap();
    assert!(
        !page.contains("<script>") && !page.contains(" onclick="),
        "inline script"
    );

    let missing = client()
        .get(server.url("/users/01a2319c-90fd-7321-a145-e38d4bbc4f08"))
        .header("cookie", &b.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    server.stop().await;
}

#[tokio::test]
async fn provisioning_without_a_tenant_says_what_is_missing() {
    let server = TestServer::start().await;
    server.admin("owner@contoso.test", Role::Owner, true).await;
    seed_users(&server, 1).await;
    let b = browser(&server, "owner@contoso.test").await;
    let id = user_ids(&get(&server, &b.cookie, "/users").await).remove(0);
    let answer = post(
        &server,
        &b.cookie,
        "/users/actions",
        &[("csrf", &b.csrf), ("action", "provision"), ("user", &id)],
    )
    .await;
    assert_eq!(answer.status(), 503);
    let body = answer.text().await.unwrap();
    assert!(body.contains("role=\"alert\""), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn a_security_key_is_assigned_from_the_list_and_revoked_from_the_users_record() {
    let server = TestServer::start().await;
    server.admin("owner@contoso.test", Role::Owner, true).await;
    seed_users(&server, 2).await;
    let b = browser(&server, "owner@contoso.test").await;
    let id = user_ids(&get(&server, &b.cookie, "/users").await).remove(0);
    let answer = post(
        &server,
        &b.cookie,
        "/users/actions",
        &[("csrf", &b.csrf), ("action", "assign-key"), ("user", &id)],
    )
    .await;
    assert_eq!(answer.status(), 200);
    assert!(answer.text().await.unwrap().contains("vault key"));
    // A second one is refused in words, and the page still answers.
    let again = post(
        &server,
        &b.cookie,
        "/users/actions",
        &[("csrf", &b.csrf), ("action", "assign-key"), ("user", &id)],
    )
    .await;
    assert!(again.text().await.unwrap().contains("revoke it first"));

    let keys = get(&server, &b.cookie, &format!("/users/{id}?tab=keys")).await;
    let action = keys
        .split("action=\"")
        .find_map(|rest| rest.split('"').next().filter(|a| a.contains("/revoke")))
        .expect("a revoke form")
        .to_owned();
    assert!(keys.contains("data-confirm"), "revoking asks first");
    let answer = post(&server, &b.cookie, &action, &[("csrf", &b.csrf)]).await;
    assert_eq!(answer.status(), 303);
    let keys = get(&server, &b.cookie, &format!("/users/{id}?tab=keys")).await;
    assert!(
        keys.contains("revoked") && !keys.contains("/revoke\""),
        "{keys}"
    );
    server.stop().await;
}
