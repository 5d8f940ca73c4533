//! `/Groups`: as `/Users`, with members kept as rows. Entra ID's member changes (`Add` to
//! `members`, `Remove` of `members[value eq "…"]`) are applied as row inserts and deletes
//! without reading the group's other members.

use behalf_domain::{EventAction, EventDetail, GroupId, UserId};
use behalf_scim::filter::{CompValue, CompareOp, Filter};
use behalf_scim::schema::GROUP;
use behalf_scim::{PatchOpKind, PatchOperation, PatchRequest, ResourceKind, ScimError, ScimType};
use behalf_store::scim::{ScimGroupRow, ScimGroupWrite, ScimMembersChange, ScimWrite};
use serde_json::{Map, Value, json};

use super::{
    ListParams, Projection, Scim, ScimFailure, ScimResource, get, invalid_value, parse_id,
    storable, stored_object,
};

struct ParsedGroup {
    display_name: String,
    external_id: Option<String>,
    members: Vec<UserId>,
    resource: Value,
}

fn member_ids(v: &Value) -> Result<Vec<UserId>, ScimFailure> {
    let items = match v {
        Value::Array(items) => items.as_slice(),
        Value::Object(_) => std::slice::from_ref(v),
        other => {
            return Err(invalid_value(format!(
                "members must be an array, not {other}"
            )));
        }
    };
    items
        .iter()
        .map(|m| {
            let value = m
                .as_object()
                .and_then(|o| get(o, "value"))
                .and_then(Value::as_str)
                .ok_or_else(|| invalid_value("each member needs a \"value\": a user's id"))?;
            value.trim().parse().map_err(|_| {
                invalid_value(format!(
                    "members: {value:?} is not the id of a user of this connection"
                ))
            })
        })
        .collect()
}

fn parse_group(body: &Value) -> Result<ParsedGroup, ScimFailure> {
    let obj = body.as_object().ok_or_else(|| {
        ScimFailure::Protocol(ScimError::bad_request(
            ScimType::InvalidSyntax,
            "the body is not a JSON object",
        ))
    })?;
    let display_name = match get(obj, "displayName") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => return Err(invalid_value("displayName is required (RFC 7643 §4.2)")),
    };
    let external_id = match get(obj, "externalId") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(invalid_value(format!(
                "externalId must be a string, not {other}"
            )));
        }
    };
    let members = match get(obj, "members") {
        None => Vec::new(),
        Some(v) => member_ids(v)?,
    };
    let mut resource = storable(body, &["id", "meta", "members"]);
    if let Some(r) = resource.as_object_mut() {
        r.insert("schemas".into(), json!([GROUP]));
    }
    Ok(ParsedGroup {
        display_name,
        external_id,
        members,
        resource,
    })
}

/// A member operation of Entra's (or any client's) shapes, or `None` for anything else.
enum MemberOp {
    Add(Vec<UserId>),
    Remove(Vec<UserId>),
    RemoveAll,
    ReplaceAll(Vec<UserId>),
}

fn member_op(op: &PatchOperation) -> Result<Option<MemberOp>, ScimFailure> {
    let Some(path) = &op.path else {
        return Ok(None);
    };
    if !path.attr.is("members") || path.sub.is_some() {
        return Ok(None);
    }
    Ok(match (op.op, &path.filter, &op.value) {
        (PatchOpKind::Add, None, Some(v)) => Some(MemberOp::Add(member_ids(v)?)),
        (PatchOpKind::Replace, None, Some(v)) => Some(MemberOp::ReplaceAll(member_ids(v)?)),
        (PatchOpKind::Remove, None, None) => Some(MemberOp::RemoveAll),
        // The older Azure AD shape: the members to remove in `value`.
        (PatchOpKind::Remove, None, Some(v)) => Some(MemberOp::Remove(member_ids(v)?)),
        // RFC 7644 §3.5.2.2 / Entra: `members[value eq "…"]`.
        (
            PatchOpKind::Remove,
            Some(Filter::Compare(a, CompareOp::Eq, CompValue::Str(id))),
            None,
        ) if a.is("value") => {
            match id.trim().parse() {
                Ok(id) => Some(MemberOp::Remove(vec![id])),
                // Not one of Behalf's ids: it names no member, so nothing to remove.
                Err(_) => Some(MemberOp::Remove(Vec::new())),
            }
        }
        _ => None,
    })
}

/// The member operations folded into one change, in order.
fn fold(ops: Vec<MemberOp>) -> (Option<Vec<UserId>>, Vec<UserId>, Vec<UserId>) {
    let (mut replace, mut add, mut remove): (Option<Vec<UserId>>, Vec<UserId>, Vec<UserId>) =
        (None, vec![], vec![]);
    for op in ops {
        match op {
            MemberOp::Add(ids) => {
                for id in ids {
                    match &mut replace {
                        Some(r) => {
                            if !r.contains(&id) {
                                r.push(id)
                            }
                        }
                        None => {
                            remove.retain(|x| *x != id);
                            add.push(id);
                        }
                    }
                }
            }
            MemberOp::Remove(ids) => {
                for id in ids {
                    match &mut replace {
                        Some(r) => r.retain(|x| *x != id),
                        None => {
                            add.retain(|x| *x != id);
                            remove.push(id);
                        }
                    }
                }
            }
            MemberOp::RemoveAll => {
                replace = Some(vec![]);
                add.clear();
                remove.clear();
            }
            MemberOp::ReplaceAll(ids) => {
                replace = Some(ids);
                add.clear();
                remove.clear();
            }
        }
    }
    (replace, add, remove)
}

impl Scim<'_> {
    fn render_group(&self, base: &str, row: &ScimGroupRow) -> Value {
        self.complete_group(base, stored_object(row.resource.clone()), row)
    }

    /// [`Self::render_group`] of a row the caller is done with: its stored resource is moved
    /// into the answer, not copied.
    fn render_owned_group(&self, base: &str, mut row: ScimGroupRow) -> Value {
        let stored = stored_object(std::mem::take(&mut row.resource));
        self.complete_group(base, stored, &row)
    }

    /// The stored resource `out` of `row`, with the columns' truth, its members and `meta`.
    fn complete_group(&self, base: &str, mut out: Map<String, Value>, row: &ScimGroupRow) -> Value {
        let id = row.group.id.to_string();
        out.insert("id".into(), json!(id));
        out.insert("displayName".into(), json!(row.group.display_name));
        match &row.scim_external_id {
            Some(e) => out.insert("externalId".into(), json!(e)),
            None => out.remove("externalId"),
        };
        if let Some(members) = &row.members {
            let base_users = format!("{}/Users", base.trim_end_matches('/'));
            out.insert(
                "members".into(),
                Value::Array(
                    members
                        .iter()
                        .map(|m| json!({"value": m.user_id.to_string(), "display": m.display, "type": "User",
                                        "$ref": format!("{base_users}/{}", m.user_id)}))
                        .collect(),
                ),
            );
        }
        out.insert(
            "meta".into(),
            self.meta(
                base,
                ResourceKind::Group,
                &id,
                row.group.created_at,
                row.group.updated_at,
                row.version,
            ),
        );
        Value::Object(out)
    }

    fn answer_group(
        &self,
        base: &str,
        row: &ScimGroupRow,
        projection: &Projection,
    ) -> ScimResource {
        ScimResource {
            body: projection.apply(self.render_group(base, row), ResourceKind::Group),
            version: row.version,
        }
    }

    async fn group_row(&self, id: &str, with_members: bool) -> Result<ScimGroupRow, ScimFailure> {
        let gid: GroupId = parse_id("Group", id)?;
        self.app
            .store()
            .get_scim_group(self.connection_id(), gid, with_members)
            .await?
            .ok_or_else(|| ScimFailure::NotFound {
                what: "Group",
                id: id.to_owned(),
            })
    }

    /// `GET /Groups/{id}`; members are read only when the answer shows them (Entra reads groups
    /// with `excludedAttributes=members`).
    pub async fn get_group(
        &self,
        base: &str,
        id: &str,
        projection: &Projection,
    ) -> Result<ScimResource, ScimFailure> {
        let row = self
            .group_row(id, !projection.leaves_out("members"))
            .await?;
        Ok(self.answer_group(base, &row, projection))
    }

    /// `GET /Groups` and `POST /Groups/.search`.
    pub async fn list_groups(&self, base: &str, params: &ListParams) -> Result<Value, ScimFailure> {
        let query = params.query(ResourceKind::Group)?;
        let page = self
            .app
            .store()
            .list_scim_groups(
                self.connection_id(),
                &query,
                !params.projection.leaves_out("members"),
            )
            .await?;
        let resources = page
            .resources
            .into_iter()
            .map(|row| {
                params
                    .projection
                    .apply(self.render_owned_group(base, row), ResourceKind::Group)
            })
            .collect();
        Ok(behalf_scim::list::list_response(
            resources,
            page.total,
            (query.offset + 1) as u64,
        ))
    }

    /// `POST /Groups`.
    pub async fn create_group(
        &self,
        base: &str,
        body: &Value,
    ) -> Result<ScimResource, ScimFailure> {
        let parsed = parse_group(body)?;
        let event = self.event(
            EventAction::ScimGroupCreated,
            EventDetail::default()
                .with("group", &parsed.display_name)
                .with("members", parsed.members.len()),
        );
        let mut row = self
            .app
            .store()
            .create_scim_group(
                self.app.workspace().id,
                self.connection_id(),
                &ScimGroupWrite {
                    display_name: &parsed.display_name,
                    external_id: parsed.external_id.as_deref(),
                    resource: &parsed.resource,
                },
                &parsed.members,
                event,
            )
            .await?;
        row.members = Some(Vec::new());
        if !parsed.members.is_empty() {
            row = self.group_row(&row.group.id.to_string(), true).await?;
        }
        Ok(self.answer_group(base, &row, &Projection::default()))
    }

    /// `PUT /Groups/{id}`: attributes and members replaced.
    pub async fn replace_group(
        &self,
        base: &str,
        id: &str,
        body: &Value,
        if_match: Option<i64>,
    ) -> Result<ScimResource, ScimFailure> {
        let parsed = parse_group(body)?;
        let gid: GroupId = parse_id("Group", id)?;
        self.write_group(id, gid, if_match, &parsed).await?;
        let row = self.group_row(id, true).await?;
        Ok(self.answer_group(base, &row, &Projection::default()))
    }

    /// Writes a whole group (attributes and members) at `expected` version, with its event.
    async fn write_group(
        &self,
        id: &str,
        gid: GroupId,
        expected: Option<i64>,
        parsed: &ParsedGroup,
    ) -> Result<ScimGroupRow, ScimFailure> {
        let event = self.event(
            EventAction::ScimGroupUpdated,
            EventDetail::default()
                .with("group", &parsed.display_name)
                .with("members", parsed.members.len()),
        );
        let write = ScimGroupWrite {
            display_name: &parsed.display_name,
            external_id: parsed.external_id.as_deref(),
            resource: &parsed.resource,
        };
        let done = self
            .app
            .store()
            .replace_scim_group(
                self.connection_id(),
                gid,
                expected,
                Some(&write),
                ScimMembersChange::Replace(&parsed.members),
                event,
            )
            .await?;
        self.written_group(id, done)
    }

    fn written_group(
        &self,
        id: &str,
        done: ScimWrite<ScimGroupRow>,
    ) -> Result<ScimGroupRow, ScimFailure> {
        match done {
            ScimWrite::Done(row) => Ok(row),
            ScimWrite::Gone => Err(ScimFailure::NotFound {
                what: "Group",
                id: id.to_owned(),
            }),
            ScimWrite::VersionMismatch { .. } => Err(ScimFailure::VersionMismatch),
        }
    }

    /// `PATCH /Groups/{id}` (RFC 7644 §3.5.2). Answered 204 as Microsoft's SCIM guide shows
    /// for group updates: the client does not need the group (and its members) back.
    pub async fn patch_group(
        &self,
        base: &str,
        id: &str,
        body: &Value,
        if_match: Option<i64>,
    ) -> Result<(), ScimFailure> {
        let request = PatchRequest::from_value(body)?;
        let gid: GroupId = parse_id("Group", id)?;
        let member_ops: Option<Vec<MemberOp>> = request
            .operations
            .iter()
            .map(member_op)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .collect();
        if let Some(ops) = member_ops {
            // Only members change: rows in and out, the rest of the group untouched.
            let (replace, add, remove) = fold(ops);
            let change = match &replace {
                Some(all) => ScimMembersChange::Replace(all),
                None => ScimMembersChange::Edit {
                    add: &add,
                    remove: &remove,
                },
            };
            let event = self.event(
                EventAction::ScimGroupUpdated,
                EventDetail::default()
                    .with("group_id", gid)
                    .with("members_added", add.len())
                    .with("members_removed", remove.len())
                    .with("members_replaced", replace.as_ref().map(Vec::len)),
            );
            let done = self
                .app
                .store()
                .replace_scim_group(self.connection_id(), gid, if_match, None, change, event)
                .await?;
            self.written_group(id, done)?;
            return Ok(());
        }
        // Anything else: the PATCH engine over the whole group, then a replace.
        let current = self.group_row(id, true).await?;
        if if_match.is_some_and(|v| v != current.version) {
            return Err(ScimFailure::VersionMismatch);
        }
        let mut resource = self.render_group(base, &current);
        behalf_scim::apply(&mut resource, &request.operations, ResourceKind::Group)?;
        let parsed = parse_group(&resource)?;
        self.write_group(id, gid, Some(current.version), &parsed)
            .await?;
        Ok(())
    }

    /// `DELETE /Groups/{id}`: the group and its memberships go (its users stay).
    pub async fn delete_group(&self, id: &str, if_match: Option<i64>) -> Result<(), ScimFailure> {
        let gid: GroupId = parse_id("Group", id)?;
        let event = self.event(
            EventAction::ScimGroupDeleted,
            EventDetail::default().with("group_id", gid),
        );
        match self
            .app
            .store()
            .delete_scim_group(self.connection_id(), gid, if_match, event)
            .await?
        {
            ScimWrite::Done(()) => Ok(()),
            ScimWrite::Gone => Err(ScimFailure::NotFound {
                what: "Group",
                id: id.to_owned(),
            }),
            ScimWrite::VersionMismatch { .. } => Err(ScimFailure::VersionMismatch),
        }
    }
}
