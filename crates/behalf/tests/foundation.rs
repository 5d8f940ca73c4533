//! The binary's promises from issue #2: version, serve with health checks, clear start-up errors.

mod common;

use common::{behalf, run, start_server};

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_one_line_error(output: &std::process::Output, needle: &str) {
    let stderr = stderr_of(output);
    assert!(!output.status.success(), "must fail: {stderr}");
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(
        lines[0].contains(needle),
        "expected {needle:?} in: {stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
}

#[test]
fn version_names_the_release_and_the_revision() {
    let output = run(behalf().arg("--version"));
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with(&format!("behalf {} (", env!("CARGO_PKG_VERSION"))),
        "{stdout}"
    );
}

#[tokio::test]
async fn serve_answers_health_and_readiness_on_sqlite() {
    let data = tempfile::tempdir().unwrap();
    let mut command = behalf();
    command.arg("--data-dir").arg(data.path());
    let server = start_server(command).await;
    let ready = reqwest::get(format!("{}/readyz", server.base_url))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    assert!(
        data.path().join("behalf.db").exists(),
        "the embedded database lives in the data directory"
    );
}

#[tokio::test]
async fn serve_works_on_postgresql() {
    let Some(pg) = behalf_store::testing::postgres().await else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let mut command = behalf();
    command
        .arg("--database-url")
        .arg(pg.url())
        .arg("--data-dir")
        .arg(data.path());
    let server = start_server(command).await;
    let ready: serde_json::Value = reqwest::get(format!("{}/readyz", server.base_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["database"], "postgres");
}

#[test]
fn an_unknown_configuration_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("behalf.toml");
    std::fs::write(&file, "[entra]\ntennant_id = \"x\"\n").unwrap();
    let output = run(behalf().arg("--config").arg(&file).arg("serve"));
    assert_one_line_error(&output, "tennant_id");
}

#[test]
fn a_malformed_configuration_file_is_reported_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("behalf.toml");
    std::fs::write(&file, "listen = [oops\n").unwrap();
    let output = run(behalf().arg("--config").arg(&file).arg("serve"));
    assert_one_line_error(&output, "line 1");
}

#[test]
fn a_missing_configuration_file_is_named() {
    let output = run(behalf().args(["--config", "/nonexistent/behalf.toml", "serve"]));
    assert_one_line_error(&output, "/nonexistent/behalf.toml");
}

#[test]
fn an_unreachable_database_is_named_without_its_password() {
    // Port 1 on loopback: nothing listens there.
    let output = run(behalf().args([
        "--database-url",
        "postgres://admin:s3cret@127.0.0.1:1/behalf",
        "serve",
    ]));
    assert_one_line_error(&output, "127.0.0.1:1");
    assert!(
        !stderr_of(&output).contains("s3cret"),
        "the password must not be printed"
    );
}

#[test]
fn logs_into_a_pipe_carry_no_terminal_colours() {
    let dir = tempfile::tempdir().unwrap();
    // Trace level makes the store log its statements, so there are lines to look at.
    let output = run(behalf()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["report", "--format", "json"])
        .env("RUST_LOG", "trace"));
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("TRACE") || stderr.contains("DEBUG"),
        "no log lines: {stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "ANSI escape codes in a pipe: {stderr:?}"
    );
}
