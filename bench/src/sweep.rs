//! The order of runs. The no-op server runs for the whole benchmark; each population gets a
//! freshly started registry, whose memory is read before and after the population is
//! registered. At each scenario the two servers are driven to saturation in turn (no-op,
//! registry, no-op, registry, ...), so a noisy moment on a shared machine hits both, and then
//! take open-loop load at half the registry's saturation the same way, as many rounds.

use crate::machine::LoadAverage;
use crate::measure::{self, Load};
use crate::results::{Point, Population, Saturation, SloRun, Tails};
use crate::scenario::Scenario;
use crate::server::{Launch, Server};
use crate::table;
use artemis_loadgen::Pacing;

pub(crate) struct Sweep {
    pub load: Load,
    /// Saturation runs per server and scenario.
    pub rounds: usize,
    pub scenarios: Vec<Scenario>,
    pub registry: Launch,
}

impl Sweep {
    /// Registers `instances` on a fresh registry and measures every scenario on them.
    pub(crate) fn population(&self, noop: &Server, instances: u64) -> Result<Population, String> {
        let load_average = LoadAverage::now();
        let registry = self.registry.start()?;
        table::started(&registry);
        let rss_before_bytes = registry.rss_bytes()?;
        let prefill_seconds = self.load.prefill(&registry, instances)?;
        let rss_after_bytes = registry.rss_bytes()?;
        let mut population = Population {
            instances,
            services: measure::services(instances, self.load.instances_per_service),
            registry_transport: registry.transport.clone(),
            prefill_seconds,
            rss_before_bytes,
            rss_after_bytes,
            rss_per_instance_bytes: rss_after_bytes.saturating_sub(rss_before_bytes) as f64
                / instances as f64,
            load_average,
            points: Vec::new(),
        };
        table::population(&population);
        for &scenario in &self.scenarios {
            let point = self.point(noop, &registry, scenario, instances)?;
            table::row(&point);
            population.points.push(point);
        }
        Ok(population)
    }

    fn point(
        &self,
        noop: &Server,
        registry: &Server,
        scenario: Scenario,
        instances: u64,
    ) -> Result<Point, String> {
        let run = |server, pacing| self.load.measure(server, scenario, instances, pacing);
        let alternate = |pacing: Pacing| -> Result<(Vec<_>, Vec<_>), String> {
            let (mut noop_runs, mut registry_runs) = (Vec::new(), Vec::new());
            for _ in 0..self.rounds {
                noop_runs.push(run(noop, pacing)?);
                registry_runs.push(run(registry, pacing)?);
            }
            Ok((noop_runs, registry_runs))
        };
        let (noop_runs, registry_runs) = alternate(Pacing::Max)?;
        let (noop_saturation, registry_saturation) =
            (Saturation::of(noop_runs), Saturation::of(registry_runs));
        let half = registry_saturation.rate / 2.0;
        let (noop_runs, registry_runs) = alternate(Pacing::Rate(half))?;
        let slo = SloRun {
            rate: half,
            registry: Tails::of(registry_runs),
            noop: Tails::of(noop_runs),
        };
        Ok(Point {
            scenario,
            ratio: registry_saturation.rate / noop_saturation.rate,
            noop: noop_saturation,
            registry: registry_saturation,
            slo,
        })
    }
}
