//! What the HTTP benches share: a store seeded with 100,000 users, the router served on
//! loopback, and the median / p99 summary they print.
#![allow(dead_code, reason = "each bench uses part of it")]
#![allow(clippy::print_stdout, reason = "the figures are the bench's output")]

use std::net::SocketAddr;
use std::time::Duration;

use behalf_app::{App, AppOptions};
use behalf_config::{Config, Sources};
use behalf_domain::{Upn, UserDraft};
use figment::Figment;
use figment::providers::Serialized;

pub const USERS: usize = 100_000;
pub const ROUNDS: usize = 200;

/// An app on `database_url` whose store holds [`USERS`] users `user000000@contoso.com`…,
/// named `Person N`, mail `personN@mail.contoso.com`, one in twenty disabled.
pub async fn seeded_app(database_url: String, dir: &std::path::Path) -> App {
    let config = Config::load_with_env(
        Sources {
            file: None,
            overrides: Some(
                Figment::new()
                    .merge(Serialized::default("data_dir", dir))
                    .merge(Serialized::default("database_url", database_url)),
            ),
        },
        Vec::<(String, String)>::new(),
    )
    .unwrap();
    let app = App::open(config, AppOptions::default()).await.unwrap();
    let drafts: Vec<UserDraft> = (0..USERS)
        .map(|i| UserDraft {
            connection_id: None,
            external_id: Some(format!("obj-{i:06}")),
            upn: Upn::parse(&format!("user{i:06}@contoso.com")).unwrap(),
            display_name: format!("Person {i}"),
            mail: Some(format!("person{i}@mail.contoso.com")),
            department: None,
            enabled: i % 20 != 7,
        })
        .collect();
    for chunk in drafts.chunks(10_000) {
        app.store()
            .upsert_users(app.workspace().id, chunk)
            .await
            .unwrap();
    }
    app
}

/// `behalf serve`'s router for `app` on a loopback port, until the answer's stop is sent.
pub struct Served {
    pub addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Served {
    pub async fn start(app: &App) -> Served {
        let listener = behalf_server::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(behalf_server::serve(
            listener,
            behalf_server::ServerState::new(app.clone()),
            async {
                let _ = stopped.await;
            },
        ));
        Served { addr, stop, server }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.server.await.unwrap().unwrap();
    }
}

/// Prints the median and p99 of `times`.
pub fn summary(name: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<44} median {:>6.2} ms   p99 {:>6.2} ms",
        ms(times[times.len() / 2]),
        ms(times[times.len() * 99 / 100])
    );
}
