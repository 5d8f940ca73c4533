//! `[mail]`: the SMTP relay onboarding mails go through, and what they carry.

use std::path::PathBuf;

use behalf_domain::Secret;
use serde::{Deserialize, Serialize};

/// How the connection to the relay is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MailSecurity {
    /// Plain SMTP (a relay on the same host or a test sink). Credentials are refused over it.
    None,
    /// SMTP, then `STARTTLS` before anything else is said (RFC 3207); port 587 by default.
    #[default]
    Starttls,
    /// TLS from the first byte (RFC 8314 "implicit TLS"); port 465 by default.
    Tls,
}

/// The relay and the mails' settings. Mail is off until `relay` and `from` are set.
/// `Debug` shows the password as `<hidden>`; it may come from `BEHALF_MAIL__PASSWORD_FILE`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// The SMTP relay's host name.
    pub relay: Option<String>,
    /// The relay's port; by `security`: 25, 587 or 465 when absent.
    pub port: Option<u16>,
    pub security: MailSecurity,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// The sender, e.g. `IT <it@contoso.example>`.
    pub from: Option<String>,
    /// A folder with the admin's own templates (`activation.txt`, `activation.html`,
    /// `reset.txt`, `reset.html`); a file missing there falls back to the built-in one.
    pub templates_dir: Option<PathBuf>,
    /// How long the Temporary Access Pass in an activation mail lasts (Entra: 10..43200, within
    /// the tenant's TAP policy).
    pub tap_lifetime_minutes: u32,
    /// Whether that pass works for one sign-in only.
    pub tap_usable_once: bool,
    /// Where users reach this server, for the links in mails (`https://behalf.example.com`).
    pub public_url: Option<String>,
    /// How long a password-reset link stays valid.
    pub reset_link_minutes: u32,
    /// Whether Entra asks the user to change the password they set through a link at their next
    /// sign-in (`passwordProfile.forceChangePasswordNextSignIn`).
    pub force_change_password: bool,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            relay: None,
            port: None,
            security: MailSecurity::Starttls,
            username: None,
            password: None,
            from: None,
            templates_dir: None,
            // Entra's default TAP policy allows 60..480 minutes.
            tap_lifetime_minutes: 60,
            tap_usable_once: true,
            public_url: None,
            reset_link_minutes: 30,
            force_change_password: false,
        }
    }
}

impl MailConfig {
    /// Whether mail is configured at all.
    pub fn enabled(&self) -> bool {
        self.relay.is_some() && self.from.is_some()
    }

    /// The port in effect.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            MailSecurity::None => 25,
            MailSecurity::Starttls => 587,
            MailSecurity::Tls => 465,
        })
    }
}
