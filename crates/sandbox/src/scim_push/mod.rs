//! The sandbox tenant as a SCIM client: it pushes its directory to a SCIM 2.0 service provider
//! the way Microsoft Entra ID's provisioning service does
//! (<https://learn.microsoft.com/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups>,
//! <https://learn.microsoft.com/entra/identity/app-provisioning/how-provisioning-works>):
//!
//! - saving the configuration reads `GET /Schemas` ([`ScimPush::save_configuration`]);
//! - "Test connection" asks for a user that cannot exist, `GET /Users?filter=userName eq
//!   "<random guid>"`, and wants 200 with an empty ListResponse ([`ScimPush::test_connection`]);
//! - the **initial cycle** looks every in-scope user up by userName and creates the absent ones
//!   (core + enterprise schema), then looks each group up by displayName
//!   (`excludedAttributes=members`), creates it without members and adds them by `PATCH` in batches;
//! - an **incremental cycle** reads the tenant's change log since the last cycle (what Entra's
//!   provisioning service gets from its own delta): changed attributes are one `Replace` with a
//!   value object and no path, a disabled or soft-deleted user is `{"op":"Replace","path":"active",
//!   "value":"False"}`, a user removed from the provisioning scope or deleted for good is
//!   `DELETE`d, a member removal is `{"op":"Remove","path":"members[value eq \"…\"]"}`.
//!
//! Several requests are in flight at once ([`PushOptions::concurrency`]); a 429 is waited out for
//! its `Retry-After`. What failed is kept in the cycle's report and tried again by the next cycle,
//! as Entra's escrow does.
//!
//! ```no_run
//! # async fn demo(tenant: &behalf_sandbox::Sandbox) {
//! let mut push = behalf_sandbox::ScimPush::new("http://127.0.0.1:8080/scim/v2", "token");
//! push.test_connection().await.unwrap();
//! let report = push.initial_cycle(tenant).await;
//! assert!(report.failures.is_empty(), "{report}");
//! # }
//! ```

mod cli;
mod cycle;
mod groups;
mod http;
mod users;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use uuid::Uuid;

pub(crate) use self::cli::run as run_command;
pub use self::cli::{SandboxCommand, ScimPushArgs};
use self::groups::SentGroup;
use self::http::{LIST_RESPONSE, Scim, quoted};
use self::users::Attrs;

/// How the client behaves.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Members per `Add` / `Remove` PATCH of a group.
    pub member_batch: usize,
    /// Times a 429 is waited out before the answer counts as a failure.
    pub max_retries: u32,
    /// Per request.
    pub timeout: Duration,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            concurrency: 8,
            member_batch: 100,
            max_retries: 5,
            timeout: Duration::from_secs(60),
        }
    }
}

/// Which cycle a report is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CycleKind {
    Initial,
    Incremental,
}

/// What was done to one kind of object in a cycle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub created: usize,
    pub updated: usize,
    /// Users only: sent `active` "False".
    pub disabled: usize,
    pub deleted: usize,
    pub unchanged: usize,
    pub failed: usize,
}

/// The object a failure is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushObject {
    /// By userPrincipalName (the SCIM userName).
    User(String),
    /// By displayName.
    Group(String),
}

/// The request that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushAction {
    Lookup,
    Create,
    Update,
    Disable,
    Delete,
    AddMembers,
    RemoveMembers,
}

/// One refused or failed request, with what the service said (RFC 7644 §3.12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushFailure {
    pub object: PushObject,
    pub action: PushAction,
    /// `None`: no answer (connection refused, timed out, …).
    pub status: Option<u16>,
    /// The error body's `scimType` as the service wrote it (`uniqueness`, `invalidValue`, …).
    pub scim_type: Option<String>,
    pub detail: String,
}

impl fmt::Display for PushFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.object {
            PushObject::User(upn) => write!(f, "user {upn}")?,
            PushObject::Group(name) => write!(f, "group '{name}'")?,
        }
        write!(f, ": {:?} ", self.action)?;
        match self.status {
            Some(s) => write!(f, "answered {s}")?,
            None => write!(f, "got no answer")?,
        }
        if let Some(t) = &self.scim_type {
            write!(f, " ({t})")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// What one cycle did.
#[derive(Debug, Clone)]
pub struct CycleReport {
    pub kind: CycleKind,
    pub users: Counts,
    pub groups: Counts,
    pub members_added: usize,
    pub members_removed: usize,
    pub failures: Vec<PushFailure>,
    /// HTTP requests sent, retries of a 429 included.
    pub requests: u64,
    /// 429 answers waited out.
    pub throttled: u64,
    pub elapsed: Duration,
}

impl fmt::Display for CycleReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = &self.users;
        let g = &self.groups;
        write!(
            f,
            "{:?} cycle in {:.1?}: users {} created, {} updated, {} disabled, {} deleted, {} unchanged, {} failed; \
             groups {} created, {} updated, {} deleted, {} unchanged, {} failed; members {} added, {} removed; \
             {} requests, {} throttled",
            self.kind,
            self.elapsed,
            u.created,
            u.updated,
            u.disabled,
            u.deleted,
            u.unchanged,
            u.failed,
            g.created,
            g.updated,
            g.deleted,
            g.unchanged,
            g.failed,
            self.members_added,
            self.members_removed,
            self.requests,
            self.throttled
        )?;
        for failure in &self.failures {
            write!(f, "\n  {failure}")?;
        }
        Ok(())
    }
}

/// Why the configuration check or the connection test failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("{request}: no answer: {detail}")]
    Unreachable { request: String, detail: String },
    #[error("{request}: answered {status}{}: {detail}", scim_type.as_ref().map(|t| format!(" ({t})")).unwrap_or_default())]
    Refused {
        request: String,
        status: u16,
        scim_type: Option<String>,
        detail: String,
    },
    #[error("{request}: {what}")]
    Unexpected { request: String, what: String },
}

/// What was last sent for a user.
#[derive(Debug, Clone)]
pub(crate) struct SentUser {
    pub scim_id: String,
    pub upn: String,
    pub attrs: Attrs,
    pub active: bool,
}

/// Where the last cycle stopped reading the tenant's logs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark {
    pub changes: usize,
    pub scope: usize,
}

/// A provisioning job from the sandbox tenant to one SCIM endpoint. It remembers what it sent
/// (the service's ids, the attributes, the members), as Entra's provisioning service does, so an
/// incremental cycle sends only what changed.
pub struct ScimPush {
    scim: Arc<Scim>,
    options: PushOptions,
    users: HashMap<Uuid, SentUser>,
    groups: HashMap<Uuid, SentGroup>,
    mark: Option<Mark>,
    /// Objects whose last attempt failed: the next incremental cycle tries them again.
    retry_users: BTreeSet<Uuid>,
    retry_groups: BTreeSet<Uuid>,
}

impl fmt::Debug for ScimPush {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScimPush")
            .field("scim", &self.scim)
            .field("users", &self.users.len())
            .field("groups", &self.groups.len())
            .field("mark", &self.mark)
            .finish()
    }
}

impl ScimPush {
    /// `base_url` is the SCIM root (`…/scim/v2`); `token` the bearer token Behalf gave the
    /// connection ("Secret Token" in Entra's provisioning settings).
    pub fn new(base_url: impl AsRef<str>, token: impl Into<String>) -> ScimPush {
        ScimPush::with_options(base_url, token, PushOptions::default())
    }

    pub fn with_options(
        base_url: impl AsRef<str>,
        token: impl Into<String>,
        options: PushOptions,
    ) -> ScimPush {
        let scim = Scim::new(
            base_url.as_ref(),
            token.into(),
            options.max_retries,
            options.timeout,
        );
        ScimPush {
            scim: Arc::new(scim),
            options,
            users: HashMap::new(),
            groups: HashMap::new(),
            mark: None,
            retry_users: BTreeSet::new(),
            retry_groups: BTreeSet::new(),
        }
    }

    /// Saving the provisioning configuration: Entra reads `GET /Schemas` every time. The answer
    /// must be 200 with a ListResponse that describes the core User schema.
    pub async fn save_configuration(&self) -> Result<(), ConnectionError> {
        let request = "GET /Schemas".to_string();
        let answer = self.get(&request, "/Schemas", &[]).await?;
        let resources = answer.body.get("Resources").and_then(|r| r.as_array());
        let has_user = resources.is_some_and(|r| {
            r.iter()
                .any(|s| s.get("id").and_then(|i| i.as_str()) == Some(users::USER_SCHEMA))
        });
        if !has_user {
            return Err(ConnectionError::Unexpected {
                request,
                what: format!("no schema {} in the answer's Resources", users::USER_SCHEMA),
            });
        }
        Ok(())
    }

    /// "Test connection": `GET /Users?filter=userName eq "<random guid>"` must answer 200 with an
    /// empty ListResponse.
    pub async fn test_connection(&self) -> Result<(), ConnectionError> {
        let filter = format!("userName eq {}", quoted(&Uuid::new_v4().to_string()));
        let request = format!("GET /Users?filter={filter}");
        let answer = self
            .get(&request, "/Users", &[("filter", filter.as_str())])
            .await?;
        let schemas_ok = answer
            .body
            .get("schemas")
            .and_then(|s| s.as_array())
            .is_some_and(|s| s.iter().any(|v| v.as_str() == Some(LIST_RESPONSE)));
        let total = answer.body.get("totalResults").and_then(|t| t.as_u64());
        let empty = answer
            .body
            .get("Resources")
            .and_then(|r| r.as_array())
            .is_none_or(Vec::is_empty);
        if !schemas_ok || total != Some(0) || !empty {
            return Err(ConnectionError::Unexpected {
                request,
                what: format!(
                    "wanted an empty ListResponse (totalResults 0), got {}",
                    answer.body
                ),
            });
        }
        Ok(())
    }

    async fn get(
        &self,
        request: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<http::Answer, ConnectionError> {
        let answer = self
            .scim
            .send(Method::GET, path, query, None)
            .await
            .map_err(|detail| ConnectionError::Unreachable {
                request: request.to_string(),
                detail,
            })?;
        if answer.status != 200 {
            return Err(ConnectionError::Refused {
                request: request.to_string(),
                status: answer.status,
                scim_type: answer.scim_type(),
                detail: answer.detail(),
            });
        }
        Ok(answer)
    }

    /// Users the service holds for this job (created or matched, not deleted since).
    pub fn provisioned_users(&self) -> usize {
        self.users.len()
    }

    /// Groups the service holds for this job.
    pub fn provisioned_groups(&self) -> usize {
        self.groups.len()
    }

    /// The service's `id` of a tenant user, by UPN, once provisioned.
    pub fn scim_id_of(&self, upn: &str) -> Option<&str> {
        self.users
            .values()
            .find(|u| u.upn.eq_ignore_ascii_case(upn))
            .map(|u| u.scim_id.as_str())
    }
}
