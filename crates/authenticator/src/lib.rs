//! Behalf's software FIDO2 authenticator.
//!
//! It plays both the WebAuthn client (it builds `clientDataJSON` as a browser would, origin
//! `https://` + RP id) and a CTAP 2.1 authenticator (ES256 / P-256 resident credentials, UP and
//! UV set, BE/BS clear: device-bound). It does no IO: credentials go through a
//! [`CredentialStore`], which `behalf-vault` implements over the database with every private
//! key encrypted.
//!
//! # Use
//!
//! ```no_run
//! # async fn demo(graph_creation_options: &str) -> Result<(), behalf_authenticator::AuthenticatorError> {
//! use behalf_authenticator::*;
//!
//! let authenticator = Authenticator::new(
//!     AuthenticatorConfig { aaguid: Aaguid::parse("0bb1f6ef-0a3c-4b1e-9c5a-3f3c2b8e8d01")?, attestation: Attestation::PackedSelf },
//!     MemoryStore::new(),
//! );
//! // Graph's GET …/fido2Methods/creationOptions answer, as text (a `{"value": …}` wrapper is fine).
//! let registration = authenticator.make_credential_json(graph_creation_options).await?;
//! // Already stored. Now POST {"displayName": …, "publicKeyCredential": <this>} to Graph:
//! let body = registration.response.to_json();
//! # let _ = body;
//! // Later, prove it signs in:
//! let assertion = authenticator
//!     .get_assertion(&RequestOptions {
//!         challenge: "…".into(),
//!         rp_id: registration.credential.rp_id.clone(),
//!         allow_credentials: vec![registration.credential.credential_id.clone()],
//!         user_verification: UserVerification::Required,
//!     })
//!     .await?;
//! # let _ = assertion;
//! # Ok(()) }
//! ```
//!
//! # Attestation
//!
//! [`Attestation::None`], [`Attestation::PackedSelf`], or [`Attestation::Packed`] with an
//! [`AttestationKey`] issued by the workspace's [`AttestationCa`] (leaf certificate per WebAuthn
//! L3 §8.2.1 with the AAGUID extension). RS256 is not made: Graph offers ES256 first and every
//! FIDO2 verifier accepts it.
//!
//! # What is not here
//!
//! hmac-secret *assertions* (the CredRandom values are made, stored and encrypted, but deriving
//! secrets needs the CTAP PIN/UV protocol's key agreement, which no Behalf flow uses yet), and
//! multiple-assertion selection (getNextAssertion): with no allow list the newest credential signs.
#![forbid(unsafe_code)]

mod attestation;
mod attestation_ca;
mod auth_data;
mod authenticator;
mod cose;
mod credential;
mod encoding;
mod error;
mod keys;
mod options;
mod store;

pub use attestation::Attestation;
pub use attestation_ca::{AAGUID_EXTENSION_OID, AttestationCa, AttestationKey, AttestationSubject};
pub use auth_data::{
    AttestedCredentialData, AuthenticatorData, ExtensionOutputs, flags, rp_id_hash,
};
pub use authenticator::{
    Assertion, AssertionResponse, AssertionResponseData, AttestationResponse, Authenticator,
    AuthenticatorConfig, CREDENTIAL_ID_LEN, PlatformAssertion, PlatformRegistration, Registration,
    RegistrationResponse, client_data_json,
};
pub use cose::{es256_cose_key, es256_spki_der, parse_es256_cose_key};
pub use credential::{Aaguid, Credential, CredentialInfo, CredentialSecret};
pub use encoding::{b64url, decode_candidates, decode_lenient};
pub use error::AuthenticatorError;
pub use keys::{PrivateKey, SecretBytes};
pub use options::{
    AttestationConveyance, CreationOptions, CredProtect, ES256, RS256, RequestOptions,
    UserVerification,
};
pub use store::{CredentialStore, MemoryStore};
