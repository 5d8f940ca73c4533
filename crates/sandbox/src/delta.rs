//! Delta queries for users and groups (<https://learn.microsoft.com/graph/delta-query-overview>,
//! <https://learn.microsoft.com/graph/api/user-delta>, <https://learn.microsoft.com/graph/api/group-delta>).
//!
//! A round starts at a change-log position `to` (the log length when the round began). The first
//! round walks every active object that existed then; later rounds report each object touched by
//! changes in `(from, to]` once, with its current state. Pages carry `@odata.nextLink`; the last
//! page carries `@odata.deltaLink` whose token is `to`. A write during a round lands after `to` and
//! is reported by the next round, so nothing is lost under concurrent writes (at worst an object
//! is reported twice, which delta clients must tolerate anyway). Removed objects carry
//! `@removed.reason`: `changed` for a soft delete (restorable), `deleted` for a permanent one.

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
use crate::state::{Change, Directory, Life, Shared};
use crate::{groups, users};

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
}

fn max_page(headers: &HeaderMap) -> usize {
    // `Prefer: odata.maxpagesize=N` is how Graph lets clients size delta pages.
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| {
            p.trim()
                .strip_prefix("odata.maxpagesize=")
                .and_then(|n| n.trim().parse::<usize>().ok())
        })
        .map_or(200, |n| n.clamp(1, 999))
}

fn touched(dir: &Directory, k: Kind, from: usize, to: usize) -> Vec<u32> {
    let mut t: Vec<u32> = dir.changes[from.min(to)..to]
        .iter()
        .filter_map(|c| match (k, c) {
            (Kind::Users, Change::User(u)) => Some(*u),
            (Kind::Groups, Change::Group(g)) | (Kind::Groups, Change::Member { group: g, .. }) => {
                Some(*g)
            }
            _ => None,
        })
        .collect();
    t.sort_unstable();
    t.dedup();
    t
}

fn removed(id: &uuid::Uuid, reason: &str) -> Value {
    json!({"id": id, "@removed": {"reason": reason}})
}

fn user_entry(dir: &Directory, pos: u32, select: Option<&[String]>) -> Value {
    let u = &dir.users[pos as usize];
    match u.life {
        Life::Active => users::user_json(u, select),
        Life::SoftDeleted { .. } => removed(&u.id, "changed"),
        Life::Purged => removed(&u.id, "deleted"),
    }
}

fn member_ref(dir: &Directory, user: u32, added: bool) -> Value {
    let mut v = json!({"@odata.type": "#microsoft.graph.user", "id": dir.users[user as usize].id});
    if !added {
        v["@removed"] = json!({"reason": "deleted"});
    }
    v
}

fn group_entry(
    dir: &Directory,
    pos: u32,
    select: Option<&[String]>,
    window: Option<(usize, usize)>,
) -> Value {
    let g = &dir.groups[pos as usize];
    if g.life != Life::Active {
        return removed(&g.id, "deleted");
    }
    let mut v = groups::group_json(g, select);
    let wants_members = select.is_none_or(|s| s.iter().any(|p| p.eq_ignore_ascii_case("members")));
    if wants_members {
        let members: Vec<Value> = match window {
            None => g
                .members
                .iter()
                .filter(|u| dir.users[**u as usize].life == Life::Active)
                .map(|u| member_ref(dir, *u, true))
                .collect(),
            Some((from, to)) => {
                let mut net: BTreeMap<u32, bool> = BTreeMap::new();
                for c in &dir.changes[from.min(to)..to] {
                    if let Change::Member { group, user, added } = c
                        && *group == pos
                    {
                        net.insert(*user, *added);
                    }
                }
                net.into_iter()
                    .map(|(u, added)| member_ref(dir, u, added))
                    .collect()
            }
        };
        if window.is_none() || !members.is_empty() {
            v["members@delta"] = Value::Array(members);
        }
    }
    v
}

fn delta(
    shared: &Shared,
    v: ApiVersion,
    k: Kind,
    headers: &HeaderMap,
    raw: Option<&str>,
) -> Result<Value> {
    let q = Query::parse(raw);
    let size = max_page(headers);
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
        }
    };
    if token.k != k || token.to > now {
        return Err(SandboxError::BadRequest(
            "The specified delta token value is invalid for this resource.".into(),
        ));
    }
    let select = token.s.as_deref();
    let (value, next_p): (Vec<Value>, Option<usize>) = match token.from {
        None => {
            let end = token.n.min(objects);
            let mut out = Vec::with_capacity(size);
            let mut p = token.p;
            while p < end && out.len() < size {
                match k {
                    Kind::Users if dir.users[p].life == Life::Active => {
                        out.push(users::user_json(&dir.users[p], select))
                    }
                    Kind::Groups if dir.groups[p].life == Life::Active => {
                        out.push(group_entry(&dir, p as u32, select, None))
                    }
                    _ => {}
                }
                p += 1;
            }
            (out, (p < end).then_some(p))
        }
        Some(from) => {
            let t = touched(&dir, k, from, token.to);
            let slice = &t[token.p.min(t.len())..];
            let out = slice
                .iter()
                .take(size)
                .map(|pos| match k {
                    Kind::Users => user_entry(&dir, *pos, select),
                    Kind::Groups => group_entry(&dir, *pos, select, Some((from, token.to))),
                })
                .collect();
            let p = token.p + slice.len().min(size);
            (out, (p < t.len()).then_some(p))
        }
    };
    drop(dir);
    let entity = match k {
        Kind::Users => "users",
        Kind::Groups => "groups",
    };
    let base = format!("{}/{entity}/delta()", shared.graph_base(v.as_str()));
    let mut body =
        json!({"@odata.context": users::context(shared, v, entity, select), "value": value});
    match next_p {
        Some(p) => {
            let t = odata::encode_token(&Token { p, ..token });
            body["@odata.nextLink"] = json!(format!("{base}?$skiptoken={t}"));
        }
        None => {
            let t = odata::encode_token(&Token {
                k,
                from: None,
                to: token.to,
                p: 0,
                n: 0,
                s: token.s,
            });
            body["@odata.deltaLink"] = json!(format!("{base}?$deltatoken={t}"));
        }
    }
    Ok(body)
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
