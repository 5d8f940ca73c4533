//! `behalf`: the command line, the server and the sandbox in one binary.
#![forbid(unsafe_code)]

mod cli;
mod cmd;
mod context;
mod logging;
mod remote;
mod sandbox_setup;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // The server and the sandbox serve many clients at once: one thread per core. A command line
    // run is one pipeline whose tasks mostly wait on the network and the database: on one thread
    // they hand work to each other without waking other threads, which is most of their CPU cost
    // otherwise (the provisioning benchmark measures it).
    let mut builder = match cli.command {
        cli::Command::Serve(_) | cli::Command::Sandbox(_) => {
            tokio::runtime::Builder::new_multi_thread()
        }
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    let runtime = match builder.enable_all().build() {
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
