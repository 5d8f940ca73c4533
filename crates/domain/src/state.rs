//! Closed sets of states. Each has one string form, the one stored in the database and shown in
//! reports; parsing anything else is an error that names the value.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::DomainError;

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident, $kind:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(DomainError::UnknownVariant { kind: $kind, value: other.to_owned() }),
                }
            }
        }
    };
}

string_enum!(/// An administrator's role in a workspace.
    Role, "role" { Owner => "owner", Admin => "admin", Viewer => "viewer" });

string_enum!(/// Where a directory connection's users come from.
    ConnectionKind, "connection kind" { EntraId => "entra_id", Scim => "scim" });

string_enum!(/// Where a user is in its life in Behalf.
///
/// `DeprovisionPending` is set by import or SCIM when the directory deleted or disabled the user;
/// the provisioning engine then revokes the user's passkeys and moves it to `Deprovisioned`.
Lifecycle, "lifecycle" {
    Active => "active",
    DeprovisionPending => "deprovision_pending",
    Deprovisioned => "deprovisioned",
});

string_enum!(/// Where a user's authenticator lives.
    SecurityKeyKind, "security key kind" { Vault => "vault", Device => "device", Ctap2 => "ctap2" });

string_enum!(/// A security key's state.
    SecurityKeyState, "security key state" { Assigned => "assigned", Active => "active", Revoked => "revoked" });

string_enum!(/// A passkey's state at its relying party.
PasskeyState, "passkey state" {
    Created => "created",
    Registered => "registered",
    Revoked => "revoked",
});

string_enum!(/// A provisioning job's state.
    JobState, "job state" { Open => "open", Completed => "completed", Cancelled => "cancelled" });

string_enum!(/// One user's progress in a provisioning job.
///
/// `pending → credential_created → registered`, or `failed` / `skipped` with a reason.
/// `credential_created` means the key exists in the vault but the RP may or may not have it: it
/// is reconciled by listing the RP's methods before anything is POSTed again.
/// `options_fetched` is written by no current release (releases before December 2026 recorded
/// it between the `creationOptions` call and the sealing); an item found in it is retried as a
/// `pending` one, so it stays readable and counted.
///
/// A job of the manual path (`JobMode::Manual`) goes `pending → waiting_for_user →
/// registered` (the user registered a passkey of their own) or `failed` (`tap_expired`):
/// `waiting_for_user` means a Temporary Access Pass was issued and mailed, its Graph id and
/// expiry recorded on the item, and the user's methods are looked at again every poll.
ItemState, "item state" {
    Pending => "pending",
    OptionsFetched => "options_fetched",
    CredentialCreated => "credential_created",
    WaitingForUser => "waiting_for_user",
    Registered => "registered",
    Failed => "failed",
    Skipped => "skipped",
});

impl ItemState {
    /// Whether the item needs no more work.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ItemState::Registered | ItemState::Failed | ItemState::Skipped
        )
    }
}

string_enum!(/// How a provisioning job's items get their passkey: registered on the user's behalf by
/// Behalf (`on_behalf`, the default), or by the users themselves with a Temporary Access Pass
/// Behalf mails them, Behalf watching their methods until a passkey appears or the pass
/// expires (`manual`: for users whose key cannot be provisioned on their behalf), or in a
/// `local` key made by the user's own Behalf Key once they approve there (`local`: Behalf sends
/// the request, the extension makes the credential, the engine registers it). Kept in the job's
/// options as `"mode"`.
JobMode, "job mode" { OnBehalf => "on_behalf", Manual => "manual", Local => "local" });

impl JobMode {
    /// The mode a job's options name (`"mode"`); a job written before modes existed is on behalf.
    pub fn of_options(options: &serde_json::Value) -> Result<JobMode, DomainError> {
        match options.get("mode").and_then(serde_json::Value::as_str) {
            None => Ok(JobMode::OnBehalf),
            Some(text) => text.parse(),
        }
    }
}

string_enum!(/// What one outbound write does in Entra ID (Graph: users, groups, `members/$ref`).
WriteKind, "directory write kind" {
    CreateUser => "create_user",
    UpdateUser => "update_user",
    DeleteUser => "delete_user",
    CreateGroup => "create_group",
    DeleteGroup => "delete_group",
    AddMember => "add_member",
    RemoveMember => "remove_member",
});

string_enum!(/// Where an outbound write is.
///
/// `pending → sending → done`; `sending` is recorded before a create is POSTed, so that after a
/// crash the create is reconciled by a lookup (by UPN, by mailNickname) instead of sent again.
/// A transient failure goes back to `pending` with a later `next_attempt_at` (backoff); a
/// refusal (a conflict, a bad value) or too many attempts is `failed`, waiting for an admin to
/// retry or discard it.
WriteState, "directory write state" {
    Pending => "pending",
    Sending => "sending",
    Done => "done",
    Failed => "failed",
    Discarded => "discarded",
});

impl WriteState {
    /// Whether the write still blocks later writes on the same user or group.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            WriteState::Pending | WriteState::Sending | WriteState::Failed
        )
    }
}

string_enum!(/// The result recorded on an event.
    Outcome, "outcome" { Success => "success", Failure => "failure", Skipped => "skipped" });

string_enum!(/// What an API token may do: read, also provision, or also manage the workspace.
TokenScope, "token scope" {
    Read => "read",
    Provision => "provision",
    Admin => "admin",
});

string_enum!(/// How an API token was made: by an admin for a script (`api`), or by `behalf login` (`cli`).
    TokenKind, "token kind" { Api => "api", Cli => "cli" });

string_enum!(/// Where a user came from: an Entra ID import, a SCIM push, or created in Behalf (no
/// directory connection: the CLI's `--csv`, the panel, the API).
UserSource, "user source" {
    EntraId => "entra_id",
    Scim => "scim",
    Behalf => "behalf",
});

string_enum!(/// What an event records. The stored text is `<subject>.<verb>`, so the report can
/// narrow by prefix (`passkey.`, `admin.`).
EventAction, "event action" {
    PasskeyCreated => "passkey.created",
    PasskeyRegistered => "passkey.registered",
    PasskeyRevoked => "passkey.revoked",
    PasskeyRevokeFailed => "passkey.revoke_failed",
    ProvisionSkipped => "provision.skipped",
    ProvisionFailed => "provision.failed",
    UserDeprovisioned => "user.deprovisioned",
    ImportCompleted => "import.completed",
    TapIssued => "tap.issued",
    // The manual path: a pass an interrupted attempt issued but never recorded is deleted (its
    // value is lost); the user registered a passkey of their own with the pass mailed to them.
    TapWithdrawn => "tap.withdrawn",
    PasskeyRegisteredByUser => "passkey.registered_by_user",
    // Onboarding mail: that a mail went out (or could not), to whom, of which kind; never the
    // pass or link it carried. A password set through a reset link, or refused by Entra.
    MailSent => "mail.sent",
    MailFailed => "mail.failed",
    PasswordSet => "password.set",
    PasswordRefused => "password.refused",
    JobQueued => "job.queued",
    JobCancelled => "job.cancelled",
    JobRetried => "job.retried",
    SecurityKeyAssigned => "security_key.assigned",
    SecurityKeyRevoked => "security_key.revoked",
    AdminCreated => "admin.created",
    AdminRemoved => "admin.removed",
    AdminSetUp => "admin.set_up",
    AdminSignedIn => "admin.signed_in",
    AdminSignInRefused => "admin.sign_in_refused",
    AdminSignedOut => "admin.signed_out",
    AdminUpdated => "admin.updated",
    AdminDisabled => "admin.disabled",
    AdminEnabled => "admin.enabled",
    CliLoginApproved => "cli_login.approved",
    TokenCreated => "token.created",
    TokenRevoked => "token.revoked",
    MasterKeyRotated => "vault.master_key_rotated",
    ConnectionAdded => "connection.added",
    ConnectionWritable => "connection.writable",
    // Outbound writes (Behalf → Entra ID): one event when an admin asks for the change
    // (`*.requested`) and one when it reached Entra ID or failed for good.
    OutboundRequested => "outbound.requested",
    OutboundWritten => "outbound.written",
    OutboundFailed => "outbound.failed",
    OutboundRetried => "outbound.retried",
    OutboundDiscarded => "outbound.discarded",
    // SCIM (RFC 7644) writes pushed by an identity provider, one per request that changed
    // something; `disabled` and `deleted` also mark the user for deprovisioning.
    ScimUserCreated => "scim_user.created",
    ScimUserUpdated => "scim_user.updated",
    ScimUserDisabled => "scim_user.disabled",
    ScimUserReactivated => "scim_user.reactivated",
    ScimUserDeleted => "scim_user.deleted",
    ScimGroupCreated => "scim_group.created",
    ScimGroupUpdated => "scim_group.updated",
    ScimGroupDeleted => "scim_group.deleted",
    ScimTokenCreated => "scim_token.created",
    ScimTokenRevoked => "scim_token.revoked",
    // Behalf Key (the browser authenticator): pairing codes, devices, every use of a credential
    // through a device (who, RP, origin, device), and the PIN's failures.
    KeyPairingIssued => "behalf_key.pairing_issued",
    KeyPaired => "behalf_key.paired",
    KeyDeviceRevoked => "behalf_key.device_revoked",
    KeyUsed => "behalf_key.used",
    KeyRegisteredForUser => "behalf_key.registered_for_user",
    // A local key's registration request: sent to the user's extension, approved or declined
    // there, or left to expire.
    KeyRequestSent => "behalf_key.request_sent",
    KeyRequestApproved => "behalf_key.request_approved",
    KeyRequestDeclined => "behalf_key.request_declined",
    KeyPinFailed => "behalf_key.pin_failed",
    KeyPinBlocked => "behalf_key.pin_blocked",
});

string_enum!(/// What a paired Behalf Key device may do: sign in as its user, or also register
/// credentials on other users' behalf (an admin's device).
DeviceRole, "device role" {
    User => "user",
    Admin => "admin",
});

string_enum!(/// Where a local key's registration request is: sent to the user's Behalf Key
/// (`pending`), approved there and given fresh creation options (`approved`), answered with the
/// new credential's attestation (`attested`, for the engine to register), or ended (`declined`,
/// `expired`, `registered`, `failed`).
KeyRequestState, "key request state" {
    Pending => "pending",
    Approved => "approved",
    Attested => "attested",
    Declined => "declined",
    Expired => "expired",
    Registered => "registered",
    Failed => "failed",
});
