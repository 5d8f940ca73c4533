//! Groups as Entra's provisioning service pushes them: looked up by displayName with
//! `excludedAttributes=members`, created without members (objectId → externalId, displayName),
//! then their members added by `PATCH` `Add` in batches (answered 204), removed one
//! `members[value eq "…"]` path each, renamed with a `Replace` of displayName, deleted with `DELETE`.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use super::http::{Answer, Scim, first_id, quoted};
use super::users::patch_body;
use super::{PushAction, PushFailure, PushObject};

pub(crate) const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// What the provisioning service reads of a sandbox group.
#[derive(Debug, Clone)]
pub(crate) struct GroupView {
    pub id: Uuid,
    pub display_name: String,
    pub alive: bool,
    /// Members the tenant lists that are in scope and not deleted (sandbox object ids).
    pub members: BTreeSet<Uuid>,
}

/// What was last sent for a group.
#[derive(Debug, Clone)]
pub(crate) struct SentGroup {
    pub scim_id: String,
    pub display_name: String,
    pub members: BTreeSet<Uuid>,
}

/// One group's work in a cycle, carried out by [`run`].
#[derive(Debug)]
pub(crate) enum GroupTask {
    /// Look up, create if absent, then add these members (sandbox id, SCIM id).
    Create {
        view: GroupView,
        members: Vec<(Uuid, String)>,
    },
    Update {
        view: GroupView,
        sent: SentGroup,
        adds: Vec<(Uuid, String)>,
        removes: Vec<(Uuid, String)>,
    },
    Delete {
        id: Uuid,
        sent: SentGroup,
    },
}

#[derive(Debug)]
pub(crate) struct GroupOutcome {
    pub id: Uuid,
    /// The state after the task (`None`: the group is gone at the service or was never made).
    pub sent: Option<SentGroup>,
    pub kind: GroupResult,
    pub members_added: usize,
    pub members_removed: usize,
    pub failures: Vec<PushFailure>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupResult {
    Created,
    Updated,
    Unchanged,
    Deleted,
    Failed,
}

fn failure(name: &str, action: PushAction, a: &Answer) -> PushFailure {
    PushFailure {
        object: PushObject::Group(name.to_string()),
        action,
        status: Some(a.status),
        scim_type: a.scim_type(),
        detail: a.detail(),
    }
}

fn transport(name: &str, action: PushAction, e: String) -> PushFailure {
    PushFailure {
        object: PushObject::Group(name.to_string()),
        action,
        status: None,
        scim_type: None,
        detail: e,
    }
}

pub(crate) async fn run(scim: &Scim, task: GroupTask, batch: usize) -> GroupOutcome {
    match task {
        GroupTask::Create { view, members } => create(scim, view, members, batch).await,
        GroupTask::Update {
            view,
            sent,
            adds,
            removes,
        } => update(scim, view, sent, adds, removes, batch).await,
        GroupTask::Delete { id, sent } => delete(scim, id, sent).await,
    }
}

async fn create(
    scim: &Scim,
    view: GroupView,
    members: Vec<(Uuid, String)>,
    batch: usize,
) -> GroupOutcome {
    let name = view.display_name.clone();
    let failed = |f: PushFailure| GroupOutcome {
        id: view.id,
        sent: None,
        kind: GroupResult::Failed,
        members_added: 0,
        members_removed: 0,
        failures: vec![f],
    };
    let filter = format!("displayName eq {}", quoted(&name));
    let found = match scim
        .send(
            Method::GET,
            "/Groups",
            &[
                ("filter", filter.as_str()),
                ("excludedAttributes", "members"),
            ],
            None,
        )
        .await
    {
        Ok(a) if a.status == 200 => first_id(&a.body),
        Ok(a) => return failed(failure(&name, PushAction::Lookup, &a)),
        Err(e) => return failed(transport(&name, PushAction::Lookup, e)),
    };
    let (scim_id, kind) = match found {
        Some(id) => (id, GroupResult::Updated),
        None => {
            let body = json!({
                "schemas": [GROUP_SCHEMA],
                "externalId": view.id.to_string(),
                "displayName": name,
                "meta": {"resourceType": "Group"},
            });
            match scim.send(Method::POST, "/Groups", &[], Some(&body)).await {
                Ok(a) if a.status == 201 || a.status == 200 => {
                    match a.body.get("id").and_then(Value::as_str) {
                        Some(id) => (id.to_string(), GroupResult::Created),
                        None => {
                            return failed(PushFailure {
                                detail: "the created group has no id".into(),
                                ..failure(&name, PushAction::Create, &a)
                            });
                        }
                    }
                }
                Ok(a) => return failed(failure(&name, PushAction::Create, &a)),
                Err(e) => return failed(transport(&name, PushAction::Create, e)),
            }
        }
    };
    let mut sent = SentGroup {
        scim_id,
        display_name: name,
        members: BTreeSet::new(),
    };
    let mut failures = Vec::new();
    let added = add_members(scim, &mut sent, &members, batch, &mut failures).await;
    GroupOutcome {
        id: view.id,
        sent: Some(sent),
        kind,
        members_added: added,
        members_removed: 0,
        failures,
    }
}

async fn update(
    scim: &Scim,
    view: GroupView,
    mut sent: SentGroup,
    adds: Vec<(Uuid, String)>,
    removes: Vec<(Uuid, String)>,
    batch: usize,
) -> GroupOutcome {
    let mut failures = Vec::new();
    let mut changed = false;
    if sent.display_name != view.display_name {
        let body = patch_body(vec![
            json!({"op": "Replace", "path": "displayName", "value": view.display_name}),
        ]);
        let path = format!("/Groups/{}", sent.scim_id);
        match scim.send(Method::PATCH, &path, &[], Some(&body)).await {
            Ok(a) if a.ok() => {
                sent.display_name = view.display_name.clone();
                changed = true;
            }
            Ok(a) => failures.push(failure(&view.display_name, PushAction::Update, &a)),
            Err(e) => failures.push(transport(&view.display_name, PushAction::Update, e)),
        }
    }
    let added = add_members(scim, &mut sent, &adds, batch, &mut failures).await;
    let removed = remove_members(scim, &mut sent, &removes, batch, &mut failures).await;
    let kind = if !failures.is_empty() {
        GroupResult::Failed
    } else if changed || added > 0 || removed > 0 {
        GroupResult::Updated
    } else {
        GroupResult::Unchanged
    };
    GroupOutcome {
        id: view.id,
        sent: Some(sent),
        kind,
        members_added: added,
        members_removed: removed,
        failures,
    }
}

async fn delete(scim: &Scim, id: Uuid, sent: SentGroup) -> GroupOutcome {
    let path = format!("/Groups/{}", sent.scim_id);
    let name = sent.display_name.clone();
    let (kind, keep, failures) = match scim.send(Method::DELETE, &path, &[], None).await {
        // 404: already gone at the service, which is what was asked.
        Ok(a) if a.ok() || a.status == 404 => (GroupResult::Deleted, None, vec![]),
        Ok(a) => (
            GroupResult::Failed,
            Some(sent),
            vec![failure(&name, PushAction::Delete, &a)],
        ),
        Err(e) => (
            GroupResult::Failed,
            Some(sent),
            vec![transport(&name, PushAction::Delete, e)],
        ),
    };
    GroupOutcome {
        id,
        sent: keep,
        kind,
        members_added: 0,
        members_removed: 0,
        failures,
    }
}

/// `PATCH /Groups/{id}` `{"op":"Add","path":"members","value":[{"value":…},…]}`, `batch` members
/// a request; answered 204 (200 with the group is accepted too, RFC 7644 §3.5.2).
async fn add_members(
    scim: &Scim,
    sent: &mut SentGroup,
    members: &[(Uuid, String)],
    batch: usize,
    failures: &mut Vec<PushFailure>,
) -> usize {
    let path = format!("/Groups/{}", sent.scim_id);
    let mut added = 0;
    for chunk in members.chunks(batch.max(1)) {
        let values: Vec<Value> = chunk.iter().map(|(_, id)| json!({"value": id})).collect();
        let body = patch_body(vec![
            json!({"op": "Add", "path": "members", "value": values}),
        ]);
        match scim.send(Method::PATCH, &path, &[], Some(&body)).await {
            Ok(a) if a.ok() => {
                sent.members.extend(chunk.iter().map(|(u, _)| *u));
                added += chunk.len();
            }
            Ok(a) => failures.push(failure(&sent.display_name, PushAction::AddMembers, &a)),
            Err(e) => failures.push(transport(&sent.display_name, PushAction::AddMembers, e)),
        }
    }
    added
}

/// `PATCH /Groups/{id}` with one `{"op":"Remove","path":"members[value eq \"…\"]"}` a member.
async fn remove_members(
    scim: &Scim,
    sent: &mut SentGroup,
    members: &[(Uuid, String)],
    batch: usize,
    failures: &mut Vec<PushFailure>,
) -> usize {
    let path = format!("/Groups/{}", sent.scim_id);
    let mut removed = 0;
    for chunk in members.chunks(batch.max(1)) {
        let ops: Vec<Value> = chunk
            .iter()
            .map(|(_, id)| {
                json!({"op": "Remove", "path": format!("members[value eq {}]", quoted(id))})
            })
            .collect();
        match scim
            .send(Method::PATCH, &path, &[], Some(&patch_body(ops)))
            .await
        {
            Ok(a) if a.ok() => {
                for (u, _) in chunk {
                    sent.members.remove(u);
                }
                removed += chunk.len();
            }
            Ok(a) => failures.push(failure(&sent.display_name, PushAction::RemoveMembers, &a)),
            Err(e) => failures.push(transport(&sent.display_name, PushAction::RemoveMembers, e)),
        }
    }
    removed
}
