//! Behalf Key, the browser authenticator (issue 17; the protocol is docs/BEHALF_KEY.md).
//!
//! An admin issues a one-time pairing code for a user ([`Provisioner::issue_key_pairing`]); the
//! user's extension pairs with it ([`App::pair_key_device`]), registering its device key and
//! setting the user's PIN. From then on every request the extension makes is signed with that key
//! (RFC 9421; the server checks the signature) and reaches a [`KeyHolder`]: the handle of one
//! unrevoked device, which can do only what that device may (sign in as its user with the user's
//! vault-key credentials).
//!
//! | module | owns |
//! | --- | --- |
//! | `device_key` | the device's public key: JWK in, RFC 7638 thumbprint, ECDSA P-256 verification |
//! | `pairing` | pairing codes, pairing, the devices list and revocation |
//! | `mail` | a pairing code mailed to the user |
//! | `local` | local keys: the user's registration requests, approved (fresh Graph options), attested or declined; sign-in with a local key |
//! | `pin` | the PIN's rules and its check with CTAP's retry counter |
//! | `sign_in` | finding a user's credentials for an RP and signing an assertion with the vault key |
//! | `register` | an admin's device registering a credential in another user's vault key at a website |

mod device_key;
mod local;
mod mail;
mod pairing;
mod pin;
mod register;
mod sign_in;

use behalf_domain::{KeyDevice, User, now_millis};

pub use device_key::DevicePublicKey;
pub use local::{Approved, AttestationRequest, RequestView};
pub use pairing::{IssuedPairing, PAIRING_MINUTES, PairRequest, Paired};
pub use register::{RegisterRequest, RegisteredForUser};
pub use sign_in::{AssertRequest, FoundCredential};

use crate::{App, AppError};

/// What a Behalf Key request can answer instead of its result. Each has a stable code
/// ([`KeyFailure::code`]) the extension acts on; the server maps each to a status in one `match`.
#[derive(Debug, thiserror::Error)]
pub enum KeyFailure {
    /// No signature, a wrong one, a stale `created`, a replayed nonce or an unknown key.
    #[error("the request's signature is missing or not valid")]
    SignatureInvalid,
    #[error("this device was revoked by an administrator: pair it again with a new code")]
    DeviceRevoked,
    #[error("the pairing code is unknown, already used or expired: ask for a new one")]
    PairingCodeInvalid,
    #[error("wrong PIN: {retries} tries left")]
    PinInvalid { retries: i64 },
    #[error(
        "the PIN is blocked after too many wrong tries: ask your administrator for a new pairing code"
    )]
    PinBlocked,
    #[error("enter your Behalf Key PIN")]
    PinRequired,
    #[error("{0}")]
    PinPolicy(String),
    #[error("this device holds no credential for that site")]
    NoCredential,
    /// Registering for another user from a device not paired as an admin's.
    #[error("only a device paired as an administrator's registers for other users")]
    NotAdmin,
    #[error("Behalf has no user of that name")]
    UnknownUser,
    /// WebAuthn's `NotSupportedError`: nothing Behalf can make fits what the site asks.
    #[error("{0}")]
    NotSupported(String),
    /// WebAuthn's `InvalidStateError`: the site already has a credential of this key for the user.
    #[error("the user already has a passkey of Behalf's for this site")]
    Excluded,
    /// No such registration request for this device's user (or it is settled).
    #[error("there is no such registration request for you")]
    NoRequest,
    #[error("the registration request expired: ask your administrator to send it again")]
    RequestExpired,
    /// The relying party (Microsoft Graph) failed; its words.
    #[error("Microsoft Entra ID did not answer as expected: {0}")]
    Upstream(String),
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// Behalf's fault; the text is for the log only.
    #[error("internal error")]
    Internal(String),
}

impl KeyFailure {
    /// The code the extension acts on (docs/BEHALF_KEY.md "Errors").
    pub fn code(&self) -> &'static str {
        match self {
            KeyFailure::SignatureInvalid => "signature_invalid",
            KeyFailure::DeviceRevoked => "device_revoked",
            KeyFailure::PairingCodeInvalid => "pairing_code_invalid",
            KeyFailure::PinInvalid { .. } => "pin_invalid",
            KeyFailure::PinBlocked => "pin_blocked",
            KeyFailure::PinRequired => "pin_required",
            KeyFailure::PinPolicy(_) => "pin_policy",
            KeyFailure::NoCredential => "no_credential",
            KeyFailure::NotAdmin => "not_admin",
            KeyFailure::UnknownUser => "unknown_user",
            KeyFailure::NotSupported(_) => "not_supported",
            KeyFailure::Excluded => "credential_excluded",
            KeyFailure::NoRequest => "no_request",
            KeyFailure::RequestExpired => "request_expired",
            KeyFailure::Upstream(_) => "upstream",
            KeyFailure::Invalid { .. } => "invalid",
            KeyFailure::Internal(_) => "internal",
        }
    }

    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        KeyFailure::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// The text for a log line.
    pub fn log_text(&self) -> String {
        match self {
            KeyFailure::Internal(cause) => cause.clone(),
            other => other.to_string(),
        }
    }
}

impl From<behalf_store::StoreError> for KeyFailure {
    fn from(e: behalf_store::StoreError) -> Self {
        KeyFailure::Internal(e.to_string())
    }
}

impl From<AppError> for KeyFailure {
    fn from(e: AppError) -> Self {
        KeyFailure::Internal(e.log_text())
    }
}

/// One paired, unrevoked device of this workspace, and its user. The server hands it out only
/// after the request's signature verified against [`KeyHolder::public_key`].
#[derive(Debug, Clone)]
pub struct KeyHolder<'a> {
    app: &'a App,
    device: KeyDevice,
    user: User,
}

impl App {
    /// The device whose key has `thumbprint`: unknown → [`KeyFailure::SignatureInvalid`] (no
    /// more is said to a stranger), revoked → [`KeyFailure::DeviceRevoked`].
    pub async fn key_holder(&self, thumbprint: &str) -> Result<KeyHolder<'_>, KeyFailure> {
        let device = self
            .store()
            .key_device_by_thumbprint(thumbprint)
            .await?
            .filter(|d| d.workspace_id == self.workspace().id)
            .ok_or(KeyFailure::SignatureInvalid)?;
        if device.revoked_at.is_some() {
            return Err(KeyFailure::DeviceRevoked);
        }
        let user = self.store().get_user(device.user_id).await?;
        Ok(KeyHolder {
            app: self,
            device,
            user,
        })
    }
}

impl KeyHolder<'_> {
    pub fn device(&self) -> &KeyDevice {
        &self.device
    }

    pub fn user(&self) -> &User {
        &self.user
    }

    /// The key the request's signature must verify with.
    pub fn public_key(&self) -> Result<DevicePublicKey, KeyFailure> {
        DevicePublicKey::from_jwk_text(&self.device.public_key_jwk)
    }

    /// Records that the device was seen (at most once a minute).
    pub async fn touch(&self) -> Result<(), KeyFailure> {
        self.app
            .store()
            .touch_key_device(&self.device, now_millis())
            .await?;
        Ok(())
    }

    /// The PIN's retries left (none set: 0).
    pub async fn pin_retries(&self) -> Result<i64, KeyFailure> {
        Ok(self
            .app
            .store()
            .key_pin(self.user.id)
            .await?
            .map_or(0, |p| p.retries))
    }

    /// How events name the device's user acting through it.
    fn actor(&self) -> String {
        format!("behalf_key:{}", self.device.id)
    }
}
