//! Sign-in with a vault key through Behalf Key: the device's user's credentials for an RP, and
//! an assertion the server signs with the vault key (WebAuthn L3 §6.3.3, CTAP 2.1 §6.2), the
//! extension having built clientDataJSON and asked the user (UP) and, for UV, the PIN.

use behalf_authenticator::{
    Aaguid, Attestation, Authenticator, AuthenticatorConfig, CredentialStore as _,
    PlatformAssertion,
};
use behalf_domain::{
    EventAction, EventDetail, NewEvent, Outcome, PasskeyId, PasskeyState, Secret, SecurityKeyKind,
    SecurityKeyState,
};

use super::{KeyFailure, KeyHolder};

/// A credential of the device's user on an RP, as the extension's account picker shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundCredential {
    /// Behalf's record of it.
    pub passkey_id: PasskeyId,
    pub id: Vec<u8>,
    pub rp_id: String,
    pub user_handle: Vec<u8>,
    pub user_name: String,
    pub display_name: String,
    pub kind: SecurityKeyKind,
}

/// What the extension asks to have signed.
#[derive(Debug)]
pub struct AssertRequest {
    pub credential_id: Vec<u8>,
    pub rp_id: String,
    /// The origin the browser gave the extension, recorded and checked against `rp_id`.
    pub origin: String,
    pub client_data_hash: [u8; 32],
    /// The PIN, when the RP asked for user verification.
    pub pin: Option<Secret>,
}

/// WebAuthn L3 §5.1.4.1 step 6 (and §5.1.3 step 8): the RP id must be the origin's effective
/// domain or a registrable suffix of it, and the origin HTTPS (or `http://localhost`, which
/// browsers treat as secure). The extension checks this before asking; the server checks again,
/// since a device key alone must not let anyone sign for an RP from anywhere.
pub(super) fn origin_fits_rp_id(origin: &str, rp_id: &str) -> bool {
    let Ok(url) = url::Url::parse(origin) else {
        return false;
    };
    let Some(host) = url.host_str() else {
        return false;
    };
    let secure = url.scheme() == "https" || (url.scheme() == "http" && host == "localhost");
    let rp_id = rp_id.to_ascii_lowercase();
    secure && url.path() == "/" && (host == rp_id || host.ends_with(&format!(".{rp_id}")))
}

impl KeyHolder<'_> {
    /// The user's registered credentials on `rp_id` (vault keys and local keys), restricted to
    /// `allow` when the RP named some (an empty list: every discoverable credential, which all
    /// of Behalf's are).
    pub async fn find_credentials(
        &self,
        rp_id: &str,
        allow: &[Vec<u8>],
    ) -> Result<Vec<FoundCredential>, KeyFailure> {
        let store = self.app.store();
        let mut found = Vec::new();
        for passkey in store.passkeys_of(self.user.id, rp_id).await? {
            if passkey.state != PasskeyState::Registered
                || (!allow.is_empty() && !allow.contains(&passkey.credential_id))
            {
                continue;
            }
            let key = store.get_security_key(passkey.security_key_id).await?;
            if key.state == SecurityKeyState::Revoked {
                continue;
            }
            // A vault key's user handle is sealed with the credential; a local key's was in the
            // creation options its request was approved with.
            let user_handle = match key.kind {
                SecurityKeyKind::Vault => match self
                    .app
                    .vault()
                    .load(rp_id, &passkey.credential_id)
                    .await
                    .map_err(|e| KeyFailure::Internal(e.to_string()))?
                {
                    Some(credential) => credential.info.user_handle.clone(),
                    None => continue,
                },
                SecurityKeyKind::Device => store
                    .key_request_of_credential(&passkey.credential_id)
                    .await?
                    .and_then(|r| r.user_handle)
                    .and_then(|h| {
                        use base64::Engine as _;
                        base64::engine::general_purpose::URL_SAFE_NO_PAD
                            .decode(h)
                            .ok()
                    })
                    .unwrap_or_default(),
                SecurityKeyKind::Ctap2 => continue,
            };
            found.push(FoundCredential {
                passkey_id: passkey.id,
                id: passkey.credential_id,
                rp_id: rp_id.to_owned(),
                user_handle,
                user_name: self.user.upn.as_str().to_owned(),
                display_name: self.user.display_name.clone(),
                kind: key.kind,
            });
        }
        Ok(found)
    }

    /// Signs an assertion with the vault key of one of the user's credentials. UV is claimed only
    /// when `pin` was given and right; the counter moves forward before the signature exists.
    /// Every use is an event: who, which RP, from which origin and device.
    pub async fn assert(&self, request: AssertRequest) -> Result<PlatformAssertion, KeyFailure> {
        if !origin_fits_rp_id(&request.origin, &request.rp_id) {
            return Err(KeyFailure::invalid(
                "origin",
                format!(
                    "{:?} may not sign in to the relying party {:?}",
                    request.origin, request.rp_id
                ),
            ));
        }
        let mine = self
            .find_credentials(&request.rp_id, std::slice::from_ref(&request.credential_id))
            .await?;
        // A local key's credential is signed by the extension itself (`assert_local`).
        let credential = mine
            .iter()
            .find(|c| c.kind == SecurityKeyKind::Vault)
            .ok_or(KeyFailure::NoCredential)?;
        let device = self.device.id.to_string();
        let user_verified = match &request.pin {
            Some(pin) => {
                self.app.check_key_pin(&self.user, &device, pin).await?;
                true
            }
            None => false,
        };
        // Signing uses no attestation; the AAGUID matters only at registration.
        let authenticator = Authenticator::new(
            AuthenticatorConfig {
                aaguid: Aaguid([0; 16]),
                attestation: Attestation::None,
            },
            self.app.vault().clone(),
        );
        let signed = authenticator
            .assert_with_client_data_hash(
                &request.rp_id,
                &request.credential_id,
                &request.client_data_hash,
                user_verified,
            )
            .await
            .map_err(|e| KeyFailure::Internal(e.to_string()))?;
        let mut detail = EventDetail::upn(self.user.upn.as_str())
            .with("origin", &request.origin)
            .with("device", self.device.id)
            .with("device_name", &self.device.name)
            .with("user_verified", user_verified)
            .with("sign_count", signed.sign_count);
        detail.passkey_id = Some(credential.passkey_id.to_string());
        self.app
            .store()
            .append_event(
                self.device.workspace_id,
                NewEvent::new(self.actor(), EventAction::KeyUsed, Outcome::Success)
                    .user(self.user.id)
                    .rp(&request.rp_id)
                    .detail(detail),
            )
            .await?;
        Ok(signed)
    }
}

#[cfg(test)]
mod tests {
    use super::origin_fits_rp_id;

    #[test]
    fn the_rp_id_is_the_origins_host_or_a_suffix_of_it_over_https() {
        let rp = "login.microsoft.com";
        assert!(origin_fits_rp_id("https://login.microsoft.com", rp));
        assert!(origin_fits_rp_id("https://eu.login.microsoft.com", rp));
        assert!(!origin_fits_rp_id("http://login.microsoft.com", rp));
        assert!(!origin_fits_rp_id("https://evil-login.microsoft.com", rp));
        assert!(!origin_fits_rp_id(
            "https://login.microsoft.com.evil.example",
            rp
        ));
        assert!(!origin_fits_rp_id("https://microsoft.com", rp));
        assert!(!origin_fits_rp_id("https://login.microsoft.com/path", rp));
        assert!(origin_fits_rp_id("http://localhost:8443", "localhost"));
        assert!(!origin_fits_rp_id("not a url", rp));
    }
}
