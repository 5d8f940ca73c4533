//! The panel's users page at 100,000 users, end to end over HTTP (session cookie, query,
//! template): `cargo bench -p behalf-server --bench panel_pages`, on SQLite and, with
//! `BENCH_DATABASE_URL=postgres://…` (a server the bench may create a scratch database on), on
//! PostgreSQL too. The full page (`GET /users`) and the search fragment htmx asks for as the
//! admin types (`GET /users?q=…` with `HX-Request: true`), and, in the same run on the same
//! store, the JSON API's page (`GET /api/v1/users`) for comparison. Prints the median and p99 of
//! each, measured from a client on loopback, one request at a time: the server's time plus a
//! loopback round trip.

#![allow(clippy::print_stdout, reason = "the figures are the bench's output")]

mod common;

use std::time::Instant;

use behalf_app::{App, Caller};
use behalf_domain::{Role, Secret, TokenScope};
use common::{ROUNDS, Served, USERS, seeded_app, summary};

const EMAIL: &str = "bench@example.com";
const PASSWORD: &str = "bench password long";

/// What a request is, and what its answer must hold for the figure to count.
struct Case {
    name: &'static str,
    path: &'static str,
    htmx: bool,
    /// Rows (`data-user-id`) the answer holds.
    rows: usize,
}

async fn measure(backend: &str, app: App) {
    let local = Caller::Local {
        actor: "bench".into(),
    };
    let owner = app.owner(&local).unwrap();
    owner
        .create_admin(EMAIL, Role::Viewer, false, Some(&Secret::new(PASSWORD)))
        .await
        .unwrap();
    let token = owner
        .create_token(EMAIL, "bench", TokenScope::Read, None)
        .await
        .unwrap()
        .token;
    // A panel session, as the sign-in form would open it.
    let session = app
        .sign_in(EMAIL, &Secret::new(PASSWORD), Some("127.0.0.1"), None)
        .await
        .unwrap()
        .session_token;
    let cookie = format!(
        "{}={}",
        behalf_server::auth::SESSION_COOKIE,
        session.expose()
    );
    let served = Served::start(&app).await;
    let addr = served.addr;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let page = |case: &Case| {
        let mut request = client
            .get(format!("http://{addr}{}", case.path))
            .header("cookie", &cookie);
        if case.htmx {
            request = request.header("hx-request", "true");
        }
        let (name, htmx, rows) = (case.name, case.htmx, case.rows);
        async move {
            let answer = request.send().await.unwrap();
            assert_eq!(answer.status(), 200, "{name}");
            let html = answer.text().await.unwrap();
            // The full page has the frame; the fragment is the results alone.
            assert_eq!(html.contains("<html"), !htmx, "{name}: {html:.300}");
            assert!(html.contains("id=\"users-results\""), "{name}");
            assert_eq!(html.matches("data-user-id=").count(), rows, "{name}");
        }
    };
    let cases = [
        Case {
            name: "page: GET /users (first page)",
            path: "/users",
            htmx: false,
            rows: 50,
        },
        Case {
            name: "page: GET /users?q=user0421 (full page)",
            path: "/users?q=user0421",
            htmx: false,
            rows: 50,
        },
        Case {
            name: "search: q=user0421 (100 hits), fragment",
            path: "/users?q=user0421",
            htmx: true,
            rows: 50,
        },
        Case {
            name: "search: q=person 7777 (11 hits), fragment",
            path: "/users?q=person%207777",
            htmx: true,
            rows: 11,
        },
        Case {
            name: "search: q=person31415@, fragment",
            path: "/users?q=person31415%40",
            htmx: true,
            rows: 1,
        },
        Case {
            name: "search: q=nobody (no match), fragment",
            path: "/users?q=nobody",
            htmx: true,
            rows: 0,
        },
    ];
    println!("{backend}, {USERS} users, {ROUNDS} requests each:");
    for case in &cases {
        page(case).await; // warm
        let mut times = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let started = Instant::now();
            page(case).await;
            times.push(started.elapsed());
        }
        summary(case.name, times);
    }

    // The JSON API on the same store in the same run, for comparison.
    for (name, query) in [
        ("API: GET /api/v1/users (first 50)", "limit=50"),
        ("API: q=user0421 (100 hits, 50)", "q=user0421&limit=50"),
    ] {
        let get = || {
            let request = client
                .get(format!("http://{addr}/api/v1/users?{query}"))
                .bearer_auth(token.expose());
            async move {
                let answer = request.send().await.unwrap();
                assert_eq!(answer.status(), 200, "{name}");
                let page = answer.json::<serde_json::Value>().await.unwrap();
                assert_eq!(page["users"].as_array().map(Vec::len), Some(50), "{name}");
            }
        };
        get().await;
        let mut times = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let started = Instant::now();
            get().await;
            times.push(started.elapsed());
        }
        summary(name, times);
    }
    served.stop().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = behalf_store::sqlite_url_for(dir.path());
    measure("SQLite", seeded_app(sqlite, dir.path()).await).await;
    if let Ok(admin_url) = std::env::var("BENCH_DATABASE_URL") {
        let scratch = behalf_store::testing::postgres_at(&admin_url).await;
        let url = scratch.url();
        let pg_dir = tempfile::tempdir().unwrap();
        measure("PostgreSQL", seeded_app(url, pg_dir.path()).await).await;
        drop(scratch);
    } else {
        println!("(BENCH_DATABASE_URL unset: PostgreSQL not measured)");
    }
}
