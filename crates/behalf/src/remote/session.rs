//! The CLI's sign-in to a Behalf server (`behalf --server URL login`): the server's URL and the
//! token it issued, in `session_dir()/server-session.json`, mode 0600 from the first byte (like
//! the Entra sign-in next to it). One server at a time: signing in to another replaces it.

use std::path::{Path, PathBuf};

use behalf_domain::{Millis, Secret, format_millis, now_millis};
use serde::{Deserialize, Serialize};

use crate::cmd::graph_setup::{load_json, save_private_json, session_dir};

pub fn path() -> anyhow::Result<PathBuf> {
    Ok(session_dir()?.join("server-session.json"))
}

/// The stored sign-in. The token is a plain string only in this file format; it moves into a
/// [`Secret`] as soon as it is read.
#[derive(Serialize, Deserialize)]
pub struct ServerSession {
    pub server: String,
    token: String,
    /// Unix milliseconds; `None` when the server gave no expiry.
    pub expires_at: Option<Millis>,
}

impl std::fmt::Debug for ServerSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerSession")
            .field("server", &self.server)
            .field("expires_at", &self.expires_at)
            .field("token", &"<hidden>")
            .finish()
    }
}

impl ServerSession {
    pub fn new(server: &str, token: &Secret, expires_at: Option<Millis>) -> ServerSession {
        ServerSession {
            server: server.to_owned(),
            token: token.expose().to_owned(),
            expires_at,
        }
    }

    pub fn is_expired(&self) -> bool {
        self.expires_at.is_some_and(|at| at <= now_millis())
    }

    pub fn token(&self) -> Secret {
        Secret::new(self.token.clone())
    }

    pub fn describe_expiry(&self) -> String {
        match self.expires_at {
            Some(at) if at <= now_millis() => format!("expired at {}", format_millis(at)),
            Some(at) => format!("valid until {}", format_millis(at)),
            None => "without expiry".into(),
        }
    }

    pub fn load(path: &Path) -> anyhow::Result<Option<ServerSession>> {
        load_json(path, "behalf --server URL logout")
    }

    /// Writes the sign-in readable by its owner only, atomically, so a crash never leaves half
    /// a token or a readable one.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        save_private_json(path, self)
    }
}

/// The token to act with on `server`: `--token` when given, else the saved sign-in for that
/// server, unless it has expired.
pub fn token_for(server: &str, explicit: Option<&str>) -> anyhow::Result<Secret> {
    if let Some(token) = explicit {
        return Ok(Secret::new(token.trim()));
    }
    let login = || format!("run `behalf --server {server} login`");
    match ServerSession::load(&path()?)? {
        Some(session) if session.server == server => {
            anyhow::ensure!(
                !session.is_expired(),
                "the sign-in to {server} has {}: {}",
                session.describe_expiry(),
                login()
            );
            Ok(session.token())
        }
        _ => anyhow::bail!(
            "not signed in to {server}: {} (or pass --token / BEHALF_TOKEN)",
            login()
        ),
    }
}

/// The `expires_at` of the server's answer: Unix milliseconds, Unix seconds, or RFC 3339.
pub fn parse_expiry(value: &serde_json::Value) -> Option<Millis> {
    match value {
        serde_json::Value::Number(n) => {
            let n = n.as_i64()?;
            // Seconds until the year 5138, milliseconds after 1973: a number means one of them.
            Some(if n < 100_000_000_000 { n * 1000 } else { n })
        }
        serde_json::Value::String(s) => behalf_domain::parse_rfc3339(s).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn expiries_in_any_form_the_server_may_use() {
        assert_eq!(
            parse_expiry(&json!(1_700_000_000_000i64)),
            Some(1_700_000_000_000)
        );
        assert_eq!(parse_expiry(&json!(1_700_000_000)), Some(1_700_000_000_000));
        assert_eq!(
            parse_expiry(&json!("2023-11-14T22:13:20Z")),
            Some(1_700_000_000_000)
        );
        assert_eq!(parse_expiry(&json!(null)), None);
        assert_eq!(parse_expiry(&json!("tomorrow")), None);
    }

    #[cfg(unix)]
    #[test]
    fn the_session_is_private_hides_its_token_and_round_trips() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("behalf").join("server-session.json");
        let session = ServerSession::new(
            "https://b.example.com",
            &Secret::new("bht_secret"),
            Some(now_millis() + 60_000),
        );
        assert!(!format!("{session:?}").contains("bht_secret"));
        session.save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let loaded = ServerSession::load(&path).unwrap().unwrap();
        assert_eq!(loaded.server, "https://b.example.com");
        assert_eq!(loaded.token().expose(), "bht_secret");
        assert!(!loaded.is_expired());
        let old = ServerSession::new("x", &Secret::new("t"), Some(now_millis() - 1));
        assert!(old.is_expired());
    }
}
