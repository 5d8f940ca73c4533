use std::path::PathBuf;

use thiserror::Error;

/// What can go wrong in the vault. No variant ever carries key material.
#[derive(Debug, Error)]
pub enum VaultError {
    #[error("master key file {path}: {reason}")]
    MasterKeyFile { path: PathBuf, reason: String },

    #[error("master key: {0}")]
    MasterKey(String),

    /// A sealed row names a master key this instance was not given.
    #[error(
        "{what} is sealed by master key {key_id}, which this instance does not have (it has {available}); \
             start with that key (BEHALF_MASTER_KEY_FILE) or give it as a previous key and rotate"
    )]
    UnknownMasterKey {
        what: String,
        key_id: String,
        available: String,
    },

    /// Authentication failed: wrong key, or the row was altered or moved.
    #[error(
        "cannot open {what}: wrong master key, or the sealed data was altered or moved to another row"
    )]
    Unseal { what: String },

    #[error("corrupt sealed data in {what}: {reason}")]
    Corrupt { what: String, reason: String },

    #[error(transparent)]
    Store(#[from] behalf_store::StoreError),

    #[error(transparent)]
    Authenticator(#[from] behalf_authenticator::AuthenticatorError),
}
