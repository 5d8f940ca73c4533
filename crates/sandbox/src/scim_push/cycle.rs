//! The initial and incremental cycles: what to send is decided from a snapshot of the tenant
//! taken under its lock, the requests are then sent without it (several at once), and what the
//! service answered is folded back into what the job remembers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures::StreamExt as _;
use reqwest::Method;
use serde_json::Value;
use uuid::Uuid;

use super::groups::{self, GroupOutcome, GroupResult, GroupTask, GroupView};
use super::http::{Answer, Scim, quoted};
use super::users::{UserView, attrs_of_resource, patch_body, patch_ops};
use super::{
    Counts, CycleKind, CycleReport, Mark, PushAction, PushFailure, PushObject, ScimPush, SentUser,
};
use crate::Sandbox;
use crate::state::{Change, Directory, Life};

/// The part of the tenant a cycle looks at.
struct Snapshot {
    users: Vec<UserView>,
    groups: Vec<GroupView>,
    mark: Mark,
}

fn group_view(dir: &Directory, pos: usize) -> GroupView {
    let g = &dir.groups[pos];
    let members = g
        .members
        .iter()
        .filter(|m| {
            dir.users
                .get(**m as usize)
                .is_some_and(|u| u.life == Life::Active)
                && !dir.scim_out_of_scope.contains(m)
        })
        .map(|m| dir.users[*m as usize].id)
        .collect();
    GroupView {
        id: g.id,
        display_name: g.display_name.clone(),
        alive: g.life == Life::Active,
        members,
    }
}

fn mark_of(dir: &Directory) -> Mark {
    Mark {
        changes: dir.changes.len(),
        scope: dir.scim_scope_log.len(),
    }
}

/// Every user in scope that is not deleted, every live group.
fn full_snapshot(dir: &Directory) -> Snapshot {
    let users = dir
        .users
        .iter()
        .enumerate()
        .filter(|(i, u)| u.life == Life::Active && !dir.scim_out_of_scope.contains(&(*i as u32)))
        .map(|(_, u)| UserView::of(u, true))
        .collect();
    let groups = (0..dir.groups.len())
        .filter(|g| dir.groups[*g].life == Life::Active)
        .map(|g| group_view(dir, g))
        .collect();
    Snapshot {
        users,
        groups,
        mark: mark_of(dir),
    }
}

/// What changed since `mark`, plus what failed last time.
fn changed_snapshot(
    dir: &Directory,
    mark: Mark,
    retry_users: &BTreeSet<Uuid>,
    retry_groups: &BTreeSet<Uuid>,
) -> Snapshot {
    let mut users: BTreeSet<u32> = BTreeSet::new();
    let mut groups: BTreeSet<u32> = BTreeSet::new();
    for change in dir.changes.iter().skip(mark.changes) {
        match *change {
            Change::User(u) | Change::UserProps { user: u, .. } => {
                users.insert(u);
            }
            Change::Group(g) | Change::GroupProps { group: g, .. } => {
                groups.insert(g);
            }
            Change::Member { group, .. } => {
                groups.insert(group);
            }
        }
    }
    users.extend(dir.scim_scope_log.iter().skip(mark.scope));
    users.extend(retry_users.iter().filter_map(|id| dir.user_by_id.get(id)));
    groups.extend(retry_groups.iter().filter_map(|id| dir.group_by_id.get(id)));
    // A user who is created (or comes back) in this cycle joins the groups that list them.
    for (g, group) in dir.groups.iter().enumerate() {
        if group.life == Life::Active
            && users.iter().any(|u| group.members.binary_search(u).is_ok())
        {
            groups.insert(g as u32);
        }
    }
    Snapshot {
        users: users
            .iter()
            .map(|u| UserView::of(&dir.users[*u as usize], !dir.scim_out_of_scope.contains(u)))
            .collect(),
        groups: groups
            .iter()
            .map(|g| group_view(dir, *g as usize))
            .collect(),
        mark: mark_of(dir),
    }
}

/// One user's work in a cycle.
enum UserTask {
    /// Look the user up by userName; create if absent, bring up to date if present.
    Create(UserView),
    Update(UserView, SentUser),
    Delete(Uuid, SentUser),
}

enum UserResult {
    Created,
    Updated,
    Disabled,
    Unchanged,
    Deleted,
    Failed(PushFailure),
}

struct UserOutcome {
    id: Uuid,
    /// What the service holds after the task; `None` when it holds nothing (deleted, or never made).
    sent: Option<SentUser>,
    result: UserResult,
}

fn failure(upn: &str, action: PushAction, a: &Answer) -> PushFailure {
    PushFailure {
        object: PushObject::User(upn.to_string()),
        action,
        status: Some(a.status),
        scim_type: a.scim_type(),
        detail: a.detail(),
    }
}

fn transport(upn: &str, action: PushAction, detail: String) -> PushFailure {
    PushFailure {
        object: PushObject::User(upn.to_string()),
        action,
        status: None,
        scim_type: None,
        detail,
    }
}

async fn run_user(scim: &Scim, task: UserTask) -> UserOutcome {
    match task {
        UserTask::Create(view) => create_user(scim, view).await,
        UserTask::Update(view, sent) => update_user(scim, view, sent).await,
        UserTask::Delete(id, sent) => delete_user(scim, id, sent).await,
    }
}

async fn create_user(scim: &Scim, view: UserView) -> UserOutcome {
    let fail = |id, f| UserOutcome {
        id,
        sent: None,
        result: UserResult::Failed(f),
    };
    // Entra matches on userName first ("matching attribute"), and creates only when nothing matches.
    let filter = format!("userName eq {}", quoted(&view.upn));
    let found = match scim
        .send(Method::GET, "/Users", &[("filter", filter.as_str())], None)
        .await
    {
        Ok(a) if a.status == 200 => a
            .body
            .get("Resources")
            .and_then(Value::as_array)
            .and_then(|r| r.first())
            .cloned(),
        Ok(a) => return fail(view.id, failure(&view.upn, PushAction::Lookup, &a)),
        Err(e) => return fail(view.id, transport(&view.upn, PushAction::Lookup, e)),
    };
    if let Some(resource) = found {
        let Some(scim_id) = resource.get("id").and_then(Value::as_str).map(String::from) else {
            return fail(
                view.id,
                PushFailure {
                    object: PushObject::User(view.upn.clone()),
                    action: PushAction::Lookup,
                    status: Some(200),
                    scim_type: None,
                    detail: "the matching user has no id".into(),
                },
            );
        };
        let (attrs, active) = attrs_of_resource(&resource);
        let sent = SentUser {
            scim_id,
            upn: view.upn.clone(),
            attrs,
            active,
        };
        return update_user(scim, view, sent).await;
    }
    let body = view.create_body();
    match scim.send(Method::POST, "/Users", &[], Some(&body)).await {
        Ok(a) if a.status == 201 || a.status == 200 => {
            match a.body.get("id").and_then(Value::as_str) {
                Some(id) => UserOutcome {
                    id: view.id,
                    sent: Some(SentUser {
                        scim_id: id.to_string(),
                        upn: view.upn.clone(),
                        attrs: view.attrs.clone(),
                        active: view.active,
                    }),
                    result: UserResult::Created,
                },
                None => fail(
                    view.id,
                    PushFailure {
                        detail: "the created user has no id".into(),
                        ..failure(&view.upn, PushAction::Create, &a)
                    },
                ),
            }
        }
        Ok(a) => fail(view.id, failure(&view.upn, PushAction::Create, &a)),
        Err(e) => fail(view.id, transport(&view.upn, PushAction::Create, e)),
    }
}

async fn update_user(scim: &Scim, view: UserView, sent: SentUser) -> UserOutcome {
    let ops = patch_ops(&sent.attrs, sent.active, &view);
    if ops.is_empty() {
        return UserOutcome {
            id: view.id,
            sent: Some(sent),
            result: UserResult::Unchanged,
        };
    }
    let disabling = sent.active && !view.active;
    let action = if disabling {
        PushAction::Disable
    } else {
        PushAction::Update
    };
    let path = format!("/Users/{}", sent.scim_id);
    match scim
        .send(Method::PATCH, &path, &[], Some(&patch_body(ops)))
        .await
    {
        Ok(a) if a.ok() => UserOutcome {
            id: view.id,
            sent: Some(SentUser {
                scim_id: sent.scim_id,
                upn: view.upn.clone(),
                attrs: view.attrs.clone(),
                active: view.active,
            }),
            result: if disabling {
                UserResult::Disabled
            } else {
                UserResult::Updated
            },
        },
        Ok(a) => UserOutcome {
            id: view.id,
            result: UserResult::Failed(failure(&view.upn, action, &a)),
            sent: Some(sent),
        },
        Err(e) => UserOutcome {
            id: view.id,
            result: UserResult::Failed(transport(&view.upn, action, e)),
            sent: Some(sent),
        },
    }
}

async fn delete_user(scim: &Scim, id: Uuid, sent: SentUser) -> UserOutcome {
    let path = format!("/Users/{}", sent.scim_id);
    match scim.send(Method::DELETE, &path, &[], None).await {
        // 404: the service holds no such user any more, which is what was asked.
        Ok(a) if a.ok() || a.status == 404 => UserOutcome {
            id,
            sent: None,
            result: UserResult::Deleted,
        },
        Ok(a) => UserOutcome {
            id,
            result: UserResult::Failed(failure(&sent.upn, PushAction::Delete, &a)),
            sent: Some(sent),
        },
        Err(e) => UserOutcome {
            id,
            result: UserResult::Failed(transport(&sent.upn, PushAction::Delete, e)),
            sent: Some(sent),
        },
    }
}

impl ScimPush {
    /// The first cycle: every in-scope user and every group, each looked up before it is created.
    /// Run again, it matches what exists and creates only what is missing.
    pub async fn initial_cycle(&mut self, tenant: &Sandbox) -> CycleReport {
        let snapshot = {
            let dir = tenant.shared.read();
            full_snapshot(&dir)
        };
        self.run(CycleKind::Initial, snapshot).await
    }

    /// What changed in the tenant since the last cycle (or an initial cycle if there was none).
    pub async fn incremental_cycle(&mut self, tenant: &Sandbox) -> CycleReport {
        let Some(mark) = self.mark else {
            return self.initial_cycle(tenant).await;
        };
        let snapshot = {
            let dir = tenant.shared.read();
            changed_snapshot(&dir, mark, &self.retry_users, &self.retry_groups)
        };
        self.run(CycleKind::Incremental, snapshot).await
    }

    async fn run(&mut self, kind: CycleKind, snapshot: Snapshot) -> CycleReport {
        let started = Instant::now();
        let requests0 = self.scim.requests.load(Ordering::Relaxed);
        let throttled0 = self.scim.throttled.load(Ordering::Relaxed);
        let mut report = CycleReport {
            kind,
            users: Counts::default(),
            groups: Counts::default(),
            members_added: 0,
            members_removed: 0,
            failures: Vec::new(),
            requests: 0,
            throttled: 0,
            elapsed: Default::default(),
        };
        self.retry_users.clear();
        self.retry_groups.clear();
        self.push_users(snapshot.users, &mut report).await;
        self.push_groups(snapshot.groups, &mut report).await;
        self.mark = Some(snapshot.mark);
        report.requests = self.scim.requests.load(Ordering::Relaxed) - requests0;
        report.throttled = self.scim.throttled.load(Ordering::Relaxed) - throttled0;
        report.elapsed = started.elapsed();
        report
    }

    async fn push_users(&mut self, views: Vec<UserView>, report: &mut CycleReport) {
        let mut tasks = Vec::new();
        for view in views {
            match (self.users.get(&view.id).cloned(), view.gone()) {
                (Some(sent), true) => tasks.push(UserTask::Delete(view.id, sent)),
                (None, true) => {}
                (Some(sent), false) => tasks.push(UserTask::Update(view, sent)),
                // A soft-deleted user the service never had stays unknown to it.
                (None, false) if view.life != Life::Active => {}
                (None, false) => tasks.push(UserTask::Create(view)),
            }
        }
        let scim = self.scim.clone();
        let mut outcomes = futures::stream::iter(tasks)
            .map(|task| {
                let scim = scim.clone();
                async move { run_user(&scim, task).await }
            })
            .buffer_unordered(self.options.concurrency.max(1));
        let counts = &mut report.users;
        while let Some(outcome) = outcomes.next().await {
            match outcome.sent {
                Some(sent) => {
                    self.users.insert(outcome.id, sent);
                }
                None => {
                    self.users.remove(&outcome.id);
                }
            }
            match outcome.result {
                UserResult::Created => counts.created += 1,
                UserResult::Updated => counts.updated += 1,
                UserResult::Disabled => counts.disabled += 1,
                UserResult::Unchanged => counts.unchanged += 1,
                UserResult::Deleted => {
                    counts.deleted += 1;
                    // The service drops a deleted user's memberships itself.
                    for g in self.groups.values_mut() {
                        g.members.remove(&outcome.id);
                    }
                }
                UserResult::Failed(f) => {
                    counts.failed += 1;
                    self.retry_users.insert(outcome.id);
                    report.failures.push(f);
                }
            }
        }
    }

    async fn push_groups(&mut self, views: Vec<GroupView>, report: &mut CycleReport) {
        let scim_ids: BTreeMap<Uuid, String> = self
            .users
            .iter()
            .map(|(id, u)| (*id, u.scim_id.clone()))
            .collect();
        // Members the service holds a user for; the others follow once they are created.
        let with_ids = |ids: &mut dyn Iterator<Item = Uuid>| -> Vec<(Uuid, String)> {
            ids.filter_map(|u| scim_ids.get(&u).map(|s| (u, s.clone())))
                .collect()
        };
        let mut tasks = Vec::new();
        for view in views {
            match (self.groups.get(&view.id).cloned(), view.alive) {
                (Some(sent), false) => tasks.push(GroupTask::Delete { id: view.id, sent }),
                (None, false) => {}
                (Some(sent), true) => {
                    let adds = with_ids(&mut view.members.difference(&sent.members).copied());
                    // Removals need the service's id of a user it may since have deleted: only
                    // members it still holds a user for are removed by PATCH.
                    let removes = with_ids(&mut sent.members.difference(&view.members).copied());
                    tasks.push(GroupTask::Update {
                        view,
                        sent,
                        adds,
                        removes,
                    });
                }
                (None, true) => {
                    let members = with_ids(&mut view.members.iter().copied());
                    tasks.push(GroupTask::Create { view, members });
                }
            }
        }
        let scim = self.scim.clone();
        let batch = self.options.member_batch;
        let mut outcomes = futures::stream::iter(tasks)
            .map(|task| {
                let scim = scim.clone();
                async move { groups::run(&scim, task, batch).await }
            })
            .buffer_unordered(self.options.concurrency.max(1));
        while let Some(GroupOutcome {
            id,
            sent,
            kind,
            members_added,
            members_removed,
            failures,
        }) = outcomes.next().await
        {
            match sent {
                Some(sent) => {
                    self.groups.insert(id, sent);
                }
                None => {
                    self.groups.remove(&id);
                }
            }
            let counts = &mut report.groups;
            match kind {
                GroupResult::Created => counts.created += 1,
                GroupResult::Updated => counts.updated += 1,
                GroupResult::Unchanged => counts.unchanged += 1,
                GroupResult::Deleted => counts.deleted += 1,
                GroupResult::Failed => counts.failed += 1,
            }
            if !failures.is_empty() {
                if kind != GroupResult::Failed {
                    counts.failed += 1;
                }
                self.retry_groups.insert(id);
            }
            report.members_added += members_added;
            report.members_removed += members_removed;
            report.failures.extend(failures);
        }
    }
}
