//! Authentication methods: FIDO2 creation options and registration on behalf of a user
//! (<https://learn.microsoft.com/graph/api/fido2authenticationmethod-creationoptions>,
//! <https://learn.microsoft.com/graph/api/authentication-post-fido2methods>), listing / deleting
//! passkeys, and the list of all of a user's methods (Temporary Access Passes are in `taps`).
//!
//! Registration is verified the way Entra does: the challenge must be one this tenant issued for
//! that user, unexpired and unused; only `packed` and `none` attestation; the FIDO2 policy's
//! enforcement of attestation and key restrictions; no credential registered twice. The WebAuthn
//! ceremony itself (client data type and origin, rpIdHash, UP/UV, attestation signature and x5c
//! chain) is checked by webauthn-rs-core, not by hand.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Value, json};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use webauthn_rs_core::error::WebauthnError;
use webauthn_rs_core::proto::{
    AttestationCaList, AttestationConveyancePreference, AuthenticatorAttachment,
    AuthenticatorAttestationResponseRaw, COSEAlgorithm, ParsedAttestationData,
    RegisterPublicKeyCredential, UserVerificationPolicy,
};

use crate::config::CredentialIdEncoding;
use crate::errors::{Result, SandboxError};
use crate::oauth::Caller;
use crate::server::ApiVersion;
use crate::state::{Fido2Method, PendingChallenge, Shared, Stats, iso};
use crate::users::{self, context};

/// Entra's passkey relying party id; clientDataJSON's origin is `https://` + rp.id.
pub(crate) const RP_ID: &str = "login.microsoft.com";
pub(crate) const ORIGIN: &str = "https://login.microsoft.com";

pub(crate) const METHODS_READ: &[&str] = &[
    "UserAuthenticationMethod.Read.All",
    "UserAuthenticationMethod.ReadWrite.All",
    "UserAuthenticationMethod.Read",
    "UserAuthenticationMethod.ReadWrite",
    "UserAuthMethod-Passkey.Read.All",
    "UserAuthMethod-Passkey.ReadWrite.All",
];
pub(crate) const PASSKEY_WRITE: &[&str] = &[
    "UserAuthenticationMethod.ReadWrite.All",
    "UserAuthMethod-Passkey.ReadWrite.All",
];

/// Base64url that tolerates a client adding `=` padding.
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A few well-known authenticator models by AAGUID (Graph reports the model from FIDO MDS).
fn model_for(aaguid: &Uuid) -> Option<String> {
    let known: &[(&str, &str)] = &[
        ("cb69481e-8ff7-4039-93ec-0a2729a154a8", "YubiKey 5 Series"),
        ("ee882879-721c-4913-9775-3dfcce97072a", "YubiKey 5 Series"),
        (
            "2fc0579f-8113-47ea-b116-bb5a8db9202a",
            "YubiKey 5 Series with NFC",
        ),
        (
            "a4e9fc6d-4cbe-4758-b8ba-37598bb5bbaa",
            "Security Key NFC by Yubico",
        ),
    ];
    let s = aaguid.to_string();
    known
        .iter()
        .find(|(id, _)| *id == s)
        .map(|(_, m)| m.to_string())
}

pub(crate) fn encode_credential_id(id: &[u8], enc: CredentialIdEncoding) -> String {
    match enc {
        CredentialIdEncoding::Base64Url => URL_SAFE_NO_PAD.encode(id),
        CredentialIdEncoding::Base64 => STANDARD.encode(id),
        // Graph beta: "Base64URL with a padding number suffix" — the digit is how many `=` were dropped.
        CredentialIdEncoding::Base64UrlPaddingDigit => {
            let s = URL_SAFE_NO_PAD.encode(id);
            let pad = (4 - s.len() % 4) % 4;
            format!("{s}{pad}")
        }
    }
}

pub(crate) fn method_id(cred_id: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(cred_id)[..16])
}

pub(crate) fn fido2_json(m: &Fido2Method) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.fido2AuthenticationMethod",
        "id": m.id,
        "displayName": m.display_name,
        "createdDateTime": iso(m.created),
        "aaGuid": m.aaguid,
        "model": m.model,
        "attestationCertificates": m.attestation_certificates,
        "attestationLevel": if m.attested { "attested" } else { "notAttested" },
        "passkeyType": "deviceBound",
    })
}

/// The user (position, id) a request is about, refusing the caller's own account: Graph answers
/// 405 for self-service operations on these on-behalf-of APIs.
pub(crate) fn target_user(
    shared: &Shared,
    caller: &Caller,
    key: &str,
    refuse_self: bool,
) -> Result<(u32, Uuid)> {
    let dir = shared.read();
    let pos = users::lookup(&dir, key)?;
    let id = dir.users[pos as usize].id;
    if refuse_self && caller.user == Some(id) {
        return Err(SandboxError::MethodNotAllowed(
            "Self-service operations are not supported by this API. Use the user's own registration experience.".into(),
        ));
    }
    Ok((pos, id))
}

/// The FIDO2 method policy must be enabled; v1.0 documents that self-service setup must be allowed too.
fn check_policy(shared: &Shared) -> Result<()> {
    let policy = shared.read().policy.clone();
    if policy.state != "enabled" {
        return Err(SandboxError::AccessDenied("The passkey (FIDO2) authentication method is disabled by the authentication methods policy.".into()));
    }
    if !policy.is_self_service_registration_allowed {
        return Err(SandboxError::BadRequestMethods(
            "Passkey registration requires 'Allow self-service set up' to be enabled in the passkey (FIDO2) authentication method policy.".into(),
        ));
    }
    Ok(())
}

/// `GET …/fido2Methods/{id}`, which also serves `creationOptions` and
/// `creationOptions(challengeTimeoutInMinutes=N)` (the function call is one path segment).
pub(crate) async fn get_fido2_or_options(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Extension(v): Extension<ApiVersion>,
    Path((key, method)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    if let Some(rest) = method.strip_prefix("creationOptions") {
        return creation_options(&shared, &caller, v, &key, rest, raw.as_deref()).map(Json);
    }
    caller.require(METHODS_READ)?;
    let (pos, _) = target_user(&shared, &caller, &key, false)?;
    let dir = shared.read();
    let m = dir
        .fido2
        .get(&pos)
        .and_then(|ms| ms.iter().find(|m| m.id == method))
        .ok_or_else(|| SandboxError::NotFound(method.clone()))?;
    let mut body = fido2_json(m);
    body["@odata.context"] = json!(context(
        &shared,
        v,
        &format!("users('{key}')/authentication/fido2Methods/$entity"),
        None
    ));
    Ok(Json(body))
}

fn parse_timeout(v: ApiVersion, function_args: &str, raw_query: Option<&str>) -> Result<u32> {
    let bad = |given: &str| {
        SandboxError::BadRequestMethods(format!(
            "Invalid value '{given}' for challengeTimeoutInMinutes: it must be an integer between 5 and 43200."
        ))
    };
    let mut given: Option<String> = None;
    let args = function_args.trim();
    if !args.is_empty() {
        let inner = args
            .strip_prefix('(')
            .and_then(|a| a.strip_suffix(')'))
            .ok_or_else(|| SandboxError::NoRoute(format!("creationOptions{args}")))?;
        for kv in inner.split(',').filter(|s| !s.trim().is_empty()) {
            match kv.split_once('=') {
                Some((k, val)) if k.trim().eq_ignore_ascii_case("challengeTimeoutInMinutes") => {
                    given = Some(val.trim().to_string())
                }
                _ => {
                    return Err(SandboxError::BadRequestMethods(format!(
                        "Unknown function parameter '{kv}'."
                    )));
                }
            }
        }
    }
    if given.is_none() {
        given = url::form_urlencoded::parse(raw_query.unwrap_or("").as_bytes())
            .find(|(k, _)| k.eq_ignore_ascii_case("challengeTimeoutInMinutes"))
            .map(|(_, v)| v.into_owned());
    }
    match (v, given) {
        (_, None) => Ok(5),
        // v1.0 applies a fixed system timeout of 5 minutes and takes no parameter.
        (ApiVersion::V1, Some(g)) => Err(SandboxError::BadRequestMethods(format!(
            "challengeTimeoutInMinutes ('{g}') is not supported in v1.0: the challenge timeout is fixed at 5 minutes."
        ))),
        (ApiVersion::Beta, Some(g)) => match g.parse::<u32>() {
            Ok(n) if (5..=43_200).contains(&n) => Ok(n),
            _ => Err(bad(&g)),
        },
    }
}

fn creation_options(
    shared: &Shared,
    caller: &Caller,
    v: ApiVersion,
    key: &str,
    function_args: &str,
    raw_query: Option<&str>,
) -> Result<Value> {
    caller.require(PASSKEY_WRITE)?;
    let minutes = parse_timeout(v, function_args, raw_query)?;
    let (pos, user_id) = target_user(shared, caller, key, true)?;
    creation_options_for(shared, pos, user_id, minutes, v)
}

/// Creation options for user `pos` (`user_id`), whoever asks: Graph on the user's behalf, or the
/// user signed in to My Security Info (`selfservice`).
pub(crate) fn creation_options_for(
    shared: &Shared,
    pos: u32,
    user_id: Uuid,
    minutes: u32,
    v: ApiVersion,
) -> Result<Value> {
    check_policy(shared)?;
    let (upn, display_name, existing) = {
        let dir = shared.read();
        let u = &dir.users[pos as usize];
        let existing: Vec<Vec<u8>> = dir
            .fido2
            .get(&pos)
            .map(|ms| {
                ms.iter()
                    .map(|m| m.credential.cred_id.as_slice().to_vec())
                    .collect()
            })
            .unwrap_or_default();
        (u.upn.clone(), u.display_name.clone(), existing)
    };
    let webauthn_err =
        |e: WebauthnError| SandboxError::Internal(format!("creating the challenge failed: {e}"));
    let builder = shared
        .webauthn
        .new_challenge_register_builder(user_id.as_bytes(), &upn, &display_name)
        .map_err(webauthn_err)?
        .attestation(AttestationConveyancePreference::Direct)
        .user_verification_policy(UserVerificationPolicy::Required)
        .credential_algorithms(vec![COSEAlgorithm::ES256, COSEAlgorithm::RS256])
        .require_resident_key(true)
        .authenticator_attachment(Some(AuthenticatorAttachment::CrossPlatform));
    let (ccr, reg_state) = shared
        .webauthn
        .generate_challenge_register(builder)
        .map_err(webauthn_err)?;
    // The challenge string as issued; the verifier later compares clientData's challenge verbatim.
    let ccr_json = serde_json::to_value(&ccr).map_err(|e| SandboxError::Internal(e.to_string()))?;
    let challenge = ccr_json["publicKey"]["challenge"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let now = shared.clock.now_ms();
    let expires = now + i64::from(minutes) * 60_000;
    {
        let mut eph = shared.eph();
        // Forget challenges that can no longer be used, so the cache stays bounded.
        eph.challenges.retain(|_, c| c.expires > now);
        eph.challenges.insert(
            challenge.clone(),
            PendingChallenge {
                user: user_id,
                expires,
                state: reg_state,
            },
        );
    }
    let enc = shared.knobs().exclude_credentials_encoding;
    let exclude: Vec<Value> = existing
        .iter()
        .map(|id| json!({"type": "public-key", "id": encode_credential_id(id, enc), "transports": []}))
        .collect();
    Ok(json!({
        "@odata.context": format!("{}/$metadata#microsoft.graph.webauthnCredentialCreationOptions", shared.graph_base(v.as_str())),
        "challengeTimeoutDateTime": iso(expires),
        "publicKey": {
            "challenge": challenge,
            "timeout": u64::from(minutes) * 60_000,
            "attestation": "direct",
            "rp": {"id": RP_ID, "name": "Microsoft"},
            "user": {"id": URL_SAFE_NO_PAD.encode(user_id.as_bytes()), "name": upn, "displayName": display_name},
            "pubKeyCredParams": [{"type": "public-key", "alg": -7}, {"type": "public-key", "alg": -257}],
            "excludeCredentials": exclude,
            "authenticatorSelection": {
                "authenticatorAttachment": "cross-platform",
                "requireResidentKey": true,
                "userVerification": "required"
            },
            "extensions": {
                "hmacCreateSecret": true,
                "enforceCredentialProtectionPolicy": true,
                "credentialProtectionPolicy": "userVerificationOptional"
            }
        }
    }))
}

/// What the sandbox reads from the attestation object itself. webauthn-rs-core verifies the
/// statement but does not expose the format name before verifying, nor the AAGUID for `none`
/// attestation, nor the raw x5c for thumbprints; this is that glue, parsing only (no crypto).
struct AttestationGlue {
    fmt: String,
    aaguid: Uuid,
    credential_id: Vec<u8>,
    x5c: Vec<Vec<u8>>,
}

fn parse_attestation_object(bytes: &[u8]) -> Result<AttestationGlue> {
    use ciborium::value::Value as Cbor;
    let bad = |what: &str| {
        SandboxError::InvalidRegistration(format!("The attestationObject is malformed: {what}."))
    };
    let value: Cbor = ciborium::de::from_reader(bytes).map_err(|_| bad("not CBOR"))?;
    let Cbor::Map(entries) = value else {
        return Err(bad("not a CBOR map"));
    };
    let field = |name: &str| {
        entries
            .iter()
            .find(|(k, _)| k.as_text() == Some(name))
            .map(|(_, v)| v)
    };
    let fmt = field("fmt")
        .and_then(Cbor::as_text)
        .ok_or_else(|| bad("no fmt"))?
        .to_string();
    let auth_data = field("authData")
        .and_then(Cbor::as_bytes)
        .ok_or_else(|| bad("no authData"))?;
    let x5c = field("attStmt")
        .and_then(Cbor::as_map)
        .and_then(|m| m.iter().find(|(k, _)| k.as_text() == Some("x5c")))
        .and_then(|(_, v)| v.as_array())
        .map(|certs| certs.iter().filter_map(|c| c.as_bytes().cloned()).collect())
        .unwrap_or_default();
    // authData: rpIdHash (32) | flags (1) | signCount (4) | AAGUID (16) | credIdLen (2) | credId | …
    if auth_data.len() < 55 || auth_data[32] & 0x40 == 0 {
        return Err(bad("authData carries no attested credential data"));
    }
    let aaguid = Uuid::from_slice(&auth_data[37..53]).map_err(|_| bad("AAGUID"))?;
    let len = u16::from_be_bytes([auth_data[53], auth_data[54]]) as usize;
    let credential_id = auth_data
        .get(55..55 + len)
        .ok_or_else(|| bad("credential id length"))?
        .to_vec();
    Ok(AttestationGlue {
        fmt,
        aaguid,
        credential_id,
        x5c,
    })
}

fn verification_failure(e: &WebauthnError) -> SandboxError {
    let why = match e {
        WebauthnError::InvalidClientDataType => "clientDataJSON.type must be 'webauthn.create'".to_string(),
        WebauthnError::MismatchedChallenge => "the challenge does not match the one issued".to_string(),
        WebauthnError::InvalidRPOrigin => format!("clientDataJSON.origin must be '{ORIGIN}'"),
        WebauthnError::InvalidRPIDHash => format!("the rpIdHash in authenticatorData is not SHA-256('{RP_ID}')"),
        WebauthnError::UserNotPresent => "the authenticator did not set the user-present flag".to_string(),
        WebauthnError::UserNotVerified => "user verification is required but the UV flag is not set".to_string(),
        WebauthnError::MissingAttestationCaList | WebauthnError::AttestationNotVerifiable => {
            "the attestation does not chain to a trusted attestation root, and the policy enforces attestation".to_string()
        }
        WebauthnError::AttestationUntrustedAaguid => "the attestation root does not vouch for this AAGUID".to_string(),
        WebauthnError::CredentialAlteredAlgFromRequest => "the credential's algorithm was not requested".to_string(),
        WebauthnError::CredentialCrossOrigin => "cross-origin registration is not allowed".to_string(),
        other => format!("attestation verification failed: {other}"),
    };
    SandboxError::InvalidRegistration(format!("The passkey registration was rejected: {why}."))
}

/// `POST /users/{id}/authentication/fido2Methods`
pub(crate) async fn register(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Extension(v): Extension<ApiVersion>,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let result = register_inner(&shared, &caller, v, &key, &body);
    match &result {
        Ok(_) => Stats::inc(&shared.stats.registrations),
        Err(_) => Stats::inc(&shared.stats.registrations_rejected),
    };
    result.map(|b| (StatusCode::CREATED, Json(b)).into_response())
}

fn register_inner(
    shared: &Shared,
    caller: &Caller,
    v: ApiVersion,
    key: &str,
    body: &Bytes,
) -> Result<Value> {
    caller.require(PASSKEY_WRITE)?;
    let (pos, user_id) = target_user(shared, caller, key, true)?;
    let mut body = register_for(shared, pos, user_id, body)?;
    body["@odata.context"] = json!(context(
        shared,
        v,
        &format!("users('{key}')/authentication/fido2Methods/$entity"),
        None
    ));
    Ok(body)
}

/// Verifies and registers a passkey for user `pos` (`user_id`), whoever sends it: Graph on the
/// user's behalf, or the user signed in to My Security Info (`selfservice`). The same checks
/// either way: the challenge, the FIDO2 policy, the attestation (webauthn-rs-core).
pub(crate) fn register_for(
    shared: &Shared,
    pos: u32,
    user_id: Uuid,
    body: &Bytes,
) -> Result<Value> {
    check_policy(shared)?;
    let m = users::parse_body(body)?;
    let missing =
        |what: &str| SandboxError::BadRequestMethods(format!("The request is missing '{what}'."));
    let display_name = m
        .get("displayName")
        .and_then(Value::as_str)
        .unwrap_or("Passkey")
        .to_string();
    let pkc = m
        .get("publicKeyCredential")
        .and_then(Value::as_object)
        .ok_or_else(|| missing("publicKeyCredential"))?;
    let response = pkc
        .get("response")
        .and_then(Value::as_object)
        .ok_or_else(|| missing("publicKeyCredential.response"))?;
    let b64 = |name: &str| -> Result<Vec<u8>> {
        let s = response
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| missing(&format!("publicKeyCredential.response.{name}")))?;
        URL_SAFE_LENIENT
            .decode(s)
            .map_err(|_| SandboxError::BadRequestMethods(format!("'{name}' is not base64url.")))
    };
    let client_data_json = b64("clientDataJSON")?;
    let attestation_object = b64("attestationObject")?;
    let pkc_id = pkc
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();

    // The challenge is an opaque string to clients: find it verbatim. Taking it out of the cache
    // makes it single use, whatever the outcome of this attempt.
    let client_data: Value = serde_json::from_slice(&client_data_json).map_err(|_| {
        SandboxError::InvalidRegistration(
            "The passkey registration was rejected: clientDataJSON is not JSON.".into(),
        )
    })?;
    let challenge = client_data
        .get("challenge")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let pending = shared.eph().challenges.remove(challenge);
    let Some(pending) = pending else {
        return Err(SandboxError::InvalidRegistration(
            "The passkey registration was rejected: the challenge was not issued by this tenant or has already been used.".into(),
        ));
    };
    if pending.user != user_id {
        return Err(SandboxError::InvalidRegistration(
            "The passkey registration was rejected: the challenge was issued for another user."
                .into(),
        ));
    }
    if shared.clock.now_ms() >= pending.expires {
        return Err(SandboxError::InvalidRegistration(
            "The passkey registration was rejected: the challenge has expired.".into(),
        ));
    }

    let glue = parse_attestation_object(&attestation_object)?;
    if glue.fmt != "packed" && glue.fmt != "none" {
        return Err(SandboxError::InvalidRegistration(format!(
            "The passkey registration was rejected: attestation format '{}' is not supported (only 'packed' and 'none').",
            glue.fmt
        )));
    }
    let policy = shared.read().policy.clone();
    if shared.read().cred_owner.contains_key(&glue.credential_id) {
        return Err(SandboxError::InvalidRegistration(
            "The passkey registration was rejected: this credential is already registered.".into(),
        ));
    }
    let kr = &policy.key_restrictions;
    if kr.is_enforced {
        let listed = kr
            .aa_guids
            .iter()
            .any(|g| Uuid::parse_str(g).is_ok_and(|g| g == glue.aaguid));
        let allowed = if kr.enforcement_type.eq_ignore_ascii_case("allow") {
            listed
        } else {
            !listed
        };
        if !allowed {
            return Err(SandboxError::InvalidRegistration(format!(
                "The passkey registration was rejected: the security key's AAGUID {} is not allowed by the passkey key restriction policy.",
                glue.aaguid
            )));
        }
    }
    let empty = AttestationCaList::default();
    let cas = if policy.is_attestation_enforced {
        if glue.fmt == "none" {
            return Err(SandboxError::InvalidRegistration(
                "The passkey registration was rejected: the policy enforces attestation and the key sent none.".into(),
            ));
        }
        Some(shared.attestation_cas.as_ref().unwrap_or(&empty))
    } else {
        None
    };
    let reg = RegisterPublicKeyCredential {
        id: pkc_id,
        raw_id: glue.credential_id.clone(),
        response: AuthenticatorAttestationResponseRaw {
            attestation_object,
            client_data_json,
            transports: None,
        },
        type_: "public-key".into(),
        extensions: Default::default(),
    };
    let credential = shared
        .webauthn
        .register_credential(&reg, &pending.state, cas)
        .map_err(|e| verification_failure(&e))?;
    let attested = matches!(
        credential.attestation.data,
        ParsedAttestationData::Basic(_) | ParsedAttestationData::AttCa(..)
    );
    if policy.is_attestation_enforced && !attested {
        return Err(SandboxError::InvalidRegistration(
            "The passkey registration was rejected: self attestation is not accepted while the policy enforces attestation.".into(),
        ));
    }
    let method = Fido2Method {
        id: method_id(&glue.credential_id),
        display_name,
        created: shared.clock.now_ms(),
        aaguid: glue.aaguid,
        model: model_for(&glue.aaguid),
        attestation_certificates: glue.x5c.iter().map(|c| hex(&Sha1::digest(c))).collect(),
        attested,
        credential,
    };
    let body = fido2_json(&method);
    let mut dir = shared.write();
    if dir.cred_owner.contains_key(&glue.credential_id) {
        return Err(SandboxError::InvalidRegistration(
            "The passkey registration was rejected: this credential is already registered.".into(),
        ));
    }
    dir.cred_owner.insert(glue.credential_id, pos);
    dir.fido2.entry(pos).or_default().push(method);
    Ok(body)
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `GET /users/{id}/authentication/fido2Methods`
pub(crate) async fn list_fido2(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Extension(v): Extension<ApiVersion>,
    Path(key): Path<String>,
) -> Result<Json<Value>> {
    caller.require(METHODS_READ)?;
    let (pos, _) = target_user(&shared, &caller, &key, false)?;
    let dir = shared.read();
    let value: Vec<Value> = dir
        .fido2
        .get(&pos)
        .map(|ms| ms.iter().map(fido2_json).collect())
        .unwrap_or_default();
    Ok(Json(json!({
        "@odata.context": context(&shared, v, &format!("users('{key}')/authentication/fido2Methods"), None),
        "value": value,
    })))
}

/// `DELETE /users/{id}/authentication/fido2Methods/{methodId}`
pub(crate) async fn delete_fido2(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path((key, method)): Path<(String, String)>,
) -> Result<StatusCode> {
    caller.require(PASSKEY_WRITE)?;
    let (pos, _) = target_user(&shared, &caller, &key, false)?;
    let mut dir = shared.write();
    let methods = dir.fido2.entry(pos).or_default();
    let i = methods
        .iter()
        .position(|m| m.id == method)
        .ok_or_else(|| SandboxError::NotFound(method.clone()))?;
    let removed = methods.remove(i);
    dir.cred_owner.remove(removed.credential.cred_id.as_slice());
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /users/{id}/authentication/methods`: password, passkeys and TAP.
pub(crate) async fn list_methods(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Extension(v): Extension<ApiVersion>,
    Path(key): Path<String>,
) -> Result<Json<Value>> {
    caller.require(METHODS_READ)?;
    let (pos, _) = target_user(&shared, &caller, &key, false)?;
    let now = shared.clock.now_ms();
    let dir = shared.read();
    let mut value = vec![json!({
        "@odata.type": "#microsoft.graph.passwordAuthenticationMethod",
        "id": "28c10230-6103-485e-b985-444c60001490",
        "password": null,
        "createdDateTime": iso(dir.users[pos as usize].created),
    })];
    value.extend(dir.fido2.get(&pos).into_iter().flatten().map(fido2_json));
    value.extend(
        dir.taps
            .get(&pos)
            .into_iter()
            .flatten()
            .map(|t| crate::taps::tap_json(t, now, None)),
    );
    Ok(Json(
        json!({"@odata.context": context(&shared, v, &format!("users('{key}')/authentication/methods"), None), "value": value}),
    ))
}
