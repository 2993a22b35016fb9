//! `artemis-bench`: the registry against its own ceiling.
//!
//! For each transport (`--io`), starts `artemis-noop` (the same runtime, transport and HTTP
//! layer with a fixed reply) and `artemis server` from the directory of this executable, on the
//! same cores, and drives both with the bundled load generator in-process: the standard
//! scenarios (heartbeat, discovery, re-register) at each population, saturation as a ratio to
//! the no-op server, the latency SLO at half of saturation, the registry's memory per instance,
//! and the server CPU a heartbeat costs over HTTP and over WebSocket. Prints a table as it goes
//! and writes the results as JSON. The design's targets are reported, never enforced: the exit
//! status is 0 unless the benchmark itself could not run (1) or its flags are wrong (2).

mod cli;
mod cost;
mod display;
mod machine;
mod measure;
mod results;
mod scenario;
mod server;
mod sweep;
mod table;
mod targets;

use artemis::Io;
use clap::Parser;
use cost::CostRuns;
use machine::LoadAverage;
use results::{Machine, Results, TransportRun};
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
    let transports = cli
        .io
        .iter()
        .map(|&io| transport(cli, io))
        .collect::<Result<Vec<_>, _>>()?;
    let load_after = LoadAverage::now();
    table::load_after(load_after);
    let results = Results {
        settings,
        machine: Machine {
            online_cores,
            load_before,
            load_after,
        },
        transports,
    };
    results.write(&cli.json)?;
    println!("results: {}", cli.json.display());
    Ok(())
}

/// Every measurement on one transport.
fn transport(cli: &cli::Cli, io: Io) -> Result<TransportRun, String> {
    table::transport(cli::io_name(io));
    let noop = cli.noop(io).start()?;
    table::started(&noop);
    let sweep = cli.sweep(io);
    let populations = cli
        .populations
        .iter()
        .map(|&instances| sweep.population(&noop, instances))
        .collect::<Result<Vec<_>, _>>()?;
    let noop_transport = noop.transport.clone();
    drop(noop);
    let heartbeat_cost = CostRuns {
        load: &sweep.load,
        registry: &sweep.registry,
        batches: cli.cost_batches(),
        rate: cli.cost_rate,
        rounds: sweep.rounds,
    }
    .measure()?;
    let checks = targets::check(&populations, &cli.scenarios, &heartbeat_cost);
    table::targets(cli::io_name(io), &checks);
    Ok(TransportRun {
        io: cli::io_name(io).to_owned(),
        noop_transport,
        populations,
        heartbeat_cost,
        targets: checks,
    })
}
