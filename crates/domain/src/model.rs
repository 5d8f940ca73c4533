//! Entities as the rest of Behalf sees them.

use serde::{Deserialize, Serialize};

use crate::{
    AdminId, ConnectionId, ConnectionKind, DomainError, EventAction, EventId, GroupId, ItemId,
    ItemState, JobId, JobState, Lifecycle, Millis, Outcome, PasskeyId, PasskeyState, Role,
    SecurityKeyId, SecurityKeyKind, SecurityKeyState, SessionId, TokenId, TokenKind, TokenScope,
    UserId, WorkspaceId,
};

/// The relying party id Microsoft Entra ID registers passkeys on.
pub const MICROSOFT_RP_ID: &str = "login.microsoft.com";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub name: String,
    pub created_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admin {
    pub id: AdminId,
    pub workspace_id: WorkspaceId,
    pub username: String,
    pub role: Role,
    /// Only owners and admins with this permission may create, change or provision users.
    pub can_edit_users: bool,
    pub created_at: Millis,
}

impl Admin {
    pub fn may_provision(&self) -> bool {
        match self.role {
            Role::Owner => true,
            Role::Admin => self.can_edit_users,
            Role::Viewer => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryConnection {
    pub id: ConnectionId,
    pub workspace_id: WorkspaceId,
    pub kind: ConnectionKind,
    pub name: String,
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub graph_base_url: Option<String>,
    pub login_base_url: Option<String>,
    pub users_delta_link: Option<String>,
    pub groups_delta_link: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A user principal name, validated and kept as the directory spelled it.
///
/// Entra ID compares UPNs case-insensitively, so [`Upn::key`] is what uniqueness is checked on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Upn(String);

impl Upn {
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        let text = text.trim();
        let invalid = |reason: &str| DomainError::Invalid {
            field: "userPrincipalName",
            reason: format!("{text:?} {reason}"),
        };
        if text.is_empty() {
            return Err(invalid("is empty"));
        }
        if text.len() > 113 {
            return Err(invalid("is longer than 113 characters"));
        }
        let Some((local, domain)) = text.split_once('@') else {
            return Err(invalid("has no '@'"));
        };
        if local.is_empty() || domain.is_empty() || domain.contains('@') {
            return Err(invalid("is not of the form alias@domain"));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("contains white space or control characters"));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-folded form uniqueness is checked on.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl std::str::FromStr for Upn {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Upn::parse(s)
    }
}

impl TryFrom<String> for Upn {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Upn::parse(&value)
    }
}

impl From<Upn> for String {
    fn from(value: Upn) -> Self {
        value.0
    }
}

impl std::fmt::Display for Upn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub workspace_id: WorkspaceId,
    pub connection_id: Option<ConnectionId>,
    /// The directory's immutable id (Entra object id, SCIM externalId).
    pub external_id: Option<String>,
    pub upn: Upn,
    pub display_name: String,
    pub mail: Option<String>,
    pub department: Option<String>,
    pub enabled: bool,
    pub lifecycle: Lifecycle,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// What an importer or an admin knows about a user; the store fills in ids and timestamps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDraft {
    pub connection_id: Option<ConnectionId>,
    pub external_id: Option<String>,
    pub upn: Upn,
    pub display_name: String,
    pub mail: Option<String>,
    pub department: Option<String>,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub id: GroupId,
    pub workspace_id: WorkspaceId,
    pub connection_id: Option<ConnectionId>,
    pub external_id: Option<String>,
    pub display_name: String,
    pub description: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupDraft {
    pub connection_id: Option<ConnectionId>,
    pub external_id: Option<String>,
    pub display_name: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityKey {
    pub id: SecurityKeyId,
    pub workspace_id: WorkspaceId,
    pub user_id: UserId,
    pub kind: SecurityKeyKind,
    pub state: SecurityKeyState,
    pub label: String,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// One credential on one relying party for one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passkey {
    pub id: PasskeyId,
    pub workspace_id: WorkspaceId,
    pub user_id: UserId,
    pub security_key_id: SecurityKeyId,
    pub rp_id: String,
    pub credential_id: Vec<u8>,
    pub public_key_cose: Vec<u8>,
    pub aaguid: String,
    /// The relying party's own id for it (the Graph fido2AuthenticationMethod id).
    pub rp_method_id: Option<String>,
    pub state: PasskeyState,
    pub created_by: String,
    pub created_at: Millis,
    pub registered_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub workspace_id: WorkspaceId,
    pub rp_id: String,
    /// Engine options as JSON (display name template, attestation, concurrency, ...).
    pub options: serde_json::Value,
    pub state: JobState,
    pub created_by: String,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub id: ItemId,
    pub job_id: JobId,
    pub workspace_id: WorkspaceId,
    pub user_id: UserId,
    pub state: ItemState,
    pub reason: Option<String>,
    pub error_code: Option<String>,
    pub request_id: Option<String>,
    pub attempts: i64,
    pub passkey_id: Option<PasskeyId>,
    /// The manual path's Temporary Access Pass, once issued and mailed (never the pass itself).
    pub pass: Option<ItemPass>,
    pub updated_at: Millis,
}

/// A Temporary Access Pass the manual path issued and mailed for an item: Graph's id for it and
/// its lifetime, recorded in the commit that moves the item to `waiting_for_user`, so that a
/// re-run knows the pass went out (and does not mail again) and when it stops working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemPass {
    /// Graph's `temporaryAccessPassAuthenticationMethod` id.
    pub method_id: String,
    /// When Graph issued it: a passkey created before this is not the user's answer to it.
    pub issued_at: Millis,
    pub expires_at: Millis,
}

/// What an item's next state records beside the state itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemOutcome {
    pub reason: Option<String>,
    pub error_code: Option<String>,
    pub request_id: Option<String>,
    pub passkey_id: Option<PasskeyId>,
}

/// An append-only audit row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    pub workspace_id: WorkspaceId,
    pub at: Millis,
    /// Who did it: `admin:<name>`, `cli:<os user>`, `scim:<connection>`, `system`.
    pub actor: String,
    pub action: EventAction,
    pub user_id: Option<UserId>,
    pub rp_id: Option<String>,
    pub outcome: Outcome,
    pub detail: EventDetail,
}

/// What an event says beyond who, what, whom and when. The fields the report shows have names
/// of their own, so that every writer fills the same ones the report reads; anything else an
/// event wants to keep goes in `extra`. Stored as one JSON object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventDetail {
    /// The user's UPN (or the id the caller named them by) at the time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    /// Why it failed or was skipped, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The relying party's error code (Graph's `error.code`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// The relying party's request id (Graph's `innerError.request-id`), for its support.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passkey_id: Option<String>,
    /// The relying party's id for the passkey (Graph's fido2AuthenticationMethod id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rp_method_id: Option<String>,
    /// Which process did it (`host:pid:random`), when several share the work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl EventDetail {
    pub fn upn(upn: impl Into<String>) -> Self {
        EventDetail {
            upn: Some(upn.into()),
            ..EventDetail::default()
        }
    }

    /// Adds `key` to [`EventDetail::extra`] (a value that cannot be serialised is left out).
    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        if let Ok(v) = serde_json::to_value(value) {
            self.extra.insert(key.to_owned(), v);
        }
        self
    }
}

/// An event before the store gives it an id and a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub actor: String,
    pub action: EventAction,
    pub user_id: Option<UserId>,
    pub rp_id: Option<String>,
    pub outcome: Outcome,
    pub detail: EventDetail,
}

impl NewEvent {
    pub fn new(actor: impl Into<String>, action: EventAction, outcome: Outcome) -> Self {
        Self {
            actor: actor.into(),
            action,
            user_id: None,
            rp_id: None,
            outcome,
            detail: EventDetail::default(),
        }
    }

    pub fn user(mut self, user_id: UserId) -> Self {
        self.user_id = Some(user_id);
        self
    }

    pub fn rp(mut self, rp_id: impl Into<String>) -> Self {
        self.rp_id = Some(rp_id.into());
        self
    }

    pub fn detail(mut self, detail: EventDetail) -> Self {
        self.detail = detail;
        self
    }
}

/// An administrator's signed-in panel session. The session's token and CSRF token are known to
/// the browser only; the store keeps their hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminSession {
    pub id: SessionId,
    pub admin_id: AdminId,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub last_seen_at: Millis,
}

/// A revocable bearer token for `/api/v1`, acting as its admin within `scope`. The token itself
/// is shown once; the store keeps its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: TokenId,
    pub admin_id: AdminId,
    pub name: String,
    pub scope: TokenScope,
    pub kind: TokenKind,
    pub created_at: Millis,
    pub expires_at: Option<Millis>,
    pub last_used_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
}
