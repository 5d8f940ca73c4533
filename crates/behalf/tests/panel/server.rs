//! The real binary, `behalf serve --sandbox` on port 0, for the panel's browser tests: its
//! printed addresses and links are read from what it writes, its health polled.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use super::browser::PATIENCE;

/// What `serve` prints that a test reads: a line's prefix, then a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Printed {
    /// `behalf listening on URL` (stdout).
    Listening,
    /// `sandbox tenant T at URL` (stderr).
    Sandbox,
    /// `… Set up the owner at: URL` on the first run without an admin.
    SetupLink,
    /// `… Sign in: URL`, the sandbox owner's one-time sign-in link.
    SignInLink,
}

impl Printed {
    fn find(line: &str) -> Option<(Printed, String)> {
        let url_after = |marker: &str| {
            line.split_once(marker)
                .map(|(_, rest)| rest.split_whitespace().next().unwrap_or("").to_owned())
                .filter(|url| url.starts_with("http"))
        };
        if let Some(url) = line.strip_prefix("behalf listening on ") {
            return Some((Printed::Listening, url.trim().to_owned()));
        }
        if let Some(rest) = line.strip_prefix("sandbox tenant ")
            && let Some((_, url)) = rest.split_once(" at ")
        {
            return Some((Printed::Sandbox, url.trim().to_owned()));
        }
        if let Some(url) = url_after("Set up the owner at:") {
            return Some((Printed::SetupLink, url));
        }
        url_after("Sign in:").map(|url| (Printed::SignInLink, url))
    }
}

/// `behalf ARGS` run to completion on the data directory `data`; fails unless it succeeds, and
/// answers its stdout.
pub fn cli(data: &std::path::Path, args: &[&str]) -> String {
    let out = crate::common::behalf()
        .env("BEHALF_DATA_DIR", data)
        .current_dir(data)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("behalf runs");
    assert!(
        out.status.success(),
        "behalf {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A running `behalf serve --sandbox`, killed when dropped.
#[derive(Debug)]
pub struct Panel {
    child: Child,
    pub data: tempfile::TempDir,
    pub base: String,
    pub sandbox: String,
    printed: Arc<Mutex<Vec<(Printed, String)>>>,
    log: PathBuf,
    pub http: reqwest::Client,
}

impl Drop for Panel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Panel {
    /// Starts the server on a fresh data directory with a sandbox tenant of `users` users.
    pub async fn start(users: usize) -> Panel {
        Panel::start_in(tempfile::tempdir().unwrap(), users).await
    }

    /// Starts the server on `data` (set up beforehand with [`cli`], say).
    pub async fn start_in(data: tempfile::TempDir, users: usize) -> Panel {
        let log = data.path().join("serve.log");
        let mut child = crate::common::behalf()
            .env("BEHALF_DATA_DIR", data.path())
            .current_dir(data.path())
            .args([
                "serve",
                "--sandbox",
                "--sandbox-users",
                &users.to_string(),
                "--listen",
                "127.0.0.1:0",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("behalf serve starts");
        let printed = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<()>();
        let file = Arc::new(Mutex::new(std::fs::File::create(&log).unwrap()));
        let readers: [Box<dyn std::io::Read + Send>; 2] = [
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stderr.take().unwrap()),
        ];
        for stream in readers {
            let (printed, tx, file) = (printed.clone(), tx.clone(), file.clone());
            // Both streams are read to their end so the server never blocks on a full pipe.
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = writeln!(file.lock().unwrap(), "{line}");
                    if let Some(found) = Printed::find(&line) {
                        printed.lock().unwrap().push(found);
                        let _ = tx.send(());
                    }
                }
            });
        }
        let mut panel = Panel {
            child,
            data,
            base: String::new(),
            sandbox: String::new(),
            printed,
            log,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        while panel.find(Printed::Listening).is_none() || panel.find(Printed::Sandbox).is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if rx.recv_timeout(left).is_err() {
                panic!(
                    "behalf serve did not print its addresses; its output:\n{}",
                    panel.output()
                );
            }
        }
        panel.base = panel.find(Printed::Listening).unwrap();
        panel.sandbox = panel.find(Printed::Sandbox).unwrap();
        loop {
            if let Ok(r) = panel.http.get(panel.url("/healthz")).send().await
                && r.status().is_success()
            {
                return panel;
            }
            assert!(
                Instant::now() < deadline,
                "behalf serve did not become healthy; its output:\n{}",
                panel.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn find(&self, what: Printed) -> Option<String> {
        self.printed
            .lock()
            .unwrap()
            .iter()
            .find(|(kind, _)| *kind == what)
            .map(|(_, url)| url.clone())
    }

    /// The URL `serve` printed for `what`, waiting for it (it may come after the address).
    pub async fn printed(&self, what: Printed) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(url) = self.find(what) {
                return url;
            }
            assert!(
                Instant::now() < deadline,
                "behalf serve did not print its {what:?}; its output:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Everything the server wrote so far (stdout and stderr, as lines arrived).
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}
