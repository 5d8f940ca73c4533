//! Directory writes: users (<https://learn.microsoft.com/graph/api/user-post-users>, `PATCH`,
//! `DELETE`), groups (<https://learn.microsoft.com/graph/api/group-post-groups>, `DELETE`) and
//! memberships (`POST /groups/{id}/members/$ref`, `DELETE /groups/{id}/members/{id}/$ref`), and
//! Graph's refusals of them in words.

use behalf_domain::Secret;
use reqwest::Method;
use serde::Serialize;
use serde_json::{Value, json};

use crate::client::{GraphClient, decode, segment};
use crate::error::GraphError;
use crate::groups::GraphGroup;
use crate::users::{GraphUser, Page};

/// A user to create. Graph: "accountEnabled, displayName, mailNickname, passwordProfile,
/// userPrincipalName" are required.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub user_principal_name: String,
    pub display_name: String,
    pub mail_nickname: String,
    pub account_enabled: bool,
    pub department: Option<String>,
    /// The initial password (`passwordProfile.password`), with
    /// `forceChangePasswordNextSignIn`. Held in a [`Secret`]: never logged.
    pub password: Secret,
    pub force_change_password: bool,
}

/// A group to create: a security group (`securityEnabled`, not mail-enabled).
#[derive(Debug, Clone, Serialize)]
pub struct NewGroup {
    pub display_name: String,
    pub mail_nickname: String,
    pub description: Option<String>,
}

/// What happened to a write that may have been done before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Written,
    /// Already so: a member already there, an object already gone (404 on a delete).
    AlreadySo,
}

/// Why Graph refused a write, as an admin reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The object exists already (a UPN taken), or a reference does.
    Conflict,
    /// The object (or one it names) does not exist.
    NotFound,
    /// A value Graph does not accept (a domain not verified, a password too weak).
    Invalid,
    /// The app lacks the permission (`Authorization_RequestDenied`, 403).
    Forbidden,
    /// Worth trying again later (throttled, unavailable, no answer).
    Transient,
    /// Anything else.
    Other,
}

/// Graph's words for a UPN already in use (Graph answers 400 `Request_BadRequest`).
const UPN_TAKEN: &str =
    "Another object with the same value for property userPrincipalName already exists";
/// Graph's words for a member already in the group (400 `Request_BadRequest`).
const REFERENCE_EXISTS: &str = "One or more added object references already exist";

impl GraphError {
    /// What kind of refusal this is, from Graph's status, code and message.
    pub fn refusal(&self) -> Refusal {
        if self.is_retryable() {
            return Refusal::Transient;
        }
        let message = self.message().unwrap_or_default();
        match (self.status(), self.code().unwrap_or_default()) {
            (_, _) if message.contains(UPN_TAKEN) || message.contains(REFERENCE_EXISTS) => {
                Refusal::Conflict
            }
            (Some(409), _) => Refusal::Conflict,
            (Some(404), _) | (_, "Request_ResourceNotFound") => Refusal::NotFound,
            (Some(403), _) | (_, "Authorization_RequestDenied") => Refusal::Forbidden,
            (Some(400), _) => Refusal::Invalid,
            _ => Refusal::Other,
        }
    }

    /// The refusal in words for an admin, Graph's own message kept (with its request id).
    pub fn in_words(&self) -> String {
        let said = self.to_string();
        match self.refusal() {
            Refusal::Conflict if self.message().is_some_and(|m| m.contains(UPN_TAKEN)) => format!(
                "conflict: the user principal name is already taken in Entra ID (by a user or a deleted user, which keeps it for 30 days) ({said})"
            ),
            Refusal::Conflict => format!("conflict: it exists already in Entra ID ({said})"),
            Refusal::NotFound => format!("not found in Entra ID ({said})"),
            Refusal::Forbidden => format!(
                "Entra ID refused: the app lacks the permission (User.ReadWrite.All, Group.ReadWrite.All or GroupMember.ReadWrite.All) ({said})"
            ),
            Refusal::Invalid => format!("Entra ID refused the value ({said})"),
            Refusal::Transient => {
                format!("Entra ID is busy or unreachable; tried again later ({said})")
            }
            Refusal::Other => said,
        }
    }
}

fn users_path() -> String {
    "users".to_string()
}

impl GraphClient {
    /// `GET /users/{upn}`; `None` on 404.
    pub async fn find_user(&self, id_or_upn: &str) -> Result<Option<GraphUser>, GraphError> {
        match self.get_user(id_or_upn).await {
            Ok(u) => Ok(Some(u)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /users` (201 with the user).
    pub async fn create_user(&self, new: &NewUser) -> Result<GraphUser, GraphError> {
        let url = self.url(&users_path());
        let mut body = json!({
            "accountEnabled": new.account_enabled,
            "displayName": new.display_name,
            "mailNickname": new.mail_nickname,
            "userPrincipalName": new.user_principal_name,
            "passwordProfile": {
                "forceChangePasswordNextSignIn": new.force_change_password,
                "password": new.password.expose(),
            },
        });
        if let Some(d) = &new.department {
            body["department"] = json!(d);
        }
        let a = self.send(Method::POST, &url, Some(&body), &[]).await?;
        decode(&url, &a.body)
    }

    /// `PATCH /users/{id}` with Graph's property names (204).
    pub async fn update_user(&self, id: &str, changes: &Value) -> Result<(), GraphError> {
        let url = self.url(&format!("users/{}", segment(id)));
        self.send(Method::PATCH, &url, Some(changes), &[]).await?;
        Ok(())
    }

    /// `PATCH /users/{id}` with only `passwordProfile` (204): sets the user's password, which
    /// Entra checks against its password policy (a refusal is 400 `Request_BadRequest`, its
    /// words in [`GraphError::message`]). Needs `User-PasswordProfile.ReadWrite.All` or
    /// `User.ReadWrite.All` (and, app-only, a role that may reset the user's password).
    pub async fn set_password(
        &self,
        id: &str,
        password: &Secret,
        force_change_next_sign_in: bool,
    ) -> Result<(), GraphError> {
        let url = self.url(&format!("users/{}", segment(id)));
        let body = json!({
            "passwordProfile": {
                "forceChangePasswordNextSignIn": force_change_next_sign_in,
                "password": password.expose(),
            },
        });
        self.send(Method::PATCH, &url, Some(&body), &[]).await?;
        Ok(())
    }

    /// `DELETE /users/{id}` (204; the user moves to deleted items). 404 is already so.
    pub async fn delete_user(&self, id: &str) -> Result<WriteOutcome, GraphError> {
        let url = self.url(&format!("users/{}", segment(id)));
        gone_is_fine(self.send(Method::DELETE, &url, None, &[]).await)
    }

    /// The group whose `mailNickname` is `nickname` (the key Behalf records), if any.
    pub async fn find_group_by_mail_nickname(
        &self,
        nickname: &str,
    ) -> Result<Option<GraphGroup>, GraphError> {
        // OData string literal: a single quote is doubled.
        let filter = format!("mailNickname eq '{}'", nickname.replace('\'', "''"));
        let enc: String = url::form_urlencoded::byte_serialize(filter.as_bytes()).collect();
        let url = self.url(&format!(
            "groups?$filter={enc}&$select={}",
            crate::groups::GROUP_SELECT
        ));
        let page: Page<GraphGroup> = self.get_json(&url, &[]).await?;
        Ok(page.value.into_iter().next())
    }

    /// `POST /groups`: a security group.
    pub async fn create_group(&self, new: &NewGroup) -> Result<GraphGroup, GraphError> {
        let url = self.url("groups");
        let mut body = json!({
            "displayName": new.display_name,
            "mailNickname": new.mail_nickname,
            "mailEnabled": false,
            "securityEnabled": true,
        });
        if let Some(d) = &new.description {
            body["description"] = json!(d);
        }
        let a = self.send(Method::POST, &url, Some(&body), &[]).await?;
        decode(&url, &a.body)
    }

    /// `DELETE /groups/{id}` (security groups are deleted at once). 404 is already so.
    pub async fn delete_group(&self, id: &str) -> Result<WriteOutcome, GraphError> {
        let url = self.url(&format!("groups/{}", segment(id)));
        gone_is_fine(self.send(Method::DELETE, &url, None, &[]).await)
    }

    /// `POST /groups/{id}/members/$ref` with `@odata.id` naming the directory object. A member
    /// already there is already so.
    pub async fn add_group_member(
        &self,
        group: &str,
        member: &str,
    ) -> Result<WriteOutcome, GraphError> {
        let url = self.url(&format!("groups/{}/members/$ref", segment(group)));
        let reference = format!(
            "{}/directoryObjects/{}",
            self.url("").trim_end_matches('/'),
            segment(member)
        );
        let body = json!({ "@odata.id": reference });
        match self.send(Method::POST, &url, Some(&body), &[]).await {
            Ok(_) => Ok(WriteOutcome::Written),
            Err(e) if e.message().is_some_and(|m| m.contains(REFERENCE_EXISTS)) => {
                Ok(WriteOutcome::AlreadySo)
            }
            Err(e) => Err(e),
        }
    }

    /// `DELETE /groups/{id}/members/{id}/$ref`. Not a member (404) is already so.
    pub async fn remove_group_member(
        &self,
        group: &str,
        member: &str,
    ) -> Result<WriteOutcome, GraphError> {
        let url = self.url(&format!(
            "groups/{}/members/{}/$ref",
            segment(group),
            segment(member)
        ));
        gone_is_fine(self.send(Method::DELETE, &url, None, &[]).await)
    }
}

fn gone_is_fine(r: Result<crate::client::Answer, GraphError>) -> Result<WriteOutcome, GraphError> {
    match r {
        Ok(_) => Ok(WriteOutcome::Written),
        Err(e) if e.is_not_found() => Ok(WriteOutcome::AlreadySo),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderMap;

    use super::*;

    fn answer(status: u16, code: &str, message: &str) -> GraphError {
        let body = json!({"error": {"code": code, "message": message}}).to_string();
        GraphError::from_graph_answer(status, &HeaderMap::new(), body.as_bytes())
    }

    #[test]
    fn refusals_are_named_in_words() {
        let taken = answer(
            400,
            "Request_BadRequest",
            "Another object with the same value for property userPrincipalName already exists.",
        );
        assert_eq!(taken.refusal(), Refusal::Conflict);
        assert!(
            taken
                .in_words()
                .starts_with("conflict: the user principal name is already taken"),
            "{}",
            taken.in_words()
        );
        let member = answer(
            400,
            "Request_BadRequest",
            "One or more added object references already exist for the following modified properties: 'members'.",
        );
        assert_eq!(member.refusal(), Refusal::Conflict);
        assert_eq!(
            answer(404, "Request_ResourceNotFound", "x").refusal(),
            Refusal::NotFound
        );
        assert_eq!(
            answer(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges"
            )
            .refusal(),
            Refusal::Forbidden
        );
        assert_eq!(
            answer(
                400,
                "Request_BadRequest",
                "The domain portion of the userPrincipalName property is invalid."
            )
            .refusal(),
            Refusal::Invalid
        );
        assert_eq!(
            answer(429, "TooManyRequests", "slow down").refusal(),
            Refusal::Transient
        );
        assert_eq!(
            answer(503, "serviceNotAvailable", "busy").refusal(),
            Refusal::Transient
        );
    }

    #[test]
    fn a_new_users_password_is_hidden_in_debug() {
        let u = NewUser {
            user_principal_name: "a@b.c".into(),
            display_name: "A".into(),
            mail_nickname: "a".into(),
            account_enabled: true,
            department: None,
            password: Secret::new("Sup3r-secret!"),
            force_change_password: true,
        };
        assert!(!format!("{u:?}").contains("Sup3r"));
    }
}
