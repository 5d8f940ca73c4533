//! Users as Entra's provisioning service maps them to SCIM (its default attribute mappings for a
//! non-gallery app, <https://learn.microsoft.com/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups>):
//! userPrincipalName → userName, mailNickname → externalId, `Switch([IsSoftDeleted], …)` and
//! accountEnabled → active, displayName, givenName / surname → name, mail → emails[type eq "work"],
//! jobTitle → title, department → the enterprise extension's department.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::state::{Life, User};

pub(crate) const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub(crate) const ENTERPRISE_USER: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// What the provisioning service reads of a sandbox user.
#[derive(Debug, Clone)]
pub(crate) struct UserView {
    pub id: Uuid,
    pub upn: String,
    pub life: Life,
    pub in_scope: bool,
    pub active: bool,
    pub attrs: Attrs,
}

/// The mapped attributes (top-level SCIM attribute name → value), the unit of comparison between
/// what the tenant says and what was last sent, and of an incremental `Replace`.
pub(crate) type Attrs = BTreeMap<&'static str, Value>;

impl UserView {
    pub fn of(u: &User, in_scope: bool) -> UserView {
        UserView {
            id: u.id,
            upn: u.upn.clone(),
            life: u.life,
            in_scope,
            active: u.account_enabled && u.life == Life::Active,
            attrs: attrs(u),
        }
    }

    /// Purged, or taken out of the provisioning scope: Entra deletes the user at the app.
    pub fn gone(&self) -> bool {
        self.life == Life::Purged || !self.in_scope
    }

    /// `POST /Users`: core + enterprise schemas.
    pub fn create_body(&self) -> Value {
        let mut body = json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_USER],
            "active": self.active,
            "meta": {"resourceType": "User"},
        });
        for (k, v) in &self.attrs {
            body[*k] = v.clone();
        }
        body
    }
}

fn attrs(u: &User) -> Attrs {
    let mut a = Attrs::new();
    a.insert("userName", json!(u.upn));
    a.insert("externalId", json!(u.mail_nickname));
    a.insert("displayName", json!(u.display_name));
    let mut name = serde_json::Map::new();
    // Entra's mapping: Join(" ", [givenName], [surname]) → name.formatted.
    let formatted: Vec<&str> = [u.given_name.as_deref(), u.surname.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    if !formatted.is_empty() {
        name.insert("formatted".into(), json!(formatted.join(" ")));
    }
    if let Some(s) = &u.surname {
        name.insert("familyName".into(), json!(s));
    }
    if let Some(g) = &u.given_name {
        name.insert("givenName".into(), json!(g));
    }
    if !name.is_empty() {
        a.insert("name", Value::Object(name));
    }
    if let Some(mail) = &u.mail {
        a.insert(
            "emails",
            json!([{"primary": true, "type": "work", "value": mail}]),
        );
    }
    if let Some(t) = &u.job_title {
        a.insert("title", json!(t));
    }
    if let Some(d) = &u.department {
        a.insert(ENTERPRISE_USER, json!({"department": d}));
    }
    a
}

/// The PATCH operations that bring `sent` to `now`: the changed attributes as one `Replace` of a
/// value object with no path (RFC 7644 §3.5.2.3: "the target location is assumed to be the
/// resource itself"), attributes that disappeared as one `Remove` each, and a change of `active`
/// as `{"op":"Replace","path":"active","value":"False"}` with the value as a string, as Entra
/// sends it without the `aadOptscim062020` flag. Empty when nothing changed.
pub(crate) fn patch_ops(sent: &Attrs, sent_active: bool, now: &UserView) -> Vec<Value> {
    let mut ops = Vec::new();
    let mut replaced = serde_json::Map::new();
    for (k, v) in &now.attrs {
        if sent.get(k) != Some(v) {
            replaced.insert((*k).to_string(), v.clone());
        }
    }
    if !replaced.is_empty() {
        ops.push(json!({"op": "Replace", "value": replaced}));
    }
    for k in sent.keys() {
        if !now.attrs.contains_key(k) {
            ops.push(json!({"op": "Remove", "path": k}));
        }
    }
    if sent_active != now.active {
        let value = if now.active { "True" } else { "False" };
        ops.push(json!({"op": "Replace", "path": "active", "value": value}));
    }
    ops
}

/// The mapped attributes of a resource the service already holds (found by the initial cycle's
/// lookup), to compare with the tenant's.
pub(crate) fn attrs_of_resource(resource: &Value) -> (Attrs, bool) {
    let mut a = Attrs::new();
    for k in [
        "userName",
        "externalId",
        "displayName",
        "name",
        "emails",
        "title",
        ENTERPRISE_USER,
    ] {
        if let Some(v) = resource.get(k).filter(|v| !v.is_null()) {
            a.insert(k, v.clone());
        }
    }
    let active = match resource.get("active") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => true,
    };
    (a, active)
}

pub(crate) fn patch_body(ops: Vec<Value>) -> Value {
    json!({"schemas": [crate::scim_push::http::PATCH_OP], "Operations": ops})
}
