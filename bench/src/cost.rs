//! What a heartbeat costs the server, over `heartbeat.json` and over `/ws/registry/heartbeat`.
//!
//! A fresh registry gets a population of services of 100 instances each; then, for each batch
//! size, the two kinds of heartbeat run in turn at the same steady rate, and the server's CPU
//! time (user and system, from `/proc`) across each run is divided by the instances it
//! heartbeated. In both kinds each connection plays one client that heartbeats only its own
//! service's instances (`own_service`), as a registered application does, so a batch of 100 is
//! one client's whole service. The rate is fixed rather than saturating, so both kinds do the
//! same work in the same time and the load generator, which shares the cores, takes the same
//! share of them.

use crate::measure::Load;
use crate::results::HeartbeatCost;
use crate::server::{Launch, Server};
use crate::table;
use artemis_loadgen::Kind;

/// Instances registered for the heartbeat-cost runs (enough for the largest batch many times).
pub(crate) const INSTANCES: u64 = 10_000;

/// Instances per service in the heartbeat-cost runs: one client's service.
const INSTANCES_PER_SERVICE: u64 = 100;

/// How the heartbeat-cost runs go.
pub(crate) struct CostRuns<'a> {
    /// The sweep's load: the cost runs take its connections, cores and duration, not its
    /// instances per service.
    pub load: &'a Load,
    pub registry: &'a Launch,
    pub batches: &'a [u64],
    pub rate: f64,
    pub rounds: usize,
}

impl CostRuns<'_> {
    /// Every batch size's cost on a freshly started registry; nothing when no batch is asked for.
    pub(crate) fn measure(&self) -> Result<Vec<HeartbeatCost>, String> {
        if self.batches.is_empty() {
            return Ok(Vec::new());
        }
        let load = Load {
            instances_per_service: INSTANCES_PER_SERVICE,
            ..self.load.clone()
        };
        let registry = self.registry.start()?;
        table::started(&registry);
        load.prefill(&registry, INSTANCES)?;
        table::cost_heading(self.rate);
        let mut costs = Vec::new();
        for &batch in self.batches {
            let (mut http_us, mut websocket_us) = (Vec::new(), Vec::new());
            for _ in 0..self.rounds {
                http_us.push(self.per_instance(&load, &registry, Kind::Heartbeat, batch)?);
                websocket_us.push(self.per_instance(&load, &registry, Kind::WsHeartbeat, batch)?);
            }
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            let cost = HeartbeatCost {
                batch,
                rate: self.rate,
                ratio: mean(&websocket_us) / mean(&http_us),
                http_us,
                websocket_us,
            };
            table::cost(&cost);
            costs.push(cost);
        }
        Ok(costs)
    }

    /// Microseconds of server CPU per heartbeated instance in one run of `kind` on `load`'s
    /// population.
    fn per_instance(
        &self,
        load: &Load,
        registry: &Server,
        kind: Kind,
        batch: u64,
    ) -> Result<f64, String> {
        let before = registry.cpu_seconds()?;
        let sample = load.heartbeats(registry, kind, batch, self.rate, INSTANCES)?;
        let used = registry.cpu_seconds()? - before;
        if sample.failed > 0 || sample.ok == 0 {
            return Err(format!(
                "{} run: {} ok, {} failed",
                kind.name(),
                sample.ok,
                sample.failed
            ));
        }
        Ok(used * 1e6 / (sample.ok * batch) as f64)
    }
}
