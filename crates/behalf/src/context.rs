//! What a command needs: the loaded configuration, and the store when it uses one.

use anyhow::Context as _;
use behalf_config::{Config, Sources};
use behalf_store::Store;
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

/// Opens (and migrates) the configured database.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let url = config.database_url();
    Store::connect(url.expose())
        .await
        .context("the database is not usable")
}
