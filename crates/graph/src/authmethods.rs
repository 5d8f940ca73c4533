//! Passkeys registered on behalf of a user
//! (<https://learn.microsoft.com/graph/api/fido2authenticationmethod-creationoptions>,
//! <https://learn.microsoft.com/graph/api/authentication-post-fido2methods>).

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::client::{ApiVersion, GraphClient, decode, segment};
use crate::error::GraphError;

/// A `fido2AuthenticationMethod`. Graph does not return the credential id: match a method to a
/// credential by `display_name` (which Behalf makes unique) and `created_date_time`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fido2Method {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    /// ISO 8601, as Graph sent it.
    #[serde(default)]
    pub created_date_time: Option<String>,
    #[serde(default)]
    pub aa_guid: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    /// `attested` or `notAttested`.
    #[serde(default)]
    pub attestation_level: Option<String>,
    #[serde(default)]
    pub attestation_certificates: Vec<String>,
    /// `deviceBound` or `synced` (beta).
    #[serde(default)]
    pub passkey_type: Option<String>,
}

/// What a delete found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    /// 404: the method was already gone (deleted earlier, or by someone else).
    AlreadyGone,
}

#[derive(Deserialize)]
struct MethodList {
    #[serde(default)]
    value: Vec<Fido2Method>,
    #[serde(rename = "@odata.nextLink", default)]
    next_link: Option<String>,
}

fn fido2_path(user: &str) -> String {
    format!("users/{}/authentication/fido2Methods", segment(user))
}

impl GraphClient {
    /// `GET …/fido2Methods/creationOptions`: the WebAuthn creation options, as Graph sent them.
    /// On `beta` a challenge timeout (5..43200 minutes) is passed with function syntax; `v1.0`
    /// documents a fixed 5-minute challenge and takes no parameter, so it is not sent there.
    pub async fn fido2_creation_options(
        &self,
        user: &str,
        challenge_timeout_minutes: Option<u32>,
    ) -> Result<Value, GraphError> {
        let function = match (self.api_version(), challenge_timeout_minutes) {
            (ApiVersion::Beta, Some(m)) => {
                format!("creationOptions(challengeTimeoutInMinutes={m})")
            }
            _ => "creationOptions".to_string(),
        };
        let url = self.url(&format!("{}/{function}", fido2_path(user)));
        self.get_json(&url, &[]).await
    }

    /// `POST …/fido2Methods` with `{"displayName", "publicKeyCredential"}`; Graph answers 201.
    pub async fn register_fido2_method(
        &self,
        user: &str,
        display_name: &str,
        public_key_credential: Value,
    ) -> Result<Fido2Method, GraphError> {
        let url = self.url(&fido2_path(user));
        let body =
            json!({"displayName": display_name, "publicKeyCredential": public_key_credential});
        let a = self.send(Method::POST, &url, Some(&body), &[]).await?;
        decode(&url, &a.body)
    }

    /// `GET …/fido2Methods`, every page.
    pub async fn list_fido2_methods(&self, user: &str) -> Result<Vec<Fido2Method>, GraphError> {
        let mut url = self.url(&fido2_path(user));
        let mut out = Vec::new();
        loop {
            let page: MethodList = self.get_json(&url, &[]).await?;
            out.extend(page.value);
            match page.next_link {
                Some(next) => {
                    self.check_link(&next)?;
                    url = next;
                }
                None => return Ok(out),
            }
        }
    }

    /// `DELETE …/fido2Methods/{id}` (204). A 404 is [`DeleteOutcome::AlreadyGone`], not an error.
    pub async fn delete_fido2_method(
        &self,
        user: &str,
        method_id: &str,
    ) -> Result<DeleteOutcome, GraphError> {
        let url = self.url(&format!("{}/{}", fido2_path(user), segment(method_id)));
        match self.send(Method::DELETE, &url, None, &[]).await {
            Ok(_) => Ok(DeleteOutcome::Deleted),
            Err(e) if e.is_not_found() => Ok(DeleteOutcome::AlreadyGone),
            Err(e) => Err(e),
        }
    }
}
