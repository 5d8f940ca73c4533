//! The REST API and the CLI as its client, end to end: the real binary serves `/api/v1` on a
//! sandbox tenant, and is driven over real HTTP (and by `behalf --server URL …`); the sandbox
//! counts what reached "Microsoft". Admins and tokens are made with the local `behalf admin` and
//! `behalf token` commands, as an installation would be set up.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::tenant::methods_per_user;
use serde_json::{Value, json};

const OWNER: &str = "owner@example.com";
const PASSWORD: &str = "correct horse battery staple";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A data directory set up as an installation: an owner with a password, and a `provision`
/// token of theirs. Everything runs in the sandbox workspace, the one `serve --sandbox` uses.
struct Installation {
    data: tempfile::TempDir,
    /// Where `behalf --server` keeps its sign-in, so the tests never touch the real one.
    sessions: tempfile::TempDir,
    token: String,
}

impl Installation {
    /// A data directory with nobody in it yet.
    fn empty() -> Installation {
        Installation {
            data: tempfile::tempdir().unwrap(),
            sessions: tempfile::tempdir().unwrap(),
            token: String::new(),
        }
    }

    fn new() -> Installation {
        let mut install = Installation::empty();
        let password_file = install.data.path().join("password.txt");
        std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
        let created = install.run(&[
            "admin",
            "create",
            "--sandbox",
            "--email",
            OWNER,
            "--role",
            "owner",
            "--password-file",
            password_file.to_str().unwrap(),
        ]);
        assert!(created.status.success(), "{}", text(&created.stderr));
        let stdout = text(&created.stdout);
        assert!(stdout.contains(OWNER), "{stdout}");
        assert!(!stdout.contains(PASSWORD) && !text(&created.stderr).contains(PASSWORD));
        assert!(!stdout.contains("setup?token="), "a password needs no link");
        install.token = install.create_token("e2e", "provision");
        install
    }

    /// `behalf` on this data directory, run from it (failures.csv lands there).
    fn behalf(&self, args: &[&str]) -> Command {
        let mut command = common::behalf();
        command
            .env("BEHALF_DATA_DIR", self.data.path())
            .env("BEHALF_SESSION_DIR", self.sessions.path())
            .current_dir(self.data.path())
            .args(args)
            .stdin(Stdio::null());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.behalf(args).output().expect("behalf runs")
    }

    /// A new token of the owner's, as `behalf token create` prints it: alone on stdout.
    fn create_token(&self, name: &str, scope: &str) -> String {
        let out = self.run(&[
            "token",
            "create",
            "--sandbox",
            "--admin",
            OWNER,
            "--name",
            name,
            "--scope",
            scope,
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 1, "the token alone on stdout: {stdout}");
        assert!(lines[0].starts_with("bht_"), "{stdout}");
        lines[0].to_owned()
    }

    fn db_files(&self) -> Vec<PathBuf> {
        ["behalf.db", "behalf.db-wal", "behalf.db-journal"]
            .iter()
            .map(|name| self.data.path().join(name))
            .filter(|p| p.exists())
            .collect()
    }
}

/// A running `behalf serve --sandbox`, killed when dropped.
struct Served {
    child: std::process::Child,
    base: String,
    /// The in-process sandbox tenant's base URL (`/sandbox/state`, Graph).
    sandbox: String,
    http: reqwest::Client,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    /// Starts the server with `users` sandbox users, its stderr (the log) into `log`.
    async fn start(install: &Installation, users: usize, rust_log: &str, log: PathBuf) -> Served {
        let users = users.to_string();
        let mut child = install
            .behalf(&[
                "serve",
                "--sandbox",
                "--sandbox-users",
                &users,
                "--listen",
                "127.0.0.1:0",
            ])
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("behalf serve starts");
        let (tx, rx) = mpsc::channel::<(&str, String)>();
        let stdout = child.stdout.take().unwrap();
        let out_tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("behalf listening on ") {
                    let _ = out_tx.send(("server", url.trim().to_owned()));
                }
            }
        });
        let stderr = child.stderr.take().unwrap();
        let mut file = std::fs::File::create(&log).unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(file, "{line}");
                // "sandbox tenant T at URL"
                if let Some(rest) = line.strip_prefix("sandbox tenant ")
                    && let Some((_, url)) = rest.split_once(" at ")
                {
                    let _ = tx.send(("sandbox", url.trim().to_owned()));
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let (mut base, mut sandbox) = (None, None);
        while base.is_none() || sandbox.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(("server", url)) => base = Some(url),
                Ok((_, url)) => sandbox = Some(url),
                Err(_) => panic!(
                    "behalf serve did not print its addresses; its log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ),
            }
        }
        let served = Served {
            child,
            base: base.unwrap(),
            sandbox: sandbox.unwrap(),
            http: reqwest::Client::new(),
        };
        loop {
            if let Ok(r) = served.http.get(served.url("/healthz")).send().await
                && r.status().is_success()
            {
                return served;
            }
            assert!(
                Instant::now() < deadline,
                "behalf serve did not become healthy"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with the bearer token.
    fn api(&self, method: reqwest::Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(token)
    }

    async fn sandbox_state(&self) -> Value {
        self.http
            .get(format!("{}/sandbox/state", self.sandbox))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The tenant's users at the sandbox (lowercased UPN → enabled), read through Graph.
    async fn tenant_users(&self) -> BTreeMap<String, bool> {
        let token: Value = self
            .http
            .post(format!("{}/sandbox/token", self.sandbox))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = token["access_token"].as_str().unwrap().to_owned();
        let mut next = Some(format!(
            "{}/v1.0/users?$select=userPrincipalName,accountEnabled&$top=999",
            self.sandbox
        ));
        let mut users = BTreeMap::new();
        while let Some(url) = next {
            let page: Value = self
                .http
                .get(&url)
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for u in page["value"].as_array().unwrap() {
                users.insert(
                    u["userPrincipalName"].as_str().unwrap().to_lowercase(),
                    u["accountEnabled"].as_bool().unwrap(),
                );
            }
            next = page["@odata.nextLink"].as_str().map(str::to_owned);
        }
        users
    }

    /// Methods per user at the sandbox, by lowercased UPN.
    async fn methods(&self) -> BTreeMap<String, u64> {
        methods_per_user(&self.sandbox_state().await)
            .into_iter()
            .map(|(upn, n)| (upn.to_lowercase(), n))
            .collect()
    }

    /// SIGTERM, and the exit once it has drained.
    fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "behalf serve did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Reads a JSON answer, failing the test with the body when the status is not `expected`.
async fn expect(response: reqwest::Response, expected: u16) -> Value {
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status.as_u16(), expected, "{body}");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

/// Follows `GET /api/v1/jobs/{id}/events` to its `done` event and returns the final Job.
/// (A minimal SSE reader: the binary's own parser is unit-tested in `remote::sse`.)
async fn follow_job(served: &Served, token: &str, job: &str) -> Value {
    let mut response = served
        .api(
            reqwest::Method::GET,
            &format!("/api/v1/jobs/{job}/events"),
            token,
        )
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let mut buffer = String::new();
    let mut progress = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let chunk = tokio::time::timeout_at(deadline.into(), response.chunk())
            .await
            .expect("the job finished within a minute")
            .unwrap()
            .expect("the stream ends with a done event");
        buffer.push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut event = "message";
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = if v.trim() == "done" {
                        "done"
                    } else {
                        "progress"
                    };
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            if data.is_empty() {
                continue;
            }
            let job: Value = serde_json::from_str(&data).unwrap();
            if event == "done" {
                assert_ne!(job["state"], "open", "{job}");
                assert!(progress > 0, "progress came before done");
                return job;
            }
            progress += 1;
        }
    }
}

fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("behalf_session="))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_posted_through_the_api_registers_exactly_its_users() {
    let install = Installation::new();
    let served = Served::start(&install, 600, "warn", install.data.path().join("serve.log")).await;
    let token = &install.token;

    // The enabled users, page by page.
    let mut enabled = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/api/v1/users?limit=200".to_owned();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = expect(
            served
                .api(reqwest::Method::GET, &path, token)
                .send()
                .await
                .unwrap(),
            200,
        )
        .await;
        let users = page["users"].as_array().expect("a users array");
        assert!(users.len() <= 200, "limit honoured");
        for u in users {
            if u["enabled"] != false {
                enabled.push((
                    u["id"].as_str().unwrap().to_owned(),
                    u["upn"].as_str().unwrap().to_lowercase(),
                ));
            }
        }
        match page["next_cursor"].as_str() {
            Some(next) if !users.is_empty() => cursor = Some(next.to_owned()),
            _ => break,
        }
    }
    let tenant = served.tenant_users().await;
    assert_eq!(
        enabled
            .iter()
            .map(|(_, upn)| upn.clone())
            .collect::<BTreeSet<_>>(),
        tenant
            .iter()
            .filter(|(_, e)| **e)
            .map(|(u, _)| u.clone())
            .collect(),
        "the API lists the tenant's enabled users"
    );
    assert!(enabled.len() >= 500, "{} enabled", enabled.len());
    let chosen = &enabled[..500];
    let ids: Vec<&str> = chosen.iter().map(|(id, _)| id.as_str()).collect();

    // The same Idempotency-Key twice is one job.
    let key = format!("e2e-{}", std::process::id());
    let post = || {
        served
            .api(reqwest::Method::POST, "/api/v1/jobs", token)
            .header("Idempotency-Key", &key)
            .json(&json!({"user_ids": ids}))
            .send()
    };
    let first = post().await.unwrap();
    let status = first.status().as_u16();
    let first: Value = serde_json::from_str(&first.text().await.unwrap()).unwrap();
    assert_eq!(status, 201, "{first}");
    let job_id = first["job"]["id"].as_str().expect("a job id").to_owned();
    assert_eq!(first["job"]["counts"]["total"], 500, "{first}");
    let again = post().await.unwrap();
    assert!(again.status().is_success(), "{}", again.status());
    let again: Value = again.json().await.unwrap();
    assert_eq!(
        again["job"]["id"], first["job"]["id"],
        "the same job: {again}"
    );

    let done = follow_job(&served, token, &job_id).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["counts"]["registered"], 500, "{done}");
    assert_eq!(done["counts"]["failed"], 0, "{done}");

    let methods = served.methods().await;
    let wanted: BTreeSet<String> = chosen.iter().map(|(_, upn)| upn.clone()).collect();
    assert_eq!(
        methods.keys().cloned().collect::<BTreeSet<_>>(),
        wanted,
        "those 500 have a method and nobody else"
    );
    assert!(methods.values().all(|&n| n == 1), "exactly one each");
    assert!(served.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_provisions_everyone_through_a_server() {
    let install = Installation::new();
    let served = Served::start(&install, 600, "warn", install.data.path().join("serve.log")).await;
    let out = install.run(&[
        "--server",
        &served.base,
        "--token",
        &install.token,
        "provision",
        "--automatic",
    ]);
    let stderr = text(&out.stderr);
    let tenant = served.tenant_users().await;
    let enabled: BTreeSet<String> = tenant
        .iter()
        .filter(|(_, e)| **e)
        .map(|(u, _)| u.clone())
        .collect();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            ": {} registered, 0 failed, 0 skipped, 0 rows rejected",
            enabled.len()
        )),
        "the summary says everyone was registered: {stderr}"
    );
    assert!(out.stdout.is_empty(), "without --json stdout stays empty");

    let methods = served.methods().await;
    assert_eq!(methods.keys().cloned().collect::<BTreeSet<_>>(), enabled);
    assert!(methods.values().all(|&n| n == 1), "exactly one each");
    let failures = std::fs::read_to_string(install.data.path().join("failures.csv")).unwrap();
    assert_eq!(
        failures.trim_end(),
        "line,upn,outcome,reason,error_code,request_id"
    );

    // The same run again: nobody is left, nothing more is registered.
    let again = install.run(&[
        "--server",
        &served.base,
        "--token",
        &install.token,
        "provision",
        "--automatic",
        "--json",
    ]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    let summary: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(summary["failed"], 0, "{summary}");
    assert_eq!(served.sandbox_state().await["fido2Methods"], enabled.len());

    // The report through the server shows the registrations.
    let some_user = enabled.iter().next().unwrap();
    let report = install.run(&[
        "--server",
        &served.base,
        "--token",
        &install.token,
        "report",
        "--user",
        some_user,
        "--format",
        "json",
    ]);
    assert!(report.status.success(), "{}", text(&report.stderr));
    let rows: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .any(|r| r["action"] == "passkey.registered"),
        "{rows}"
    );
    assert!(served.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_is_stored_or_logged_in_clear() {
    let install = Installation::new();
    let log = install.data.path().join("serve-trace.log");
    let served = Served::start(&install, 20, "trace", log.clone()).await;
    let mut bodies: Vec<String> = Vec::new();

    // A wrong password first: its error body is scanned too.
    let refused = served
        .http
        .post(served.url("/api/v1/auth/login"))
        .json(&json!({"email": OWNER, "password": "not the password at all"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    bodies.push(refused.text().await.unwrap());

    let signed_in = served
        .http
        .post(served.url("/api/v1/auth/login"))
        .json(&json!({"email": OWNER, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert!(signed_in.status().is_success(), "{}", signed_in.status());
    let cookie = session_cookie(&signed_in).expect("a behalf_session cookie");
    let answer: Value = signed_in.json().await.unwrap();
    let csrf = answer["csrf_token"]
        .as_str()
        .expect("a CSRF token")
        .to_owned();
    assert!(
        !answer.to_string().contains(&cookie),
        "the session token is only in the cookie"
    );

    // The session works for reads.
    let users = expect(
        served
            .http
            .get(served.url("/api/v1/users?limit=5"))
            .header("cookie", format!("behalf_session={cookie}"))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let upn = users["users"][0]["upn"].as_str().unwrap().to_owned();

    // A real pass from the sandbox.
    let tap = expect(
        served
            .api(reqwest::Method::POST, "/api/v1/tap", &install.token)
            .json(&json!({"user": upn, "lifetime_minutes": 60, "usable_once": true}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let pass = tap["temporary_access_pass"]
        .as_str()
        .expect("a pass")
        .to_owned();
    assert!(pass.len() >= 8, "{tap}");

    // A second token while the server runs.
    let second = install.create_token("while-serving", "read");

    // An error names what is missing and nothing of the database.
    let missing = served
        .api(
            reqwest::Method::GET,
            "/api/v1/users/0190a0b0-0000-7000-8000-00000000beef",
            &install.token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    let content_type = missing.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/problem+json"),
        "{content_type}"
    );
    let missing = missing.text().await.unwrap();
    for sql in [
        "SELECT", "select ", " FROM ", "WHERE", "sqlx", "sqlite", "SQLITE", "postgres",
    ] {
        assert!(
            !missing.contains(sql),
            "SQL text {sql:?} in an error: {missing}"
        );
    }
    bodies.push(missing);
    let bad = served
        .api(reqwest::Method::POST, "/api/v1/jobs", &install.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert!(bad.status().is_client_error(), "{}", bad.status());
    bodies.push(bad.text().await.unwrap());

    assert!(served.stop().success());

    let secrets = [
        ("the password", PASSWORD.to_owned()),
        ("the API token", install.token.clone()),
        ("the second API token", second),
        ("the session cookie", cookie),
        ("the CSRF token", csrf),
        ("the Temporary Access Pass", pass),
    ];
    let mut places: Vec<(String, Vec<u8>)> = install
        .db_files()
        .into_iter()
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    assert!(!places.is_empty(), "the database was found");
    places.push(("the server's log".into(), std::fs::read(&log).unwrap()));
    for (i, body) in bodies.iter().enumerate() {
        places.push((format!("error body {i}"), body.clone().into_bytes()));
    }
    let log_len = places
        .iter()
        .find(|(n, _)| n == "the server's log")
        .unwrap()
        .1
        .len();
    assert!(
        log_len > 10_000,
        "the trace log has content ({log_len} bytes)"
    );
    for (what, secret) in &secrets {
        for (place, bytes) in &places {
            assert!(
                !contains(bytes, secret.as_bytes()),
                "{what} is in clear in {place}"
            );
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_signs_in_to_a_server_with_a_device_code_and_works_there() {
    let install = Installation::new();
    let served = Served::start(&install, 20, "warn", install.data.path().join("serve.log")).await;
    let mut login = install
        .behalf(&["--server", &served.base, "login"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = login.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("login prints the code");
    let code = first
        .split("approve code ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("a code in {first:?}"))
        .to_owned();
    assert!(first.contains("/api/v1/auth/device/approve"), "{first}");
    let approved = served
        .api(
            reqwest::Method::POST,
            "/api/v1/auth/device/approve",
            &install.token,
        )
        .json(&json!({"user_code": code}))
        .send()
        .await
        .unwrap();
    let approval = approved.status();
    assert!(
        approval.is_success(),
        "{approval}: {}",
        approved.text().await.unwrap()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = login.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "login did not finish after the approval"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut login.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{err}");
    let saved = install.sessions.path().join("server-session.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    // Without --token, the saved sign-in is used.
    let report = install.run(&["--server", &served.base, "report", "--format", "csv"]);
    assert!(report.status.success(), "{}", text(&report.stderr));
    assert!(text(&report.stdout).starts_with("time,actor,action"));
    let status = install.run(&["--server", &served.base, "login", "--status"]);
    assert!(status.status.success(), "{}", text(&status.stdout));
    let remote = |args: &[&str]| {
        let mut full = vec!["--server", served.base.as_str()];
        full.extend_from_slice(args);
        install.run(&full)
    };
    let tenant = served.tenant_users().await;
    let enabled: Vec<&String> = tenant.iter().filter(|(_, e)| **e).map(|(u, _)| u).collect();

    // A CSV with a good row, a malformed one and an unknown user: exit 3, and failures.csv names
    // the bad rows by line, as a local run does.
    let csv = install.data.path().join("batch.csv");
    std::fs::write(
        &csv,
        format!(
            "UPN\n{}\nnot-an-upn\nghost@nowhere.example\n{}\n",
            enabled[0], enabled[1]
        ),
    )
    .unwrap();
    let batch = remote(&[
        "provision",
        "--csv",
        csv.to_str().unwrap(),
        "--failures",
        "batch-failures.csv",
    ]);
    let err = text(&batch.stderr);
    assert_eq!(batch.status.code(), Some(3), "{err}");
    assert!(
        err.contains(": 2 registered, 0 failed, 0 skipped, 2 rows rejected"),
        "{err}"
    );
    assert!(err.contains("details in batch-failures.csv"), "{err}");
    let failures = std::fs::read_to_string(install.data.path().join("batch-failures.csv")).unwrap();
    let lines: Vec<&str> = failures.lines().collect();
    assert_eq!(lines.len(), 3, "{failures}");
    assert!(lines[1].starts_with("3,not-an-upn,invalid,"), "{failures}");
    assert!(
        lines[2].starts_with("4,ghost@nowhere.example,failed,"),
        "{failures}"
    );
    let methods = served.methods().await;
    assert_eq!(methods.len(), 2, "{methods:?}");

    // A pass, shown once on stdout.
    let tap = remote(&["tap", "--user", enabled[2], "--json", "--once"]);
    assert!(tap.status.success(), "{}", text(&tap.stderr));
    let tap: Value = serde_json::from_slice(&tap.stdout).unwrap();
    assert!(
        tap["temporaryAccessPass"]
            .as_str()
            .is_some_and(|p| !p.is_empty()),
        "{tap}"
    );
    assert_eq!(tap["isUsableOnce"], true);

    // Deprovisioning revokes the passkey the CSV run registered.
    let gone = remote(&["deprovision", "--user", enabled[0], "--json"]);
    assert!(gone.status.success(), "{}", text(&gone.stderr));
    let gone: Value = serde_json::from_slice(&gone.stdout).unwrap();
    assert_eq!(gone["users"][0]["revoked"], 1, "{gone}");
    assert!(!served.methods().await.contains_key(enabled[0].as_str()));

    // The CLI's token reaches as far as the approving token (provision): no import, in words.
    let refused = remote(&["import", "--connection", "sandbox"]);
    assert_eq!(refused.status.code(), Some(1));
    let err = text(&refused.stderr);
    assert!(err.starts_with("error: not allowed: "), "{err}");
    let admin = install.create_token("ops", "admin");
    let import = remote(&[
        "--token",
        &admin,
        "import",
        "--connection",
        "sandbox",
        "--json",
    ]);
    assert!(import.status.success(), "{}", text(&import.stderr));
    let summary: Value = serde_json::from_slice(&import.stdout).unwrap();
    assert_eq!(summary["users_total"], tenant.len(), "{summary}");

    let logout = install.run(&["--server", &served.base, "logout"]);
    assert!(logout.status.success());
    assert!(!saved.exists());
    let report = install.run(&["--server", &served.base, "report"]);
    assert_eq!(report.status.code(), Some(1));
    assert!(
        text(&report.stderr).contains(&format!("not signed in to {}", served.base)),
        "{}",
        text(&report.stderr)
    );
    assert!(served.stop().success());
}

#[test]
fn admins_and_tokens_are_managed_locally() {
    let install = Installation::new();

    // Without a password: a one-time setup link on the server's address.
    let invited = install.run(&[
        "admin",
        "create",
        "--sandbox",
        "--email",
        "Viewer@Example.com",
        "--role",
        "viewer",
    ]);
    assert!(invited.status.success(), "{}", text(&invited.stderr));
    let stdout = text(&invited.stdout);
    assert!(stdout.contains("viewer@example.com"), "{stdout}");
    assert!(
        stdout.contains("http://127.0.0.1:8080/setup?token=bhu_"),
        "{stdout}"
    );

    let twice = install.run(&[
        "admin",
        "create",
        "--sandbox",
        "--email",
        "viewer@example.com",
        "--role",
        "viewer",
    ]);
    assert_eq!(twice.status.code(), Some(1));
    let err = text(&twice.stderr);
    assert!(
        err.starts_with("error: ") && err.trim_end().lines().count() == 1,
        "{err}"
    );
    assert!(err.contains("already exists"), "{err}");

    let short = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(short.path(), "short\n").unwrap();
    let refused = install.run(&[
        "admin",
        "create",
        "--sandbox",
        "--email",
        "a@example.com",
        "--role",
        "admin",
        "--password-file",
        short.path().to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("password"),
        "{}",
        text(&refused.stderr)
    );

    // A JSON token, then the list (which never shows a token), then revocation.
    let created = install.run(&[
        "token",
        "create",
        "--sandbox",
        "--admin",
        OWNER,
        "--name",
        "ci",
        "--scope",
        "admin",
        "--expires",
        "12h",
        "--json",
    ]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    let created: Value = serde_json::from_slice(&created.stdout).unwrap();
    let secret = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["scope"], "admin");
    assert!(created["expires_at"].is_string(), "{created}");

    let listed = install.run(&["token", "list", "--sandbox", "--json"]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let listed_text = text(&listed.stdout);
    assert!(!listed_text.contains(&secret) && !listed_text.contains(&install.token));
    let listed: Value = serde_json::from_str(&listed_text).unwrap();
    let names: BTreeSet<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, BTreeSet::from(["ci", "e2e"]));

    let revoked = install.run(&["token", "revoke", "--sandbox", &id]);
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    let listed: Value = serde_json::from_slice(
        &install
            .run(&["token", "list", "--sandbox", "--json"])
            .stdout,
    )
    .unwrap();
    let ci = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ci")
        .unwrap();
    assert!(!ci["revoked_at"].is_null(), "{ci}");
    let unknown = install.run(&[
        "token",
        "revoke",
        "--sandbox",
        "0190a0b0-0000-7000-8000-00000000beef",
    ]);
    assert_eq!(unknown.status.code(), Some(1));
    let table = install.run(&["token", "list", "--sandbox"]);
    assert!(
        text(&table.stdout).contains("2 tokens"),
        "{}",
        text(&table.stdout)
    );
}

#[test]
fn the_cli_says_what_cannot_run_on_a_server() {
    let install = Installation::empty();
    // Port 9 (discard): nothing answers there, and these are refused before any request anyway.
    let server = "http://127.0.0.1:9";
    for (args, expected) in [
        (&["doctor"][..], "runs on this machine only"),
        (
            &["provision", "--automatic", "--dry-run"],
            "--dry-run runs on this machine only",
        ),
        (
            &["provision", "--automatic", "--concurrency", "4"],
            "--concurrency is the server's setting",
        ),
        (
            &["report"],
            "not signed in to http://127.0.0.1:9: run `behalf --server http://127.0.0.1:9 login`",
        ),
        (
            &[
                "admin",
                "create",
                "--email",
                "x@example.com",
                "--role",
                "viewer",
            ],
            "runs on this machine only",
        ),
    ] {
        let mut full = vec!["--server", server, "--token", "bht_x"];
        if expected.starts_with("not signed in") {
            full.truncate(2);
        }
        full.extend_from_slice(args);
        let out = install.run(&full);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{full:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(expected),
            "{full:?}: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    }
    let unreachable = install.run(&["--server", server, "--token", "bht_x", "report"]);
    assert_eq!(unreachable.status.code(), Some(1));
    assert!(
        text(&unreachable.stderr).contains("cannot reach http://127.0.0.1:9"),
        "{}",
        text(&unreachable.stderr)
    );
    let not_a_url = install.run(&["--server", "behalf.example.com", "report"]);
    assert_eq!(not_a_url.status.code(), Some(1));
}
