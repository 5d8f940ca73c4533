//! Where the engine keeps the credentials it creates.

use std::sync::Arc;

use async_trait::async_trait;
use behalf_authenticator::{AuthenticatorError, Credential, CredentialStore, MemoryStore};
use behalf_store::WriteSet;
use behalf_vault::Vault;

/// A [`CredentialStore`] that can add a new credential to a [`WriteSet`], so that the sealed
/// credential commits in one transaction with the passkey's record and the item's
/// `credential_created` state: one commit before the registration is sent instead of two, and
/// no window in which a key exists that no record knows.
#[async_trait]
pub trait StageCredentials: CredentialStore {
    /// Adds `credential` to `set`; a store outside the database stores it at once instead.
    async fn stage_insert(
        &self,
        set: &mut WriteSet,
        credential: &Credential,
    ) -> Result<(), AuthenticatorError>;
}

#[async_trait]
impl StageCredentials for Vault {
    async fn stage_insert(
        &self,
        set: &mut WriteSet,
        credential: &Credential,
    ) -> Result<(), AuthenticatorError> {
        self.stage_credential(set, credential)
            .map_err(AuthenticatorError::store)
    }
}

/// The in-memory store of tests and tools: nothing to share a transaction with.
#[async_trait]
impl StageCredentials for Arc<MemoryStore> {
    async fn stage_insert(
        &self,
        _set: &mut WriteSet,
        credential: &Credential,
    ) -> Result<(), AuthenticatorError> {
        self.insert(credential).await
    }
}
