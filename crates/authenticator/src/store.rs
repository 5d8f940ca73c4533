//! Where credentials live between ceremonies.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use subtle::ConstantTimeEq;

use crate::AuthenticatorError;
use crate::credential::{Credential, CredentialInfo};

/// A home for credentials: the in-memory [`MemoryStore`] for tests, `behalf-vault` for real (each
/// private key encrypted in the database).
///
/// Credentials are keyed by relying party id and credential id. Implementations must make
/// [`CredentialStore::increment_sign_count`] atomic and durable before it returns, so that two
/// instances signing with one credential never reuse a counter value.
#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// Saves a new credential. A credential with the same RP and id already present is an error.
    async fn insert(&self, credential: &Credential) -> Result<(), AuthenticatorError>;

    /// The credential with its secret, or `None`.
    async fn load(
        &self,
        rp_id: &str,
        credential_id: &[u8],
    ) -> Result<Option<Credential>, AuthenticatorError>;

    /// The first of `credential_ids` held for `rp_id`, without touching any secret
    /// (excludeCredentials / allowCredentials matching).
    async fn find_first(
        &self,
        rp_id: &str,
        credential_ids: &[Vec<u8>],
    ) -> Result<Option<Vec<u8>>, AuthenticatorError>;

    /// Public data of the credentials held for `rp_id` (and user handle, when given), newest first.
    async fn list(
        &self,
        rp_id: &str,
        user_handle: Option<&[u8]>,
    ) -> Result<Vec<CredentialInfo>, AuthenticatorError>;

    /// Adds one to the credential's signature counter, persists it, and returns the new value.
    async fn increment_sign_count(
        &self,
        rp_id: &str,
        credential_id: &[u8],
    ) -> Result<u32, AuthenticatorError>;

    /// Destroys the credential; `true` when it existed. After this the key cannot be recovered.
    async fn delete(&self, rp_id: &str, credential_id: &[u8]) -> Result<bool, AuthenticatorError>;
}

#[async_trait]
impl<T: CredentialStore + ?Sized> CredentialStore for Arc<T> {
    async fn insert(&self, credential: &Credential) -> Result<(), AuthenticatorError> {
        (**self).insert(credential).await
    }
    async fn load(
        &self,
        rp_id: &str,
        credential_id: &[u8],
    ) -> Result<Option<Credential>, AuthenticatorError> {
        (**self).load(rp_id, credential_id).await
    }
    async fn find_first(
        &self,
        rp_id: &str,
        ids: &[Vec<u8>],
    ) -> Result<Option<Vec<u8>>, AuthenticatorError> {
        (**self).find_first(rp_id, ids).await
    }
    async fn list(
        &self,
        rp_id: &str,
        user_handle: Option<&[u8]>,
    ) -> Result<Vec<CredentialInfo>, AuthenticatorError> {
        (**self).list(rp_id, user_handle).await
    }
    async fn increment_sign_count(
        &self,
        rp_id: &str,
        credential_id: &[u8],
    ) -> Result<u32, AuthenticatorError> {
        (**self).increment_sign_count(rp_id, credential_id).await
    }
    async fn delete(&self, rp_id: &str, credential_id: &[u8]) -> Result<bool, AuthenticatorError> {
        (**self).delete(rp_id, credential_id).await
    }
}

/// Credentials in memory, for tests and benchmarks. Nothing survives the process.
#[derive(Debug, Default)]
pub struct MemoryStore {
    credentials: Mutex<HashMap<(String, Vec<u8>), Credential>>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct MemoryStoreError(String);

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, Vec<u8>), Credential>> {
        // A panic while holding the lock cannot leave a half-written credential (every write is
        // one insert / field store), so the data is still good.
        self.credentials
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn key(rp_id: &str, credential_id: &[u8]) -> (String, Vec<u8>) {
    (rp_id.to_owned(), credential_id.to_vec())
}

#[async_trait]
impl CredentialStore for MemoryStore {
    async fn insert(&self, credential: &Credential) -> Result<(), AuthenticatorError> {
        let mut all = self.lock();
        let k = key(&credential.info.rp_id, &credential.info.credential_id);
        if all.contains_key(&k) {
            return Err(AuthenticatorError::store(MemoryStoreError(
                "credential already stored".into(),
            )));
        }
        all.insert(k, credential.clone());
        Ok(())
    }

    async fn load(
        &self,
        rp_id: &str,
        credential_id: &[u8],
    ) -> Result<Option<Credential>, AuthenticatorError> {
        Ok(self.lock().get(&key(rp_id, credential_id)).cloned())
    }

    async fn find_first(
        &self,
        rp_id: &str,
        ids: &[Vec<u8>],
    ) -> Result<Option<Vec<u8>>, AuthenticatorError> {
        let all = self.lock();
        Ok(ids
            .iter()
            .find(|id| all.contains_key(&key(rp_id, id)))
            .cloned())
    }

    async fn list(
        &self,
        rp_id: &str,
        user_handle: Option<&[u8]>,
    ) -> Result<Vec<CredentialInfo>, AuthenticatorError> {
        let mut found: Vec<CredentialInfo> = self
            .lock()
            .values()
            .filter(|c| {
                c.info.rp_id == rp_id
                    && user_handle.is_none_or(|h| bool::from(c.info.user_handle.ct_eq(h)))
            })
            .map(|c| c.info.clone())
            .collect();
        found.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| a.credential_id.cmp(&b.credential_id))
        });
        Ok(found)
    }

    async fn increment_sign_count(
        &self,
        rp_id: &str,
        credential_id: &[u8],
    ) -> Result<u32, AuthenticatorError> {
        let mut all = self.lock();
        let c = all.get_mut(&key(rp_id, credential_id)).ok_or_else(|| {
            AuthenticatorError::NoCredentials {
                rp_id: rp_id.to_owned(),
                allow_list: true,
            }
        })?;
        c.info.sign_count = c.info.sign_count.checked_add(1).ok_or_else(|| {
            AuthenticatorError::CounterExhausted {
                credential_id: c.info.credential_id_b64(),
            }
        })?;
        Ok(c.info.sign_count)
    }

    async fn delete(&self, rp_id: &str, credential_id: &[u8]) -> Result<bool, AuthenticatorError> {
        Ok(self.lock().remove(&key(rp_id, credential_id)).is_some())
    }
}
