//! Delta queries for users and groups (<https://learn.microsoft.com/graph/delta-query-overview>,
//! <https://learn.microsoft.com/graph/api/user-delta>, <https://learn.microsoft.com/graph/api/group-delta>,
//! <https://learn.microsoft.com/graph/delta-query-groups>).
//!
//! A round starts at a change-log position `to` (the log length when the round began). The first
//! round walks every active object that existed then; later rounds report each object touched by
//! changes in `(from, to]`. Pages carry `@odata.nextLink`; the last page carries
//! `@odata.deltaLink` whose token is `to`. A write during a round lands after `to` and is reported
//! by the next round, so nothing is lost under concurrent writes (at worst an object is reported
//! twice, which delta clients must tolerate anyway).
//!
//! What Microsoft documents, and this emulates:
//! - Removed objects carry `@removed.reason`: `changed` for a soft delete (restorable from deleted
//!   items), `deleted` for a permanent one.
//! - Objects carry the properties of the round's `$select` (or the default set). A property that
//!   is not set (null) is left out unless it changed to null in the round ("If the property has
//!   never been set before it will not be included"); a change to a property that is not selected
//!   does not bring the object into the round at all.
//! - With `Prefer: return=minimal` (or the `delta_return_minimal` knob) a changed object carries
//!   only `id` and the selected properties that changed; a new (or restored) one is whole
//!   ("Updated instances are represented by their id with at least the properties that have been
//!   updated").
//! - Groups carry `members@delta` (when members are selected, or without `$select`): all members
//!   in the first round, added ones and `@removed` ones later. A user deleted is a member removed.
//!   A group with more member changes than fit on a page comes back on the next page(s) with the
//!   same properties and the next members, so a client must merge a group's pages.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::errors::{Result, SandboxError};
use crate::oauth::Caller;
use crate::odata::{self, Query};
use crate::server::ApiVersion;
use crate::state::{Change, Directory, Group, Life, Shared, User};
use crate::{groups, users};

/// User properties whose changes are tracked (bit `i` = `USER_TRACKED[i]`).
pub(crate) const USER_TRACKED: &[&str] = &[
    "displayName",
    "givenName",
    "surname",
    "mail",
    "department",
    "jobTitle",
    "officeLocation",
    "userPrincipalName",
    "accountEnabled",
    "mailNickname",
];
/// Group properties whose changes are tracked (bit `i` = `GROUP_TRACKED[i]`).
pub(crate) const GROUP_TRACKED: &[&str] = &["displayName", "description", "mailNickname"];

fn bit(tracked: &[&str], name: &str) -> Option<u16> {
    tracked
        .iter()
        .position(|p| p.eq_ignore_ascii_case(name))
        .map(|i| 1 << i)
}

fn mask(tracked: &[&str], names: &[(&str, bool)]) -> u16 {
    names
        .iter()
        .filter(|(_, changed)| *changed)
        .filter_map(|(n, _)| bit(tracked, n))
        .fold(0, |m, b| m | b)
}

/// Which tracked properties differ between two states of a user.
pub(crate) fn user_changes(before: &User, after: &User, upn_changed: bool) -> u16 {
    mask(
        USER_TRACKED,
        &[
            ("displayName", before.display_name != after.display_name),
            ("givenName", before.given_name != after.given_name),
            ("surname", before.surname != after.surname),
            ("mail", before.mail != after.mail),
            ("department", before.department != after.department),
            ("jobTitle", before.job_title != after.job_title),
            (
                "officeLocation",
                before.office_location != after.office_location,
            ),
            ("userPrincipalName", upn_changed),
            (
                "accountEnabled",
                before.account_enabled != after.account_enabled,
            ),
            ("mailNickname", before.mail_nickname != after.mail_nickname),
        ],
    )
}

/// Which tracked properties differ between two states of a group.
pub(crate) fn group_changes(before: &Group, after: &Group) -> u16 {
    mask(
        GROUP_TRACKED,
        &[
            ("displayName", before.display_name != after.display_name),
            ("description", before.description != after.description),
            ("mailNickname", before.mail_nickname != after.mail_nickname),
        ],
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Kind {
    #[serde(rename = "u")]
    Users,
    #[serde(rename = "g")]
    Groups,
}

/// A round in progress (`$skiptoken`) or a finished one (`$deltatoken`, where only `to` and `s` matter).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Token {
    k: Kind,
    /// `None` for the initial round.
    from: Option<usize>,
    to: usize,
    /// Initial round: object position to resume at. Later rounds: index into the touched list.
    p: usize,
    /// Object count when the initial round began.
    n: usize,
    s: Option<Vec<String>>,
    /// The group at `p` was cut after this member (user position): resume after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    m: Option<u32>,
}

/// The `Prefer` preferences of a request: `odata.maxpagesize=N` and `return=minimal`.
fn preferences(headers: &HeaderMap) -> (usize, bool) {
    let prefs: Vec<String> = headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_ascii_lowercase())
        .collect();
    let size = prefs
        .iter()
        .find_map(|p| {
            p.strip_prefix("odata.maxpagesize=")
                .and_then(|n| n.trim().parse::<usize>().ok())
        })
        .map_or(200, |n| n.clamp(1, 999));
    let minimal = prefs.iter().any(|p| p.replace(' ', "") == "return=minimal");
    (size, minimal)
}

/// What a round's changes did to one object.
#[derive(Debug, Default, Clone)]
struct Touch {
    /// Created, deleted or restored: the object is reported whole (or as removed).
    whole: bool,
    /// Tracked properties changed.
    props: u16,
    /// Groups: user position → added (true) or removed, the last change winning.
    members: BTreeMap<u32, bool>,
}

fn touches(dir: &Directory, k: Kind, from: usize, to: usize) -> BTreeMap<u32, Touch> {
    let mut out: BTreeMap<u32, Touch> = BTreeMap::new();
    for c in &dir.changes[from.min(to)..to] {
        match (k, *c) {
            (Kind::Users, Change::User(u)) | (Kind::Groups, Change::Group(u)) => {
                out.entry(u).or_default().whole = true;
            }
            (Kind::Users, Change::UserProps { user, props })
            | (Kind::Groups, Change::GroupProps { group: user, props }) => {
                out.entry(user).or_default().props |= props;
            }
            (Kind::Groups, Change::Member { group, user, added }) => {
                out.entry(group).or_default().members.insert(user, added);
            }
            _ => {}
        }
    }
    out
}

/// The tracked-property bits `select` (or the default set) covers.
fn selected_mask(tracked: &[&str], select: Option<&[String]>, defaults: &[&str]) -> u16 {
    let names: Vec<&str> = match select {
        Some(sel) => sel.iter().map(String::as_str).collect(),
        None => defaults.to_vec(),
    };
    names
        .iter()
        .filter_map(|n| bit(tracked, n))
        .fold(0, |m, b| m | b)
}

fn wants_members(select: Option<&[String]>) -> bool {
    select.is_none_or(|s| s.iter().any(|p| p.eq_ignore_ascii_case("members")))
}

fn removed(id: &uuid::Uuid, reason: &str) -> Value {
    json!({"id": id, "@removed": {"reason": reason}})
}

/// Keeps what delta sends of a projected object: `changed` is `None` for a whole object (every
/// set property), else the changed bits (set properties plus those changed to null; with
/// `minimal`, only the changed ones).
fn trim(v: &mut Value, tracked: &[&str], changed: Option<u16>, minimal: bool) {
    let Value::Object(m) = v else { return };
    m.retain(|k, val| {
        if k == "id" || k.starts_with('@') {
            return true;
        }
        let did_change = changed.is_some_and(|c| bit(tracked, k).is_some_and(|b| c & b != 0));
        match changed {
            None => !val.is_null(),
            Some(_) if minimal => did_change,
            Some(_) => !val.is_null() || did_change,
        }
    });
}

fn member_ref(dir: &Directory, user: u32, added: bool) -> Value {
    let mut v = json!({"@odata.type": "#microsoft.graph.user", "id": dir.users[user as usize].id});
    if !added {
        v["@removed"] = json!({"reason": "deleted"});
    }
    v
}

/// One page of a round being built.
struct PageOut {
    value: Vec<Value>,
    members: usize,
}

fn delta(
    shared: &Shared,
    v: ApiVersion,
    k: Kind,
    headers: &HeaderMap,
    raw: Option<&str>,
) -> Result<Value> {
    let q = Query::parse(raw);
    let (size, prefer_minimal) = preferences(headers);
    let knobs = shared.knobs();
    let minimal = prefer_minimal || knobs.delta_return_minimal;
    let member_budget = knobs.delta_members_per_page.max(1);
    let dir = shared.read();
    let now = dir.changes.len();
    let objects = match k {
        Kind::Users => dir.users.len(),
        Kind::Groups => dir.groups.len(),
    };
    let token = if let Some(t) = q.get("$skiptoken") {
        odata::decode_token::<Token>(t)?
    } else if let Some(t) = q.get("$deltatoken") {
        if t.eq_ignore_ascii_case("latest") {
            // `$deltatoken=latest`: no objects, just a deltaLink for changes from now on.
            Token {
                k,
                from: Some(now),
                to: now,
                p: 0,
                n: 0,
                s: q.select(),
                m: None,
            }
        } else {
            let d = odata::decode_token::<Token>(t)?;
            Token {
                k: d.k,
                from: Some(d.to),
                to: now,
                p: 0,
                n: 0,
                s: d.s,
                m: None,
            }
        }
    } else {
        Token {
            k,
            from: None,
            to: now,
            p: 0,
            n: objects,
            s: q.select(),
            m: None,
        }
    };
    if token.k != k || token.to > now {
        return Err(SandboxError::BadRequest(
            "The specified delta token value is invalid for this resource.".into(),
        ));
    }
    let select = token.s.as_deref();
    let with_members = k == Kind::Groups && wants_members(select);
    let mut page = PageOut {
        value: Vec::with_capacity(size.min(64)),
        members: 0,
    };
    let mut p = token.p;
    let mut cursor = token.m;
    let end;
    match token.from {
        None => {
            end = token.n.min(objects);
            while p < end && page.value.len() < size {
                match k {
                    Kind::Users => {
                        let u = &dir.users[p];
                        if u.life == Life::Active {
                            let mut e = users::user_json(u, select);
                            trim(&mut e, USER_TRACKED, None, false);
                            page.value.push(e);
                        }
                        p += 1;
                    }
                    Kind::Groups => {
                        let g = &dir.groups[p];
                        if g.life != Life::Active {
                            p += 1;
                            cursor = None;
                            continue;
                        }
                        let mut e = groups::group_json(g, select);
                        trim(&mut e, GROUP_TRACKED, None, false);
                        if !with_members {
                            page.value.push(e);
                            p += 1;
                            continue;
                        }
                        let start = cursor.map_or(0, |c| g.members.partition_point(|m| *m <= c));
                        let pending: Vec<(u32, bool)> = g.members[start..]
                            .iter()
                            .filter(|u| dir.users[**u as usize].life == Life::Active)
                            .take(member_budget - page.members + 1)
                            .map(|u| (*u, true))
                            .collect();
                        if !add_group(&dir, &mut page, e, &pending, member_budget, &mut cursor) {
                            break;
                        }
                        if cursor.is_none() {
                            p += 1;
                        } else {
                            break;
                        }
                    }
                }
            }
        }
        Some(from) => {
            let user_sel = selected_mask(USER_TRACKED, select, users::DEFAULT_PROPS);
            let group_sel = selected_mask(GROUP_TRACKED, select, groups::DEFAULT_PROPS);
            // The objects this round reports, in position order (stable across its pages).
            let list: Vec<(u32, Touch)> = touches(&dir, k, from, token.to)
                .into_iter()
                .filter(|(_, t)| match k {
                    Kind::Users => t.whole || t.props & user_sel != 0,
                    Kind::Groups => {
                        t.whole
                            || t.props & group_sel != 0
                            || (with_members && !t.members.is_empty())
                    }
                })
                .collect();
            end = list.len();
            while p < end && page.value.len() < size {
                let (pos, t) = &list[p];
                let changed = (!t.whole).then_some(t.props);
                match k {
                    Kind::Users => {
                        let u = &dir.users[*pos as usize];
                        page.value.push(match u.life {
                            Life::Active => {
                                let mut e = users::user_json(u, select);
                                trim(&mut e, USER_TRACKED, changed, minimal);
                                e
                            }
                            Life::SoftDeleted { .. } => removed(&u.id, "changed"),
                            Life::Purged => removed(&u.id, "deleted"),
                        });
                        p += 1;
                    }
                    Kind::Groups => {
                        let g = &dir.groups[*pos as usize];
                        if g.life != Life::Active {
                            page.value.push(removed(&g.id, "deleted"));
                            p += 1;
                            continue;
                        }
                        let mut e = groups::group_json(g, select);
                        trim(&mut e, GROUP_TRACKED, changed, minimal);
                        let pending: Vec<(u32, bool)> = if with_members {
                            t.members
                                .range(cursor.map_or(0, |c| c.saturating_add(1))..)
                                .take(member_budget - page.members + 1)
                                .map(|(u, a)| (*u, *a))
                                .collect()
                        } else {
                            Vec::new()
                        };
                        if !add_group(&dir, &mut page, e, &pending, member_budget, &mut cursor) {
                            break;
                        }
                        if cursor.is_none() {
                            p += 1;
                        } else {
                            break;
                        }
                    }
                }
            }
        }
    }
    drop(dir);
    let entity = match k {
        Kind::Users => "users",
        Kind::Groups => "groups",
    };
    let base = format!("{}/{entity}/delta()", shared.graph_base(v.as_str()));
    let mut body =
        json!({"@odata.context": users::context(shared, v, entity, select), "value": page.value});
    if p < end {
        let t = odata::encode_token(&Token {
            p,
            m: cursor,
            ..token
        });
        body["@odata.nextLink"] = json!(format!("{base}?$skiptoken={t}"));
    } else {
        let t = odata::encode_token(&Token {
            k,
            from: None,
            to: token.to,
            p: 0,
            n: 0,
            s: token.s,
            m: None,
        });
        body["@odata.deltaLink"] = json!(format!("{base}?$deltatoken={t}"));
    }
    Ok(body)
}

/// Puts a group on the page with as many of its `pending` member changes (in position order) as
/// the page has room for. Returns false, adding nothing, when the page has no room left for a
/// member (the group then starts the next page). Leaves `cursor` at the last member sent when
/// some remain for the next page, else `None`.
fn add_group(
    dir: &Directory,
    page: &mut PageOut,
    mut entry: Value,
    pending: &[(u32, bool)],
    budget: usize,
    cursor: &mut Option<u32>,
) -> bool {
    let room = budget - page.members;
    if !pending.is_empty() && room == 0 {
        return false;
    }
    let take = pending.len().min(room);
    if take > 0 {
        entry["members@delta"] = Value::Array(
            pending[..take]
                .iter()
                .map(|(u, added)| member_ref(dir, *u, *added))
                .collect(),
        );
    }
    page.members += take;
    page.value.push(entry);
    *cursor = (take < pending.len()).then(|| pending[take - 1].0);
    true
}

/// `GET /users/delta`
pub(crate) async fn users_delta(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Extension(v): Extension<ApiVersion>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    caller.require(users::USER_READ)?;
    delta(&shared, v, Kind::Users, &headers, raw.as_deref()).map(Json)
}

/// `GET /groups/delta`
pub(crate) async fn groups_delta(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Extension(v): Extension<ApiVersion>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    caller.require(groups::GROUP_READ)?;
    delta(&shared, v, Kind::Groups, &headers, raw.as_deref()).map(Json)
}
