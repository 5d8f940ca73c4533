//! Users' passwords: `passwordProfile` on `POST /users` and `PATCH /users/{id}`
//! (<https://learn.microsoft.com/graph/api/resources/passwordprofile>), kept only as a salted
//! digest, and the sign-in that checks them: the resource owner password credentials grant of
//! the v2.0 token endpoint (<https://learn.microsoft.com/entra/identity-platform/v2-oauth-ropc>),
//! `grant_type=password`, which is how a program signs in with a password as Entra's sign-in
//! page would.

use std::collections::HashMap;

use axum::Json;
use axum::http::StatusCode;
use rand::RngExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::authmethods::hex;
use crate::errors::{Result, SandboxError};
use crate::oauth;
use crate::state::{Shared, Stats};

/// Who may set a user's password through `passwordProfile` (Graph's user-update permissions:
/// the least privileged `User-PasswordProfile.ReadWrite.All`, or the broader user writes).
pub(crate) const PASSWORD_WRITE: &[&str] = &[
    "User-PasswordProfile.ReadWrite.All",
    "User.ReadWrite.All",
    "Directory.ReadWrite.All",
];

/// What the sandbox keeps of a user's password: a random salt and SHA-256 over salt and
/// password, never the password.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredPassword {
    salt: String,
    sha256: String,
    /// `forceChangePasswordNextSignIn`: Entra makes the user choose another password at the next
    /// sign-in, which a program's sign-in (ROPC) cannot do, so it is refused with AADSTS50055.
    pub force_change: bool,
    pub set_at: i64,
}

impl StoredPassword {
    pub(crate) fn new(password: &str, force_change: bool, now: i64) -> StoredPassword {
        let mut salt = [0u8; 16];
        rand::rng().fill(&mut salt[..]);
        let salt = hex(&salt);
        StoredPassword {
            sha256: digest(&salt, password),
            salt,
            force_change,
            set_at: now,
        }
    }

    pub(crate) fn matches(&self, password: &str) -> bool {
        digest(&self.salt, password) == self.sha256
    }
}

fn digest(salt: &str, password: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0u8]);
    h.update(password.as_bytes());
    hex(&h.finalize())
}

/// A `passwordProfile` as a request body gives it.
#[derive(Debug)]
pub(crate) struct Profile {
    pub password: Option<String>,
    pub force_change: Option<bool>,
}

fn invalid_profile() -> SandboxError {
    SandboxError::BadRequest(
        "Invalid value specified for property 'passwordProfile' of resource 'User'.".into(),
    )
}

/// The body's `passwordProfile`, if it has one; a password in it must meet the policy.
pub(crate) fn profile_of(m: &Map<String, Value>) -> Result<Option<Profile>> {
    let p = match m.get("passwordProfile") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(p)) => p,
        Some(_) => return Err(invalid_profile()),
    };
    let password = match p.get("password") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            check_complexity(s)?;
            Some(s.clone())
        }
        Some(_) => return Err(invalid_profile()),
    };
    let force_change = match p.get("forceChangePasswordNextSignIn") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(invalid_profile()),
    };
    Ok(Some(Profile {
        password,
        force_change,
    }))
}

/// Entra's default password policy for cloud users: 8 to 256 characters, three of upper case,
/// lower case, digits and symbols
/// (<https://learn.microsoft.com/entra/identity/authentication/concept-password-ban-bad-combined-policy>).
/// Graph refuses any other with 400 `Request_BadRequest` and this message.
pub(crate) fn check_complexity(password: &str) -> Result<()> {
    let n = password.chars().count();
    let classes = [
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if !(8..=256).contains(&n) || classes < 3 {
        return Err(SandboxError::BadRequest(
            "The specified password does not comply with password complexity requirements. Please provide a different password.".into(),
        ));
    }
    Ok(())
}

fn invalid_grant(code: u32, description: String) -> SandboxError {
    SandboxError::aad(StatusCode::BAD_REQUEST, "invalid_grant", code, description)
}

/// `grant_type=password` (ROPC): `client_id`, `scope`, `username`, `password` (and the client's
/// credential if it is confidential) → the user's tokens, as the device code grant gives them.
pub(crate) fn password_grant(
    shared: &Shared,
    form: &HashMap<String, String>,
) -> Result<Json<Value>> {
    let r = password_grant_inner(shared, form);
    match &r {
        Ok(_) => Stats::inc(&shared.stats.signins),
        Err(_) => Stats::inc(&shared.stats.signins_rejected),
    };
    r
}

fn password_grant_inner(shared: &Shared, form: &HashMap<String, String>) -> Result<Json<Value>> {
    let app = oauth::client_of(shared, form)?;
    oauth::authenticate_client(shared, app, form)?;
    let scopes = oauth::requested_scopes(app, form.get("scope").map(String::as_str).unwrap_or(""));
    if scopes.is_empty() {
        return Err(SandboxError::aad(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            "AADSTS70011: The provided request must include a 'scope' input parameter.",
        ));
    }
    let field = |k: &str| {
        form.get(k).ok_or_else(|| {
            SandboxError::aad(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                format!(
                    "AADSTS900144: The request body must contain the following parameter: '{k}'."
                ),
            )
        })
    };
    let (username, password) = (field("username")?, field("password")?);
    let user_id = {
        let dir = shared.read();
        let pos = dir.find_user(username).ok_or_else(|| {
            invalid_grant(
                50034,
                format!(
                    "AADSTS50034: The user account {username} does not exist in the {} directory. To sign into this application, the account must be added to the directory.",
                    shared.domain
                ),
            )
        })?;
        let user = &dir.users[pos as usize];
        // A user without a password (a passkey-only account, one never given one) cannot
        // sign in with ROPC at all: the same answer as a wrong password.
        let stored = dir.passwords.get(&pos);
        if !stored.is_some_and(|s| s.matches(password)) {
            return Err(invalid_grant(
                50126,
                "AADSTS50126: Error validating credentials due to invalid username or password."
                    .into(),
            ));
        }
        if !user.account_enabled {
            return Err(invalid_grant(
                50057,
                "AADSTS50057: The user account is disabled.".into(),
            ));
        }
        if stored.is_some_and(|s| s.force_change) {
            return Err(invalid_grant(
                50055,
                "AADSTS50055: The password is expired.".into(),
            ));
        }
        user.id
    };
    oauth::issue_user_tokens(shared, app.client_id, user_id, scopes)
}
