//! Behalf Key, the browser authenticator: the devices paired with a user and the codes that
//! pair them. See docs/BEHALF_KEY.md for the protocol.

use serde::{Deserialize, Serialize};

use crate::{
    DeviceRole, ItemId, JobId, KeyDeviceId, KeyPairingId, KeyRequestId, KeyRequestState, Millis,
    UserId, WorkspaceId,
};

/// A browser profile paired with a user. Its identity is its device key: the server keeps the
/// public half (a P-256 JWK) and its RFC 7638 thumbprint, by which signed requests name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyDevice {
    pub id: KeyDeviceId,
    pub workspace_id: WorkspaceId,
    pub user_id: UserId,
    pub name: String,
    pub role: DeviceRole,
    /// base64url (no padding) SHA-256 JWK thumbprint of the device key.
    pub thumbprint: String,
    /// The device key's public JWK (`kty`, `crv`, `x`, `y`) as JSON text.
    pub public_key_jwk: String,
    pub created_at: Millis,
    pub last_seen_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
}

/// A pairing code issued for a user (the code itself is shown once; the store keeps its HMAC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPairing {
    pub id: KeyPairingId,
    pub workspace_id: WorkspaceId,
    pub user_id: UserId,
    pub role: DeviceRole,
    pub created_by: String,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub used_at: Option<Millis>,
}

/// A user's Behalf Key PIN as the store keeps it: an argon2id hash, and the retries left
/// (CTAP 2.1 §6.5.2.2: 8 to begin with, one less for each wrong PIN, back to 8 on a right one;
/// at 0 the PIN is blocked).
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPin {
    pub user_id: UserId,
    pub hash: String,
    pub retries: i64,
    pub updated_at: Millis,
}

impl std::fmt::Debug for KeyPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPin")
            .field("user_id", &self.user_id)
            .field("hash", &"<hidden>")
            .field("retries", &self.retries)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

impl KeyPin {
    /// CTAP 2.1 §6.5.2.2 `pinRetries`' starting value.
    pub const MAX_RETRIES: i64 = 8;

    pub fn blocked(&self) -> bool {
        self.retries <= 0
    }
}

/// A local key's registration request, for one provisioning item: the user's extension sees it,
/// and the credential it makes on approval is registered by the engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRequest {
    pub id: KeyRequestId,
    pub workspace_id: WorkspaceId,
    pub job_id: JobId,
    pub item_id: ItemId,
    pub user_id: UserId,
    pub rp_id: String,
    pub state: KeyRequestState,
    /// Who asked (the job's creator), as the extension shows it.
    pub asked_by: String,
    /// The challenge of the creation options handed out on approval (clientDataJSON must carry it).
    pub challenge: Option<String>,
    /// The relying party's user handle in those options (base64url), for the user's sign-ins.
    pub user_handle: Option<String>,
    /// The `publicKeyCredential` JSON to register, once attested.
    pub registration: Option<String>,
    pub credential_id: Option<Vec<u8>>,
    pub public_key_cose: Option<Vec<u8>>,
    pub aaguid: Option<String>,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub updated_at: Millis,
}
