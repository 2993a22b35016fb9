//! One load-generator run against one server, in-process through `artemis_loadgen`, boiled
//! down to the figures the benchmark keeps.
//!
//! Every run of a population shares it: the population is registered once
//! ([`Load::prefill`]), and each measured run says the instances are already there
//! (`prefilled`), so heartbeats and re-registrations find them and discovery asks for services
//! that exist. The no-op server is driven with the very same requests.

use crate::scenario::Scenario;
use crate::server::Server;
use artemis_loadgen::{Config, DiscoveryApi, Kind, Pacing, Popularity, Report, Share};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// What every run has in common.
#[derive(Clone, Debug)]
pub(crate) struct Load {
    pub duration: Duration,
    pub warmup: Duration,
    pub connections: usize,
    /// The load generator's pinned workers: the servers' cores.
    pub cores: Vec<usize>,
    /// The population is spread over `instances / instances_per_service` services.
    pub instances_per_service: u64,
}

/// The figures of one run.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Sample {
    /// Replies per second in the measured time.
    pub rate: f64,
    pub ok: u64,
    pub failed: u64,
    /// Failures by kind.
    pub failures: BTreeMap<String, u64>,
    /// Latency of the successful replies from their intended send, microseconds; `None` when
    /// there was none.
    pub p99_us: Option<f64>,
    pub p999_us: Option<f64>,
    /// Open loop only: latency from the actual send, without the time a due request waited in
    /// the load generator (for a free connection, or for its own thread to run again).
    pub response_p99_us: Option<f64>,
}

impl Load {
    /// Registers `instances` on `server`; returns how long it took, in seconds.
    pub(crate) fn prefill(&self, server: &Server, instances: u64) -> Result<f64, String> {
        let config = Config {
            prefilled: 0,
            ..self.config(server, Scenario::Heartbeat, instances)
        };
        artemis_loadgen::prefill(&config)
            .map(|done| done.map_or(0.0, |p| p.seconds))
            .map_err(|e| format!("prefilling {} with {instances} instances: {e}", server.name))
    }

    /// Runs `scenario` on the population of `instances` at `pacing`.
    pub(crate) fn measure(
        &self,
        server: &Server,
        scenario: Scenario,
        instances: u64,
        pacing: Pacing,
    ) -> Result<Sample, String> {
        let config = Config {
            pacing,
            ..self.config(server, scenario, instances)
        };
        run(server, scenario.name(), config)
    }

    /// Runs heartbeats of `kind` (over HTTP or WebSocket), `batch` instances per request, at a
    /// steady `rate`, without a warm-up: the caller reads the server's CPU time around it. Each
    /// connection heartbeats only the instances of its own service, as a client does.
    pub(crate) fn heartbeats(
        &self,
        server: &Server,
        kind: Kind,
        batch: u64,
        rate: f64,
        instances: u64,
    ) -> Result<Sample, String> {
        let config = Config {
            scenario: vec![Share { kind, weight: 1 }],
            batch,
            own_service: true,
            pacing: Pacing::Rate(rate),
            warmup: Duration::ZERO,
            ..self.config(server, Scenario::Heartbeat, instances)
        };
        run(server, kind.name(), config)
    }

    fn config(&self, server: &Server, scenario: Scenario, instances: u64) -> Config {
        Config {
            target: server.url(),
            scenario: vec![Share {
                kind: scenario.kind(),
                weight: 1,
            }],
            duration: self.duration,
            warmup: self.warmup,
            connections: self.connections,
            cores: self.cores.clone(),
            prefill: instances,
            prefilled: instances,
            services: services(instances, self.instances_per_service),
            batch: 1,
            discovery_api: DiscoveryApi::Post,
            popularity: Popularity::Uniform,
            quiet: true,
            ..Config::default()
        }
    }
}

/// One load-generator run of `config` against `server`, its failure named after `what` ran.
fn run(server: &Server, what: &str, config: Config) -> Result<Sample, String> {
    artemis_loadgen::run(config)
        .map(|report| Sample::of(&report))
        .map_err(|e| format!("{} {what} run: {e}", server.name))
}

/// How many services `instances` are spread over.
pub(crate) fn services(instances: u64, per_service: u64) -> u64 {
    instances.div_ceil(per_service).max(1)
}

impl Sample {
    fn of(report: &Report) -> Sample {
        let total = &report.total;
        Sample {
            rate: report.achieved_rate,
            ok: total.ok,
            failed: total.failed,
            failures: total.failures.clone(),
            p99_us: total.latency_us.as_ref().map(|l| l.p99),
            p999_us: total.latency_us.as_ref().map(|l| l.p999),
            response_p99_us: total.response_us.as_ref().map(|l| l.p99),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn services_keep_their_size_as_the_population_grows() {
        assert_eq!(super::services(1_000, 10), 100);
        assert_eq!(super::services(1_000_000, 10), 100_000);
        assert_eq!(super::services(5, 10), 1);
        assert_eq!(super::services(15, 10), 2);
    }
}
