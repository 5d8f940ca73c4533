//! Behalf's provisioning engine.
//!
//! A job is a set of users and a relying party; each user is an item with a persisted state
//! (`pending → credential_created → registered`, or `failed` / `skipped`;
//! a job of the manual path goes `pending → waiting_for_user → registered | failed`, see
//! [`ManualPath`]).
//! Workers lease items from the store, so a job can be shared by threads and by Behalf instances
//! on one PostgreSQL, and resumed after any crash:
//!
//! - the credential is sealed in the vault and the passkey recorded **before** it is sent to the
//!   relying party, so a registration that lands always has its key at home;
//! - an item found in `credential_created` is reconciled by listing the user's methods at the
//!   RP and looking for the passkey's tag (in its display name) before anything is sent again,
//!   so a re-run never registers twice;
//! - a credential whose registration was refused or never arrived is destroyed, so no key is
//!   left behind without a registered method.
//!
//! The relying party is a trait ([`RelyingParty`]); Microsoft Entra ID through Graph is one
//! implementation, kept in the binary's wiring so this crate needs no HTTP client.
#![forbid(unsafe_code)]

mod attestation;
mod credentials;
pub mod csv_input;
mod deprovision;
mod engine;
mod lease;
mod manual;
mod progress;
mod rp;

pub use attestation::{AttestationMode, workspace_attestation};
pub use credentials::StageCredentials;
pub use deprovision::DeprovisionSummary;
pub use engine::{
    DEAD_HOLDER_HOLD, Engine, EngineError, EngineOptions, RunSummary, is_dead_local_worker,
    job_options, local_worker_id,
};
pub use lease::while_renewing;
pub use manual::{IssuedPass, MailFailure, ManualPath, PassStatus, UserPasskey};
pub use progress::{ItemReport, Progress, ProgressSnapshot};
pub use rp::{RegisteredMethod, RelyingParty, RpError, RpErrorKind};
