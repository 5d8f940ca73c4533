//! The user's Behalf Key PIN: FIDO2's rules for its length, argon2id at rest, and CTAP's retry
//! counter, checked by the server (the extension only carries it, over TLS, in a signed request).

use behalf_domain::{EventAction, EventDetail, NewEvent, Outcome, Secret, User, now_millis};
use behalf_store::PinAttempt;

use super::KeyFailure;
use crate::App;
use crate::auth::{hash_password, verify_password};

/// CTAP 2.1 §6.5.5.5 ("setPIN"): at least 4 Unicode code points ...
const MIN_PIN_CODE_POINTS: usize = 4;
/// ... and at most 63 bytes of UTF-8.
const MAX_PIN_BYTES: usize = 63;

pub(super) fn check_pin_rules(pin: &Secret) -> Result<(), KeyFailure> {
    let text = pin.expose();
    if text.chars().count() < MIN_PIN_CODE_POINTS {
        return Err(KeyFailure::PinPolicy(format!(
            "a PIN has at least {MIN_PIN_CODE_POINTS} characters"
        )));
    }
    if text.len() > MAX_PIN_BYTES {
        return Err(KeyFailure::PinPolicy(format!(
            "a PIN has at most {MAX_PIN_BYTES} bytes"
        )));
    }
    Ok(())
}

/// The argon2id hash a new PIN is kept as, made off the async threads.
pub(super) async fn hash_pin(pin: &Secret) -> Result<String, KeyFailure> {
    let pin = pin.clone();
    tokio::task::spawn_blocking(move || hash_password(&pin))
        .await
        .map_err(|e| KeyFailure::Internal(e.to_string()))?
        .map_err(KeyFailure::from)
}

impl App {
    /// Checks `pin` against `user`'s, as CTAP 2.1 §6.5.5.7 does: a retry is taken first, a
    /// right PIN gives them all back, a wrong one keeps it taken and says how many are left; at
    /// none left the PIN is blocked. Each wrong PIN is an event (`device` names where it came
    /// from), and the one that blocks it another.
    pub(super) async fn check_key_pin(
        &self,
        user: &User,
        device: &str,
        pin: &Secret,
    ) -> Result<(), KeyFailure> {
        let store = self.store();
        let (hash, retries_left) = match store.take_key_pin_attempt(user.id, now_millis()).await? {
            PinAttempt::Taken { hash, retries_left } => (hash, retries_left),
            PinAttempt::Blocked => return Err(KeyFailure::PinBlocked),
            PinAttempt::NoPin => {
                return Err(KeyFailure::PinPolicy(
                    "no PIN is set for this user: pair the extension again to set one".into(),
                ));
            }
        };
        let given = pin.clone();
        let right = tokio::task::spawn_blocking(move || verify_password(&given, &hash))
            .await
            .map_err(|e| KeyFailure::Internal(e.to_string()))?;
        if right {
            store.key_pin_verified(user.id, now_millis()).await?;
            return Ok(());
        }
        let event = |action| {
            NewEvent::new(format!("behalf_key:{device}"), action, Outcome::Failure)
                .user(user.id)
                .detail(
                    EventDetail::upn(user.upn.as_str())
                        .with("device", device)
                        .with("retries_left", retries_left),
                )
        };
        let workspace = self.workspace().id;
        store
            .append_event(workspace, event(EventAction::KeyPinFailed))
            .await?;
        if retries_left == 0 {
            store
                .append_event(workspace, event(EventAction::KeyPinBlocked))
                .await?;
            return Err(KeyFailure::PinBlocked);
        }
        Err(KeyFailure::PinInvalid {
            retries: retries_left,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_follow_ctap_length_rules() {
        assert!(check_pin_rules(&Secret::new("123")).is_err());
        assert!(check_pin_rules(&Secret::new("1234")).is_ok());
        // Four code points of several bytes each are a PIN too.
        assert!(check_pin_rules(&Secret::new("ééé€")).is_ok());
        assert!(check_pin_rules(&Secret::new("a".repeat(63))).is_ok());
        let long = check_pin_rules(&Secret::new("a".repeat(64))).unwrap_err();
        assert!(long.to_string().contains("63 bytes"), "{long}");
    }
}
