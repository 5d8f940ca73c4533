//! Delta queries (<https://learn.microsoft.com/graph/delta-query-overview>): the first round walks
//! every object and ends with an `@odata.deltaLink`; following that link later returns what
//! changed since. Removed objects carry `@removed.reason`: `changed` (soft-deleted, restorable for
//! 30 days) or `deleted` (gone for good). Group entries carry `members@delta`, members added or
//! (with `@removed`) taken out. Page size is asked with `Prefer: odata.maxpagesize`; `$top` is not
//! a delta option.

use serde::Deserialize;
use serde_json::Value;

use crate::client::GraphClient;
use crate::error::GraphError;
use crate::groups::GraphGroup;
use crate::users::{GraphUser, USER_SELECT};

/// A user in a delta page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserChange {
    /// New or changed. In a delta round the entry may hold only some properties ("at least the
    /// properties that have been updated"; only those with `Prefer: return=minimal`): `carried`
    /// says which were there, since a property left out is unchanged, not null.
    Upsert {
        user: GraphUser,
        carried: UserFields,
    },
    /// Deleted: `permanent` for `@removed.reason = deleted`, else soft-deleted (`changed`).
    Removed { id: String, permanent: bool },
}

/// Which of the user properties Behalf reads ([`crate::USER_SELECT`]) a delta entry carried,
/// null or not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserFields {
    pub user_principal_name: bool,
    pub display_name: bool,
    pub mail: bool,
    pub department: bool,
    pub account_enabled: bool,
}

impl UserFields {
    /// All of them: a whole user (`GET /users/{id}`, or a new user in a delta round).
    pub const ALL: UserFields = UserFields {
        user_principal_name: true,
        display_name: true,
        mail: true,
        department: true,
        account_enabled: true,
    };

    fn of(v: &Value) -> UserFields {
        let has = |k: &str| v.get(k).is_some();
        UserFields {
            user_principal_name: has("userPrincipalName"),
            display_name: has("displayName"),
            mail: has("mail"),
            department: has("department"),
            account_enabled: has("accountEnabled"),
        }
    }
}

/// A group in a delta page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupChange {
    Upsert {
        group: GraphGroup,
        /// User members added (`added`) or removed. Non-user members (groups, devices) are left out.
        members: Vec<MemberChange>,
    },
    Removed {
        id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberChange {
    pub user_id: String,
    pub added: bool,
}

/// One page of a delta round.
#[derive(Debug, Clone)]
pub struct DeltaPage<T> {
    pub changes: Vec<T>,
    /// More pages in this round.
    pub next_link: Option<String>,
    /// The round is complete: keep this for the next one.
    pub delta_link: Option<String>,
}

#[derive(Deserialize)]
struct RawPage {
    #[serde(default)]
    value: Vec<Value>,
    #[serde(rename = "@odata.nextLink", default)]
    next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink", default)]
    delta_link: Option<String>,
}

fn removed_reason(v: &Value) -> Option<&str> {
    v.get("@removed")
        .map(|r| r.get("reason").and_then(Value::as_str).unwrap_or("changed"))
}

fn id_of(v: &Value) -> Result<String, GraphError> {
    v.get("id")
        .and_then(Value::as_str)
        .map(String::from)
        .ok_or_else(|| GraphError::decode("a delta page", "an entry without 'id'"))
}

pub(crate) fn parse_user_change(v: Value) -> Result<UserChange, GraphError> {
    if let Some(reason) = removed_reason(&v) {
        return Ok(UserChange::Removed {
            id: id_of(&v)?,
            permanent: reason.eq_ignore_ascii_case("deleted"),
        });
    }
    let carried = UserFields::of(&v);
    serde_json::from_value(v)
        .map(|user| UserChange::Upsert { user, carried })
        .map_err(|e| GraphError::decode("a user in a delta page", e))
}

pub(crate) fn parse_group_change(mut v: Value) -> Result<GroupChange, GraphError> {
    if removed_reason(&v).is_some() {
        return Ok(GroupChange::Removed { id: id_of(&v)? });
    }
    let members = match v.as_object_mut().and_then(|o| o.remove("members@delta")) {
        Some(Value::Array(list)) => list
            .into_iter()
            .filter(|m| {
                m.get("@odata.type")
                    .and_then(Value::as_str)
                    .is_none_or(|t| t.eq_ignore_ascii_case("#microsoft.graph.user"))
            })
            .map(|m| {
                Ok(MemberChange {
                    user_id: id_of(&m)?,
                    added: removed_reason(&m).is_none(),
                })
            })
            .collect::<Result<Vec<_>, GraphError>>()?,
        _ => Vec::new(),
    };
    let group: GraphGroup =
        serde_json::from_value(v).map_err(|e| GraphError::decode("a group in a delta page", e))?;
    Ok(GroupChange::Upsert { group, members })
}

impl GraphClient {
    async fn delta_page(&self, url: &str) -> Result<RawPage, GraphError> {
        let prefer = ("Prefer", format!("odata.maxpagesize={}", self.page_size()));
        self.get_json(url, &[prefer]).await
    }

    fn delta_url(&self, link: Option<&str>, initial: &str) -> Result<String, GraphError> {
        match link {
            Some(l) => {
                self.check_link(l)?;
                Ok(l.to_string())
            }
            None => Ok(self.url(initial)),
        }
    }

    /// One page of `/users/delta`: `link` is `None` to start a full round, else a nextLink or
    /// a saved deltaLink.
    pub async fn users_delta_page(
        &self,
        link: Option<&str>,
    ) -> Result<DeltaPage<UserChange>, GraphError> {
        let url = self.delta_url(link, &format!("users/delta?$select={USER_SELECT}"))?;
        let raw = self.delta_page(&url).await?;
        Ok(DeltaPage {
            changes: raw
                .value
                .into_iter()
                .map(parse_user_change)
                .collect::<Result<_, _>>()?,
            next_link: raw.next_link,
            delta_link: raw.delta_link,
        })
    }

    /// One page of `/groups/delta` with members.
    pub async fn groups_delta_page(
        &self,
        link: Option<&str>,
    ) -> Result<DeltaPage<GroupChange>, GraphError> {
        let url = self.delta_url(
            link,
            "groups/delta?$select=id,displayName,description,members",
        )?;
        let raw = self.delta_page(&url).await?;
        Ok(DeltaPage {
            changes: raw
                .value
                .into_iter()
                .map(parse_group_change)
                .collect::<Result<_, _>>()?,
            next_link: raw.next_link,
            delta_link: raw.delta_link,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn user_entries_upserts_soft_and_hard_deletes() {
        let u =
            parse_user_change(json!({"id":"1","userPrincipalName":"a@b","accountEnabled":false}))
                .expect("user");
        let UserChange::Upsert { user: u, carried } = u else {
            panic!("an upsert")
        };
        assert_eq!(u.account_enabled, Some(false));
        assert_eq!(u.display_name, None);
        assert!(carried.user_principal_name && carried.account_enabled);
        assert!(!carried.display_name && !carried.mail && !carried.department);
        // A property sent as null was carried (it changed to null); one left out was not.
        let UserChange::Upsert { user, carried } =
            parse_user_change(json!({"id":"1","department":null})).expect("user")
        else {
            panic!("an upsert")
        };
        assert_eq!(user.department, None);
        assert!(carried.department && !carried.mail);
        assert_eq!(
            parse_user_change(json!({"id":"2","@removed":{"reason":"changed"}})).expect("soft"),
            UserChange::Removed {
                id: "2".into(),
                permanent: false
            }
        );
        assert_eq!(
            parse_user_change(json!({"id":"3","@removed":{"reason":"deleted"}})).expect("hard"),
            UserChange::Removed {
                id: "3".into(),
                permanent: true
            }
        );
        assert!(parse_user_change(json!({"@removed":{}})).is_err());
    }

    #[test]
    fn group_entries_keep_user_member_changes_only() {
        let g = parse_group_change(json!({
            "id": "g", "displayName": "Sales",
            "members@delta": [
                {"@odata.type": "#microsoft.graph.user", "id": "u1"},
                {"@odata.type": "#microsoft.graph.user", "id": "u2", "@removed": {"reason": "deleted"}},
                {"@odata.type": "#microsoft.graph.group", "id": "g2"}
            ]
        }))
        .expect("group");
        let GroupChange::Upsert { group, members } = g else {
            panic!("an upsert")
        };
        assert_eq!(group.display_name.as_deref(), Some("Sales"));
        assert_eq!(
            members,
            vec![
                MemberChange {
                    user_id: "u1".into(),
                    added: true
                },
                MemberChange {
                    user_id: "u2".into(),
                    added: false
                }
            ]
        );
        assert_eq!(
            parse_group_change(json!({"id":"g","@removed":{"reason":"deleted"}})).expect("gone"),
            GroupChange::Removed { id: "g".into() }
        );
    }
}
