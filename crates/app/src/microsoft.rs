//! Microsoft Entra ID as the provisioning engine's relying party, through Graph (SPEC §3.1).

use async_trait::async_trait;
use behalf_domain::MICROSOFT_RP_ID;
use behalf_graph::{GraphClient, GraphError};
use behalf_provision::{RegisteredMethod, RelyingParty, RpError, RpErrorKind};

/// Graph's `fido2Methods` API as a [`RelyingParty`].
#[derive(Debug, Clone)]
pub struct MicrosoftGraph {
    pub client: GraphClient,
    /// Beta's `challengeTimeoutInMinutes` (ignored on v1.0, which fixes 5 minutes).
    pub challenge_timeout_minutes: Option<u32>,
}

pub(crate) fn rp_error(error: GraphError) -> RpError {
    let kind = match (error.status(), error.code()) {
        // Graph refuses to register a passkey for the caller's own account.
        (Some(405), _) | (_, Some("methodNotAllowed")) => RpErrorKind::OwnAccount,
        (Some(404), _) => RpErrorKind::UnknownUser,
        _ if error.is_retryable() || error.is_throttled() => RpErrorKind::Unavailable,
        (Some(status), _) if status >= 500 => RpErrorKind::Unavailable,
        (Some(_), _) => RpErrorKind::Rejected,
        // No status: the request never got an answer (or the answer was unreadable).
        (None, _) => match error {
            GraphError::Transport { .. } => RpErrorKind::Unavailable,
            _ => RpErrorKind::Rejected,
        },
    };
    RpError {
        kind,
        status: error.status(),
        code: error.code().map(str::to_owned),
        message: error
            .message()
            .map_or_else(|| error.to_string(), str::to_owned),
        request_id: error.request_id().map(str::to_owned),
        retry_after: error.retry_after(),
    }
}

#[async_trait]
impl RelyingParty for MicrosoftGraph {
    fn rp_id(&self) -> &str {
        MICROSOFT_RP_ID
    }

    async fn creation_options(&self, user: &str) -> Result<String, RpError> {
        // A Retry-After comes back to the engine, which keeps it with the item (issue 18).
        let options = self
            .client
            .deferring()
            .fido2_creation_options(user, self.challenge_timeout_minutes)
            .await
            .map_err(rp_error)?;
        Ok(options.to_string())
    }

    async fn register(
        &self,
        user: &str,
        display_name: &str,
        public_key_credential: serde_json::Value,
    ) -> Result<RegisteredMethod, RpError> {
        let method = self
            .client
            .deferring()
            .register_fido2_method(user, display_name, public_key_credential)
            .await
            .map_err(rp_error)?;
        Ok(RegisteredMethod {
            display_name: method.display_name.unwrap_or_default(),
            id: method.id,
        })
    }

    async fn list(&self, user: &str) -> Result<Vec<RegisteredMethod>, RpError> {
        let methods = self
            .client
            .list_fido2_methods(user)
            .await
            .map_err(rp_error)?;
        Ok(methods
            .into_iter()
            .map(|m| RegisteredMethod {
                display_name: m.display_name.unwrap_or_default(),
                id: m.id,
            })
            .collect())
    }

    async fn delete(&self, user: &str, method_id: &str) -> Result<(), RpError> {
        self.client
            .delete_fido2_method(user, method_id)
            .await
            .map(|_| ())
            .map_err(rp_error)
    }
}
