//! Temporary Access Pass (<https://learn.microsoft.com/graph/api/authentication-post-temporaryaccesspassmethods>).
//! The pass is in the creation answer only; it is held in a [`Secret`] that prints `<hidden>`.

use behalf_domain::Secret;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use crate::authmethods::DeleteOutcome;
use crate::client::{GraphClient, decode, segment};
use crate::error::GraphError;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemporaryAccessPass {
    pub id: String,
    /// The pass. Show it once to whoever needs it; never store or log it.
    pub temporary_access_pass: Secret,
    #[serde(default)]
    pub created_date_time: Option<String>,
    #[serde(default)]
    pub start_date_time: Option<String>,
    pub lifetime_in_minutes: u32,
    pub is_usable_once: bool,
    #[serde(default)]
    pub is_usable: Option<bool>,
    #[serde(default)]
    pub method_usability_reason: Option<String>,
}

/// A pass as Graph lists it: everything but the pass, which only the creation answer holds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemporaryAccessPassMethod {
    pub id: String,
    #[serde(default)]
    pub created_date_time: Option<String>,
    #[serde(default)]
    pub start_date_time: Option<String>,
    #[serde(default)]
    pub lifetime_in_minutes: Option<u32>,
    #[serde(default)]
    pub is_usable_once: Option<bool>,
    #[serde(default)]
    pub is_usable: Option<bool>,
    /// Why it is or is not usable: `EnabledByPolicy`, `Expired`, `OneTimeUsed`, `NotYetValid`, …
    #[serde(default)]
    pub method_usability_reason: Option<String>,
}

#[derive(Deserialize)]
struct TapList {
    #[serde(default)]
    value: Vec<TemporaryAccessPassMethod>,
}

impl GraphClient {
    /// `GET /users/{id}/authentication/temporaryAccessPassMethods`: Entra keeps one pass per
    /// user, so this is one page of at most one.
    pub async fn list_temporary_access_passes(
        &self,
        user: &str,
    ) -> Result<Vec<TemporaryAccessPassMethod>, GraphError> {
        let url = self.url(&format!(
            "users/{}/authentication/temporaryAccessPassMethods",
            segment(user)
        ));
        let list: TapList = self.get_json(&url, &[]).await?;
        Ok(list.value)
    }

    /// `POST /users/{id}/authentication/temporaryAccessPassMethods`. Entra accepts lifetimes of
    /// 10..43200 minutes (narrower if the tenant's TAP policy says so) and keeps one pass per user.
    pub async fn create_temporary_access_pass(
        &self,
        user: &str,
        lifetime_minutes: u32,
        usable_once: bool,
    ) -> Result<TemporaryAccessPass, GraphError> {
        let url = self.url(&format!(
            "users/{}/authentication/temporaryAccessPassMethods",
            segment(user)
        ));
        let body = json!({"lifetimeInMinutes": lifetime_minutes, "isUsableOnce": usable_once});
        let a = self.send(Method::POST, &url, Some(&body), &[]).await?;
        decode(&url, &a.body)
    }

    /// `DELETE /users/{id}/authentication/temporaryAccessPassMethods/{methodId}` (204): a pass
    /// nobody will receive is withdrawn. A 404 is [`DeleteOutcome::AlreadyGone`].
    pub async fn delete_temporary_access_pass(
        &self,
        user: &str,
        method_id: &str,
    ) -> Result<DeleteOutcome, GraphError> {
        let url = self.url(&format!(
            "users/{}/authentication/temporaryAccessPassMethods/{}",
            segment(user),
            segment(method_id)
        ));
        match self.send(Method::DELETE, &url, None, &[]).await {
            Ok(_) => Ok(DeleteOutcome::Deleted),
            Err(e) if e.is_not_found() => Ok(DeleteOutcome::AlreadyGone),
            Err(e) => Err(e),
        }
    }
}
