//! What `login`, `import`, `tap` and `doctor` share: the admin session file and a Graph client
//! built from it (delegated) or from `[entra]` (client credentials).
//!
//! The session lives in `dirs::config_dir()/behalf/session.json` (or `$BEHALF_SESSION_DIR`),
//! created with mode 0600 from the first byte (written to a 0600 temporary file, then renamed),
//! in a 0700 directory. It holds tokens, so it is never printed; a sign-in is valid 12 hours.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use behalf_app::graph_settings::{app_settings, base_settings, tenant};
use behalf_app::{DirectoryGraph, GraphActing};
use behalf_config::Config;
use behalf_domain::Secret;
use behalf_graph::{Credential, DelegatedTokens, GraphClient};
use serde::{Deserialize, Serialize};

/// How long an admin sign-in is honoured (SPEC §3.2).
pub const SESSION_HOURS: i64 = 12;

pub fn session_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("BEHALF_SESSION_DIR") {
        return Ok(PathBuf::from(dir));
    }
    dirs::config_dir()
        .map(|d| d.join("behalf"))
        .context("no per-user configuration directory; set BEHALF_SESSION_DIR")
}

pub fn session_path() -> anyhow::Result<PathBuf> {
    Ok(session_dir()?.join("session.json"))
}

/// The stored sign-in. Tokens are plain strings here only because this is the file format;
/// they move into [`Secret`]s as soon as they are read.
#[derive(Serialize, Deserialize)]
pub struct Session {
    pub tenant_id: String,
    pub client_id: String,
    pub login_base_url: String,
    pub graph_base_url: String,
    pub upn: Option<String>,
    /// Unix seconds.
    pub signed_in_at: i64,
    pub valid_until: i64,
    access_token: String,
    access_expires_at: i64,
    refresh_token: Option<String>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("tenant_id", &self.tenant_id)
            .field("upn", &self.upn)
            .field("valid_until", &self.valid_until)
            .field("tokens", &"<hidden>")
            .finish()
    }
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Session {
    pub fn new(
        tenant_id: &str,
        client_id: &str,
        config: &Config,
        upn: Option<String>,
        tokens: &DelegatedTokens,
    ) -> Session {
        let now = now_unix();
        Session {
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            login_base_url: config.entra.login_base_url.clone(),
            graph_base_url: config.entra.graph_base_url.clone(),
            upn,
            signed_in_at: now,
            valid_until: now + SESSION_HOURS * 3600,
            access_token: tokens.access_token.expose().into(),
            access_expires_at: tokens.expires_at,
            refresh_token: tokens.refresh_token.as_ref().map(|t| t.expose().into()),
        }
    }

    pub fn is_valid(&self) -> bool {
        now_unix() < self.valid_until
    }

    fn tokens(&self) -> DelegatedTokens {
        DelegatedTokens {
            access_token: Secret::new(self.access_token.clone()),
            expires_at: self.access_expires_at,
            refresh_token: self.refresh_token.clone().map(Secret::new),
        }
    }

    fn update_tokens(&mut self, t: &DelegatedTokens) {
        self.access_token = t.access_token.expose().into();
        self.access_expires_at = t.expires_at;
        self.refresh_token = t.refresh_token.as_ref().map(|r| r.expose().into());
    }

    pub fn load(path: &Path) -> anyhow::Result<Option<Session>> {
        load_json(path, "behalf logout")
    }

    /// Writes the session readable by its owner only, atomically.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        save_private_json(path, self)
    }
}

/// A JSON file of the CLI's, or `None` when there is none; a damaged one names `fix`.
pub(crate) fn load_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    fix: &str,
) -> anyhow::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
            format!("{} is damaged: run `{fix}`", path.display())
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes `value` as JSON readable by its owner only, atomically (a 0600 temporary file renamed
/// over the old one), so a crash never leaves half a token or a readable one.
pub(crate) fn save_private_json(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    let dir = path.parent().context("the file's path has no directory")?;
    create_private_dir(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let bytes = serde_json::to_vec(value)?;
    {
        let mut f = private_file(&tmp)?;
        f.write_all(&bytes)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.sync_all().ok();
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(unix)]
pub(crate) fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

#[cfg(not(unix))]
pub(crate) fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

#[cfg(unix)]
pub(crate) fn private_file(path: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let _ = std::fs::remove_file(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

#[cfg(not(unix))]
pub(crate) fn private_file(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))
}

/// A Graph client for a command: the admin session when one is valid for the configured tenant,
/// else client credentials from the configuration.
pub struct Graph {
    pub client: GraphClient,
    pub acting: GraphActing,
    pub tenant: String,
    session: Option<(PathBuf, Session)>,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("acting", &self.acting)
            .finish()
    }
}

impl Graph {
    pub fn open(config: &Config) -> anyhow::Result<Graph> {
        let path = session_path()?;
        if let Some(session) = Session::load(&path)? {
            let same_tenant = config
                .entra
                .tenant_id
                .as_deref()
                .is_none_or(|t| t.eq_ignore_ascii_case(&session.tenant_id));
            if session.is_valid() && same_tenant {
                let credential = Credential::Delegated {
                    client_id: session.client_id.clone(),
                    tokens: session.tokens(),
                };
                let mut settings = base_settings(config, &session.tenant_id, credential)?;
                settings.graph_base_url = session.graph_base_url.clone();
                settings.login_base_url = session.login_base_url.clone();
                let client = GraphClient::new(settings)?;
                return Ok(Graph {
                    client,
                    acting: GraphActing::Admin {
                        upn: session.upn.clone(),
                    },
                    tenant: session.tenant_id.clone(),
                    session: Some((path, session)),
                });
            }
            if !session.is_valid() {
                tracing::warn!(
                    "the admin sign-in has expired (12 hours); using the app's credentials"
                );
            }
        }
        Ok(Graph {
            client: GraphClient::new(app_settings(config)?)?,
            acting: GraphActing::App,
            tenant: tenant(config)?,
            session: None,
        })
    }

    /// The client as the application layer takes it.
    pub fn directory(&self) -> DirectoryGraph {
        DirectoryGraph {
            client: self.client.clone(),
            acting: self.acting.clone(),
            tenant: self.tenant.clone(),
        }
    }

    /// Saves the delegated tokens back (the refresh token rotates on every renewal).
    pub async fn finish(self) -> anyhow::Result<()> {
        if let Some((path, mut session)) = self.session
            && let Some(tokens) = self.client.delegated_tokens().await
        {
            session.update_tokens(&tokens);
            session.save(&path)?;
        }
        Ok(())
    }
}

/// `true` when stderr is a terminal (progress bars), `false` when piped (plain lines).
pub fn interactive() -> bool {
    use std::io::IsTerminal as _;
    std::io::stderr().is_terminal()
}
