//! `artemis`: the registry server's command line.

use std::process::exit;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};

use artemis::{Command, Failure, Layout, Server, ServerConfig};

mod cli;

#[global_allocator]
static ALLOCATOR: artemis::Allocator = artemis::Allocator;

/// `artemis::Cli`'s `server` beside the management commands of [`cli`], which live in the
/// binary only.
#[derive(Parser, Debug)]
#[command(
    name = "artemis",
    version,
    about = "Thread-per-core service registry, wire-compatible with Ctrip Artemis"
)]
struct Cli {
    #[command(subcommand)]
    command: Top,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once, moved once
enum Top {
    #[command(flatten)]
    Server(Command),
    #[command(flatten)]
    Manage(cli::Manage),
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            exit(0);
        }
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            usage_error("a subcommand is missing")
        }
        Err(e) => usage_error(&e.to_string()),
    };
    let command = match cli.command {
        Top::Server(command) => command,
        Top::Manage(command) => match cli::run(command) {
            Ok(()) => exit(0),
            Err(cli::Failure::Usage(why)) => {
                eprintln!("artemis: {why}");
                exit(2);
            }
            Err(cli::Failure::Refused(why)) => {
                eprintln!("artemis: {why}");
                exit(1);
            }
        },
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match command {
        Command::Server(config) => match serve(config) {
            Ok(()) => {}
            Err(Failure::Usage(why)) => usage_error(&why),
            Err(Failure::Runtime(why)) => {
                log::error!("{why}");
                exit(1);
            }
        },
    }
}

fn serve(config: ServerConfig) -> Result<(), Failure> {
    let layout = Layout {
        cores: artemis::select_cores(config.cores.as_ref())?,
        addr: config.addr,
        spin_before_park: config.spin_before_park,
        io: config.io,
    };
    let server = Server::new(config, layout.cores.len())?;
    raise_descriptor_limit();
    artemis::run(layout, server)
}

/// Raises the soft limit of open files to the hard one, as Go's runtime does: every connection
/// is a descriptor, and at the soft limit of many shells (1024) accepts fail with EMFILE while
/// the kernel keeps completing handshakes, so a thousand idle connections would lock every
/// other client out.
fn raise_descriptor_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit; setrlimit only reads it.
    let raised = unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0
        }
    };
    match raised {
        true => log::info!("open files: up to {}", limit.rlim_cur),
        false => log::warn!(
            "cannot raise the open-files limit: {}",
            std::io::Error::last_os_error()
        ),
    }
}

/// One line on stderr, exit code 2.
fn usage_error(message: &str) -> ! {
    let mut lines = message.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut line = lines.next().unwrap_or("invalid arguments").to_string();
    // "the following required arguments were not provided:" names them on the next line.
    if line.ends_with(':') {
        if let Some(next) = lines.next() {
            line = format!("{line} {next}");
        }
    }
    let line = line.strip_prefix("error: ").unwrap_or(&line);
    eprintln!("artemis: {line} (see --help)");
    exit(2);
}
