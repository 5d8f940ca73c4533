//! Pairing: an admin issues a one-time code for a user; the user's extension pairs with it,
//! registering its device key and (the first time, or after a block) setting the PIN. Devices are
//! listed and revoked by admins; a revoked device is refused from its next request on.

use behalf_domain::{
    DeviceRole, EventAction, EventDetail, KeyDevice, KeyDeviceId, KeyPairing, KeyPairingId,
    NewEvent, Outcome, Secret, User, UserId, now_millis,
};
use behalf_store::PinOnPairing;

use super::pin::{check_pin_rules, hash_pin};
use super::{DevicePublicKey, KeyFailure};
use crate::auth::random_secret;
use crate::{App, AppError, Provisioner, Reader};

/// How long a pairing code may be used.
pub const PAIRING_MINUTES: i64 = 15;
/// What a pairing code starts with, so that one found in a log or a ticket says what it is.
const PAIRING_PREFIX: &str = "bhp_";
/// How long a device's name may be.
const MAX_DEVICE_NAME: usize = 100;

/// A pairing code just issued: `code` is shown (or mailed) this once.
#[derive(Debug)]
pub struct IssuedPairing {
    pub code: Secret,
    pub pairing: KeyPairing,
}

/// What the extension sends to pair (its signature, by `public_key`, checked by the server).
#[derive(Debug)]
pub struct PairRequest {
    pub code: Secret,
    pub device_name: String,
    pub public_key: DevicePublicKey,
    pub pin: Secret,
}

/// A device just paired, and whose it is.
#[derive(Debug, Clone)]
pub struct Paired {
    pub device: KeyDevice,
    pub user: User,
}

impl Provisioner<'_> {
    /// A one-time pairing code for `user_id`'s Behalf Key. A device paired as
    /// [`DeviceRole::Admin`] registers credentials on other users' behalf, so issuing one takes
    /// the right to operate the workspace too.
    pub async fn issue_key_pairing(
        &self,
        user_id: UserId,
        role: DeviceRole,
    ) -> Result<IssuedPairing, AppError> {
        if role == DeviceRole::Admin && !self.caller.may_operate() {
            return Err(AppError::Forbidden {
                needed: "an admin device: owner or admin with the admin scope",
            });
        }
        let store = self.app.store();
        let user = store.get_user(user_id).await?;
        if user.workspace_id != self.app.workspace().id {
            return Err(AppError::NotFound {
                what: "user",
                key: user_id.to_string(),
            });
        }
        let code = random_secret(PAIRING_PREFIX);
        let now = now_millis();
        let pairing = KeyPairing {
            id: KeyPairingId::new(),
            workspace_id: user.workspace_id,
            user_id,
            role,
            created_by: self.actor(),
            created_at: now,
            expires_at: now + PAIRING_MINUTES * 60_000,
            used_at: None,
        };
        let code_hash = self.app.secret_hash(code.expose()).await?;
        store.create_key_pairing(&pairing, &code_hash).await?;
        store
            .append_event(
                pairing.workspace_id,
                NewEvent::new(
                    self.actor(),
                    EventAction::KeyPairingIssued,
                    Outcome::Success,
                )
                .user(user_id)
                .detail(
                    EventDetail::upn(user.upn.as_str())
                        .with("role", role)
                        .with("expires_at", pairing.expires_at),
                ),
            )
            .await?;
        Ok(IssuedPairing { code, pairing })
    }

    /// Revokes a device: its next request is refused.
    pub async fn revoke_key_device(&self, id: KeyDeviceId) -> Result<KeyDevice, AppError> {
        let store = self.app.store();
        let workspace = self.app.workspace().id;
        let not_found = || AppError::NotFound {
            what: "Behalf Key device",
            key: id.to_string(),
        };
        let device = store
            .key_device(id)
            .await?
            .filter(|d| d.workspace_id == workspace)
            .ok_or_else(not_found)?;
        if !store.revoke_key_device(workspace, id, now_millis()).await? {
            return Err(AppError::Conflict(format!(
                "the device {:?} is already revoked",
                device.name
            )));
        }
        let user = store.get_user(device.user_id).await?;
        store
            .append_event(
                workspace,
                NewEvent::new(
                    self.actor(),
                    EventAction::KeyDeviceRevoked,
                    Outcome::Success,
                )
                .user(device.user_id)
                .detail(
                    EventDetail::upn(user.upn.as_str())
                        .with("device", device.id)
                        .with("device_name", &device.name),
                ),
            )
            .await?;
        store.key_device(id).await?.ok_or_else(not_found)
    }
}

impl Reader<'_> {
    /// A user's Behalf Key devices, newest first, revoked ones included.
    pub async fn key_devices(&self, user_id: UserId) -> Result<Vec<KeyDevice>, AppError> {
        Ok(self
            .app
            .store()
            .list_key_devices(self.app.workspace().id, user_id)
            .await?)
    }
}

impl App {
    /// Pairs a device with the code an admin issued: the code pairs once and only before it
    /// expires; a device key pairs once. The PIN sets the user's PIN when they have none or it
    /// is blocked (the admin's new code is what unblocks it); otherwise it must be their PIN,
    /// and a wrong one counts as a wrong PIN.
    pub async fn pair_key_device(&self, request: PairRequest) -> Result<Paired, KeyFailure> {
        let store = self.store();
        let now = now_millis();
        let code_hash = self.secret_hash(request.code.expose()).await?;
        let pairing = store
            .live_key_pairing(&code_hash, now)
            .await?
            .filter(|p| p.workspace_id == self.workspace().id)
            .ok_or(KeyFailure::PairingCodeInvalid)?;
        let name = request.device_name.trim().to_owned();
        if name.is_empty() || name.chars().count() > MAX_DEVICE_NAME {
            return Err(KeyFailure::invalid(
                "device_name",
                format!("name the device (up to {MAX_DEVICE_NAME} characters)"),
            ));
        }
        let thumbprint = request.public_key.thumbprint();
        if store.key_device_by_thumbprint(&thumbprint).await?.is_some() {
            return Err(KeyFailure::invalid(
                "public_key",
                "this device key is already paired: make a new one",
            ));
        }
        let user = store.get_user(pairing.user_id).await?;
        check_pin_rules(&request.pin)?;
        let device = KeyDevice {
            id: KeyDeviceId::new(),
            workspace_id: pairing.workspace_id,
            user_id: pairing.user_id,
            name,
            role: pairing.role,
            thumbprint,
            public_key_jwk: request.public_key.to_jwk_text(),
            created_at: now,
            last_seen_at: Some(now),
            revoked_at: None,
        };
        let new_hash;
        let pin = match store.key_pin(user.id).await? {
            Some(existing) if !existing.blocked() => {
                self.check_key_pin(&user, &device.id.to_string(), &request.pin)
                    .await?;
                PinOnPairing::Keep
            }
            _ => {
                new_hash = hash_pin(&request.pin).await?;
                PinOnPairing::Set(&new_hash)
            }
        };
        if !store.pair_key_device(pairing.id, &device, pin, now).await? {
            return Err(KeyFailure::PairingCodeInvalid);
        }
        store
            .append_event(
                device.workspace_id,
                NewEvent::new(
                    format!("behalf_key:{}", device.id),
                    EventAction::KeyPaired,
                    Outcome::Success,
                )
                .user(user.id)
                .detail(
                    EventDetail::upn(user.upn.as_str())
                        .with("device", device.id)
                        .with("device_name", &device.name)
                        .with("role", device.role)
                        .with("pin_set", matches!(pin, PinOnPairing::Set(_))),
                ),
            )
            .await?;
        Ok(Paired { device, user })
    }
}
