//! The `artemis-bench` command line: populations, scenarios, how long each run is, the core
//! layout both servers and the load generator share, and where the JSON goes.

use crate::measure::Load;
use crate::results::Settings;
use crate::scenario::Scenario;
use crate::server::Launch;
use crate::sweep::Sweep;
use crate::targets;
use artemis::{parse_core_list, CoreList, Io};
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

/// Benchmarks the registry against the no-op reference server on the same runtime, transport,
/// HTTP layer and cores, with the bundled load generator, once per transport. Finds each
/// scenario's saturation (closed loop) at each population, alternating the two servers, then
/// checks the latency SLO at half of it (open loop); then compares the server CPU a heartbeat
/// costs over HTTP and over WebSocket. The targets are reported, never failed on.
#[derive(Debug, Parser)]
#[command(name = "artemis-bench")]
pub(crate) struct Cli {
    /// Registered instances to measure at, each on a freshly started registry.
    #[arg(long, value_delimiter = ',', default_value = "1000,100000,1000000")]
    pub populations: Vec<u64>,

    /// Scenarios to run at each population, in this order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "heartbeat,discover,reregister"
    )]
    pub scenarios: Vec<Scenario>,

    /// Instances per service: a population of N is spread over N / this many services, so a
    /// discovery reply is the same size at every population.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub instances_per_service: u64,

    /// Cores of both servers and of the load generator, e.g. 0-1 [default: all].
    #[arg(long, value_parser = parse_core_list)]
    pub cores: Option<CoreList>,

    /// Cores of the servers alone, e.g. 1 [default: --cores]: with `--loadgen-cores`, the load
    /// generator and the server it drives do not share cores.
    #[arg(long, value_parser = parse_core_list)]
    pub server_cores: Option<CoreList>,

    /// Cores of the load generator alone, e.g. 0 [default: --cores].
    #[arg(long, value_parser = parse_core_list)]
    pub loadgen_cores: Option<CoreList>,

    /// Measured time of each run.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "3s")]
    pub duration: Duration,

    /// Load before each run's measured time, left out of its figures.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    pub warmup: Duration,

    /// Runs per server and scenario, alternating no-op and registry: as many at saturation, then
    /// as many at half of it.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    pub rounds: u64,

    /// Load generator connections, in all.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,

    /// The registry's lease TTL: long, so that no prefilled instance expires while measured.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1h")]
    pub lease_ttl: Duration,

    /// Transports to measure, one after the other, each with both servers on it: their own
    /// io_uring ring per core, and glommio's TcpStream.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "uring,glommio"
    )]
    pub io: Vec<Io>,

    /// Instances per heartbeat request in the heartbeat-cost runs (HTTP against WebSocket);
    /// `0` skips them.
    #[arg(long, value_delimiter = ',', default_value = "1,100")]
    pub cost_batches: Vec<u64>,

    /// Heartbeat requests per second in the heartbeat-cost runs: a steady rate below
    /// saturation, so the server's CPU time is spent on these requests and nothing else.
    #[arg(long, default_value_t = 2000.0)]
    pub cost_rate: f64,

    /// Passed to both servers: busy-wait this long before an idle core sleeps [default: off].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub spin_before_park: Option<Duration>,

    /// Where the results go as JSON.
    #[arg(long, default_value = "bench/results/latest.json")]
    pub json: PathBuf,
}

impl Cli {
    /// The servers' cores: `--server-cores`, else `--cores`, else every core.
    pub(crate) fn server_cores(&self) -> Vec<usize> {
        self.cores_or(self.server_cores.as_ref())
    }

    /// The load generator's cores: `--loadgen-cores`, else `--cores`, else every core.
    pub(crate) fn loadgen_cores(&self) -> Vec<usize> {
        self.cores_or(self.loadgen_cores.as_ref())
    }

    fn cores_or(&self, own: Option<&CoreList>) -> Vec<usize> {
        own.or(self.cores.as_ref())
            .map_or_else(artemis_loadgen::cli::available_cores, |c| c.0.clone())
    }

    pub(crate) fn settings(&self) -> Settings {
        let human = |d: Duration| humantime::format_duration(d).to_string();
        Settings {
            cores: self.server_cores(),
            loadgen_cores: self.loadgen_cores(),
            duration: human(self.duration),
            warmup: human(self.warmup),
            rounds: self.rounds as usize,
            connections: self.connections,
            instances_per_service: self.instances_per_service,
            lease_ttl: human(self.lease_ttl),
            io: self.io.iter().map(|&io| io_name(io).to_owned()).collect(),
            cost_batches: self.cost_batches().to_vec(),
            cost_rate: self.cost_rate,
            spin_before_park: self.spin_before_park.map(human),
            slo: targets::SLO.to_owned(),
        }
    }

    /// The heartbeat-cost batch sizes, none when `--cost-batches 0`.
    pub(crate) fn cost_batches(&self) -> &[u64] {
        if self.cost_batches.contains(&0) {
            &[]
        } else {
            &self.cost_batches
        }
    }

    /// The no-op server on `io`, with the flags both servers get.
    pub(crate) fn noop(&self, io: Io) -> Launch {
        Launch {
            name: "artemis-noop",
            binary: "artemis-noop",
            args: self.layout_flags(io),
        }
    }

    /// The runs of the registry on `io`.
    pub(crate) fn sweep(&self, io: Io) -> Sweep {
        let settings = self.settings();
        let mut args = vec!["server".to_owned()];
        args.extend(self.layout_flags(io));
        args.extend(["--lease-ttl".to_owned(), settings.lease_ttl]);
        // Java's limits (10 k registry requests/s) sit far below saturation: measure the server.
        args.extend(["--rate-limit".to_owned(), "false".to_owned()]);
        // Its management store, empty, out of the working directory.
        let data_dir = std::env::temp_dir().join(format!("artemis-bench-{}", std::process::id()));
        args.extend(["--data-dir".to_owned(), data_dir.display().to_string()]);
        Sweep {
            load: Load {
                duration: self.duration,
                warmup: self.warmup,
                connections: self.connections,
                cores: self.loadgen_cores(),
                instances_per_service: self.instances_per_service,
            },
            rounds: settings.rounds,
            scenarios: self.scenarios.clone(),
            registry: Launch {
                name: "artemis server",
                binary: "artemis",
                args,
            },
        }
    }

    /// `--cores`, `--io` and `--spin-before-park`, the same for both servers.
    fn layout_flags(&self, io: Io) -> Vec<String> {
        let settings = self.settings();
        let cores: Vec<String> = settings.cores.iter().map(usize::to_string).collect();
        let mut flags = vec![
            "--cores".to_owned(),
            cores.join(","),
            "--io".to_owned(),
            io_name(io).to_owned(),
        ];
        if let Some(spin) = settings.spin_before_park {
            flags.extend(["--spin-before-park".to_owned(), spin]);
        }
        flags
    }
}

/// `--io` as the servers spell it.
pub(crate) fn io_name(io: Io) -> &'static str {
    match io {
        Io::Uring => "uring",
        Io::Glommio => "glommio",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &str) -> Cli {
        Cli::try_parse_from(std::iter::once("artemis-bench").chain(args.split_whitespace()))
            .unwrap()
    }

    #[test]
    fn defaults_are_the_standard_benchmark() {
        let c = cli("");
        assert_eq!(c.populations, vec![1_000, 100_000, 1_000_000]);
        assert_eq!(
            c.scenarios,
            vec![
                Scenario::Heartbeat,
                Scenario::Discover,
                Scenario::Reregister
            ]
        );
        assert_eq!(c.duration, Duration::from_secs(3));
        assert_eq!(c.settings().lease_ttl, "1h");
        assert_eq!(c.io, vec![Io::Uring, Io::Glommio]);
        assert_eq!(c.cost_batches(), [1, 100]);
        assert!(cli("--cost-batches 0").cost_batches().is_empty());
    }

    #[test]
    fn both_servers_get_the_same_layout() {
        let c = cli("--cores 0-1 --io glommio --spin-before-park 50us --populations 1000");
        let layout = [
            "--cores",
            "0,1",
            "--io",
            "glommio",
            "--spin-before-park",
            "50us",
        ];
        assert_eq!(c.noop(Io::Glommio).args, layout);
        let registry = c.sweep(Io::Glommio).registry.args;
        assert_eq!(registry[0], "server");
        assert_eq!(registry[1..7], layout);
        assert_eq!(
            registry[7..11],
            ["--lease-ttl", "1h", "--rate-limit", "false"]
        );
        assert_eq!(registry[11], "--data-dir");
        assert_eq!(cli("").noop(Io::Uring).args[2..], ["--io", "uring"]);
        assert_eq!(c.sweep(Io::Glommio).load.cores, vec![0, 1]);
    }

    #[test]
    fn servers_and_load_generator_may_take_cores_apart() {
        let c = cli("--server-cores 1 --loadgen-cores 0 --populations 1000");
        assert_eq!(c.noop(Io::Uring).args[..2], ["--cores", "1"]);
        assert_eq!(c.sweep(Io::Uring).registry.args[1..3], ["--cores", "1"]);
        assert_eq!(c.sweep(Io::Uring).load.cores, vec![0]);
        assert_eq!(c.settings().loadgen_cores, vec![0]);
        let shared = cli("--cores 0-1 --loadgen-cores 0");
        assert_eq!(shared.server_cores(), vec![0, 1]);
        assert_eq!(shared.loadgen_cores(), vec![0]);
    }

    #[test]
    fn rejects_nonsense() {
        let parse = |args: &str| {
            Cli::try_parse_from(std::iter::once("artemis-bench").chain(args.split_whitespace()))
        };
        assert!(parse("--scenarios churn").is_err());
        assert!(parse("--rounds 0").is_err());
        assert!(parse("--populations 1k").is_err());
    }
}
