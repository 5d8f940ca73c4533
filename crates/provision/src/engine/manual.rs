//! The manual path's step: a Temporary Access Pass issued and mailed, then the user's passkey
//! methods looked at every poll until one of the user's own appears or the pass expires.
//!
//! ```text
//! pending ──issue, mail, ONE commit (waiting_for_user + the pass's id and expiry + events)──▶
//! waiting_for_user ──(every poll, through locked_until)──▶ registered (the user's own passkey)
//!                                                        └▶ failed (tap_expired / withdrawn)
//! ```
//!
//! Crash safety: the pass's record and the move to `waiting_for_user` are one commit, made after
//! the mail went out, so a recorded pass was mailed exactly once and is never mailed again. A
//! pass issued by an attempt that died before that commit cannot be accounted for (its value is
//! gone with the process): the next attempt deletes it and issues a new one.

use behalf_domain::{ItemPass, format_millis, now_millis};

use super::*;
use crate::manual::{ManualPath, UserPasskey};

/// Reasons in the item's `error_code`, so a report can be filtered on them.
pub(super) const TAP_EXPIRED: &str = "tap_expired";
pub(super) const TAP_WITHDRAWN: &str = "tap_withdrawn";

impl<R: RelyingParty, S: StageCredentials> Engine<R, S> {
    /// One pass over an item of a manual job.
    pub(super) async fn manual_step(
        &self,
        claim: &Claim,
        context: &JobContext,
    ) -> Result<Step, EngineError> {
        let Some(manual) = self.inner.options.manual.clone() else {
            return Ok(Step::Done(
                Finish::failed(
                    "this Behalf cannot mail Temporary Access Passes (the manual path is not set up)",
                ),
                None,
            ));
        };
        let user = &claim.user;
        if !user.enabled || user.lifecycle != Lifecycle::Active {
            return Ok(Step::Done(Finish::skipped("user is disabled"), None));
        }
        match &claim.item.pass {
            None => self.send_pass(claim, context, manual.as_ref()).await,
            Some(pass) => {
                self.look_for_passkey(claim, context, manual.as_ref(), pass)
                    .await
            }
        }
    }

    /// `pending → waiting_for_user`: issue a pass, mail it, record it.
    async fn send_pass(
        &self,
        claim: &Claim,
        context: &JobContext,
        manual: &dyn ManualPath,
    ) -> Result<Step, EngineError> {
        let inner = &self.inner;
        let (item, user) = (&claim.item, &claim.user);
        if let Err(why) = manual.ready() {
            return Ok(Step::Done(Finish::failed(why), None));
        }
        let rp_user = rp_user_of(user);
        if item.attempts > 1 {
            // An earlier attempt may have issued a pass and died (or lost Graph's answer) before
            // recording it: nobody knows its value any more, so it goes before a new one is made.
            let passes = match manual.passes(&rp_user).await {
                Ok(passes) => passes,
                Err(e) => return Ok(rp_refusal("listing the user's Temporary Access Passes", &e)),
            };
            for pass in passes {
                if let Err(e) = manual.withdraw_pass(&rp_user, &pass.method_id).await {
                    return Ok(rp_refusal(
                        "deleting a Temporary Access Pass an interrupted attempt issued",
                        &e,
                    ));
                }
                tracing::info!(user = %user.upn, "deleted a Temporary Access Pass an interrupted attempt issued but never recorded");
                let mut set = WriteSet::new();
                self.manual_event(
                    &mut set,
                    context,
                    user,
                    EventAction::TapWithdrawn,
                    Outcome::Success,
                    self.manual_detail(user)
                        .with("method_id", &pass.method_id)
                        .with(
                            "reason",
                            "issued by an interrupted attempt and never recorded: its value is lost",
                        ),
                );
                inner.store.commit(set).await?;
            }
        }
        let pass = match manual.issue_pass(&rp_user).await {
            Ok(pass) => pass,
            Err(e) => return Ok(rp_refusal("issuing a Temporary Access Pass", &e)),
        };
        let issued = self
            .manual_detail(user)
            .with("method_id", &pass.method_id)
            .with("lifetime_in_minutes", pass.lifetime_minutes)
            .with("is_usable_once", pass.usable_once)
            .with("expires", format_millis(pass.expires_at));
        let mailed = manual.mail_pass(user, &pass).await;
        let mut set = WriteSet::new();
        self.manual_event(
            &mut set,
            context,
            user,
            EventAction::TapIssued,
            Outcome::Success,
            issued.clone(),
        );
        match mailed {
            Ok(to) => {
                drop(pass.pass);
                let record = ItemPass {
                    method_id: pass.method_id,
                    issued_at: pass.issued_at,
                    expires_at: pass.expires_at,
                };
                self.manual_event(
                    &mut set,
                    context,
                    user,
                    EventAction::MailSent,
                    Outcome::Success,
                    issued.with("kind", "manual").with("to", &to),
                );
                let poll = i64::try_from(manual.poll().as_millis()).unwrap_or(i64::MAX);
                set.wait_for_user(item.id, &inner.options.worker_id, &record, poll);
                match inner.store.commit(set).await {
                    // Another worker owns the item now (our lease ran out): it cannot account
                    // for this pass and replaces it.
                    Err(StoreError::LeaseLost { .. }) => {}
                    other => other?,
                }
                Ok(Step::Settled(None))
            }
            Err(failure) => {
                // Nobody will receive this pass: withdraw it rather than leave it valid in Entra.
                let withdrawn = manual
                    .withdraw_pass(&rp_user, &pass.method_id)
                    .await
                    .is_ok();
                let to = failure.to.clone().unwrap_or_default();
                self.manual_event(
                    &mut set,
                    context,
                    user,
                    EventAction::MailFailed,
                    Outcome::Failure,
                    issued
                        .with("kind", "manual")
                        .with("to", &to)
                        .with("reason", &failure.reason)
                        .with("pass_withdrawn", withdrawn),
                );
                let outcome = ItemOutcome {
                    reason: Some(format!(
                        "the mail with the Temporary Access Pass could not be sent to {to}: {}{}",
                        failure.reason,
                        if withdrawn {
                            " (the pass was withdrawn)"
                        } else {
                            ""
                        }
                    )),
                    error_code: Some("mail_failed".into()),
                    ..Default::default()
                };
                self.settle(&mut set, claim, context, ItemState::Failed, outcome)
                    .await
            }
        }
    }

    /// `waiting_for_user → registered | failed`, or another look after the poll.
    async fn look_for_passkey(
        &self,
        claim: &Claim,
        context: &JobContext,
        manual: &dyn ManualPath,
        pass: &ItemPass,
    ) -> Result<Step, EngineError> {
        let user = &claim.user;
        let rp_user = rp_user_of(user);
        let methods = match manual.passkeys(&rp_user).await {
            Ok(methods) => methods,
            Err(e) => return Ok(rp_refusal("listing the user's passkeys", &e)),
        };
        // Behalf's own passkeys carry their tag in the display name (see `passkey_tag`).
        let behalf_tags: Vec<String> = claim.passkeys.iter().map(|p| passkey_tag(p.id)).collect();
        let own = methods.iter().find(|m| {
            !behalf_tags.iter().any(|tag| m.display_name.contains(tag))
                && m.created_at.is_some_and(|at| at >= pass.issued_at)
        });
        if let Some(method) = own {
            return self
                .registered_by_user(claim, context, manual, pass, method)
                .await;
        }
        let passes = match manual.passes(&rp_user).await {
            Ok(passes) => passes,
            Err(e) => return Ok(rp_refusal("listing the user's Temporary Access Passes", &e)),
        };
        let listed = passes.iter().find(|p| p.method_id == pass.method_id);
        let past_expiry = now_millis() >= pass.expires_at;
        let ended = match listed {
            Some(p) if p.expired || past_expiry => Some((
                TAP_EXPIRED,
                format!(
                    "tap_expired: the Temporary Access Pass expired at {} before the user registered a passkey",
                    format_millis(pass.expires_at)
                ),
            )),
            None if past_expiry => Some((
                TAP_EXPIRED,
                format!(
                    "tap_expired: the Temporary Access Pass expired at {} before the user registered a passkey",
                    format_millis(pass.expires_at)
                ),
            )),
            None => Some((
                TAP_WITHDRAWN,
                "tap_withdrawn: the Temporary Access Pass was deleted in Entra ID, or replaced by a newer one, before the user registered a passkey".to_owned(),
            )),
            Some(_) => None,
        };
        match ended {
            Some((code, reason)) => {
                let outcome = ItemOutcome {
                    reason: Some(reason),
                    error_code: Some(code.into()),
                    ..Default::default()
                };
                let mut set = WriteSet::new();
                self.settle(&mut set, claim, context, ItemState::Failed, outcome)
                    .await
            }
            None => Ok(Step::Later {
                why: "waiting for the user to register a passkey with the pass".into(),
                after: manual.poll(),
            }),
        }
    }

    async fn registered_by_user(
        &self,
        claim: &Claim,
        context: &JobContext,
        manual: &dyn ManualPath,
        pass: &ItemPass,
        method: &UserPasskey,
    ) -> Result<Step, EngineError> {
        let user = &claim.user;
        // The pass has done its work: one left valid is only a way in for someone else.
        let withdrawn = manual
            .withdraw_pass(&rp_user_of(user), &pass.method_id)
            .await
            .is_ok();
        let outcome = ItemOutcome {
            reason: Some(format!(
                "registered by the user: the passkey '{}'{} is the user's own, not in Behalf's vault",
                method.display_name,
                method
                    .model
                    .as_ref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            )),
            ..Default::default()
        };
        let mut set = WriteSet::new();
        let mut detail = self.manual_detail(user);
        detail.rp_method_id = Some(method.id.clone());
        detail.reason = outcome.reason.clone();
        self.manual_event(
            &mut set,
            context,
            user,
            EventAction::PasskeyRegisteredByUser,
            Outcome::Success,
            detail
                .with("display_name", &method.display_name)
                .with("model", &method.model)
                .with("created", method.created_at.map(format_millis))
                .with("pass_method_id", &pass.method_id)
                .with("pass_withdrawn", withdrawn),
        );
        set.update_item(
            claim.item.id,
            &self.inner.options.worker_id,
            ItemState::Registered,
            &outcome,
        );
        match self.inner.store.commit(set).await {
            Err(StoreError::LeaseLost { .. }) => Ok(Step::Settled(None)),
            Err(e) => Err(e.into()),
            Ok(()) => Ok(Step::Settled(Some((ItemState::Registered, outcome)))),
        }
    }

    /// Commits an item's final state with `set`'s events and the outcome's own event.
    async fn settle(
        &self,
        set: &mut WriteSet,
        claim: &Claim,
        context: &JobContext,
        state: ItemState,
        outcome: ItemOutcome,
    ) -> Result<Step, EngineError> {
        let user = &claim.user;
        let mut detail = self.manual_detail(user);
        detail.reason = outcome.reason.clone();
        detail.error_code = outcome.error_code.clone();
        let (action, result) = match state {
            ItemState::Skipped => (EventAction::ProvisionSkipped, Outcome::Skipped),
            _ => (EventAction::ProvisionFailed, Outcome::Failure),
        };
        self.manual_event(set, context, user, action, result, detail);
        set.update_item(
            claim.item.id,
            &self.inner.options.worker_id,
            state,
            &outcome,
        );
        match self.inner.store.commit(std::mem::take(set)).await {
            Err(StoreError::LeaseLost { .. }) => Ok(Step::Settled(None)),
            Err(e) => Err(e.into()),
            Ok(()) => Ok(Step::Settled(Some((state, outcome)))),
        }
    }

    fn manual_detail(&self, user: &User) -> EventDetail {
        EventDetail {
            upn: Some(user.upn.to_string()),
            worker: Some(self.inner.options.worker_id.clone()),
            ..EventDetail::default()
        }
        .with("mode", JobMode::Manual)
    }

    /// An event of the manual path, in the name of whoever asked for the job.
    fn manual_event(
        &self,
        set: &mut WriteSet,
        context: &JobContext,
        user: &User,
        action: EventAction,
        outcome: Outcome,
        detail: EventDetail,
    ) {
        set.append_event(
            self.inner.workspace_id,
            NewEvent::new(context.asked_by.clone(), action, outcome)
                .user(user.id)
                .rp(self.inner.rp.rp_id())
                .detail(detail),
        );
    }
}
