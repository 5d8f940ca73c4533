//! Temporary Access Passes: issued through Graph, shown once, never stored or logged.

use behalf_domain::{EventAction, EventDetail, NewEvent, Outcome, Secret, Upn, UserId};
use serde::Serialize;

use crate::{AppError, Provisioner};

/// Entra ID's bounds on a pass's lifetime, in minutes.
pub const LIFETIME_MINUTES: std::ops::RangeInclusive<u32> = 10..=43_200;

/// A pass just issued. [`Secret`] keeps it out of `Debug` and logs; the face shows it once.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedTap {
    /// Whom it was issued for, as asked (UPN or Entra object id).
    pub user: String,
    /// Graph's id of the pass (an authentication method of the user), to withdraw it.
    pub method_id: Option<String>,
    pub temporary_access_pass: Secret,
    pub lifetime_in_minutes: u32,
    pub is_usable_once: bool,
    pub start_date_time: Option<String>,
}

impl Provisioner<'_> {
    /// Issues a pass for `user` (a UPN or an Entra object id) and records that one was issued,
    /// never the pass itself.
    pub async fn issue_tap(
        &self,
        user: &str,
        lifetime_minutes: u32,
        usable_once: bool,
    ) -> Result<IssuedTap, AppError> {
        if !LIFETIME_MINUTES.contains(&lifetime_minutes) {
            return Err(AppError::invalid(
                "lifetime",
                format!(
                    "{lifetime_minutes} minutes is outside what Entra allows (10 minutes to 30 days)"
                ),
            ));
        }
        let graph = self.app.directory_graph()?;
        let tap = graph
            .client
            .create_temporary_access_pass(user, lifetime_minutes, usable_once)
            .await
            .map_err(|e| {
                let mut error = AppError::from(e);
                if let AppError::Upstream { message, .. } = &mut error {
                    *message =
                        format!("cannot issue a Temporary Access Pass for {user}: {message}");
                }
                error
            })?;
        let store = self.app.store();
        let workspace = self.app.workspace().id;
        let user_id: Option<UserId> = match Upn::parse(user) {
            Ok(upn) => store.find_user_by_upn(workspace, &upn).await?.map(|u| u.id),
            Err(_) => store
                .find_user_by_external_id(workspace, user)
                .await?
                .map(|u| u.id),
        };
        // That a pass was issued, for whom and how long: never the pass.
        let mut event = NewEvent::new(
            self.graph_actor(&graph.acting),
            EventAction::TapIssued,
            Outcome::Success,
        )
        .detail(
            EventDetail::upn(user)
                .with("method_id", &tap.id)
                .with("lifetime_in_minutes", tap.lifetime_in_minutes)
                .with("is_usable_once", tap.is_usable_once)
                .with("start_date_time", &tap.start_date_time),
        );
        if let Some(id) = user_id {
            event = event.user(id);
        }
        store.append_event(workspace, event).await?;
        Ok(IssuedTap {
            user: user.to_owned(),
            method_id: Some(tap.id),
            temporary_access_pass: tap.temporary_access_pass,
            lifetime_in_minutes: tap.lifetime_in_minutes,
            is_usable_once: tap.is_usable_once,
            start_date_time: tap.start_date_time,
        })
    }
}
