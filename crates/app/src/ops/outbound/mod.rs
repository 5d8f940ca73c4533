//! Outbound writes: an admin creates, changes or deletes a user or a group in Behalf, and it
//! happens in Entra ID through Graph, for a connection marked writable.
//!
//! Each change is made to Behalf's rows at once and queued as a write (`directory_writes`, a
//! leased queue): the server's workers (or `behalf outbound run`) send it, with retries, and
//! record whether it reached Entra ID. Creates are idempotent: a user is looked up by UPN and a
//! group by its mailNickname before it is created, so a create that may have reached Graph
//! before a crash is found, never sent twice (see `run`).

mod run;
mod views;

use behalf_domain::{
    ConnectionKind, DirectoryConnection, EventAction, EventDetail, Group, GroupId, NewEvent,
    Outcome, Upn, User, UserDraft, UserId, WriteId, WriteState,
};
use behalf_store::{DirectoryWrite, StoreError, UserChange};
use serde_json::{Value, json};

pub use run::{MAX_ATTEMPTS, RunSummary, password_for_new_user};
pub use views::{ConnectionWritability, Writability};

use crate::{AppError, Operator, Reader, graph_settings};

/// A user to create in Behalf and in Entra ID.
#[derive(Debug, Clone)]
pub struct NewDirectoryUser {
    pub upn: String,
    pub display_name: String,
    /// Graph's mailNickname; by default the UPN's part before the `@`.
    pub mail_nickname: Option<String>,
    pub account_enabled: bool,
    pub department: Option<String>,
    /// Send the create now, in this call, and hand back the random initial password to show
    /// once (it is stored nowhere). Without it (or when the create cannot go now) nobody ever
    /// sees the password: the user signs in with a Temporary Access Pass or a reset link.
    pub show_initial_password: bool,
}

/// A user created: Behalf's record, its write, and the initial password when it was asked for
/// and the create reached Entra ID in the call.
#[derive(Debug)]
pub struct CreatedUser {
    pub user: User,
    pub write: DirectoryWrite,
    pub initial_password: Option<behalf_domain::Secret>,
}

/// A group to create: a security group.
#[derive(Debug, Clone)]
pub struct NewDirectoryGroup {
    pub display_name: String,
    /// Graph's mailNickname, the key the group is looked up by before it is created; by default
    /// made from the display name.
    pub mail_nickname: Option<String>,
    pub description: Option<String>,
}

/// Whether a user's or group's changes have reached Entra ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    /// Every change is in Entra ID.
    Synced,
    /// Some change is queued (or being retried).
    Pending,
    /// Some change failed and waits for an admin (retry or discard).
    Failed,
}

impl SyncState {
    pub fn of(writes: &[DirectoryWrite]) -> SyncState {
        if writes.iter().any(|w| w.state == WriteState::Failed) {
            SyncState::Failed
        } else if writes.iter().any(|w| w.state.is_open()) {
            SyncState::Pending
        } else {
            SyncState::Synced
        }
    }
}

/// Graph's rule for mailNickname: 1..64 ASCII characters, none of `@ ( ) \ [ ] " ; : < > ,` or
/// space.
pub fn check_mail_nickname(nickname: &str) -> Result<String, AppError> {
    let n = nickname.trim();
    let bad = |c: char| !c.is_ascii() || c.is_ascii_control() || "@()\\[]\";:<>, ".contains(c);
    if n.is_empty() || n.len() > 64 || n.chars().any(bad) {
        return Err(AppError::invalid(
            "mail_nickname",
            format!(
                "{n:?}: 1 to 64 ASCII characters, without spaces or any of @ ( ) \\ [ ] \" ; : < > ,"
            ),
        ));
    }
    Ok(n.to_owned())
}

/// A mailNickname made from a name: its allowed characters, at most 64.
fn nickname_from(name: &str) -> String {
    let n: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(64)
        .collect();
    if n.is_empty() { "group".into() } else { n }
}

fn display_name(text: &str, field: &str) -> Result<String, AppError> {
    let t = text.trim();
    if t.is_empty() || t.chars().count() > 256 {
        return Err(AppError::invalid(field, "1 to 256 characters"));
    }
    Ok(t.to_owned())
}

fn unique(e: StoreError, what: String) -> AppError {
    match e {
        StoreError::UniqueViolation { .. } => AppError::Conflict(what),
        StoreError::LeaseLost { what } => AppError::Conflict(what),
        other => other.into(),
    }
}

impl Operator<'_> {
    /// Marks `connection` writable (or read-only). The configured `[sync] connection` is
    /// recorded first if no import made it yet.
    pub async fn set_connection_writable(
        &self,
        connection: &str,
        writable: bool,
    ) -> Result<DirectoryConnection, AppError> {
        let store = self.app.store();
        let workspace = self.app.workspace().id;
        let config = self.app.config();
        let found = store
            .list_connections(workspace)
            .await?
            .into_iter()
            .find(|c| c.name == connection);
        let c = match found {
            Some(c) => c,
            None if connection == config.sync.connection => {
                let tenant = graph_settings::tenant(config)?;
                store
                    .ensure_connection(
                        workspace,
                        ConnectionKind::EntraId,
                        connection,
                        &graph_settings::target(config, &tenant),
                    )
                    .await?
            }
            None => {
                return Err(AppError::NotFound {
                    what: "connection",
                    key: connection.to_owned(),
                });
            }
        };
        if c.kind != ConnectionKind::EntraId {
            return Err(AppError::Conflict(format!(
                "{connection} is a SCIM connection: Behalf writes only to Entra ID connections"
            )));
        }
        store.set_connection_writable(c.id, writable).await?;
        self.app
            .audit(
                self.actor(),
                EventAction::ConnectionWritable,
                Outcome::Success,
                EventDetail::default()
                    .with("connection", &c.name)
                    .with("writable", writable),
            )
            .await?;
        Ok(c)
    }

    /// The writable connection new users and groups go to, or why there is none.
    async fn writable(&self) -> Result<DirectoryConnection, AppError> {
        self.app
            .store()
            .writable_connection(self.app.workspace().id)
            .await?
            .ok_or_else(|| {
                AppError::Conflict(
                    "no connection is writable: Behalf writes to Entra ID only through a connection marked writable (PUT /api/v1/connections/{name}/writable)".into(),
                )
            })
    }

    /// The connection `connection_id` names, if Behalf may write to it.
    async fn writable_for(
        &self,
        what: &str,
        connection_id: Option<behalf_domain::ConnectionId>,
    ) -> Result<behalf_domain::ConnectionId, AppError> {
        let store = self.app.store();
        let Some(id) = connection_id else {
            return Err(AppError::Conflict(format!(
                "{what} is not in a directory connection: there is nothing in Entra ID to change"
            )));
        };
        if !store.connection_writable(id).await? {
            let name = store.get_connection(id).await?.name;
            return Err(AppError::Conflict(format!(
                "{what} belongs to the connection {name}, which is read-only: mark it writable first"
            )));
        }
        Ok(id)
    }

    async fn requested(&self, write: &DirectoryWrite) -> Result<(), AppError> {
        self.record_request(write).await?;
        self.app.notify_writes_queued();
        Ok(())
    }

    /// The event of a change asked for (without waking the workers).
    async fn record_request(&self, write: &DirectoryWrite) -> Result<(), AppError> {
        let mut event = NewEvent::new(
            self.actor(),
            EventAction::OutboundRequested,
            Outcome::Success,
        )
        .detail(run::write_detail(write));
        if let Some(u) = write.user_id {
            event = event.user(u);
        }
        self.app
            .store()
            .append_event(self.app.workspace().id, event)
            .await?;
        Ok(())
    }

    /// Creates a user in Behalf and queues its creation in Entra ID.
    pub async fn create_directory_user(
        &self,
        new: NewDirectoryUser,
    ) -> Result<CreatedUser, AppError> {
        let upn = Upn::parse(&new.upn)?;
        let display = display_name(&new.display_name, "display_name")?;
        let nickname = match &new.mail_nickname {
            Some(n) => check_mail_nickname(n)?,
            None => check_mail_nickname(upn.as_str().split('@').next().unwrap_or_default())
                .map_err(|_| {
                    AppError::invalid(
                        "mail_nickname",
                        "the UPN's part before the @ is not a valid mailNickname: give one",
                    )
                })?,
        };
        let connection = self.writable().await?;
        let department = new
            .department
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty());
        let draft = UserDraft {
            connection_id: Some(connection.id),
            external_id: None,
            upn: upn.clone(),
            display_name: display.clone(),
            mail: None,
            department: department.clone(),
            enabled: new.account_enabled,
        };
        let payload = json!({
            "userPrincipalName": upn.as_str(),
            "displayName": display,
            "mailNickname": nickname,
            "accountEnabled": new.account_enabled,
            "department": department,
        });
        let (user, write) = self
            .app
            .store()
            .outbound_create_user(
                self.app.workspace().id,
                &draft,
                &nickname,
                &payload,
                &self.actor(),
            )
            .await
            .map_err(|e| unique(e, format!("a user {upn} exists already in Behalf")))?;
        if !new.show_initial_password {
            self.requested(&write).await?;
            return Ok(CreatedUser {
                user,
                write,
                initial_password: None,
            });
        }
        // The workers are woken only after this attempt, so that they do not take it first.
        self.record_request(&write).await?;
        let sent = self.send_new_user_now(&write).await;
        self.app.notify_writes_queued();
        let initial_password = sent?;
        let store = self.app.store();
        Ok(CreatedUser {
            user: store.get_user(user.id).await?,
            write: store.get_write(write.workspace_id, write.id).await?,
            initial_password,
        })
    }

    /// Changes a user's display name, department or whether the account is enabled, in Behalf
    /// now and in Entra ID by a queued `PATCH`.
    pub async fn update_directory_user(
        &self,
        id: UserId,
        change: UserChange,
    ) -> Result<(User, DirectoryWrite), AppError> {
        let user = self.reader().own_user(id).await?;
        let connection = self
            .writable_for(&format!("user {}", user.upn), user.connection_id)
            .await?;
        let mut change = change;
        if let Some(d) = &change.display_name {
            change.display_name = Some(display_name(d, "display_name")?);
        }
        if let Some(Some(d)) = &change.department {
            let d = d.trim();
            change.department = Some((!d.is_empty()).then(|| d.to_owned()));
        }
        if change.is_empty() {
            return Err(AppError::invalid(
                "body",
                "nothing to change: give display_name, department or account_enabled",
            ));
        }
        self.not_being_deleted(Some(id), None).await?;
        let mut payload = serde_json::Map::new();
        if let Some(d) = &change.display_name {
            payload.insert("displayName".into(), json!(d));
        }
        if let Some(d) = &change.department {
            payload.insert("department".into(), json!(d));
        }
        if let Some(e) = change.enabled {
            payload.insert("accountEnabled".into(), json!(e));
        }
        let write = self
            .app
            .store()
            .outbound_update_user(
                &user,
                connection,
                &change,
                &Value::Object(payload),
                &self.actor(),
            )
            .await?;
        self.requested(&write).await?;
        Ok((self.app.store().get_user(id).await?, write))
    }

    /// Disables or enables the account (Graph: `accountEnabled`).
    pub async fn set_directory_user_enabled(
        &self,
        id: UserId,
        enabled: bool,
    ) -> Result<(User, DirectoryWrite), AppError> {
        self.update_directory_user(
            id,
            UserChange {
                enabled: Some(enabled),
                ..UserChange::default()
            },
        )
        .await
    }

    /// Queues the user's deletion in Entra ID (it moves to deleted items there); Behalf's row
    /// goes when that is done.
    pub async fn delete_directory_user(&self, id: UserId) -> Result<DirectoryWrite, AppError> {
        let user = self.reader().own_user(id).await?;
        let connection = self
            .writable_for(&format!("user {}", user.upn), user.connection_id)
            .await?;
        self.not_being_deleted(Some(id), None).await?;
        let write = self
            .app
            .store()
            .outbound_delete_user(&user, connection, &self.actor())
            .await?;
        self.requested(&write).await?;
        Ok(write)
    }

    /// Creates a security group in Behalf and queues its creation in Entra ID.
    pub async fn create_directory_group(
        &self,
        new: NewDirectoryGroup,
    ) -> Result<(Group, DirectoryWrite), AppError> {
        let display = display_name(&new.display_name, "display_name")?;
        let nickname = match &new.mail_nickname {
            Some(n) => check_mail_nickname(n)?,
            None => nickname_from(&display),
        };
        let connection = self.writable().await?;
        let description = new
            .description
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty());
        let workspace = self.app.workspace().id;
        // The mailNickname is the key a create is reconciled by: one group per key in Behalf.
        if let Some(g) = self
            .app
            .store()
            .find_group_by_mail_nickname(workspace, &nickname)
            .await?
        {
            return Err(AppError::Conflict(format!(
                "the group {:?} has the mailNickname {nickname:?} already: give another",
                g.display_name
            )));
        }
        let payload = json!({
            "displayName": display,
            "mailNickname": nickname,
            "description": description,
        });
        let (group, write) = self
            .app
            .store()
            .outbound_create_group(
                workspace,
                connection.id,
                &display,
                description.as_deref(),
                &nickname,
                &payload,
                &self.actor(),
            )
            .await?;
        self.requested(&write).await?;
        Ok((group, write))
    }

    async fn own_group(&self, id: GroupId) -> Result<Group, AppError> {
        let group = self.app.store().get_group(id).await?;
        if group.workspace_id != self.app.workspace().id {
            return Err(AppError::NotFound {
                what: "group",
                key: id.to_string(),
            });
        }
        Ok(group)
    }

    /// Queues a group's deletion in Entra ID; Behalf's row and memberships go when it is done.
    pub async fn delete_directory_group(&self, id: GroupId) -> Result<DirectoryWrite, AppError> {
        let group = self.own_group(id).await?;
        let connection = self
            .writable_for(
                &format!("group {}", group.display_name),
                group.connection_id,
            )
            .await?;
        self.not_being_deleted(None, Some(id)).await?;
        let write = self
            .app
            .store()
            .outbound_delete_group(&group, connection, &self.actor())
            .await?;
        self.requested(&write).await?;
        Ok(write)
    }

    /// Adds (`added`) or removes a member, in Behalf now and in Entra ID by a queued `$ref`
    /// write. `None`: Behalf had it so already, nothing to write.
    pub async fn set_directory_membership(
        &self,
        group: GroupId,
        user: UserId,
        added: bool,
    ) -> Result<Option<DirectoryWrite>, AppError> {
        let group = self.own_group(group).await?;
        let user = self.reader().own_user(user).await?;
        let connection = self
            .writable_for(
                &format!("group {}", group.display_name),
                group.connection_id,
            )
            .await?;
        if user.connection_id != Some(connection) {
            return Err(AppError::Conflict(format!(
                "{} is not in the group's connection: Entra ID cannot add a user of another directory",
                user.upn
            )));
        }
        self.not_being_deleted(Some(user.id), Some(group.id))
            .await?;
        let write = self
            .app
            .store()
            .outbound_membership(&group, &user, connection, added, &self.actor())
            .await?;
        if let Some(w) = &write {
            self.requested(w).await?;
        }
        Ok(write)
    }

    /// Refuses changes to a user or group whose deletion is queued.
    async fn not_being_deleted(
        &self,
        user: Option<UserId>,
        group: Option<GroupId>,
    ) -> Result<(), AppError> {
        use behalf_domain::WriteKind::{DeleteGroup, DeleteUser};
        let writes = self.app.store().writes_of(user, group).await?;
        let deleting = writes.iter().find(|w| {
            w.state.is_open()
                && ((w.kind == DeleteUser && user.is_some() && w.user_id == user)
                    || (w.kind == DeleteGroup && group.is_some() && w.group_id == group))
        });
        match deleting {
            Some(w) => Err(AppError::Conflict(format!(
                "{} is being deleted (write {}): discard that write first to change it",
                w.subject, w.id
            ))),
            None => Ok(()),
        }
    }

    /// How long until the first write that waits on time may be sent (ms); `None` when none
    /// does.
    pub async fn next_write_in(&self) -> Result<Option<i64>, AppError> {
        Ok(self
            .app
            .store()
            .next_write_in(self.app.workspace().id)
            .await?)
    }

    /// A failed write goes back to the queue, due now.
    pub async fn retry_write(&self, id: WriteId) -> Result<DirectoryWrite, AppError> {
        let write = self
            .app
            .store()
            .retry_write(self.app.workspace().id, id)
            .await
            .map_err(|e| unique(e, String::new()))?;
        self.app
            .audit(
                self.actor(),
                EventAction::OutboundRetried,
                Outcome::Success,
                run::write_detail(&write),
            )
            .await?;
        self.app.notify_writes_queued();
        Ok(write)
    }

    /// Gives up a pending or failed write: it is not sent, and Behalf's row keeps the change
    /// (the next full import brings Entra ID's state back).
    pub async fn discard_write(&self, id: WriteId) -> Result<DirectoryWrite, AppError> {
        let write = self
            .app
            .store()
            .discard_write(self.app.workspace().id, id)
            .await
            .map_err(|e| unique(e, String::new()))?;
        self.app
            .audit(
                self.actor(),
                EventAction::OutboundDiscarded,
                Outcome::Success,
                run::write_detail(&write),
            )
            .await?;
        Ok(write)
    }
}

impl Reader<'_> {
    /// The workspace's writes in these states (every state when empty), oldest first.
    pub async fn directory_writes(
        &self,
        states: &[WriteState],
        limit: i64,
    ) -> Result<Vec<DirectoryWrite>, AppError> {
        Ok(self
            .app
            .store()
            .list_writes(self.app.workspace().id, states, limit.clamp(1, 10_000))
            .await?)
    }

    /// One write.
    pub async fn directory_write(&self, id: WriteId) -> Result<DirectoryWrite, AppError> {
        Ok(self
            .app
            .store()
            .get_write(self.app.workspace().id, id)
            .await?)
    }

    /// Whether a user's changes have reached Entra ID, with its writes.
    pub async fn user_sync_state(
        &self,
        id: UserId,
    ) -> Result<(SyncState, Vec<DirectoryWrite>), AppError> {
        self.own_user(id).await?;
        let writes = self.app.store().writes_of(Some(id), None).await?;
        Ok((SyncState::of(&writes), writes))
    }
}
