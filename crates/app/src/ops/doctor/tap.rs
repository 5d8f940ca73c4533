//! `doctor`'s look at the Temporary Access Pass method policy. Registering a passkey on a user's
//! behalf does not use a pass, so nothing here stops provisioning (warnings, not problems); the
//! activation mail and the manual path do issue passes, and fail for a user the policy leaves out.

use std::collections::HashSet;

use behalf_domain::{MICROSOFT_RP_ID, UserId};
use behalf_graph::{PolicyTarget, TapPolicy};

use super::{DoctorReport, Status};
use crate::{App, AppError, DirectoryGraph};

const CHECK: &str = "TAP policy";

pub(super) async fn findings(r: &mut DoctorReport, app: &App, graph: &DirectoryGraph) {
    let p = match graph.client.tap_policy().await {
        Err(e) if e.status() == Some(403) => {
            r.add(
                CHECK,
                Status::Warning,
                format!("cannot read the Temporary Access Pass policy: grant Policy.Read.All to check it ({e})"),
            );
            return;
        }
        Err(e) => {
            r.add(
                CHECK,
                Status::Warning,
                format!("cannot read the Temporary Access Pass policy: {e}"),
            );
            return;
        }
        Ok(p) => p,
    };
    if let Err(e) = policy_findings(r, app, &p).await {
        r.add(
            CHECK,
            Status::Warning,
            format!(
                "cannot compare the Temporary Access Pass policy with the users to provision: {e}"
            ),
        );
    }
    r.tap_policy = Some(p);
}

/// A target's name as the admin knows it: the imported group's display name, else its id.
async fn target_name(app: &App, t: &PolicyTarget) -> Result<String, AppError> {
    if t.is_all_users() {
        return Ok("all users".into());
    }
    let g = app
        .store()
        .find_group_by_external_id(app.workspace().id, &t.id)
        .await?;
    Ok(g.map_or_else(
        || format!("group {}", t.id),
        |g| format!("group {} ({})", g.display_name, t.id),
    ))
}

/// The users to provision that are members of the group `t` names (as last imported).
async fn members_among(
    app: &App,
    t: &PolicyTarget,
    wanted: &HashSet<UserId>,
) -> Result<usize, AppError> {
    if t.is_all_users() {
        return Ok(wanted.len());
    }
    let store = app.store();
    let Some(g) = store
        .find_group_by_external_id(app.workspace().id, &t.id)
        .await?
    else {
        return Ok(0);
    };
    let members = store.group_member_ids(g.id).await?;
    Ok(members.iter().filter(|m| wanted.contains(m)).count())
}

async fn policy_findings(r: &mut DoctorReport, app: &App, p: &TapPolicy) -> Result<(), AppError> {
    if !p.is_enabled() {
        r.add(
            CHECK,
            Status::Warning,
            "the Temporary Access Pass method is disabled in the tenant's authentication methods policy: activation mails and the manual path cannot issue passes (enable it in the Entra admin center → Authentication methods → Temporary Access Pass)",
        );
        return Ok(());
    }
    let mut names = Vec::new();
    for t in &p.include_targets {
        names.push(target_name(app, t).await?);
    }
    if names.is_empty() {
        r.add(
            CHECK,
            Status::Warning,
            "the Temporary Access Pass method is enabled but targets no one: add users or groups to it",
        );
    } else {
        r.add(
            CHECK,
            Status::Ok,
            format!(
                "the Temporary Access Pass method is enabled for {}",
                names.join(", ")
            ),
        );
    }

    // Who the policy leaves out, among the users a provisioning run would take.
    let wanted: HashSet<UserId> = app
        .store()
        .users_needing_passkey(app.workspace().id, MICROSOFT_RP_ID)
        .await?
        .into_iter()
        .collect();
    if !wanted.is_empty() && !p.includes_all_users() && !names.is_empty() {
        let mut included: HashSet<UserId> = HashSet::new();
        for t in &p.include_targets {
            if let Some(g) = app
                .store()
                .find_group_by_external_id(app.workspace().id, &t.id)
                .await?
            {
                included.extend(app.store().group_member_ids(g.id).await?);
            }
        }
        let outside = wanted.iter().filter(|u| !included.contains(u)).count();
        if outside > 0 {
            r.add(
                CHECK,
                Status::Warning,
                format!(
                    "{outside} of the {} users to provision are in none of the groups the Temporary Access Pass policy targets: Entra refuses to issue them a pass",
                    wanted.len()
                ),
            );
        }
    }
    for t in &p.exclude_targets {
        let name = target_name(app, t).await?;
        let n = members_among(app, t, &wanted).await?;
        if n > 0 {
            r.add(
                CHECK,
                Status::Warning,
                format!(
                    "the Temporary Access Pass policy excludes {name}, which holds {n} of the users to provision: Entra refuses to issue them a pass (take the group off the policy's exclusions)"
                ),
            );
        } else {
            r.add(
                CHECK,
                Status::Ok,
                format!("the Temporary Access Pass policy excludes {name}, which holds none of the users to provision"),
            );
        }
    }

    let (lo, hi) = (
        p.minimum_lifetime_in_minutes.unwrap_or(10),
        p.maximum_lifetime_in_minutes.unwrap_or(43_200),
    );
    let lifetime = app.config().mail.tap_lifetime_minutes;
    if p.allows_lifetime(lifetime) {
        r.add(
            "TAP lifetime",
            Status::Ok,
            format!("passes may last {lo} to {hi} minutes; activation mails ask for {lifetime}"),
        );
    } else {
        r.add(
            "TAP lifetime",
            Status::Warning,
            format!("passes may last {lo} to {hi} minutes, but activation mails ask for {lifetime} (mail.tap_lifetime_minutes): Entra will refuse them"),
        );
    }
    r.add(
        "TAP one-time use",
        Status::Ok,
        if p.is_usable_once {
            "the policy makes every pass one-time"
        } else {
            "the policy allows reusable passes (activation mails ask for one-time passes)"
        },
    );
    Ok(())
}
