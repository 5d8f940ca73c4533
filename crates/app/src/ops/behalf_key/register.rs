//! Registration on a user's behalf at any website: an admin's paired device answers a site's
//! `navigator.credentials.create` with "register for user X". The credential is made in X's vault
//! key over the clientDataHash the admin's extension built for the site's origin, the passkey
//! record keeps the RP id and origin, and X can then sign in there through their own device.

use behalf_authenticator::{
    Aaguid, Attestation, AttestationConveyance, Authenticator, AuthenticatorConfig,
    CreationOptions, ES256, UserVerification, es256_spki_der,
};
use behalf_domain::{
    DeviceRole, EventAction, EventDetail, NewEvent, Outcome, PasskeyId, Secret, SecurityKeyKind,
    Upn,
};
use behalf_store::{NewPasskey, WriteSet};

use super::sign_in::origin_fits_rp_id;
use super::{KeyFailure, KeyHolder};

/// What the admin's extension asks for (the site's own `create` options, and the user chosen).
#[derive(Debug)]
pub struct RegisterRequest {
    pub for_user: String,
    pub rp_id: String,
    pub rp_name: Option<String>,
    /// The site's `user.id`, `user.name` and `user.displayName` for the account.
    pub user_handle: Vec<u8>,
    pub user_name: String,
    pub user_display_name: String,
    pub origin: String,
    pub client_data_hash: [u8; 32],
    pub algorithms: Vec<i64>,
    pub exclude_credentials: Vec<Vec<u8>>,
    /// The admin's own PIN: registering for someone else always needs it.
    pub pin: Option<Secret>,
}

/// The new credential as the extension answers the site (WebAuthn L3 §5.2.1).
#[derive(Debug, Clone)]
pub struct RegisteredForUser {
    pub passkey_id: PasskeyId,
    pub credential_id: Vec<u8>,
    pub attestation_object: Vec<u8>,
    pub authenticator_data: Vec<u8>,
    /// SubjectPublicKeyInfo DER, `toJSON()`'s `publicKey`.
    pub public_key_spki: Vec<u8>,
    pub public_key_algorithm: i64,
    pub upn: String,
}

impl KeyHolder<'_> {
    /// Registers a credential for `for_user` at the site that asked. Only an admin's device,
    /// with its user's PIN; the origin must fit the RP id; ES256 only (WebAuthn §6.3.2 step 2:
    /// otherwise `NotSupportedError`); a credential the site already lists for the user is not
    /// made twice (step 3, `InvalidStateError`).
    pub async fn register_on_behalf(
        &self,
        request: RegisterRequest,
    ) -> Result<RegisteredForUser, KeyFailure> {
        if self.device.role != DeviceRole::Admin {
            return Err(KeyFailure::NotAdmin);
        }
        if !origin_fits_rp_id(&request.origin, &request.rp_id) {
            return Err(KeyFailure::invalid(
                "origin",
                format!(
                    "{:?} may not register for the relying party {:?}",
                    request.origin, request.rp_id
                ),
            ));
        }
        if !request.algorithms.contains(&ES256) {
            return Err(KeyFailure::NotSupported(
                "the site accepts no ES256 key, the only kind Behalf makes".into(),
            ));
        }
        let pin = request.pin.as_ref().ok_or(KeyFailure::PinRequired)?;
        let device = self.device.id.to_string();
        self.app.check_key_pin(&self.user, &device, pin).await?;

        let store = self.app.store();
        let workspace = self.device.workspace_id;
        let upn = Upn::parse(request.for_user.trim()).map_err(|_| KeyFailure::UnknownUser)?;
        let user = store
            .find_user_by_upn(workspace, &upn)
            .await?
            .ok_or(KeyFailure::UnknownUser)?;
        let key = store
            .assign_security_key(workspace, user.id, SecurityKeyKind::Vault, "vault")
            .await?;
        let aaguid = Aaguid(self.app.config().provisioning.aaguid.bytes());
        // A website gets `none`: Behalf's attestation CA is for the tenant that trusts it.
        let authenticator = Authenticator::new(
            AuthenticatorConfig {
                aaguid,
                attestation: Attestation::None,
            },
            self.app.vault().clone(),
        );
        let options = CreationOptions {
            challenge: String::new(),
            challenge_timeout: None,
            rp_id: request.rp_id.clone(),
            rp_name: request.rp_name.clone(),
            user_handle: request.user_handle.clone(),
            user_name: request.user_name.clone(),
            user_display_name: request.user_display_name.clone(),
            algorithms: request.algorithms.clone(),
            exclude_credentials: request.exclude_credentials.clone(),
            require_resident_key: true,
            user_verification: UserVerification::Required,
            attestation: AttestationConveyance::None,
            hmac_create_secret: false,
            cred_protect: None,
            enforce_cred_protect: false,
        };
        let (made, credential) = authenticator
            .make_credential_with_client_data_hash(&options, &request.client_data_hash)
            .await
            .map_err(|e| match e {
                behalf_authenticator::AuthenticatorError::CredentialExcluded { .. } => {
                    KeyFailure::Excluded
                }
                other => KeyFailure::Internal(other.to_string()),
            })?;
        let public_key_spki = es256_spki_der(&made.credential.public_key_cose)
            .map_err(|e| KeyFailure::Internal(e.to_string()))?;

        // One commit: the sealed credential, the passkey (registered: the site has it as soon as
        // the page takes the answer; its id for it is the credential id) and the event that
        // says who registered it for whom, where.
        let mut set = WriteSet::new();
        self.app
            .vault()
            .stage_credential(&mut set, &credential)
            .map_err(|e| KeyFailure::Internal(e.to_string()))?;
        let passkey = set.insert_passkey(&NewPasskey {
            id: PasskeyId::new(),
            workspace_id: workspace,
            user_id: user.id,
            security_key_id: key.id,
            rp_id: request.rp_id.clone(),
            credential_id: made.credential.credential_id.clone(),
            public_key_cose: made.credential.public_key_cose.clone(),
            aaguid: aaguid.to_string(),
            created_by: self.actor(),
        });
        let credential_b64 = behalf_authenticator::b64url(&made.credential.credential_id);
        set.mark_passkey_registered(passkey.id, &credential_b64);
        let mut detail = EventDetail::upn(user.upn.as_str())
            .with("origin", &request.origin)
            .with("device", self.device.id)
            .with("registered_by", self.user.upn.as_str());
        detail.passkey_id = Some(passkey.id.to_string());
        detail.rp_method_id = Some(credential_b64);
        set.append_event(
            workspace,
            NewEvent::new(
                self.actor(),
                EventAction::KeyRegisteredForUser,
                Outcome::Success,
            )
            .user(user.id)
            .rp(&request.rp_id)
            .detail(detail),
        );
        store.commit(set).await?;
        store
            .record_passkey_origin(passkey.id, &request.origin, &self.actor())
            .await?;
        Ok(RegisteredForUser {
            passkey_id: passkey.id,
            credential_id: made.credential.credential_id,
            attestation_object: made.attestation_object,
            authenticator_data: made.authenticator_data,
            public_key_spki,
            public_key_algorithm: ES256,
            upn: user.upn.as_str().to_owned(),
        })
    }
}
