//! The user list and one user's record: details, groups, security keys, passkeys, events.

use behalf_domain::{
    EventAction, EventDetail, Group, NewEvent, Outcome, Passkey, SecurityKey, SecurityKeyId,
    SecurityKeyKind, SecurityKeyState, User, UserId,
};
use behalf_store::{UserPage, UserQuery};

use crate::ops::report::{ReportQuery, ReportRow};
use crate::{AppError, Provisioner, Reader};

/// Everything the user page shows.
#[derive(Debug, Clone)]
pub struct UserDetails {
    pub user: User,
    pub groups: Vec<Group>,
    pub security_keys: Vec<SecurityKey>,
    pub passkeys: Vec<Passkey>,
}

impl Reader<'_> {
    /// One page of users matching `query` (prefix search, filters, keyset paging).
    pub async fn list_users(&self, query: &UserQuery) -> Result<UserPage, AppError> {
        Ok(self
            .app
            .store()
            .search_users(self.app.workspace().id, query)
            .await?)
    }

    /// The user, if they belong to this workspace (else not found, as if they did not exist).
    pub(crate) async fn own_user(&self, id: UserId) -> Result<User, AppError> {
        let user = self.app.store().get_user(id).await?;
        if user.workspace_id != self.app.workspace().id {
            return Err(AppError::NotFound {
                what: "user",
                key: id.to_string(),
            });
        }
        Ok(user)
    }

    /// The users `ids` name, in that order, read in batches; an id of no user of this
    /// workspace is not found, as [`Reader::own_user`] says.
    pub async fn own_users(&self, ids: &[UserId]) -> Result<Vec<User>, AppError> {
        let workspace = self.app.workspace().id;
        let found: std::collections::HashMap<UserId, User> = self
            .app
            .store()
            .get_users(ids)
            .await?
            .into_iter()
            .filter(|u| u.workspace_id == workspace)
            .map(|u| (u.id, u))
            .collect();
        ids.iter()
            .map(|id| {
                found.get(id).cloned().ok_or_else(|| AppError::NotFound {
                    what: "user",
                    key: id.to_string(),
                })
            })
            .collect()
    }

    /// Every user matching `query`'s search and filters (its cursor and limit ignored): the
    /// panel's "select all that match". At most `cap`; more is refused rather than cut short.
    pub async fn matching_user_ids(
        &self,
        query: &UserQuery,
        cap: usize,
    ) -> Result<Vec<UserId>, AppError> {
        let mut page_query = UserQuery {
            cursor: None,
            limit: behalf_store::MAX_PAGE,
            ..query.clone()
        };
        let mut ids = Vec::new();
        loop {
            let page = self.list_users(&page_query).await?;
            ids.extend(page.users.iter().map(|row| row.user.id));
            if ids.len() > cap {
                return Err(AppError::invalid(
                    "selection",
                    format!("more than {cap} users match: narrow the search or the filters"),
                ));
            }
            match page.next_cursor {
                Some(cursor) => page_query.cursor = Some(cursor),
                None => return Ok(ids),
            }
        }
    }

    /// The workspace's groups, by name: the panel's group filter.
    pub async fn groups(&self) -> Result<Vec<Group>, AppError> {
        let mut groups = self
            .app
            .store()
            .list_groups(self.app.workspace().id)
            .await?;
        groups.sort_by(|a, b| {
            a.display_name
                .to_lowercase()
                .cmp(&b.display_name.to_lowercase())
        });
        Ok(groups)
    }

    pub async fn user_details(&self, id: UserId) -> Result<UserDetails, AppError> {
        let user = self.own_user(id).await?;
        let store = self.app.store();
        let groups = store.user_groups(id).await?;
        let security_keys = store.security_keys_of(id).await?;
        let passkeys = store.all_passkeys_of(id).await?;
        Ok(UserDetails {
            user,
            groups,
            security_keys,
            passkeys,
        })
    }

    /// The user's events, oldest first.
    pub async fn user_events(&self, id: UserId) -> Result<Vec<ReportRow>, AppError> {
        self.own_user(id).await?;
        self.report(&ReportQuery {
            user: Some(id.to_string()),
            ..ReportQuery::default()
        })
        .await
    }
}

impl Provisioner<'_> {
    /// Assigns the user a new security key of `kind` (only `vault` keys can be made here).
    pub async fn assign_security_key(
        &self,
        user: UserId,
        kind: SecurityKeyKind,
    ) -> Result<SecurityKey, AppError> {
        self.reader().own_user(user).await?;
        if kind != SecurityKeyKind::Vault {
            return Err(AppError::invalid(
                "kind",
                format!("{kind} keys cannot be assigned from here yet; assign a vault key"),
            ));
        }
        let store = self.app.store();
        if let Some(current) = store.current_security_key(user, kind).await? {
            return Err(AppError::Conflict(format!(
                "the user already has a {} security key ({}): revoke it first",
                current.kind, current.id
            )));
        }
        let key = store
            .assign_security_key(self.app.workspace().id, user, kind, "vault key")
            .await?;
        self.key_event(EventAction::SecurityKeyAssigned, &key)
            .await?;
        Ok(key)
    }

    pub async fn revoke_security_key(&self, id: SecurityKeyId) -> Result<(), AppError> {
        let store = self.app.store();
        let key = store.get_security_key(id).await?;
        if key.workspace_id != self.app.workspace().id {
            return Err(AppError::NotFound {
                what: "security key",
                key: id.to_string(),
            });
        }
        store
            .set_security_key_state(id, SecurityKeyState::Revoked)
            .await?;
        self.key_event(EventAction::SecurityKeyRevoked, &key).await
    }

    async fn key_event(&self, action: EventAction, key: &SecurityKey) -> Result<(), AppError> {
        let user = self.app.store().get_user(key.user_id).await?;
        self.app
            .store()
            .append_event(
                self.app.workspace().id,
                NewEvent::new(self.actor(), action, Outcome::Success)
                    .user(key.user_id)
                    .detail(
                        EventDetail::upn(user.upn.to_string())
                            .with("security_key_id", key.id)
                            .with("kind", key.kind),
                    ),
            )
            .await?;
        Ok(())
    }
}
