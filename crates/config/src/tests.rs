use std::io::Write;

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn file(content: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(content.as_bytes()).unwrap();
    f
}

#[test]
fn defaults_need_no_file() {
    let config = Config::load_with_env(Sources::default(), env(&[])).unwrap();
    assert_eq!(config.workspace, "default");
    assert_eq!(config.entra.graph_base_url, "https://graph.microsoft.com");
    assert!(config.database_url().expose().starts_with("sqlite://"));
}

#[test]
fn file_then_environment_then_flags_take_precedence() {
    let toml = file(
        "workspace = \"from-file\"\nlisten = \"127.0.0.1:9000\"\n[provisioning]\nconcurrency = 4\n",
    );
    let sources = Sources {
        file: Some(toml.path()),
        overrides: None,
    };
    let config =
        Config::load_with_env(sources, env(&[("BEHALF_PROVISIONING__CONCURRENCY", "64")])).unwrap();
    assert_eq!(config.workspace, "from-file");
    assert_eq!(
        config.provisioning.concurrency, 64,
        "environment beats the file"
    );

    let overrides = Figment::from(Serialized::default("workspace", "from-flag"));
    let sources = Sources {
        file: Some(toml.path()),
        overrides: Some(overrides),
    };
    let config = Config::load_with_env(sources, env(&[("BEHALF_WORKSPACE", "from-env")])).unwrap();
    assert_eq!(config.workspace, "from-flag", "flags beat everything");
}

#[test]
fn an_unknown_key_is_named() {
    let toml = file("[entra]\ntenant = \"x\"\n");
    let err = Config::load_with_env(
        Sources {
            file: Some(toml.path()),
            overrides: None,
        },
        env(&[]),
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("tenant"), "{message}");
    assert!(!message.contains('\n'), "one line: {message}");

    let err = Config::load_with_env(
        Sources::default(),
        env(&[("BEHALF_ENTRA__TENNANT_ID", "x")]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("tennant_id"), "{err}");
}

#[test]
fn unrelated_behalf_variables_are_not_configuration() {
    let config = Config::load_with_env(
        Sources::default(),
        env(&[("BEHALF_TEST_POSTGRES", "postgres://x")]),
    )
    .unwrap();
    assert!(config.database_url.is_none());
}

#[test]
fn malformed_toml_and_missing_file_are_reported() {
    let toml = file("listen = [unterminated\n");
    let err = Config::load_with_env(
        Sources {
            file: Some(toml.path()),
            overrides: None,
        },
        env(&[]),
    )
    .unwrap_err();
    assert!(!err.to_string().is_empty());
    let err = Config::load_with_env(
        Sources {
            file: Some(Path::new("/nonexistent/behalf.toml")),
            overrides: None,
        },
        env(&[]),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/behalf.toml"),
        "{err}"
    );
}

#[test]
fn secrets_come_from_files_and_never_print() {
    let secret = file("s3cr3t-value\n");
    let path = secret.path().to_str().unwrap();
    let config = Config::load_with_env(
        Sources::default(),
        env(&[
            ("BEHALF_ENTRA__CLIENT_SECRET_FILE", path),
            ("BEHALF_DATABASE_URL_FILE", path),
        ]),
    )
    .unwrap();
    assert_eq!(
        config.entra.client_secret.as_ref().unwrap().expose(),
        "s3cr3t-value"
    );
    let debug = format!("{config:?}");
    assert!(!debug.contains("s3cr3t"), "{debug}");
    assert!(debug.contains("<hidden>"));

    let err = Config::load_with_env(
        Sources::default(),
        env(&[("BEHALF_ENTRA__CLIENT_SECRET_FILE", "/nonexistent")]),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("BEHALF_ENTRA__CLIENT_SECRET_FILE"),
        "{err}"
    );
}

#[test]
fn the_master_key_file_setting_is_a_path_not_a_secret() {
    let config = Config::load_with_env(
        Sources::default(),
        env(&[("BEHALF_MASTER_KEY_FILE", "/etc/behalf/key")]),
    )
    .unwrap();
    assert_eq!(
        config.master_key_file.as_deref(),
        Some(Path::new("/etc/behalf/key"))
    );
}
