//! Behalf's HTTP face: the REST API (`/api/v1`, documented at `/api/v1/openapi.json`, Swagger UI
//! at `/api/docs`), health (`/healthz`, `/readyz`) and `/metrics`. Every handler is thin: who is
//! calling (an extractor), what they sent, one call into the application layer.
#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod behalf_key;
mod metrics;
mod oidc;
pub mod panel;
pub mod problem;
pub mod scim;
mod setup_page;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use behalf_app::App;
use serde_json::json;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa_swagger_ui::SwaggerUi;

pub use metrics::Metrics;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct ServerState {
    pub app: App,
    pub metrics: Arc<Metrics>,
    /// Behalf Key requests' nonces seen recently (replay protection, `/key/v1`).
    pub key_nonces: Arc<behalf_key::SeenNonces>,
}

impl ServerState {
    pub fn new(app: App) -> ServerState {
        ServerState {
            app,
            metrics: Arc::new(Metrics::default()),
            key_nonces: Arc::new(behalf_key::SeenNonces::default()),
        }
    }
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The application's routes.
pub fn router(state: ServerState) -> Router {
    let (api, openapi) = api::router();
    let request_id = REQUEST_ID.clone();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/setup", get(setup_page::show).post(setup_page::submit))
        .route("/auth/oidc/start", get(oidc::start))
        .route("/auth/oidc/callback", get(oidc::callback))
        .merge(api)
        .nest("/scim/v2", scim::router())
        .nest("/key/v1", behalf_key::router())
        .merge(panel::router())
        .merge(SwaggerUi::new("/api/docs").url("/api/v1/openapi.json", openapi))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                |request: &axum::http::Request<_>| {
                    let id = request
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    // The path only: a query string may carry a setup token.
                    tracing::info_span!("request", method = %request.method(), path = %loggable_path(request.uri().path()), request_id = %id)
                },
            ),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(SetResponseHeaderLayer::overriding(
            axum::http::header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            axum::http::header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .with_state(state)
}

/// A request's path as the log shows it: a password-reset link's path holds its token, a
/// secret, which is left out.
fn loggable_path(path: &str) -> &str {
    if path.starts_with(behalf_app::ops::reset::RESET_PATH) {
        "/password/reset/<token>"
    } else {
        path
    }
}

async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

async fn readyz(State(state): State<ServerState>) -> impl IntoResponse {
    let store = state.app.store();
    match store.readiness().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"status": "ready", "database": store.backend().name()})),
        ),
        Err(e) => {
            // The reason goes to the log; the probe only needs to know it is not ready.
            tracing::warn!(error = %e, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "not ready"})),
            )
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: ServerState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Binds `addr`; port 0 picks a free port (read it back from the listener).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
