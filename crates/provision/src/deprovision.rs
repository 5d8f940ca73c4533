//! Deprovisioning: a user who left loses every passkey Behalf registered, at the RP and at home.

use behalf_authenticator::CredentialStore;
use behalf_domain::{
    EventAction, EventDetail, Lifecycle, NewEvent, Outcome, Passkey, PasskeyState,
    SecurityKeyState, User,
};

use crate::engine::{Engine, EngineError, passkey_tag, rp_user_of};
use crate::rp::{RelyingParty, RpError};

/// What deprovisioning one user did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeprovisionSummary {
    /// Passkeys deleted at the RP (or found already gone) and destroyed in the vault.
    pub revoked: u64,
    /// Passkeys the RP could not delete now, with why; they stay for the next run.
    pub failures: Vec<String>,
}

impl<R: RelyingParty, S: CredentialStore> Engine<R, S> {
    /// Deletes the user's passkeys at the RP, destroys their keys, revokes their security keys
    /// and, when nothing failed, marks the user deprovisioned. Safe to run again.
    pub async fn deprovision(&self, user: &User) -> Result<DeprovisionSummary, EngineError> {
        let inner = self.inner();
        let rp_id = inner.rp.rp_id().to_owned();
        let rp_user = rp_user_of(user);
        let mut summary = DeprovisionSummary::default();
        let passkeys = inner.store.passkeys_of(user.id, &rp_id).await?;
        for passkey in passkeys.iter().filter(|p| p.state != PasskeyState::Revoked) {
            match self.delete_at_rp(&rp_user, passkey).await {
                Ok(()) => {
                    inner
                        .authenticator
                        .store()
                        .delete(&rp_id, &passkey.credential_id)
                        .await
                        .map_err(|e| EngineError::Credentials(e.to_string()))?;
                    inner.store.mark_passkey_revoked(passkey.id).await?;
                    summary.revoked += 1;
                    let event = NewEvent::new(
                        inner.options.actor.clone(),
                        EventAction::PasskeyRevoked,
                        Outcome::Success,
                    )
                    .user(user.id)
                    .rp(rp_id.clone())
                    .detail(EventDetail {
                        passkey_id: Some(passkey.id.to_string()),
                        rp_method_id: passkey.rp_method_id.clone(),
                        ..EventDetail::upn(user.upn.to_string())
                    });
                    inner.store.append_event(inner.workspace_id, event).await?;
                }
                Err(e) => {
                    let event = NewEvent::new(
                        inner.options.actor.clone(),
                        EventAction::PasskeyRevokeFailed,
                        Outcome::Failure,
                    )
                    .user(user.id)
                    .rp(rp_id.clone())
                    .detail(EventDetail {
                        passkey_id: Some(passkey.id.to_string()),
                        reason: Some(e.to_string()),
                        error_code: e.code.clone(),
                        request_id: e.request_id.clone(),
                        ..EventDetail::upn(user.upn.to_string())
                    });
                    inner.store.append_event(inner.workspace_id, event).await?;
                    summary.failures.push(e.to_string());
                }
            }
        }
        if summary.failures.is_empty() {
            for key in inner.store.security_keys_of(user.id).await? {
                if key.state != SecurityKeyState::Revoked {
                    inner
                        .store
                        .set_security_key_state(key.id, SecurityKeyState::Revoked)
                        .await?;
                }
            }
            // Deprovisioned users are not provisioned again until the directory re-enables them.
            inner
                .store
                .set_user_lifecycle(user.id, Lifecycle::Deprovisioned)
                .await?;
            let event = NewEvent::new(
                inner.options.actor.clone(),
                EventAction::UserDeprovisioned,
                Outcome::Success,
            )
            .user(user.id)
            .rp(rp_id)
            .detail(EventDetail::upn(user.upn.to_string()).with("revoked", summary.revoked));
            inner.store.append_event(inner.workspace_id, event).await?;
        }
        Ok(summary)
    }

    /// Removes the passkey at the RP. A passkey never confirmed registered is looked for by its
    /// tag, since a crashed run may have registered it without recording the method id.
    async fn delete_at_rp(&self, rp_user: &str, passkey: &Passkey) -> Result<(), RpError> {
        let rp = &self.inner().rp;
        let method_id = match &passkey.rp_method_id {
            Some(id) => Some(id.clone()),
            None => {
                let tag = passkey_tag(passkey.id);
                rp.list(rp_user)
                    .await?
                    .into_iter()
                    .find(|m| m.display_name.contains(&tag))
                    .map(|m| m.id)
            }
        };
        match method_id {
            Some(id) => rp.delete(rp_user, &id).await,
            None => Ok(()),
        }
    }
}
