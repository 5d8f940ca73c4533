//! Admin sign-in with Microsoft Entra ID: OpenID Connect, the authorization code flow with PKCE
//! (<https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc>).
//!
//! [`App::oidc_start`] makes a `state`, a `nonce` and a PKCE verifier, keeps them here in memory
//! for 10 minutes keyed by the state, and answers the authorize URL the browser goes to.
//! [`App::oidc_finish`] takes the `code` and `state` the browser comes back with, redeems the
//! code at the token endpoint (with the client secret, the redirect URL and the verifier),
//! fetches the tenant's discovery document and JWKS, verifies the id_token's RS256 signature
//! with aws-lc-rs (the crypto library rustls already builds) and its `iss`, `aud`, `exp`, `nbf`,
//! `nonce` and `tid`, maps its `groups` / `roles` to a Behalf role (owner, else admin with
//! edit-users, else admin, else viewer; none is refused), creates or updates the admin named by
//! `preferred_username` (lowercased, without a password) and opens a panel session as a password
//! sign-in does.
//!
//! Hand-written on purpose: the flow is two requests and one signature check, and the
//! `openidconnect` crate would bring a second RustCrypto generation into the build for them.
//! The pending sign-ins are per instance: behind a load balancer, the callback must reach the
//! instance that started the sign-in (sticky sessions), or the sign-in is refused and the admin
//! starts again.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use behalf_config::{Config, OidcConfig};
use behalf_domain::{Admin, EventAction, EventDetail, Outcome, Role, Secret, now_millis};
use behalf_store::StoreError;
use serde::Deserialize;
use serde_json::Value;

use crate::auth::SignedIn;
use crate::{App, AppError, graph_settings};

/// How long a started sign-in waits for its callback.
pub const OIDC_LOGIN_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// Sign-ins waiting at once, per instance; past it, new ones are refused until some expire.
const MAX_PENDING: usize = 10_000;
/// Clock skew allowed on `exp` and `nbf`.
const SKEW_SECS: i64 = 300;

/// The sign-ins started and not yet finished, and the HTTP client for Entra ID.
#[derive(Debug, Default)]
pub(crate) struct OidcState {
    pending: Mutex<HashMap<String, Pending>>,
    http: OnceLock<reqwest::Client>,
}

#[derive(Debug)]
struct Pending {
    nonce: String,
    verifier: Secret,
    started: Instant,
}

/// `[oidc]` with the defaults filled in.
#[derive(Debug)]
struct Settings<'a> {
    oidc: &'a OidcConfig,
    client_id: &'a str,
    client_secret: &'a Secret,
    /// `{login}/{tenant}`
    authority: String,
    redirect_url: &'a str,
}

fn settings(config: &Config) -> Result<Settings<'_>, AppError> {
    let oidc = &config.oidc;
    let missing = |key: &str| {
        AppError::NotConfigured(format!(
            "sign-in with Entra ID needs oidc.{key} (or BEHALF_OIDC__{})",
            key.to_uppercase()
        ))
    };
    if !oidc.enabled {
        return Err(AppError::NotConfigured(
            "sign-in with Entra ID is off: set oidc.enabled = true".into(),
        ));
    }
    let tenant = oidc
        .tenant_id
        .as_deref()
        .or(config.entra.tenant_id.as_deref())
        .ok_or_else(|| missing("tenant_id"))?;
    Ok(Settings {
        oidc,
        client_id: oidc
            .client_id
            .as_deref()
            .ok_or_else(|| missing("client_id"))?,
        client_secret: oidc
            .client_secret
            .as_ref()
            .ok_or_else(|| missing("client_secret"))?,
        authority: format!(
            "{}/{tenant}",
            config.entra.login_base_url.trim_end_matches('/')
        ),
        redirect_url: oidc
            .redirect_url
            .as_deref()
            .ok_or_else(|| missing("redirect_url"))?,
    })
}

fn random_b64(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut b).expect("the system random source works");
    URL_SAFE_NO_PAD.encode(b)
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        verifier.as_bytes(),
    ))
}

/// Why Entra ID's answer cannot be used; said to the person signing in.
fn refused(reason: impl Into<String>) -> AppError {
    AppError::invalid("id_token", reason)
}

fn expired_state() -> AppError {
    AppError::invalid(
        "state",
        "this sign-in is unknown, already used or older than 10 minutes: start again",
    )
}

/// The claims of an id_token Behalf reads.
#[derive(Debug, Deserialize)]
struct IdClaims {
    iss: String,
    aud: Value,
    exp: i64,
    nbf: Option<i64>,
    nonce: Option<String>,
    tid: Option<String>,
    oid: Option<String>,
    preferred_username: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    roles: Vec<String>,
    /// Present when the user is in more groups than a token carries (the groups overage).
    #[serde(rename = "_claim_names")]
    claim_names: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

/// The Behalf role `[oidc]` maps the token's groups and roles to: owner, else admin with
/// edit-users, else admin, else viewer.
fn map_role(oidc: &OidcConfig, groups: &[String], roles: &[String]) -> Option<(Role, bool)> {
    let in_groups = |wanted: &[String]| {
        wanted
            .iter()
            .any(|w| groups.iter().any(|g| g.eq_ignore_ascii_case(w.trim())))
    };
    let has_role = |wanted: &[String]| wanted.iter().any(|w| roles.iter().any(|r| r == w.trim()));
    if in_groups(&oidc.owner_groups) || has_role(&oidc.owner_roles) {
        Some((Role::Owner, true))
    } else if in_groups(&oidc.editor_groups) {
        Some((Role::Admin, true))
    } else if in_groups(&oidc.admin_groups) || has_role(&oidc.admin_roles) {
        Some((Role::Admin, false))
    } else if in_groups(&oidc.viewer_groups) || has_role(&oidc.viewer_roles) {
        Some((Role::Viewer, false))
    } else {
        None
    }
}

/// Verifies a compact JWS signed RS256 by one of `keys`, and answers its claims.
fn verify_rs256(token: &str, keys: &[Jwk]) -> Result<Value, AppError> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refused("Entra ID's id_token is not a JWT"));
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).ok();
    let header: Value = decode(h)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| refused("the id_token's header cannot be read"))?;
    if header["alg"].as_str() != Some("RS256") {
        return Err(refused("the id_token is not signed with RS256"));
    }
    let kid = header["kid"].as_str();
    let signature = decode(s).ok_or_else(|| refused("the id_token's signature cannot be read"))?;
    let message = format!("{h}.{c}");
    let verified = keys
        .iter()
        .filter(|k| k.kty == "RSA" && (kid.is_none() || k.kid.as_deref() == kid))
        .filter_map(|k| Some((decode(k.n.as_deref()?)?, decode(k.e.as_deref()?)?)))
        .any(|(n, e)| {
            aws_lc_rs::signature::RsaPublicKeyComponents { n: &n, e: &e }
                .verify(
                    &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
                    message.as_bytes(),
                    &signature,
                )
                .is_ok()
        });
    if !verified {
        return Err(refused(
            "the id_token's signature does not verify with the tenant's published keys",
        ));
    }
    decode(c)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| refused("the id_token's claims cannot be read"))
}

/// Checks the claims against the tenant's issuer, the app and the pending sign-in's nonce.
fn check_claims(
    claims: Value,
    issuer: &str,
    client_id: &str,
    nonce: &str,
    now_secs: i64,
) -> Result<IdClaims, AppError> {
    let claims: IdClaims = serde_json::from_value(claims)
        .map_err(|e| refused(format!("the id_token lacks a claim Behalf needs: {e}")))?;
    if claims.iss != issuer {
        return Err(refused(format!(
            "the id_token's issuer (iss) is {}, not the tenant's {issuer}",
            claims.iss
        )));
    }
    let tid_issuer = claims.tid.as_deref().is_some_and(|tid| {
        issuer
            .trim_end_matches("/v2.0")
            .ends_with(&format!("/{tid}"))
    });
    if !tid_issuer {
        return Err(refused(
            "the id_token's tenant (tid) is not the configured tenant",
        ));
    }
    let for_us = match &claims.aud {
        Value::String(a) => a == client_id,
        Value::Array(all) => all.iter().any(|a| a.as_str() == Some(client_id)),
        _ => false,
    };
    if !for_us {
        return Err(refused(
            "the id_token's audience (aud) is not oidc.client_id",
        ));
    }
    if claims.exp + SKEW_SECS <= now_secs {
        return Err(refused("the id_token has expired (exp)"));
    }
    if claims.nbf.is_some_and(|nbf| nbf - SKEW_SECS > now_secs) {
        return Err(refused("the id_token is not valid yet (nbf)"));
    }
    if claims.nonce.as_deref() != Some(nonce) {
        return Err(refused(
            "the id_token's nonce is not this sign-in's: start again",
        ));
    }
    Ok(claims)
}

impl App {
    /// Whether admins may sign in with Entra ID (`[oidc] enabled`).
    pub fn oidc_enabled(&self) -> bool {
        self.config().oidc.enabled
    }

    fn oidc_http(&self) -> Result<&reqwest::Client, AppError> {
        if let Some(c) = self.inner.oidc.http.get() {
            return Ok(c);
        }
        let client =
            behalf_graph::http_client(&graph_settings::tls(self.config()), Duration::from_secs(30))
                .map_err(|e| AppError::NotConfigured(e.to_string()))?;
        Ok(self.inner.oidc.http.get_or_init(|| client))
    }

    /// Starts a sign-in: the URL of Entra ID's authorize endpoint to send the browser to.
    /// `login_hint` (an email) pre-fills the account.
    pub fn oidc_start(&self, login_hint: Option<&str>) -> Result<String, AppError> {
        let s = settings(self.config())?;
        let state = random_b64(32);
        let nonce = random_b64(32);
        let verifier = random_b64(32);
        let challenge = s256(&verifier);
        {
            let mut pending = self
                .inner
                .oidc
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            pending.retain(|_, p| p.started.elapsed() < OIDC_LOGIN_LIFETIME);
            if pending.len() >= MAX_PENDING {
                return Err(AppError::RateLimited {
                    retry_after_secs: 60,
                });
            }
            pending.insert(
                state.clone(),
                Pending {
                    nonce: nonce.clone(),
                    verifier: Secret::new(verifier),
                    started: Instant::now(),
                },
            );
        }
        let mut url = reqwest::Url::parse(&format!("{}/oauth2/v2.0/authorize", s.authority))
            .map_err(|e| AppError::invalid("entra.login_base_url", e.to_string()))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", s.client_id)
                .append_pair("response_type", "code")
                .append_pair("redirect_uri", s.redirect_url)
                .append_pair("response_mode", "query")
                .append_pair("scope", "openid profile email")
                .append_pair("state", &state)
                .append_pair("nonce", &nonce)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            if let Some(hint) = login_hint.filter(|h| !h.trim().is_empty()) {
                q.append_pair("login_hint", hint.trim());
            }
        }
        Ok(url.into())
    }

    /// Finishes a sign-in with what the browser brought back; opens a panel session.
    pub async fn oidc_finish(
        &self,
        code: &str,
        state: &str,
        address: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<SignedIn, AppError> {
        let s = settings(self.config())?;
        // Single use: taken out whatever happens next.
        let pending = self
            .inner
            .oidc
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(state)
            .filter(|p| p.started.elapsed() < OIDC_LOGIN_LIFETIME)
            .ok_or_else(expired_state)?;
        let http = self.oidc_http()?;
        let upstream = |e: reqwest::Error| AppError::Upstream {
            status: e.status().map(|s| s.as_u16()),
            code: None,
            message: format!("Entra ID cannot be reached: {e}"),
            request_id: None,
        };

        let answer = http
            .post(format!("{}/oauth2/v2.0/token", s.authority))
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", s.client_id),
                ("client_secret", s.client_secret.expose()),
                ("code", code),
                ("redirect_uri", s.redirect_url),
                ("code_verifier", pending.verifier.expose()),
                ("scope", "openid profile email"),
            ])
            .send()
            .await
            .map_err(upstream)?;
        let status = answer.status();
        let body: Value = answer.json().await.map_err(upstream)?;
        if !status.is_success() {
            let description = body["error_description"].as_str().unwrap_or_default();
            return Err(AppError::Upstream {
                status: Some(status.as_u16()),
                code: body["error"].as_str().map(str::to_owned),
                message: format!(
                    "Entra ID refused the sign-in: {}",
                    description.lines().next().unwrap_or("no reason given")
                ),
                request_id: body["trace_id"].as_str().map(str::to_owned),
            });
        }
        let id_token = body["id_token"]
            .as_str()
            .ok_or_else(|| refused("Entra ID answered no id_token"))?;

        let discovery: Value = http
            .get(format!(
                "{}/v2.0/.well-known/openid-configuration",
                s.authority
            ))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(upstream)?
            .json()
            .await
            .map_err(upstream)?;
        let issuer = discovery["issuer"]
            .as_str()
            .ok_or_else(|| refused("the tenant's discovery document names no issuer"))?;
        let jwks_uri = discovery["jwks_uri"]
            .as_str()
            .ok_or_else(|| refused("the tenant's discovery document names no jwks_uri"))?;
        #[derive(Deserialize)]
        struct Jwks {
            keys: Vec<Jwk>,
        }
        let jwks: Jwks = http
            .get(jwks_uri)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(upstream)?
            .json()
            .await
            .map_err(upstream)?;

        let claims = verify_rs256(id_token, &jwks.keys)?;
        let claims = check_claims(
            claims,
            issuer,
            s.client_id,
            &pending.nonce,
            now_millis() / 1000,
        )?;
        let email = claims
            .preferred_username
            .as_deref()
            .map(|u| u.trim().to_lowercase())
            .filter(|u| u.contains('@'))
            .ok_or_else(|| refused("the id_token has no preferred_username (an email)"))?;

        let refuse = |needed: &'static str| {
            let email = email.clone();
            async move {
                self.audit(
                    "anonymous".into(),
                    EventAction::AdminSignInRefused,
                    Outcome::Failure,
                    EventDetail::default()
                        .with("email", &email)
                        .with("via", "oidc")
                        .with("address", address),
                )
                .await?;
                Err::<SignedIn, _>(AppError::Forbidden { needed })
            }
        };
        let Some((role, can_edit_users)) = map_role(s.oidc, &claims.groups, &claims.roles) else {
            if claims.groups.is_empty() && claims.claim_names.is_some() {
                return refuse(
                    "an Entra ID group mapped to a Behalf role, but the id_token's groups claim overflowed (too many groups): map app roles ([oidc] *_roles, the roles claim) instead",
                )
                .await;
            }
            return refuse(
                "an Entra ID group or app role mapped to a Behalf role: the id_token's groups and roles claims name none of [oidc] owner_groups, admin_groups, editor_groups, viewer_groups, owner_roles, admin_roles or viewer_roles",
            )
            .await;
        };
        let admin = match self.upsert_oidc_admin(&email, role, can_edit_users).await {
            Ok(a) => a,
            Err(AppError::Forbidden { needed }) => return refuse(needed).await,
            Err(e) => return Err(e),
        };
        self.audit(
            format!("admin:{}", admin.username),
            EventAction::AdminSignedIn,
            Outcome::Success,
            EventDetail::default()
                .with("via", "oidc")
                .with("oid", claims.oid.as_deref())
                .with("address", address),
        )
        .await?;
        self.open_session(admin, address, user_agent).await
    }

    /// The admin `email` with the role Entra ID's claims give: created (without a password) on
    /// their first sign-in, their role updated on every later one. The workspace's last owner is
    /// not demoted by a sign-in (an owner would have to do it).
    async fn upsert_oidc_admin(
        &self,
        email: &str,
        role: Role,
        can_edit_users: bool,
    ) -> Result<Admin, AppError> {
        let store = self.store();
        let workspace = self.workspace().id;
        if let Some((mut admin, _)) = store.find_admin(workspace, email).await? {
            if admin.role == role && admin.can_edit_users == can_edit_users {
                return Ok(admin);
            }
            if admin.role == Role::Owner
                && role != Role::Owner
                && store.count_owners(workspace).await? <= 1
            {
                tracing::warn!(
                    admin = %admin.username,
                    "Entra ID maps the workspace's last owner to a lesser role; they stay owner"
                );
                return Ok(admin);
            }
            store
                .set_admin_role(workspace, admin.id, role, can_edit_users)
                .await?;
            admin.role = role;
            admin.can_edit_users = can_edit_users;
            return Ok(admin);
        }
        store
            .create_admin(workspace, email, role, can_edit_users, None)
            .await
            .map_err(|e| match e {
                // Not found for sign-in but there: a disabled admin.
                StoreError::UniqueViolation { .. } => AppError::Forbidden {
                    needed: "an admin account that is not disabled in Behalf",
                },
                other => other.into(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(f: impl FnOnce(&mut OidcConfig)) -> OidcConfig {
        let mut c = OidcConfig::default();
        f(&mut c);
        c
    }

    #[test]
    fn the_highest_mapped_role_wins_and_none_is_refused() {
        let c = config(|c| {
            c.owner_groups = vec!["G-OWNER".into()];
            c.editor_groups = vec!["g-editor".into()];
            c.admin_groups = vec!["g-admin".into()];
            c.viewer_groups = vec!["g-viewer".into()];
            c.viewer_roles = vec!["Behalf.Viewer".into()];
            c.owner_roles = vec!["Behalf.Owner".into()];
        });
        let g = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            map_role(&c, &g(&["g-viewer", "g-owner"]), &[]),
            Some((Role::Owner, true))
        );
        assert_eq!(
            map_role(&c, &g(&["g-admin", "g-editor"]), &[]),
            Some((Role::Admin, true))
        );
        assert_eq!(
            map_role(&c, &g(&["g-admin"]), &[]),
            Some((Role::Admin, false))
        );
        assert_eq!(
            map_role(&c, &[], &g(&["Behalf.Viewer"])),
            Some((Role::Viewer, false))
        );
        assert_eq!(
            map_role(&c, &g(&["g-viewer"]), &g(&["Behalf.Owner"])),
            Some((Role::Owner, true))
        );
        assert_eq!(map_role(&c, &g(&["other"]), &g(&["behalf.owner"])), None);
    }

    /// Signs `claims` with a fresh RSA key: (token, the key as a JWK).
    fn signed(claims: &Value) -> (String, Jwk) {
        use aws_lc_rs::signature::KeyPair as _;
        let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"k1"}"#);
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
        let input = format!("{header}.{body}");
        let mut sig = vec![0u8; key.public_modulus_len()];
        key.sign(
            &aws_lc_rs::signature::RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .unwrap();
        let public = key.public_key();
        let components: aws_lc_rs::rsa::PublicKeyComponents<Vec<u8>> = public.into();
        let jwk = Jwk {
            kty: "RSA".into(),
            kid: Some("k1".into()),
            n: Some(URL_SAFE_NO_PAD.encode(&components.n)),
            e: Some(URL_SAFE_NO_PAD.encode(&components.e)),
        };
        (format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)), jwk)
    }

    #[test]
    fn only_an_untampered_token_from_the_tenant_for_the_app_passes() {
        let iss = "https://login.example/tid-1/v2.0";
        let claims = serde_json::json!({"iss": iss, "aud": "app", "exp": 2_000, "nbf": 1_000,
            "nonce": "n", "tid": "tid-1", "preferred_username": "A@x.example", "groups": ["g"]});
        let (token, jwk) = signed(&claims);
        let keys = [jwk];
        let verified = verify_rs256(&token, &keys).unwrap();
        assert!(check_claims(verified.clone(), iss, "app", "n", 1_500).is_ok());

        // A flipped byte in the claims, or in the signature.
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        let mut body = URL_SAFE_NO_PAD.decode(&parts[1]).unwrap();
        body[10] ^= 1;
        parts[1] = URL_SAFE_NO_PAD.encode(body);
        assert!(verify_rs256(&parts.join("."), &keys).is_err());
        let mut sig = URL_SAFE_NO_PAD
            .decode(token.rsplit('.').next().unwrap())
            .unwrap();
        sig[0] ^= 1;
        let forged = format!(
            "{}.{}",
            token.rsplit_once('.').unwrap().0,
            URL_SAFE_NO_PAD.encode(sig)
        );
        assert!(verify_rs256(&forged, &keys).is_err());
        // Another key.
        let (_, other) = signed(&claims);
        assert!(verify_rs256(&token, &[other]).is_err());

        let refused_for = |iss: &str, client: &str, nonce: &str, now: i64| {
            check_claims(verified.clone(), iss, client, nonce, now)
                .unwrap_err()
                .to_string()
        };
        assert!(refused_for("https://login.example/other/v2.0", "app", "n", 1_500).contains("iss"));
        assert!(refused_for(iss, "other-app", "n", 1_500).contains("aud"));
        assert!(refused_for(iss, "app", "other", 1_500).contains("nonce"));
        assert!(refused_for(iss, "app", "n", 2_000 + SKEW_SECS).contains("exp"));
        assert!(refused_for(iss, "app", "n", 1_000 - SKEW_SECS - 1).contains("nbf"));
        let mut wrong_tid = verified.clone();
        wrong_tid["tid"] = "tid-2".into();
        assert!(
            check_claims(wrong_tid, iss, "app", "n", 1_500)
                .unwrap_err()
                .to_string()
                .contains("tid")
        );
    }
}
