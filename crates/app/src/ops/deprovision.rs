//! Deprovisioning: revoke a user's passkeys at the relying party and destroy their keys.

use behalf_domain::{Upn, User};
use serde::Serialize;

use crate::{AppError, Provisioner};

/// Whom to deprovision.
#[derive(Debug, Clone)]
pub enum Leavers {
    /// One user by UPN.
    User(Upn),
    /// One user by Behalf id.
    Id(behalf_domain::UserId),
    /// Every user an import or SCIM marked for deprovisioning (deleted or disabled upstream).
    Pending,
}

/// What deprovisioning one user did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deprovisioned {
    pub upn: String,
    /// Passkeys deleted at the RP (or found already gone) and destroyed in the vault.
    pub revoked: u64,
    /// Passkeys the RP could not delete now, with why; they stay for the next run.
    pub failures: Vec<String>,
}

impl Provisioner<'_> {
    pub async fn deprovision(&self, who: Leavers) -> Result<Vec<Deprovisioned>, AppError> {
        let engine = self.app.engine()?;
        let store = self.app.store();
        let workspace = self.app.workspace().id;
        let users: Vec<User> =
            match who {
                Leavers::User(upn) => vec![
                    store
                        .find_user_by_upn(workspace, &upn)
                        .await?
                        .ok_or_else(|| AppError::NotFound {
                            what: "user",
                            key: format!("{upn} (Behalf has no record of them)"),
                        })?,
                ],
                Leavers::Id(id) => {
                    let user = store.get_user(id).await?;
                    if user.workspace_id != workspace {
                        return Err(AppError::NotFound {
                            what: "user",
                            key: id.to_string(),
                        });
                    }
                    vec![user]
                }
                Leavers::Pending => store.users_pending_deprovision(workspace).await?,
            };
        let mut done = Vec::with_capacity(users.len());
        for user in &users {
            let summary = engine.deprovision(user).await?;
            done.push(Deprovisioned {
                upn: user.upn.to_string(),
                revoked: summary.revoked,
                failures: summary.failures,
            });
        }
        Ok(done)
    }
}
