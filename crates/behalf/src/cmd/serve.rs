//! `behalf serve`.

use std::process::ExitCode;

use anyhow::Context as _;
use behalf_config::Config;
use behalf_server::AppState;

use crate::cli::ServeArgs;
use crate::context;

pub async fn run(mut config: Config, args: ServeArgs) -> anyhow::Result<ExitCode> {
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let store = context::open_store(&config).await?;
    let listener = behalf_server::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    // The address on stdout is how scripts and end-to-end tests find a port-0 server.
    #[allow(clippy::print_stdout)]
    {
        println!("behalf listening on http://{addr}");
    }
    tracing::info!(%addr, database = store.backend().name(), "serving");
    behalf_server::serve(
        listener,
        AppState {
            store: store.clone(),
        },
        shutdown_signal(),
    )
    .await?;
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
