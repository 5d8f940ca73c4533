//! A server on a fresh SQLite workspace, on a free port, with nothing configured for Entra ID.
#![allow(dead_code)]

pub mod panel;

use std::net::SocketAddr;

use behalf_app::{App, AppOptions, Caller};
use behalf_config::{Config, Sources};
use behalf_domain::{Role, Secret, TokenScope};
use figment::Figment;
use figment::providers::Serialized;

pub struct TestServer {
    pub app: App,
    pub addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

pub const PASSWORD: &str = "a long enough password";

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_, figment| figment).await
    }

    /// A server whose configuration `overrides` adds to (it is given the address the server
    /// will listen on, for URLs that name it).
    pub async fn start_with(overrides: impl FnOnce(SocketAddr, Figment) -> Figment) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let listener = behalf_server::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let figment = Figment::new().merge(Serialized::default("data_dir", dir.path()));
        let config = Config::load_with_env(
            Sources {
                file: None,
                overrides: Some(overrides(addr, figment)),
            },
            Vec::<(String, String)>::new(),
        )
        .unwrap();
        let app = App::open(config, AppOptions::default()).await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(behalf_server::serve(
            listener,
            behalf_server::ServerState::new(app.clone()),
            async {
                let _ = stopped.await;
            },
        ));
        TestServer {
            app,
            addr,
            stop,
            task,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// An admin with a password.
    pub async fn admin(&self, email: &str, role: Role, edit_users: bool) {
        let local = Caller::Local {
            actor: "test".into(),
        };
        self.app
            .owner(&local)
            .unwrap()
            .create_admin(email, role, edit_users, Some(&Secret::new(PASSWORD)))
            .await
            .unwrap();
    }

    /// An API token for `email`.
    pub async fn token(&self, email: &str, scope: TokenScope) -> String {
        let local = Caller::Local {
            actor: "test".into(),
        };
        self.app
            .owner(&local)
            .unwrap()
            .create_token(email, "test", scope, None)
            .await
            .unwrap()
            .token
            .expose()
            .to_owned()
    }

    /// Signs in with the password: (session cookie value, CSRF token).
    pub async fn sign_in(&self, email: &str) -> (String, String) {
        let answer = reqwest::Client::new()
            .post(self.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        let cookie = answer
            .headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            cookie.contains("HttpOnly")
                && cookie.contains("Secure")
                && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        let session = cookie
            .split(';')
            .next()
            .unwrap()
            .strip_prefix("behalf_session=")
            .unwrap()
            .to_owned();
        let body: serde_json::Value = answer.json().await.unwrap();
        (session, body["csrf_token"].as_str().unwrap().to_owned())
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}
