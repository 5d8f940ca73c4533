//! Onboarding mail: the admin's templates ([`template`]) and delivery through the configured SMTP
//! relay with lettre, over the rustls + aws-lc-rs stack the rest of Behalf uses.
//!
//! A rendered mail carries a Temporary Access Pass or a password-reset link: it lives in a
//! [`behalf_domain::Secret`] until lettre writes it to the relay, and no error or log line includes it.
#![forbid(unsafe_code)]

use std::path::Path;

use behalf_config::{MailConfig, MailSecurity};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

pub mod template;

pub use template::{MailKind, Rendered, Templates, Values};

/// Why a mail could not be prepared or sent. Never carries the mail's body.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error(
        "mail is not configured: set [mail] relay and from (BEHALF_MAIL__RELAY, BEHALF_MAIL__FROM)"
    )]
    NotConfigured,
    #[error("mail.{key}: {reason}")]
    Config { key: &'static str, reason: String },
    #[error("mail template {file}: {reason}")]
    Template { file: String, reason: String },
    #[error("'{address}' is not a mail address: {reason}")]
    Address { address: String, reason: String },
    #[error("the SMTP relay {relay} refused or failed the mail: {reason}")]
    Send { relay: String, reason: String },
}

/// The relay, the sender and the templates, ready to send.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    relay: String,
    from: Mailbox,
    templates: Templates,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("relay", &self.relay)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// From `[mail]`; `ca_file` is `[tls] ca_file` (extra roots, e.g. a company CA). Loads and
    /// checks the templates, so a broken template fails at start, not at the first mail.
    pub fn new(config: &MailConfig, ca_file: Option<&Path>) -> Result<Mailer, MailError> {
        let (Some(relay), Some(from)) = (config.relay.as_deref(), config.from.as_deref()) else {
            return Err(MailError::NotConfigured);
        };
        let from: Mailbox = from.parse().map_err(|e| MailError::Config {
            key: "from",
            reason: format!("'{from}' is not a mail address: {e}"),
        })?;
        let port = config.port();
        let tls = || -> Result<TlsParameters, MailError> {
            let mut b = TlsParameters::builder(relay.to_owned());
            if let Some(path) = ca_file {
                let pem = std::fs::read(path).map_err(|e| MailError::Config {
                    key: "relay",
                    reason: format!("cannot read tls.ca_file {}: {e}", path.display()),
                })?;
                let cert = Certificate::from_pem(&pem).map_err(|e| MailError::Config {
                    key: "relay",
                    reason: format!("tls.ca_file {}: {e}", path.display()),
                })?;
                b = b.add_root_certificate(cert);
            }
            b.build_rustls().map_err(|e| MailError::Config {
                key: "security",
                reason: e.to_string(),
            })
        };
        let mut builder = match config.security {
            MailSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(relay),
            // RFC 3207: the relay must offer STARTTLS, and nothing but EHLO is said before it.
            MailSecurity::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(relay)
                    .tls(Tls::Required(tls()?))
            }
            MailSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(relay)
                .tls(Tls::Wrapper(tls()?)),
        }
        .port(port);
        match (&config.username, &config.password) {
            (Some(user), Some(password)) => {
                // A password in clear text over the network is refused, not sent.
                if config.security == MailSecurity::None {
                    return Err(MailError::Config {
                        key: "security",
                        reason: "'none' sends the password unencrypted: use starttls or tls with a username and password".into(),
                    });
                }
                builder = builder
                    .credentials(Credentials::new(user.clone(), password.expose().to_owned()));
            }
            (None, None) => {}
            (Some(_), None) => {
                return Err(MailError::Config {
                    key: "password",
                    reason: "a username is set but no password (mail.password or BEHALF_MAIL__PASSWORD_FILE)".into(),
                });
            }
            (None, Some(_)) => {
                return Err(MailError::Config {
                    key: "username",
                    reason: "a password is set but no username".into(),
                });
            }
        }
        Ok(Mailer {
            transport: builder.build(),
            relay: format!("{relay}:{port}"),
            from,
            templates: Templates::load(config.templates_dir.as_deref())?,
        })
    }

    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    /// Renders `kind` with `values` and sends it to `to` (`name` shown beside the address).
    pub async fn send(
        &self,
        kind: MailKind,
        to: &str,
        name: &str,
        values: &Values<'_>,
    ) -> Result<(), MailError> {
        let address = to.parse().map_err(|e| MailError::Address {
            address: to.to_owned(),
            reason: format!("{e}"),
        })?;
        let rendered = self.templates.render(kind, values);
        let message = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(Some(name.to_owned()), address))
            .subject(rendered.subject)
            .multipart(MultiPart::alternative_plain_html(
                rendered.text.expose().to_owned(),
                rendered.html.expose().to_owned(),
            ))
            .map_err(|e| MailError::Address {
                address: to.to_owned(),
                reason: e.to_string(),
            })?;
        self.transport
            .send(message)
            .await
            .map_err(|e| MailError::Send {
                relay: self.relay.clone(),
                reason: describe(&e),
            })?;
        Ok(())
    }
}

/// lettre's error in words, without the message (it never includes the body; the relay's
/// answer is kept, it says why).
fn describe(e: &lettre::transport::smtp::Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> MailConfig {
        MailConfig {
            relay: Some("smtp.contoso.example".into()),
            from: Some("IT <it@contoso.example>".into()),
            ..MailConfig::default()
        }
    }

    // The transport's connection pool lives on (and is dropped into) a tokio runtime.
    #[tokio::test]
    async fn configuration_mistakes_are_named_before_any_mail() {
        assert!(matches!(
            Mailer::new(&MailConfig::default(), None),
            Err(MailError::NotConfigured)
        ));
        let mut c = config();
        c.from = Some("not an address".into());
        let e = Mailer::new(&c, None).expect_err("bad from").to_string();
        assert!(e.starts_with("mail.from:"), "{e}");

        let mut c = config();
        c.security = MailSecurity::None;
        c.username = Some("behalf".into());
        c.password = Some(behalf_domain::Secret::new("pw"));
        let e = Mailer::new(&c, None)
            .expect_err("password in clear")
            .to_string();
        assert!(e.contains("unencrypted"), "{e}");
        assert!(!e.contains("pw"));

        let mut c = config();
        c.username = Some("behalf".into());
        let e = Mailer::new(&c, None).expect_err("no password").to_string();
        assert!(e.starts_with("mail.password:"), "{e}");

        let mut c = config();
        c.username = Some("behalf".into());
        c.password = Some(behalf_domain::Secret::new("relay secret"));
        let m = Mailer::new(&c, None).expect("starttls with credentials");
        let debug = format!("{m:?}");
        assert!(debug.contains("smtp.contoso.example:587") && !debug.contains("relay secret"));
    }
}
