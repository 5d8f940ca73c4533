//! Typed identifiers. All are UUIDs (v7 when we mint them, so they sort by creation time).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::DomainError;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered identifier.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self).map_err(|e| DomainError::Invalid {
                    field: $field,
                    reason: format!("{s:?} is not a UUID ({e})"),
                })
            }
        }
    };
}

typed_id!(/// An organisation.
    WorkspaceId, "workspace id");
typed_id!(/// A panel/API administrator.
    AdminId, "admin id");
typed_id!(/// A directory connection (Entra ID or inbound SCIM).
    ConnectionId, "connection id");
typed_id!(/// A user in Behalf (not the directory's object id).
    UserId, "user id");
typed_id!(/// A group in Behalf.
    GroupId, "group id");
typed_id!(/// A security key assigned to a user.
    SecurityKeyId, "security key id");
typed_id!(/// One passkey: one credential on one relying party.
    PasskeyId, "passkey id");
typed_id!(/// A provisioning job.
    JobId, "job id");
typed_id!(/// One user's item in a provisioning job.
    ItemId, "item id");
typed_id!(/// An audit event.
    EventId, "event id");
typed_id!(/// An administrator's panel session.
    SessionId, "session id");
typed_id!(/// An API token (a script's, or the CLI's from `behalf login`).
    TokenId, "token id");
typed_id!(/// A pending `behalf login` (device authorization) awaiting an admin's approval.
    DeviceLoginId, "device login id");
typed_id!(/// A SCIM connection's bearer token (an identity provider pushing users to `/scim/v2`).
    ScimTokenId, "scim token id");
typed_id!(/// One write to Entra ID queued by an admin (create a user, add a member, …).
    WriteId, "directory write id");
typed_id!(/// A browser profile paired with a user as their Behalf Key (its device key is its identity).
    KeyDeviceId, "key device id");
typed_id!(/// A one-time pairing code issued for a user's Behalf Key.
    KeyPairingId, "key pairing id");
typed_id!(/// A local key's registration request, waiting for the user's approval in Behalf Key.
    KeyRequestId, "key request id");
