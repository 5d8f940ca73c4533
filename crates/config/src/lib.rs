//! Behalf's configuration.
//!
//! Precedence, lowest first: built-in defaults, `behalf.toml` (the `--config` file, else
//! `./behalf.toml` when present), `BEHALF_*` environment variables (nested keys with `__`:
//! `BEHALF_ENTRA__TENANT_ID`), then command-line flags. A key nobody knows is an error naming it.
//! Secrets may come from a file: `BEHALF_DATABASE_URL_FILE`, `BEHALF_ENTRA__CLIENT_SECRET_FILE`.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use behalf_domain::Secret;
use figment::error::Kind;
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};
use serde::{Deserialize, Serialize};

mod mail;
mod values;

pub use mail::{MailConfig, MailSecurity};

use values::challenge_timeout_minutes;
pub use values::{Aaguid, ApiVersion, AttestationMode, CHALLENGE_TIMEOUT_MINUTES};

#[cfg(test)]
mod tests;

/// Everything Behalf can be configured with. `Debug` shows secrets as `<hidden>`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the SQLite database, the master key and caches live.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; the SQLite file in `data_dir` when absent.
    pub database_url: Option<Secret>,
    /// How many connections to PostgreSQL each process keeps at most (16 when absent). Fewer
    /// keep the same few server processes busy and their caches warm; several Behalf instances
    /// on one server share its `max_connections`. SQLite always has one writer.
    #[serde(default)]
    pub database_pool_size: Option<u32>,
    /// Address `behalf serve` listens on.
    pub listen: SocketAddr,
    /// The workspace (organisation) the CLI acts in.
    pub workspace: String,
    /// The workspace master key file; generated into `data_dir` when absent.
    pub master_key_file: Option<PathBuf>,
    pub log: LogConfig,
    pub entra: EntraConfig,
    pub tls: TlsConfig,
    pub provisioning: ProvisioningConfig,
    pub sync: SyncConfig,
    /// Admins' sign-in with Microsoft Entra ID (OpenID Connect); off unless `[oidc] enabled`.
    #[serde(default)]
    pub oidc: OidcConfig,
    /// Onboarding mail (activation passes, password-reset links); off unless `[mail]` names a relay.
    #[serde(default)]
    pub mail: MailConfig,
    /// The manual path (a pass mailed, the user's own passkey awaited).
    #[serde(default)]
    pub manual: ManualConfig,
}

/// `[manual]`: jobs in which users register a passkey themselves with a Temporary Access Pass
/// mailed to them (its lifetime and one-time use are `[mail]`'s).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ManualConfig {
    /// Seconds between two looks at a waiting user's passkey methods (one Graph read each).
    pub poll_seconds: u64,
}

impl Default for ManualConfig {
    fn default() -> Self {
        ManualConfig { poll_seconds: 60 }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter, e.g. `info` or `behalf=debug,sqlx=warn`.
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The Microsoft Entra ID tenant and app registration Behalf acts through.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntraConfig {
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    /// A PEM file with the app's certificate and private key, for a JWT client assertion.
    pub certificate_file: Option<PathBuf>,
    /// `https://graph.microsoft.com` in the global cloud; national clouds and the sandbox differ.
    pub graph_base_url: String,
    /// `https://login.microsoftonline.com` in the global cloud.
    pub login_base_url: String,
    /// `beta` (creationOptions with a challenge timeout) or `v1.0`.
    pub api_version: ApiVersion,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Extra PEM roots to trust (a corporate TLS-inspection proxy).
    pub ca_file: Option<PathBuf>,
    /// Trust the operating system's certificate store explicitly.
    pub local_ssl_verify: bool,
    /// Accept any certificate. Troubleshooting only; `serve` refuses it unless set in the file.
    pub disable_ssl_verify: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisioningConfig {
    /// Users provisioned at the same time.
    pub concurrency: usize,
    /// The passkey's display name at the RP; `{upn}`, `{display_name}` and `{date}` are replaced.
    pub display_name_template: String,
    /// `packed` (x5c chain from the workspace attestation CA), `packed-self` or `none`.
    pub attestation: AttestationMode,
    /// Assign a vault security key to a user that has none when provisioning starts.
    pub auto_assign_vault_key: bool,
    /// The AAGUID (authenticator model) Behalf's vault keys claim. A tenant with key
    /// restrictions must allow it.
    pub aaguid: Aaguid,
    /// Beta only: how long a creationOptions challenge stays valid (5..43200 minutes).
    #[serde(deserialize_with = "challenge_timeout_minutes")]
    pub challenge_timeout_minutes: u32,
}

/// What `behalf serve`'s background workers do on their own, besides running the provisioning
/// jobs queued in the store (which they always do).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// Seconds between two delta imports from Entra ID (one instance runs each round, however
    /// many share the database); 0 turns the directory sync off.
    pub interval_secs: u64,
    /// The import connection the sync continues (the same name as `behalf import --connection`).
    pub connection: String,
    /// After each import, queue a passkey for every enabled user who has none yet.
    pub provision: bool,
    /// After each import, revoke the passkeys of users deleted or disabled upstream.
    pub deprovision: bool,
}

/// Admin sign-in with Microsoft Entra ID: OpenID Connect, authorization code + PKCE, against
/// `{entra.login_base_url}/{tenant_id}/v2.0`. Who becomes what follows the id_token's `groups`
/// (Entra group object ids) or `roles` (app role values): owner, else admin with edit-users
/// (`editor_groups`), else admin, else viewer; someone in none is refused.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OidcConfig {
    pub enabled: bool,
    /// The web app admins sign in to (it may be the `[entra]` app).
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    /// The tenant admins sign in from; `entra.tenant_id` when absent.
    pub tenant_id: Option<String>,
    /// `/auth/oidc/callback` on this server as the browser reaches it, registered on the app
    /// as a web redirect URI (`https://behalf.example.com/auth/oidc/callback`).
    pub redirect_url: Option<String>,
    pub owner_groups: Vec<String>,
    pub admin_groups: Vec<String>,
    /// Admins who may also create, change and provision users.
    pub editor_groups: Vec<String>,
    pub viewer_groups: Vec<String>,
    pub owner_roles: Vec<String>,
    pub admin_roles: Vec<String>,
    pub viewer_roles: Vec<String>,
}

/// The AAGUID of Behalf's vault authenticator unless configured otherwise.
pub const BEHALF_VAULT_AAGUID: &str = "4f2b6c1e-9d3a-4e8b-b5c7-2a1d0e9f8c6b";

/// What the defaults are, as a serialisable tree figment can layer over.
#[derive(Serialize)]
struct Defaults {
    data_dir: PathBuf,
    listen: String,
    workspace: String,
    log: LogConfig,
    entra: EntraDefaults,
    tls: TlsConfig,
    provisioning: ProvisioningConfig,
    sync: SyncConfig,
}

#[derive(Serialize)]
struct EntraDefaults {
    graph_base_url: &'static str,
    login_base_url: &'static str,
    api_version: ApiVersion,
}

fn defaults() -> Defaults {
    Defaults {
        data_dir: dirs::data_dir()
            .map(|d| d.join("behalf"))
            .unwrap_or_else(|| PathBuf::from("behalf-data")),
        listen: "127.0.0.1:8080".into(),
        workspace: "default".into(),
        log: LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
        },
        entra: EntraDefaults {
            graph_base_url: "https://graph.microsoft.com",
            login_base_url: "https://login.microsoftonline.com",
            api_version: ApiVersion::Beta,
        },
        tls: TlsConfig::default(),
        provisioning: ProvisioningConfig {
            concurrency: 16,
            display_name_template: "Behalf passkey ({date})".into(),
            attestation: AttestationMode::Packed,
            auto_assign_vault_key: true,
            aaguid: Aaguid::vault_default(),
            challenge_timeout_minutes: 60,
        },
        // Keeping the directory current and revoking leavers' passkeys is what a server is for;
        // registering passkeys for everyone is a decision an admin opts into.
        sync: SyncConfig {
            interval_secs: 900,
            connection: "entra".into(),
            provision: false,
            deprovision: true,
        },
    }
}

/// Keys whose value may instead be read from the file named by `<KEY>_FILE`.
const SECRET_KEYS: &[&str] = &[
    "database_url",
    "entra.client_secret",
    "oidc.client_secret",
    "mail.password",
];

/// Top-level keys, so that unrelated `BEHALF_*` variables (e.g. test settings) are not read.
const TOP_LEVEL_KEYS: &[&str] = &[
    "data_dir",
    "database_url",
    "database_pool_size",
    "listen",
    "workspace",
    "master_key_file",
    "log",
    "entra",
    "tls",
    "provisioning",
    "sync",
    "oidc",
    "mail",
    "manual",
];

/// Why the configuration could not be loaded. Each names the key or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path} does not exist")]
    MissingFile { path: PathBuf },
    #[error("cannot read {variable} ({path}): {reason}")]
    SecretFile {
        variable: String,
        path: PathBuf,
        reason: String,
    },
    #[error("{0}")]
    Invalid(String),
}

/// Where configuration comes from, besides the environment.
#[derive(Debug, Default)]
pub struct Sources<'a> {
    /// `--config FILE`: must exist. `None` reads `./behalf.toml` if it exists.
    pub file: Option<&'a Path>,
    /// Flags given on the command line, as a figment provider (highest precedence).
    pub overrides: Option<Figment>,
}

impl Config {
    /// Loads the configuration from defaults, file, the process environment and overrides.
    pub fn load(sources: Sources<'_>) -> Result<Config, ConfigError> {
        Self::load_with_env(sources, std::env::vars())
    }

    /// As [`Config::load`] with an explicit environment (tests).
    pub fn load_with_env(
        sources: Sources<'_>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(defaults()));
        match sources.file {
            Some(path) if !path.exists() => {
                return Err(ConfigError::MissingFile {
                    path: path.to_owned(),
                });
            }
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None if Path::new("behalf.toml").exists() => {
                figment = figment.merge(Toml::file_exact("behalf.toml"))
            }
            None => {}
        }
        let env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("BEHALF_"))
            .collect();
        figment = figment.merge(environment(&env));
        for variable in secret_files(&env)? {
            figment = figment.merge(variable);
        }
        if let Some(overrides) = sources.overrides {
            figment = figment.merge(overrides);
        }
        figment
            .extract::<Config>()
            .map_err(|e| ConfigError::Invalid(one_line(e)))
    }

    /// The database URL in effect: configured, or the SQLite file in the data directory.
    pub fn database_url(&self) -> Secret {
        match &self.database_url {
            Some(url) => url.clone(),
            None => Secret::new(format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("behalf.db").display()
            )),
        }
    }
}

fn key_of(variable: &str) -> Option<String> {
    let key = variable
        .strip_prefix("BEHALF_")?
        .to_lowercase()
        .replace("__", ".");
    let top = key.split('.').next().unwrap_or_default();
    TOP_LEVEL_KEYS.contains(&top).then_some(key)
}

/// The `BEHALF_*` variables that name configuration keys, as one provider. Values are parsed
/// as figment parses environment values (numbers, booleans, arrays), so `BEHALF_TLS__CA_FILE`
/// and `BEHALF_PROVISIONING__CONCURRENCY=64` both work.
fn environment(env: &[(String, String)]) -> Figment {
    let mut figment = Figment::new();
    for (variable, value) in env {
        let Some(key) = key_of(variable) else {
            continue;
        };
        if SECRET_KEYS.iter().any(|s| key == format!("{s}_file")) {
            continue;
        }
        let value: Value = value.parse().unwrap_or_else(|never| match never {});
        figment = figment.merge(Variable {
            name: variable.clone(),
            key,
            value,
        });
    }
    figment
}

/// One `BEHALF_*` variable as a provider, so that an error in its value names the variable.
struct Variable {
    name: String,
    key: String,
    value: Value,
}

impl Provider for Variable {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("environment variable {}", self.name))
            .source(Source::Custom(self.name.clone()))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Serialized::default(&self.key, &self.value).data()
    }
}

fn secret_files(env: &[(String, String)]) -> Result<Vec<Variable>, ConfigError> {
    let mut values = Vec::new();
    for (variable, path) in env {
        let Some(key) = key_of(variable) else {
            continue;
        };
        let Some(secret_key) = key.strip_suffix("_file") else {
            continue;
        };
        if !SECRET_KEYS.contains(&secret_key) {
            continue;
        }
        let content = std::fs::read_to_string(path).map_err(|e| ConfigError::SecretFile {
            variable: variable.clone(),
            path: PathBuf::from(path),
            reason: e.to_string(),
        })?;
        values.push(Variable {
            name: variable.clone(),
            key: secret_key.to_owned(),
            value: Value::from(content.trim_end_matches(['\r', '\n']).to_owned()),
        });
    }
    Ok(values)
}

/// Figment errors can carry several causes on several lines; a CLI prints one line, each cause
/// as `key: what is wrong (where it was set)`, e.g.
/// `provisioning.attestation: "pakced" is not one of packed, packed-self, none (in behalf.toml)`.
fn one_line(error: figment::Error) -> String {
    error
        .into_iter()
        .map(describe)
        .collect::<Vec<_>>()
        .join("; ")
}

fn describe(error: figment::Error) -> String {
    let what = match &error.kind {
        Kind::UnknownField(_, expected) => {
            format!("unknown key (known here: {})", expected.join(", "))
        }
        kind => kind.to_string(),
    };
    let mut line = match error.path.is_empty() {
        true => what,
        false => format!("{}: {what}", error.path.join(".")),
    };
    match error.metadata.as_ref().and_then(|m| m.source.as_ref()) {
        Some(Source::File(path)) => line.push_str(&format!(" (in {})", path.display())),
        Some(Source::Custom(variable)) => line.push_str(&format!(" (from {variable})")),
        _ => {}
    }
    line.replace('\n', " ")
}
