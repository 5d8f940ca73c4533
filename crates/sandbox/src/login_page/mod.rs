//! The sandbox's passkey sign-in page at `https://login.microsoft.com` (issue 17): a small page in
//! the manner of Microsoft's (a UPN field, "Sign in with a passkey") whose own script asks
//! `/sandbox/signin/begin` for the assertion options, calls `navigator.credentials.get` with
//! them and hands the assertion to `/sandbox/signin/finish`, where the sandbox's independent
//! verifier (webauthn-rs-core, [`crate::signin`]) checks it. So a browser signs in as a user
//! does, at the origin Entra's passkeys are bound to.
//!
//! It listens on 127.0.0.1 (a free port) over TLS with a certificate for `login.microsoft.com`
//! from a test CA made at start ([`tls`]). A browser reaches it under its real name by mapping
//! the name to that address (Chromium: `--host-resolver-rules="MAP login.microsoft.com
//! 127.0.0.1:PORT"`; the page's origin stays `https://login.microsoft.com`, port 443 as the page
//! sees it) and trusts the CA: Chromium refuses WebAuthn on a page with a certificate error.
//! Off unless [`crate::SandboxConfig::login_page`] asks for it.

mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::errors::SandboxError;
use crate::state::Shared;

/// The name the page is served under (the RP id of every passkey Entra registers).
pub(crate) const HOST: &str = crate::authmethods::RP_ID;

const INDEX_HTML: &str = include_str!("assets/index.html");
const SIGNIN_JS: &str = include_str!("assets/signin.js");
const SIGNIN_CSS: &str = include_str!("assets/signin.css");

/// Scripts and styles from the page's own origin only (no inline script), requests to the same
/// origin only, and no framing (a sign-in page must not be framed, as Microsoft's is not).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The running page.
#[derive(Debug)]
pub(crate) struct LoginPage {
    pub addr: SocketAddr,
    pub ca_pem: String,
    pub task: Option<JoinHandle<()>>,
}

/// Makes the CA and certificate, binds 127.0.0.1:0 and serves until `stop` turns true.
pub(crate) async fn start(
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
) -> Result<LoginPage, String> {
    let tls = tls::make(HOST)?;
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    let acceptor = TlsAcceptor::from(tls.server.clone());
    let task = tokio::spawn(serve(listener, acceptor, router(shared), stop));
    Ok(LoginPage {
        addr,
        ca_pem: tls.ca_pem,
        task: Some(task),
    })
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(|| asset(INDEX_HTML, "text/html; charset=utf-8")))
        .route(
            "/signin.js",
            get(|| asset(SIGNIN_JS, "text/javascript; charset=utf-8")),
        )
        .route(
            "/signin.css",
            get(|| asset(SIGNIN_CSS, "text/css; charset=utf-8")),
        )
        // The same endpoints as on the sandbox's HTTP address, here on the page's own origin so
        // that its script reaches them same-origin (no CORS), as Microsoft's page reaches its own.
        .route("/sandbox/signin/begin", post(crate::signin::begin))
        .route("/sandbox/signin/finish", post(crate::signin::finish))
        .fallback(|req: Request| async move { SandboxError::NoRoute(req.uri().path().to_owned()) })
        .layer(middleware::from_fn(crate::server::request_ids))
        .with_state(shared)
}

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    resp
}

/// The accept loop: each connection's TLS handshake and requests in a task of its own, so a
/// slow or failed handshake holds up no one else.
async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Router,
    mut stop: watch::Receiver<bool>,
) {
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
        let (acceptor, app, mut stop) = (acceptor.clone(), app.clone(), stop.clone());
        tokio::spawn(async move {
            let handshake = tokio::select! {
                r = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)) => r,
                _ = stop.changed() => return,
            };
            let Ok(Ok(tls)) = handshake else {
                // A client that does not trust the CA ends the handshake (alert 46,
                // certificate_unknown): nothing to answer.
                return;
            };
            let svc =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    tower::ServiceExt::oneshot(app.clone(), req.map(Body::new))
                });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc);
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
