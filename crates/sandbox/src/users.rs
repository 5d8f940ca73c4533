//! `/users`: list with `$select` / `$top` / `$filter` / `$skiptoken`, get by id or UPN, create,
//! update, soft delete, and the deleted-items container
//! (<https://learn.microsoft.com/graph/api/resources/user>).
//!
//! Paging walks users in storage order, and storage positions never move (deleted users keep
//! their slot), so a `$skiptoken` position stays valid under concurrent writes: every user that
//! exists for the whole enumeration is returned exactly once.

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
use crate::state::{Change, Directory, Life, Shared, User, iso};

pub(crate) const USER_READ: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "User.ReadBasic.All",
];
pub(crate) const USER_WRITE: &[&str] = &["User.ReadWrite.All", "Directory.ReadWrite.All"];

const FILTERABLE: &[&str] = &[
    "userprincipalname",
    "displayname",
    "mail",
    "accountenabled",
    "givenname",
    "surname",
    "id",
];

/// Graph's default user properties when there is no `$select`.
pub(crate) const DEFAULT_PROPS: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
];

impl Filterable for User {
    fn prop(&self, name: &str) -> Option<odata::Value> {
        use odata::Value::{Bool, Str};
        let s = |o: &Option<String>| Some(Str(o.clone().unwrap_or_default()));
        match name.to_ascii_lowercase().as_str() {
            "userprincipalname" => Some(Str(self.upn.clone())),
            "displayname" => Some(Str(self.display_name.clone())),
            "mail" => s(&self.mail),
            "givenname" => s(&self.given_name),
            "surname" => s(&self.surname),
            "id" => Some(Str(self.id.to_string())),
            "accountenabled" => Some(Bool(self.account_enabled)),
            _ => None,
        }
    }
}

pub(crate) fn full_json(u: &User) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(u.id));
    m.insert("businessPhones".into(), json!([]));
    m.insert("displayName".into(), json!(u.display_name));
    m.insert("givenName".into(), json!(u.given_name));
    m.insert("jobTitle".into(), json!(u.job_title));
    m.insert("mail".into(), json!(u.mail));
    m.insert("mobilePhone".into(), Value::Null);
    m.insert("officeLocation".into(), json!(u.office_location));
    m.insert("preferredLanguage".into(), Value::Null);
    m.insert("surname".into(), json!(u.surname));
    m.insert("userPrincipalName".into(), json!(u.upn));
    m.insert("accountEnabled".into(), json!(u.account_enabled));
    m.insert("department".into(), json!(u.department));
    m.insert("mailNickname".into(), json!(u.mail_nickname));
    m.insert("createdDateTime".into(), json!(iso(u.created)));
    if let Life::SoftDeleted { at } = u.life {
        m.insert("deletedDateTime".into(), json!(iso(at)));
    }
    m
}

pub(crate) fn user_json(u: &User, select: Option<&[String]>) -> Value {
    odata::project(full_json(u), select, DEFAULT_PROPS)
}

pub(crate) fn context(
    shared: &Shared,
    v: ApiVersion,
    entity: &str,
    select: Option<&[String]>,
) -> String {
    match select {
        Some(sel) => format!(
            "{}/$metadata#{entity}({})",
            shared.graph_base(v.as_str()),
            sel.join(",")
        ),
        None => format!("{}/$metadata#{entity}", shared.graph_base(v.as_str())),
    }
}

#[derive(Serialize, Deserialize)]
struct Skip {
    p: usize,
}

/// A next link that keeps the caller's query options and adds the opaque `$skiptoken`.
pub(crate) fn next_link(base: &str, q: &Query, token: &str) -> String {
    // Graph's links keep `$` in option names literally (`$skiptoken=`), only values are encoded.
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let mut keys: Vec<_> = q.params.keys().filter(|k| *k != "$skiptoken").collect();
    keys.sort();
    let mut parts: Vec<String> = keys
        .iter()
        .map(|k| format!("{}={}", enc(k).replace("%24", "$"), enc(&q.params[*k])))
        .collect();
    parts.push(format!("$skiptoken={token}"));
    format!("{base}?{}", parts.join("&"))
}

/// Pages over positions `start..` of a slice, returning the page and the next start (if more match).
pub(crate) fn page<T>(
    items: &[T],
    start: usize,
    top: usize,
    keep: impl Fn(&T) -> bool,
) -> (Vec<usize>, Option<usize>) {
    let mut out = Vec::with_capacity(top.min(1024));
    let mut pos = start;
    while pos < items.len() && out.len() < top {
        if keep(&items[pos]) {
            out.push(pos);
        }
        pos += 1;
    }
    let next = (pos..items.len()).find(|p| keep(&items[*p]));
    (out, next)
}

/// `GET /users`
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Extension(v): Extension<ApiVersion>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    caller.require(USER_READ)?;
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
    let active = |u: &User| u.life == Life::Active;
    let (positions, next) = match filter.as_ref().and_then(Filter::upn_eq) {
        // `userPrincipalName eq` is an index lookup, as in Entra.
        Some(upn) => (
            dir.find_user(upn)
                .map(|p| vec![p as usize])
                .unwrap_or_default(),
            None,
        ),
        None => page(&dir.users, start, top, |u| {
            active(u) && filter.as_ref().is_none_or(|f| f.matches(u))
        }),
    };
    let value: Vec<Value> = positions
        .iter()
        .map(|p| user_json(&dir.users[*p], select.as_deref()))
        .collect();
    drop(dir);
    let mut body = json!({
        "@odata.context": context(&shared, v, "users", select.as_deref()),
        "value": value,
    });
    if let Some(n) = next {
        let base = format!("{}/users", shared.graph_base(v.as_str()));
        body["@odata.nextLink"] = json!(next_link(&base, &q, &odata::encode_token(&Skip { p: n })));
    }
    Ok(Json(body))
}

pub(crate) fn lookup(dir: &Directory, key: &str) -> Result<u32> {
    dir.find_user(key)
        .ok_or_else(|| SandboxError::NotFound(key.to_string()))
}

/// `GET /users/{id | userPrincipalName}`
pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Extension(v): Extension<ApiVersion>,
    Path(key): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    caller.require(USER_READ)?;
    let q = Query::parse(raw.as_deref());
    let select = q.select();
    let dir = shared.read();
    let pos = lookup(&dir, &key)?;
    let mut body = user_json(&dir.users[pos as usize], select.as_deref());
    body["@odata.context"] = json!(context(&shared, v, "users/$entity", None));
    Ok(Json(body))
}

pub(crate) fn parse_body(body: &Bytes) -> Result<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(SandboxError::BadRequest("Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.".into())),
    }
}

fn opt_str(m: &Map<String, Value>, k: &str) -> Result<Option<String>> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(SandboxError::BadRequest(format!(
            "Invalid value specified for property '{k}' of resource 'User'."
        ))),
    }
}

fn check_upn(dir: &Directory, domain: &str, upn: &str, except: Option<u32>) -> Result<()> {
    let Some((local, dom)) = upn.split_once('@') else {
        return Err(SandboxError::BadRequest(
            "Invalid value specified for property 'userPrincipalName' of resource 'User'.".into(),
        ));
    };
    if local.is_empty() || !dom.eq_ignore_ascii_case(domain) {
        return Err(SandboxError::BadRequest(
            "The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization.".into(),
        ));
    }
    if let Some(p) = dir.user_by_upn.get(&upn.to_lowercase())
        && Some(*p) != except
        && dir.users[*p as usize].life != Life::Purged
    {
        return Err(SandboxError::BadRequest(
            "Another object with the same value for property userPrincipalName already exists."
                .into(),
        ));
    }
    Ok(())
}

/// Graph's mailNickname rule: 1..64 ASCII characters, none of `@ ( ) \ [ ] " ; : < > ,` or space.
pub(crate) fn check_mail_nickname(nickname: &str, resource: &str) -> Result<()> {
    let bad = |c: char| !c.is_ascii() || c.is_ascii_control() || "@()\\[]\";:<>, ".contains(c);
    if nickname.is_empty() || nickname.len() > 64 || nickname.chars().any(bad) {
        return Err(SandboxError::BadRequest(format!(
            "Invalid value specified for property 'mailNickname' of resource '{resource}'."
        )));
    }
    Ok(())
}

/// `POST /users`: `accountEnabled`, `displayName`, `mailNickname`, `passwordProfile` and
/// `userPrincipalName` are required, as documented.
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Extension(v): Extension<ApiVersion>,
    body: Bytes,
) -> Result<Response> {
    caller.require(USER_WRITE)?;
    let m = parse_body(&body)?;
    for required in [
        "accountEnabled",
        "displayName",
        "mailNickname",
        "passwordProfile",
        "userPrincipalName",
    ] {
        if m.get(required).is_none_or(Value::is_null) {
            return Err(SandboxError::BadRequest(format!(
                "Invalid value specified for property '{required}' of resource 'User'."
            )));
        }
    }
    let upn = opt_str(&m, "userPrincipalName")?.unwrap_or_default();
    check_mail_nickname(&opt_str(&m, "mailNickname")?.unwrap_or_default(), "User")?;
    let profile = crate::passwords::profile_of(&m)?;
    let Some(password) = profile.as_ref().and_then(|p| p.password.clone()) else {
        return Err(SandboxError::BadRequest(
            "Invalid value specified for property 'passwordProfile' of resource 'User'.".into(),
        ));
    };
    let force_change = profile.and_then(|p| p.force_change).unwrap_or(false);
    let account_enabled = m
        .get("accountEnabled")
        .and_then(Value::as_bool)
        .ok_or_else(|| {
            SandboxError::BadRequest(
                "Invalid value specified for property 'accountEnabled' of resource 'User'.".into(),
            )
        })?;
    let now = shared.clock.now_ms();
    let user = User {
        id: Uuid::new_v4(),
        upn: upn.clone(),
        display_name: opt_str(&m, "displayName")?.unwrap_or_default(),
        given_name: opt_str(&m, "givenName")?,
        surname: opt_str(&m, "surname")?,
        mail: opt_str(&m, "mail")?,
        mail_nickname: opt_str(&m, "mailNickname")?.unwrap_or_default(),
        department: opt_str(&m, "department")?,
        job_title: opt_str(&m, "jobTitle")?,
        office_location: opt_str(&m, "officeLocation")?,
        account_enabled,
        created: now,
        life: Life::Active,
    };
    let mut dir = shared.write();
    check_upn(&dir, &shared.domain, &upn, None)?;
    let pos = dir.push_user(user);
    dir.passwords.insert(
        pos,
        crate::passwords::StoredPassword::new(&password, force_change, now),
    );
    dir.log(Change::User(pos));
    let mut body = user_json(&dir.users[pos as usize], None);
    body["@odata.context"] = json!(context(&shared, v, "users/$entity", None));
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `PATCH /users/{id}`: 204. Properties the emulation does not store are accepted and ignored.
/// A body with only `passwordProfile` needs only a permission that may set passwords
/// ([`crate::passwords::PASSWORD_WRITE`]); the new password is checked against the policy
/// before anything changes, and kept as a digest.
pub(crate) async fn update(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<StatusCode> {
    let m = parse_body(&body)?;
    let only_password = !m.is_empty() && m.keys().all(|k| k == "passwordProfile");
    caller.require(if only_password {
        crate::passwords::PASSWORD_WRITE
    } else {
        USER_WRITE
    })?;
    let profile = crate::passwords::profile_of(&m)?;
    let mut dir = shared.write();
    let pos = lookup(&dir, &key)?;
    if let Some(p) = profile {
        let now = shared.clock.now_ms();
        let force = p.force_change.unwrap_or(false);
        match (p.password, dir.passwords.get_mut(&pos)) {
            (Some(password), _) => {
                dir.passwords.insert(
                    pos,
                    crate::passwords::StoredPassword::new(&password, force, now),
                );
            }
            (None, Some(stored)) => {
                if let Some(f) = p.force_change {
                    stored.force_change = f;
                }
            }
            (None, None) => {}
        }
    }
    let mut upn_changed = false;
    if let Some(upn) = opt_str(&m, "userPrincipalName")? {
        check_upn(&dir, &shared.domain, &upn, Some(pos))?;
        let old = dir.users[pos as usize].upn.to_lowercase();
        upn_changed = dir.users[pos as usize].upn != upn;
        dir.user_by_upn.remove(&old);
        dir.user_by_upn.insert(upn.to_lowercase(), pos);
        dir.users[pos as usize].upn = upn;
    }
    let mut u = dir.users[pos as usize].clone();
    if let Some(b) = m.get("accountEnabled") {
        u.account_enabled = b.as_bool().ok_or_else(|| {
            SandboxError::BadRequest(
                "Invalid value specified for property 'accountEnabled' of resource 'User'.".into(),
            )
        })?;
    }
    if let Some(s) = opt_str(&m, "displayName")? {
        u.display_name = s;
    }
    if let Some(s) = opt_str(&m, "mailNickname")? {
        u.mail_nickname = s;
    }
    for (k, field) in [
        ("givenName", &mut u.given_name),
        ("surname", &mut u.surname),
        ("mail", &mut u.mail),
        ("department", &mut u.department),
        ("jobTitle", &mut u.job_title),
        ("officeLocation", &mut u.office_location),
    ] {
        if m.contains_key(k) {
            *field = opt_str(&m, k)?;
        }
    }
    let props = crate::delta::user_changes(&dir.users[pos as usize], &u, upn_changed);
    dir.users[pos as usize] = u;
    // A PATCH that changes nothing is no change: delta does not report it.
    if props != 0 {
        dir.log(Change::UserProps { user: pos, props });
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /users/{id}`: a soft delete; the user moves to deleted items (restorable for 30 days).
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
) -> Result<StatusCode> {
    caller.require(USER_WRITE)?;
    let now = shared.clock.now_ms();
    let mut dir = shared.write();
    let pos = lookup(&dir, &key)?;
    dir.users[pos as usize].life = Life::SoftDeleted { at: now };
    dir.log(Change::User(pos));
    // Deleting a user takes it out of its groups: group delta reports the member `@removed`
    // ("either by removing the membership or by deleting the user object itself",
    // https://learn.microsoft.com/graph/delta-query-groups). The positions stay in the member
    // lists so that a restore brings the memberships back.
    log_memberships(&mut dir, pos, false);
    Ok(StatusCode::NO_CONTENT)
}

/// Logs a membership change of `user` in every group that lists it.
fn log_memberships(dir: &mut Directory, user: u32, added: bool) {
    let groups: Vec<u32> = (0..dir.groups.len() as u32)
        .filter(|g| {
            let g = &dir.groups[*g as usize];
            g.life == Life::Active && g.members.binary_search(&user).is_ok()
        })
        .collect();
    for group in groups {
        dir.log(Change::Member { group, user, added });
    }
}

/// `GET /directory/deletedItems/microsoft.graph.user`
pub(crate) async fn list_deleted(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Extension(v): Extension<ApiVersion>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    caller.require(USER_READ)?;
    let q = Query::parse(raw.as_deref());
    let top = q.top(100)?;
    let start = q
        .get("$skiptoken")
        .map(odata::decode_token::<Skip>)
        .transpose()?
        .map_or(0, |s| s.p);
    let dir = shared.read();
    let (positions, next) = page(&dir.users, start, top, |u| {
        matches!(u.life, Life::SoftDeleted { .. })
    });
    let value: Vec<Value> = positions
        .iter()
        .map(|p| Value::Object(full_json(&dir.users[*p])))
        .collect();
    let mut body =
        json!({"@odata.context": context(&shared, v, "directoryObjects", None), "value": value});
    if let Some(n) = next {
        let base = format!(
            "{}/directory/deletedItems/microsoft.graph.user",
            shared.graph_base(v.as_str())
        );
        body["@odata.nextLink"] = json!(next_link(&base, &q, &odata::encode_token(&Skip { p: n })));
    }
    Ok(Json(body))
}

fn deleted_user(dir: &Directory, key: &str) -> Result<u32> {
    dir.find_user_any(key)
        .filter(|p| matches!(dir.users[*p as usize].life, Life::SoftDeleted { .. }))
        .ok_or_else(|| SandboxError::NotFound(key.to_string()))
}

/// `DELETE /directory/deletedItems/{id}`: permanent deletion; delta then reports `deleted`.
pub(crate) async fn purge(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
) -> Result<StatusCode> {
    caller.require(USER_WRITE)?;
    let mut dir = shared.write();
    let pos = deleted_user(&dir, &key)?;
    let upn = dir.users[pos as usize].upn.to_lowercase();
    dir.user_by_upn.remove(&upn);
    dir.users[pos as usize].life = Life::Purged;
    if let Some(methods) = dir.fido2.remove(&pos) {
        for m in methods {
            dir.cred_owner.remove(m.credential.cred_id.as_slice());
        }
    }
    dir.taps.remove(&pos);
    dir.passwords.remove(&pos);
    // Its memberships were reported removed when it was deleted; now they are gone for good.
    for g in &mut dir.groups {
        if let Ok(i) = g.members.binary_search(&pos) {
            g.members.remove(i);
        }
    }
    dir.log(Change::User(pos));
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /directory/deletedItems/{id}/restore`
pub(crate) async fn restore(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Extension(v): Extension<ApiVersion>,
    Path(key): Path<String>,
) -> Result<Json<Value>> {
    caller.require(USER_WRITE)?;
    let mut dir = shared.write();
    let pos = deleted_user(&dir, &key)?;
    dir.users[pos as usize].life = Life::Active;
    dir.log(Change::User(pos));
    log_memberships(&mut dir, pos, true);
    let mut body = user_json(&dir.users[pos as usize], None);
    body["@odata.context"] = json!(context(&shared, v, "directoryObjects/$entity", None));
    Ok(Json(body))
}
