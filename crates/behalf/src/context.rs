//! What a command needs: the loaded configuration, and the application opened on it.

use behalf_app::{App, AppOptions, Caller, DirectoryGraph};
use behalf_config::{Config, Sources};
use figment::Figment;
use figment::providers::Serialized;

use crate::cli::GlobalArgs;

/// Loads the configuration: defaults < file < environment < the global flags.
pub fn load_config(global: &GlobalArgs) -> anyhow::Result<Config> {
    let mut overrides = Figment::new();
    if let Some(dir) = &global.data_dir {
        overrides = overrides.merge(Serialized::default("data_dir", dir));
    }
    if let Some(url) = &global.database_url {
        overrides = overrides.merge(Serialized::default("database_url", url));
    }
    Ok(Config::load(Sources {
        file: global.config.as_deref(),
        overrides: Some(overrides),
    })?)
}

/// Opens the application for a command run on this machine. `directory` is the Graph client
/// that directory reads, TAPs and `doctor` use (an admin's `behalf login`), when not the app's.
pub async fn open_app(config: &Config, directory: Option<DirectoryGraph>) -> anyhow::Result<App> {
    Ok(App::open(
        config.clone(),
        AppOptions {
            engine_actor: cli_actor(),
            directory_graph: directory,
        },
    )
    .await?)
}

/// The person at this machine: every handle is theirs (they hold the configuration and the
/// master key).
pub fn local_caller() -> Caller {
    Caller::Local { actor: cli_actor() }
}

/// Who is acting, for the event log: the operating-system user running the CLI.
pub fn cli_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

/// The handle a local caller always gets; `None` cannot happen for [`Caller::Local`].
pub fn local<T>(handle: Option<T>) -> anyhow::Result<T> {
    handle.ok_or_else(|| anyhow::anyhow!("not allowed"))
}
