//! The panel's directory forms over real HTTP, as a browser without script would use them, on a
//! server with no Entra ID app (its writes wait in the queue, nothing sends them): the groups
//! page through thousands of groups, a change on its way said on the user's page and in the
//! queue, discarded there; a read-only connection's users with the reason and no forms; what a
//! viewer sees and is refused. Writes reaching a tenant are `crates/behalf/tests/
//! panel_directory_browser.rs`, in Chromium against the sandbox.

mod common;

use std::collections::BTreeSet;

use behalf_domain::{ConnectionKind, DirectoryConnection, GroupDraft, Role, Upn, UserDraft};
use behalf_store::ConnectionTarget;
use common::TestServer;
use common::panel::{Browser, between, browser, client, get};

async fn post(
    server: &TestServer,
    who: &Browser,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut fields = vec![("csrf", who.csrf.as_str())];
    fields.extend_from_slice(form);
    client()
        .post(server.url(path))
        .header("cookie", &who.cookie)
        .form(&fields)
        .send()
        .await
        .unwrap()
}

fn location(answer: &reqwest::Response) -> String {
    answer.headers()["location"].to_str().unwrap().to_owned()
}

async fn connection(server: &TestServer, name: &str, writable: bool) -> DirectoryConnection {
    let store = server.app.store();
    let c = store
        .ensure_connection(
            server.app.workspace().id,
            ConnectionKind::EntraId,
            name,
            &ConnectionTarget::default(),
        )
        .await
        .unwrap();
    store.set_connection_writable(c.id, writable).await.unwrap();
    c
}

/// The `data-…-id` values of the rows on `page`.
fn row_ids(page: &str, attribute: &str) -> Vec<String> {
    page.split(&format!("{attribute}=\""))
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_groups_page_searches_and_pages_through_thousands() {
    let server = TestServer::start().await;
    server
        .admin("viewer@contoso.test", Role::Viewer, false)
        .await;
    let drafts: Vec<GroupDraft> = (0..2_000)
        .map(|i| GroupDraft {
            connection_id: None,
            external_id: Some(format!("g-{i}")),
            display_name: format!("Team {i:04}"),
            description: None,
        })
        .collect();
    server
        .app
        .store()
        .upsert_groups(server.app.workspace().id, &drafts)
        .await
        .unwrap();
    let viewer = browser(&server, "viewer@contoso.test").await;

    let mut seen = BTreeSet::new();
    let mut path = "/groups".to_owned();
    let mut pages = 0;
    loop {
        let page = get(&server, &viewer.cookie, &path).await;
        pages += 1;
        let ids = row_ids(&page, "data-group-id");
        assert!(ids.len() <= 50, "a page holds 50 groups");
        seen.extend(ids);
        match between(&page, "id=\"next-page\" href=\"", "\"") {
            Some(next) => path = next.replace("&amp;", "&"),
            None => break,
        }
    }
    assert_eq!((pages, seen.len()), (40, 2_000), "every group once");
    let page = get(&server, &viewer.cookie, "/groups").await;
    assert!(
        !page.contains("id=\"new-group\""),
        "a viewer has no New group"
    );

    // Search as you type: htmx asks for the results alone.
    let answer = client()
        .get(server.url("/groups?q=eam+19"))
        .header("cookie", &viewer.cookie)
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let fragment = answer.text().await.unwrap();
    assert!(
        fragment.starts_with("<div id=\"groups-results\">"),
        "{fragment}"
    );
    assert!(!fragment.contains("<nav id=\"nav\""), "only the results");
    assert_eq!(row_ids(&fragment, "data-group-id").len(), 50);
    assert!(fragment.contains("Team 1900") && !fragment.contains("Team 0019"));
    let page = get(&server, &viewer.cookie, "/groups?q=nothing+like+it").await;
    assert!(page.contains("name contains this"), "{page}");
}

#[tokio::test]
async fn a_change_waits_in_the_queue_until_discarded_and_a_viewer_may_not_make_one() {
    let server = TestServer::start().await;
    server.admin("owner@contoso.test", Role::Owner, true).await;
    server
        .admin("viewer@contoso.test", Role::Viewer, false)
        .await;
    let owner = browser(&server, "owner@contoso.test").await;

    // No connection is writable: the form says so, and a create is refused in words.
    let page = get(&server, &owner.cookie, "/users/new").await;
    assert!(page.contains("id=\"not-writable\""), "{page}");
    let read_only = connection(&server, "entra", false).await;
    let answer = post(
        &server,
        &owner,
        "/users/new",
        &[
            ("upn", "ada@contoso.test"),
            ("display_name", "Ada"),
            ("enabled", "1"),
        ],
    )
    .await;
    assert_eq!(answer.status(), 422);
    assert!(
        answer
            .text()
            .await
            .unwrap()
            .contains("No connection is writable")
    );

    // A read-only connection's user: the reason in one line, no forms.
    server
        .app
        .store()
        .upsert_users(
            server.app.workspace().id,
            &[UserDraft {
                connection_id: Some(read_only.id),
                external_id: Some("imported-1".into()),
                upn: Upn::parse("imported@contoso.test").unwrap(),
                display_name: "Imported".into(),
                mail: None,
                department: None,
                enabled: true,
            }],
        )
        .await
        .unwrap();
    let imported = server
        .app
        .store()
        .find_user_by_upn(
            server.app.workspace().id,
            &Upn::parse("imported@contoso.test").unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    let page = get(&server, &owner.cookie, &format!("/users/{}", imported.id)).await;
    let why = between(&page, "id=\"not-writable\">", "<").unwrap();
    assert!(why.contains("entra, which is read-only"), "{why}");
    assert!(!page.contains("id=\"edit-user\""));
    let answer = post(
        &server,
        &owner,
        &format!("/users/{}/edit", imported.id),
        &[("display_name", "Renamed")],
    )
    .await;
    assert_eq!(answer.status(), 409, "a read-only user is not changed");

    // Writable: the user is created, and its page says the create is on its way (and reloads).
    connection(&server, "entra", true).await;
    let answer = post(
        &server,
        &owner,
        "/users/new",
        &[
            ("upn", "ada@contoso.test"),
            ("display_name", "Ada"),
            ("enabled", "1"),
        ],
    )
    .await;
    assert_eq!(answer.status(), 303);
    let user_page = location(&answer);
    let id = user_page.strip_prefix("/users/").unwrap().to_owned();
    let page = get(&server, &owner.cookie, &user_page).await;
    assert_eq!(
        between(&page, "id=\"sync-state\" class=\"sync-pending\">", "<"),
        Some("pending")
    );
    assert!(page.contains(&format!(
        "hx-get=\"/panel/sync?user={id}\" hx-trigger=\"every 1s\""
    )));
    assert!(page.contains("id=\"edit-user\""));
    let answer = post(
        &server,
        &owner,
        "/users/new",
        &[("upn", "ADA@contoso.test"), ("display_name", "Ada again")],
    )
    .await;
    assert_eq!(answer.status(), 422, "the UPN is taken in Behalf");
    assert!(
        answer
            .text()
            .await
            .unwrap()
            .contains("exists already in Behalf")
    );

    // The queue lists it; Discard gives it up and the queue is empty.
    let queue = get(&server, &owner.cookie, "/directory/writes").await;
    let writes = row_ids(&queue, "data-write-id");
    assert_eq!(writes.len(), 1, "{queue}");
    assert!(queue.contains("ada@contoso.test") && queue.contains("Create user"));
    let viewer = browser(&server, "viewer@contoso.test").await;
    for (path, form) in [
        (format!("/directory/writes/{}/discard", writes[0]), vec![]),
        (
            format!("/users/{id}/edit"),
            vec![("display_name", "Renamed")],
        ),
        (format!("/users/{id}/delete"), vec![("confirmed", "1")]),
        ("/groups/new".to_owned(), vec![("display_name", "Viewers")]),
        (
            "/directory/writable".to_owned(),
            vec![("connection", "entra"), ("writable", "0")],
        ),
    ] {
        let answer = post(&server, &viewer, &path, &form).await;
        assert_eq!(answer.status(), 403, "a viewer posting {path}");
    }
    let answer = client()
        .get(server.url("/users/new"))
        .header("cookie", &viewer.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 403);
    let page = get(&server, &viewer.cookie, &user_page).await;
    assert!(page.contains("id=\"sync-state\"") && !page.contains("id=\"edit-user\""));
    assert!(!page.contains("/discard\""), "a viewer has no Discard");

    let answer = post(
        &server,
        &owner,
        &format!("/directory/writes/{}/discard", writes[0]),
        &[("back", "//elsewhere.example/")],
    )
    .await;
    assert_eq!(answer.status(), 303);
    assert_eq!(
        location(&answer),
        "/directory/writes",
        "only this panel's paths"
    );
    let queue = get(&server, &owner.cookie, "/directory/writes").await;
    assert!(row_ids(&queue, "data-write-id").is_empty(), "{queue}");
    let page = get(&server, &owner.cookie, &user_page).await;
    assert!(page.contains("discarded (not sent)"));
    assert_eq!(
        between(&page, "id=\"sync-state\" class=\"sync-discarded\">", "<"),
        Some("the last change was discarded: not sent to Entra ID")
    );
    assert!(
        !page.contains("hx-trigger=\"every 1s\""),
        "nothing to wait for"
    );

    // A group's sync state through the API, as the panel's: created, then pending.
    let answer = post(
        &server,
        &owner,
        "/groups/new",
        &[("display_name", "Engines")],
    )
    .await;
    assert_eq!(answer.status(), 303);
    let group = location(&answer)
        .strip_prefix("/groups/")
        .unwrap()
        .to_owned();
    let sync: serde_json::Value = client()
        .get(server.url(&format!("/api/v1/directory/groups/{group}/sync")))
        .header("cookie", &viewer.cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sync["state"], "pending");
    assert_eq!(sync["writes"][0]["kind"], "create_group");
    let missing = client()
        .get(server.url(&format!(
            "/api/v1/directory/groups/{}/sync",
            behalf_domain::GroupId::new()
        )))
        .header("cookie", &viewer.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}
