//! One item's step: from wherever it stands to its next state, reconciling after a crash.

use super::*;

/// How far [`Engine::prepare`] took an item.
pub(super) enum Prepared {
    /// The pass ended before anything is to be sent (skipped, reconciled, refused, deferred).
    Settled(Step),
    /// A registration ready to send once `before_sending` is durable.
    Ready(Box<Ready>),
}

/// A credential made for an item, not yet committed nor sent.
pub(super) struct Ready {
    /// The key (when the user gets one now), the sealed credential, the passkey's record and
    /// the item's `credential_created`: to commit, and await, **before** sending `unsent`.
    pub(super) before_sending: WriteSet,
    pub(super) unsent: Unsent,
}

/// The registration of a [`Ready`] item, for [`Engine::send`].
pub(super) struct Unsent {
    registration: behalf_authenticator::Registration,
    passkey_id: PasskeyId,
    key_id: behalf_domain::SecurityKeyId,
    display_name: String,
    rp_user: String,
}

impl<R: RelyingParty, S: StageCredentials> Engine<R, S> {
    /// One pass over an item, from wherever it stands up to the registration ready to send:
    /// reconciling after a crash, the creationOptions call and the credential. Nothing of it
    /// is committed (but what a reconciliation settles).
    pub(super) async fn prepare(&self, claim: &Claim) -> Result<Prepared, EngineError> {
        let inner = &self.inner;
        let (item, user) = (&claim.item, &claim.user);
        let rp_id = inner.rp.rp_id();
        let rp_user = rp_user_of(user);
        let settled = |step| Ok(Prepared::Settled(step));

        // A crash may have left a passkey between "sealed" and "known to be registered".
        if let Some(step) = self.reconcile(item, user, &rp_user).await? {
            return settled(step);
        }
        if !user.enabled || user.lifecycle != Lifecycle::Active {
            return settled(Step::Done(Finish::skipped("user is disabled"), None));
        }
        if claim
            .passkeys
            .iter()
            .any(|p| p.state == PasskeyState::Registered)
        {
            return settled(Step::Done(
                Finish::skipped(format!("already has a Behalf passkey on {rp_id}")),
                None,
            ));
        }
        // What is written before the registration is sent, in one commit: the key (when the
        // user gets one now), the sealed credential, the passkey's record and the item's new
        // state.
        let mut before_sending = WriteSet::new();
        let key = match claim.vault_key.clone() {
            Some(key) => key,
            None if inner.options.auto_assign_vault_key => before_sending.assign_security_key(
                inner.workspace_id,
                user.id,
                SecurityKeyKind::Vault,
                "vault",
            ),
            None => {
                return settled(Step::Done(
                    Finish::skipped("no security key assigned"),
                    None,
                ));
            }
        };

        // pending → credential_created, in the one commit the caller makes and awaits before
        // sending (`Ready::before_sending`, staged below). The item is not recorded
        // `options_fetched` first: a commit each user waits for (7–9 ms against two 54 ms round
        // trips at 64 × 50 ms) that exactly-once does not need. What it needs is this: **the
        // sealed credential, the passkey's record and the item's `credential_created` are durable
        // before the fido2Methods POST is sent**, so that a crash after sending is reconciled by
        // the passkey's tag (`reconcile`, which lists the user's methods) and never POSTed twice.
        // That commit stays before the POST. A crash between the creationOptions GET and it
        // leaves the item `pending` (or `options_fetched`, from an older release; both are
        // retried the same way): nothing was sent that could land, the challenge is left to
        // expire, and the next attempt (`attempts > 1`) fetches fresh options and destroys
        // whatever the dead one may have sealed.
        let options_json = match inner.rp.creation_options(&rp_user).await {
            Ok(json) => json,
            Err(e) => return settled(rp_refusal("fetching creation options", &e)),
        };

        let options = match CreationOptions::from_json(&options_json) {
            Ok(options) => options,
            Err(e) => {
                return settled(Step::Done(
                    Finish::failed(format!("the RP's creation options are unusable: {e}")),
                    None,
                ));
            }
        };
        if item.attempts > 1 {
            // An earlier attempt died before sending anything: clean up what it left.
            self.destroy_unsent_credentials(user, rp_id, &options.user_handle)
                .await?;
        }

        // → credential_created: sealed in the vault and staged with the passkey's record and
        // the item's state, for the caller's one commit before sending.
        let (registration, credential) =
            match inner.authenticator.make_credential_unstored(&options).await {
                Ok(made) => made,
                // The vault's database is unreachable: nothing was made, try again later.
                Err(e @ behalf_authenticator::AuthenticatorError::Store(_)) => {
                    return settled(Step::Retry(format!("the credential store failed: {e}")));
                }
                Err(e) => {
                    return settled(Step::Done(
                        Finish::failed(format!("the authenticator refused: {e}")),
                        None,
                    ));
                }
            };
        if let Err(e) = inner
            .authenticator
            .store()
            .stage_insert(&mut before_sending, &credential)
            .await
        {
            return settled(Step::Retry(format!("the credential store failed: {e}")));
        }
        // The secret is sealed in the set (or stored): the clear key goes (zeroed) now.
        drop(credential);
        let passkey_id = PasskeyId::new();
        let display_name = self.display_name(user, passkey_id);
        before_sending.insert_passkey(&NewPasskey {
            id: passkey_id,
            workspace_id: inner.workspace_id,
            user_id: user.id,
            security_key_id: key.id,
            rp_id: rp_id.to_owned(),
            credential_id: registration.credential.credential_id.clone(),
            public_key_cose: registration.credential.public_key_cose.clone(),
            aaguid: registration.credential.aaguid.to_string(),
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
        Ok(Prepared::Ready(Box::new(Ready {
            before_sending,
            unsent: Unsent {
                registration,
                passkey_id,
                key_id: key.id,
                display_name,
                rp_user,
            },
        })))
    }

    /// Sends a prepared registration: `credential_created → registered` (or refused, or
    /// unknown until reconciled). **The caller has committed its `Ready::before_sending` and
    /// awaited that commit first**: it is what makes a crash after sending reconcilable by the
    /// passkey's tag instead of sent again.
    pub(super) async fn send(&self, unsent: Unsent) -> Result<Step, EngineError> {
        let inner = &self.inner;
        let rp_id = inner.rp.rp_id();
        let Unsent {
            registration,
            passkey_id,
            key_id,
            display_name,
            rp_user,
        } = unsent;
        match inner
            .rp
            .register(&rp_user, &display_name, registration.response.to_json())
            .await
        {
            Ok(method) => Ok(Step::Done(
                registered_finish(passkey_id, method.id, key_id),
                Some(passkey_id),
            )),
            Err(e) if e.kind == RpErrorKind::Unavailable => {
                // Unknown whether it landed: the next pass reconciles by listing.
                Ok(Step::unavailable(e.to_string(), &e))
            }
            Err(e) => {
                // A refusal can follow an earlier attempt of the same POST that did land (a 5xx
                // retried by the client, then "challenge already used"): look before destroying
                // the key, or the RP would keep a method whose key is gone.
                if let Ok(methods) = inner.rp.list(&rp_user).await
                    && let Some(method) = methods
                        .iter()
                        .find(|m| m.display_name.contains(&passkey_tag(passkey_id)))
                {
                    return Ok(Step::Done(
                        registered_finish(passkey_id, method.id.clone(), key_id),
                        Some(passkey_id),
                    ));
                }
                self.abandon(passkey_id, rp_id, &registration.credential.credential_id)
                    .await?;
                Ok(rp_refusal("registering the passkey", &e).with_passkey(passkey_id))
            }
        }
    }

    /// Settles an item an earlier pass left in `credential_created`. `Some` when settled.
    pub(super) async fn reconcile(
        &self,
        item: &behalf_domain::Item,
        user: &User,
        rp_user: &str,
    ) -> Result<Option<Step>, EngineError> {
        let inner = &self.inner;
        if item.state != ItemState::CredentialCreated {
            return Ok(None);
        }
        let Some(passkey_id) = item.passkey_id else {
            return Ok(None);
        };
        let passkey = inner.store.get_passkey(passkey_id).await?;
        match passkey.state {
            PasskeyState::Registered => {
                return Ok(Some(Step::Done(
                    Finish {
                        state: ItemState::Registered,
                        outcome: ItemOutcome::default(),
                        registration: None,
                    },
                    Some(passkey_id),
                )));
            }
            PasskeyState::Revoked => return Ok(None),
            PasskeyState::Created => {}
        }
        let methods = match inner.rp.list(rp_user).await {
            Ok(methods) => methods,
            Err(e) if e.kind == RpErrorKind::Unavailable => {
                return Ok(Some(Step::unavailable(e.to_string(), &e)));
            }
            Err(e) => {
                return Ok(Some(
                    rp_refusal("listing the user's passkeys", &e).with_passkey(passkey_id),
                ));
            }
        };
        let tag = passkey_tag(passkey_id);
        if let Some(method) = methods.iter().find(|m| m.display_name.contains(&tag)) {
            tracing::info!(user = %user.upn, "reconciled: the earlier registration had landed");
            return Ok(Some(Step::Done(
                registered_finish(passkey_id, method.id.clone(), passkey.security_key_id),
                Some(passkey_id),
            )));
        }
        // It never arrived: destroy the key, and start over with fresh options.
        self.abandon(passkey_id, &passkey.rp_id, &passkey.credential_id)
            .await?;
        Ok(None)
    }

    /// The RP does not have this passkey and never will: destroy the key, keep the record.
    pub(super) async fn abandon(
        &self,
        passkey_id: PasskeyId,
        rp_id: &str,
        credential_id: &[u8],
    ) -> Result<(), EngineError> {
        self.inner
            .authenticator
            .store()
            .delete(rp_id, credential_id)
            .await
            .map_err(|e| EngineError::Credentials(e.to_string()))?;
        self.inner.store.mark_passkey_revoked(passkey_id).await?;
        Ok(())
    }

    /// What an attempt that died before sending its registration left behind, destroyed:
    ///
    /// - passkeys recorded `created` whose item never reached `credential_created` (reconcile
    ///   settles those that did, so any still `created` here were never sent: the POST comes only
    ///   after that state is written);
    /// - credentials sealed for this user handle that no passkey record knows (left by a
    ///   credential store that cannot commit with the passkey's record, unlike the vault, or by
    ///   an earlier release that sealed in a commit of its own).
    pub(super) async fn destroy_unsent_credentials(
        &self,
        user: &User,
        rp_id: &str,
        user_handle: &[u8],
    ) -> Result<(), EngineError> {
        for passkey in self.inner.store.passkeys_of(user.id, rp_id).await? {
            if passkey.state == PasskeyState::Created {
                tracing::info!(user = %user.upn, "destroying a credential an interrupted run recorded but never sent");
                self.abandon(passkey.id, rp_id, &passkey.credential_id)
                    .await?;
            }
        }
        let vault = self.inner.authenticator.store();
        let sealed = vault
            .list(rp_id, Some(user_handle))
            .await
            .map_err(|e| EngineError::Credentials(e.to_string()))?;
        for credential in sealed {
            if !self
                .inner
                .store
                .passkey_exists(rp_id, &credential.credential_id)
                .await?
            {
                tracing::info!(
                    "destroying a credential an interrupted run sealed but never recorded"
                );
                vault
                    .delete(rp_id, &credential.credential_id)
                    .await
                    .map_err(|e| EngineError::Credentials(e.to_string()))?;
            }
        }
        Ok(())
    }

    pub(super) fn display_name(&self, user: &User, passkey_id: PasskeyId) -> String {
        let date = behalf_domain::format_millis(behalf_domain::now_millis());
        let rendered = self
            .inner
            .options
            .display_name_template
            .replace("{upn}", user.upn.as_str())
            .replace("{display_name}", &user.display_name)
            .replace("{date}", date.get(..10).unwrap_or(&date));
        format!("{rendered} {}", passkey_tag(passkey_id))
    }
}

/// The tag that identifies a passkey in its display name: Graph does not return credential ids,
/// so this is how a resumed run recognises its own registration.
pub(crate) fn passkey_tag(passkey_id: PasskeyId) -> String {
    // The random tail of the UUID v7 (its head is a timestamp, shared by a batch).
    let hex = passkey_id.0.simple().to_string();
    format!("#{}", &hex[20..])
}

/// The user's id at the RP: the directory's object id, else the UPN.
pub(crate) fn rp_user_of(user: &User) -> String {
    user.external_id
        .clone()
        .unwrap_or_else(|| user.upn.to_string())
}
