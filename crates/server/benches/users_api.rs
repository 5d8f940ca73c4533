//! The users page of the API at 100,000 users, end to end over HTTP (token check, query, JSON):
//! `cargo bench -p behalf-server --bench users_api`, on SQLite and, with
//! `BENCH_DATABASE_URL=postgres://…` (a server the bench may create a scratch database on),
//! on PostgreSQL too. Prints the median and p99 of each request, measured from a client on
//! loopback, one request at a time.

#![allow(clippy::print_stdout, reason = "the figures are the bench's output")]

mod common;

use std::time::Instant;

use behalf_app::{App, Caller};
use behalf_domain::{Role, Secret, TokenScope};
use common::{ROUNDS, Served, USERS, seeded_app, summary};

async fn measure(backend: &str, app: App) {
    let local = Caller::Local {
        actor: "bench".into(),
    };
    let owner = app.owner(&local).unwrap();
    owner
        .create_admin(
            "bench@example.com",
            Role::Viewer,
            false,
            Some(&Secret::new("bench password long")),
        )
        .await
        .unwrap();
    let token = owner
        .create_token("bench@example.com", "bench", TokenScope::Read, None)
        .await
        .unwrap()
        .token;
    let served = Served::start(&app).await;
    let addr = served.addr;
    let client = reqwest::Client::new();
    let get = |query: String| {
        let request = client
            .get(format!("http://{addr}/api/v1/users?{query}"))
            .bearer_auth(token.expose());
        async move {
            let answer = request.send().await.unwrap();
            assert_eq!(answer.status(), 200);
            answer.json::<serde_json::Value>().await.unwrap()
        }
    };
    // A cursor deep in the list: the page after user 090049.
    let deep = get("q=user0900&limit=50".into()).await["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let cases = [
        ("first page (50)", "limit=50".to_owned()),
        (
            "page at user 90,050 (50)",
            format!("limit=50&cursor={deep}"),
        ),
        (
            "UPN prefix user0421 (100 hits)",
            "q=user0421&limit=50".to_owned(),
        ),
        (
            "name prefix 'person 7777' (11)",
            "q=person%207777&limit=50".to_owned(),
        ),
        (
            "mail prefix person31415@",
            "q=person31415%40&limit=50".to_owned(),
        ),
        ("disabled users (5 %)", "enabled=false&limit=50".to_owned()),
    ];
    println!("{backend}, {USERS} users, {ROUNDS} requests each:");
    for (name, query) in cases {
        get(query.clone()).await; // warm
        let mut times = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let started = Instant::now();
            let page = get(query.clone()).await;
            times.push(started.elapsed());
            assert!(page["users"].is_array());
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
