use thiserror::Error;

/// Everything the authenticator can refuse or fail at. Each variant names what is wrong in words an
/// operator can act on; the CTAP2 status code it stands for is given where there is one.
#[derive(Debug, Error)]
pub enum AuthenticatorError {
    /// The relying party's options (creation or request) are malformed. `field` is the JSON path.
    #[error("invalid {input}: {field}: {reason}")]
    Invalid {
        input: &'static str,
        field: String,
        reason: String,
    },

    /// CTAP2_ERR_UNSUPPORTED_ALGORITHM: nothing in `pubKeyCredParams` is ES256.
    #[error(
        "no supported algorithm in publicKey.pubKeyCredParams (offered {offered:?}; this authenticator makes ES256 (-7) keys)"
    )]
    UnsupportedAlgorithm { offered: Vec<i64> },

    /// CTAP2_ERR_CREDENTIAL_EXCLUDED: the relying party listed a credential this authenticator
    /// already holds for it, i.e. the user already has a passkey from us there.
    #[error(
        "credential excluded: publicKey.excludeCredentials lists credential {credential_id} that this authenticator already holds for {rp_id}"
    )]
    CredentialExcluded {
        rp_id: String,
        credential_id: String,
    },

    /// CTAP2_ERR_NO_CREDENTIALS: nothing to sign in with for this relying party.
    #[error("no credential for relying party {rp_id}{}", if *.allow_list { " among allowCredentials" } else { "" })]
    NoCredentials { rp_id: String, allow_list: bool },

    /// The credential's signature counter reached its maximum; the credential must be replaced.
    #[error("sign counter of credential {credential_id} is exhausted")]
    CounterExhausted { credential_id: String },

    /// The credential store refused or failed (database, decryption, ...).
    #[error("credential store: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// A stored credential or key could not be read back (wrong length, not a P-256 scalar, ...).
    #[error("corrupt credential data: {0}")]
    Corrupt(String),

    /// Building attestation material (CA, certificate) failed.
    #[error("attestation: {0}")]
    Attestation(String),
}

impl AuthenticatorError {
    pub(crate) fn invalid(
        input: &'static str,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        AuthenticatorError::Invalid {
            input,
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Wraps any store error.
    pub fn store(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        AuthenticatorError::Store(Box::new(e))
    }
}
