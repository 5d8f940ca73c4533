//! OpenID Connect sign-in on the Microsoft identity platform: the authorization code flow with
//! PKCE, as Microsoft documents it
//! (<https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc>,
//! <https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow>).
//!
//! - `GET {login}/{tenant}/v2.0/.well-known/openid-configuration`: the discovery document.
//! - `GET {login}/{tenant}/discovery/v2.0/keys`: the JWKS, one RSA key the sandbox makes on first
//!   use and keeps in its state for as long as it runs (a restart rotates it, as Entra rotates
//!   its keys: clients fetch the JWKS rather than pin a key).
//! - `GET {login}/{tenant}/oauth2/v2.0/authorize`: `response_type=code`, `client_id`,
//!   `redirect_uri`, `scope` with `openid`, `state`, `nonce`, `code_challenge` with
//!   `code_challenge_method=S256` (the sandbox requires PKCE). There is no password page: the
//!   user named by `login_hint` (a user of the tenant, enabled) is signed in at once and the
//!   browser goes to `redirect_uri?code=…&state=…`. A request whose `client_id` or
//!   `redirect_uri` is wrong is answered here (Entra shows its error page and never redirects to
//!   an unregistered URI); any other refusal goes to the redirect URI as `error` and
//!   `error_description` with the AADSTS code.
//! - `grant_type=authorization_code` at the token endpoint ([`code_grant`]): the client's secret
//!   (or certificate assertion), the same `redirect_uri`, the PKCE `code_verifier`; a code is
//!   redeemed once and lives 10 minutes. The answer carries an `id_token` (RS256, `kid` in the
//!   header) with `iss` `{login}/{tenant}/v2.0`, `aud` the client id, `nonce`, `oid`, `sub`
//!   (pairwise per app), `preferred_username`, `name`, `email`, `tid`, `ver` 2.0 and `groups`
//!   (the user's group object ids, as with `groupMembershipClaims: SecurityGroup` in the app's
//!   manifest), and an access token for Graph. `roles` is never sent: the sandbox does not model
//!   app role assignments to users.
//!
//! The id_token is signed with the RustCrypto `rsa` crate the sandbox already builds for
//! certificate assertions: the sandbox is a test peer, and an independent implementation from
//! the aws-lc-rs verifier in Behalf is what makes it a fair one.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::RsaPrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::errors::{Result, SandboxError};
use crate::oauth;
use crate::state::{Life, Shared};

/// How long an authorization code can be redeemed (Entra: about 10 minutes).
pub(crate) const CODE_LIFETIME_SECS: i64 = 600;
/// How long an id_token is valid (Entra: one hour).
const ID_TOKEN_LIFETIME_SECS: i64 = 3600;

/// The tenant's token-signing key.
#[derive(Debug)]
pub(crate) struct SigningKey {
    pub kid: String,
    key: rsa::pkcs1v15::SigningKey<Sha256>,
    n: Vec<u8>,
    e: Vec<u8>,
}

impl SigningKey {
    fn generate() -> Result<SigningKey> {
        let mut rng = rand::rng();
        let private = RsaPrivateKey::new(&mut rng, 2048)
            .map_err(|e| SandboxError::Internal(format!("RSA key generation: {e}")))?;
        let n = private.n().to_be_bytes_trimmed_vartime().to_vec();
        let e = private.e().to_be_bytes_trimmed_vartime().to_vec();
        // Entra's key ids are base64url thumbprints; this one is of the modulus.
        let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(&n)[..20]);
        Ok(SigningKey {
            kid,
            key: rsa::pkcs1v15::SigningKey::<Sha256>::new(private),
            n,
            e,
        })
    }

    fn jwk(&self, issuer: &str) -> Value {
        json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(&self.n),
            "e": URL_SAFE_NO_PAD.encode(&self.e),
            "issuer": issuer,
        })
    }

    /// A compact JWS (RS256) of `claims`.
    pub fn sign(&self, claims: &Value) -> Result<String> {
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": self.kid});
        let enc = |v: &Value| {
            serde_json::to_vec(v)
                .map(|b| URL_SAFE_NO_PAD.encode(b))
                .map_err(|e| SandboxError::Internal(e.to_string()))
        };
        let input = format!("{}.{}", enc(&header)?, enc(claims)?);
        let signature = self
            .key
            .try_sign(input.as_bytes())
            .map_err(|e| SandboxError::Internal(format!("RS256: {e}")))?;
        Ok(format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        ))
    }
}

/// The signing key, made on first use (2048-bit generation takes a moment; most sandboxes never
/// sign anyone in).
pub(crate) fn signing_key(shared: &Shared) -> Result<&SigningKey> {
    if let Some(k) = shared.oidc_key.get() {
        return Ok(k);
    }
    let fresh = SigningKey::generate()?;
    // Two racing first uses: one key wins and both use it.
    Ok(shared.oidc_key.get_or_init(|| fresh))
}

/// A code handed to the browser, waiting for its redemption.
#[derive(Debug, Clone)]
pub(crate) struct AuthCode {
    pub client_id: Uuid,
    pub user: Uuid,
    pub redirect_uri: String,
    /// base64url SHA-256 of the verifier (S256).
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub scope: String,
    pub expires: i64,
    pub redeemed: bool,
}

fn issuer(shared: &Shared) -> String {
    format!("{}/{}/v2.0", shared.base_url, shared.tenant_id)
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`
pub(crate) async fn discovery(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
) -> Result<Json<Value>> {
    oauth::check_tenant(&shared, &tenant)?;
    let base = format!("{}/{}", shared.base_url, shared.tenant_id);
    Ok(Json(json!({
        "token_endpoint": format!("{base}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer(&shared),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{}/oidc/userinfo", shared.base_url),
        "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce",
            "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email", "oid", "groups"],
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
    })))
}

/// `GET /{tenant}/discovery/v2.0/keys`
pub(crate) async fn keys(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
) -> Result<Json<Value>> {
    oauth::check_tenant(&shared, &tenant)?;
    let key = signing_key(&shared)?;
    Ok(Json(json!({"keys": [key.jwk(&issuer(&shared))]})))
}

/// Whether `given` is one of the app's redirect URIs. The port of a loopback URI is ignored, as
/// Entra does for `http://localhost` and `http://127.0.0.1` (RFC 8252 §7.3); otherwise the URI
/// must match exactly.
pub(crate) fn redirect_registered(app: &crate::AppRegistration, given: &str) -> bool {
    let Ok(given_url) = url::Url::parse(given) else {
        return false;
    };
    let loopback = |u: &url::Url| {
        matches!(
            u.host_str(),
            Some("localhost") | Some("127.0.0.1") | Some("[::1]")
        )
    };
    app.redirect_uris.iter().any(|r| {
        if r == given {
            return true;
        }
        let Ok(reg) = url::Url::parse(r) else {
            return false;
        };
        loopback(&reg)
            && loopback(&given_url)
            && reg.scheme() == given_url.scheme()
            && reg.host_str() == given_url.host_str()
            && reg.path() == given_url.path()
            && reg.query() == given_url.query()
    })
}

fn found(location: &str) -> Response {
    let mut resp = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// The browser sent back to the client with an error, as Entra does once it trusts the redirect
/// URI.
fn redirect_error(
    redirect_uri: &str,
    state: Option<&str>,
    error: &str,
    description: &str,
) -> Response {
    let mut url = match url::Url::parse(redirect_uri) {
        Ok(u) => u,
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("error", error);
        q.append_pair("error_description", description);
        if let Some(s) = state {
            q.append_pair("state", s);
        }
    }
    found(url.as_str())
}

/// `GET /{tenant}/oauth2/v2.0/authorize`
pub(crate) async fn authorize(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    oauth::check_tenant(&shared, &tenant)?;
    // What cannot be redirected: an unknown app, a redirect URI it did not register.
    let app = oauth::client_of(&shared, &q)?.clone();
    let Some(redirect_uri) = q.get("redirect_uri").filter(|r| !r.is_empty()) else {
        return Err(SandboxError::aad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "AADSTS900144: The request body must contain the following parameter: 'redirect_uri'.",
        ));
    };
    if !redirect_registered(&app, redirect_uri) {
        return Err(SandboxError::aad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            50011,
            format!(
                "AADSTS50011: The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal.",
                app.client_id
            ),
        ));
    }
    let state = q.get("state").map(String::as_str);
    let refuse = |error: &str, description: String| {
        Ok(redirect_error(redirect_uri, state, error, &description))
    };
    match q.get("response_type").map(String::as_str) {
        Some("code") => {}
        None => {
            return refuse(
                "invalid_request",
                "AADSTS900144: The request body must contain the following parameter: 'response_type'.".into(),
            );
        }
        Some(other) => {
            return refuse(
                "unsupported_response_type",
                format!(
                    "AADSTS700054: response_type '{other}' is not enabled for the application."
                ),
            );
        }
    }
    let scope = q.get("scope").cloned().unwrap_or_default();
    if !scope.split(' ').any(|s| s == "openid") {
        return refuse(
            "invalid_scope",
            "AADSTS70011: The provided request must include a 'scope' input parameter containing 'openid'.".into(),
        );
    }
    match q.get("response_mode").map(String::as_str) {
        None | Some("query") => {}
        Some(other) => {
            return refuse(
                "invalid_request",
                format!(
                    "AADSTS900144: The sandbox answers with response_mode=query only, not '{other}'."
                ),
            );
        }
    }
    let Some(challenge) = q.get("code_challenge").filter(|c| !c.is_empty()) else {
        return refuse(
            "invalid_request",
            "AADSTS900144: The request body must contain the following parameter: 'code_challenge'. The sandbox requires PKCE.".into(),
        );
    };
    if q.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return refuse(
            "invalid_request",
            "AADSTS501491: Invalid code_challenge_method: the sandbox accepts 'S256' only.".into(),
        );
    }
    // A base64url SHA-256 digest is 43 characters.
    if challenge.len() != 43 || URL_SAFE_NO_PAD.decode(challenge).is_err() {
        return refuse(
            "invalid_request",
            "AADSTS501491: Invalid size of Code_Challenge parameter.".into(),
        );
    }
    let Some(hint) = q.get("login_hint").filter(|h| !h.is_empty()) else {
        return refuse(
            "login_required",
            "AADSTS50058: A sign-in request was sent but no user is named: the sandbox has no sign-in page, pass login_hint with a user of the tenant.".into(),
        );
    };
    let user = {
        let dir = shared.read();
        match dir.find_user(hint) {
            None => None,
            Some(pos) => {
                let u = &dir.users[pos as usize];
                Some((u.id, u.account_enabled))
            }
        }
    };
    let user = match user {
        None => {
            return refuse(
                "invalid_request",
                format!(
                    "AADSTS50034: The user account {hint} does not exist in the {} directory. To sign into this application, the account must be added to the directory.",
                    shared.tenant_id
                ),
            );
        }
        Some((_, false)) => {
            return refuse(
                "access_denied",
                "AADSTS50057: The user account is disabled.".into(),
            );
        }
        Some((id, true)) => id,
    };
    let code = oauth::random_token(48);
    let now = shared.clock.now_secs();
    {
        let mut eph = shared.eph();
        eph.auth_codes.retain(|_, c| c.expires > now);
        eph.auth_codes.insert(
            code.clone(),
            AuthCode {
                client_id: app.client_id,
                user,
                redirect_uri: redirect_uri.clone(),
                code_challenge: challenge.clone(),
                nonce: q.get("nonce").cloned(),
                scope,
                expires: now + CODE_LIFETIME_SECS,
                redeemed: false,
            },
        );
    }
    let mut url = url::Url::parse(redirect_uri)
        .map_err(|e| SandboxError::Internal(format!("redirect URI: {e}")))?;
    {
        let mut pairs = url.query_pairs_mut();
        pairs.append_pair("code", &code);
        if let Some(s) = state {
            pairs.append_pair("state", s);
        }
    }
    Ok(found(url.as_str()))
}

fn invalid_grant(code: u32, description: impl Into<String>) -> SandboxError {
    SandboxError::aad(StatusCode::BAD_REQUEST, "invalid_grant", code, description)
}

/// `grant_type=authorization_code` at `POST /{tenant}/oauth2/v2.0/token`.
pub(crate) fn code_grant(shared: &Shared, form: &HashMap<String, String>) -> Result<Json<Value>> {
    let app = oauth::client_of(shared, form)?;
    oauth::authenticate_client(shared, app, form)?;
    let Some(code) = form.get("code").filter(|c| !c.is_empty()) else {
        return Err(SandboxError::aad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "AADSTS900144: The request body must contain the following parameter: 'code'.",
        ));
    };
    let now = shared.clock.now_secs();
    let grant = {
        let mut eph = shared.eph();
        let Some(grant) = eph
            .auth_codes
            .get_mut(code)
            .filter(|g| g.client_id == app.client_id)
        else {
            return Err(invalid_grant(
                70000,
                "AADSTS70000: The provided value for the 'code' parameter is not valid.",
            ));
        };
        if grant.redeemed {
            return Err(invalid_grant(
                54005,
                "AADSTS54005: OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
            ));
        }
        if now >= grant.expires {
            return Err(invalid_grant(
                70008,
                "AADSTS70008: The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
            ));
        }
        let given = form.get("redirect_uri").map(String::as_str).unwrap_or("");
        if given != grant.redirect_uri {
            return Err(invalid_grant(
                500112,
                format!(
                    "AADSTS500112: The reply address '{given}' does not match the reply address '{}' provided when requesting Authorization code.",
                    grant.redirect_uri
                ),
            ));
        }
        let Some(verifier) = form.get("code_verifier").filter(|v| !v.is_empty()) else {
            return Err(SandboxError::aad(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                "AADSTS900144: The request body must contain the following parameter: 'code_verifier'.",
            ));
        };
        let derived = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        if derived != grant.code_challenge {
            return Err(invalid_grant(
                501481,
                "AADSTS501481: The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            ));
        }
        grant.redeemed = true;
        grant.clone()
    };

    let (upn, name, mail, pos) = {
        let dir = shared.read();
        let pos = dir.find_user(&grant.user.to_string()).ok_or_else(|| {
            invalid_grant(
                50034,
                "AADSTS50034: The user account does not exist in this directory.",
            )
        })?;
        let u = &dir.users[pos as usize];
        if !u.account_enabled {
            return Err(invalid_grant(
                50057,
                "AADSTS50057: The user account is disabled.",
            ));
        }
        (u.upn.clone(), u.display_name.clone(), u.mail.clone(), pos)
    };
    let groups: Vec<String> = {
        let dir = shared.read();
        dir.groups
            .iter()
            .filter(|g| g.life == Life::Active && g.members.binary_search(&pos).is_ok())
            .map(|g| g.id.to_string())
            .collect()
    };
    let tid = shared.tenant_id.to_string();
    let sub = URL_SAFE_NO_PAD.encode(Sha256::digest(
        format!("{}:{}", grant.user, app.client_id).as_bytes(),
    ));
    let mut claims = json!({
        "aud": app.client_id.to_string(),
        "iss": issuer(shared),
        "iat": now,
        "nbf": now,
        "exp": now + ID_TOKEN_LIFETIME_SECS,
        "name": name,
        "oid": grant.user.to_string(),
        "preferred_username": upn,
        "sub": sub,
        "tid": tid,
        "ver": "2.0",
        "groups": groups,
    });
    if let Some(n) = &grant.nonce {
        claims["nonce"] = Value::from(n.clone());
    }
    if let Some(m) = mail {
        claims["email"] = Value::from(m);
    }
    let id_token = signing_key(shared)?.sign(&claims)?;

    let scopes = oauth::requested_scopes(app, &grant.scope);
    let access = oauth::mint(
        shared,
        &tid,
        app.client_id,
        Some((grant.user, upn)),
        &scopes,
        shared.token_lifetime_secs,
    )?;
    let mut answer = oauth::token_response(shared, access, None, &scopes).0;
    let mut scope_words: Vec<&str> = grant
        .scope
        .split(' ')
        .filter(|s| matches!(*s, "openid" | "profile" | "email"))
        .collect();
    scope_words.dedup();
    let granted = answer["scope"].as_str().unwrap_or_default().to_owned();
    answer["scope"] = Value::from(
        scope_words
            .into_iter()
            .map(String::from)
            .chain((!granted.is_empty()).then_some(granted))
            .collect::<Vec<_>>()
            .join(" "),
    );
    answer["id_token"] = Value::from(id_token);
    Ok(Json(answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(uris: &[&str]) -> crate::AppRegistration {
        crate::AppRegistration {
            name: "x".into(),
            client_id: Uuid::nil(),
            client_secret: None,
            app_roles: Vec::new(),
            delegated_scopes: Vec::new(),
            certificates: Vec::new(),
            redirect_uris: uris.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn loopback_redirects_match_on_any_port_and_others_exactly() {
        let a = app(&[
            "http://127.0.0.1/cb",
            "https://behalf.example/auth/oidc/callback",
        ]);
        assert!(redirect_registered(&a, "http://127.0.0.1:8080/cb"));
        assert!(redirect_registered(&a, "http://127.0.0.1/cb"));
        assert!(!redirect_registered(&a, "http://127.0.0.1:8080/other"));
        assert!(!redirect_registered(&a, "http://localhost:8080/cb"));
        assert!(redirect_registered(
            &a,
            "https://behalf.example/auth/oidc/callback"
        ));
        assert!(!redirect_registered(
            &a,
            "https://behalf.example:444/auth/oidc/callback"
        ));
        assert!(!redirect_registered(
            &a,
            "https://evil.example/auth/oidc/callback"
        ));
    }
}
