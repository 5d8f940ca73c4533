//! Signing in: admin passwords, panel sessions, API tokens, setup links and the CLI's device
//! login.
//!
//! Every secret Behalf hands out (session token, CSRF token, API token, setup link, device code)
//! is 32 random bytes shown once; the store keeps only its HMAC-SHA-256 under a server-side
//! pepper (a random key sealed in the vault by the master key), so a copy of the database alone
//! lets nobody sign in. Passwords are argon2id hashes. Sign-in failures are counted per account
//! and per address; past the limit the answer is "try again in N s".

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use behalf_domain::{
    Admin, AdminId, ApiToken, EventAction, EventDetail, Millis, Outcome, Role, Secret, SessionId,
    TokenId, TokenKind, TokenScope, now_millis,
};
use behalf_store::{ApiTokenEntry, DevicePoll, NewApiToken, NewSession, StoreError};
use serde::Serialize;
use subtle::ConstantTimeEq as _;

use crate::access::Reach;
use crate::{App, AppError, Caller, Owner, Reader};

/// How long a panel session lasts without signing in again.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// How long a CLI signed in with `behalf --server URL login` stays signed in.
pub const CLI_LOGIN_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// How long a setup link works.
pub const SETUP_LINK_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// How long a device login waits for an admin's approval.
pub const DEVICE_LOGIN_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Failed sign-ins allowed per account, and per address, within [`FAILURE_WINDOW`].
const MAX_FAILURES: u32 = 5;
const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// The first lock-out; each further failure while locked doubles it, up to [`MAX_LOCKOUT`].
const FIRST_LOCKOUT: Duration = Duration::from_secs(30);
const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);

const PEPPER_SECRET: &str = "auth.pepper";
const OWNER_SETUP_SECRET: &str = "auth.owner-setup";

/// Prefixes that say what a secret is when one turns up somewhere (a log, a ticket), and let a
/// secret scanner find it.
const SESSION_PREFIX: &str = "bhs_";
const CSRF_PREFIX: &str = "bhc_";
const TOKEN_PREFIX: &str = "bht_";
const SETUP_PREFIX: &str = "bhu_";
const DEVICE_PREFIX: &str = "bhd_";

/// A random secret: `prefix` + 32 random bytes in base64url.
fn random_secret(prefix: &str) -> Secret {
    let mut bytes = [0u8; 32];
    // aws-lc's system random source, which rustls already builds (no second RNG stack).
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random source works");
    Secret::new(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// A short code a person reads off one screen and types into another: 8 letters from an
/// alphabet without look-alikes, shown as `ABCD-EFGH`.
fn user_code() -> String {
    const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random source works");
    let letters: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    format!("{}-{}", &letters[..4], &letters[4..])
}

fn millis_from_now(d: Duration) -> Millis {
    now_millis() + i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)
}

/// Counts failed sign-ins per key (an account, an address) and locks a key out after
/// [`MAX_FAILURES`] in [`FAILURE_WINDOW`]. Written here rather than with `governor`: what is
/// limited is failures, not requests (a person who types the password right is never slowed),
/// and the answer must say how long to wait. Per instance: several instances each allow as
/// many, which still bounds guessing.
#[derive(Debug, Default)]
pub(crate) struct SignInLimiter {
    keys: Mutex<HashMap<String, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    first: Instant,
    locked_until: Option<Instant>,
    lockout: Duration,
}

impl SignInLimiter {
    /// How long `key` must still wait, if it is locked out.
    fn wait(&self, key: &str) -> Option<Duration> {
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let until = keys.get(key)?.locked_until?;
        until.checked_duration_since(Instant::now())
    }

    fn fail(&self, key: &str) {
        let now = Instant::now();
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if keys.len() > 100_000 {
            // Bounded memory under a spray of addresses: forget what is past its window.
            keys.retain(|_, f| now.duration_since(f.first) < FAILURE_WINDOW);
        }
        let f = keys.entry(key.to_owned()).or_insert(Failures {
            count: 0,
            first: now,
            locked_until: None,
            lockout: FIRST_LOCKOUT,
        });
        if now.duration_since(f.first) >= FAILURE_WINDOW && f.locked_until.is_none_or(|u| u <= now)
        {
            *f = Failures {
                count: 0,
                first: now,
                locked_until: None,
                lockout: FIRST_LOCKOUT,
            };
        }
        f.count += 1;
        if f.count >= MAX_FAILURES {
            f.locked_until = Some(now + f.lockout);
            f.lockout = (f.lockout * 2).min(MAX_LOCKOUT);
        }
    }

    fn succeed(&self, key: &str) {
        self.keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// A new panel session: the cookie's token and the CSRF token, each shown to this browser only.
#[derive(Debug)]
pub struct SignedIn {
    pub admin: Admin,
    pub session_token: Secret,
    pub csrf_token: Secret,
    pub expires_at: Millis,
}

/// A valid panel session.
#[derive(Debug, Clone)]
pub struct SessionCaller {
    pub caller: Caller,
    pub session_id: SessionId,
    csrf_hash: String,
}

/// A valid API token.
#[derive(Debug, Clone)]
pub struct TokenCaller {
    pub caller: Caller,
    pub token: ApiToken,
}

/// An admin just created; `setup_link_token` when they have no password yet.
#[derive(Debug)]
pub struct CreatedAdmin {
    pub admin: Admin,
    pub setup_token: Option<Secret>,
}

/// A token just created: `token` is shown once.
#[derive(Debug)]
pub struct CreatedToken {
    pub token: Secret,
    pub entry: ApiToken,
}

/// A device login just started (`behalf --server URL login`).
#[derive(Debug, Serialize)]
pub struct DeviceLoginStart {
    /// The CLI's secret for polling.
    pub device_code: Secret,
    /// What the admin approves in the panel or the API.
    pub user_code: String,
    pub expires_in: u64,
    pub interval: u64,
}

/// The answer to a device login poll.
#[derive(Debug)]
pub enum DeviceLoginPoll {
    Pending,
    /// Approved: the CLI's token, shown this once.
    Token {
        token: Secret,
        expires_at: Millis,
    },
    /// Expired, used, refused or unknown.
    Gone,
}

fn hash_password(password: &Secret) -> Result<String, AppError> {
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| AppError::internal("no random source"))?;
    let salt = SaltString::encode_b64(&salt).map_err(AppError::internal)?;
    argon2::Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(AppError::internal)
}

fn verify_password(password: &Secret, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash to verify against when the account does not exist, so that "no such admin" and "wrong
/// password" take the same time.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        hash_password(&Secret::new("decoy password that matches nothing")).unwrap_or_default()
    })
}

pub(crate) fn check_password_rules(password: &Secret) -> Result<(), AppError> {
    if password.expose().chars().count() < MIN_PASSWORD_CHARS {
        return Err(AppError::invalid(
            "password",
            format!("use at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

fn check_email(email: &str) -> Result<String, AppError> {
    let email = email.trim().to_lowercase();
    let valid = email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !email.chars().any(char::is_whitespace);
    if valid {
        Ok(email)
    } else {
        Err(AppError::invalid(
            "email",
            format!("{email:?} is not an email address"),
        ))
    }
}

fn reach_of(scope: TokenScope) -> Reach {
    match scope {
        TokenScope::Read => Reach::Read,
        TokenScope::Provision => Reach::Provision,
        TokenScope::Admin => Reach::Admin,
    }
}

fn scope_of(reach: Reach) -> TokenScope {
    match reach {
        Reach::Read => TokenScope::Read,
        Reach::Provision => TokenScope::Provision,
        Reach::Admin => TokenScope::Admin,
    }
}

impl App {
    /// The HMAC key that secrets are hashed under, made on first use and sealed in the vault.
    async fn pepper(&self) -> Result<&[u8], AppError> {
        let pepper = self
            .inner
            .pepper
            .get_or_try_init(|| async {
                let vault = self.vault();
                if let Some(existing) = vault
                    .get_secret(PEPPER_SECRET)
                    .await
                    .map_err(AppError::internal)?
                {
                    return Ok::<_, AppError>(existing.expose().to_vec());
                }
                let mut fresh = [0u8; 32];
                aws_lc_rs::rand::fill(&mut fresh)
                    .map_err(|_| AppError::internal("no random source"))?;
                vault
                    .put_secret(PEPPER_SECRET, &fresh)
                    .await
                    .map_err(AppError::internal)?;
                // Another instance may have written its own at the same moment: whichever row
                // is there now is the pepper every instance uses.
                let stored = vault
                    .get_secret(PEPPER_SECRET)
                    .await
                    .map_err(AppError::internal)?
                    .ok_or_else(|| AppError::internal("the pepper vanished"))?;
                Ok(stored.expose().to_vec())
            })
            .await?;
        Ok(pepper)
    }

    /// The stored form of a secret: HMAC-SHA-256 under the pepper, hex.
    pub(crate) async fn secret_hash(&self, secret: &str) -> Result<String, AppError> {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, self.pepper().await?);
        let tag = aws_lc_rs::hmac::sign(&key, secret.as_bytes());
        Ok(tag.as_ref().iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Signs an admin in with their password, from `address`.
    pub async fn sign_in(
        &self,
        email: &str,
        password: &Secret,
        address: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<SignedIn, AppError> {
        let account_key = format!("account:{}", email.trim().to_lowercase());
        let address_key = address.map(|a| format!("address:{a}"));
        let limiter = &self.inner.sign_in_limiter;
        let wait = [Some(&account_key), address_key.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|k| limiter.wait(k))
            .max();
        if let Some(wait) = wait {
            return Err(AppError::RateLimited {
                retry_after_secs: wait.as_secs().max(1),
            });
        }
        let found = self.store().find_admin(self.workspace().id, email).await?;
        let admin = match found {
            Some((admin, Some(hash))) if verify_password(password, &hash) => Some(admin),
            Some(_) => None,
            None => {
                let _ = verify_password(password, decoy_hash());
                None
            }
        };
        let Some(admin) = admin else {
            limiter.fail(&account_key);
            if let Some(k) = &address_key {
                limiter.fail(k);
            }
            tracing::info!(address = address.unwrap_or("-"), "sign-in refused");
            self.audit(
                "anonymous".into(),
                EventAction::AdminSignInRefused,
                Outcome::Failure,
                EventDetail::default()
                    .with("email", email.trim().to_lowercase())
                    .with("address", address),
            )
            .await?;
            return Err(AppError::Unauthenticated);
        };
        limiter.succeed(&account_key);
        self.audit(
            format!("admin:{}", admin.username),
            EventAction::AdminSignedIn,
            Outcome::Success,
            EventDetail::default().with("address", address),
        )
        .await?;
        self.open_session(admin, address, user_agent).await
    }

    /// A new panel session for `admin`, who has just proven who they are (a password, an
    /// OpenID Connect sign-in).
    pub(crate) async fn open_session(
        &self,
        admin: Admin,
        address: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<SignedIn, AppError> {
        let session_token = random_secret(SESSION_PREFIX);
        let csrf_token = random_secret(CSRF_PREFIX);
        let expires_at = millis_from_now(SESSION_LIFETIME);
        self.store()
            .create_session(&NewSession {
                workspace_id: self.workspace().id,
                admin_id: admin.id,
                token_hash: &self.secret_hash(session_token.expose()).await?,
                csrf_hash: &self.secret_hash(csrf_token.expose()).await?,
                expires_at,
                address,
                user_agent,
            })
            .await?;
        Ok(SignedIn {
            admin,
            session_token,
            csrf_token,
            expires_at,
        })
    }

    /// The session a cookie's token names, if it is valid.
    pub async fn session(&self, token: &str) -> Result<Option<SessionCaller>, AppError> {
        if !token.starts_with(SESSION_PREFIX) {
            return Ok(None);
        }
        let hash = self.secret_hash(token).await?;
        let Some(grant) = self.store().find_session(&hash).await? else {
            return Ok(None);
        };
        if grant.admin.workspace_id != self.workspace().id {
            return Ok(None);
        }
        if let Err(e) = self.store().touch_session(&grant.session).await {
            tracing::warn!(error = %e, "cannot record the session's last use");
        }
        Ok(Some(SessionCaller {
            caller: Caller::Admin {
                admin: grant.admin,
                reach: Reach::Admin,
            },
            session_id: grant.session.id,
            csrf_hash: grant.csrf_hash,
        }))
    }

    /// Whether `presented` is the session's CSRF token (compared in constant time).
    pub async fn csrf_matches(
        &self,
        session: &SessionCaller,
        presented: &str,
    ) -> Result<bool, AppError> {
        let hash = self.secret_hash(presented).await?;
        Ok(bool::from(
            hash.as_bytes().ct_eq(session.csrf_hash.as_bytes()),
        ))
    }

    pub async fn sign_out(&self, session: &SessionCaller) -> Result<(), AppError> {
        self.store().revoke_session(session.session_id).await?;
        self.audit(
            session.caller.actor(),
            EventAction::AdminSignedOut,
            Outcome::Success,
            EventDetail::default(),
        )
        .await
    }

    /// The caller a bearer token names, if it is valid.
    pub async fn token(&self, token: &str) -> Result<Option<TokenCaller>, AppError> {
        if !token.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let hash = self.secret_hash(token).await?;
        let Some(grant) = self.store().find_api_token(&hash).await? else {
            return Ok(None);
        };
        if grant.admin.workspace_id != self.workspace().id {
            return Ok(None);
        }
        if let Err(e) = self.store().touch_api_token(&grant.token).await {
            tracing::warn!(error = %e, "cannot record the token's last use");
        }
        Ok(Some(TokenCaller {
            caller: Caller::Admin {
                admin: grant.admin,
                reach: reach_of(grant.token.scope),
            },
            token: grant.token,
        }))
    }

    /// Whether the workspace has no admin yet (the first run).
    pub async fn has_no_admin(&self) -> Result<bool, AppError> {
        Ok(self
            .store()
            .list_admins(self.workspace().id)
            .await?
            .is_empty())
    }

    /// A one-time link token for creating the first owner, when there is no admin yet. Each
    /// call replaces the previous link.
    pub async fn owner_setup_token(&self) -> Result<Option<Secret>, AppError> {
        if !self.has_no_admin().await? {
            return Ok(None);
        }
        let token = random_secret(SETUP_PREFIX);
        let record = format!(
            "{}:{}",
            millis_from_now(SETUP_LINK_LIFETIME),
            self.secret_hash(token.expose()).await?
        );
        self.vault()
            .put_secret(OWNER_SETUP_SECRET, record.as_bytes())
            .await
            .map_err(AppError::internal)?;
        Ok(Some(token))
    }

    /// Uses a setup link: an invited admin's (sets their password), or the first owner's (creates
    /// the owner with `email`).
    pub async fn complete_setup(
        &self,
        token: &str,
        email: Option<&str>,
        password: &Secret,
    ) -> Result<Admin, AppError> {
        check_password_rules(password)?;
        let hash = self.secret_hash(token).await?;
        let expired = || {
            AppError::invalid(
                "token",
                "this setup link is unknown, used or expired: ask an owner for a new one",
            )
        };
        if let Some(admin_id) = self.store().consume_setup_token(&hash).await? {
            let password_hash = hash_password(password)?;
            self.store()
                .set_admin_password_hash(self.workspace().id, admin_id, &password_hash)
                .await?;
            let account = self.store().get_admin(admin_id).await?;
            self.audit(
                format!("admin:{}", account.admin.username),
                EventAction::AdminSetUp,
                Outcome::Success,
                EventDetail::default(),
            )
            .await?;
            return Ok(account.admin);
        }
        // The first owner's link.
        let record = self
            .vault()
            .get_secret(OWNER_SETUP_SECRET)
            .await
            .map_err(AppError::internal)?
            .ok_or_else(expired)?;
        let record = String::from_utf8_lossy(record.expose()).into_owned();
        let (expires, stored) = record.split_once(':').ok_or_else(expired)?;
        let fresh = expires.parse::<Millis>().is_ok_and(|e| e > now_millis());
        if !fresh || !bool::from(stored.as_bytes().ct_eq(hash.as_bytes())) {
            return Err(expired());
        }
        let email = check_email(email.ok_or_else(|| AppError::invalid("email", "required"))?)?;
        // Used up before the owner exists: of two racing requests only one deletes it.
        if !self
            .vault()
            .delete_secret(OWNER_SETUP_SECRET)
            .await
            .map_err(AppError::internal)?
        {
            return Err(expired());
        }
        let password_hash = hash_password(password)?;
        let admin = self
            .store()
            .create_admin(
                self.workspace().id,
                &email,
                Role::Owner,
                true,
                Some(&password_hash),
            )
            .await
            .map_err(|e| match e {
                StoreError::UniqueViolation { .. } => {
                    AppError::Conflict(format!("an admin {email} already exists"))
                }
                other => other.into(),
            })?;
        self.audit(
            format!("admin:{}", admin.username),
            EventAction::AdminSetUp,
            Outcome::Success,
            EventDetail::default().with("role", admin.role),
        )
        .await?;
        Ok(admin)
    }

    /// Starts `behalf --server URL login`: the CLI polls with the device code while an admin
    /// approves the user code.
    pub async fn start_device_login(&self) -> Result<DeviceLoginStart, AppError> {
        let device_code = random_secret(DEVICE_PREFIX);
        let device_hash = self.secret_hash(device_code.expose()).await?;
        // User codes stay unique in the table: in the rare case of a repeat, draw another.
        let mut attempts = 0;
        let code = loop {
            let code = user_code();
            match self
                .store()
                .create_device_login(
                    self.workspace().id,
                    &device_hash,
                    &code,
                    millis_from_now(DEVICE_LOGIN_LIFETIME),
                )
                .await
            {
                Ok(_) => break code,
                Err(StoreError::UniqueViolation { .. }) if attempts < 3 => attempts += 1,
                Err(e) => return Err(e.into()),
            }
        };
        Ok(DeviceLoginStart {
            device_code,
            user_code: code,
            expires_in: DEVICE_LOGIN_LIFETIME.as_secs(),
            interval: 1,
        })
    }

    /// The CLI's poll: once approved, the token it signs in with (shown once).
    pub async fn poll_device_login(&self, device_code: &str) -> Result<DeviceLoginPoll, AppError> {
        let hash = self.secret_hash(device_code).await?;
        match self.store().poll_device_login(&hash).await? {
            DevicePoll::Pending => Ok(DeviceLoginPoll::Pending),
            DevicePoll::Approved { admin, scope } => {
                let token = random_secret(TOKEN_PREFIX);
                let expires_at = millis_from_now(CLI_LOGIN_LIFETIME);
                self.store()
                    .create_api_token(&NewApiToken {
                        workspace_id: self.workspace().id,
                        admin_id: admin.id,
                        name: "behalf login",
                        scope,
                        kind: TokenKind::Cli,
                        token_hash: &self.secret_hash(token.expose()).await?,
                        expires_at: Some(expires_at),
                    })
                    .await?;
                Ok(DeviceLoginPoll::Token { token, expires_at })
            }
            _ => Ok(DeviceLoginPoll::Gone),
        }
    }
}

impl Reader<'_> {
    /// Revokes the token the caller is using (signing a CLI out of a server).
    pub async fn revoke_own_token(&self, id: TokenId) -> Result<(), AppError> {
        self.app
            .store()
            .revoke_api_token(self.app.workspace().id, id)
            .await?;
        self.app
            .audit(
                self.actor(),
                EventAction::TokenRevoked,
                Outcome::Success,
                EventDetail::default()
                    .with("token_id", id)
                    .with("by", "itself"),
            )
            .await
    }

    /// Approves a CLI's device login: the CLI gets a 12-hour token acting as this admin, as far
    /// as the approving credential reaches.
    pub async fn approve_device_login(&self, user_code: &str) -> Result<(), AppError> {
        let Caller::Admin { admin, reach } = &self.caller else {
            return Err(AppError::Forbidden {
                needed: "a signed-in admin",
            });
        };
        let store = self.app.store();
        let workspace = self.app.workspace().id;
        let code = user_code.trim().to_uppercase();
        let login = store
            .find_device_login(workspace, &code)
            .await?
            .ok_or_else(|| AppError::NotFound {
                what: "login code",
                key: code.clone(),
            })?;
        if !store
            .approve_device_login(workspace, login.id, admin.id, scope_of(*reach))
            .await?
        {
            return Err(AppError::Conflict(format!(
                "the login code {code} has expired or was already used"
            )));
        }
        self.app
            .audit(
                self.actor(),
                EventAction::CliLoginApproved,
                Outcome::Success,
                EventDetail::default().with("scope", scope_of(*reach)),
            )
            .await
    }
}

/// An admin as the admin list shows them.
#[derive(Debug, Clone, Serialize)]
pub struct AdminView {
    pub id: AdminId,
    pub email: String,
    pub role: Role,
    pub can_edit_users: bool,
    pub disabled: bool,
    pub has_password: bool,
    pub created_at: Millis,
}

/// A token as the token list shows it (never the token).
#[derive(Debug, Clone, Serialize)]
pub struct TokenView {
    pub id: TokenId,
    pub name: String,
    pub admin: String,
    pub scope: TokenScope,
    pub kind: TokenKind,
    pub created_at: Millis,
    pub expires_at: Option<Millis>,
    pub last_used_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
}

impl From<ApiTokenEntry> for TokenView {
    fn from(e: ApiTokenEntry) -> Self {
        TokenView {
            id: e.token.id,
            name: e.token.name,
            admin: e.admin_email,
            scope: e.token.scope,
            kind: e.token.kind,
            created_at: e.token.created_at,
            expires_at: e.token.expires_at,
            last_used_at: e.token.last_used_at,
            revoked_at: e.token.revoked_at,
        }
    }
}

impl Owner<'_> {
    /// Creates an admin; without `password`, the answer carries a one-time setup link token.
    pub async fn create_admin(
        &self,
        email: &str,
        role: Role,
        can_edit_users: bool,
        password: Option<&Secret>,
    ) -> Result<CreatedAdmin, AppError> {
        let email = check_email(email)?;
        let password_hash = match password {
            Some(p) => {
                check_password_rules(p)?;
                Some(hash_password(p)?)
            }
            None => None,
        };
        let store = self.app.store();
        let workspace = self.app.workspace().id;
        let admin = store
            .create_admin(
                workspace,
                &email,
                role,
                can_edit_users,
                password_hash.as_deref(),
            )
            .await
            .map_err(|e| match e {
                StoreError::UniqueViolation { .. } => {
                    AppError::Conflict(format!("an admin {email} already exists"))
                }
                other => other.into(),
            })?;
        let setup_token = if password.is_none() {
            let token = random_secret(SETUP_PREFIX);
            store
                .create_setup_token(
                    workspace,
                    admin.id,
                    &self.app.secret_hash(token.expose()).await?,
                    millis_from_now(SETUP_LINK_LIFETIME),
                )
                .await?;
            Some(token)
        } else {
            None
        };
        self.app
            .audit(
                self.actor(),
                EventAction::AdminCreated,
                Outcome::Success,
                EventDetail::default()
                    .with("email", &admin.username)
                    .with("role", admin.role)
                    .with("can_edit_users", admin.can_edit_users),
            )
            .await?;
        Ok(CreatedAdmin { admin, setup_token })
    }

    pub async fn list_admins(&self) -> Result<Vec<AdminView>, AppError> {
        let accounts = self
            .app
            .store()
            .list_admins(self.app.workspace().id)
            .await?;
        Ok(accounts
            .into_iter()
            .map(|a| AdminView {
                id: a.admin.id,
                email: a.admin.username,
                role: a.admin.role,
                can_edit_users: a.admin.can_edit_users,
                disabled: a.disabled,
                has_password: a.has_password,
                created_at: a.admin.created_at,
            })
            .collect())
    }

    /// Removes an admin (and their sessions and tokens with them). The last owner stays.
    pub async fn delete_admin(&self, id: AdminId) -> Result<(), AppError> {
        let store = self.app.store();
        let workspace = self.app.workspace().id;
        let account = store.get_admin(id).await?;
        if account.admin.workspace_id != workspace {
            return Err(AppError::NotFound {
                what: "admin",
                key: id.to_string(),
            });
        }
        if account.admin.role == Role::Owner && store.count_owners(workspace).await? <= 1 {
            return Err(AppError::Conflict(
                "this is the workspace's last owner: make another admin an owner first".into(),
            ));
        }
        store.revoke_admin_sessions(id).await?;
        store.delete_admin(workspace, id).await?;
        self.app
            .audit(
                self.actor(),
                EventAction::AdminRemoved,
                Outcome::Success,
                EventDetail::default().with("email", &account.admin.username),
            )
            .await
    }

    /// Creates an API token for the admin `email` (shown once). `expires_in`: None never expires.
    pub async fn create_token(
        &self,
        email: &str,
        name: &str,
        scope: TokenScope,
        expires_in: Option<Duration>,
    ) -> Result<CreatedToken, AppError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(AppError::invalid(
                "name",
                "give the token a name (up to 200 characters)",
            ));
        }
        let store = self.app.store();
        let workspace = self.app.workspace().id;
        let (admin, _) =
            store
                .find_admin(workspace, email)
                .await?
                .ok_or_else(|| AppError::NotFound {
                    what: "admin",
                    key: email.to_owned(),
                })?;
        let token = random_secret(TOKEN_PREFIX);
        let entry = store
            .create_api_token(&NewApiToken {
                workspace_id: workspace,
                admin_id: admin.id,
                name,
                scope,
                kind: TokenKind::Api,
                token_hash: &self.app.secret_hash(token.expose()).await?,
                expires_at: expires_in.map(millis_from_now),
            })
            .await?;
        self.app
            .audit(
                self.actor(),
                EventAction::TokenCreated,
                Outcome::Success,
                EventDetail::default()
                    .with("token_id", entry.id)
                    .with("name", &entry.name)
                    .with("admin", &admin.username)
                    .with("scope", entry.scope),
            )
            .await?;
        Ok(CreatedToken { token, entry })
    }

    pub async fn list_tokens(&self) -> Result<Vec<TokenView>, AppError> {
        let entries = self
            .app
            .store()
            .list_api_tokens(self.app.workspace().id)
            .await?;
        Ok(entries.into_iter().map(TokenView::from).collect())
    }

    pub async fn revoke_token(&self, id: TokenId) -> Result<(), AppError> {
        if !self
            .app
            .store()
            .revoke_api_token(self.app.workspace().id, id)
            .await?
        {
            return Err(AppError::NotFound {
                what: "token",
                key: id.to_string(),
            });
        }
        self.app
            .audit(
                self.actor(),
                EventAction::TokenRevoked,
                Outcome::Success,
                EventDetail::default().with("token_id", id),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_locks_after_five_failures_and_forgets_on_success() {
        let limiter = SignInLimiter::default();
        for _ in 0..4 {
            limiter.fail("a");
            assert!(limiter.wait("a").is_none());
        }
        limiter.fail("a");
        let wait = limiter.wait("a").expect("locked out");
        assert!(
            wait <= FIRST_LOCKOUT && wait > FIRST_LOCKOUT / 2,
            "{wait:?}"
        );
        assert!(limiter.wait("b").is_none(), "other keys are not affected");
        limiter.succeed("a");
        assert!(limiter.wait("a").is_none());
    }

    #[test]
    fn passwords_verify_only_themselves() {
        let hash = hash_password(&Secret::new("correct horse battery")).unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password(
            &Secret::new("correct horse battery"),
            &hash
        ));
        assert!(!verify_password(
            &Secret::new("correct horse batterz"),
            &hash
        ));
        assert!(!verify_password(&Secret::new("x"), "not a hash"));
    }

    #[test]
    fn secrets_are_random_and_prefixed() {
        let a = random_secret(TOKEN_PREFIX);
        let b = random_secret(TOKEN_PREFIX);
        assert_ne!(a.expose(), b.expose());
        assert!(a.expose().starts_with("bht_") && a.expose().len() == 4 + 43);
        let code = user_code();
        assert_eq!(code.len(), 9);
        assert_eq!(&code[4..5], "-");
    }
}
