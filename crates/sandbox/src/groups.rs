//! `/groups`, their members and `$ref` membership writes
//! (<https://learn.microsoft.com/graph/api/group-post-members>,
//! <https://learn.microsoft.com/graph/api/group-delete-members>).

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::errors::{Result, SandboxError};
use crate::oauth::Caller;
use crate::odata::{self, Filter, Filterable, Query};
use crate::server::ApiVersion;
use crate::state::{Change, Directory, Group, Life, Shared, iso};
use crate::users::{self, context, next_link, page};

pub(crate) const GROUP_READ: &[&str] = &[
    "Group.Read.All",
    "Group.ReadWrite.All",
    "GroupMember.Read.All",
    "GroupMember.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
pub(crate) const GROUP_WRITE: &[&str] = &["Group.ReadWrite.All", "Directory.ReadWrite.All"];
pub(crate) const MEMBER_WRITE: &[&str] = &[
    "GroupMember.ReadWrite.All",
    "Group.ReadWrite.All",
    "Directory.ReadWrite.All",
];
const FILTERABLE: &[&str] = &["displayname", "mailnickname", "id"];

impl Filterable for Group {
    fn prop(&self, name: &str) -> Option<odata::Value> {
        match name.to_ascii_lowercase().as_str() {
            "displayname" => Some(odata::Value::Str(self.display_name.clone())),
            "mailnickname" => Some(odata::Value::Str(self.mail_nickname.clone())),
            "id" => Some(odata::Value::Str(self.id.to_string())),
            _ => None,
        }
    }
}

pub(crate) fn full_json(g: &Group) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(g.id));
    m.insert("displayName".into(), json!(g.display_name));
    m.insert("description".into(), json!(g.description));
    m.insert("mailNickname".into(), json!(g.mail_nickname));
    m.insert("mailEnabled".into(), json!(g.mail_enabled));
    m.insert("securityEnabled".into(), json!(g.security_enabled));
    m.insert("groupTypes".into(), json!([]));
    m.insert("createdDateTime".into(), json!(iso(g.created)));
    m
}

/// Graph's default group properties (no `$select`).
pub(crate) const DEFAULT_PROPS: &[&str] = &[
    "displayName",
    "description",
    "mailNickname",
    "mailEnabled",
    "securityEnabled",
    "groupTypes",
    "createdDateTime",
];

pub(crate) fn group_json(g: &Group, select: Option<&[String]>) -> Value {
    odata::project(full_json(g), select, DEFAULT_PROPS)
}

#[derive(Serialize, Deserialize)]
struct Skip {
    p: usize,
}

fn lookup(dir: &Directory, key: &str) -> Result<u32> {
    dir.find_group(key)
        .ok_or_else(|| SandboxError::NotFound(key.to_string()))
}

/// `GET /groups`
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Extension(v): Extension<ApiVersion>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    caller.require(GROUP_READ)?;
    let q = Query::parse(raw.as_deref());
    let top = q.top(100)?;
    let select = q.select();
    let filter = q
        .get("$filter")
        .map(|f| Filter::parse(f, FILTERABLE))
        .transpose()?;
    let start = q
        .get("$skiptoken")
        .map(odata::decode_token::<Skip>)
        .transpose()?
        .map_or(0, |s| s.p);
    let dir = shared.read();
    let (positions, next) = page(&dir.groups, start, top, |g| {
        g.life == Life::Active && filter.as_ref().is_none_or(|f| f.matches(g))
    });
    let value: Vec<Value> = positions
        .iter()
        .map(|p| group_json(&dir.groups[*p], select.as_deref()))
        .collect();
    let mut body =
        json!({"@odata.context": context(&shared, v, "groups", select.as_deref()), "value": value});
    if let Some(n) = next {
        body["@odata.nextLink"] = json!(next_link(
            &format!("{}/groups", shared.graph_base(v.as_str())),
            &q,
            &odata::encode_token(&Skip { p: n })
        ));
    }
    Ok(Json(body))
}

/// `GET /groups/{id}`
pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Extension(v): Extension<ApiVersion>,
    Path(key): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    caller.require(GROUP_READ)?;
    let select = Query::parse(raw.as_deref()).select();
    let dir = shared.read();
    let pos = lookup(&dir, &key)?;
    let mut body = group_json(&dir.groups[pos as usize], select.as_deref());
    body["@odata.context"] = json!(context(&shared, v, "groups/$entity", None));
    Ok(Json(body))
}

/// `POST /groups`: `displayName`, `mailEnabled`, `mailNickname`, `securityEnabled` are required.
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Extension(v): Extension<ApiVersion>,
    body: Bytes,
) -> Result<Response> {
    caller.require(GROUP_WRITE)?;
    let m = users::parse_body(&body)?;
    let bad = |p: &str| {
        SandboxError::BadRequest(format!(
            "Invalid value specified for property '{p}' of resource 'Group'."
        ))
    };
    let display_name = m
        .get("displayName")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("displayName"))?
        .to_string();
    let mail_nickname = m
        .get("mailNickname")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("mailNickname"))?
        .to_string();
    users::check_mail_nickname(&mail_nickname, "Group")?;
    let mail_enabled = m
        .get("mailEnabled")
        .and_then(Value::as_bool)
        .ok_or_else(|| bad("mailEnabled"))?;
    let security_enabled = m
        .get("securityEnabled")
        .and_then(Value::as_bool)
        .ok_or_else(|| bad("securityEnabled"))?;
    let group = Group {
        id: Uuid::new_v4(),
        display_name,
        description: m
            .get("description")
            .and_then(Value::as_str)
            .map(String::from),
        mail_nickname,
        mail_enabled,
        security_enabled,
        created: shared.clock.now_ms(),
        members: Vec::new(),
        life: Life::Active,
    };
    let mut dir = shared.write();
    let pos = dir.push_group(group);
    dir.log(Change::Group(pos));
    let mut body = group_json(&dir.groups[pos as usize], None);
    body["@odata.context"] = json!(context(&shared, v, "groups/$entity", None));
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `PATCH /groups/{id}`
pub(crate) async fn update(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<StatusCode> {
    caller.require(GROUP_WRITE)?;
    let m = users::parse_body(&body)?;
    let mut dir = shared.write();
    let pos = lookup(&dir, &key)?;
    let before = dir.groups[pos as usize].clone();
    let g = &mut dir.groups[pos as usize];
    if let Some(s) = m.get("displayName").and_then(Value::as_str) {
        g.display_name = s.to_string();
    }
    if let Some(d) = m.get("description") {
        g.description = d.as_str().map(String::from);
    }
    if let Some(s) = m.get("mailNickname").and_then(Value::as_str) {
        g.mail_nickname = s.to_string();
    }
    let props = crate::delta::group_changes(&before, &dir.groups[pos as usize]);
    if props != 0 {
        dir.log(Change::GroupProps { group: pos, props });
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /groups/{id}`: security groups are deleted permanently (delta reports `deleted`).
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
) -> Result<StatusCode> {
    caller.require(GROUP_WRITE)?;
    let mut dir = shared.write();
    let pos = lookup(&dir, &key)?;
    dir.groups[pos as usize].life = Life::Purged;
    dir.log(Change::Group(pos));
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /groups/{id}/members` (paged; members are `#microsoft.graph.user` objects).
pub(crate) async fn members(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Extension(v): Extension<ApiVersion>,
    Path(key): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    caller.require(GROUP_READ)?;
    let q = Query::parse(raw.as_deref());
    let top = q.top(100)?;
    let select = q.select();
    let start = q
        .get("$skiptoken")
        .map(odata::decode_token::<Skip>)
        .transpose()?
        .map_or(0, |s| s.p);
    let dir = shared.read();
    let pos = lookup(&dir, &key)?;
    let members = &dir.groups[pos as usize].members;
    // Tokens hold a user position: find where to resume even if members changed meanwhile.
    let from = members.partition_point(|m| (*m as usize) < start);
    let (idx, next) = page(&members[from..], 0, top, |u| {
        dir.users[*u as usize].life == Life::Active
    });
    let value: Vec<Value> = idx
        .iter()
        .map(|i| {
            let mut u = users::user_json(&dir.users[members[from + i] as usize], select.as_deref());
            u["@odata.type"] = json!("#microsoft.graph.user");
            u
        })
        .collect();
    let mut body = json!({"@odata.context": context(&shared, v, "directoryObjects", select.as_deref()), "value": value});
    if let Some(n) = next {
        let base = format!("{}/groups/{key}/members", shared.graph_base(v.as_str()));
        body["@odata.nextLink"] = json!(next_link(
            &base,
            &q,
            &odata::encode_token(&Skip {
                p: members[from + n] as usize
            })
        ));
    }
    Ok(Json(body))
}

/// `POST /groups/{id}/members/$ref` `{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/{id}"}`: 204.
pub(crate) async fn add_member(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<StatusCode> {
    caller.require(MEMBER_WRITE)?;
    let m = users::parse_body(&body)?;
    let odata_id = m
        .get("@odata.id")
        .and_then(Value::as_str)
        .ok_or_else(|| SandboxError::BadRequest("The request must contain '@odata.id'.".into()))?;
    let member = odata_id
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let member = member
        .trim_start_matches("directoryObjects('")
        .trim_start_matches("users('")
        .trim_end_matches("')");
    let mut dir = shared.write();
    let g = lookup(&dir, &key)?;
    let u = dir
        .find_user(member)
        .ok_or_else(|| SandboxError::NotFound(member.to_string()))?;
    let members = &mut dir.groups[g as usize].members;
    match members.binary_search(&u) {
        Ok(_) => {
            return Err(SandboxError::BadRequest(
                "One or more added object references already exist for the following modified properties: 'members'.".into(),
            ));
        }
        Err(i) => members.insert(i, u),
    }
    dir.log(Change::Member {
        group: g,
        user: u,
        added: true,
    });
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /groups/{id}/members/{userId}/$ref`: 204, or 404 when not a member.
pub(crate) async fn remove_member(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path((key, user)): Path<(String, String)>,
) -> Result<StatusCode> {
    caller.require(MEMBER_WRITE)?;
    let mut dir = shared.write();
    let g = lookup(&dir, &key)?;
    let u = dir
        .find_user_any(&user)
        .ok_or_else(|| SandboxError::NotFound(user.clone()))?;
    let members = &mut dir.groups[g as usize].members;
    let i = members
        .binary_search(&u)
        .map_err(|_| SandboxError::NotFound(user.clone()))?;
    members.remove(i);
    dir.log(Change::Member {
        group: g,
        user: u,
        added: false,
    });
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /users/{id}/memberOf`
pub(crate) async fn member_of(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Extension(v): Extension<ApiVersion>,
    Path(key): Path<String>,
) -> Result<Json<Value>> {
    caller.require(GROUP_READ)?;
    let dir = shared.read();
    let u = users::lookup(&dir, &key)?;
    let value: Vec<Value> = dir
        .groups
        .iter()
        .filter(|g| g.life == Life::Active && g.members.binary_search(&u).is_ok())
        .map(|g| {
            let mut j = group_json(g, None);
            j["@odata.type"] = json!("#microsoft.graph.group");
            j
        })
        .collect();
    Ok(Json(
        json!({"@odata.context": context(&shared, v, "directoryObjects", None), "value": value}),
    ))
}
