//! The manual path's passes and mail (the engine's [`ManualPath`]): Temporary Access Passes
//! through Graph (`[mail] tap_lifetime_minutes`, `tap_usable_once`), mailed with the activation
//! template through the `[mail]` relay; the user's passkey methods read back from Graph.

use std::time::Duration;

use async_trait::async_trait;
use behalf_domain::{User, format_millis, now_millis, parse_rfc3339};
use behalf_graph::GraphClient;
use behalf_mail::{MailKind, Mailer, Values};
use behalf_provision::{IssuedPass, MailFailure, ManualPath, PassStatus, RpError, UserPasskey};

use crate::microsoft::rp_error;
use crate::ops::mail::{SECURITY_INFO_URL, recipient};

/// Graph and the relay, as the engine's manual path.
#[derive(Debug)]
pub struct GraphManualPath {
    pub(crate) client: GraphClient,
    /// The relay and its templates, or why mail cannot go out (checked at start, said per item).
    pub(crate) mailer: Result<Mailer, String>,
    pub(crate) lifetime_minutes: u32,
    pub(crate) usable_once: bool,
    pub(crate) poll: Duration,
}

#[async_trait]
impl ManualPath for GraphManualPath {
    fn ready(&self) -> Result<(), String> {
        self.mailer.as_ref().map(|_| ()).map_err(Clone::clone)
    }

    fn poll(&self) -> Duration {
        self.poll
    }

    async fn issue_pass(&self, user: &str) -> Result<IssuedPass, RpError> {
        let asked = now_millis();
        // A 429's Retry-After comes back to the engine, which keeps it with the item.
        let tap = self
            .client
            .deferring()
            .create_temporary_access_pass(user, self.lifetime_minutes, self.usable_once)
            .await
            .map_err(rp_error)?;
        let time = |t: &Option<String>| t.as_deref().and_then(|s| parse_rfc3339(s).ok());
        let issued_at = time(&tap.created_date_time).unwrap_or(asked);
        let starts = time(&tap.start_date_time).unwrap_or(issued_at);
        Ok(IssuedPass {
            method_id: tap.id,
            pass: tap.temporary_access_pass,
            issued_at,
            expires_at: starts + i64::from(tap.lifetime_in_minutes) * 60_000,
            lifetime_minutes: tap.lifetime_in_minutes,
            usable_once: tap.is_usable_once,
        })
    }

    async fn passes(&self, user: &str) -> Result<Vec<PassStatus>, RpError> {
        let passes = self
            .client
            .deferring()
            .list_temporary_access_passes(user)
            .await
            .map_err(rp_error)?;
        Ok(passes
            .into_iter()
            .map(|p| PassStatus {
                expired: p.method_usability_reason.as_deref() == Some("Expired"),
                method_id: p.id,
            })
            .collect())
    }

    async fn withdraw_pass(&self, user: &str, method_id: &str) -> Result<(), RpError> {
        self.client
            .delete_temporary_access_pass(user, method_id)
            .await
            .map(|_| ())
            .map_err(rp_error)
    }

    async fn passkeys(&self, user: &str) -> Result<Vec<UserPasskey>, RpError> {
        let methods = self
            .client
            .deferring()
            .list_fido2_methods(user)
            .await
            .map_err(rp_error)?;
        Ok(methods
            .into_iter()
            .map(|m| UserPasskey {
                created_at: m
                    .created_date_time
                    .as_deref()
                    .and_then(|s| parse_rfc3339(s).ok()),
                display_name: m.display_name.unwrap_or_default(),
                model: m.model,
                id: m.id,
            })
            .collect())
    }

    async fn mail_pass(&self, user: &User, pass: &IssuedPass) -> Result<String, MailFailure> {
        let to = recipient(user, None);
        let mailer = self.mailer.as_ref().map_err(|reason| MailFailure {
            to: Some(to.clone()),
            reason: reason.clone(),
        })?;
        let values = Values::new()
            .set("display_name", user.display_name.clone())
            .set("upn", user.upn.to_string())
            .secret("pass", &pass.pass)
            .set("expires", format_millis(pass.expires_at))
            .set("lifetime_minutes", pass.lifetime_minutes.to_string())
            .set(
                "once_note",
                if pass.usable_once {
                    ", for one sign-in"
                } else {
                    ""
                },
            )
            .set("sign_in_url", SECURITY_INFO_URL);
        let sent = mailer
            .send(MailKind::Activation, &to, &user.display_name, &values)
            .await;
        drop(values);
        sent.map(|()| to.clone()).map_err(|e| MailFailure {
            to: Some(to),
            reason: e.to_string(),
        })
    }
}
