//! Signing in: admin passwords, panel sessions, API tokens, setup links and the CLI's device
//! login.
//!
//! Every secret Behalf hands out (session token, CSRF token, API token, setup link, device code)
//! is 32 random bytes shown once; the store keeps only its HMAC-SHA-256 under a server-side
//! pepper (a random key sealed in the vault by the master key), so a copy of the database alone
//! lets nobody sign in. Passwords are argon2id hashes. Sign-in failures are counted per account
//! and per address; past the limit the answer is "try again in N s".

mod accounts;
mod limiter;
mod secrets;

use std::time::Duration;

use behalf_domain::{
    Admin, ApiToken, EventAction, EventDetail, Millis, Outcome, Role, Secret, SessionId, TokenId,
    TokenKind, TokenScope, now_millis,
};
use behalf_store::{DevicePoll, NewApiToken, NewSession, StoreError};
use serde::Serialize;
use subtle::ConstantTimeEq as _;

pub use accounts::{AdminView, TokenView};
pub(crate) use limiter::SignInLimiter;
use secrets::{
    CSRF_PREFIX, DEVICE_PREFIX, SESSION_PREFIX, SETUP_PREFIX, SIGN_IN_LINK_PREFIX, TOKEN_PREFIX,
    check_email, check_password_rules, decoy_hash, user_code,
};
pub(crate) use secrets::{SCIM_TOKEN_PREFIX, hash_password, hex, random_secret, verify_password};

use crate::access::Reach;
use crate::{App, AppError, Caller, Reader};

const OWNER_SETUP_SECRET: &str = "auth.owner-setup";
const SIGN_IN_LINK_SECRET: &str = "auth.sign-in-link";

/// How long the sign-in link `serve --sandbox` prints works.
pub const SIGN_IN_LINK_LIFETIME: Duration = Duration::from_secs(15 * 60);

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

fn millis_from_now(d: Duration) -> Millis {
    now_millis() + i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)
}

/// The store's unique violation on an admin's email, said as the conflict it is.
fn admin_taken(email: &str) -> impl FnOnce(StoreError) -> AppError + '_ {
    move |e| match e {
        StoreError::UniqueViolation { .. } => {
            AppError::Conflict(format!("an admin {email} already exists"))
        }
        other => other.into(),
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
        let csrf_token = self.session_csrf(session_token.expose()).await?;
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

    /// The CSRF token of the session whose cookie holds `session_token`: derived from it under
    /// the pepper, so every page the panel renders can carry it without Behalf keeping it in
    /// clear, and nobody without the pepper can compute it from anything a page shows.
    pub async fn session_csrf(&self, session_token: &str) -> Result<Secret, AppError> {
        let derived = self
            .secret_hash(&format!("csrf-of-session\0{session_token}"))
            .await?;
        Ok(Secret::new(format!("{CSRF_PREFIX}{derived}")))
    }

    /// A one-time link that signs an owner in without a password, for the person who started
    /// the server on this machine (`serve --sandbox` prints it): `email` when that admin exists,
    /// else the first owner; when the workspace has no admin yet, `email` becomes its owner.
    /// Each call replaces the previous link.
    pub async fn local_sign_in_link(&self, email: &str) -> Result<Secret, AppError> {
        let email = check_email(email)?;
        let workspace = self.workspace().id;
        let admin = match self.store().find_admin(workspace, &email).await? {
            Some((admin, _)) => admin,
            None => {
                let admins = self.store().list_admins(workspace).await?;
                match admins
                    .into_iter()
                    .find(|a| a.admin.role == Role::Owner && !a.disabled)
                {
                    Some(owner) => owner.admin,
                    None => {
                        let admin = self
                            .store()
                            .create_admin(workspace, &email, Role::Owner, true, None)
                            .await
                            .map_err(admin_taken(&email))?;
                        self.audit(
                            "server".into(),
                            EventAction::AdminCreated,
                            Outcome::Success,
                            EventDetail::default()
                                .with("admin", admin.username.as_str())
                                .with("role", admin.role),
                        )
                        .await?;
                        admin
                    }
                }
            }
        };
        let token = random_secret(SIGN_IN_LINK_PREFIX);
        let record = format!(
            "{}:{}:{}",
            millis_from_now(SIGN_IN_LINK_LIFETIME),
            admin.id,
            self.secret_hash(token.expose()).await?
        );
        self.vault()
            .put_secret(SIGN_IN_LINK_SECRET, record.as_bytes())
            .await
            .map_err(AppError::internal)?;
        Ok(token)
    }

    /// Uses a link from [`App::local_sign_in_link`]: once, before it expires.
    pub async fn use_sign_in_link(
        &self,
        token: &str,
        address: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<SignedIn, AppError> {
        let gone = || {
            AppError::invalid(
                "token",
                "this sign-in link is unknown, used or expired: restart the server for a new one, or sign in with a password",
            )
        };
        let hash = self.secret_hash(token).await?;
        let record = self
            .vault()
            .get_secret(SIGN_IN_LINK_SECRET)
            .await
            .map_err(AppError::internal)?
            .ok_or_else(gone)?;
        let record = String::from_utf8_lossy(record.expose()).into_owned();
        let mut fields = record.splitn(3, ':');
        let (Some(expires), Some(admin_id), Some(stored)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err(gone());
        };
        let fresh = expires.parse::<Millis>().is_ok_and(|e| e > now_millis());
        if !fresh || !bool::from(stored.as_bytes().ct_eq(hash.as_bytes())) {
            return Err(gone());
        }
        let admin_id: behalf_domain::AdminId = admin_id.parse().map_err(|_| gone())?;
        // Used up first: of two racing requests only one deletes it.
        if !self
            .vault()
            .delete_secret(SIGN_IN_LINK_SECRET)
            .await
            .map_err(AppError::internal)?
        {
            return Err(gone());
        }
        let account = self.store().get_admin(admin_id).await?;
        if account.admin.workspace_id != self.workspace().id {
            return Err(gone());
        }
        self.audit(
            format!("admin:{}", account.admin.username),
            EventAction::AdminSignedIn,
            Outcome::Success,
            EventDetail::default()
                .with("address", address)
                .with("via", "sign-in link"),
        )
        .await?;
        self.open_session(account.admin, address, user_agent).await
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
            .map_err(admin_taken(&email))?;
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
