//! `behalf vault rotate-key` on an installation's data directory: the new key replaces the
//! file and opens everything; the old key opens nothing afterwards.

mod common;

use std::process::{Output, Stdio};

use serde_json::Value;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn behalf(data: &std::path::Path, args: &[&str]) -> Output {
    common::behalf()
        .env("BEHALF_DATA_DIR", data)
        .current_dir(data)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("behalf runs")
}

fn rotate(data: &std::path::Path) -> Value {
    let out = behalf(data, &["vault", "rotate-key", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

#[test]
fn rotating_the_key_replaces_the_file_and_the_old_key_opens_nothing() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let password = dir.join("password.txt");
    std::fs::write(&password, "a long enough password\n").unwrap();
    let created = behalf(
        dir,
        &[
            "admin",
            "create",
            "--email",
            "o@contoso.test",
            "--role",
            "owner",
            "--password-file",
            password.to_str().unwrap(),
        ],
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    // A token's hash needs the pepper: a secret sealed in the vault.
    let token = behalf(
        dir,
        &[
            "token",
            "create",
            "--admin",
            "o@contoso.test",
            "--name",
            "t",
        ],
    );
    assert!(token.status.success(), "{}", text(&token.stderr));
    let key_file = dir.join("master.key");
    let old_key = std::fs::read(&key_file).unwrap();

    let first = rotate(dir);
    assert!(first["rewrapped"].as_u64().unwrap() >= 1, "{first}");
    assert_ne!(first["old_key_id"], first["new_key_id"]);
    assert_ne!(std::fs::read(&key_file).unwrap(), old_key);
    assert!(!dir.join("master.key.next").exists());

    // The file now holds the new key: the next rotation starts from it and opens every row.
    let second = rotate(dir);
    assert_eq!(second["old_key_id"], first["new_key_id"], "{second}");
    assert_eq!(second["rewrapped"], first["rewrapped"]);

    // Started with the old key, nothing opens: the rotation refuses, naming the key.
    let old_file = dir.join("old.key");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&old_file)
            .unwrap();
        f.write_all(&old_key).unwrap();
    }
    let stale = common::behalf()
        .env("BEHALF_DATA_DIR", dir)
        .env("BEHALF_MASTER_KEY_FILE", &old_file)
        .current_dir(dir)
        .args(["vault", "rotate-key"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!stale.status.success());
    let err = text(&stale.stderr);
    assert!(
        err.contains("sealed by master key")
            && err.contains(second["new_key_id"].as_str().unwrap()),
        "{err}"
    );
}
