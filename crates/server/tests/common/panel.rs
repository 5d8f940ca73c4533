//! A browser without script, for the panel's tests: a client that does not follow redirects,
//! and a signed-in session with the CSRF token its pages carry.

use reqwest::redirect::Policy;

use super::TestServer;

/// A client that shows redirects instead of following them.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// A signed-in browser: its cookie, and the CSRF token its pages carry.
pub struct Browser {
    pub cookie: String,
    pub csrf: String,
}

/// Signs `email` in (with the test password) and reads the CSRF token off the users page.
pub async fn browser(server: &TestServer, email: &str) -> Browser {
    let (session, _) = server.sign_in(email).await;
    let cookie = format!("behalf_session={session}");
    let page = get(server, &cookie, "/users").await;
    let csrf = between(&page, "name=\"csrf\" value=\"", "\"")
        .expect("the pages carry a CSRF token in their forms")
        .to_owned();
    Browser { cookie, csrf }
}

/// The text between the first `start` and the `end` after it.
pub fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    text.split(start).nth(1)?.split(end).next()
}

/// GETs `path` with `cookie` and wants a page back (200): its text.
pub async fn get(server: &TestServer, cookie: &str, path: &str) -> String {
    let answer = client()
        .get(server.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "GET {path}");
    answer.text().await.unwrap()
}
