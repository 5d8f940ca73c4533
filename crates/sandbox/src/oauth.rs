//! The Microsoft identity platform's v2.0 token endpoint, as far as Behalf uses it: client
//! credentials with a secret or a certificate assertion (verified in [`crate::certs`]), the
//! device authorization grant, refresh tokens, the authorization code grant of the OpenID
//! Connect sign-in ([`crate::oidc`]) and the password grant (ROPC, [`crate::passwords`])
//! (<https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow>,
//! <https://learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code>).
//!
//! Access tokens are HS256 JWTs signed by hand: a JWT crate would bring a second RustCrypto or
//! ring generation for what is thirty lines of HMAC-SHA256 over base64url, and the sandbox is the
//! only party that ever verifies them (clients treat access tokens as opaque, as Microsoft asks).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;
use uuid::Uuid;

use crate::certs;
use crate::errors::{Result, SandboxError};
use crate::state::{DeviceCode, RefreshGrant, Shared, Stats};

/// Graph's resource id; `aud` of Graph access tokens.
pub(crate) const GRAPH_AUDIENCE: &str = "https://graph.microsoft.com";
const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub tid: String,
    pub appid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scp: Option<String>,
    pub idtyp: String,
    pub ver: String,
}

/// Who is calling Graph, from a verified token.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub app_id: Uuid,
    /// The signed-in user for delegated tokens.
    pub user: Option<Uuid>,
    pub permissions: Vec<String>,
}

impl Caller {
    /// Graph accepts a call when the token holds any one of the listed permissions.
    pub fn require(&self, any_of: &[&str]) -> Result<()> {
        if self
            .permissions
            .iter()
            .any(|p| any_of.contains(&p.as_str()))
        {
            Ok(())
        } else {
            Err(SandboxError::Forbidden)
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8]) -> Result<HmacSha256> {
    <HmacSha256 as KeyInit>::new_from_slice(key).map_err(|e| SandboxError::Internal(e.to_string()))
}

pub(crate) fn sign(key: &[u8], claims: &Claims) -> Result<String> {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(claims).map_err(|e| SandboxError::Internal(e.to_string()))?);
    let signing_input = format!("{header}.{body}");
    let mut m = mac(key)?;
    m.update(signing_input.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(m.finalize().into_bytes());
    Ok(format!("{signing_input}.{sig}"))
}

/// Verifies a Graph access token the way Graph does: well formed, our signature, lifetime,
/// audience, and the tenant this Graph serves. Messages follow Graph's 401 messages.
pub(crate) fn verify(shared: &Shared, token: &str) -> Result<Claims> {
    let malformed = || {
        SandboxError::InvalidToken(
            "IDX14100: JWT is not well formed, there are no dots (.).".into(),
        )
    };
    let mut parts = token.split('.');
    let (Some(h), Some(b), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let header: Value = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|v| serde_json::from_slice(&v).ok())
        .ok_or_else(|| {
            SandboxError::InvalidToken(
                "IDX14102: Unable to decode the header as Base64Url encoded string.".into(),
            )
        })?;
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(SandboxError::InvalidToken(
            "Access token validation failure. Invalid signature algorithm.".into(),
        ));
    }
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| malformed())?;
    let key = shared.read().token_key.clone();
    let mut m = mac(&key)?;
    m.update(format!("{h}.{b}").as_bytes());
    m.verify_slice(&sig).map_err(|_| {
        SandboxError::InvalidToken("Access token validation failure. Invalid signature.".into())
    })?;
    let claims: Claims = URL_SAFE_NO_PAD
        .decode(b)
        .ok()
        .and_then(|v| serde_json::from_slice(&v).ok())
        .ok_or_else(|| {
            SandboxError::InvalidToken(
                "IDX14101: Unable to decode the payload as Base64Url encoded string.".into(),
            )
        })?;
    let now = shared.clock.now_secs();
    if claims.exp <= now {
        return Err(SandboxError::InvalidToken(
            "Lifetime validation failed, the token is expired.".into(),
        ));
    }
    if claims.nbf > now + 300 {
        return Err(SandboxError::InvalidToken(
            "Lifetime validation failed, the token is not yet valid.".into(),
        ));
    }
    if claims.aud != GRAPH_AUDIENCE && claims.aud != GRAPH_APP_ID {
        return Err(SandboxError::InvalidToken(
            "Access token validation failure. Invalid audience.".into(),
        ));
    }
    if claims.tid != shared.tenant_id.to_string() {
        return Err(SandboxError::InvalidToken(
            "Access token validation failure. The token's tenant does not match this tenant."
                .into(),
        ));
    }
    Ok(claims)
}

/// The bearer token of a Graph request, verified.
pub(crate) fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<Caller> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Err(SandboxError::InvalidToken("Access token is empty.".into()));
    };
    let value = value.to_str().unwrap_or_default();
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .unwrap_or_default();
    if token.is_empty() {
        return Err(SandboxError::InvalidToken("Access token is empty.".into()));
    }
    let claims = verify(shared, token)?;
    let app_id = Uuid::parse_str(&claims.appid).map_err(|_| {
        SandboxError::InvalidToken("Access token validation failure. Invalid appid.".into())
    })?;
    let user = claims.oid.as_deref().and_then(|o| Uuid::parse_str(o).ok());
    let mut permissions = claims.roles.clone();
    if let Some(scp) = &claims.scp {
        permissions.extend(scp.split(' ').filter(|s| !s.is_empty()).map(String::from));
    }
    Ok(Caller {
        app_id,
        user,
        permissions,
    })
}

pub(crate) fn mint(
    shared: &Shared,
    tid: &str,
    app: Uuid,
    user: Option<(Uuid, String)>,
    perms: &[String],
    lifetime: i64,
) -> Result<String> {
    let now = shared.clock.now_secs();
    let delegated = user.is_some();
    let claims = Claims {
        aud: GRAPH_AUDIENCE.into(),
        iss: format!("https://sts.windows.net/{tid}/"),
        iat: now,
        nbf: now,
        exp: now + lifetime,
        tid: tid.into(),
        appid: app.to_string(),
        oid: user.as_ref().map(|u| u.0.to_string()),
        upn: user.map(|u| u.1),
        roles: if delegated {
            Vec::new()
        } else {
            perms.to_vec()
        },
        scp: delegated.then(|| perms.join(" ")),
        idtyp: if delegated {
            "user".into()
        } else {
            "app".into()
        },
        ver: "1.0".into(),
    };
    let key = shared.read().token_key.clone();
    sign(&key, &claims)
}

pub(crate) fn random_token(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill(&mut b[..]);
    URL_SAFE_NO_PAD.encode(b)
}

fn parse_form(body: &Bytes) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// The token endpoint accepts the tenant's id or its verified domain.
pub(crate) fn check_tenant(shared: &Shared, tenant: &str) -> Result<()> {
    if tenant.eq_ignore_ascii_case(&shared.tenant_id.to_string())
        || tenant.eq_ignore_ascii_case(&shared.domain)
    {
        Ok(())
    } else {
        Err(SandboxError::aad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            format!(
                "AADSTS90002: Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        ))
    }
}

pub(crate) fn client_of<'a>(
    shared: &'a Shared,
    form: &HashMap<String, String>,
) -> Result<&'a crate::AppRegistration> {
    let Some(raw) = form.get("client_id") else {
        return Err(SandboxError::aad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "AADSTS900144: The request body must contain the following parameter: 'client_id'.",
        ));
    };
    Uuid::parse_str(raw).ok().and_then(|id| shared.app(id)).ok_or_else(|| {
        SandboxError::aad(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!(
                "AADSTS700016: Application with identifier '{raw}' was not found in the directory '{}'.",
                shared.tenant_id
            ),
        )
    })
}

/// Whether the app has a credential (secret or certificate): a confidential client must then
/// authenticate with one of them; a public client has none and must present none.
fn is_confidential(shared: &Shared, app: &crate::AppRegistration) -> bool {
    app.client_secret.is_some() || !certs::app_certificates(shared, app.client_id).is_empty()
}

/// Client authentication of a token request: a certificate assertion
/// (<https://learn.microsoft.com/entra/identity-platform/certificate-credentials>) or a secret.
pub(crate) fn authenticate_client(
    shared: &Shared,
    app: &crate::AppRegistration,
    form: &HashMap<String, String>,
) -> Result<()> {
    let assertion =
        form.contains_key("client_assertion") || form.contains_key("client_assertion_type");
    if assertion {
        if !is_confidential(shared, app) {
            return Err(SandboxError::aad(
                StatusCode::BAD_REQUEST,
                "invalid_client",
                700025,
                "AADSTS700025: Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
            ));
        }
        return certs::verify_assertion(shared, app.client_id, form);
    }
    match (&app.client_secret, form.get("client_secret")) {
        (Some(expected), Some(given)) if expected == given => Ok(()),
        (_, Some(_)) if is_confidential(shared, app) => Err(SandboxError::aad(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            format!(
                "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                app.client_id
            ),
        )),
        (_, None) if is_confidential(shared, app) => Err(SandboxError::aad(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )),
        _ => Ok(()),
    }
}

pub(crate) fn token_response(
    shared: &Shared,
    access: String,
    refresh: Option<String>,
    scopes: &[String],
) -> Json<Value> {
    let mut v = json!({
        "token_type": "Bearer",
        "expires_in": shared.token_lifetime_secs,
        "ext_expires_in": shared.token_lifetime_secs,
        "access_token": access,
    });
    if !scopes.is_empty() {
        v["scope"] = Value::from(
            scopes
                .iter()
                .map(|s| format!("{GRAPH_AUDIENCE}/{s}"))
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    if let Some(r) = refresh {
        v["refresh_token"] = Value::from(r);
    }
    Json(v)
}

/// `POST /{tenant}/oauth2/v2.0/token`
pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Result<Json<Value>> {
    Stats::inc(&shared.stats.token_requests);
    check_tenant(&shared, &tenant)?;
    let form = parse_form(&body);
    let grant = form.get("grant_type").map(String::as_str).unwrap_or("");
    match grant {
        "client_credentials" => client_credentials(&shared, &form),
        "urn:ietf:params:oauth:grant-type:device_code" => device_code_grant(&shared, &form),
        "refresh_token" => refresh_grant(&shared, &form),
        "authorization_code" => crate::oidc::code_grant(&shared, &form),
        "password" => crate::passwords::password_grant(&shared, &form),
        "" => Err(SandboxError::aad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "AADSTS900144: The request body must contain the following parameter: 'grant_type'.",
        )),
        other => Err(SandboxError::aad(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            format!("AADSTS70003: The app requested an unsupported grant type '{other}'."),
        )),
    }
}

fn client_credentials(shared: &Shared, form: &HashMap<String, String>) -> Result<Json<Value>> {
    let app = client_of(shared, form)?;
    authenticate_client(shared, app, form)?;
    if !is_confidential(shared, app) {
        return Err(SandboxError::aad(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            7000218,
            "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ));
    }
    let scope = form.get("scope").map(String::as_str).unwrap_or("");
    if scope != format!("{GRAPH_AUDIENCE}/.default") && scope != format!("{GRAPH_APP_ID}/.default")
    {
        return Err(SandboxError::aad(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            format!(
                "AADSTS1002012: The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        ));
    }
    let access = mint(
        shared,
        &shared.tenant_id.to_string(),
        app.client_id,
        None,
        &app.app_roles,
        shared.token_lifetime_secs,
    )?;
    Ok(token_response(shared, access, None, &[]))
}

/// Requested delegated scopes: `.default` means everything consented for the app.
pub(crate) fn requested_scopes(app: &crate::AppRegistration, scope: &str) -> Vec<String> {
    let mut out = Vec::new();
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        let short = s
            .strip_prefix(GRAPH_AUDIENCE)
            .map(|r| r.trim_start_matches('/'))
            .unwrap_or(s);
        if short == ".default" {
            out.extend(
                app.delegated_scopes
                    .iter()
                    .filter(|d| *d != "offline_access")
                    .cloned(),
            );
        } else if app.delegated_scopes.iter().any(|d| d == short)
            && short != "offline_access"
            && short != "openid"
            && short != "profile"
        {
            out.push(short.to_string());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `POST /{tenant}/oauth2/v2.0/devicecode`
pub(crate) async fn devicecode(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Result<Json<Value>> {
    check_tenant(&shared, &tenant)?;
    let form = parse_form(&body);
    let app = client_of(&shared, &form)?;
    let scopes = requested_scopes(app, form.get("scope").map(String::as_str).unwrap_or(""));
    if scopes.is_empty() {
        return Err(SandboxError::aad(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            "AADSTS70011: The provided request must include a 'scope' input parameter.",
        ));
    }
    let device_code = random_token(32);
    // Microsoft's user codes are short, upper-case, unambiguous letters and digits.
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    let user_code: String = (0..9)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    let now = shared.clock.now_secs();
    shared.eph().device_codes.insert(
        device_code.clone(),
        DeviceCode {
            client_id: app.client_id,
            user_code: user_code.clone(),
            scopes,
            expires: now + shared.device_code_lifetime_secs,
            last_poll: None,
            approved_by: None,
            denied: false,
        },
    );
    let uri = format!("{}/sandbox/device", shared.base_url);
    Ok(Json(json!({
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": uri,
        "expires_in": shared.device_code_lifetime_secs,
        "interval": shared.device_code_interval_secs,
        "message": format!("To sign in, use a web browser to open the page {uri} and enter the code {user_code} to authenticate."),
    })))
}

fn device_code_grant(shared: &Shared, form: &HashMap<String, String>) -> Result<Json<Value>> {
    let app = client_of(shared, form)?;
    authenticate_client(shared, app, form)?;
    let code = form.get("device_code").cloned().unwrap_or_default();
    let now = shared.clock.now_secs();
    let mut eph = shared.eph();
    let Some(dc) = eph
        .device_codes
        .get_mut(&code)
        .filter(|d| d.client_id == app.client_id)
    else {
        return Err(SandboxError::aad(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            70000,
            "AADSTS70000: The provided value for the 'device_code' is not valid.",
        ));
    };
    if now >= dc.expires {
        return Err(SandboxError::aad(
            StatusCode::BAD_REQUEST,
            "expired_token",
            70020,
            "AADSTS70020: The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
        ));
    }
    if dc.denied {
        return Err(SandboxError::aad(
            StatusCode::BAD_REQUEST,
            "authorization_declined",
            70000,
            "AADSTS70000: The user declined the authorization request.",
        ));
    }
    let Some(user_id) = dc.approved_by else {
        // RFC 8628 §3.5: polling faster than `interval` earns `slow_down`.
        let too_fast = dc
            .last_poll
            .is_some_and(|t| now - t < shared.device_code_interval_secs);
        dc.last_poll = Some(now);
        return Err(if too_fast {
            SandboxError::aad(
                StatusCode::BAD_REQUEST,
                "slow_down",
                70016,
                "AADSTS70016: The client is polling too quickly; wait for the interval before polling again.",
            )
        } else {
            SandboxError::aad(
                StatusCode::BAD_REQUEST,
                "authorization_pending",
                70016,
                "AADSTS70016: OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            )
        });
    };
    let scopes = dc.scopes.clone();
    eph.device_codes.remove(&code);
    drop(eph);
    issue_user_tokens(shared, app.client_id, user_id, scopes)
}

pub(crate) fn issue_user_tokens(
    shared: &Shared,
    client_id: Uuid,
    user_id: Uuid,
    scopes: Vec<String>,
) -> Result<Json<Value>> {
    let upn = {
        let dir = shared.read();
        let pos = dir.find_user(&user_id.to_string()).ok_or_else(|| {
            SandboxError::aad(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                50034,
                "AADSTS50034: The user account does not exist in this directory.",
            )
        })?;
        dir.users[pos as usize].upn.clone()
    };
    let access = mint(
        shared,
        &shared.tenant_id.to_string(),
        client_id,
        Some((user_id, upn)),
        &scopes,
        shared.token_lifetime_secs,
    )?;
    let refresh = random_token(48);
    shared.eph().refresh.insert(
        refresh.clone(),
        RefreshGrant {
            client_id,
            user: user_id,
            scopes: scopes.clone(),
            expires: shared.clock.now_secs() + 90 * 24 * 3600,
        },
    );
    Ok(token_response(shared, access, Some(refresh), &scopes))
}

fn refresh_grant(shared: &Shared, form: &HashMap<String, String>) -> Result<Json<Value>> {
    let app = client_of(shared, form)?;
    authenticate_client(shared, app, form)?;
    let rt = form.get("refresh_token").cloned().unwrap_or_default();
    // Refresh tokens rotate: the old one is consumed.
    let grant = shared.eph().refresh.remove(&rt);
    let Some(grant) =
        grant.filter(|g| g.client_id == app.client_id && g.expires > shared.clock.now_secs())
    else {
        return Err(SandboxError::aad(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            70000,
            "AADSTS70000: Provided grant is invalid or malformed.",
        ));
    };
    issue_user_tokens(shared, grant.client_id, grant.user, grant.scopes)
}

/// Approves (or denies) a pending device code in the name of a user, as the sign-in page would.
pub(crate) fn approve_device(
    shared: &Shared,
    user_code: &str,
    upn: &str,
    deny: bool,
) -> Result<()> {
    let user = {
        let dir = shared.read();
        let pos = dir
            .find_user(upn)
            .ok_or_else(|| SandboxError::NotFound(upn.to_string()))?;
        dir.users[pos as usize].id
    };
    let now = shared.clock.now_secs();
    let mut eph = shared.eph();
    let dc = eph
        .device_codes
        .values_mut()
        .find(|d| d.user_code.eq_ignore_ascii_case(user_code.trim()) && d.expires > now)
        .ok_or_else(|| {
            SandboxError::BadRequest(format!(
                "The code '{user_code}' is not valid or has expired."
            ))
        })?;
    if deny {
        dc.denied = true;
    } else {
        dc.approved_by = Some(user);
    }
    Ok(())
}
