//! The tenant's data, kept compact so 100,000 users fit well under a gigabyte: a `Vec` of users and
//! groups addressed by position, index maps for id and UPN, and a change log whose positions are the
//! delta tokens (so `@odata.deltaLink` survives restarts when the state is persisted).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use webauthn_rs_core::WebauthnCore;
use webauthn_rs_core::proto::{
    AttestationCaList, AuthenticationState, Credential, RegistrationState,
};

use crate::config::{AppRegistration, Knobs, SandboxConfig};
use crate::throttle::ThrottleState;

/// Lifecycle of a directory object. Soft-deleted users sit in "deleted items" for 30 days
/// (<https://learn.microsoft.com/graph/api/directory-deleteditems-list>); purged ones are gone and
/// only their id remains, so delta can still report `@removed: {reason: deleted}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Life {
    Active,
    SoftDeleted { at: i64 },
    Purged,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct User {
    pub id: Uuid,
    pub upn: String,
    pub display_name: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub mail: Option<String>,
    pub mail_nickname: String,
    pub department: Option<String>,
    pub job_title: Option<String>,
    pub office_location: Option<String>,
    pub account_enabled: bool,
    /// Unix milliseconds.
    pub created: i64,
    pub life: Life,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Group {
    pub id: Uuid,
    pub display_name: String,
    pub description: Option<String>,
    pub mail_nickname: String,
    pub mail_enabled: bool,
    pub security_enabled: bool,
    pub created: i64,
    /// User positions, sorted.
    pub members: Vec<u32>,
    pub life: Life,
}

/// One entry of the change log; its position + 1 is its sequence number.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) enum Change {
    /// The whole user: created, deleted (soft or for good) or restored.
    User(u32),
    /// A group created or deleted.
    Group(u32),
    Member {
        group: u32,
        user: u32,
        added: bool,
    },
    /// Properties of a user changed (bits of [`crate::delta::USER_TRACKED`]), for delta's
    /// `$select` tracking and `Prefer: return=minimal`.
    UserProps {
        user: u32,
        props: u16,
    },
    /// Properties of a group changed (bits of [`crate::delta::GROUP_TRACKED`]).
    GroupProps {
        group: u32,
        props: u16,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Fido2Method {
    pub id: String,
    pub display_name: String,
    pub created: i64,
    pub aaguid: Uuid,
    pub model: Option<String>,
    pub attestation_certificates: Vec<String>,
    pub attested: bool,
    pub credential: Credential,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TapMethod {
    pub id: Uuid,
    pub created: i64,
    pub start: i64,
    pub lifetime_minutes: u32,
    pub usable_once: bool,
    /// SHA-256 of the pass: the pass itself is shown once and never stored (SPEC §3.2).
    pub pass_sha256: String,
    /// A one-time pass that has signed in once (Entra: it cannot sign in again).
    #[serde(default)]
    pub used: bool,
}

/// One target of an authentication method policy (`includeTargets` / `excludeTargets`):
/// `targetType` `group` with a group's id, or the id `all_users`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PolicyTarget {
    pub target_type: String,
    pub id: String,
}

/// The Temporary Access Pass method configuration
/// (<https://learn.microsoft.com/graph/api/resources/temporaryaccesspassauthenticationmethodconfiguration>).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TapPolicy {
    pub state: String,
    pub include_targets: Vec<PolicyTarget>,
    pub exclude_targets: Vec<PolicyTarget>,
    pub default_lifetime_in_minutes: u32,
    pub minimum_lifetime_in_minutes: u32,
    pub maximum_lifetime_in_minutes: u32,
    pub is_usable_once: bool,
    pub default_length: u32,
}

impl Default for TapPolicy {
    /// Entra's defaults (lifetime 1 to 8 hours, default 1 hour, 8 characters, reusable), but
    /// enabled for all users so that the sandbox can issue passes out of the box.
    fn default() -> Self {
        TapPolicy {
            state: "enabled".into(),
            include_targets: vec![PolicyTarget {
                target_type: "group".into(),
                id: "all_users".into(),
            }],
            exclude_targets: Vec::new(),
            default_lifetime_in_minutes: 60,
            minimum_lifetime_in_minutes: 60,
            maximum_lifetime_in_minutes: 480,
            is_usable_once: false,
            default_length: 8,
        }
    }
}

/// The FIDO2 authentication method configuration
/// (<https://learn.microsoft.com/graph/api/resources/fido2authenticationmethodconfiguration>).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Fido2Policy {
    pub state: String,
    pub is_self_service_registration_allowed: bool,
    pub is_attestation_enforced: bool,
    pub key_restrictions: KeyRestrictions,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KeyRestrictions {
    pub is_enforced: bool,
    pub enforcement_type: String,
    pub aa_guids: Vec<String>,
}

impl Default for Fido2Policy {
    fn default() -> Self {
        Fido2Policy {
            state: "enabled".into(),
            is_self_service_registration_allowed: true,
            is_attestation_enforced: false,
            key_restrictions: KeyRestrictions {
                is_enforced: false,
                enforcement_type: "block".into(),
                aa_guids: Vec::new(),
            },
        }
    }
}

/// Everything persisted to the state file.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Directory {
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    pub changes: Vec<Change>,
    pub fido2: BTreeMap<u32, Vec<Fido2Method>>,
    pub taps: BTreeMap<u32, Vec<TapMethod>>,
    /// Users' passwords, as digests ([`crate::passwords`]); a user without one cannot sign in
    /// with a password.
    #[serde(default)]
    pub passwords: BTreeMap<u32, crate::passwords::StoredPassword>,
    pub policy: Fido2Policy,
    #[serde(default)]
    pub tap_policy: TapPolicy,
    /// HMAC key for access tokens: persisted so tokens stay valid across restarts.
    pub token_key: Vec<u8>,
    /// App certificates registered while the sandbox ran (the configured ones are not stored).
    #[serde(default)]
    pub app_certificates: Vec<crate::certs::StoredCertificate>,
    /// Users taken out of the SCIM provisioning scope (unassigned from the app Entra provisions):
    /// the SCIM client deletes them at the service ([`crate::scim_push`]).
    #[serde(default)]
    pub scim_out_of_scope: std::collections::BTreeSet<u32>,
    /// Users whose provisioning scope changed, in order: the SCIM client's incremental cycles
    /// read it from where they stopped, as they read [`Directory::changes`].
    #[serde(default)]
    pub scim_scope_log: Vec<u32>,
    #[serde(skip)]
    pub user_by_id: HashMap<Uuid, u32>,
    #[serde(skip)]
    pub user_by_upn: HashMap<String, u32>,
    #[serde(skip)]
    pub group_by_id: HashMap<Uuid, u32>,
    /// Credential id → user position, to refuse a credential registered twice.
    #[serde(skip)]
    pub cred_owner: HashMap<Vec<u8>, u32>,
}

impl Directory {
    pub fn rebuild_indexes(&mut self) {
        self.user_by_id = self
            .users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.id, i as u32))
            .collect();
        self.user_by_upn = self
            .users
            .iter()
            .enumerate()
            .filter(|(_, u)| u.life != Life::Purged)
            .map(|(i, u)| (u.upn.to_lowercase(), i as u32))
            .collect();
        self.group_by_id = self
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.id, i as u32))
            .collect();
        self.cred_owner = self
            .fido2
            .iter()
            .flat_map(|(u, ms)| ms.iter().map(move |m| (m.credential.cred_id.to_vec(), *u)))
            .collect();
    }

    pub fn push_user(&mut self, u: User) -> u32 {
        let pos = self.users.len() as u32;
        self.user_by_id.insert(u.id, pos);
        self.user_by_upn.insert(u.upn.to_lowercase(), pos);
        self.users.push(u);
        pos
    }

    pub fn push_group(&mut self, g: Group) -> u32 {
        let pos = self.groups.len() as u32;
        self.group_by_id.insert(g.id, pos);
        self.groups.push(g);
        pos
    }

    pub fn log(&mut self, c: Change) {
        self.changes.push(c);
    }

    /// Finds a user that is not purged, by object id or by UPN (case-insensitive, as Graph does).
    pub fn find_user_any(&self, key: &str) -> Option<u32> {
        let pos = match Uuid::parse_str(key) {
            Ok(id) => self.user_by_id.get(&id).copied(),
            Err(_) => self.user_by_upn.get(&key.to_lowercase()).copied(),
        }?;
        (self.users[pos as usize].life != Life::Purged).then_some(pos)
    }

    /// Finds an active (not deleted) user.
    pub fn find_user(&self, key: &str) -> Option<u32> {
        self.find_user_any(key)
            .filter(|p| self.users[*p as usize].life == Life::Active)
    }

    pub fn find_group(&self, key: &str) -> Option<u32> {
        let id = Uuid::parse_str(key).ok()?;
        let pos = *self.group_by_id.get(&id)?;
        (self.groups[pos as usize].life == Life::Active).then_some(pos)
    }
}

/// A creationOptions challenge waiting for its registration (single use).
#[derive(Debug)]
pub(crate) struct PendingChallenge {
    pub user: Uuid,
    pub expires: i64,
    pub state: RegistrationState,
}

#[derive(Debug)]
pub(crate) struct PendingSignIn {
    pub user: u32,
    pub expires: i64,
    pub state: AuthenticationState,
}

#[derive(Debug, Clone)]
pub(crate) struct DeviceCode {
    pub client_id: Uuid,
    pub user_code: String,
    pub scopes: Vec<String>,
    pub expires: i64,
    pub last_poll: Option<i64>,
    pub approved_by: Option<Uuid>,
    pub denied: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct RefreshGrant {
    pub client_id: Uuid,
    pub user: Uuid,
    pub scopes: Vec<String>,
    pub expires: i64,
}

/// Short-lived ceremony state, never persisted (a restart invalidates pending ceremonies, as a
/// real service's challenge cache would).
#[derive(Debug, Default)]
pub(crate) struct Ephemeral {
    pub challenges: HashMap<String, PendingChallenge>,
    pub signins: HashMap<String, PendingSignIn>,
    pub device_codes: HashMap<String, DeviceCode>,
    pub refresh: HashMap<String, RefreshGrant>,
    /// Authorization codes of the OpenID Connect sign-in, by code (single use).
    pub auth_codes: HashMap<String, crate::oidc::AuthCode>,
    /// My Security Info sessions opened with a Temporary Access Pass, by the token's SHA-256.
    pub sessions: HashMap<String, crate::selfservice::UserSession>,
}

/// Counters for `GET /sandbox/state`.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub requests: AtomicU64,
    pub graph_requests: AtomicU64,
    /// Graph requests the `throttle_every` knob let through: the `fail_every` knob counts these,
    /// so "429 every 10th, 503 every 50th" produces both faults instead of the 429 masking the 503.
    pub not_throttled_by_knob: AtomicU64,
    pub token_requests: AtomicU64,
    pub throttled: AtomicU64,
    pub unavailable: AtomicU64,
    pub dropped: AtomicU64,
    /// Graph writes seen by the `drop_answer_every` knob, and the answers it dropped.
    pub writes_for_lost_answers: AtomicU64,
    pub answers_dropped: AtomicU64,
    pub writes: AtomicU64,
    /// Writes the write budget let through (each took a token, whatever the handler answered).
    pub writes_admitted: AtomicU64,
    /// Resource units the budget took (only while the throttling model is on).
    pub units_admitted: AtomicU64,
    /// 429s answered because the write budget was empty.
    pub write_budget_throttled: AtomicU64,
    pub registrations: AtomicU64,
    pub registrations_rejected: AtomicU64,
    pub signins: AtomicU64,
    pub signins_rejected: AtomicU64,
    /// Client id → requests sent before the `Retry-After` it was given had elapsed.
    pub early_retries: Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    pub fn inc(c: &AtomicU64) -> u64 {
        c.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// The sandbox's clock: wall time plus an offset that `/sandbox/clock/advance` moves forward, so
/// tests can expire tokens, challenges and throttling windows without sleeping.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    pub fn now_ms(&self) -> i64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis() as i64;
        wall + self.offset_ms.load(Ordering::Relaxed)
    }
    pub fn now_secs(&self) -> i64 {
        self.now_ms() / 1000
    }
    pub fn advance(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

/// Everything a handler can reach.
#[derive(Debug)]
pub(crate) struct Shared {
    pub tenant_id: Uuid,
    pub domain: String,
    pub base_url: String,
    pub apps: Vec<AppRegistration>,
    /// The configured apps' certificates, parsed once at start.
    pub config_certificates: Vec<(Uuid, crate::certs::AppCertificate)>,
    pub token_lifetime_secs: i64,
    pub device_code_lifetime_secs: i64,
    pub device_code_interval_secs: i64,
    pub state_file: Option<PathBuf>,
    pub dir: RwLock<Directory>,
    pub eph: Mutex<Ephemeral>,
    pub knobs: RwLock<Knobs>,
    pub stats: Stats,
    pub throttle: Mutex<ThrottleState>,
    pub clock: Clock,
    pub webauthn: WebauthnCore,
    pub attestation_cas: Option<AttestationCaList>,
    pub dirty: AtomicBool,
    /// The key id tokens are signed with, made on first use (see [`crate::oidc`]).
    pub oidc_key: std::sync::OnceLock<crate::oidc::SigningKey>,
}

// Lock helpers: a poisoned lock means a handler panicked mid-update; the data is plain values
// that stay structurally valid, so keep serving rather than take the whole sandbox down.
impl Shared {
    pub fn read(&self) -> RwLockReadGuard<'_, Directory> {
        self.dir.read().unwrap_or_else(|e| e.into_inner())
    }
    pub fn write(&self) -> RwLockWriteGuard<'_, Directory> {
        self.dirty.store(true, Ordering::Relaxed);
        self.dir.write().unwrap_or_else(|e| e.into_inner())
    }
    pub fn eph(&self) -> MutexGuard<'_, Ephemeral> {
        self.eph.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub fn knobs(&self) -> Knobs {
        self.knobs.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
    pub fn throttle(&self) -> MutexGuard<'_, ThrottleState> {
        self.throttle.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub fn graph_base(&self, version: &str) -> String {
        format!("{}/{}", self.base_url, version)
    }
    pub fn app(&self, client_id: Uuid) -> Option<&AppRegistration> {
        self.apps.iter().find(|a| a.client_id == client_id)
    }

    /// Writes the directory to the state file (temp file + rename, so a crash never leaves half a file).
    pub fn persist(&self) -> std::io::Result<()> {
        let Some(path) = &self.state_file else {
            return Ok(());
        };
        self.dirty.store(false, Ordering::Relaxed);
        let bytes = {
            let dir = self.read();
            serde_json::to_vec(&*dir).map_err(std::io::Error::other)?
        };
        write_atomically(path, &bytes)
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

pub(crate) fn load_directory(path: &Path) -> std::io::Result<Option<Directory>> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let mut dir: Directory =
                serde_json::from_slice(&bytes).map_err(std::io::Error::other)?;
            dir.rebuild_indexes();
            Ok(Some(dir))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub(crate) fn new_shared(
    cfg: &SandboxConfig,
    base_url: String,
    dir: Directory,
    cas: Option<AttestationCaList>,
    origin: url::Url,
    config_certificates: Vec<(Uuid, crate::certs::AppCertificate)>,
) -> Shared {
    let webauthn = WebauthnCore::new_unsafe_experts_only(
        "Microsoft",
        crate::authmethods::RP_ID,
        vec![origin],
        Duration::from_secs(300),
        None,
        None,
    );
    Shared {
        tenant_id: cfg.tenant_id,
        domain: cfg.domain.clone(),
        base_url,
        apps: cfg.apps.clone(),
        config_certificates,
        token_lifetime_secs: cfg.token_lifetime_secs,
        device_code_lifetime_secs: cfg.device_code_lifetime_secs,
        device_code_interval_secs: cfg.device_code_interval_secs,
        state_file: cfg.state_file.clone(),
        dir: RwLock::new(dir),
        eph: Mutex::new(Ephemeral::default()),
        knobs: RwLock::new(cfg.knobs.clone()),
        stats: Stats::default(),
        throttle: Mutex::new(ThrottleState::default()),
        clock: Clock::default(),
        webauthn,
        attestation_cas: cas,
        dirty: AtomicBool::new(false),
        oidc_key: std::sync::OnceLock::new(),
    }
}

/// RFC 3339 with a `Z`, as Graph writes `createdDateTime`.
pub(crate) fn iso(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
