//! The local-key path: the credential is made by the user's own Behalf Key, never by Behalf.
//!
//! ```text
//! pending ──a request to the user's extension, ONE commit (waiting_for_user + event)──▶
//! waiting_for_user ──(the user approves: fresh creationOptions; the extension makes the
//!     credential and answers its attestation; the request is `attested` and the item woken)──▶
//! credential_created (the passkey recorded, ONE commit) ──POST fido2Methods──▶ registered
//!                   └▶ failed: declined / request_expired / the relying party's refusal
//! ```
//!
//! Exactly once: the POST comes only after `credential_created` is committed, and an item found
//! in that state after a crash is reconciled by listing the user's methods for the passkey's tag,
//! as on the on-behalf path. The attestation's challenge is spent once sent, so a registration
//! that never arrived ends the item (the user is asked again by a new job), it is not re-sent.

use behalf_domain::{
    KeyRequest, KeyRequestId, KeyRequestState, Millis, SecurityKeyKind, now_millis,
};

use super::*;

/// Reasons in the item's `error_code`, so a report can be filtered on them.
pub(super) const DECLINED: &str = "declined";
pub(super) const REQUEST_EXPIRED: &str = "request_expired";

impl<R: RelyingParty, S: StageCredentials> Engine<R, S> {
    /// One pass over an item of a local-key job.
    pub(super) async fn local_step(
        &self,
        claim: &Claim,
        context: &JobContext,
    ) -> Result<Step, EngineError> {
        let inner = &self.inner;
        let (item, user) = (&claim.item, &claim.user);
        if !user.enabled || user.lifecycle != Lifecycle::Active {
            return Ok(Step::Done(Finish::skipped("user is disabled"), None));
        }
        let rp_user = rp_user_of(user);
        if item.state == ItemState::CredentialCreated {
            if let Some(step) = self.reconcile(item, user, &rp_user).await? {
                return Ok(step);
            }
            return Ok(Step::Done(
                Finish::failed(
                    "the local key's registration did not reach the relying party, and its challenge is spent: provision the user again to ask them once more",
                ),
                item.passkey_id,
            ));
        }
        let now = now_millis();
        let Some(request) = inner.store.key_request_of_item(item.id).await? else {
            return self.send_request(claim, context, now).await;
        };
        match request.state {
            KeyRequestState::Pending | KeyRequestState::Approved if now < request.expires_at => {
                Ok(Step::Later {
                    why: "waiting for the user to approve in Behalf Key".into(),
                    after: inner.options.local_poll,
                })
            }
            KeyRequestState::Pending | KeyRequestState::Approved | KeyRequestState::Expired => {
                inner.store.expire_key_request(request.id, now).await?;
                Ok(ended(
                    REQUEST_EXPIRED,
                    format!(
                        "request_expired: the user did not approve the registration in Behalf Key before {}",
                        behalf_domain::format_millis(request.expires_at)
                    ),
                ))
            }
            KeyRequestState::Declined => Ok(ended(
                DECLINED,
                "declined: the user declined the registration in Behalf Key".into(),
            )),
            KeyRequestState::Attested => self.register_local(claim, &request, &rp_user).await,
            KeyRequestState::Registered | KeyRequestState::Failed => Ok(Step::Done(
                Finish::failed("the request was settled by an earlier run"),
                item.passkey_id,
            )),
        }
    }

    /// `pending → waiting_for_user`: the request the user's extension lists.
    async fn send_request(
        &self,
        claim: &Claim,
        context: &JobContext,
        now: Millis,
    ) -> Result<Step, EngineError> {
        let inner = &self.inner;
        let (item, user) = (&claim.item, &claim.user);
        let ttl = i64::try_from(inner.options.local_request_ttl.as_millis()).unwrap_or(i64::MAX);
        let request = inner
            .store
            .ensure_key_request(&KeyRequest {
                id: KeyRequestId::new(),
                workspace_id: inner.workspace_id,
                job_id: item.job_id,
                item_id: item.id,
                user_id: user.id,
                rp_id: inner.rp.rp_id().to_owned(),
                state: KeyRequestState::Pending,
                asked_by: context.asked_by.clone(),
                challenge: None,
                user_handle: None,
                registration: None,
                credential_id: None,
                public_key_cose: None,
                aaguid: None,
                created_at: now,
                expires_at: now.saturating_add(ttl),
                updated_at: now,
            })
            .await?;
        let mut set = WriteSet::new();
        set.append_event(
            inner.workspace_id,
            NewEvent::new(
                context.asked_by.clone(),
                EventAction::KeyRequestSent,
                Outcome::Success,
            )
            .user(user.id)
            .rp(inner.rp.rp_id())
            .detail(
                EventDetail::upn(user.upn.as_str())
                    .with("request", request.id)
                    .with("expires", behalf_domain::format_millis(request.expires_at))
                    .with("mode", JobMode::Local),
            ),
        );
        set.update_item(
            item.id,
            &inner.options.worker_id,
            ItemState::WaitingForUser,
            &ItemOutcome::default(),
        );
        match inner.store.commit(set).await {
            Err(StoreError::LeaseLost { .. }) => return Ok(Step::Settled(None)),
            other => other?,
        }
        Ok(Step::Later {
            why: "waiting for the user to approve in Behalf Key".into(),
            after: inner.options.local_poll,
        })
    }

    /// `waiting_for_user → credential_created → registered`: the credential the user's
    /// extension made, recorded, then sent once.
    async fn register_local(
        &self,
        claim: &Claim,
        request: &KeyRequest,
        rp_user: &str,
    ) -> Result<Step, EngineError> {
        let inner = &self.inner;
        let (item, user) = (&claim.item, &claim.user);
        let (Some(registration), Some(credential_id), Some(public_key_cose), Some(aaguid)) = (
            request.registration.as_deref(),
            request.credential_id.as_ref(),
            request.public_key_cose.as_ref(),
            request.aaguid.as_ref(),
        ) else {
            return Ok(Step::Done(
                Finish::failed("the attested request holds no credential"),
                None,
            ));
        };
        let registration: serde_json::Value = match serde_json::from_str(registration) {
            Ok(value) => value,
            Err(e) => {
                return Ok(Step::Done(
                    Finish::failed(format!("the attested request is not JSON: {e}")),
                    None,
                ));
            }
        };
        let mut before_sending = WriteSet::new();
        let key = match inner
            .store
            .current_security_key(user.id, SecurityKeyKind::Device)
            .await?
        {
            Some(key) => key,
            None => before_sending.assign_security_key(
                inner.workspace_id,
                user.id,
                SecurityKeyKind::Device,
                "local",
            ),
        };
        let passkey_id = PasskeyId::new();
        let display_name = self.display_name(user, passkey_id);
        before_sending.insert_passkey(&NewPasskey {
            id: passkey_id,
            workspace_id: inner.workspace_id,
            user_id: user.id,
            security_key_id: key.id,
            rp_id: request.rp_id.clone(),
            credential_id: credential_id.clone(),
            public_key_cose: public_key_cose.clone(),
            aaguid: aaguid.clone(),
            created_by: inner.options.actor.clone(),
        });
        before_sending.update_item(
            item.id,
            &inner.options.worker_id,
            ItemState::CredentialCreated,
            &ItemOutcome {
                passkey_id: Some(passkey_id),
                ..Default::default()
            },
        );
        match inner.store.commit(before_sending).await {
            Err(StoreError::LeaseLost { .. }) => return Ok(Step::Settled(None)),
            other => other?,
        }
        let settled = |state| async move {
            let _ = inner
                .store
                .move_key_request(
                    request.id,
                    &[KeyRequestState::Attested],
                    state,
                    now_millis(),
                )
                .await;
        };
        match inner
            .rp
            .register(rp_user, &display_name, registration)
            .await
        {
            Ok(method) => {
                settled(KeyRequestState::Registered).await;
                Ok(Step::Done(
                    registered_finish(passkey_id, method.id, key.id),
                    Some(passkey_id),
                ))
            }
            // Unknown whether it landed: the next pass reconciles by listing.
            Err(e) if e.kind == RpErrorKind::Unavailable => {
                Ok(Step::unavailable(e.to_string(), &e))
            }
            Err(e) => {
                if let Ok(methods) = inner.rp.list(rp_user).await
                    && let Some(method) = methods
                        .iter()
                        .find(|m| m.display_name.contains(&passkey_tag(passkey_id)))
                {
                    settled(KeyRequestState::Registered).await;
                    return Ok(Step::Done(
                        registered_finish(passkey_id, method.id.clone(), key.id),
                        Some(passkey_id),
                    ));
                }
                // The key is the user's extension's: nothing to destroy here; the record says
                // it never reached the RP.
                inner.store.mark_passkey_revoked(passkey_id).await?;
                settled(KeyRequestState::Failed).await;
                Ok(rp_refusal("registering the local key's passkey", &e).with_passkey(passkey_id))
            }
        }
    }
}

/// An item that ends failed with `code` and `reason`.
fn ended(code: &str, reason: String) -> Step {
    Step::Done(
        Finish {
            state: ItemState::Failed,
            outcome: ItemOutcome {
                reason: Some(reason),
                error_code: Some(code.into()),
                ..Default::default()
            },
            registration: None,
        },
        None,
    )
}
