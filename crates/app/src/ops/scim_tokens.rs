//! SCIM connections and their bearer tokens: made by an operator (`behalf scim-token create`,
//! `POST /api/v1/scim/tokens`), shown once, kept as their HMAC under the pepper, checked on
//! every `/scim/v2` request.
//!
//! The check is one HMAC and, at most every [`CACHE_TTL`], one lookup in the tokens' unique
//! index: a verified token is remembered in memory for that long (keyed by its HMAC, never the
//! token). Revoking through this instance forgets it at once; another instance sharing the
//! database stops accepting it within [`CACHE_TTL`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use behalf_domain::{ConnectionId, EventAction, EventDetail, Millis, Outcome, ScimTokenId, Secret};
use behalf_store::StoreError;
use behalf_store::scim::{ScimTokenEntry, ScimTokenGrant};
use serde::Serialize;

use crate::auth::{SCIM_TOKEN_PREFIX, random_secret};
use crate::{App, AppError, Operator};

/// How long a verified token is trusted without asking the database again.
pub const CACHE_TTL: Duration = Duration::from_secs(5);
/// Tokens remembered at most (a handful per connection in practice); past it the cache starts over.
const CACHE_MAX: usize = 4_096;

/// Verified tokens by HMAC.
#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    entries: Mutex<HashMap<String, (ScimTokenGrant, Instant)>>,
}

impl TokenCache {
    fn get(&self, hash: &str) -> Option<ScimTokenGrant> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(hash)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(grant, _)| grant.clone())
    }

    fn put(&self, hash: String, grant: ScimTokenGrant) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CACHE_MAX {
            entries.clear();
        }
        entries.insert(hash, (grant, Instant::now()));
    }

    /// Forgets every token of `connection` or the token `id`.
    fn forget(&self, what: impl Fn(&ScimTokenGrant) -> bool) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|_, (grant, _)| !what(grant));
    }
}

/// A token just made: `token` is shown this once.
#[derive(Debug)]
pub struct CreatedScimToken {
    pub token: Secret,
    pub id: ScimTokenId,
    pub connection_id: ConnectionId,
    pub connection: String,
    pub auto_provision: bool,
}

/// A SCIM token as the list shows it (never the token).
#[derive(Debug, Clone, Serialize)]
pub struct ScimTokenView {
    pub id: ScimTokenId,
    pub name: String,
    pub connection: String,
    pub auto_provision: bool,
    pub created_by: String,
    pub created_at: Millis,
    pub last_used_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
}

impl From<ScimTokenEntry> for ScimTokenView {
    fn from(e: ScimTokenEntry) -> Self {
        ScimTokenView {
            id: e.id,
            name: e.name,
            connection: e.connection_name,
            auto_provision: e.auto_provision,
            created_by: e.created_by,
            created_at: e.created_at,
            last_used_at: e.last_used_at,
            revoked_at: e.revoked_at,
        }
    }
}

impl Operator<'_> {
    /// A new token for the SCIM connection `connection` (made when there is none of that name).
    /// `auto_provision`: whether a new active user it pushes gets a passkey queued at once;
    /// `None` leaves the connection's setting as it is (off for a new one).
    pub async fn create_scim_token(
        &self,
        connection: &str,
        auto_provision: Option<bool>,
    ) -> Result<CreatedScimToken, AppError> {
        let name = connection.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(AppError::invalid(
                "name",
                "name the SCIM connection (up to 200 characters)",
            ));
        }
        let store = self.app.store();
        let workspace = self.app.workspace().id;
        let conn = store
            .ensure_scim_connection(workspace, name)
            .await
            .map_err(|e| match e {
                StoreError::InvalidInput { field, reason } => AppError::invalid(field, reason),
                other => other.into(),
            })?;
        if let Some(on) = auto_provision {
            store.set_scim_auto_provision(conn.id, on).await?;
            self.app
                .inner
                .scim_tokens
                .forget(|g| g.connection_id == conn.id);
        }
        let token = random_secret(SCIM_TOKEN_PREFIX);
        let hash = self.app.secret_hash(token.expose()).await?;
        let id = store
            .create_scim_token(workspace, conn.id, name, &hash, &self.actor())
            .await?;
        let auto = store
            .list_scim_tokens(workspace)
            .await?
            .into_iter()
            .find(|t| t.id == id)
            .is_some_and(|t| t.auto_provision);
        self.app
            .audit(
                self.actor(),
                EventAction::ScimTokenCreated,
                Outcome::Success,
                EventDetail::default()
                    .with("token_id", id)
                    .with("connection", name)
                    .with("auto_provision", auto),
            )
            .await?;
        Ok(CreatedScimToken {
            token,
            id,
            connection_id: conn.id,
            connection: conn.name,
            auto_provision: auto,
        })
    }

    pub async fn list_scim_tokens(&self) -> Result<Vec<ScimTokenView>, AppError> {
        let entries = self
            .app
            .store()
            .list_scim_tokens(self.app.workspace().id)
            .await?;
        Ok(entries.into_iter().map(ScimTokenView::from).collect())
    }

    /// Revokes a SCIM token: refused from the next request on (on other instances within
    /// [`CACHE_TTL`]).
    pub async fn revoke_scim_token(&self, id: ScimTokenId) -> Result<(), AppError> {
        let revoked = self
            .app
            .store()
            .revoke_scim_token(self.app.workspace().id, id)
            .await?;
        self.app.inner.scim_tokens.forget(|g| g.token_id == id);
        if !revoked {
            return Err(AppError::NotFound {
                what: "SCIM token",
                key: id.to_string(),
            });
        }
        self.app
            .audit(
                self.actor(),
                EventAction::ScimTokenRevoked,
                Outcome::Success,
                EventDetail::default().with("token_id", id),
            )
            .await
    }
}

/// A SCIM client: the holder of a valid token, who reaches its own connection's users and
/// groups and nothing else.
#[derive(Debug, Clone)]
pub struct Scim<'a> {
    pub(crate) app: &'a App,
    pub(crate) grant: ScimTokenGrant,
}

impl Scim<'_> {
    pub fn connection_id(&self) -> ConnectionId {
        self.grant.connection_id
    }

    pub fn connection_name(&self) -> &str {
        &self.grant.connection_name
    }

    /// How events name the client.
    pub fn actor(&self) -> String {
        format!("scim:{}", self.grant.connection_name)
    }
}

impl App {
    /// The SCIM handle for a bearer token, or `None` when it is not a valid SCIM token of
    /// this workspace.
    pub async fn scim(&self, bearer: &str) -> Result<Option<Scim<'_>>, AppError> {
        if !bearer.starts_with(SCIM_TOKEN_PREFIX) {
            return Ok(None);
        }
        let hash = self.secret_hash(bearer).await?;
        if let Some(grant) = self.inner.scim_tokens.get(&hash) {
            return Ok(Some(Scim { app: self, grant }));
        }
        let Some(grant) = self.store().find_scim_token(&hash).await? else {
            return Ok(None);
        };
        if grant.workspace_id != self.workspace().id {
            return Ok(None);
        }
        if let Err(e) = self
            .store()
            .touch_scim_token(grant.token_id, grant.last_used_at)
            .await
        {
            tracing::warn!(error = %e, "cannot record the SCIM token's last use");
        }
        self.inner.scim_tokens.put(hash, grant.clone());
        Ok(Some(Scim { app: self, grant }))
    }
}
