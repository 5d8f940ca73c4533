//! What the engine needs for the manual path: for users whose key cannot be provisioned on their
//! behalf, a Temporary Access Pass is issued and mailed, and the user's passkey methods watched
//! until one of the user's own appears or the pass expires.
//!
//! Issuing a pass and mailing it belong to the application (Graph's TAP API, the `[mail]` relay
//! and its templates), so the engine sees them through [`ManualPath`]; the engine owns the
//! item's states and what is committed when.

use std::time::Duration;

use async_trait::async_trait;
use behalf_domain::{Millis, Secret, User};

use crate::rp::RpError;

/// A pass just issued. The pass itself is in a [`Secret`]: it goes into the mail and nowhere else.
#[derive(Debug)]
pub struct IssuedPass {
    /// Graph's id for it (a `temporaryAccessPassAuthenticationMethod`).
    pub method_id: String,
    pub pass: Secret,
    /// When Graph created it, by Graph's clock (the clock its methods' `createdDateTime` use).
    pub issued_at: Millis,
    pub expires_at: Millis,
    pub lifetime_minutes: u32,
    pub usable_once: bool,
}

/// One of the user's passes as Graph lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassStatus {
    pub method_id: String,
    /// Graph says it can no longer be used because its lifetime is over
    /// (`methodUsabilityReason: Expired`).
    pub expired: bool,
}

/// One of the user's passkey methods, with when it was registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPasskey {
    pub id: String,
    pub display_name: String,
    /// Graph's `createdDateTime`; `None` when Graph did not say.
    pub created_at: Option<Millis>,
    /// The authenticator's model, when Graph knows it.
    pub model: Option<String>,
}

/// Why a pass's mail did not go out, with the address it was for.
#[derive(Debug, Clone)]
pub struct MailFailure {
    pub to: Option<String>,
    pub reason: String,
}

/// Passes and their mail, for the manual path (Microsoft Graph and the `[mail]` relay in the
/// application). `user` is the RP's id for the user (Entra object id) or its UPN.
#[async_trait]
pub trait ManualPath: Send + Sync + std::fmt::Debug {
    /// Why no pass can be mailed now (mail not configured, a template broken), in words.
    fn ready(&self) -> Result<(), String>;

    /// How long between two looks at a waiting user's methods.
    fn poll(&self) -> Duration;

    /// Issues a pass (Graph keeps one per user: a new one replaces an older one).
    async fn issue_pass(&self, user: &str) -> Result<IssuedPass, RpError>;

    /// The user's passes.
    async fn passes(&self, user: &str) -> Result<Vec<PassStatus>, RpError>;

    /// Deletes a pass; an already absent one is success.
    async fn withdraw_pass(&self, user: &str, method_id: &str) -> Result<(), RpError>;

    /// The user's passkey (FIDO2) methods.
    async fn passkeys(&self, user: &str) -> Result<Vec<UserPasskey>, RpError>;

    /// Mails `pass` to the user with the activation template; the address it went to.
    async fn mail_pass(&self, user: &User, pass: &IssuedPass) -> Result<String, MailFailure>;
}
