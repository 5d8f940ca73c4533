//! Claims: items leased a few at a time, with what one item's step needs of its user.

use super::*;

/// Items a run has claimed and not yet started, shared by its workers.
#[derive(Default)]
pub(super) struct Claims {
    pub(super) queue: tokio::sync::Mutex<VecDeque<Claim>>,
}

/// Items claimed in one query at most: enough to save most of the reads, few enough that a
/// stopped or dead run holds back little.
pub(super) const CLAIM_BATCH: usize = 32;

/// A claimed item and what was known of its user when it was claimed.
pub(super) struct Claim {
    pub(super) item: behalf_domain::Item,
    pub(super) user: User,
    /// The user's passkeys on this RP.
    pub(super) passkeys: Vec<behalf_domain::Passkey>,
    /// The user's current vault key, if any.
    pub(super) vault_key: Option<behalf_domain::SecurityKey>,
}

impl<R: RelyingParty, S: StageCredentials> Engine<R, S> {
    /// The next item to work on, with what `step` needs to know about its user. Items are
    /// claimed a few at a time, and their users, passkeys and keys read in one query each.
    pub(super) async fn next_claim(
        &self,
        job_id: JobId,
        lease_ms: i64,
        claims: &Claims,
    ) -> Result<Option<Claim>, EngineError> {
        let inner = &self.inner;
        let mut queue = claims.queue.lock().await;
        if let Some(claim) = queue.pop_front() {
            return Ok(Some(claim));
        }
        let batch = i64::try_from(inner.options.concurrency.clamp(1, CLAIM_BATCH)).unwrap_or(1);
        let items = inner
            .store
            .claim_items(job_id, &inner.options.worker_id, batch, lease_ms)
            .await?;
        if items.is_empty() {
            return Ok(None);
        }
        let ids: Vec<UserId> = items.iter().map(|i| i.user_id).collect();
        let mut users: HashMap<UserId, User> = inner
            .store
            .get_users(&ids)
            .await?
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
        let mut passkeys = inner
            .store
            .passkeys_of_users(&ids, inner.rp.rp_id())
            .await?;
        let mut keys = inner
            .store
            .current_security_keys(&ids, SecurityKeyKind::Vault)
            .await?;
        for item in items {
            let user = users
                .remove(&item.user_id)
                .ok_or_else(|| StoreError::NotFound {
                    kind: "user",
                    key: item.user_id.to_string(),
                })?;
            queue.push_back(Claim {
                passkeys: passkeys.remove(&user.id).unwrap_or_default(),
                vault_key: keys.remove(&user.id),
                item,
                user,
            });
        }
        Ok(queue.pop_front())
    }
}
