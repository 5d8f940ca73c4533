//! Microsoft Graph client for Behalf: OAuth 2.0 (client credentials with a secret or a
//! certificate, delegated device-code sign-in), paging and delta queries, passkey (FIDO2) and
//! Temporary Access Pass methods, the FIDO2 method policy; retries that honour `Retry-After`,
//! and a pacer shared by clones that slows down before Graph throttles.
//!
//! ```no_run
//! # async fn demo() -> Result<(), behalf_graph::GraphError> {
//! use behalf_graph::{Credential, GraphClient, GraphSettings};
//! let graph = GraphClient::new(GraphSettings::new(
//!     "contoso.onmicrosoft.com",
//!     Credential::ClientSecret { client_id: "app".into(), secret: "s".into() },
//! ))?;
//! let options = graph.fido2_creation_options("alice@contoso.com", Some(60)).await?;
//! # let _ = options; Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod auth;
mod authmethods;
mod cert;
mod client;
mod delta;
mod devicecode;
mod error;
mod groups;
mod pacing;
mod policy;
mod retry;
mod tap;
mod tap_policy;
mod users;
mod writes;

pub use auth::{Credential, DelegatedTokens, REFRESH_MARGIN, TokenPermissions};
pub use authmethods::{DeleteOutcome, Fido2Method};
pub use cert::{AssertionAlgorithm, CertificateCredential};
pub use client::{
    ApiVersion, GLOBAL_GRAPH, GLOBAL_LOGIN, GraphClient, GraphSettings, TlsSettings, http_client,
    segment,
};
pub use delta::{DeltaPage, GroupChange, MemberChange, UserChange, UserFields};
pub use devicecode::{DeviceCodeLogin, DeviceCodeStart};
pub use error::GraphError;
pub use groups::{GROUP_SELECT, GraphGroup};
pub use pacing::{Pacer, PacingSettings, PacingStats};
pub use policy::{FIDO2_POLICY_PATH, Fido2Policy, KeyRestrictions};
pub use retry::{RetryPolicy, parse_retry_after};
pub use tap::{TemporaryAccessPass, TemporaryAccessPassMethod};
pub use tap_policy::{ALL_USERS_TARGET, PolicyTarget, TAP_POLICY_PATH, TapPolicy};
pub use users::{GraphUser, Page, USER_SELECT};
pub use writes::{NewGroup, NewUser, Refusal, WriteOutcome};

/// Application permission needed to register passkeys on behalf of users (beta and v1.0).
pub const PERMISSION_AUTH_METHODS: &str = "UserAuthenticationMethod.ReadWrite.All";
/// The narrower v1.0 permission for passkeys only.
pub const PERMISSION_PASSKEYS: &str = "UserAuthMethod-Passkey.ReadWrite.All";
