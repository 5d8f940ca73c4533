//! Directory import from Microsoft Entra ID into the store: a full round, then delta rounds from
//! the saved `@odata.deltaLink`. The CLI (`behalf import`) and the server's jobs both call
//! [`import`].
//!
//! A full import is the *initial* round of `/users/delta` and `/groups/delta` (Microsoft's
//! recommended way to sync: it walks every object and ends with the link the next round starts
//! from), streamed page by page (`Prefer: odata.maxpagesize=999`), each page written in one
//! transaction, so memory holds one page whatever the tenant's size. Users come first, then
//! groups, so that memberships name users the store already has.
//!
//! A delta round writes what changed: new and changed users (a disabled one is marked for
//! deprovisioning by the store), soft-deleted (`@removed.reason = changed`) and hard-deleted
//! (`deleted`) users (marked removed, kept for their passkeys and events), groups created, renamed
//! or deleted, and `members@delta`.
//!
//! Two things Microsoft documents shape how a round is read
//! (<https://learn.microsoft.com/graph/delta-query-overview>, <https://learn.microsoft.com/graph/delta-query-groups>):
//! - A changed user may carry only some properties ("at least the properties that have been
//!   updated"; only those with `Prefer: return=minimal`), and a property left out is unchanged:
//!   a delta entry is laid over the stored user, never taken for the whole user. (The first round
//!   sends whole users, with unset properties left out, so there a missing property is null.)
//! - A group with many member changes comes back on several pages, each time with the next
//!   members: the group is written once per round and every page's members are applied.
#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use behalf_domain::{
    ConnectionKind, EventAction, EventDetail, GroupDraft, NewEvent, Outcome, Upn, User, UserDraft,
    WorkspaceId,
};
use behalf_graph::{GraphClient, GraphError, GraphUser, GroupChange, UserChange, UserFields};
use behalf_store::{ConnectionTarget, MembershipChange, Store, StoreError};
use serde::Serialize;

/// Why an import stopped. What was written before stays written; the delta link is saved only
/// after a round completes, so the next run starts that round again.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Full round, or changes since the last round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImportMode {
    Full,
    Delta,
}

/// What to import into.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub workspace: String,
    /// The directory connection's name in the workspace.
    pub connection: String,
    pub target: ConnectionTarget,
    pub mode: ImportMode,
    /// Who asked, for the event log (`cli`, `admin:alice@…`, `job:…`).
    pub actor: String,
}

/// Counts of one import.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    pub mode: Option<ImportMode>,
    /// A `--delta` run without a saved delta link ran a full round instead.
    pub fell_back_to_full: bool,
    pub users_seen: u64,
    pub users_created: u64,
    pub users_updated: u64,
    /// Soft-deleted in Entra (`@removed.reason = changed`), or missing from a full round.
    pub users_soft_deleted: u64,
    /// Permanently deleted in Entra (`@removed.reason = deleted`).
    pub users_hard_deleted: u64,
    pub groups_seen: u64,
    pub groups_created: u64,
    pub groups_updated: u64,
    pub groups_deleted: u64,
    pub memberships_added: u64,
    pub memberships_removed: u64,
    /// Membership changes that changed nothing: already so, or naming a user the store does not
    /// know (e.g. one skipped for an invalid UPN).
    pub memberships_unchanged: u64,
    pub pages: u64,
    /// Totals in the store afterwards.
    pub users_total: i64,
    pub groups_total: i64,
    pub memberships_total: i64,
    pub duration_ms: u64,
    /// Graph requests throttled (429) and retried during the import.
    pub throttled: u64,
    pub retries: u64,
}

/// Where an import is, for a progress bar or log lines.
pub trait Progress: Send + Sync {
    /// A phase starts: `users` or `groups`.
    fn phase(&self, _name: &str) {}
    /// A page was written; `summary` has the running counts.
    fn page(&self, _summary: &ImportSummary) {}
}

/// No progress reporting.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;
impl Progress for NoProgress {}

/// Runs one import and appends an `import.completed` event with the counts.
pub async fn import(
    store: &Store,
    graph: &GraphClient,
    options: &ImportOptions,
    progress: &dyn Progress,
) -> Result<ImportSummary, DirectoryError> {
    let started = Instant::now();
    let stats_before = graph.pacing_stats();
    let workspace = store.ensure_workspace(&options.workspace).await?;
    let connection = store
        .ensure_connection(
            workspace.id,
            ConnectionKind::EntraId,
            &options.connection,
            &options.target,
        )
        .await?;
    let mut summary = ImportSummary::default();
    let (users_link, groups_link, mode) = match options.mode {
        ImportMode::Delta => match (&connection.users_delta_link, &connection.groups_delta_link) {
            (Some(u), Some(g)) => (Some(u.clone()), Some(g.clone()), ImportMode::Delta),
            _ => {
                summary.fell_back_to_full = true;
                (None, None, ImportMode::Full)
            }
        },
        ImportMode::Full => (None, None, ImportMode::Full),
    };
    summary.mode = Some(mode);
    let ctx = Ctx {
        store,
        graph,
        workspace: workspace.id,
        connection: connection.id,
        mode,
        progress,
    };

    // A full round over a store that already holds users must notice the ones Entra no longer
    // has. Only then are the ids seen kept (ids only, ~40 bytes each); a first import keeps none.
    let mut seen =
        (mode == ImportMode::Full && store.count_users(workspace.id).await? > 0).then(HashSet::new);

    progress.phase("users");
    let users_delta = ctx
        .users_round(users_link, &mut summary, seen.as_mut())
        .await?;
    if let Some(seen) = seen {
        ctx.remove_unseen(&seen, &mut summary).await?;
    }
    progress.phase("groups");
    // A full round lists every group with all its members: what the store holds beyond that
    // (groups deleted upstream, members removed, while no delta round was there to say so) is
    // stale. A delta round reports its removals itself.
    let mut seen_groups = (mode == ImportMode::Full).then(SeenGroups::default);
    let groups_delta = ctx
        .groups_round(groups_link, &mut summary, seen_groups.as_mut())
        .await?;
    if let Some(seen) = seen_groups {
        ctx.remove_unseen_groups(&seen, &mut summary).await?;
    }
    store
        .save_delta_links(
            connection.id,
            Some(users_delta.as_str()),
            Some(groups_delta.as_str()),
        )
        .await?;

    summary.users_total = store.count_users(workspace.id).await?;
    summary.groups_total = store.list_groups(workspace.id).await?.len() as i64;
    summary.memberships_total = store.count_memberships(workspace.id).await?;
    summary.duration_ms = started.elapsed().as_millis() as u64;
    let stats = graph.pacing_stats();
    summary.throttled = stats.throttled - stats_before.throttled;
    summary.retries = stats.retries - stats_before.retries;
    store
        .append_event(
            workspace.id,
            NewEvent::new(
                &options.actor,
                EventAction::ImportCompleted,
                Outcome::Success,
            )
            .detail(EventDetail {
                extra: match serde_json::to_value(&summary) {
                    Ok(serde_json::Value::Object(map)) => map,
                    _ => Default::default(),
                },
                ..EventDetail::default()
            }),
        )
        .await?;
    tracing::info!(
        ?mode,
        users = summary.users_seen,
        groups = summary.groups_seen,
        ms = summary.duration_ms,
        "directory import completed"
    );
    Ok(summary)
}

/// What a full groups round returned: each group's external id with its members' external ids.
#[derive(Debug, Default)]
struct SeenGroups(HashMap<String, HashSet<String>>);

struct Ctx<'a> {
    store: &'a Store,
    graph: &'a GraphClient,
    workspace: WorkspaceId,
    connection: behalf_domain::ConnectionId,
    mode: ImportMode,
    progress: &'a dyn Progress,
}

impl Ctx<'_> {
    /// Walks one `/users/delta` round; returns the new delta link.
    async fn users_round(
        &self,
        start: Option<String>,
        summary: &mut ImportSummary,
        mut seen: Option<&mut HashSet<String>>,
    ) -> Result<String, DirectoryError> {
        let mut link = start;
        loop {
            let page = self.graph.users_delta_page(link.as_deref()).await?;
            summary.pages += 1;
            let mut upserts = Vec::with_capacity(page.changes.len());
            let mut soft = Vec::new();
            let mut hard = Vec::new();
            for change in page.changes {
                match change {
                    UserChange::Upsert { user, carried } => {
                        summary.users_seen += 1;
                        if let Some(seen) = seen.as_deref_mut() {
                            seen.insert(user.id.clone());
                        }
                        upserts.push((user, carried));
                    }
                    UserChange::Removed { id, permanent } => {
                        if permanent {
                            hard.push(id);
                        } else {
                            soft.push(id);
                        }
                    }
                }
            }
            let drafts = self.drafts(upserts).await?;
            if !drafts.is_empty() {
                let c = self.store.upsert_users(self.workspace, &drafts).await?;
                summary.users_created += c.created;
                summary.users_updated += c.updated;
            }
            if !soft.is_empty() {
                summary.users_soft_deleted +=
                    self.store.mark_users_removed(self.workspace, &soft).await?;
            }
            if !hard.is_empty() {
                summary.users_hard_deleted +=
                    self.store.mark_users_removed(self.workspace, &hard).await?;
            }
            self.progress.page(summary);
            match (page.next_link, page.delta_link) {
                (Some(next), _) => link = Some(next),
                (None, Some(delta)) => return Ok(delta),
                (None, None) => {
                    return Err(GraphError::Decode {
                        what: "/users/delta".into(),
                        detail: "a last page without @odata.deltaLink".into(),
                    }
                    .into());
                }
            }
        }
    }

    /// The users of one page as drafts. A first-round entry is the whole user. A delta entry is
    /// laid over the stored user (one query per page); a user the store does not have is new
    /// and comes whole, else (one skipped before, say) it is fetched.
    async fn drafts(
        &self,
        upserts: Vec<(GraphUser, UserFields)>,
    ) -> Result<Vec<UserDraft>, DirectoryError> {
        let stored: HashMap<String, User> = if self.mode == ImportMode::Delta {
            let ids: Vec<String> = upserts.iter().map(|(u, _)| u.id.clone()).collect();
            self.store
                .find_users_by_external_ids(self.workspace, &ids)
                .await?
                .into_iter()
                .filter_map(|u| Some((u.external_id.clone()?, u)))
                .collect()
        } else {
            HashMap::new()
        };
        let mut drafts = Vec::with_capacity(upserts.len());
        for (u, carried) in upserts {
            let draft = match stored.get(&u.id) {
                Some(base) => self.merged(&u, carried, base),
                None if u.user_principal_name.is_some() => self.draft(&u),
                // Gone between the delta page and the lookup: the next round says so.
                None => match self.graph.get_user(&u.id).await {
                    Ok(full) => self.draft(&full),
                    Err(e) if e.is_not_found() => continue,
                    Err(e) => return Err(e.into()),
                },
            };
            match draft {
                Some(d) => drafts.push(d),
                None => tracing::warn!(id = %u.id, "user skipped: no valid userPrincipalName"),
            }
        }
        Ok(drafts)
    }

    /// A delta entry over the stored user: what it carries (a null included) replaces, what it
    /// leaves out stays.
    fn merged(&self, u: &GraphUser, carried: UserFields, base: &User) -> Option<UserDraft> {
        let upn = if carried.user_principal_name {
            Upn::parse(u.user_principal_name.as_deref()?).ok()?
        } else {
            base.upn.clone()
        };
        let pick = |carried: bool, new: &Option<String>, old: &Option<String>| {
            if carried { new.clone() } else { old.clone() }
        };
        Some(UserDraft {
            connection_id: Some(self.connection),
            external_id: Some(u.id.clone()),
            display_name: if carried.display_name {
                u.display_name
                    .clone()
                    .unwrap_or_else(|| upn.as_str().to_string())
            } else {
                base.display_name.clone()
            },
            mail: pick(carried.mail, &u.mail, &base.mail),
            department: pick(carried.department, &u.department, &base.department),
            enabled: if carried.account_enabled {
                u.account_enabled.unwrap_or(true)
            } else {
                base.enabled
            },
            upn,
        })
    }

    /// A whole user (first round, a new user, or one fetched): a property it lacks is unset.
    fn draft(&self, u: &GraphUser) -> Option<UserDraft> {
        let upn = Upn::parse(u.user_principal_name.as_deref()?).ok()?;
        Some(UserDraft {
            connection_id: Some(self.connection),
            external_id: Some(u.id.clone()),
            display_name: u
                .display_name
                .clone()
                .unwrap_or_else(|| upn.as_str().to_string()),
            upn,
            mail: u.mail.clone(),
            department: u.department.clone(),
            // Entra always has accountEnabled; an answer without it is taken as enabled.
            enabled: u.account_enabled.unwrap_or(true),
        })
    }

    /// After a full round: users of this connection Entra no longer returned are marked removed.
    async fn remove_unseen(
        &self,
        seen: &HashSet<String>,
        summary: &mut ImportSummary,
    ) -> Result<(), DirectoryError> {
        let mut after = None;
        loop {
            let page = self.store.list_users(self.workspace, after, 1000).await?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = Some(last.id);
            let gone: Vec<String> = page
                .iter()
                .filter(|u| u.connection_id == Some(self.connection) && u.enabled)
                .filter_map(|u| u.external_id.clone())
                .filter(|id| !seen.contains(id))
                .collect();
            if !gone.is_empty() {
                summary.users_soft_deleted +=
                    self.store.mark_users_removed(self.workspace, &gone).await?;
            }
        }
    }

    /// After a full round: this connection's groups that Entra no longer returned are deleted,
    /// and members it no longer listed are removed.
    async fn remove_unseen_groups(
        &self,
        seen: &SeenGroups,
        summary: &mut ImportSummary,
    ) -> Result<(), DirectoryError> {
        let ours: Vec<_> = self
            .store
            .list_groups(self.workspace)
            .await?
            .into_iter()
            .filter(|g| g.connection_id == Some(self.connection))
            .collect();
        let mut deleted = Vec::new();
        let mut removals = Vec::new();
        for group in ours {
            let Some(external_id) = group.external_id.clone() else {
                continue;
            };
            let Some(members) = seen.0.get(&external_id) else {
                deleted.push(external_id);
                continue;
            };
            let stored = self.store.group_member_ids(group.id).await?;
            for user in self.store.get_users(&stored).await? {
                if let Some(user_external_id) = user.external_id
                    && !members.contains(&user_external_id)
                {
                    removals.push(MembershipChange {
                        group_external_id: external_id.clone(),
                        user_external_id,
                        added: false,
                    });
                }
            }
        }
        if !deleted.is_empty() {
            summary.groups_deleted += self.store.delete_groups(self.workspace, &deleted).await?;
        }
        for chunk in removals.chunks(5_000) {
            let (applied, other) = self.store.apply_memberships(self.workspace, chunk).await?;
            summary.memberships_removed += applied;
            summary.memberships_unchanged += other;
        }
        Ok(())
    }

    /// Walks one `/groups/delta` round; returns the new delta link. `seen`, on a full round,
    /// collects every group and member it lists.
    async fn groups_round(
        &self,
        start: Option<String>,
        summary: &mut ImportSummary,
        mut seen: Option<&mut SeenGroups>,
    ) -> Result<String, DirectoryError> {
        let mut link = start;
        // Groups written in this round: a big group comes back on later pages with more members
        // (and the same properties), to be merged, not counted or written again. Gone: fetched
        // for a name but deleted meanwhile (the next round reports it).
        let mut written: HashSet<String> = HashSet::new();
        let mut gone: HashSet<String> = HashSet::new();
        loop {
            let page = self.graph.groups_delta_page(link.as_deref()).await?;
            summary.pages += 1;
            let mut drafts = Vec::new();
            let mut deleted = Vec::new();
            let mut members = Vec::new();
            for change in page.changes {
                match change {
                    GroupChange::Upsert {
                        group,
                        members: delta,
                    } => {
                        let gid = group.id.clone();
                        if gone.contains(&gid) {
                            continue;
                        }
                        if written.insert(gid.clone()) {
                            summary.groups_seen += 1;
                            let group = if group.display_name.is_some() {
                                group
                            } else {
                                // Only members or some properties changed: fetch the group
                                // whole (the store may not have it, and a name is required).
                                match self.graph.get_group(&group.id).await {
                                    Ok(g) => g,
                                    Err(e) if e.is_not_found() => {
                                        written.remove(&gid);
                                        gone.insert(gid);
                                        continue;
                                    }
                                    Err(e) => return Err(e.into()),
                                }
                            };
                            drafts.push(GroupDraft {
                                connection_id: Some(self.connection),
                                external_id: Some(group.id.clone()),
                                display_name: group.display_name.clone().unwrap_or_default(),
                                description: group.description.clone(),
                            });
                        }
                        if let Some(seen) = seen.as_deref_mut() {
                            let listed = seen.0.entry(gid.clone()).or_default();
                            listed.extend(
                                delta.iter().filter(|m| m.added).map(|m| m.user_id.clone()),
                            );
                        }
                        members.extend(delta.into_iter().map(|m| MembershipChange {
                            group_external_id: gid.clone(),
                            user_external_id: m.user_id,
                            added: m.added,
                        }));
                    }
                    GroupChange::Removed { id } => deleted.push(id),
                }
            }
            if !drafts.is_empty() {
                let c = self.store.upsert_groups(self.workspace, &drafts).await?;
                summary.groups_created += c.created;
                summary.groups_updated += c.updated;
            }
            // Adds and removals apart, so that the store's "rows touched" counts each exactly;
            // in chunks, since a page of big groups can carry very many member changes.
            let (adds, removals): (Vec<_>, Vec<_>) = members.into_iter().partition(|m| m.added);
            for chunk in adds.chunks(5_000) {
                let (applied, other) = self.store.apply_memberships(self.workspace, chunk).await?;
                summary.memberships_added += applied;
                summary.memberships_unchanged += other;
            }
            for chunk in removals.chunks(5_000) {
                let (applied, other) = self.store.apply_memberships(self.workspace, chunk).await?;
                summary.memberships_removed += applied;
                summary.memberships_unchanged += other;
            }
            if !deleted.is_empty() {
                summary.groups_deleted +=
                    self.store.delete_groups(self.workspace, &deleted).await?;
            }
            self.progress.page(summary);
            match (page.next_link, page.delta_link) {
                (Some(next), _) => link = Some(next),
                (None, Some(delta)) => return Ok(delta),
                (None, None) => {
                    return Err(GraphError::Decode {
                        what: "/groups/delta".into(),
                        detail: "a last page without @odata.deltaLink".into(),
                    }
                    .into());
                }
            }
        }
    }
}
