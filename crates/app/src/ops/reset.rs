//! Password sync by link: "send password-reset link" mails a user a one-time link (short-lived,
//! single use) to Behalf's page `/password/reset/{token}`, where they choose a new password that
//! Behalf writes to Entra ID (`passwordProfile`, `forceChangePasswordNextSignIn` as `[mail]
//! force_change_password` says) and never keeps.
//!
//! The token is a secret handed out like the others (32 random bytes, prefix `bhr_`), kept only
//! as its HMAC under the vault's pepper. The link is used up only when Entra ID accepted the
//! password: it is redeemed (one conditional UPDATE, so two submissions never both write) before
//! the Graph call and given back when Entra ID refused the password, so the user can try
//! another. Each refusal counts: after [`MAX_ATTEMPTS`] the link is spent, which bounds how many
//! passwords one link can try. Guessing a token is out of reach (256 bits), so an unknown link
//! needs no limiter of its own.

use behalf_domain::{
    EventAction, EventDetail, Millis, NewEvent, Outcome, Secret, User, format_millis, now_millis,
};
use behalf_graph::Refusal;
use behalf_mail::{MailKind, Mailer, Values};
use behalf_store::ResetLink;

use super::mail::{MAX_BATCH, MailOutcome, find_user, mailer, recipient, record};
use crate::auth::random_secret;
use crate::{App, AppError, Provisioner};

/// What a reset link's token starts with, so one found somewhere is recognised as Behalf's.
const RESET_PREFIX: &str = "bhr_";
/// Passwords Entra ID may refuse through one link before it is spent.
pub const MAX_ATTEMPTS: i64 = 10;
/// The page's path; the token follows.
pub const RESET_PATH: &str = "/password/reset/";

/// The link's owner, as the page greets them.
#[derive(Debug, Clone)]
pub struct ResetPage {
    pub display_name: String,
    pub upn: String,
    /// When the link stops working, RFC 3339.
    pub expires: String,
}

/// Where users reach this server: `[mail] public_url`, or else the address `serve` listens on
/// (an unspecified address becoming the local host's), as the admins' setup links do.
pub fn public_base(config: &behalf_config::Config) -> String {
    if let Some(url) = config
        .mail
        .public_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        return url.trim_end_matches('/').to_owned();
    }
    let listen = config.listen;
    let ip = if listen.ip().is_unspecified() {
        std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
    } else {
        listen.ip()
    };
    format!("http://{}", std::net::SocketAddr::new(ip, listen.port()))
}

/// Why a link does not work, in words for the user who opened it.
fn link_refused(reason: &str) -> AppError {
    AppError::invalid("link", reason)
}

const UNKNOWN: &str = "this password-reset link is not known: copy the whole link from the mail, or ask your IT department for a new one";
const USED: &str =
    "this password-reset link has been used already: ask your IT department for a new one";
const EXPIRED: &str = "this password-reset link has expired: ask your IT department for a new one";
const SPENT: &str =
    "too many passwords were refused through this link: ask your IT department for a new one";

/// Why `link` cannot be used at `now`, if it cannot.
fn unusable(link: &ResetLink, now: Millis) -> Option<AppError> {
    if link.used_at.is_some() {
        Some(link_refused(USED))
    } else if link.expires_at <= now {
        Some(link_refused(EXPIRED))
    } else if link.attempts >= MAX_ATTEMPTS {
        Some(link_refused(SPENT))
    } else {
        None
    }
}

impl Provisioner<'_> {
    /// "Send password-reset link": for each user (UPNs), a one-time link valid for `[mail]
    /// reset_link_minutes`, mailed from the `reset` templates. One user's failure does not
    /// stop the others; each outcome says what happened. The event records that a mail went
    /// out, never the link.
    pub async fn send_reset_link(&self, users: &[String]) -> Result<Vec<MailOutcome>, AppError> {
        if users.is_empty() {
            return Err(AppError::invalid("users", "name at least one user"));
        }
        if users.len() > MAX_BATCH {
            return Err(AppError::invalid(
                "users",
                format!("at most {MAX_BATCH} users at a time"),
            ));
        }
        let minutes = self.app.config().mail.reset_link_minutes;
        if minutes == 0 {
            return Err(AppError::NotConfigured(
                "mail.reset_link_minutes must be at least 1".into(),
            ));
        }
        let mailer = mailer(self.app)?;
        let mut out = Vec::with_capacity(users.len());
        for upn in users {
            out.push(match self.reset_one(&mailer, upn, minutes).await {
                Ok(o) => o,
                Err((to, e)) => MailOutcome {
                    upn: upn.clone(),
                    to,
                    sent: false,
                    expires: None,
                    error: Some(e.to_string()),
                },
            });
        }
        Ok(out)
    }

    async fn reset_one(
        &self,
        mailer: &Mailer,
        upn: &str,
        minutes: u32,
    ) -> Result<MailOutcome, (Option<String>, AppError)> {
        let user = find_user(self.app, upn).await.map_err(|e| (None, e))?;
        let address = recipient(&user, None);
        let fail = |e: AppError| (Some(address.clone()), e);
        let token = random_secret(RESET_PREFIX);
        let hash = self.app.secret_hash(token.expose()).await.map_err(fail)?;
        let now = now_millis();
        let expires_at = now + i64::from(minutes) * 60_000;
        let link = self
            .app
            .store()
            .create_reset_link(self.app.workspace().id, user.id, &hash, now, expires_at)
            .await
            .map_err(|e| fail(e.into()))?;
        let expires = format_millis(expires_at);
        let url = Secret::new(format!(
            "{}{RESET_PATH}{}",
            public_base(self.app.config()),
            token.expose()
        ));
        drop(token);
        let values = Values::new()
            .set("display_name", user.display_name.clone())
            .set("upn", user.upn.to_string())
            .secret("link", &url)
            .set("expires", expires.clone())
            .set("link_minutes", minutes.to_string());
        let sent = mailer
            .send(
                MailKind::PasswordReset,
                &address,
                &user.display_name,
                &values,
            )
            .await
            .map_err(AppError::from);
        drop(values);
        let extra = EventDetail::upn(user.upn.as_str())
            .with("link_id", &link.id)
            .with("expires", &expires);
        record(
            self.app,
            self.actor(),
            &user,
            "reset",
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

/// Graph's failure to set a password, in words for the user holding the link (Graph's own
/// words and request id kept).
fn in_words(e: behalf_graph::GraphError) -> AppError {
    let refusal = e.refusal();
    let mut error = AppError::from(e);
    if let AppError::Upstream { message, .. } = &mut error {
        let words = match refusal {
            Refusal::Forbidden => {
                "Behalf may not set passwords in Microsoft Entra ID (its app needs User-PasswordProfile.ReadWrite.All or User.ReadWrite.All, and a role that may reset this user's password): tell your IT department"
            }
            Refusal::NotFound => {
                "your account is not in Microsoft Entra ID any more: tell your IT department"
            }
            Refusal::Transient => {
                "Microsoft Entra ID is busy or cannot be reached: try again in a moment"
            }
            _ => "Microsoft Entra ID did not set the password",
        };
        *message = format!("{words} ({message})");
    }
    error
}

impl App {
    /// The link's state at `now`, with its user: `Err` in words when it is unknown, used,
    /// expired or spent.
    async fn usable_link(&self, token: &str, now: Millis) -> Result<(ResetLink, User), AppError> {
        if !token.starts_with(RESET_PREFIX) {
            return Err(link_refused(UNKNOWN));
        }
        let hash = self.secret_hash(token).await?;
        let link = self
            .store()
            .find_reset_link(self.workspace().id, &hash)
            .await?
            .ok_or_else(|| link_refused(UNKNOWN))?;
        if let Some(e) = unusable(&link, now) {
            return Err(e);
        }
        let user = self.store().get_user(link.user_id).await?;
        Ok((link, user))
    }

    /// What the reset page shows for `token` (public: the token is the capability).
    pub async fn reset_page(&self, token: &str) -> Result<ResetPage, AppError> {
        self.reset_page_at(token, now_millis()).await
    }

    /// [`App::reset_page`] at a given time (tests check expiry with a later `now`).
    pub async fn reset_page_at(&self, token: &str, now: Millis) -> Result<ResetPage, AppError> {
        let (link, user) = self.usable_link(token, now).await?;
        Ok(ResetPage {
            display_name: user.display_name,
            upn: user.upn.to_string(),
            expires: format_millis(link.expires_at),
        })
    }

    /// Sets the link's user's password in Entra ID (public: the token is the capability). The
    /// password goes from the form to Graph and nowhere else. A password Entra ID refuses is
    /// `Invalid { field: "password" }` in Entra's words, and the link still works.
    pub async fn set_password_with_link(
        &self,
        token: &Secret,
        password: &Secret,
    ) -> Result<ResetPage, AppError> {
        self.set_password_with_link_at(token, password, now_millis())
            .await
    }

    /// [`App::set_password_with_link`] at a given time.
    pub async fn set_password_with_link_at(
        &self,
        token: &Secret,
        password: &Secret,
        now: Millis,
    ) -> Result<ResetPage, AppError> {
        if password.expose().is_empty() {
            return Err(AppError::invalid("password", "enter a new password"));
        }
        let (_, user) = self.usable_link(token.expose(), now).await?;
        let hash = self.secret_hash(token.expose()).await?;
        // Taken for this attempt: a second submission of the same link meanwhile is refused.
        let link = self
            .store()
            .redeem_reset_link(self.workspace().id, &hash, now, MAX_ATTEMPTS)
            .await?
            .ok_or_else(|| link_refused(USED))?;
        let redeemed_at = link.used_at.unwrap_or(now);
        let force_change = self.config().mail.force_change_password;
        let target = user
            .external_id
            .clone()
            .unwrap_or_else(|| user.upn.to_string());
        let written = match self.directory_graph() {
            Ok(graph) => graph
                .client
                .set_password(&target, password, force_change)
                .await
                .map_err(|e| (e.refusal(), e.message().map(str::to_owned), in_words(e))),
            Err(e) => Err((Refusal::Other, None, e)),
        };
        let actor = format!("user:{}", user.upn);
        let detail = EventDetail::upn(user.upn.as_str())
            .with("link_id", &link.id)
            .with("force_change_password", force_change);
        match written {
            Ok(()) => {
                let event = NewEvent::new(actor, EventAction::PasswordSet, Outcome::Success)
                    .user(user.id)
                    .detail(detail);
                self.store()
                    .append_event(self.workspace().id, event)
                    .await?;
                Ok(ResetPage {
                    display_name: user.display_name,
                    upn: user.upn.to_string(),
                    expires: format_millis(link.expires_at),
                })
            }
            Err((refusal, said, error)) => {
                // Not set: the link works again (one attempt more), whatever the reason.
                self.store()
                    .release_reset_link(&link.id, redeemed_at)
                    .await?;
                let reason = said.clone().unwrap_or_else(|| error.to_string());
                let event = NewEvent::new(actor, EventAction::PasswordRefused, Outcome::Failure)
                    .user(user.id)
                    .detail(detail.with("reason", &reason));
                self.store()
                    .append_event(self.workspace().id, event)
                    .await?;
                Err(match (refusal, said) {
                    // Entra's password policy, in its own words, for the user to choose again.
                    (Refusal::Invalid, Some(said)) => AppError::invalid("password", said),
                    _ => error,
                })
            }
        }
    }
}
