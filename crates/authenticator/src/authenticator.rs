//! authenticatorMakeCredential and authenticatorGetAssertion (CTAP 2.1 §6.1, §6.2), with the
//! client's part of the ceremonies (WebAuthn L3 §5.1.3, §5.1.4) since Behalf is both.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::AuthenticatorError;
use crate::attestation::{Attestation, attestation_object, statement};
use crate::auth_data::{
    AttestedCredentialData, AuthenticatorData, ExtensionOutputs, flags, rp_id_hash,
};
use crate::cose::es256_cose_key;
use crate::credential::{Aaguid, Credential, CredentialInfo, CredentialSecret};
use crate::encoding::b64url;
use crate::keys::{PrivateKey, SecretBytes};
use crate::options::{AttestationConveyance, CreationOptions, ES256, RequestOptions};
use crate::store::CredentialStore;

/// Length of the credential ids this authenticator makes: random, so they reveal nothing.
pub const CREDENTIAL_ID_LEN: usize = 32;

/// What model this authenticator claims to be and how it proves it.
#[derive(Debug, Clone)]
pub struct AuthenticatorConfig {
    pub aaguid: Aaguid,
    pub attestation: Attestation,
}

/// A software FIDO2 authenticator over a [`CredentialStore`].
#[derive(Debug)]
pub struct Authenticator<S> {
    config: AuthenticatorConfig,
    store: S,
}

/// `publicKeyCredential` of Graph's `POST …/fido2Methods` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistrationResponse {
    /// The credential id, base64url.
    pub id: String,
    pub response: AttestationResponse,
    /// Always `{}`: Graph asks for the client extension results to be empty.
    #[serde(rename = "clientExtensionResults")]
    pub client_extension_results: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttestationResponse {
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: String,
    #[serde(rename = "attestationObject")]
    pub attestation_object: String,
}

/// A new credential: the JSON for the relying party, and the public record of what was stored.
#[derive(Debug, Clone)]
pub struct Registration {
    pub response: RegistrationResponse,
    pub credential: CredentialInfo,
    /// `"packed"` or `"none"`.
    pub format: &'static str,
}

/// A `PublicKeyCredential` with an `AuthenticatorAssertionResponse` (WebAuthn L3 §5.2.2), as a
/// browser would hand it to the relying party.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssertionResponse {
    pub id: String,
    #[serde(rename = "rawId")]
    pub raw_id: String,
    #[serde(rename = "type")]
    pub type_: &'static str,
    pub response: AssertionResponseData,
    #[serde(rename = "clientExtensionResults")]
    pub client_extension_results: serde_json::Map<String, serde_json::Value>,
    #[serde(rename = "authenticatorAttachment")]
    pub authenticator_attachment: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssertionResponseData {
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: String,
    #[serde(rename = "authenticatorData")]
    pub authenticator_data: String,
    pub signature: String,
    #[serde(rename = "userHandle")]
    pub user_handle: String,
}

/// An assertion signed over a clientDataHash the platform computed (CTAP 2.1 §6.2
/// `authenticatorGetAssertion`: the platform, not the authenticator, builds clientDataJSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformAssertion {
    pub credential_id: Vec<u8>,
    pub authenticator_data: Vec<u8>,
    /// ASN.1 DER ECDSA signature over `authenticator_data ‖ clientDataHash`.
    pub signature: Vec<u8>,
    pub user_handle: Vec<u8>,
    pub sign_count: u32,
}

/// A credential made over a clientDataHash the platform computed: the attestation object and
/// authenticator data as the authenticator returns them (CTAP 2.1 §6.1), with the public record.
#[derive(Debug, Clone)]
pub struct PlatformRegistration {
    pub credential: CredentialInfo,
    pub attestation_object: Vec<u8>,
    pub authenticator_data: Vec<u8>,
    /// `"packed"` or `"none"`.
    pub format: &'static str,
}

/// A signed assertion and the counter it carries.
#[derive(Debug, Clone)]
pub struct Assertion {
    pub response: AssertionResponse,
    pub credential_id: Vec<u8>,
    pub sign_count: u32,
}

impl RegistrationResponse {
    pub fn to_json(&self) -> serde_json::Value {
        // A struct of strings and an empty map always serialises.
        serde_json::to_value(self).unwrap_or_default()
    }
}

impl AssertionResponse {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// WebAuthn L3 §5.8.1.1 serialisation of CollectedClientData, member order as browsers write it.
pub fn client_data_json(ceremony: &str, challenge: &str, rp_id: &str) -> String {
    let quoted = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    format!(
        "{{\"type\":{},\"challenge\":{},\"origin\":{},\"crossOrigin\":false}}",
        quoted(ceremony),
        quoted(challenge),
        quoted(&format!("https://{rp_id}"))
    )
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl<S: CredentialStore> Authenticator<S> {
    pub fn new(config: AuthenticatorConfig, store: S) -> Self {
        Authenticator { config, store }
    }

    pub fn config(&self) -> &AuthenticatorConfig {
        &self.config
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Parses Graph's creationOptions JSON and runs [`Self::make_credential`].
    pub async fn make_credential_json(
        &self,
        options_json: &str,
    ) -> Result<Registration, AuthenticatorError> {
        self.make_credential(&CreationOptions::from_json(options_json)?)
            .await
    }

    /// Creates a resident ES256 credential for `options` and saves it in the store **before**
    /// returning, so a registration that reaches the relying party always has its key at home.
    pub async fn make_credential(
        &self,
        options: &CreationOptions,
    ) -> Result<Registration, AuthenticatorError> {
        let (registration, credential) = self.make_credential_unstored(options).await?;
        // Step 16 (storing the resident credential), done last so that nothing is stored for a
        // registration that could not be built.
        self.store.insert(&credential).await?;
        Ok(registration)
    }

    /// [`Self::make_credential`] without the store's insert: the caller must store the returned
    /// credential (with [`CredentialStore::insert`], or in one transaction with its own record
    /// of the registration) before the registration leaves the process.
    pub async fn make_credential_unstored(
        &self,
        options: &CreationOptions,
    ) -> Result<(Registration, Credential), AuthenticatorError> {
        // WebAuthn L3 §5.1.3 step 13 (client): clientDataJSON and its hash.
        let client_data = client_data_json("webauthn.create", &options.challenge, &options.rp_id);
        let client_data_hash: [u8; 32] = Sha256::digest(client_data.as_bytes()).into();
        let (made, credential) = self
            .make_credential_with_client_data_hash(options, &client_data_hash)
            .await?;
        let registration = Registration {
            response: RegistrationResponse {
                id: b64url(&made.credential.credential_id),
                response: AttestationResponse {
                    client_data_json: b64url(client_data.as_bytes()),
                    attestation_object: b64url(&made.attestation_object),
                },
                client_extension_results: serde_json::Map::new(),
            },
            credential: made.credential,
            format: made.format,
        };
        Ok((registration, credential))
    }

    /// CTAP 2.1 §6.1.2 `authenticatorMakeCredential` over the platform's `client_data_hash`
    /// (the platform, not the authenticator, built clientDataJSON: Behalf Key for a website's
    /// `create`). Unstored, as [`Self::make_credential_unstored`].
    pub async fn make_credential_with_client_data_hash(
        &self,
        options: &CreationOptions,
        client_data_hash: &[u8; 32],
    ) -> Result<(PlatformRegistration, Credential), AuthenticatorError> {
        // CTAP 2.1 §6.1.2 step 3: the first pubKeyCredParams entry we support wins, else
        // CTAP2_ERR_UNSUPPORTED_ALGORITHM.
        if !options.algorithms.contains(&ES256) {
            return Err(AuthenticatorError::UnsupportedAlgorithm {
                offered: options.algorithms.clone(),
            });
        }

        // Step 4 (options): rk is always honoured (every credential is stored, hence discoverable);
        // uv is always performed: Behalf's provisioning authority is the user verification, as
        // an admin's PIN is on a pre-registered security key.

        // Step 9: excludeList: a listed credential that is ours for this RP means the user is
        // already enrolled with this authenticator: CTAP2_ERR_CREDENTIAL_EXCLUDED.
        if let Some(id) = self
            .store
            .find_first(&options.rp_id, &options.exclude_credentials)
            .await?
        {
            return Err(AuthenticatorError::CredentialExcluded {
                rp_id: options.rp_id.clone(),
                credential_id: b64url(&id),
            });
        }

        // Step 12: extensions. credProtect is applied at the level asked for (all three are
        // supported, so enforceCredentialProtectionPolicy never has to refuse); hmac-secret
        // makes the two CredRandom values of CTAP 2.1 §12.5.
        let extensions = ExtensionOutputs {
            cred_protect: options.cred_protect.map(|p| p.level()),
            hmac_secret: options.hmac_create_secret.then_some(true),
        };

        // Step 13: a new key pair, and a random credential id (the key is not wrapped into the
        // id: credentials are resident).
        let private_key = PrivateKey::generate();
        let mut credential_id = vec![0u8; CREDENTIAL_ID_LEN];
        rand::fill(&mut credential_id[..]);
        let public_key_cose = es256_cose_key(&private_key.verifying_key());

        let info = CredentialInfo {
            credential_id: credential_id.clone(),
            rp_id: options.rp_id.clone(),
            user_handle: options.user_handle.clone(),
            user_name: options.user_name.clone(),
            user_display_name: options.user_display_name.clone(),
            algorithm: ES256,
            public_key_cose: public_key_cose.clone(),
            aaguid: self.config.aaguid,
            sign_count: 0,
            cred_protect: options.cred_protect,
            created_at: now_millis(),
        };
        let secret = CredentialSecret {
            private_key,
            cred_random: options.hmac_create_secret.then(|| SecretBytes::random(64)),
        };

        // Step 17: authenticator data. UP and UV set; BE and BS clear (the key never leaves
        // this authenticator); AT and ED follow content. The counter starts at 0.
        let auth_data = AuthenticatorData {
            rp_id_hash: rp_id_hash(&options.rp_id),
            flags: flags::UP | flags::UV,
            sign_count: 0,
            attested: Some(AttestedCredentialData {
                aaguid: self.config.aaguid.0,
                credential_id: credential_id.clone(),
                public_key: public_key_cose,
            }),
            extensions: (!extensions.is_empty()).then_some(extensions),
        }
        .to_bytes();

        // Step 19: the attestation statement. A relying party that asked for no attestation
        // gets `none`, as a browser would substitute it (WebAuthn L3 §5.1.3 step 22); the
        // AAGUID stays, since tenants restrict keys by it.
        let attestation = match options.attestation {
            AttestationConveyance::None => &Attestation::None,
            _ => &self.config.attestation,
        };
        let stmt = statement(
            attestation,
            &secret.private_key,
            &auth_data,
            client_data_hash,
        )?;
        let attestation_object = attestation_object(attestation.format(), stmt, auth_data.clone());

        Ok((
            PlatformRegistration {
                credential: info.clone(),
                attestation_object,
                authenticator_data: auth_data,
                format: attestation.format(),
            },
            Credential { info, secret },
        ))
    }

    /// Parses request options JSON and runs [`Self::get_assertion`].
    pub async fn get_assertion_json(
        &self,
        options_json: &str,
    ) -> Result<Assertion, AuthenticatorError> {
        self.get_assertion(&RequestOptions::from_json(options_json)?)
            .await
    }

    /// Signs in with a stored credential: the first of `allowCredentials` we hold, or, with an
    /// empty list, the newest discoverable credential for the RP. The counter is incremented and
    /// persisted before the signature exists.
    pub async fn get_assertion(
        &self,
        options: &RequestOptions,
    ) -> Result<Assertion, AuthenticatorError> {
        // CTAP 2.1 §6.2.2 step 7: locate credentials (allowList, else discoverable ones).
        let credential_id = if options.allow_credentials.is_empty() {
            self.store
                .list(&options.rp_id, None)
                .await?
                .into_iter()
                .next()
                .map(|c| c.credential_id)
        } else {
            self.store
                .find_first(&options.rp_id, &options.allow_credentials)
                .await?
        };
        let no_credentials = || AuthenticatorError::NoCredentials {
            rp_id: options.rp_id.clone(),
            allow_list: !options.allow_credentials.is_empty(),
        };
        let credential_id = credential_id.ok_or_else(no_credentials)?;
        let credential = self
            .store
            .load(&options.rp_id, &credential_id)
            .await?
            .ok_or_else(no_credentials)?;

        // Step 7 (credProtect): level 3 needs UV and level 2 needs UV or an allowList. UV is
        // always performed here, so every level is satisfied.

        // Step 12: the signature counter, incremented and persisted first, so a crash after
        // signing can never let the same value be signed twice.
        let sign_count = self
            .store
            .increment_sign_count(&options.rp_id, &credential_id)
            .await?;

        let client_data = client_data_json("webauthn.get", &options.challenge, &options.rp_id);
        let client_data_hash: [u8; 32] = Sha256::digest(client_data.as_bytes()).into();
        // Step 11: authenticator data without attested credential data; no extension outputs
        // (hmac-secret on assertions needs a PIN/UV protocol key agreement a relying party's
        // sign-in check does not use).
        let auth_data = AuthenticatorData {
            rp_id_hash: rp_id_hash(&options.rp_id),
            flags: flags::UP | flags::UV,
            sign_count,
            attested: None,
            extensions: None,
        }
        .to_bytes();
        // Step 13: the assertion signature over authData || clientDataHash.
        let signature = credential
            .secret
            .private_key
            .sign(&[auth_data.as_slice(), &client_data_hash].concat());

        let id = b64url(&credential_id);
        Ok(Assertion {
            response: AssertionResponse {
                id: id.clone(),
                raw_id: id,
                type_: "public-key",
                response: AssertionResponseData {
                    client_data_json: b64url(client_data.as_bytes()),
                    authenticator_data: b64url(&auth_data),
                    signature: b64url(&signature),
                    user_handle: b64url(&credential.info.user_handle),
                },
                client_extension_results: serde_json::Map::new(),
                authenticator_attachment: "cross-platform",
            },
            credential_id,
            sign_count,
        })
    }
}

impl<S: CredentialStore> Authenticator<S> {
    /// CTAP 2.1 §6.2.2 `authenticatorGetAssertion` for one credential the caller already chose,
    /// with the platform's `client_data_hash`. `user_verified` says whether the platform had
    /// the user verified for this request (Behalf Key: the PIN, checked by the server): the UV
    /// flag is set only then; UP is always set, the platform having asked the user.
    pub async fn assert_with_client_data_hash(
        &self,
        rp_id: &str,
        credential_id: &[u8],
        client_data_hash: &[u8; 32],
        user_verified: bool,
    ) -> Result<PlatformAssertion, AuthenticatorError> {
        let no_credentials = || AuthenticatorError::NoCredentials {
            rp_id: rp_id.to_owned(),
            allow_list: true,
        };
        // Step 7: locate the credential.
        let credential = self
            .store
            .load(rp_id, credential_id)
            .await?
            .ok_or_else(no_credentials)?;
        // Step 12: the counter is incremented and persisted before the signature exists.
        let sign_count = self
            .store
            .increment_sign_count(rp_id, credential_id)
            .await?;
        // Step 11: authenticator data without attested credential data or extensions.
        let mut flag_bits = flags::UP;
        if user_verified {
            flag_bits |= flags::UV;
        }
        let authenticator_data = AuthenticatorData {
            rp_id_hash: rp_id_hash(rp_id),
            flags: flag_bits,
            sign_count,
            attested: None,
            extensions: None,
        }
        .to_bytes();
        // Step 13: the signature over authData ‖ clientDataHash.
        let signature = credential
            .secret
            .private_key
            .sign(&[authenticator_data.as_slice(), client_data_hash].concat());
        Ok(PlatformAssertion {
            credential_id: credential_id.to_vec(),
            authenticator_data,
            signature,
            user_handle: credential.info.user_handle.clone(),
            sign_count,
        })
    }
}

#[cfg(test)]
mod tests;
