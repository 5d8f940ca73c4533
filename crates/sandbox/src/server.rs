//! Routing, the per-request middleware (request ids, Graph authentication and throttling), and
//! the accept loop.
//!
//! The accept loop is our own (hyper directly, not `axum::serve`) for one reason: to emulate a
//! dropped connection the service must be able to fail a request so that hyper closes the socket
//! without writing any answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Extension;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use uuid::Uuid;

use crate::errors::{PendingError, SandboxError};
use crate::state::{Shared, Stats};
use crate::{
    admin, authmethods, delta, groups, oauth, oidc, policy, selfservice, signin, tap_policy, taps,
    throttle, users,
};

/// Which Graph version a request came in on (`v1.0` and `beta` share the data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ApiVersion {
    V1,
    Beta,
}

impl ApiVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "v1.0",
            ApiVersion::Beta => "beta",
        }
    }
}

fn graph_routes(shared: &Arc<Shared>, v: ApiVersion) -> Router<Arc<Shared>> {
    Router::new()
        .route("/users", get(users::list).post(users::create))
        .route("/users/delta", get(delta::users_delta))
        .route("/users/delta()", get(delta::users_delta))
        .route(
            "/users/{id}",
            get(users::get).patch(users::update).delete(users::delete),
        )
        .route(
            "/users/{id}/authentication/fido2Methods",
            get(authmethods::list_fido2).post(authmethods::register),
        )
        .route(
            "/users/{id}/authentication/fido2Methods/{method}",
            get(authmethods::get_fido2_or_options).delete(authmethods::delete_fido2),
        )
        .route(
            "/users/{id}/authentication/temporaryAccessPassMethods",
            get(taps::list_tap).post(taps::create_tap),
        )
        .route(
            "/users/{id}/authentication/temporaryAccessPassMethods/{method}",
            get(taps::get_tap).delete(taps::delete_tap),
        )
        .route(
            "/users/{id}/authentication/methods",
            get(authmethods::list_methods),
        )
        .route("/users/{id}/memberOf", get(groups::member_of))
        .route("/groups", get(groups::list).post(groups::create))
        .route("/groups/delta", get(delta::groups_delta))
        .route("/groups/delta()", get(delta::groups_delta))
        .route(
            "/groups/{id}",
            get(groups::get)
                .patch(groups::update)
                .delete(groups::delete),
        )
        .route("/groups/{id}/members", get(groups::members))
        .route("/groups/{id}/members/$ref", post(groups::add_member))
        .route(
            "/groups/{id}/members/{user}/$ref",
            axum::routing::delete(groups::remove_member),
        )
        .route(
            "/directory/deletedItems/microsoft.graph.user",
            get(users::list_deleted),
        )
        .route(
            "/directory/deletedItems/{id}",
            axum::routing::delete(users::purge),
        )
        .route("/directory/deletedItems/{id}/restore", post(users::restore))
        .route(
            "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2",
            get(policy::get_fido2).patch(policy::patch_fido2),
        )
        .route(
            "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass",
            get(tap_policy::get).patch(tap_policy::patch),
        )
        .fallback(no_route)
        .layer(middleware::from_fn_with_state(shared.clone(), graph_gate))
        .layer(Extension(v))
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .nest("/v1.0", graph_routes(&shared, ApiVersion::V1))
        .nest("/beta", graph_routes(&shared, ApiVersion::Beta))
        .route("/{tenant}/oauth2/v2.0/token", post(oauth::token))
        .route("/{tenant}/oauth2/v2.0/devicecode", post(oauth::devicecode))
        .route("/{tenant}/oauth2/v2.0/authorize", get(oidc::authorize))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(oidc::discovery),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(oidc::keys))
        .merge(admin::routes())
        .route("/sandbox/signin/begin", post(signin::begin))
        .route("/sandbox/signin/finish", post(signin::finish))
        .route("/sandbox/signin/tap", post(signin::tap))
        .route(
            "/sandbox/mysecurityinfo/fido2/creationOptions",
            get(selfservice::creation_options),
        )
        .route("/sandbox/mysecurityinfo/fido2", post(selfservice::register))
        .fallback(no_route)
        .layer(middleware::from_fn(request_ids))
        .with_state(shared)
}

async fn no_route(req: Request) -> SandboxError {
    SandboxError::NoRoute(req.uri().path().to_string())
}

/// Graph's gate: a valid token, then the throttling model; adds the resource-unit headers.
async fn graph_gate(State(shared): State<Arc<Shared>>, mut req: Request, next: Next) -> Response {
    let caller = match oauth::authenticate(&shared, req.headers()) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let method = req.method().clone();
    let admitted = match throttle::admit(&shared, caller.app_id, &method, req.uri().path()) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    req.extensions_mut().insert(caller);
    let mut resp = next.run(req).await;
    if method != Method::GET && resp.status().is_success() {
        Stats::inc(&shared.stats.writes);
    }
    let h = resp.headers_mut();
    h.insert(
        "x-ms-resource-unit",
        HeaderValue::from(admitted.resource_units),
    );
    if let Some(p) = admitted.limit_percentage
        && let Ok(v) = HeaderValue::from_str(&format!("{p:.1}"))
    {
        h.insert("x-ms-throttle-limit-percentage", v);
    }
    resp
}

/// Every answer carries `request-id` and `client-request-id`; error bodies carry them too.
pub(crate) async fn request_ids(req: Request, next: Next) -> Response {
    let request_id = Uuid::new_v4().to_string();
    let client_request_id = req
        .headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(String::from)
        .unwrap_or_else(|| request_id.clone());
    let resp = next.run(req).await;
    let (mut parts, body) = resp.into_parts();
    let date = time::OffsetDateTime::now_utc();
    let body = match parts.extensions.remove::<PendingError>() {
        None => body,
        Some(PendingError::Graph { code, message }) => {
            // Graph writes innerError.date without a zone designator.
            let d = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                date.year(),
                u8::from(date.month()),
                date.day(),
                date.hour(),
                date.minute(),
                date.second()
            );
            parts.headers.insert(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Body::from(
                json!({"error": {"code": code, "message": message, "innerError": {
                    "date": d, "request-id": request_id, "client-request-id": client_request_id}}})
                .to_string(),
            )
        }
        Some(PendingError::Aad {
            error,
            code,
            description,
        }) => {
            let ts = date
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            parts.headers.insert(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Body::from(
                json!({
                    "error": error,
                    "error_description": format!("{description}\r\nTrace ID: {request_id}\r\nCorrelation ID: {client_request_id}\r\nTimestamp: {ts}"),
                    "error_codes": [code],
                    "timestamp": ts,
                    "trace_id": request_id,
                    "correlation_id": client_request_id,
                    "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
                })
                .to_string(),
            )
        }
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        parts.headers.insert("request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&client_request_id) {
        parts.headers.insert("client-request-id", v);
    }
    Response::from_parts(parts, body)
}

/// A connection-level error: hyper closes the socket without writing an answer.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the sandbox's drop_every knob")
    }
}
impl std::error::Error for Dropped {}

/// Serves until `stop` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let app = router(shared.clone());
    let fault_counter = Arc::new(AtomicU64::new(0));
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.changed() => break,
        };
        let Ok((stream, _)) = accepted else {
            // Out of file descriptors and the like: back off briefly instead of spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let shared = shared.clone();
        let fault_counter = fault_counter.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let svc =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let app = app.clone();
                    let shared = shared.clone();
                    let fault_counter = fault_counter.clone();
                    async move {
                        Stats::inc(&shared.stats.requests);
                        let emulated = !req.uri().path().starts_with("/sandbox/");
                        // The round trip a client sees from Graph is its latency, Graph's own
                        // work included: the answer leaves `latency` after the request came in,
                        // however long handling it took here (unless that took longer). Adding
                        // the latency on top of the handling made the sandbox slower than the
                        // latency it was set to, by as much as its CPU was busy (a registration's
                        // attestation check, 64 at a time on a shared machine: 5–10 ms).
                        let mut answer_at = None;
                        if emulated {
                            let knobs = shared.knobs();
                            let n = fault_counter.fetch_add(1, Ordering::Relaxed) + 1;
                            if knobs.drop_every > 0 && n.is_multiple_of(knobs.drop_every) {
                                Stats::inc(&shared.stats.dropped);
                                return Err(Dropped);
                            }
                            if knobs.latency_ms > 0 {
                                answer_at = Some(
                                    tokio::time::Instant::now()
                                        + Duration::from_millis(knobs.latency_ms),
                                );
                            }
                        }
                        let path = req.uri().path();
                        let write = req.method() != hyper::Method::GET
                            && (path.starts_with("/v1.0/") || path.starts_with("/beta/"));
                        let resp = tower::ServiceExt::oneshot(app, req.map(Body::new))
                            .await
                            .unwrap_or_else(|e| match e {});
                        if let Some(at) = answer_at {
                            tokio::time::sleep_until(at).await;
                        }
                        if write {
                            let every = shared.knobs().drop_answer_every;
                            if every > 0
                                && Stats::inc(&shared.stats.writes_for_lost_answers)
                                    .is_multiple_of(every)
                            {
                                // Done, and the answer lost on the way back.
                                Stats::inc(&shared.stats.answers_dropped);
                                return Err(Dropped);
                            }
                        }
                        Ok::<_, Dropped>(resp)
                    }
                });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                }
            }
        });
    }
}
