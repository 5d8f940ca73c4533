//! Values checked when the configuration loads, so that a bad one is refused at once with its key
//! named (figment adds the key; these say what is wrong with the value).

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How credentials are attested (`provisioning.attestation`). The same spellings as the
/// provisioning engine's mode, which the application maps this to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttestationMode {
    /// `packed`: an x5c chain from the workspace's attestation CA.
    Packed,
    /// `packed-self`: packed self attestation.
    PackedSelf,
    /// `none`.
    None,
}

impl AttestationMode {
    pub const ALL: [AttestationMode; 3] = [
        AttestationMode::Packed,
        AttestationMode::PackedSelf,
        AttestationMode::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AttestationMode::Packed => "packed",
            AttestationMode::PackedSelf => "packed-self",
            AttestationMode::None => "none",
        }
    }
}

/// The Graph API version (`entra.api_version`): `beta` or `v1.0` (`v1` is accepted too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    /// `beta`: creationOptions take a challenge timeout.
    Beta,
    /// `v1.0`.
    V1,
}

impl ApiVersion {
    pub const ALL: [ApiVersion; 2] = [ApiVersion::Beta, ApiVersion::V1];

    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::Beta => "beta",
            ApiVersion::V1 => "v1.0",
        }
    }
}

/// The error text for a value that is not one of `choices`.
fn not_one_of(value: &str, choices: impl IntoIterator<Item = &'static str>) -> String {
    let choices: Vec<&str> = choices.into_iter().collect();
    format!("{value:?} is not one of {}", choices.join(", "))
}

impl FromStr for AttestationMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| not_one_of(s, Self::ALL.map(Self::as_str)))
    }
}

impl FromStr for ApiVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "beta" => Ok(ApiVersion::Beta),
            "v1.0" | "v1" => Ok(ApiVersion::V1),
            other => Err(not_one_of(other, Self::ALL.map(Self::as_str))),
        }
    }
}

/// An AAGUID (`provisioning.aaguid`), parsed when the configuration loads. Its text is the
/// canonical lowercase hyphenated form, as Entra ID lists AAGUIDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aaguid {
    uuid: uuid::Uuid,
    text: String,
}

impl Aaguid {
    /// The AAGUID Behalf's vault keys claim unless configured otherwise
    /// ([`crate::BEHALF_VAULT_AAGUID`]).
    pub fn vault_default() -> Aaguid {
        Aaguid::from_uuid(uuid::Uuid::from_u128(
            0x4f2b6c1e_9d3a_4e8b_b5c7_2a1d0e9f8c6b,
        ))
    }

    pub fn from_uuid(uuid: uuid::Uuid) -> Aaguid {
        Aaguid {
            uuid,
            text: uuid.hyphenated().to_string(),
        }
    }

    pub fn uuid(&self) -> uuid::Uuid {
        self.uuid
    }

    /// The 16 bytes an authenticator puts in its attested credential data.
    pub fn bytes(&self) -> [u8; 16] {
        self.uuid.into_bytes()
    }

    /// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lowercase.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Aaguid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Aaguid {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s.trim())
            .map(Aaguid::from_uuid)
            .map_err(|_| format!("{s:?} is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"))
    }
}

macro_rules! text_value {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d)?.parse().map_err(D::Error::custom)
            }
        }

        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    )*};
}

text_value!(AttestationMode, ApiVersion, Aaguid);

/// The minutes a beta creationOptions challenge may be asked to stay valid (Graph's bounds).
pub const CHALLENGE_TIMEOUT_MINUTES: RangeInclusive<u32> = 5..=43200;

pub(crate) fn challenge_timeout_minutes<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let minutes = u32::deserialize(d)?;
    if CHALLENGE_TIMEOUT_MINUTES.contains(&minutes) {
        Ok(minutes)
    } else {
        Err(D::Error::custom(format!(
            "{minutes} is outside {}..{} (minutes)",
            CHALLENGE_TIMEOUT_MINUTES.start(),
            CHALLENGE_TIMEOUT_MINUTES.end()
        )))
    }
}
