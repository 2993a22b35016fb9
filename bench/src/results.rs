//! What a benchmark run found, in the shape of its JSON file, per transport: for each population
//! the registry's memory and, for each scenario, both servers' saturation, their ratio and the
//! SLO run at half the registry's saturation; what a heartbeat costs over HTTP and over
//! WebSocket; then the design's targets checked against them.

use crate::machine::LoadAverage;
use crate::measure::Sample;
use crate::scenario::Scenario;
use crate::targets::Check;
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Serialize)]
pub(crate) struct Results {
    pub settings: Settings,
    pub machine: Machine,
    pub transports: Vec<TransportRun>,
}

/// Everything measured on one transport.
#[derive(Debug, Serialize)]
pub(crate) struct TransportRun {
    /// `--io` of both servers.
    pub io: String,
    /// Each core's transport, as the no-op server's start-up log says.
    pub noop_transport: Vec<String>,
    pub populations: Vec<Population>,
    pub heartbeat_cost: Vec<HeartbeatCost>,
    pub targets: Vec<Check>,
}

/// The registry's CPU time per heartbeated instance, over HTTP and over WebSocket, at one batch
/// size and a steady rate, alternating the two `rounds` times.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct HeartbeatCost {
    pub batch: u64,
    pub rate: f64,
    /// Microseconds of server CPU (user + system) per instance, one figure per round.
    pub http_us: Vec<f64>,
    pub websocket_us: Vec<f64>,
    /// Mean WebSocket cost / mean HTTP cost.
    pub ratio: f64,
}

/// How the benchmark was run.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Settings {
    /// Cores of both servers.
    pub cores: Vec<usize>,
    /// Cores of the load generator: the same as the servers' unless `--loadgen-cores` is given.
    pub loadgen_cores: Vec<usize>,
    pub duration: String,
    pub warmup: String,
    /// Runs per server and point at saturation, and again at half of it, alternating between the
    /// servers.
    pub rounds: usize,
    pub connections: usize,
    pub instances_per_service: u64,
    /// The registry's lease TTL, long enough that no prefilled instance expires.
    pub lease_ttl: String,
    /// The transports measured (`--io`), each with both servers on it.
    pub io: Vec<String>,
    /// Instances per request, and requests per second, of the heartbeat-cost runs.
    pub cost_batches: Vec<u64>,
    pub cost_rate: f64,
    pub spin_before_park: Option<String>,
    /// The objective of the runs at half saturation, for the registry's median tails.
    pub slo: String,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct Machine {
    pub online_cores: usize,
    pub load_before: LoadAverage,
    pub load_after: LoadAverage,
}

/// One registered population on a freshly started registry.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Population {
    pub instances: u64,
    pub services: u64,
    /// Each core's transport, as the registry's start-up log says.
    pub registry_transport: Vec<String>,
    pub prefill_seconds: f64,
    /// The registry's resident set just before and just after the prefill.
    pub rss_before_bytes: u64,
    pub rss_after_bytes: u64,
    /// `(after - before) / instances`.
    pub rss_per_instance_bytes: f64,
    /// When the population's runs began.
    pub load_average: LoadAverage,
    pub points: Vec<Point>,
}

/// One scenario at one population.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Point {
    pub scenario: Scenario,
    pub noop: Saturation,
    pub registry: Saturation,
    /// Registry saturation / no-op saturation.
    pub ratio: f64,
    pub slo: SloRun,
}

/// Closed-loop runs of one server at one point.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Saturation {
    /// Mean over the runs.
    pub rate: f64,
    /// The worst run's tail.
    pub p99_us: Option<f64>,
    pub p999_us: Option<f64>,
    /// Failed requests over all runs.
    pub failed: u64,
    pub runs: Vec<Sample>,
}

/// Open-loop runs of both servers at half the registry's saturation, alternating.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct SloRun {
    pub rate: f64,
    pub registry: Tails,
    pub noop: Tails,
}

/// One server's open-loop runs at one point. Each tail is the median over the runs: on a shared
/// machine a single run's p99 moves tenfold with the moments the hypervisor holds a CPU back,
/// and the median is what one such moment does not decide.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Tails {
    pub p99_us: Option<f64>,
    pub p999_us: Option<f64>,
    /// From the actual send (see [`Sample::response_p99_us`]).
    pub response_p99_us: Option<f64>,
    /// Failed requests over all runs.
    pub failed: u64,
    pub runs: Vec<Sample>,
}

impl Saturation {
    pub(crate) fn of(runs: Vec<Sample>) -> Saturation {
        let worst =
            |tail: fn(&Sample) -> Option<f64>| runs.iter().filter_map(tail).reduce(f64::max);
        Saturation {
            rate: runs.iter().map(|s| s.rate).sum::<f64>() / runs.len().max(1) as f64,
            p99_us: worst(|s| s.p99_us),
            p999_us: worst(|s| s.p999_us),
            failed: runs.iter().map(|s| s.failed).sum(),
            runs,
        }
    }
}

impl Tails {
    pub(crate) fn of(runs: Vec<Sample>) -> Tails {
        let median = |tail: fn(&Sample) -> Option<f64>| median(runs.iter().filter_map(tail));
        Tails {
            p99_us: median(|s| s.p99_us),
            p999_us: median(|s| s.p999_us),
            response_p99_us: median(|s| s.response_p99_us),
            failed: runs.iter().map(|s| s.failed).sum(),
            runs,
        }
    }
}

/// The middle figure (the mean of the middle two for an even count); `None` for none.
fn median(figures: impl Iterator<Item = f64>) -> Option<f64> {
    let mut sorted: Vec<f64> = figures.collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

impl Population {
    /// The scenario's point.
    pub(crate) fn point(&self, scenario: Scenario) -> Option<&Point> {
        self.points.iter().find(|p| p.scenario == scenario)
    }
}

impl Results {
    /// Writes the results as pretty JSON, creating the directory.
    pub(crate) fn write(&self, path: &Path) -> Result<(), String> {
        let fail = |e: &dyn std::fmt::Display| format!("cannot write {}: {e}", path.display());
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
        }
        let file = std::fs::File::create(path).map_err(|e| fail(&e))?;
        serde_json::to_writer_pretty(file, self).map_err(|e| fail(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rate: f64, p99: f64, failed: u64) -> Sample {
        Sample {
            rate,
            ok: 10,
            failed,
            failures: Default::default(),
            p99_us: Some(p99),
            p999_us: Some(p99 * 2.0),
            response_p99_us: None,
        }
    }

    #[test]
    fn saturation_is_the_mean_rate_and_the_worst_tail() {
        let s = Saturation::of(vec![sample(100.0, 300.0, 1), sample(80.0, 200.0, 2)]);
        assert_eq!(s.rate, 90.0);
        assert_eq!(s.p99_us, Some(300.0));
        assert_eq!(s.p999_us, Some(600.0));
        assert_eq!(s.failed, 3);
    }

    #[test]
    fn open_loop_tails_are_the_medians_of_the_runs() {
        let t = Tails::of(vec![
            sample(50.0, 300.0, 0),
            sample(50.0, 9000.0, 1),
            sample(50.0, 200.0, 0),
        ]);
        assert_eq!(t.p99_us, Some(300.0), "one stalled run does not decide");
        assert_eq!(t.p999_us, Some(600.0));
        assert_eq!(t.response_p99_us, None);
        assert_eq!(t.failed, 1);
        let even = Tails::of(vec![sample(50.0, 100.0, 0), sample(50.0, 300.0, 0)]);
        assert_eq!(even.p99_us, Some(200.0));
    }
}
