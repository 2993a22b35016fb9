//! `artemis-bench`: the registry against its own ceiling.
//!
//! Starts `artemis-noop` (the same runtime, transport and HTTP layer with a fixed reply) and
//! `artemis server` from the directory of this executable, on the same cores, and drives both
//! with the bundled load generator in-process: the standard scenarios (heartbeat, discovery,
//! re-register) at each population, saturation as a ratio to the no-op server, the latency SLO
//! at half of saturation, and the registry's memory per instance. Prints a table as it goes
//! and writes the results as JSON. The design's targets are reported, never enforced: the exit
//! status is 0 unless the benchmark itself could not run (1) or its flags are wrong (2).

mod cli;
mod display;
mod machine;
mod measure;
mod results;
mod scenario;
mod server;
mod sweep;
mod table;
mod targets;

use clap::Parser;
use machine::LoadAverage;
use results::{Machine, Results};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match bench(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("artemis-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bench(cli: &cli::Cli) -> Result<(), String> {
    let settings = cli.settings();
    let online_cores = machine::online_cores();
    let load_before = LoadAverage::now();
    table::preamble(&settings, online_cores, load_before);
    let noop = cli.noop().start()?;
    table::started(&noop);
    let sweep = cli.sweep();
    let populations = cli
        .populations
        .iter()
        .map(|&instances| sweep.population(&noop, instances))
        .collect::<Result<Vec<_>, _>>()?;
    let noop_transport = noop.transport.clone();
    drop(noop);
    let load_after = LoadAverage::now();
    let checks = targets::check(&populations, &cli.scenarios);
    table::targets(&checks, load_after);
    let results = Results {
        settings,
        machine: Machine {
            online_cores,
            load_before,
            load_after,
        },
        noop_transport,
        populations,
        targets: checks,
    };
    results.write(&cli.json)?;
    println!("results: {}", cli.json.display());
    Ok(())
}
