//! Logs go to stderr so that stdout stays for results (`--json`, reports).

use behalf_config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

pub fn init(config: &Config, verbose: u8, json: bool) {
    let level = match verbose {
        0 => config.log.level.clone(),
        1 => config.log.level.clone(),
        2 => "debug,sqlx=warn,hyper=info".to_owned(),
        _ => "trace".to_owned(),
    };
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    // Colours only for a person at a terminal: never into a file or a pipe, never with NO_COLOR
    // set (https://no-color.org: any non-empty value).
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let _ = if json || config.log.format == LogFormat::Json {
        builder.json().try_init()
    } else {
        builder.compact().try_init()
    };
}
