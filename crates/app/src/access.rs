//! Who may do what: permission-limited handles built from the caller's identity.
//!
//! In the manner of lldap's `get_admin_handler(&auth) -> Option<…>`: [`App::provisioner`] gives a
//! [`Provisioner`] only to a caller who may provision, and only a `Provisioner` has `provision`,
//! `issue_tap` or `deprovision`. A face that holds a [`Reader`] cannot call them, so it cannot
//! forget the check; it only decides how to say "no" (403 for the API, a hidden button for the
//! panel).
//!
//! | capability | who |
//! | --- | --- |
//! | [`Reader`]: list and read users, jobs, reports, the audit log, `doctor` | every signed-in admin, every token |
//! | [`Provisioner`]: provision, TAPs, deprovision, security keys, cancel and retry jobs | owners; admins with edit-users; tokens scoped `provision` or `admin` of such an admin |
//! | [`Operator`]: directory connections (test, import now, schedule) | owners and admins; tokens scoped `admin` |
//! | [`Owner`]: admins and API tokens | owners; tokens scoped `admin` of an owner |
//!
//! [`Caller::Local`] is someone on this machine with the configuration and the master key (the
//! standalone CLI, the server's own workers): they can read the database anyway, so every
//! handle is theirs.

use behalf_domain::{Admin, Role};

use crate::App;

/// How far a credential reaches, whatever its admin's role allows: a token's scope. A panel
/// session reaches as far as the role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reach {
    Read,
    Provision,
    Admin,
}

/// Who is asking.
#[derive(Debug, Clone)]
pub enum Caller {
    /// On this machine, with the configuration and the master key. `actor` names them in events
    /// (`cli:alice`, `server`).
    Local { actor: String },
    /// A signed-in admin: a panel session, an API token, a CLI signed in to a server.
    Admin { admin: Admin, reach: Reach },
}

impl Caller {
    /// How events name the caller.
    pub fn actor(&self) -> String {
        match self {
            Caller::Local { actor } => actor.clone(),
            Caller::Admin { admin, .. } => format!("admin:{}", admin.username),
        }
    }

    fn admin_allows(&self, role_ok: impl Fn(&Admin) -> bool, reach: Reach) -> bool {
        match self {
            Caller::Local { .. } => true,
            Caller::Admin { admin, reach: has } => role_ok(admin) && *has >= reach,
        }
    }

    pub fn may_provision(&self) -> bool {
        self.admin_allows(Admin::may_provision, Reach::Provision)
    }

    pub fn may_operate(&self) -> bool {
        self.admin_allows(
            |a| matches!(a.role, Role::Owner | Role::Admin),
            Reach::Admin,
        )
    }

    pub fn is_owner(&self) -> bool {
        self.admin_allows(|a| a.role == Role::Owner, Reach::Admin)
    }
}

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name<'a> {
            pub(crate) app: &'a App,
            pub(crate) caller: Caller,
        }

        impl<'a> $name<'a> {
            /// Who is acting, for events.
            pub fn actor(&self) -> String {
                self.caller.actor()
            }

            pub fn caller(&self) -> &Caller {
                &self.caller
            }

            /// Who events name for a Graph call: a local caller is whoever Graph acts as (the
            /// signed-in admin, or the app); a remote admin is themselves.
            #[allow(dead_code, reason = "a handle without Graph calls has no use for it")]
            pub(crate) fn graph_actor(&self, acting: &crate::GraphActing) -> String {
                match &self.caller {
                    Caller::Local { .. } => acting.actor(),
                    caller => caller.actor(),
                }
            }

            /// The read operations, which every handle includes.
            pub fn reader(&self) -> Reader<'a> {
                Reader { app: self.app, caller: self.caller.clone() }
            }
        }
    };
}

handle!(/// Reads: users, jobs, reports, the audit log, `doctor`.
    Reader);
handle!(/// Provisioning, Temporary Access Passes, deprovisioning, security keys, job control.
    Provisioner);
handle!(/// Directory connections: test, import now, schedule.
    Operator);
handle!(/// Admins and API tokens.
    Owner);

impl App {
    /// Every signed-in caller may read.
    pub fn reader(&self, caller: &Caller) -> Reader<'_> {
        Reader {
            app: self,
            caller: caller.clone(),
        }
    }

    pub fn provisioner(&self, caller: &Caller) -> Option<Provisioner<'_>> {
        caller.may_provision().then(|| Provisioner {
            app: self,
            caller: caller.clone(),
        })
    }

    pub fn operator(&self, caller: &Caller) -> Option<Operator<'_>> {
        caller.may_operate().then(|| Operator {
            app: self,
            caller: caller.clone(),
        })
    }

    pub fn owner(&self, caller: &Caller) -> Option<Owner<'_>> {
        caller.is_owner().then(|| Owner {
            app: self,
            caller: caller.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use behalf_domain::{AdminId, WorkspaceId};

    use super::*;

    fn admin(role: Role, can_edit_users: bool) -> Admin {
        Admin {
            id: AdminId::new(),
            workspace_id: WorkspaceId::new(),
            username: "a@example.com".into(),
            role,
            can_edit_users,
            created_at: 0,
        }
    }

    fn caller(role: Role, edit: bool, reach: Reach) -> Caller {
        Caller::Admin {
            admin: admin(role, edit),
            reach,
        }
    }

    #[test]
    fn capabilities_follow_the_role_and_the_reach_of_the_credential() {
        use Reach::*;
        // (role, edit-users, reach) → (provision, operate, owner)
        let table = [
            (Role::Viewer, true, Admin, (false, false, false)),
            (Role::Admin, false, Admin, (false, true, false)),
            (Role::Admin, true, Admin, (true, true, false)),
            (Role::Admin, true, Provision, (true, false, false)),
            (Role::Admin, true, Read, (false, false, false)),
            (Role::Owner, false, Admin, (true, true, true)),
            (Role::Owner, false, Provision, (true, false, false)),
            (Role::Owner, false, Read, (false, false, false)),
        ];
        for (role, edit, reach, (provision, operate, owner)) in table {
            let c = caller(role, edit, reach);
            assert_eq!(
                (c.may_provision(), c.may_operate(), c.is_owner()),
                (provision, operate, owner),
                "{role} edit={edit} reach={reach:?}"
            );
        }
        let local = Caller::Local {
            actor: "cli:x".into(),
        };
        assert!(local.may_provision() && local.may_operate() && local.is_owner());
    }
}
