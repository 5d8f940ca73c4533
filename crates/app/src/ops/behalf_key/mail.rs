//! A pairing code by mail: the user gets the one-time code and the server's address, and pairs
//! their own Behalf Key. The code is in the mail only (the store keeps its HMAC; the event says a
//! mail went out, to whom and until when, never the code).

use behalf_domain::{DeviceRole, EventDetail, format_millis};
use behalf_mail::{MailKind, Values};

use crate::ops::mail::{MAX_BATCH, MailOutcome, find_user, mailer, recipient, record};
use crate::ops::reset::public_base;
use crate::{AppError, Provisioner};

impl Provisioner<'_> {
    /// Mails each user (UPNs) a pairing code for a user device (an admin's device is paired
    /// with a code the admin is handed, never mailed). One user's failure does not stop the
    /// others; each outcome says what happened.
    pub async fn send_key_pairing(&self, users: &[String]) -> Result<Vec<MailOutcome>, AppError> {
        if users.is_empty() {
            return Err(AppError::invalid("users", "name at least one user"));
        }
        if users.len() > MAX_BATCH {
            return Err(AppError::invalid(
                "users",
                format!("at most {MAX_BATCH} users at a time"),
            ));
        }
        let mailer = mailer(self.app)?;
        let server_url = public_base(self.app.config());
        let mut out = Vec::with_capacity(users.len());
        for upn in users {
            let user = match find_user(self.app, upn).await {
                Ok(user) => user,
                Err(e) => {
                    out.push(MailOutcome {
                        upn: upn.clone(),
                        to: None,
                        sent: false,
                        expires: None,
                        error: Some(e.to_string()),
                    });
                    continue;
                }
            };
            let address = recipient(&user, None);
            let issued = self.issue_key_pairing(user.id, DeviceRole::User).await?;
            let expires = format_millis(issued.pairing.expires_at);
            let values = Values::new()
                .set("display_name", user.display_name.clone())
                .set("upn", user.upn.to_string())
                .secret("code", &issued.code)
                .set("server_url", server_url.clone())
                .set("expires", expires.clone());
            let sent = mailer
                .send(MailKind::KeyPairing, &address, &user.display_name, &values)
                .await
                .map_err(AppError::from);
            drop(values);
            let extra = EventDetail::upn(user.upn.as_str())
                .with("pairing_id", issued.pairing.id)
                .with("expires", &expires);
            record(
                self.app,
                self.actor(),
                &user,
                "pairing",
                &address,
                sent.as_ref().map(|_| ()),
                extra,
            )
            .await?;
            out.push(MailOutcome {
                upn: user.upn.to_string(),
                to: Some(address),
                sent: sent.is_ok(),
                expires: sent.is_ok().then_some(expires),
                error: sent.err().map(|e| e.to_string()),
            });
        }
        Ok(out)
    }
}
