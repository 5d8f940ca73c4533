//! Local keys (SPEC §2 `local`): the credential's private key is made and kept by the user's
//! paired Behalf Key, never by Behalf. A provisioning job of mode `local` sends the user a
//! registration request (the engine, `provision/src/engine/local.rs`); here the user's device
//! lists it, approves it with the PIN (and gets fresh creationOptions from Graph), answers with
//! the attestation, or declines it. The engine then registers the credential at Graph, once.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use behalf_authenticator::{AuthenticatorData, CreationOptions};
use behalf_domain::{
    EventAction, EventDetail, KeyRequest, KeyRequestId, KeyRequestState, Millis, NewEvent, Outcome,
    Secret, SecurityKeyKind, now_millis,
};
use behalf_provision::RelyingParty as _;
use behalf_store::KeyAttestation;
use serde_json::{Value, json};

use super::sign_in::origin_fits_rp_id;
use super::{KeyFailure, KeyHolder};

/// A request as the user's extension shows it.
#[derive(Debug, Clone)]
pub struct RequestView {
    pub id: KeyRequestId,
    pub rp_id: String,
    pub rp_name: String,
    pub asked_by: String,
    pub expires_at: Millis,
}

/// What the extension needs to make the credential.
#[derive(Debug, Clone)]
pub struct Approved {
    /// `PublicKeyCredentialCreationOptionsJSON`, fresh from Graph.
    pub options: Value,
    /// The origin the credential is made for (the RP's sign-in page).
    pub origin: String,
}

/// The extension's new credential.
#[derive(Debug)]
pub struct AttestationRequest {
    pub credential_id: Vec<u8>,
    /// The bytes of clientDataJSON (the extension built it).
    pub client_data_json: Vec<u8>,
    pub attestation_object: Vec<u8>,
}

fn rp_name(rp_id: &str) -> String {
    if rp_id == behalf_domain::MICROSOFT_RP_ID {
        "Microsoft".into()
    } else {
        rp_id.to_owned()
    }
}

impl KeyHolder<'_> {
    /// The device's user's requests still waiting for them.
    pub async fn key_requests(&self) -> Result<Vec<RequestView>, KeyFailure> {
        let requests = self
            .app
            .store()
            .open_key_requests(self.device.workspace_id, self.user.id, now_millis())
            .await?;
        Ok(requests
            .into_iter()
            .map(|r| RequestView {
                id: r.id,
                rp_name: rp_name(&r.rp_id),
                rp_id: r.rp_id,
                asked_by: r.asked_by,
                expires_at: r.expires_at,
            })
            .collect())
    }

    /// The user's request `id`, still open.
    async fn open_request(&self, id: KeyRequestId) -> Result<KeyRequest, KeyFailure> {
        let request = self
            .app
            .store()
            .key_request(id)
            .await?
            .filter(|r| r.user_id == self.user.id && r.workspace_id == self.device.workspace_id)
            .ok_or(KeyFailure::NoRequest)?;
        match request.state {
            KeyRequestState::Pending | KeyRequestState::Approved
                if now_millis() < request.expires_at =>
            {
                Ok(request)
            }
            KeyRequestState::Pending | KeyRequestState::Approved | KeyRequestState::Expired => {
                Err(KeyFailure::RequestExpired)
            }
            _ => Err(KeyFailure::NoRequest),
        }
    }

    /// Approves a request with the user's PIN: Graph's fresh creation options for the user, whose
    /// challenge the attestation must carry.
    pub async fn approve_request(
        &self,
        id: KeyRequestId,
        pin: &Secret,
    ) -> Result<Approved, KeyFailure> {
        let request = self.open_request(id).await?;
        let device = self.device.id.to_string();
        self.app.check_key_pin(&self.user, &device, pin).await?;
        let engine = self.app.engine()?;
        let rp_user = self
            .user
            .external_id
            .clone()
            .unwrap_or_else(|| self.user.upn.to_string());
        let options_json = engine
            .rp()
            .creation_options(&rp_user)
            .await
            .map_err(|e| KeyFailure::Upstream(e.message))?;
        let parsed = CreationOptions::from_json(&options_json)
            .map_err(|e| KeyFailure::Upstream(format!("unusable creation options: {e}")))?;
        let mut options: Value = serde_json::from_str(&options_json)
            .map_err(|e| KeyFailure::Upstream(format!("creation options are not JSON: {e}")))?;
        if let Some(inner) = options.get("publicKey").cloned() {
            options = inner;
        }
        let store = self.app.store();
        let handle = URL_SAFE_NO_PAD.encode(&parsed.user_handle);
        if !store
            .approve_key_request(id, &parsed.challenge, &handle, now_millis())
            .await?
        {
            return Err(KeyFailure::RequestExpired);
        }
        self.request_event(&request, EventAction::KeyRequestApproved)
            .await?;
        Ok(Approved {
            options,
            origin: format!("https://{}", request.rp_id),
        })
    }

    /// The attestation of the credential the extension made for an approved request: checked
    /// against what was asked (WebAuthn §7.1 steps 7–9 on clientDataJSON; the attested
    /// credential data present), kept with the request, and the engine woken to register it.
    pub async fn submit_attestation(
        &self,
        id: KeyRequestId,
        made: AttestationRequest,
    ) -> Result<(), KeyFailure> {
        let request = self.open_request(id).await?;
        if request.state != KeyRequestState::Approved {
            return Err(KeyFailure::invalid(
                "request",
                "approve the request before sending its attestation",
            ));
        }
        let client: Value = serde_json::from_slice(&made.client_data_json)
            .map_err(|_| KeyFailure::invalid("client_data_json", "is not JSON"))?;
        let expected_origin = format!("https://{}", request.rp_id);
        if client["type"] != "webauthn.create"
            || client["challenge"].as_str() != request.challenge.as_deref()
            || client["origin"].as_str() != Some(expected_origin.as_str())
        {
            return Err(KeyFailure::invalid(
                "client_data_json",
                "is not for this request (type, challenge or origin)",
            ));
        }
        let object: ciborium::Value = ciborium::from_reader(made.attestation_object.as_slice())
            .map_err(|_| KeyFailure::invalid("attestation_object", "is not CBOR"))?;
        let auth_data = object
            .as_map()
            .and_then(|m| {
                m.iter()
                    .find(|(k, _)| k.as_text() == Some("authData"))
                    .and_then(|(_, v)| v.as_bytes())
            })
            .ok_or_else(|| KeyFailure::invalid("attestation_object", "holds no authData"))?;
        let parsed = AuthenticatorData::parse(auth_data)
            .map_err(|e| KeyFailure::invalid("attestation_object", e.to_string()))?;
        let attested = parsed.attested.ok_or_else(|| {
            KeyFailure::invalid("attestation_object", "holds no attested credential data")
        })?;
        if attested.credential_id != made.credential_id {
            return Err(KeyFailure::invalid(
                "credential_id",
                "is not the attested credential's",
            ));
        }
        let credential_b64 = URL_SAFE_NO_PAD.encode(&made.credential_id);
        // The body Graph's fido2Methods takes (as the on-behalf path sends it).
        let registration = json!({
            "id": credential_b64,
            "response": {
                "clientDataJSON": URL_SAFE_NO_PAD.encode(&made.client_data_json),
                "attestationObject": URL_SAFE_NO_PAD.encode(&made.attestation_object),
            },
            "clientExtensionResults": {},
        })
        .to_string();
        let aaguid = uuid::Uuid::from_bytes(attested.aaguid).to_string();
        let store = self.app.store();
        if !store
            .attest_key_request(
                id,
                &KeyAttestation {
                    registration: &registration,
                    credential_id: &made.credential_id,
                    public_key_cose: &attested.public_key,
                    aaguid: &aaguid,
                },
                now_millis(),
            )
            .await?
        {
            return Err(KeyFailure::RequestExpired);
        }
        self.wake(request.item_id).await?;
        Ok(())
    }

    /// Makes the request's item claimable now and tells the workers. A worker may be holding it
    /// at this very moment (looking at the request before the answer arrived, about to defer
    /// it for a poll): then it is woken again once that worker lets go, or the answer would
    /// wait a whole poll.
    async fn wake(&self, item: behalf_domain::ItemId) -> Result<(), KeyFailure> {
        let store = self.app.store().clone();
        if !store.wake_item(item).await? {
            let app = self.app.clone();
            tokio::spawn(async move {
                for _ in 0..200 {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    if store.wake_item(item).await.unwrap_or(false) {
                        app.notify_jobs_queued();
                        return;
                    }
                }
            });
        }
        self.app.notify_jobs_queued();
        Ok(())
    }

    /// Declines a request: the item ends `declined`.
    pub async fn decline_request(&self, id: KeyRequestId) -> Result<(), KeyFailure> {
        let request = self.open_request(id).await?;
        let store = self.app.store();
        if !store
            .move_key_request(
                id,
                &[KeyRequestState::Pending, KeyRequestState::Approved],
                KeyRequestState::Declined,
                now_millis(),
            )
            .await?
        {
            return Err(KeyFailure::RequestExpired);
        }
        self.request_event(&request, EventAction::KeyRequestDeclined)
            .await?;
        self.wake(request.item_id).await?;
        Ok(())
    }

    /// Sign-in with a local key: the extension signs with its own credential key; the server
    /// checks the device, that the credential is the user's local passkey on `rp_id`, the origin,
    /// and the PIN when given, and records the use. Whether the user was verified.
    pub async fn assert_local(
        &self,
        credential_id: &[u8],
        rp_id: &str,
        origin: &str,
        pin: Option<&Secret>,
    ) -> Result<bool, KeyFailure> {
        if !origin_fits_rp_id(origin, rp_id) {
            return Err(KeyFailure::invalid(
                "origin",
                format!("{origin:?} may not sign in to the relying party {rp_id:?}"),
            ));
        }
        let passkey = self
            .find_credentials(rp_id, &[credential_id.to_vec()])
            .await?
            .into_iter()
            .find(|c| c.kind == SecurityKeyKind::Device)
            .ok_or(KeyFailure::NoCredential)?;
        let verified = match pin {
            Some(pin) => {
                self.app
                    .check_key_pin(&self.user, &self.device.id.to_string(), pin)
                    .await?;
                true
            }
            None => false,
        };
        let mut detail = EventDetail::upn(self.user.upn.as_str())
            .with("origin", origin)
            .with("device", self.device.id)
            .with("device_name", &self.device.name)
            .with("user_verified", verified)
            .with("key", "local");
        detail.passkey_id = Some(passkey.passkey_id.to_string());
        self.app
            .store()
            .append_event(
                self.device.workspace_id,
                NewEvent::new(self.actor(), EventAction::KeyUsed, Outcome::Success)
                    .user(self.user.id)
                    .rp(rp_id)
                    .detail(detail),
            )
            .await?;
        Ok(verified)
    }

    async fn request_event(
        &self,
        request: &KeyRequest,
        action: EventAction,
    ) -> Result<(), KeyFailure> {
        self.app
            .store()
            .append_event(
                self.device.workspace_id,
                NewEvent::new(self.actor(), action, Outcome::Success)
                    .user(self.user.id)
                    .rp(&request.rp_id)
                    .detail(
                        EventDetail::upn(self.user.upn.as_str())
                            .with("request", request.id)
                            .with("device", self.device.id),
                    ),
            )
            .await?;
        Ok(())
    }
}
