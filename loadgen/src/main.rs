//! The `artemis-loadgen` binary: parse the flags, run, print the table (and the JSON file),
//! and exit 0 (SLO met), 1 (violated, the violation printed last) or 2 (could not run).

use artemis_loadgen::cli::Cli;
use artemis_loadgen::{run, Error};
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json.clone();
    let report = match cli.into_config().and_then(run) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("artemis-loadgen: {e}");
            return ExitCode::from(Error::EXIT_CODE);
        }
    };
    print!("{}", report.table());
    if let Some(path) = json {
        let written = std::fs::File::create(&path)
            .map_err(|e| e.to_string())
            .and_then(|f| serde_json::to_writer_pretty(f, &report).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("artemis-loadgen: cannot write {}: {e}", path.display());
            return ExitCode::from(Error::EXIT_CODE);
        }
    }
    for line in report.verdict_lines() {
        println!("{line}");
    }
    ExitCode::from(report.exit_code())
}
