//! What the API answers: plain JSON shapes with their OpenAPI schemas, built from the
//! application layer's types (so the store's and the domain's types can change without
//! changing the API).

use behalf_app::ops::jobs::JobView;
use behalf_app::ops::provision::FailureRow;
use behalf_app::ops::report::ReportRow;
use behalf_domain::{Admin, ItemState, Passkey, SecurityKey, User, format_millis};
use behalf_store::{JobItemRow, UserListRow};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminDto {
    pub id: String,
    pub email: String,
    pub role: String,
    pub can_edit_users: bool,
}

impl From<&Admin> for AdminDto {
    fn from(a: &Admin) -> Self {
        AdminDto {
            id: a.id.to_string(),
            email: a.username.clone(),
            role: a.role.to_string(),
            can_edit_users: a.can_edit_users,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserDto {
    pub id: String,
    pub upn: String,
    pub display_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// The directory's immutable id (Entra object id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub enabled: bool,
    pub lifecycle: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&User> for UserDto {
    fn from(u: &User) -> Self {
        UserDto {
            id: u.id.to_string(),
            upn: u.upn.to_string(),
            display_name: u.display_name.clone(),
            mail: u.mail.clone(),
            department: u.department.clone(),
            external_id: u.external_id.clone(),
            enabled: u.enabled,
            lifecycle: u.lifecycle.to_string(),
            created_at: format_millis(u.created_at),
            updated_at: format_millis(u.updated_at),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserSummaryDto {
    #[serde(flatten)]
    pub user: UserDto,
    pub has_passkey: bool,
    pub passkeys: i64,
    pub key_kinds: Vec<String>,
}

impl From<&UserListRow> for UserSummaryDto {
    fn from(r: &UserListRow) -> Self {
        UserSummaryDto {
            user: UserDto::from(&r.user),
            has_passkey: r.has_passkey,
            passkeys: r.passkeys,
            key_kinds: r.key_kinds.iter().map(ToString::to_string).collect(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserPageDto {
    pub users: Vec<UserSummaryDto>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupDto {
    pub id: String,
    pub display_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SecurityKeyDto {
    pub id: String,
    pub kind: String,
    pub state: String,
    pub label: String,
    pub created_at: String,
}

impl From<&SecurityKey> for SecurityKeyDto {
    fn from(k: &SecurityKey) -> Self {
        SecurityKeyDto {
            id: k.id.to_string(),
            kind: k.kind.to_string(),
            state: k.state.to_string(),
            label: k.label.clone(),
            created_at: format_millis(k.created_at),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PasskeyDto {
    pub id: String,
    pub rp_id: String,
    pub aaguid: String,
    /// The relying party's id for it (Graph's fido2AuthenticationMethod id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rp_method_id: Option<String>,
    pub state: String,
    pub security_key_id: String,
    pub created_by: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registered_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

impl From<&Passkey> for PasskeyDto {
    fn from(p: &Passkey) -> Self {
        PasskeyDto {
            id: p.id.to_string(),
            rp_id: p.rp_id.clone(),
            aaguid: p.aaguid.clone(),
            rp_method_id: p.rp_method_id.clone(),
            state: p.state.to_string(),
            security_key_id: p.security_key_id.to_string(),
            created_by: p.created_by.clone(),
            created_at: format_millis(p.created_at),
            registered_at: p.registered_at.map(format_millis),
            revoked_at: p.revoked_at.map(format_millis),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserDetailsDto {
    pub user: UserDto,
    pub groups: Vec<GroupDto>,
    pub security_keys: Vec<SecurityKeyDto>,
    pub passkeys: Vec<PasskeyDto>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobCountsDto {
    pub pending: i64,
    pub options_fetched: i64,
    pub credential_created: i64,
    /// The manual path: a pass was mailed; the user has not registered a passkey yet.
    pub waiting_for_user: i64,
    pub registered: i64,
    pub failed: i64,
    pub skipped: i64,
    pub total: i64,
    /// Items not yet registered, failed or skipped.
    pub open: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobDto {
    pub id: String,
    pub kind: String,
    /// `on_behalf` or `manual` (the users register a passkey themselves with a mailed pass).
    pub mode: String,
    pub rp_id: String,
    pub state: String,
    /// True when nothing is left to do.
    pub finished: bool,
    pub created_by: String,
    pub created_at: String,
    pub counts: JobCountsDto,
}

impl From<&JobView> for JobDto {
    fn from(v: &JobView) -> Self {
        let c = &v.counts;
        JobDto {
            id: v.job.id.to_string(),
            kind: v.kind(),
            mode: behalf_domain::JobMode::of_options(&v.job.options)
                .map(|m| m.to_string())
                .unwrap_or_else(|e| e.to_string()),
            rp_id: v.job.rp_id.clone(),
            state: v.job.state.to_string(),
            finished: v.finished(),
            created_by: v.job.created_by.clone(),
            created_at: format_millis(v.job.created_at),
            counts: JobCountsDto {
                pending: c.get(ItemState::Pending),
                options_fetched: c.get(ItemState::OptionsFetched),
                credential_created: c.get(ItemState::CredentialCreated),
                waiting_for_user: c.get(ItemState::WaitingForUser),
                registered: c.get(ItemState::Registered),
                failed: c.get(ItemState::Failed),
                skipped: c.get(ItemState::Skipped),
                total: c.total(),
                open: c.open(),
            },
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RejectedDto {
    pub line: Option<u64>,
    pub upn: String,
    pub outcome: String,
    pub reason: String,
    pub error_code: Option<String>,
    pub request_id: Option<String>,
}

impl From<FailureRow> for RejectedDto {
    fn from(f: FailureRow) -> Self {
        RejectedDto {
            line: f.line,
            upn: f.upn,
            outcome: f.outcome,
            reason: f.reason,
            error_code: f.error_code,
            request_id: f.request_id,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobCreatedDto {
    pub job: JobDto,
    /// CSV rows turned away before provisioning, with why.
    pub rejected: Vec<RejectedDto>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ItemDto {
    pub id: String,
    pub user_id: String,
    pub upn: String,
    pub state: String,
    pub reason: Option<String>,
    pub error_code: Option<String>,
    pub request_id: Option<String>,
    pub attempts: i64,
    /// The manual path: when the pass mailed to the user stops working (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_expires: Option<String>,
}

impl From<&JobItemRow> for ItemDto {
    fn from(r: &JobItemRow) -> Self {
        ItemDto {
            id: r.item.id.to_string(),
            user_id: r.item.user_id.to_string(),
            upn: r.upn.to_string(),
            state: r.item.state.to_string(),
            reason: r.item.reason.clone(),
            error_code: r.item.error_code.clone(),
            request_id: r.item.request_id.clone(),
            attempts: r.item.attempts,
            pass_expires: r.item.pass.as_ref().map(|p| format_millis(p.expires_at)),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ItemPageDto {
    pub items: Vec<ItemDto>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReportRowDto {
    pub time: String,
    pub actor: String,
    pub action: String,
    pub user_id: Option<String>,
    pub upn: String,
    pub rp: String,
    pub outcome: String,
    pub reason: String,
    pub error_code: String,
    pub request_id: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

impl From<&ReportRow> for ReportRowDto {
    fn from(r: &ReportRow) -> Self {
        ReportRowDto {
            time: r.time.clone(),
            actor: r.actor.clone(),
            action: r.action.clone(),
            user_id: r.user_id.map(|u| u.to_string()),
            upn: r.upn.clone(),
            rp: r.rp.clone(),
            outcome: r.outcome.clone(),
            reason: r.reason.clone(),
            error_code: r.error_code.clone(),
            request_id: r.request_id.clone(),
            detail: r.detail.clone(),
        }
    }
}
