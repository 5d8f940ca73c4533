//! `behalf serve`: the HTTP server and the background workers of one instance.

use std::process::ExitCode;

use anyhow::Context as _;
use behalf_config::Config;
use behalf_server::ServerState;
use tokio::sync::watch;

use behalf_app::{App, AppOptions};

use crate::cli::ServeArgs;
use crate::sandbox_setup::with_sandbox;

pub async fn run(mut config: Config, args: ServeArgs) -> anyhow::Result<ExitCode> {
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if args.sandbox.sandbox {
        // A demo tenant: notice changes made to it within a minute. Who gets a passkey is the
        // admin's choice (the API, the panel), as against a real tenant, unless
        // `sync.provision` says everyone.
        if config.sync.interval_secs == 0 || config.sync.interval_secs > 60 {
            config.sync.interval_secs = 60;
        }
    }
    let sandbox = args.sandbox.clone();
    let demo = args.sandbox.sandbox;
    with_sandbox(config, &sandbox, |config| async move {
        serve(config, args.no_workers, demo).await
    })
    .await
}

/// Who the sign-in link of `serve --sandbox` signs in (the owner of the demo workspace).
const SANDBOX_OWNER: &str = "owner@behalf.sandbox";

async fn serve(mut config: Config, no_workers: bool, sandbox: bool) -> anyhow::Result<ExitCode> {
    // Bound first, so that a server on port 0 knows its address: the links it mails fall back
    // to it when `[mail] public_url` is not set.
    let listener = behalf_server::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    config.listen = addr;
    // The vault is opened (and a first master key written) before the address is printed, so a
    // second instance started after this one printed it shares the key instead of racing for it.
    let app = App::open(
        config.clone(),
        AppOptions {
            engine_actor: "server".into(),
            directory_graph: None,
        },
    )
    .await?;
    let store = app.store().clone();
    let workers = if no_workers { None } else { app.workers() };
    // The address on stdout is how scripts and end-to-end tests find a port-0 server.
    #[allow(clippy::print_stdout)]
    {
        println!("behalf listening on http://{addr}");
    }
    if sandbox {
        // The demo: one link, and the panel opens signed in, with the sandbox tenant connected.
        let token = app.local_sign_in_link(SANDBOX_OWNER).await?;
        eprintln!(
            "Sign in: http://{addr}/login/link?token={}  (one use, 15 minutes; as {SANDBOX_OWNER})",
            token.expose()
        );
    } else if let Some(token) = app.owner_setup_token().await? {
        // The first run: whoever started the server sets up the owner. The link is the secret.
        eprintln!(
            "No admin yet. Set up the owner at: http://{addr}/setup?token={}",
            token.expose()
        );
    }
    tracing::info!(%addr, database = store.backend().name(), "serving");

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("stopping: finishing in-flight requests and items");
        let _ = stop_tx.send(true);
    });
    let workers = workers.map(|w| tokio::spawn(w.run(stop_rx.clone())));
    let mut http_stop = stop_rx;
    behalf_server::serve(listener, ServerState::new(app.clone()), async move {
        let _ = http_stop.wait_for(|stop| *stop).await;
    })
    .await?;
    if let Some(workers) = workers {
        workers.await.context("the background workers panicked")?;
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Completes on Ctrl+C or SIGTERM, so in-flight requests finish before the process exits.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
