//! `behalf`: the command line, the server and the sandbox in one binary.
#![forbid(unsafe_code)]

mod cli;
mod cmd;
mod context;
mod logging;
mod microsoft;
mod sandbox_setup;
mod wiring;
mod workers;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cmd::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            // One line, the whole cause chain, no backtrace: the admin needs what, not where.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
