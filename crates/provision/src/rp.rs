//! What the engine needs from a relying party that registers passkeys on a user's behalf.

use async_trait::async_trait;

/// One registered method as the relying party reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredMethod {
    /// The RP's own id for it (Graph: the fido2AuthenticationMethod id).
    pub id: String,
    pub display_name: String,
}

/// How a relying party call failed, as far as the engine must tell cases apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpErrorKind {
    /// The RP answered and said no: nothing was registered.
    Rejected,
    /// The user does not exist at the RP.
    UnknownUser,
    /// The RP refuses to provision the caller's own account (Graph: 405 `methodNotAllowed`).
    OwnAccount,
    /// No usable answer (throttled past the client's retries, 5xx, connection lost): a write
    /// may or may not have happened.
    Unavailable,
}

/// A relying party error, with what the admin needs to look it up (code, request id).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}{}{}", code.as_ref().map(|c| format!(" [{c}]")).unwrap_or_default(), request_id.as_ref().map(|r| format!(" (request-id {r})")).unwrap_or_default())]
pub struct RpError {
    pub kind: RpErrorKind,
    pub status: Option<u16>,
    pub code: Option<String>,
    pub message: String,
    pub request_id: Option<String>,
    /// The RP asked not to be sent this call again before this long (a 429's or a 503's
    /// `Retry-After`): the engine keeps the time with the item, so the next attempt, by this
    /// process or the next one after a crash, does not come early.
    pub retry_after: Option<std::time::Duration>,
}

impl RpError {
    pub fn new(kind: RpErrorKind, message: impl Into<String>) -> Self {
        RpError {
            kind,
            status: None,
            code: None,
            message: message.into(),
            request_id: None,
            retry_after: None,
        }
    }
}

/// A relying party's passkey-on-behalf API (Microsoft Graph `fido2Methods`, SPEC §3.1).
///
/// `user` is the RP's id for the user (Entra object id) or its UPN.
#[async_trait]
pub trait RelyingParty: Send + Sync {
    /// The WebAuthn relying party id credentials are made for (`login.microsoft.com`).
    fn rp_id(&self) -> &str;

    /// The creation options for a new credential, as the RP's raw JSON.
    async fn creation_options(&self, user: &str) -> Result<String, RpError>;

    /// Registers `public_key_credential` (WebAuthn registration JSON) under `display_name`.
    async fn register(
        &self,
        user: &str,
        display_name: &str,
        public_key_credential: serde_json::Value,
    ) -> Result<RegisteredMethod, RpError>;

    /// The user's registered passkey methods.
    async fn list(&self, user: &str) -> Result<Vec<RegisteredMethod>, RpError>;

    /// Deletes one method; an already absent method is success.
    async fn delete(&self, user: &str, method_id: &str) -> Result<(), RpError>;
}
