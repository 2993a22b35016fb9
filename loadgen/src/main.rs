//! The `artemis-loadgen` binary: parse the flags, run, print the table (and write the JSON and
//! `.hgrm` files), and exit 0 (SLO met), 1 (violated, the violation printed last) or 2 (could
//! not run).

use artemis_loadgen::cli::{self, Cli};
use artemis_loadgen::{run, Error};
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            eprintln!("{}", cli::usage_line(&cli::clap_error(&e)));
            return ExitCode::from(Error::EXIT_CODE);
        }
    };
    let (json, hgrm) = (cli.json.clone(), cli.hgrm.clone());
    let report = match cli.into_config().and_then(run) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("{}", cli::error_line(&e));
            return ExitCode::from(Error::EXIT_CODE);
        }
    };
    print!("{}", report.table());
    let mut files = Vec::new();
    if let Some(path) = json {
        let text = serde_json::to_vec_pretty(&report).expect("a report serializes");
        files.push((path, text));
    }
    if let Some(path) = hgrm {
        files.push((path, report.hgrm().into_bytes()));
    }
    for (path, contents) in files {
        if let Err(e) = std::fs::write(&path, contents) {
            eprintln!("artemis-loadgen: cannot write {}: {e}", path.display());
            return ExitCode::from(Error::EXIT_CODE);
        }
    }
    for line in report.verdict_lines() {
        println!("{line}");
    }
    ExitCode::from(report.exit_code())
}
