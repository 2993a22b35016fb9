//! `artemis`: the registry server's command line.

mod api;
mod clock;
mod config;
mod connection;
mod http;
mod metrics;
mod node;
mod per_core;
mod router;
mod runtime;
mod shard_link;
mod transport;

use std::process::exit;

use clap::error::ErrorKind;
use clap::Parser;

use config::{Cli, Command};
use runtime::Failure;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            exit(0);
        }
        Err(e) => usage_error(&e.to_string()),
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match cli.command {
        Command::Server(config) => match runtime::run(config) {
            Ok(()) => {}
            Err(Failure::Usage(why)) => usage_error(&why),
            Err(Failure::Runtime(why)) => {
                log::error!("{why}");
                exit(1);
            }
        },
    }
}

/// One line on stderr, exit code 2.
fn usage_error(message: &str) -> ! {
    let line = message.lines().next().unwrap_or("invalid arguments");
    let line = line.strip_prefix("error: ").unwrap_or(line);
    eprintln!("artemis: {line} (see --help)");
    exit(2);
}
