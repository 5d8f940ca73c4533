//! The relying party's options, as Microsoft Graph returns them.
//!
//! Parsed by hand over `serde_json::Value` rather than with derived structs so that every refusal
//! names the JSON path at fault (`publicKey.excludeCredentials[2].id`) and so that the tolerances
//! Graph needs (a `{"value": …}` wrapper, three base64 dialects) live in one place.

use serde_json::{Map, Value};

use crate::AuthenticatorError;
use crate::encoding::{decode_candidates, decode_lenient};

/// COSE algorithm identifier of ES256 (ECDSA P-256 with SHA-256).
pub const ES256: i64 = -7;
/// COSE algorithm identifier of RS256; Graph offers it, this authenticator does not make it.
pub const RS256: i64 = -257;

/// WebAuthn L3 §5.4.6: `userVerification`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserVerification {
    Required,
    Preferred,
    Discouraged,
}

/// WebAuthn L3 §5.4.7: `attestation` conveyance preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttestationConveyance {
    None,
    Indirect,
    Direct,
    Enterprise,
}

/// CTAP 2.1 §12.1 credProtect levels, named as Microsoft names them in `credentialProtectionPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredProtect {
    /// 0x01 `userVerificationOptional`
    UserVerificationOptional = 1,
    /// 0x02 `userVerificationOptionalWithCredentialIDList`
    UserVerificationOptionalWithCredentialIdList = 2,
    /// 0x03 `userVerificationRequired`
    UserVerificationRequired = 3,
}

impl CredProtect {
    pub fn level(self) -> u8 {
        self as u8
    }

    pub fn from_level(level: u8) -> Option<Self> {
        match level {
            1 => Some(CredProtect::UserVerificationOptional),
            2 => Some(CredProtect::UserVerificationOptionalWithCredentialIdList),
            3 => Some(CredProtect::UserVerificationRequired),
            _ => None,
        }
    }

    fn from_policy(name: &str) -> Option<Self> {
        match name {
            "userVerificationOptional" => Some(CredProtect::UserVerificationOptional),
            "userVerificationOptionalWithCredentialIDList" => {
                Some(CredProtect::UserVerificationOptionalWithCredentialIdList)
            }
            "userVerificationRequired" => Some(CredProtect::UserVerificationRequired),
            _ => None,
        }
    }
}

/// `PublicKeyCredentialCreationOptions` (WebAuthn L3 §5.4), reduced to what the authenticator and
/// the client it stands in for act upon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreationOptions {
    /// The challenge string exactly as received: clientDataJSON must carry it verbatim.
    pub challenge: String,
    /// Graph's `challengeTimeoutDateTime`, when present (RFC 3339, as received).
    pub challenge_timeout: Option<String>,
    pub rp_id: String,
    pub rp_name: Option<String>,
    /// `user.id` decoded: the user handle stored with a resident credential. Where the text reads
    /// both as base64url and as padding-digit form, the base64url reading is taken; Entra's
    /// 40-byte handles are never ambiguous.
    pub user_handle: Vec<u8>,
    pub user_name: String,
    pub user_display_name: String,
    /// `pubKeyCredParams[].alg` of the `public-key` entries, in the relying party's order.
    pub algorithms: Vec<i64>,
    /// `excludeCredentials[].id` decoded: every reading of each id (see
    /// [`crate::decode_candidates`]), as the list only serves to match credentials.
    pub exclude_credentials: Vec<Vec<u8>>,
    pub require_resident_key: bool,
    pub user_verification: UserVerification,
    pub attestation: AttestationConveyance,
    /// `extensions.hmacCreateSecret`
    pub hmac_create_secret: bool,
    /// `extensions.credentialProtectionPolicy` (or the standard `credProtect` name).
    pub cred_protect: Option<CredProtect>,
    /// `extensions.enforceCredentialProtectionPolicy`
    pub enforce_cred_protect: bool,
}

/// `PublicKeyCredentialRequestOptions` (WebAuthn L3 §5.5), for signing in with a stored credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestOptions {
    pub challenge: String,
    pub rp_id: String,
    /// `allowCredentials[].id` decoded (every reading, as for exclusion); empty means "any
    /// discoverable credential for the RP".
    pub allow_credentials: Vec<Vec<u8>>,
    pub user_verification: UserVerification,
}

const CREATION: &str = "creation options";
const REQUEST: &str = "request options";

/// A read cursor over a JSON object that knows its own path, so errors name the field.
struct Obj<'a> {
    input: &'static str,
    path: String,
    map: &'a Map<String, Value>,
}

impl<'a> Obj<'a> {
    fn new(
        input: &'static str,
        path: impl Into<String>,
        value: &'a Value,
    ) -> Result<Self, AuthenticatorError> {
        let path = path.into();
        match value {
            Value::Object(map) => Ok(Obj { input, path, map }),
            other => {
                let field = if path.is_empty() {
                    "(document)".to_owned()
                } else {
                    path
                };
                Err(AuthenticatorError::invalid(
                    input,
                    field,
                    format!("must be an object, not {}", kind(other)),
                ))
            }
        }
    }

    fn field(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    fn err(&self, name: &str, reason: impl Into<String>) -> AuthenticatorError {
        AuthenticatorError::invalid(self.input, self.field(name), reason)
    }

    /// A present, non-null member.
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    fn obj(&self, name: &str) -> Result<Obj<'a>, AuthenticatorError> {
        let v = self.get(name).ok_or_else(|| self.err(name, "is missing"))?;
        Obj::new(self.input, self.field(name), v)
    }

    fn opt_obj(&self, name: &str) -> Result<Option<Obj<'a>>, AuthenticatorError> {
        self.get(name)
            .map(|v| Obj::new(self.input, self.field(name), v))
            .transpose()
    }

    fn string(&self, name: &str) -> Result<&'a str, AuthenticatorError> {
        match self.get(name) {
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(self.err(name, format!("must be a string, not {}", kind(other)))),
            None => Err(self.err(name, "is missing")),
        }
    }

    fn opt_string(&self, name: &str) -> Result<Option<&'a str>, AuthenticatorError> {
        match self.get(name) {
            None => Ok(None),
            Some(_) => self.string(name).map(Some),
        }
    }

    fn opt_bool(&self, name: &str) -> Result<Option<bool>, AuthenticatorError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            // Graph is an OData service; a stringly "true" costs nothing to accept.
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(other) => Err(self.err(name, format!("must be a boolean, not {}", kind(other)))),
        }
    }

    fn opt_array(&self, name: &str) -> Result<&'a [Value], AuthenticatorError> {
        match self.get(name) {
            None => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(other) => Err(self.err(name, format!("must be an array, not {}", kind(other)))),
        }
    }

    /// A base64 (any dialect) member decoded, non-empty.
    fn bytes(&self, name: &str) -> Result<Vec<u8>, AuthenticatorError> {
        let text = self.string(name)?;
        let bytes = decode_lenient(text).map_err(|reason| self.err(name, reason))?;
        if bytes.is_empty() {
            return Err(self.err(name, "is empty"));
        }
        Ok(bytes)
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Strips Graph's `{"value": …}` wrapper (possibly more than once, never deeper than a few levels).
fn unwrap_value(mut v: &Value) -> &Value {
    for _ in 0..4 {
        match v {
            Value::Object(map) if map.len() == 1 && map.contains_key("value") => v = &map["value"],
            _ => break,
        }
    }
    v
}

/// The object holding the WebAuthn options: `publicKey` when present, else the object itself
/// (some callers pass the bare WebAuthn dictionary).
fn public_key<'a>(
    input: &'static str,
    root: &'a Value,
) -> Result<(Obj<'a>, Option<&'a str>), AuthenticatorError> {
    let root = Obj::new(input, "", unwrap_value(root))?;
    let timeout = root.opt_string("challengeTimeoutDateTime")?;
    if root.get("publicKey").is_some() {
        Ok((root.obj("publicKey")?, timeout))
    } else if root.get("challenge").is_some() {
        Ok((root, timeout))
    } else {
        Err(root.err("publicKey", "is missing"))
    }
}

/// The relying party id becomes the origin `https://<rp.id>`: keep it a host name.
fn check_rp_id(obj: &Obj<'_>, name: &str, rp_id: &str) -> Result<(), AuthenticatorError> {
    let ok = !rp_id.is_empty()
        && rp_id.len() <= 253
        && !rp_id.starts_with(['.', '-'])
        && !rp_id.ends_with(['.', '-'])
        && rp_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(obj.err(name, format!("{rp_id:?} is not a host name")))
    }
}

fn check_challenge(obj: &Obj<'_>) -> Result<String, AuthenticatorError> {
    // Kept opaque: clientDataJSON must carry the string verbatim (Microsoft compares it as text),
    // so this client never re-encodes it and so never needs to decode it.
    let challenge = obj.string("challenge")?;
    if challenge.trim().is_empty() {
        return Err(obj.err("challenge", "is empty"));
    }
    if challenge.chars().any(char::is_control) {
        return Err(obj.err("challenge", "contains control characters"));
    }
    Ok(challenge.to_owned())
}

fn user_verification(obj: &Obj<'_>, name: &str) -> Result<UserVerification, AuthenticatorError> {
    match obj.opt_string(name)? {
        None | Some("preferred") => Ok(UserVerification::Preferred),
        Some("required") => Ok(UserVerification::Required),
        Some("discouraged") => Ok(UserVerification::Discouraged),
        Some(other) => Err(obj.err(
            name,
            format!("{other:?} is not one of required, preferred, discouraged"),
        )),
    }
}

fn credential_ids(obj: &Obj<'_>, name: &str) -> Result<Vec<Vec<u8>>, AuthenticatorError> {
    let mut ids = Vec::new();
    for (i, item) in obj.opt_array(name)?.iter().enumerate() {
        let descriptor = Obj::new(obj.input, format!("{}[{i}]", obj.field(name)), item)?;
        // WebAuthn L3 §5.8.3: descriptors of an unknown type are ignored, not refused.
        match descriptor.opt_string("type")? {
            None | Some("public-key") => {
                let text = descriptor.string("id")?;
                let readings =
                    decode_candidates(text).map_err(|reason| descriptor.err("id", reason))?;
                if readings.iter().all(Vec::is_empty) {
                    return Err(descriptor.err("id", "is empty"));
                }
                ids.extend(readings);
            }
            Some(_) => continue,
        }
    }
    Ok(ids)
}

impl CreationOptions {
    /// Parses Graph's `creationOptions` answer (or any WebAuthn creation options JSON).
    pub fn from_json(text: &str) -> Result<Self, AuthenticatorError> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            AuthenticatorError::invalid(CREATION, "(document)", format!("is not JSON ({e})"))
        })?;
        Self::from_value(&value)
    }

    pub fn from_value(value: &Value) -> Result<Self, AuthenticatorError> {
        let (pk, timeout) = public_key(CREATION, value)?;
        let challenge = check_challenge(&pk)?;

        let rp = pk.obj("rp")?;
        let rp_id = rp.string("id")?.to_owned();
        check_rp_id(&rp, "id", &rp_id)?;
        let rp_name = rp.opt_string("name")?.map(str::to_owned);

        let user = pk.obj("user")?;
        let user_handle = user.bytes("id")?;
        // WebAuthn L3 §5.4.3: a user handle is at most 64 bytes.
        if user_handle.len() > 64 {
            return Err(user.err(
                "id",
                format!(
                    "is {} bytes long; at most 64 are allowed",
                    user_handle.len()
                ),
            ));
        }
        let user_name = user.string("name")?.to_owned();
        let user_display_name = user
            .opt_string("displayName")?
            .unwrap_or(&user_name)
            .to_owned();

        let mut algorithms = Vec::new();
        let params = pk.opt_array("pubKeyCredParams")?;
        for (i, item) in params.iter().enumerate() {
            let param = Obj::new(
                CREATION,
                format!("{}[{i}]", pk.field("pubKeyCredParams")),
                item,
            )?;
            let alg = match param.get("alg") {
                Some(Value::Number(n)) => n
                    .as_i64()
                    .ok_or_else(|| param.err("alg", format!("{n} is not an integer")))?,
                Some(other) => {
                    return Err(param.err("alg", format!("must be a number, not {}", kind(other))));
                }
                None => return Err(param.err("alg", "is missing")),
            };
            if param.opt_string("type")?.unwrap_or("public-key") == "public-key" {
                algorithms.push(alg);
            }
        }
        // WebAuthn L3 §5.1.3 step 10: an empty list means ES256 and RS256.
        if params.is_empty() {
            algorithms = vec![ES256, RS256];
        }

        let exclude_credentials = credential_ids(&pk, "excludeCredentials")?;

        let (require_resident_key, uv) = match pk.opt_obj("authenticatorSelection")? {
            Some(sel) => {
                let rrk = sel.opt_bool("requireResidentKey")?.unwrap_or(false)
                    || sel.opt_string("residentKey")? == Some("required");
                (rrk, user_verification(&sel, "userVerification")?)
            }
            None => (false, UserVerification::Preferred),
        };

        let attestation = match pk.opt_string("attestation")? {
            None | Some("none") => AttestationConveyance::None,
            Some("indirect") => AttestationConveyance::Indirect,
            Some("direct") => AttestationConveyance::Direct,
            Some("enterprise") => AttestationConveyance::Enterprise,
            Some(other) => {
                return Err(pk.err(
                    "attestation",
                    format!("{other:?} is not one of none, indirect, direct, enterprise"),
                ));
            }
        };

        let (mut hmac_create_secret, mut cred_protect, mut enforce_cred_protect) =
            (false, None, false);
        if let Some(ext) = pk.opt_obj("extensions")? {
            hmac_create_secret = ext.opt_bool("hmacCreateSecret")?.unwrap_or(false);
            enforce_cred_protect = ext
                .opt_bool("enforceCredentialProtectionPolicy")?
                .unwrap_or(false);
            if let Some(policy) = ext.opt_string("credentialProtectionPolicy")? {
                cred_protect = Some(CredProtect::from_policy(policy).ok_or_else(|| {
                    ext.err(
                        "credentialProtectionPolicy",
                        format!(
                            "{policy:?} is not one of userVerificationOptional, \
                             userVerificationOptionalWithCredentialIDList, userVerificationRequired"
                        ),
                    )
                })?);
            }
        }

        Ok(CreationOptions {
            challenge,
            challenge_timeout: timeout.map(str::to_owned),
            rp_id,
            rp_name,
            user_handle,
            user_name,
            user_display_name,
            algorithms,
            exclude_credentials,
            require_resident_key,
            user_verification: uv,
            attestation,
            hmac_create_secret,
            cred_protect,
            enforce_cred_protect,
        })
    }
}

impl RequestOptions {
    /// Parses `PublicKeyCredentialRequestOptions` JSON, bare or under `publicKey` / `value`.
    pub fn from_json(text: &str) -> Result<Self, AuthenticatorError> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            AuthenticatorError::invalid(REQUEST, "(document)", format!("is not JSON ({e})"))
        })?;
        Self::from_value(&value)
    }

    pub fn from_value(value: &Value) -> Result<Self, AuthenticatorError> {
        let (pk, _) = public_key(REQUEST, value)?;
        let challenge = check_challenge(&pk)?;
        let rp_id = pk.string("rpId")?.to_owned();
        check_rp_id(&pk, "rpId", &rp_id)?;
        Ok(RequestOptions {
            challenge,
            rp_id,
            allow_credentials: credential_ids(&pk, "allowCredentials")?,
            user_verification: user_verification(&pk, "userVerification")?,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests;
