//! Onboarding mail: "send activation mail" issues a Temporary Access Pass through Graph and mails
//! it with the sign-in steps, from the admin's templates, through the `[mail]` relay.
//!
//! The pass goes from Graph's answer into the rendered mail and nowhere else: the event records
//! that a mail went out, to whom, when, and which pass (its method id, lifetime), never the pass.

use behalf_domain::{
    EventAction, EventDetail, NewEvent, Outcome, Upn, User, format_millis, now_millis,
};
use behalf_mail::{MailError, MailKind, Mailer, Values};
use serde::{Deserialize, Serialize};

use crate::{App, AppError, Provisioner};

/// Where the user adds a passkey with the pass (Microsoft's "Security info" page).
pub const SECURITY_INFO_URL: &str = "https://aka.ms/mysecurityinfo";

/// At most this many users in one request: each is a Graph write and a mail.
pub const MAX_BATCH: usize = 500;

impl From<MailError> for AppError {
    fn from(e: MailError) -> Self {
        match e {
            MailError::NotConfigured | MailError::Config { .. } | MailError::Template { .. } => {
                AppError::NotConfigured(e.to_string())
            }
            MailError::Address { .. } => AppError::invalid("to", e.to_string()),
            MailError::Send { .. } => AppError::Upstream {
                status: None,
                code: Some("smtp".into()),
                message: e.to_string(),
                request_id: None,
            },
        }
    }
}

/// The relay and templates from `[mail]` (and `[tls] ca_file`), checked.
pub(crate) fn mailer(app: &App) -> Result<Mailer, AppError> {
    let config = app.config();
    Ok(Mailer::new(&config.mail, config.tls.ca_file.as_deref())?)
}

/// What happened for one user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MailOutcome {
    pub upn: String,
    /// The address the mail went to (or would have).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    pub sent: bool,
    /// When the pass (or link) stops working, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// Why not, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl MailOutcome {
    fn failed(upn: &str, to: Option<String>, e: &AppError) -> MailOutcome {
        MailOutcome {
            upn: upn.to_owned(),
            to,
            sent: false,
            expires: None,
            error: Some(e.to_string()),
        }
    }
}

/// The address a user's mail goes to: `to` if given, else the directory's `mail`, else the UPN.
pub(crate) fn recipient(user: &User, to: Option<&str>) -> String {
    to.map(str::to_owned)
        .or_else(|| user.mail.clone().filter(|m| !m.trim().is_empty()))
        .unwrap_or_else(|| user.upn.to_string())
}

/// A user of this workspace by UPN.
pub(crate) async fn find_user(app: &App, upn: &str) -> Result<User, AppError> {
    let parsed = Upn::parse(upn).map_err(|e| AppError::invalid("user", e.to_string()))?;
    app.store()
        .find_user_by_upn(app.workspace().id, &parsed)
        .await?
        .ok_or_else(|| AppError::NotFound {
            what: "user",
            key: upn.to_owned(),
        })
}

/// Records that a mail of `kind` went out to `to` (or failed), never its content.
pub(crate) async fn record(
    app: &App,
    actor: String,
    user: &User,
    kind: &str,
    to: &str,
    result: Result<(), &AppError>,
    extra: EventDetail,
) -> Result<(), AppError> {
    let (action, outcome) = match result {
        Ok(()) => (EventAction::MailSent, Outcome::Success),
        Err(_) => (EventAction::MailFailed, Outcome::Failure),
    };
    let mut detail = extra.with("kind", kind).with("to", to);
    if let Err(e) = result {
        detail = detail.with("reason", e.to_string());
    }
    let event = NewEvent::new(actor, action, outcome)
        .user(user.id)
        .detail(detail);
    app.store().append_event(app.workspace().id, event).await?;
    Ok(())
}

impl Provisioner<'_> {
    /// "Send activation mail": for each user (UPNs), a Temporary Access Pass through Graph
    /// (`[mail] tap_lifetime_minutes`, `tap_usable_once`), mailed with the sign-in steps. `to`
    /// sends a single user's mail to another address (a private one, a manager's). One user's
    /// failure does not stop the others; each outcome says what happened.
    pub async fn send_activation(
        &self,
        users: &[String],
        to: Option<&str>,
    ) -> Result<Vec<MailOutcome>, AppError> {
        if users.is_empty() {
            return Err(AppError::invalid("users", "name at least one user"));
        }
        if users.len() > MAX_BATCH {
            return Err(AppError::invalid(
                "users",
                format!("at most {MAX_BATCH} users at a time"),
            ));
        }
        if to.is_some() && users.len() > 1 {
            return Err(AppError::invalid(
                "to",
                "another address can be given for one user only",
            ));
        }
        // Checked once, before any pass is issued: a pass for a mail that cannot go out is waste.
        let mailer = mailer(self.app)?;
        let mut out = Vec::with_capacity(users.len());
        for upn in users {
            out.push(match self.activate_one(&mailer, upn, to).await {
                Ok(o) => o,
                Err((to, e)) => MailOutcome::failed(upn, to, &e),
            });
        }
        Ok(out)
    }

    async fn activate_one(
        &self,
        mailer: &Mailer,
        upn: &str,
        to: Option<&str>,
    ) -> Result<MailOutcome, (Option<String>, AppError)> {
        let user = find_user(self.app, upn).await.map_err(|e| (None, e))?;
        let address = recipient(&user, to);
        let fail = |e: AppError| (Some(address.clone()), e);
        let config = &self.app.config().mail;
        let issued_at = now_millis();
        let tap = self
            .issue_tap(
                user.upn.as_str(),
                config.tap_lifetime_minutes,
                config.tap_usable_once,
            )
            .await
            .map_err(fail)?;
        let starts = tap
            .start_date_time
            .as_deref()
            .and_then(|s| behalf_domain::parse_rfc3339(s).ok())
            .unwrap_or(issued_at);
        let expires = format_millis(starts + i64::from(tap.lifetime_in_minutes) * 60_000);
        let values = Values::new()
            .set("display_name", user.display_name.clone())
            .set("upn", user.upn.to_string())
            .secret("pass", &tap.temporary_access_pass)
            .set("expires", expires.clone())
            .set("lifetime_minutes", tap.lifetime_in_minutes.to_string())
            .set(
                "once_note",
                if tap.is_usable_once {
                    ", for one sign-in"
                } else {
                    ""
                },
            )
            .set("sign_in_url", SECURITY_INFO_URL);
        let sent = mailer
            .send(MailKind::Activation, &address, &user.display_name, &values)
            .await
            .map_err(AppError::from);
        drop(values);
        let mut extra = EventDetail::upn(user.upn.as_str())
            .with("lifetime_in_minutes", tap.lifetime_in_minutes)
            .with("is_usable_once", tap.is_usable_once)
            .with("expires", &expires);
        if sent.is_err()
            && let Some(method) = &tap.method_id
        {
            // Nobody will receive this pass: withdraw it rather than leave it valid in Entra.
            let withdrawn = self.withdraw_tap(user.upn.as_str(), method).await;
            extra = extra.with("pass_withdrawn", withdrawn);
        }
        record(
            self.app,
            self.actor(),
            &user,
            "activation",
            &address,
            sent.as_ref().map(|_| ()),
            extra,
        )
        .await
        .map_err(fail)?;
        sent.map_err(fail)?;
        Ok(MailOutcome {
            upn: user.upn.to_string(),
            to: Some(address),
            sent: true,
            expires: Some(expires),
            error: None,
        })
    }
}

impl Provisioner<'_> {
    /// Deletes a pass just issued; whether it is gone (a failure is logged, not returned: the
    /// mail's own failure is what the caller hears about).
    async fn withdraw_tap(&self, upn: &str, method_id: &str) -> bool {
        let Ok(graph) = self.app.directory_graph() else {
            return false;
        };
        match graph
            .client
            .delete_temporary_access_pass(upn, method_id)
            .await
        {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(user = upn, error = %e, "could not withdraw an undelivered Temporary Access Pass");
                false
            }
        }
    }
}
