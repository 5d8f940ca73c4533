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
    let message = err.to_string();
    assert!(
        message.starts_with("entra.tennant_id: unknown key (known here: tenant_id, "),
        "{message}"
    );
    assert!(
        message.ends_with("(from BEHALF_ENTRA__TENNANT_ID)"),
        "{message}"
    );
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

fn load_toml(content: &str) -> Result<Config, ConfigError> {
    let toml = file(content);
    Config::load_with_env(
        Sources {
            file: Some(toml.path()),
            overrides: None,
        },
        env(&[]),
    )
}

fn load_env(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::load_with_env(Sources::default(), env(pairs))
}

#[test]
fn typed_values_have_defaults() {
    let config = load_env(&[]).unwrap();
    assert_eq!(config.provisioning.attestation, AttestationMode::Packed);
    assert_eq!(config.provisioning.aaguid.as_str(), BEHALF_VAULT_AAGUID);
    assert_eq!(config.entra.api_version, ApiVersion::Beta);
    assert_eq!(config.provisioning.challenge_timeout_minutes, 60);
}

#[test]
fn typed_values_parse_from_the_file_and_the_environment() {
    let config = load_toml(
        "[provisioning]\nattestation = \"packed-self\"\naaguid = \"00112233-4455-6677-8899-AABBCCDDEEFF\"\nchallenge_timeout_minutes = 43200\n[entra]\napi_version = \"v1.0\"\n",
    )
    .unwrap();
    assert_eq!(config.provisioning.attestation, AttestationMode::PackedSelf);
    assert_eq!(
        config.provisioning.aaguid.as_str(),
        "00112233-4455-6677-8899-aabbccddeeff",
        "shown in Entra's lowercase hyphenated form"
    );
    assert_eq!(
        config.provisioning.aaguid.bytes(),
        [
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff
        ]
    );
    assert_eq!(config.provisioning.challenge_timeout_minutes, 43200);
    assert_eq!(config.entra.api_version, ApiVersion::V1);

    let config = load_env(&[
        ("BEHALF_PROVISIONING__ATTESTATION", "none"),
        ("BEHALF_PROVISIONING__CHALLENGE_TIMEOUT_MINUTES", "5"),
        ("BEHALF_ENTRA__API_VERSION", "v1.0"),
    ])
    .unwrap();
    assert_eq!(config.provisioning.attestation, AttestationMode::None);
    assert_eq!(config.provisioning.challenge_timeout_minutes, 5);
    assert_eq!(config.entra.api_version, ApiVersion::V1);
}

#[test]
fn a_bad_attestation_is_refused_at_load_naming_the_key() {
    let err = load_toml("[provisioning]\nattestation = \"pakced\"\n").unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(
            "provisioning.attestation: \"pakced\" is not one of packed, packed-self, none (in "
        ),
        "{message}"
    );
    let err = load_env(&[("BEHALF_PROVISIONING__ATTESTATION", "self")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "provisioning.attestation: \"self\" is not one of packed, packed-self, none (from BEHALF_PROVISIONING__ATTESTATION)"
    );
}

#[test]
fn a_bad_aaguid_is_refused_at_load_naming_the_key() {
    let err = load_toml("[provisioning]\naaguid = \"4f2b6c1e-9d3a-4e8b\"\n").unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(
            "provisioning.aaguid: \"4f2b6c1e-9d3a-4e8b\" is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
        ),
        "{message}"
    );
    let err = load_env(&[("BEHALF_PROVISIONING__AAGUID", "nope")]).unwrap_err();
    assert!(
        err.to_string().starts_with("provisioning.aaguid: \"nope\""),
        "{err}"
    );
}

#[test]
fn a_bad_api_version_is_refused_at_load_naming_the_key() {
    let err = load_toml("[entra]\napi_version = \"v2\"\n").unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("entra.api_version: \"v2\" is not one of beta, v1.0 (in "),
        "{message}"
    );
    let err = load_env(&[("BEHALF_ENTRA__API_VERSION", "1.0")]).unwrap_err();
    assert!(
        err.to_string().starts_with("entra.api_version: "),
        "a number is refused too: {err}"
    );
}

#[test]
fn a_challenge_timeout_outside_its_bounds_is_refused_at_load_naming_the_key() {
    for minutes in ["4", "43201", "0"] {
        let err = load_toml(&format!(
            "[provisioning]\nchallenge_timeout_minutes = {minutes}\n"
        ))
        .unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with(&format!(
                "provisioning.challenge_timeout_minutes: {minutes} is outside 5..43200 (minutes)"
            )),
            "{message}"
        );
    }
    let err = load_env(&[("BEHALF_PROVISIONING__CHALLENGE_TIMEOUT_MINUTES", "-1")]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("provisioning.challenge_timeout_minutes: "),
        "{err}"
    );
}

#[test]
fn the_oidc_section_is_optional_and_its_secret_may_come_from_a_file() {
    let config = load_env(&[]).unwrap();
    assert!(!config.oidc.enabled && config.oidc.client_id.is_none());
    let secret = file("oidc secret\n");
    let path = secret.path().to_str().unwrap();
    let toml = file(
        "[oidc]\nenabled = true\nclient_id = \"app\"\nredirect_url = \"https://b.example/auth/oidc/callback\"\nowner_groups = [\"g1\"]\nviewer_roles = [\"Behalf.Viewer\"]\n",
    );
    let config = Config::load_with_env(
        Sources {
            file: Some(toml.path()),
            overrides: None,
        },
        env(&[
            ("BEHALF_OIDC__CLIENT_SECRET_FILE", path),
            ("BEHALF_OIDC__EDITOR_GROUPS", "[\"g2\"]"),
        ]),
    )
    .unwrap();
    assert!(config.oidc.enabled);
    assert_eq!(config.oidc.client_secret.unwrap().expose(), "oidc secret");
    assert_eq!(config.oidc.owner_groups, ["g1"]);
    assert_eq!(config.oidc.editor_groups, ["g2"]);
    assert_eq!(config.oidc.viewer_roles, ["Behalf.Viewer"]);
    assert!(
        config.oidc.tenant_id.is_none(),
        "entra.tenant_id is used then"
    );
    let err = load_toml("[oidc]\nenabeld = true\n").unwrap_err();
    assert!(err.to_string().contains("enabeld"), "{err}");
}

#[test]
fn mail_is_off_by_default_and_its_password_is_hidden() {
    let config = Config::load_with_env(Sources::default(), env(&[])).unwrap();
    assert!(!config.mail.enabled());
    assert_eq!(config.mail.port(), 587, "starttls by default");
    assert_eq!(config.mail.tap_lifetime_minutes, 60);

    let password = file("relay secret\n");
    let toml = file(
        "[mail]\nrelay = \"smtp.contoso.example\"\nsecurity = \"tls\"\nusername = \"behalf\"\nfrom = \"IT <it@contoso.example>\"\n",
    );
    let config = Config::load_with_env(
        Sources {
            file: Some(toml.path()),
            overrides: None,
        },
        env(&[(
            "BEHALF_MAIL__PASSWORD_FILE",
            password.path().to_str().unwrap(),
        )]),
    )
    .unwrap();
    assert!(config.mail.enabled());
    assert_eq!(config.mail.security, MailSecurity::Tls);
    assert_eq!(config.mail.port(), 465);
    assert_eq!(
        config.mail.password.as_ref().map(|p| p.expose()),
        Some("relay secret")
    );
    let debug = format!("{config:?}");
    assert!(!debug.contains("relay secret"), "{debug}");

    let bad = file("[mail]\nsecurity = \"ssl\"\n");
    let err = Config::load_with_env(
        Sources {
            file: Some(bad.path()),
            overrides: None,
        },
        env(&[]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("mail.security"), "{err}");
}
