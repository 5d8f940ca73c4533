//! Directory connections: adding an Entra ID tenant, testing it, importing users, groups and
//! memberships from it.
//!
//! A connection added here carries its own app (tenant, client id, and a client secret or a
//! certificate sealed by the vault); a connection without one (the configured `[sync]
//! connection`, the sandbox's) uses the app from `[entra]`.

use std::sync::Arc;

use behalf_directory::{ImportMode, ImportOptions, ImportSummary, Progress};
use behalf_domain::{
    ConnectionKind, DirectoryConnection, EventAction, EventDetail, Outcome, Secret,
};
use behalf_graph::{CertificateCredential, Credential, GraphClient};
use behalf_store::ConnectionTarget;

use crate::{AppError, DirectoryGraph, GraphActing, Operator, graph_settings};

/// The vault secret holding a connection's client secret.
fn client_secret_name(connection: &DirectoryConnection) -> String {
    format!("connection/{}/client-secret", connection.id)
}

/// The vault secret holding a connection's certificate and private key (PEM).
fn certificate_name(connection: &DirectoryConnection) -> String {
    format!("connection/{}/certificate", connection.id)
}

/// How a new connection's app proves itself to Entra ID.
pub enum AppCredential {
    ClientSecret(Secret),
    /// The certificate and its RSA private key, PEM, as `entra.certificate_file` holds them.
    Certificate(Secret),
}

impl std::fmt::Debug for AppCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AppCredential::ClientSecret(_) => "ClientSecret(<hidden>)",
            AppCredential::Certificate(_) => "Certificate(<hidden>)",
        })
    }
}

/// An Entra ID tenant to connect, with the app registration Behalf signs in as.
#[derive(Debug)]
pub struct NewEntraConnection {
    pub name: String,
    pub tenant_id: String,
    pub client_id: String,
    pub credential: AppCredential,
}

/// A GUID as Entra ID writes tenant and client ids: 8-4-4-4-12 hex digits.
fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

fn check_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    if name.is_empty()
        || name.len() > 100
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(AppError::invalid(
            "name",
            "give the connection a short name: letters, digits, '-', '_' or '.' (up to 100)",
        ));
    }
    Ok(name.to_owned())
}

fn check_tenant(tenant: &str) -> Result<String, AppError> {
    let tenant = tenant.trim();
    // A tenant is named by its id or one of its domains (contoso.onmicrosoft.com).
    let domain = tenant.contains('.')
        && tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'));
    if is_guid(tenant) || domain {
        Ok(tenant.to_ascii_lowercase())
    } else {
        Err(AppError::invalid(
            "tenant_id",
            format!(
                "{tenant:?} is neither a tenant id (a GUID) nor a domain (contoso.onmicrosoft.com)"
            ),
        ))
    }
}

impl Operator<'_> {
    /// Connects an Entra ID tenant: the connection is recorded and the app's credential sealed
    /// by the vault (never stored in clear). The credential is tried before anything is
    /// saved, so a wrong secret is said now rather than at the first import.
    pub async fn add_entra_connection(
        &self,
        new: NewEntraConnection,
    ) -> Result<ConnectionView, AppError> {
        let name = check_name(&new.name)?;
        let tenant = check_tenant(&new.tenant_id)?;
        let client_id = new.client_id.trim().to_ascii_lowercase();
        if !is_guid(&client_id) {
            return Err(AppError::invalid(
                "client_id",
                "the application (client) id is a GUID: copy it from the app registration's overview",
            ));
        }
        let store = self.app.store();
        let workspace = self.app.workspace().id;
        if store
            .list_connections(workspace)
            .await?
            .iter()
            .any(|c| c.name == name)
        {
            return Err(AppError::Conflict(format!(
                "a connection named {name:?} exists already: choose another name"
            )));
        }
        let config = self.app.config();
        let credential = credential(&client_id, &new.credential)?;
        let trimmed = |url: &str| Some(url.trim_end_matches('/').to_owned());
        let target = ConnectionTarget {
            tenant_id: Some(tenant.clone()),
            client_id: Some(client_id.clone()),
            graph_base_url: trimmed(&config.entra.graph_base_url),
            login_base_url: trimmed(&config.entra.login_base_url),
        };
        let client = client_for(self.app, &tenant, credential)?;
        // A token proves the tenant, the app and the credential together.
        client.token_permissions().await?;
        let connection = store
            .ensure_connection(workspace, ConnectionKind::EntraId, &name, &target)
            .await?;
        let (secret_name, bytes) = match &new.credential {
            AppCredential::ClientSecret(s) => (client_secret_name(&connection), s.expose()),
            AppCredential::Certificate(pem) => (certificate_name(&connection), pem.expose()),
        };
        self.app
            .vault()
            .put_secret(&secret_name, bytes.as_bytes())
            .await
            .map_err(AppError::internal)?;
        self.app
            .audit(
                self.actor(),
                EventAction::ConnectionAdded,
                Outcome::Success,
                EventDetail::default()
                    .with("connection", &connection.name)
                    .with("tenant_id", &tenant)
                    .with("client_id", &client_id)
                    .with(
                        "credential",
                        match new.credential {
                            AppCredential::ClientSecret(_) => "client secret",
                            AppCredential::Certificate(_) => "certificate",
                        },
                    ),
            )
            .await?;
        Ok(view(config, &connection, true))
    }

    /// The Graph client for `connection`: its own sealed app credential when it has one, else
    /// the configured app (`[entra]`).
    pub(crate) async fn graph_for(
        &self,
        connection: &str,
    ) -> Result<(DirectoryGraph, bool), AppError> {
        let store = self.app.store();
        let found = store
            .list_connections(self.app.workspace().id)
            .await?
            .into_iter()
            .find(|c| c.name == connection);
        if let Some(c) = found
            && let (Some(tenant), Some(client_id)) = (&c.tenant_id, &c.client_id)
        {
            let vault = self.app.vault();
            let sealed = |e: behalf_vault::VaultError| AppError::internal(e);
            let credential = if let Some(s) = vault
                .get_secret(&client_secret_name(&c))
                .await
                .map_err(sealed)?
            {
                Some(AppCredential::ClientSecret(Secret::new(
                    String::from_utf8_lossy(s.expose()).into_owned(),
                )))
            } else {
                vault
                    .get_secret(&certificate_name(&c))
                    .await
                    .map_err(sealed)?
                    .map(|pem| {
                        AppCredential::Certificate(Secret::new(
                            String::from_utf8_lossy(pem.expose()).into_owned(),
                        ))
                    })
            };
            if let Some(credential) = credential {
                let client =
                    client_for(self.app, tenant, self::credential(client_id, &credential)?)?;
                return Ok((
                    DirectoryGraph {
                        client,
                        acting: GraphActing::App,
                        tenant: tenant.clone(),
                    },
                    true,
                ));
            }
        }
        Ok((self.app.directory_graph()?, false))
    }

    /// The names of the connections added with an app of their own (the panel's, the API's):
    /// the background sync imports them too.
    pub async fn connections_with_own_app(&self) -> Result<Vec<String>, AppError> {
        let mut names = Vec::new();
        for c in self
            .app
            .store()
            .list_connections(self.app.workspace().id)
            .await?
        {
            if has_own_app(self.app, &c).await? {
                names.push(c.name);
            }
        }
        Ok(names)
    }

    /// Imports from `connection`'s tenant (a full round, or `Delta` since the last one),
    /// reporting pages to `progress`.
    pub async fn import(
        &self,
        connection: &str,
        mode: ImportMode,
        progress: &dyn Progress,
    ) -> Result<ImportSummary, AppError> {
        let (graph, own) = self.graph_for(connection).await?;
        let config = self.app.config();
        let actor = self.graph_actor(&graph.acting);
        let mut target = graph_settings::target(config, &graph.tenant);
        if own
            && let Some(c) = self
                .app
                .store()
                .list_connections(self.app.workspace().id)
                .await?
                .into_iter()
                .find(|c| c.name == connection)
        {
            target.client_id = c.client_id;
        }
        let options = ImportOptions {
            workspace: config.workspace.clone(),
            connection: connection.to_owned(),
            target,
            mode,
            actor,
        };
        Ok(behalf_directory::import(self.app.store(), &graph.client, &options, progress).await?)
    }

    /// Checks that Graph answers for `connection`'s tenant: a token, and its permissions (the
    /// application roles and delegated scopes it carries).
    pub async fn test_connection(&self, connection: &str) -> Result<Vec<String>, AppError> {
        let (graph, _) = self.graph_for(connection).await?;
        let permissions = graph.client.token_permissions().await?;
        Ok(permissions
            .map(|p| p.roles.into_iter().chain(p.scopes).collect())
            .unwrap_or_default())
    }
}

/// Whether `c` was added with an app credential of its own (sealed in the vault).
async fn has_own_app(app: &crate::App, c: &DirectoryConnection) -> Result<bool, AppError> {
    if c.kind != ConnectionKind::EntraId {
        return Ok(false);
    }
    for name in [client_secret_name(c), certificate_name(c)] {
        if app
            .vault()
            .get_secret(&name)
            .await
            .map_err(AppError::internal)?
            .is_some()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

fn credential(client_id: &str, given: &AppCredential) -> Result<Credential, AppError> {
    Ok(match given {
        AppCredential::ClientSecret(secret) => {
            if secret.expose().trim().is_empty() {
                return Err(AppError::invalid(
                    "client_secret",
                    "paste the client secret's value (not its id)",
                ));
            }
            Credential::ClientSecret {
                client_id: client_id.to_owned(),
                secret: Secret::new(secret.expose().trim()),
            }
        }
        AppCredential::Certificate(pem) => Credential::Certificate {
            client_id: client_id.to_owned(),
            certificate: Arc::new(
                CertificateCredential::from_pem(pem.expose().as_bytes())
                    .map_err(|e| AppError::invalid("certificate", e.to_string()))?,
            ),
        },
    })
}

fn client_for(
    app: &crate::App,
    tenant: &str,
    credential: Credential,
) -> Result<GraphClient, AppError> {
    let settings = graph_settings::base_settings(app.config(), tenant, credential)?;
    GraphClient::new(settings)
        .map_err(|e| AppError::NotConfigured(format!("cannot set up the Graph client: {e}")))
}

/// A directory connection as the API lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConnectionView {
    pub id: behalf_domain::ConnectionId,
    pub name: String,
    pub kind: behalf_domain::ConnectionKind,
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub graph_base_url: Option<String>,
    /// Whether a delta import can continue from the last one.
    pub has_delta_link: bool,
    /// Seconds between the server's delta imports (0: off); the same for every connection.
    pub sync_interval_secs: u64,
    /// Added with an app credential of its own (else it uses `[entra]`'s).
    pub own_app: bool,
    /// The server's background sync imports it every `sync_interval_secs` (the configured
    /// `[sync] connection`, and connections with an app of their own, while `[entra]` names an
    /// app so that the workers run).
    pub scheduled: bool,
    pub created_at: behalf_domain::Millis,
    /// The last change: an import's start and end, or the connection's creation.
    pub updated_at: behalf_domain::Millis,
}

fn view(config: &behalf_config::Config, c: &DirectoryConnection, own_app: bool) -> ConnectionView {
    let interval = config.sync.interval_secs;
    ConnectionView {
        own_app,
        scheduled: interval > 0
            && graph_settings::has_app_credential(config)
            && (own_app || c.name == config.sync.connection),
        id: c.id,
        name: c.name.clone(),
        kind: c.kind,
        tenant_id: c.tenant_id.clone(),
        client_id: c.client_id.clone(),
        graph_base_url: c.graph_base_url.clone(),
        has_delta_link: c.users_delta_link.is_some(),
        sync_interval_secs: interval,
        created_at: c.created_at,
        updated_at: c.updated_at,
    }
}

impl crate::Reader<'_> {
    pub async fn connections(&self) -> Result<Vec<ConnectionView>, AppError> {
        let connections = self
            .app
            .store()
            .list_connections(self.app.workspace().id)
            .await?;
        let mut views = Vec::with_capacity(connections.len());
        for c in &connections {
            views.push(view(self.app.config(), c, has_own_app(self.app, c).await?));
        }
        Ok(views)
    }
}
