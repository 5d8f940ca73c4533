//! Behalf's key vault: a [`behalf_authenticator::CredentialStore`] over the database in which
//! every credential private key (and every other workspace secret) is sealed.
//!
//! Envelope encryption (spec §5): each secret is encrypted with its own random 256-bit data
//! key (AES-256-GCM, the row's identity — table, workspace, RP id, credential id — as
//! associated data); the data key is encrypted with the workspace [`MasterKey`] (AES-256-GCM,
//! the same identity plus the master key's id). The master key lives in a file, never in the
//! database. Rows record the id of the master key that wrapped them, so [`Vault::rotate`]
//! re-wraps data keys under a new master key without touching any sealed private key.
//!
//! ```no_run
//! # async fn demo(store: behalf_store::Store, workspace: behalf_domain::WorkspaceId) -> Result<(), behalf_vault::VaultError> {
//! use behalf_vault::{MasterKey, Vault};
//! let (master_key, _path) = MasterKey::resolve(None, std::path::Path::new("/var/lib/behalf"))?;
//! let vault = Vault::new(store, workspace, master_key);
//! // `vault` is a CredentialStore: hand it to behalf_authenticator::Authenticator::new.
//! # let _ = vault; Ok(()) }
//! ```
//!
//! Destroying a credential deletes its row. On SQLite the store runs with
//! `PRAGMA secure_delete = ON`, so the sealed bytes are overwritten in the file. On PostgreSQL
//! the dead row stays in the table file until VACUUM reuses the space (and in WAL, replicas and
//! backups as long as they are kept): it is still sealed, so it is unrecoverable without the
//! master key that wrapped it; rotating the master key and destroying the old one shreds it.
#![forbid(unsafe_code)]

mod envelope;
mod error;
mod master_key;
mod vault;

pub use error::VaultError;
pub use master_key::{MASTER_KEY_FILE_ENV, MASTER_KEY_FILE_NAME, MasterKey};
pub use vault::{RotationReport, Vault};
