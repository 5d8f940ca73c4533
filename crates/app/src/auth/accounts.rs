//! Admins and API tokens, as owners manage them.

use std::time::Duration;

use behalf_domain::{
    AdminId, EventAction, EventDetail, Millis, Outcome, Role, Secret, TokenId, TokenKind,
    TokenScope,
};
use behalf_store::{ApiTokenEntry, NewApiToken};
use serde::Serialize;

use super::secrets::{
    SETUP_PREFIX, TOKEN_PREFIX, check_email, check_password_rules, hash_password, random_secret,
};
use super::{CreatedAdmin, CreatedToken, SETUP_LINK_LIFETIME, admin_taken, millis_from_now};
use crate::{AppError, Owner};

/// An admin as the admin list shows them.
#[derive(Debug, Clone, Serialize)]
pub struct AdminView {
    pub id: AdminId,
    pub email: String,
    pub role: Role,
    pub can_edit_users: bool,
    pub disabled: bool,
    pub has_password: bool,
    pub created_at: Millis,
}

/// A token as the token list shows it (never the token).
#[derive(Debug, Clone, Serialize)]
pub struct TokenView {
    pub id: TokenId,
    pub name: String,
    pub admin: String,
    pub scope: TokenScope,
    pub kind: TokenKind,
    pub created_at: Millis,
    pub expires_at: Option<Millis>,
    pub last_used_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
}

impl From<ApiTokenEntry> for TokenView {
    fn from(e: ApiTokenEntry) -> Self {
        TokenView {
            id: e.token.id,
            name: e.token.name,
            admin: e.admin_email,
            scope: e.token.scope,
            kind: e.token.kind,
            created_at: e.token.created_at,
            expires_at: e.token.expires_at,
            last_used_at: e.token.last_used_at,
            revoked_at: e.token.revoked_at,
        }
    }
}

impl Owner<'_> {
    /// Creates an admin; without `password`, the answer carries a one-time setup link token.
    pub async fn create_admin(
        &self,
        email: &str,
        role: Role,
        can_edit_users: bool,
        password: Option<&Secret>,
    ) -> Result<CreatedAdmin, AppError> {
        let email = check_email(email)?;
        let password_hash = match password {
            Some(p) => {
                check_password_rules(p)?;
                Some(hash_password(p)?)
            }
            None => None,
        };
        let store = self.app.store();
        let workspace = self.app.workspace().id;
        let admin = store
            .create_admin(
                workspace,
                &email,
                role,
                can_edit_users,
                password_hash.as_deref(),
            )
            .await
            .map_err(admin_taken(&email))?;
        let setup_token = if password.is_none() {
            let token = random_secret(SETUP_PREFIX);
            store
                .create_setup_token(
                    workspace,
                    admin.id,
                    &self.app.secret_hash(token.expose()).await?,
                    millis_from_now(SETUP_LINK_LIFETIME),
                )
                .await?;
            Some(token)
        } else {
            None
        };
        self.app
            .audit(
                self.actor(),
                EventAction::AdminCreated,
                Outcome::Success,
                EventDetail::default()
                    .with("email", &admin.username)
                    .with("role", admin.role)
                    .with("can_edit_users", admin.can_edit_users),
            )
            .await?;
        Ok(CreatedAdmin { admin, setup_token })
    }

    pub async fn list_admins(&self) -> Result<Vec<AdminView>, AppError> {
        let accounts = self
            .app
            .store()
            .list_admins(self.app.workspace().id)
            .await?;
        Ok(accounts
            .into_iter()
            .map(|a| AdminView {
                id: a.admin.id,
                email: a.admin.username,
                role: a.admin.role,
                can_edit_users: a.admin.can_edit_users,
                disabled: a.disabled,
                has_password: a.has_password,
                created_at: a.admin.created_at,
            })
            .collect())
    }

    /// Removes an admin (and their sessions and tokens with them). The last owner stays.
    pub async fn delete_admin(&self, id: AdminId) -> Result<(), AppError> {
        let store = self.app.store();
        let workspace = self.app.workspace().id;
        let account = store.get_admin(id).await?;
        if account.admin.workspace_id != workspace {
            return Err(AppError::NotFound {
                what: "admin",
                key: id.to_string(),
            });
        }
        if account.admin.role == Role::Owner && store.count_owners(workspace).await? <= 1 {
            return Err(AppError::Conflict(
                "this is the workspace's last owner: make another admin an owner first".into(),
            ));
        }
        store.revoke_admin_sessions(id).await?;
        store.delete_admin(workspace, id).await?;
        self.app
            .audit(
                self.actor(),
                EventAction::AdminRemoved,
                Outcome::Success,
                EventDetail::default().with("email", &account.admin.username),
            )
            .await
    }

    /// The workspace's admin `id`, or not found (an id of another workspace is not found too).
    async fn account(&self, id: AdminId) -> Result<behalf_store::AdminAccount, AppError> {
        let account = self.app.store().get_admin(id).await?;
        if account.admin.workspace_id != self.app.workspace().id {
            return Err(AppError::NotFound {
                what: "admin",
                key: id.to_string(),
            });
        }
        Ok(account)
    }

    /// Refuses to leave the workspace without an enabled owner: `account` is about to stop
    /// being one (demoted, disabled).
    async fn keep_an_owner(&self, account: &behalf_store::AdminAccount) -> Result<(), AppError> {
        if account.admin.role == Role::Owner
            && !account.disabled
            && self
                .app
                .store()
                .count_owners(self.app.workspace().id)
                .await?
                <= 1
        {
            return Err(AppError::Conflict(
                "this is the workspace's last enabled owner: make another admin an owner first"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Changes an admin's role and whether they may edit users. Takes effect on their next
    /// request (sessions and tokens read the role each time).
    pub async fn update_admin(
        &self,
        id: AdminId,
        role: Role,
        can_edit_users: bool,
    ) -> Result<AdminView, AppError> {
        let account = self.account(id).await?;
        if role != Role::Owner {
            self.keep_an_owner(&account).await?;
        }
        let workspace = self.app.workspace().id;
        self.app
            .store()
            .set_admin_role(workspace, id, role, can_edit_users)
            .await?;
        self.app
            .audit(
                self.actor(),
                EventAction::AdminUpdated,
                Outcome::Success,
                EventDetail::default()
                    .with("email", &account.admin.username)
                    .with("role", role)
                    .with("can_edit_users", can_edit_users)
                    .with("previous_role", account.admin.role),
            )
            .await?;
        self.admin(id).await
    }

    /// Disables an admin (their sessions and tokens are refused until they are enabled again)
    /// or enables them again. The last enabled owner cannot be disabled.
    pub async fn set_admin_disabled(
        &self,
        id: AdminId,
        disabled: bool,
    ) -> Result<AdminView, AppError> {
        let account = self.account(id).await?;
        if disabled {
            self.keep_an_owner(&account).await?;
        }
        let workspace = self.app.workspace().id;
        self.app
            .store()
            .set_admin_disabled(workspace, id, disabled)
            .await?;
        self.app
            .audit(
                self.actor(),
                if disabled {
                    EventAction::AdminDisabled
                } else {
                    EventAction::AdminEnabled
                },
                Outcome::Success,
                EventDetail::default().with("email", &account.admin.username),
            )
            .await?;
        self.admin(id).await
    }

    /// The workspace's admin `id` as the admin list shows them.
    pub async fn admin(&self, id: AdminId) -> Result<AdminView, AppError> {
        let a = self.account(id).await?;
        Ok(AdminView {
            id: a.admin.id,
            email: a.admin.username,
            role: a.admin.role,
            can_edit_users: a.admin.can_edit_users,
            disabled: a.disabled,
            has_password: a.has_password,
            created_at: a.admin.created_at,
        })
    }

    /// Creates an API token for the admin `email` (shown once). `expires_in`: None never expires.
    pub async fn create_token(
        &self,
        email: &str,
        name: &str,
        scope: TokenScope,
        expires_in: Option<Duration>,
    ) -> Result<CreatedToken, AppError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(AppError::invalid(
                "name",
                "give the token a name (up to 200 characters)",
            ));
        }
        let store = self.app.store();
        let workspace = self.app.workspace().id;
        let (admin, _) =
            store
                .find_admin(workspace, email)
                .await?
                .ok_or_else(|| AppError::NotFound {
                    what: "admin",
                    key: email.to_owned(),
                })?;
        let token = random_secret(TOKEN_PREFIX);
        let entry = store
            .create_api_token(&NewApiToken {
                workspace_id: workspace,
                admin_id: admin.id,
                name,
                scope,
                kind: TokenKind::Api,
                token_hash: &self.app.secret_hash(token.expose()).await?,
                expires_at: expires_in.map(millis_from_now),
            })
            .await?;
        self.app
            .audit(
                self.actor(),
                EventAction::TokenCreated,
                Outcome::Success,
                EventDetail::default()
                    .with("token_id", entry.id)
                    .with("name", &entry.name)
                    .with("admin", &admin.username)
                    .with("scope", entry.scope),
            )
            .await?;
        Ok(CreatedToken { token, entry })
    }

    pub async fn list_tokens(&self) -> Result<Vec<TokenView>, AppError> {
        let entries = self
            .app
            .store()
            .list_api_tokens(self.app.workspace().id)
            .await?;
        Ok(entries.into_iter().map(TokenView::from).collect())
    }

    pub async fn revoke_token(&self, id: TokenId) -> Result<(), AppError> {
        if !self
            .app
            .store()
            .revoke_api_token(self.app.workspace().id, id)
            .await?
        {
            return Err(AppError::NotFound {
                what: "token",
                key: id.to_string(),
            });
        }
        self.app
            .audit(
                self.actor(),
                EventAction::TokenRevoked,
                Outcome::Success,
                EventDetail::default().with("token_id", id),
            )
            .await
    }
}
