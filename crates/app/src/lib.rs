//! Behalf's application layer: where every operation lives.
//!
//! The CLI, the REST API, the panel and SCIM are faces; each turns its input into one typed call
//! here and renders what comes back. Nothing in this crate prints. Operations are methods of
//! permission-limited handles that [`App`] hands out for a [`Caller`] (see [`access`]): a viewer's
//! handle has no `provision` method, so a face cannot forget a check.
//!
//! The wiring (store → vault → authenticator → Graph → engine), the Microsoft relying party and
//! the server's background workers live here too, so that every face runs the same ones.
#![forbid(unsafe_code)]

pub mod access;
pub mod auth;
mod error;
pub mod graph_settings;
mod manual;
mod microsoft;
pub mod oidc;
pub mod ops;
mod wiring;
mod workers;

use std::sync::Arc;

use behalf_config::Config;
use behalf_domain::Workspace;
use behalf_graph::GraphClient;
use behalf_store::Store;
use behalf_vault::Vault;

pub use access::{Caller, Operator, Owner, Provisioner, Reader};
pub use error::AppError;
pub use microsoft::MicrosoftGraph;
pub use wiring::{MicrosoftEngine, Opened, open_store};
pub use workers::Workers;

/// Whom Graph calls for directory reads, Temporary Access Passes and `doctor` act as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphActing {
    /// The app's own client credentials from `[entra]`.
    App,
    /// An admin signed in on this machine (`behalf login`, device code).
    Admin { upn: Option<String> },
}

impl GraphActing {
    /// For the event log.
    pub fn actor(&self) -> String {
        match self {
            GraphActing::Admin { upn: Some(u) } => format!("admin:{u}"),
            GraphActing::Admin { upn: None } => "admin".into(),
            GraphActing::App => "cli".into(),
        }
    }
}

/// How an [`App`] is opened.
#[derive(Debug, Clone, Default)]
pub struct AppOptions {
    /// Who the provisioning engine's events name when no admin asked (`cli:<os user>`, `server`).
    pub engine_actor: String,
    /// A Graph client to use, instead of the app's credentials, for directory reads, Temporary
    /// Access Passes and `doctor` (the CLI passes an admin's delegated sign-in here).
    pub directory_graph: Option<DirectoryGraph>,
}

/// A Graph client for directory reads, TAPs and `doctor`, whom it acts as, and its tenant.
#[derive(Debug, Clone)]
pub struct DirectoryGraph {
    pub client: GraphClient,
    pub acting: GraphActing,
    pub tenant: String,
}

/// Jobs and items by state.
#[derive(Debug, Clone, Default)]
pub struct StateCounts {
    pub jobs: Vec<(String, i64)>,
    pub items: Vec<(String, i64)>,
}

/// The application: one per process, cheap to clone.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    opened: Opened,
    /// The app's own Graph client and the engine on it, when `[entra]` names an app credential.
    engine: Option<MicrosoftEngine>,
    directory_graph: Option<DirectoryGraph>,
    /// Woken whenever a job is queued, so the workers start on it at once.
    jobs_queued: tokio::sync::Notify,
    /// Woken whenever an outbound write is queued (or retried), so the workers send it at once.
    writes_queued: tokio::sync::Notify,
    /// The key secrets are hashed under, read from the vault on first use.
    pepper: tokio::sync::OnceCell<aws_lc_rs::hmac::Key>,
    sign_in_limiter: auth::SignInLimiter,
    /// Sign-ins with Entra ID started and not yet finished.
    oidc: oidc::OidcState,
    /// SCIM tokens verified lately (see `ops::scim_tokens`).
    scim_tokens: ops::scim_tokens::TokenCache,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("workspace", &self.inner.opened.workspace.name)
            .field("engine", &self.inner.engine.is_some())
            .finish_non_exhaustive()
    }
}

impl App {
    /// Opens the store, the workspace and its vault, and (when `[entra]` names an app with a
    /// credential) the Graph client and the provisioning engine.
    pub async fn open(config: Config, options: AppOptions) -> Result<App, AppError> {
        let opened = wiring::open(&config).await?;
        let engine = if graph_settings::has_app_credential(&config) {
            let graph = wiring::graph_client(&config)?;
            let actor = if options.engine_actor.is_empty() {
                "system".to_owned()
            } else {
                options.engine_actor.clone()
            };
            Some(wiring::engine(&config, &opened, graph, actor).await?)
        } else {
            None
        };
        Ok(App {
            inner: Arc::new(Inner {
                config,
                opened,
                engine,
                directory_graph: options.directory_graph,
                jobs_queued: tokio::sync::Notify::new(),
                writes_queued: tokio::sync::Notify::new(),
                pepper: tokio::sync::OnceCell::new(),
                sign_in_limiter: auth::SignInLimiter::default(),
                oidc: oidc::OidcState::default(),
                scim_tokens: ops::scim_tokens::TokenCache::default(),
            }),
        })
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn store(&self) -> &Store {
        &self.inner.opened.store
    }

    pub fn workspace(&self) -> &Workspace {
        &self.inner.opened.workspace
    }

    pub fn vault(&self) -> &Vault {
        &self.inner.opened.vault
    }

    /// The provisioning engine, or why there is none.
    pub(crate) fn engine(&self) -> Result<&MicrosoftEngine, AppError> {
        self.inner.engine.as_ref().ok_or_else(|| {
            AppError::NotConfigured(
                "no Entra ID app configured: set [entra] tenant_id, client_id and client_secret (or certificate_file)".into(),
            )
        })
    }

    /// The Graph client for directory reads, TAPs and `doctor`: the one given at open, else the
    /// app's own.
    pub(crate) fn directory_graph(&self) -> Result<DirectoryGraph, AppError> {
        if let Some(given) = &self.inner.directory_graph {
            return Ok(given.clone());
        }
        Ok(DirectoryGraph {
            client: self.engine()?.rp().client.clone(),
            acting: GraphActing::App,
            tenant: graph_settings::tenant(self.config())?,
        })
    }

    /// Graph's request counters for the app's client (requests, 429s, retries).
    pub fn pacing_stats(&self) -> Option<behalf_graph::PacingStats> {
        self.inner
            .engine
            .as_ref()
            .map(|e| e.rp().client.pacing_stats())
    }

    /// The server's background workers, or `None` (said in the log) when no Entra ID app is
    /// configured: then there is nothing they could reach.
    pub fn workers(&self) -> Option<Workers> {
        Workers::new(self.clone())
    }

    pub(crate) fn notify_jobs_queued(&self) {
        self.inner.jobs_queued.notify_waiters();
    }

    pub(crate) fn jobs_queued(&self) -> &tokio::sync::Notify {
        &self.inner.jobs_queued
    }

    pub(crate) fn notify_writes_queued(&self) {
        self.inner.writes_queued.notify_waiters();
    }

    pub(crate) fn writes_queued(&self) -> &tokio::sync::Notify {
        &self.inner.writes_queued
    }

    /// Appends an audit event: every state change an admin makes is one.
    pub(crate) async fn audit(
        &self,
        actor: String,
        action: behalf_domain::EventAction,
        outcome: behalf_domain::Outcome,
        detail: behalf_domain::EventDetail,
    ) -> Result<(), AppError> {
        self.store()
            .append_event(
                self.workspace().id,
                behalf_domain::NewEvent::new(actor, action, outcome).detail(detail),
            )
            .await?;
        Ok(())
    }

    /// Jobs and items by state, for `/metrics`.
    pub async fn state_counts(&self) -> Result<StateCounts, AppError> {
        let (jobs, items) = self.store().state_counts(self.workspace().id).await?;
        Ok(StateCounts { jobs, items })
    }

    /// Closes the database pool (after the last operation).
    pub async fn close(&self) {
        self.store().close().await;
    }
}
