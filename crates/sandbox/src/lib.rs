//! Behalf's sandbox tenant: a local Microsoft Entra ID token endpoint and Microsoft Graph that
//! behave as Microsoft documents, including the refusals (a peer that says no, not a mock that
//! says yes). It verifies passkey registrations with webauthn-rs-core and never uses Behalf's own
//! authenticator or Graph client: it is the independent peer they are tested against.
//!
//! ```no_run
//! # async fn demo() -> Result<(), behalf_sandbox::StartError> {
//! let sandbox = behalf_sandbox::Sandbox::start(behalf_sandbox::SandboxConfig::default()).await?;
//! let token_url = format!("{}/{}/oauth2/v2.0/token", sandbox.login_url(), sandbox.tenant_id());
//! let users_url = format!("{}/v1.0/users", sandbox.graph_url());
//! # let _ = (token_url, users_url);
//! sandbox.shutdown().await;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod admin;
mod authmethods;
mod certs;
mod config;
mod delta;
mod errors;
mod groups;
mod login_page;
mod oauth;
mod odata;
mod oidc;
mod passwords;
mod policy;
pub mod scim_push;
mod seed;
mod selfservice;
mod server;
mod signin;
mod state;
mod tap_policy;
mod taps;
mod throttle;
mod users;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;
use webauthn_rs_core::proto::AttestationCaList;

pub use config::{
    ADMIN_UPN, AppRegistration, Args, CLI_CLIENT_ID, CredentialIdEncoding, DOMAIN, Knobs,
    PROVISIONING_CLIENT_ID, PROVISIONING_CLIENT_SECRET, READER_CLIENT_ID, READER_CLIENT_SECRET,
    SIGNIN_CLIENT_ID, SIGNIN_CLIENT_SECRET, SandboxConfig, TENANT_ID, default_apps,
};
pub use errors::SandboxError;
pub use scim_push::{
    ConnectionError, Counts, CycleKind, CycleReport, PushAction, PushFailure, PushObject,
    PushOptions, SandboxCommand, ScimPush, ScimPushArgs,
};
pub use state::{Fido2Policy, KeyRestrictions};

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error("cannot read the state file {path}: {source}")]
    StateFile {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid attestation root certificate: {0}")]
    AttestationRoot(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The `https://login.microsoft.com` sign-in page could not start (its certificates, its port).
    #[error("cannot start the sign-in page: {0}")]
    LoginPage(String),
    /// `behalf sandbox scim-push`: the SCIM endpoint failed the configuration check or the
    /// connection test.
    #[error("{0}")]
    ScimPush(String),
}

/// A running sandbox. Dropping it stops the server (without saving); prefer [`Sandbox::shutdown`].
#[derive(Debug)]
pub struct Sandbox {
    addr: SocketAddr,
    shared: Arc<state::Shared>,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
    saver: Option<JoinHandle<()>>,
    login_page: Option<login_page::LoginPage>,
    startup: Duration,
}

impl Sandbox {
    /// Seeds (or loads) the tenant and starts serving on 127.0.0.1 (port 0 = any free port).
    pub async fn start(config: SandboxConfig) -> Result<Sandbox, StartError> {
        let t0 = Instant::now();
        let listener = TcpListener::bind(("127.0.0.1", config.port))
            .await
            .map_err(|source| StartError::Bind {
                port: config.port,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            port: config.port,
            source,
        })?;
        let base_url = format!("http://{addr}");

        let mut cas: Option<AttestationCaList> = None;
        for pem in &config.attestation_roots_pem {
            let one = AttestationCaList::try_from(pem.as_bytes())
                .map_err(|e| StartError::AttestationRoot(format!("{e:?}")))?;
            cas.get_or_insert_with(AttestationCaList::default)
                .union(&one);
        }
        let origin =
            url::Url::parse(authmethods::ORIGIN).map_err(|e| StartError::Config(e.to_string()))?;

        let loaded = match &config.state_file {
            Some(path) => state::load_directory(path).map_err(|source| StartError::StateFile {
                path: path.display().to_string(),
                source,
            })?,
            None => None,
        };
        let now = state::Clock::default().now_ms();
        let cfg = config.clone();
        let dir = match loaded {
            Some(d) => d,
            None => tokio::task::spawn_blocking(move || seed::seed(&cfg, now))
                .await
                .map_err(|e| StartError::Config(e.to_string()))?,
        };
        // The apps as the tenant shows them (`/sandbox/info`): certificates as public PEM only,
        // whatever came next to them (a PEM file with the private key, say).
        let mut config = config;
        let mut config_certificates = Vec::new();
        for app in &mut config.apps {
            let mut public = Vec::with_capacity(app.certificates.len());
            for (i, pem) in app.certificates.iter().enumerate() {
                let cert = certs::AppCertificate::parse(pem, Uuid::new_v4()).map_err(|e| {
                    StartError::Config(format!(
                        "certificate {} of app '{}' ({}): {e}",
                        i + 1,
                        app.name,
                        app.client_id
                    ))
                })?;
                public.push(cert.pem());
                config_certificates.push((app.client_id, cert));
            }
            app.certificates = public;
        }
        let shared = Arc::new(state::new_shared(
            &config,
            base_url,
            dir,
            cas,
            origin,
            config_certificates,
        ));
        if config.state_file.is_some() {
            shared.dirty.store(true, Ordering::Relaxed);
        }
        let (stop, stop_rx) = watch::channel(false);
        let server = tokio::spawn(server::serve(listener, shared.clone(), stop_rx.clone()));
        let login_page = if config.login_page {
            Some(
                login_page::start(shared.clone(), stop_rx.clone())
                    .await
                    .map_err(StartError::LoginPage)?,
            )
        } else {
            None
        };
        let saver = config.state_file.as_ref().map(|_| {
            let shared = shared.clone();
            let mut stop_rx = stop_rx;
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                        _ = stop_rx.changed() => break,
                    }
                    if shared.dirty.load(Ordering::Relaxed) {
                        let s = shared.clone();
                        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || s.persist()).await {
                            tracing::warn!(error = %e, "sandbox: saving the state file failed");
                        }
                    }
                }
            })
        });
        Ok(Sandbox {
            addr,
            shared,
            stop,
            server: Some(server),
            saver,
            login_page,
            startup: t0.elapsed(),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }
    /// The login base (as `https://login.microsoftonline.com`): the token endpoint is
    /// `{login_url}/{tenant}/oauth2/v2.0/token`.
    pub fn login_url(&self) -> String {
        self.shared.base_url.clone()
    }
    /// The Graph base (as `https://graph.microsoft.com`): `{graph_url}/v1.0/users`.
    pub fn graph_url(&self) -> String {
        self.shared.base_url.clone()
    }
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
    /// Where the `https://login.microsoft.com` sign-in page listens (127.0.0.1, a free port),
    /// when [`SandboxConfig::login_page`] asked for it. A browser maps the name there
    /// (Chromium: `--host-resolver-rules="MAP login.microsoft.com 127.0.0.1:PORT"`) so the page's
    /// origin stays `https://login.microsoft.com`.
    pub fn login_page_addr(&self) -> Option<SocketAddr> {
        self.login_page.as_ref().map(|p| p.addr)
    }
    /// The certificate (PEM) of the test CA that issued the sign-in page's certificate, made
    /// when the sandbox started: a browser must trust it, as Chromium refuses WebAuthn on a page
    /// with a certificate error. Only the certificate: its key never leaves the sandbox.
    pub fn login_ca_pem(&self) -> Option<&str> {
        self.login_page.as_ref().map(|p| p.ca_pem.as_str())
    }
    pub fn tenant_id(&self) -> Uuid {
        self.shared.tenant_id
    }
    /// The token endpoint, ready to post to.
    pub fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.login_url(),
            self.tenant_id()
        )
    }
    /// Client id of the seeded provisioning app (all the permissions Behalf needs).
    pub fn client_id(&self) -> Uuid {
        PROVISIONING_CLIENT_ID
    }
    /// Client secret of the seeded provisioning app.
    pub fn client_secret(&self) -> &str {
        self.shared
            .apps
            .iter()
            .find(|a| a.client_id == PROVISIONING_CLIENT_ID)
            .and_then(|a| a.client_secret.as_deref())
            .unwrap_or(PROVISIONING_CLIENT_SECRET)
    }
    /// All app registrations of the tenant.
    pub fn apps(&self) -> &[AppRegistration] {
        &self.shared.apps
    }
    /// UPN of the seeded administrator (approves device codes).
    pub fn admin_upn(&self) -> String {
        self.shared
            .read()
            .users
            .first()
            .map(|u| u.upn.clone())
            .unwrap_or_else(|| ADMIN_UPN.into())
    }
    /// How long seeding / loading and binding took.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }
    /// Signs an access token for the seeded provisioning app without an HTTP round trip.
    pub fn app_token(&self) -> Result<String, SandboxError> {
        let app = self
            .shared
            .app(PROVISIONING_CLIENT_ID)
            .cloned()
            .ok_or_else(|| SandboxError::Internal("no provisioning app".into()))?;
        oauth::mint(
            &self.shared,
            &self.shared.tenant_id.to_string(),
            app.client_id,
            None,
            &app.app_roles,
            self.shared.token_lifetime_secs,
        )
    }
    /// The UPNs of the tenant's users that are not deleted, in storage order.
    pub fn user_principal_names(&self) -> Vec<String> {
        self.shared
            .read()
            .users
            .iter()
            .filter(|u| u.life == state::Life::Active)
            .map(|u| u.upn.clone())
            .collect()
    }
    /// Takes users out of the SCIM provisioning scope (`in_scope` false: unassigned from the app
    /// Entra provisions, so its provisioning service deletes them there) or puts them back, by
    /// UPN. Returns how many changed; an unknown UPN changes nothing and is named in the error.
    pub fn set_provisioning_scope(
        &self,
        upns: &[String],
        in_scope: bool,
    ) -> Result<usize, SandboxError> {
        let mut dir = self.shared.write();
        let positions = upns
            .iter()
            .map(|upn| {
                dir.find_user_any(upn)
                    .ok_or_else(|| SandboxError::NotFound(upn.clone()))
            })
            .collect::<Result<Vec<u32>, _>>()?;
        let mut changed = 0;
        for pos in positions {
            let now_in = !dir.scim_out_of_scope.contains(&pos);
            if now_in != in_scope {
                if in_scope {
                    dir.scim_out_of_scope.remove(&pos);
                } else {
                    dir.scim_out_of_scope.insert(pos);
                }
                dir.scim_scope_log.push(pos);
                changed += 1;
            }
        }
        Ok(changed)
    }
    /// Saves the state file now (no-op without one).
    pub fn save(&self) -> std::io::Result<()> {
        self.shared.persist()
    }
    /// Stops serving and saves the state file.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(s) = self.server.take() {
            let _ = s.await;
        }
        if let Some(s) = self.saver.take() {
            let _ = s.await;
        }
        if let Some(s) = self.login_page.as_mut().and_then(|p| p.task.take()) {
            let _ = s.await;
        }
        let shared = self.shared.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || shared.persist()).await {
            tracing::warn!(error = %e, "sandbox: saving the state file failed");
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// `behalf sandbox …`: starts the sandbox, prints its URLs and credentials, serves until Ctrl+C.
pub async fn run(args: Args) -> Result<(), StartError> {
    let mut config = args.to_config();
    for path in &args.app_certificate {
        let pem = std::fs::read_to_string(path).map_err(|e| {
            StartError::Config(format!(
                "cannot read the certificate {}: {e}",
                path.display()
            ))
        })?;
        if let Some(app) = config
            .apps
            .iter_mut()
            .find(|a| a.client_id == PROVISIONING_CLIENT_ID)
        {
            app.certificates.push(pem);
        }
    }
    let sandbox = Sandbox::start(config).await?;
    print_banner(&sandbox, args.command.is_none());
    let outcome = match &args.command {
        Some(scim_push::SandboxCommand::ScimPush(push)) => {
            scim_push::run_command(&sandbox, push).await
        }
        None => {
            let _ = tokio::signal::ctrl_c().await;
            Ok(())
        }
    };
    sandbox.shutdown().await;
    outcome.map_err(StartError::ScimPush)
}

#[allow(clippy::print_stdout)] // printing the URLs and credentials is this command's job
fn print_banner(s: &Sandbox, serving: bool) {
    let dir = s.shared.read();
    println!(
        "Behalf sandbox tenant ({} users, {} groups) started in {:.2?}",
        dir.users.len(),
        dir.groups.len(),
        s.startup
    );
    drop(dir);
    println!("  login (token endpoint): {}", s.token_url());
    println!(
        "  device code endpoint:   {}/{}/oauth2/v2.0/devicecode",
        s.login_url(),
        s.tenant_id()
    );
    println!(
        "  OpenID Connect:         {}/{}/v2.0/.well-known/openid-configuration (sign-in app {}, login_hint = a user)",
        s.login_url(),
        s.tenant_id(),
        SIGNIN_CLIENT_ID
    );
    println!(
        "  graph:                  {}/v1.0  and  {}/beta",
        s.graph_url(),
        s.graph_url()
    );
    println!(
        "  sandbox admin:          {}/sandbox/state  {}/sandbox/device",
        s.base_url(),
        s.base_url()
    );
    println!("  tenant id:              {}", s.tenant_id());
    for app in s.apps() {
        match &app.client_secret {
            Some(secret) => println!(
                "  app {:<20} client id {}  secret {}  roles {}",
                app.name,
                app.client_id,
                secret,
                app.app_roles.join(",")
            ),
            None => println!(
                "  app {:<20} client id {}  (public client, device code)",
                app.name, app.client_id
            ),
        }
    }
    for (client_id, cert) in &s.shared.config_certificates {
        println!(
            "  certificate {} on app {client_id} (x5t#S256 {})",
            cert.thumbprint, cert.x5t_s256
        );
    }
    println!(
        "  more certificates:      POST {}/sandbox/apps/{{clientId}}/certificates (PEM)",
        s.base_url()
    );
    println!("  admin user:             {}", s.admin_upn());
    if serving {
        println!("Press Ctrl+C to stop.");
    }
}
