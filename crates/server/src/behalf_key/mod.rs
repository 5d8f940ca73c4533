//! `/key/v1`: the routes Behalf Key, the browser extension, talks to (docs/BEHALF_KEY.md).
//!
//! Every request is signed with the device key (RFC 9421, `signature.rs`); none carries a
//! bearer secret, a cookie or a CSRF token. Each handler: the signature (its key found by
//! `keyid`, or for a pairing the key in the body) → the [`KeyHolder`] of that unrevoked device →
//! one call on it. Answers are JSON; a refusal is `{"error": <code>, "message": <words>}` with
//! the status [`KeyHttpError`] gives it.

mod signature;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, OriginalUri, Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use behalf_app::ops::behalf_key::{
    AssertRequest, AttestationRequest, DevicePublicKey, KeyFailure, KeyHolder, PairRequest,
    RegisterRequest,
};
use behalf_domain::Secret;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use signature::SignedRequest;
pub use signature::{SeenNonces, content_digest};

use crate::ServerState;

/// The routes under `/key/v1`.
pub fn router() -> Router<ServerState> {
    Router::new()
        .route("/pair", post(pair))
        .route("/me", get(me))
        .route("/credentials/find", post(find_credentials))
        .route("/assertions", post(assert))
        .route("/registrations", post(register))
        .route("/assertions/local", post(assert_local))
        .route("/requests", get(requests))
        .route("/requests/{id}/approve", post(approve))
        .route("/requests/{id}/attestation", post(attestation))
        .route("/requests/{id}/decline", post(decline))
}

/// A refusal, as the extension reads it.
#[derive(Debug)]
pub struct KeyHttpError(KeyFailure);

impl From<KeyFailure> for KeyHttpError {
    fn from(e: KeyFailure) -> Self {
        KeyHttpError(e)
    }
}

impl IntoResponse for KeyHttpError {
    fn into_response(self) -> Response {
        let failure = self.0;
        let status = match &failure {
            KeyFailure::SignatureInvalid | KeyFailure::DeviceRevoked => StatusCode::UNAUTHORIZED,
            KeyFailure::PairingCodeInvalid
            | KeyFailure::PinPolicy(_)
            | KeyFailure::Invalid { .. } => StatusCode::BAD_REQUEST,
            KeyFailure::PinInvalid { .. } | KeyFailure::PinRequired => StatusCode::FORBIDDEN,
            KeyFailure::PinBlocked => StatusCode::LOCKED,
            KeyFailure::NoCredential | KeyFailure::UnknownUser => StatusCode::NOT_FOUND,
            KeyFailure::NotAdmin => StatusCode::FORBIDDEN,
            KeyFailure::NotSupported(_) => StatusCode::BAD_REQUEST,
            KeyFailure::Excluded => StatusCode::CONFLICT,
            KeyFailure::NoRequest => StatusCode::NOT_FOUND,
            KeyFailure::RequestExpired => StatusCode::GONE,
            KeyFailure::Upstream(_) => StatusCode::BAD_GATEWAY,
            KeyFailure::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if let KeyFailure::Internal(cause) = &failure {
            tracing::error!(%cause, "a Behalf Key request failed");
        }
        let mut body = json!({"error": failure.code(), "message": failure.to_string()});
        if let KeyFailure::PinInvalid { retries } = failure {
            body["retries"] = json!(retries);
        }
        (status, Json(body)).into_response()
    }
}

type KeyResult = Result<Response, KeyHttpError>;

/// The URI the extension signed (RFC 9421 §2.2.2 `@target-uri`): under `mail.public_url` when
/// Behalf is reached through a proxy that terminates TLS, else as this server was addressed.
fn target_uri(state: &ServerState, headers: &HeaderMap, uri: &Uri) -> String {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    match state.app.config().mail.public_url.as_deref() {
        Some(public) => format!("{}{path}", public.trim_end_matches('/')),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default();
            format!("http://{host}{path}")
        }
    }
}

fn now_secs() -> i64 {
    behalf_domain::now_millis() / 1000
}

/// The request's signature checked with `key`, and its nonce not seen before.
fn verified(
    state: &ServerState,
    request: &SignedRequest,
    key: &DevicePublicKey,
) -> Result<(), KeyFailure> {
    let now = now_secs();
    request.verify(key, now)?;
    if !state
        .key_nonces
        .first_time(&request.keyid, &request.nonce, now)
    {
        return Err(KeyFailure::SignatureInvalid);
    }
    Ok(())
}

/// A `/key/v1` request as it arrived: what its signature covers (the method, the URI it was
/// sent to, the headers and the body's bytes), read once by every handler.
pub struct KeyCall {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl std::fmt::Debug for KeyCall {
    // The body carries PINs and pairing codes: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCall")
            .field("method", &self.method)
            .field("path", &self.uri.path())
            .field("body", &"<hidden>")
            .finish()
    }
}

/// The largest body a Behalf Key request carries (an attestation object is a few hundred bytes).
const MAX_BODY: usize = 64 * 1024;

impl<S: Send + Sync> FromRequest<S> for KeyCall {
    type Rejection = KeyHttpError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        // Under `/key/v1` the router strips the prefix; the signature covers the whole URI.
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| parts.uri.clone(), |o| o.0.clone());
        let body = axum::body::to_bytes(body, MAX_BODY)
            .await
            .map_err(|_| KeyFailure::invalid("body", format!("at most {MAX_BODY} bytes")))?;
        Ok(KeyCall {
            method: parts.method,
            uri,
            headers: parts.headers,
            body,
        })
    }
}

impl KeyCall {
    fn signed(&self, state: &ServerState) -> Result<SignedRequest, KeyFailure> {
        SignedRequest::parse(
            &self.method,
            &target_uri(state, &self.headers, &self.uri),
            &self.headers,
            &self.body,
        )
    }

    /// The device that signed the request, unrevoked.
    async fn holder<'a>(&self, state: &'a ServerState) -> Result<KeyHolder<'a>, KeyFailure> {
        let request = self.signed(state)?;
        let holder = state.app.key_holder(&request.keyid).await?;
        verified(state, &request, &holder.public_key()?)?;
        holder.touch().await?;
        Ok(holder)
    }

    fn json<T: DeserializeOwned>(&self) -> Result<T, KeyFailure> {
        serde_json::from_slice(&self.body).map_err(|e| KeyFailure::Invalid {
            field: "body",
            reason: format!("not the JSON this route takes: {e}"),
        })
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(field: &'static str, text: &str) -> Result<Vec<u8>, KeyFailure> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| KeyFailure::invalid(field, "must be base64url"))
}

#[derive(Deserialize)]
struct PairBody {
    code: Secret,
    device_name: String,
    public_key: Value,
    pin: Secret,
}

/// `POST /key/v1/pair`: signed with the key being registered, which its `keyid` names.
async fn pair(State(state): State<ServerState>, call: KeyCall) -> KeyResult {
    let request = call.signed(&state)?;
    let asked: PairBody = call.json()?;
    let public_key = DevicePublicKey::from_jwk(&asked.public_key)?;
    if request.keyid != public_key.thumbprint() {
        return Err(KeyFailure::SignatureInvalid.into());
    }
    verified(&state, &request, &public_key)?;
    let paired = state
        .app
        .pair_key_device(PairRequest {
            code: asked.code,
            device_name: asked.device_name,
            public_key,
            pin: asked.pin,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "device_id": paired.device.id,
            "role": paired.device.role,
            "user": {"upn": paired.user.upn.as_str(), "display_name": paired.user.display_name},
        })),
    )
        .into_response())
}

/// `GET /key/v1/me`: who this device is.
async fn me(State(state): State<ServerState>, call: KeyCall) -> KeyResult {
    let holder = call.holder(&state).await?;
    let device = holder.device();
    Ok(Json(json!({
        "device_id": device.id,
        "device_name": device.name,
        "role": device.role,
        "user": {"upn": holder.user().upn.as_str(), "display_name": holder.user().display_name},
        "pin_retries": holder.pin_retries().await?,
        "pending_requests": holder.key_requests().await?.len(),
    }))
    .into_response())
}

#[derive(Deserialize)]
struct FindBody {
    rp_id: String,
    #[serde(default)]
    allow_credentials: Vec<String>,
}

/// `POST /key/v1/credentials/find`: the user's credentials for an RP.
async fn find_credentials(State(state): State<ServerState>, call: KeyCall) -> KeyResult {
    let holder = call.holder(&state).await?;
    let asked: FindBody = call.json()?;
    let allow = asked
        .allow_credentials
        .iter()
        .map(|id| unb64("allow_credentials", id))
        .collect::<Result<Vec<_>, _>>()?;
    let found = holder.find_credentials(&asked.rp_id, &allow).await?;
    let credentials: Vec<Value> = found
        .iter()
        .map(|c| {
            json!({
                "id": b64(&c.id),
                "rp_id": c.rp_id,
                "user": {"id": b64(&c.user_handle), "name": c.user_name, "display_name": c.display_name},
                "kind": key_kind(c.kind),
            })
        })
        .collect();
    Ok(Json(json!({"credentials": credentials})).into_response())
}

#[derive(Deserialize)]
struct AssertBody {
    credential_id: String,
    rp_id: String,
    origin: String,
    client_data_hash: String,
    user_presence: bool,
    pin: Option<Secret>,
}

/// `POST /key/v1/assertions`: a sign-in signed with the user's vault key.
async fn assert(State(state): State<ServerState>, call: KeyCall) -> KeyResult {
    let holder = call.holder(&state).await?;
    let asked: AssertBody = call.json()?;
    if !asked.user_presence {
        // WebAuthn §6.3.3 step 6: Behalf Key always tests user presence; a request without it
        // was not approved by anyone.
        return Err(
            KeyFailure::invalid("user_presence", "the user must approve the sign-in").into(),
        );
    }
    let client_data_hash: [u8; 32] = unb64("client_data_hash", &asked.client_data_hash)?
        .try_into()
        .map_err(|_| KeyFailure::invalid("client_data_hash", "must be a SHA-256 (32 bytes)"))?;
    let signed = holder
        .assert(AssertRequest {
            credential_id: unb64("credential_id", &asked.credential_id)?,
            rp_id: asked.rp_id,
            origin: asked.origin,
            client_data_hash,
            pin: asked.pin,
        })
        .await?;
    Ok(Json(json!({
        "authenticator_data": b64(&signed.authenticator_data),
        "signature": b64(&signed.signature),
        "user_handle": b64(&signed.user_handle),
        "sign_count": signed.sign_count,
    }))
    .into_response())
}

#[derive(Deserialize)]
struct RegisterBody {
    for_user: String,
    rp: RegisterRp,
    user: RegisterUser,
    origin: String,
    client_data_hash: String,
    #[serde(default)]
    pub_key_cred_params: Vec<CredParam>,
    #[serde(default)]
    exclude_credentials: Vec<String>,
    pin: Option<Secret>,
}

#[derive(Deserialize)]
struct RegisterRp {
    id: String,
    name: Option<String>,
}

#[derive(Deserialize)]
struct RegisterUser {
    id: String,
    name: String,
    display_name: String,
}

#[derive(Deserialize)]
struct CredParam {
    #[serde(rename = "type")]
    kind: String,
    alg: i64,
}

/// `POST /key/v1/registrations`: an admin's device registers a credential at a website for a
/// user of Behalf, in that user's vault key.
async fn register(State(state): State<ServerState>, call: KeyCall) -> KeyResult {
    let holder = call.holder(&state).await?;
    let asked: RegisterBody = call.json()?;
    let client_data_hash: [u8; 32] = unb64("client_data_hash", &asked.client_data_hash)?
        .try_into()
        .map_err(|_| KeyFailure::invalid("client_data_hash", "must be a SHA-256 (32 bytes)"))?;
    let exclude = asked
        .exclude_credentials
        .iter()
        .map(|id| unb64("exclude_credentials", id))
        .collect::<Result<Vec<_>, _>>()?;
    let made = holder
        .register_on_behalf(RegisterRequest {
            for_user: asked.for_user,
            rp_id: asked.rp.id,
            rp_name: asked.rp.name,
            user_handle: unb64("user.id", &asked.user.id)?,
            user_name: asked.user.name,
            user_display_name: asked.user.display_name,
            origin: asked.origin,
            client_data_hash,
            algorithms: asked
                .pub_key_cred_params
                .iter()
                .filter(|p| p.kind == "public-key")
                .map(|p| p.alg)
                .collect(),
            exclude_credentials: exclude,
            pin: asked.pin,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "credential_id": b64(&made.credential_id),
            "attestation_object": b64(&made.attestation_object),
            "authenticator_data": b64(&made.authenticator_data),
            "public_key": b64(&made.public_key_spki),
            "public_key_algorithm": made.public_key_algorithm,
            "transports": ["internal"],
            "user": made.upn,
        })),
    )
        .into_response())
}

/// The kind of key a credential lives on, as the extension names it (SPEC §2: a `device`
/// security key is the "local" kind).
fn key_kind(kind: behalf_domain::SecurityKeyKind) -> &'static str {
    match kind {
        behalf_domain::SecurityKeyKind::Device => "local",
        other => other.as_str(),
    }
}

fn request_id(text: &str) -> Result<behalf_domain::KeyRequestId, KeyFailure> {
    text.parse()
        .map_err(|_| KeyFailure::invalid("id", "is not a request id"))
}

/// `GET /key/v1/requests`: the local-key registrations waiting for this device's user.
async fn requests(State(state): State<ServerState>, call: KeyCall) -> KeyResult {
    let holder = call.holder(&state).await?;
    let list: Vec<Value> = holder
        .key_requests()
        .await?
        .into_iter()
        .map(|r| {
            json!({
                "id": r.id, "rp_id": r.rp_id, "rp_name": r.rp_name, "asked_by": r.asked_by,
                "expires_at": behalf_domain::format_millis(r.expires_at),
            })
        })
        .collect();
    Ok(Json(json!({"requests": list})).into_response())
}

#[derive(Deserialize)]
struct ApproveBody {
    pin: Secret,
}

/// `POST /key/v1/requests/{id}/approve`: the user's PIN; fresh creation options back.
async fn approve(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    call: KeyCall,
) -> KeyResult {
    let holder = call.holder(&state).await?;
    let asked: ApproveBody = call.json()?;
    let approved = holder.approve_request(request_id(&id)?, &asked.pin).await?;
    Ok(Json(json!({"options": approved.options, "origin": approved.origin})).into_response())
}

#[derive(Deserialize)]
struct AttestationBody {
    credential_id: String,
    client_data_json: String,
    attestation_object: String,
}

/// `POST /key/v1/requests/{id}/attestation`: the credential the extension made; the engine
/// registers it (202: it is on its way; the job's item says when it is registered).
async fn attestation(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    call: KeyCall,
) -> KeyResult {
    let holder = call.holder(&state).await?;
    let asked: AttestationBody = call.json()?;
    holder
        .submit_attestation(
            request_id(&id)?,
            AttestationRequest {
                credential_id: unb64("credential_id", &asked.credential_id)?,
                client_data_json: unb64("client_data_json", &asked.client_data_json)?,
                attestation_object: unb64("attestation_object", &asked.attestation_object)?,
            },
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"state": "attested"}))).into_response())
}

/// `POST /key/v1/requests/{id}/decline`.
async fn decline(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    call: KeyCall,
) -> KeyResult {
    let holder = call.holder(&state).await?;
    holder.decline_request(request_id(&id)?).await?;
    Ok(Json(json!({"state": "declined"})).into_response())
}

#[derive(Deserialize)]
struct AssertLocalBody {
    credential_id: String,
    rp_id: String,
    origin: String,
    pin: Option<Secret>,
}

/// `POST /key/v1/assertions/local`: a sign-in with a local key, which the extension signs.
async fn assert_local(State(state): State<ServerState>, call: KeyCall) -> KeyResult {
    let holder = call.holder(&state).await?;
    let asked: AssertLocalBody = call.json()?;
    let verified = holder
        .assert_local(
            &unb64("credential_id", &asked.credential_id)?,
            &asked.rp_id,
            &asked.origin,
            asked.pin.as_ref(),
        )
        .await?;
    Ok(Json(json!({"user_verified": verified})).into_response())
}
