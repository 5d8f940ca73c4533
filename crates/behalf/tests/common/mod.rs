//! Running the real `behalf` binary from end-to-end tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn behalf() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_behalf"));
    // The tests' own environment must not leak configuration into the binary under test.
    for (key, _) in std::env::vars() {
        if key.starts_with("BEHALF_") {
            command.env_remove(key);
        }
    }
    command.env("RUST_LOG", "warn").env("NO_COLOR", "1");
    command
}

/// A test's size from the environment variable `var` (a long run's size is set there), or
/// `default`.
pub fn env_size(var: &str, default: usize) -> usize {
    match std::env::var(var) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{var} must be a number, not {v:?}")),
        Err(_) => default,
    }
}

/// Runs to completion and returns the output.
pub fn run(command: &mut Command) -> Output {
    command
        .stdin(Stdio::null())
        .output()
        .expect("the behalf binary runs")
}

/// A `behalf serve` child process, killed when dropped.
pub struct Server {
    pub child: Child,
    pub base_url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `behalf … serve --listen 127.0.0.1:0` and waits until `/healthz` answers.
pub async fn start_server(command: Command) -> Server {
    start_server_with_log(command, Stdio::inherit()).await
}

/// As [`start_server`], with the server's log (its stderr) going to `log`: a file a test
/// scans for what must never be logged.
pub async fn start_server_with_log(mut command: Command, log: impl Into<Stdio>) -> Server {
    let mut child = command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("behalf serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let base_url = loop {
        let line = lines
            .next()
            .expect("behalf serve printed its address")
            .expect("utf-8");
        if let Some(url) = line.strip_prefix("behalf listening on ") {
            break url.trim().to_owned();
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let server = Server { child, base_url };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = reqwest::get(format!("{}/healthz", server.base_url)).await
            && response.status().is_success()
        {
            return server;
        }
        assert!(
            Instant::now() < deadline,
            "behalf serve did not become healthy"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
pub mod behalf_key;
pub mod smtp;
pub mod tenant;
