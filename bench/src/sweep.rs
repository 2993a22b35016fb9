//! The order of runs. The no-op server runs for the whole benchmark; each population gets a
//! freshly started registry, whose memory is read before and after the population is
//! registered. At each scenario the two servers are driven to saturation in turn (no-op,
//! registry, no-op, registry, ...), so a noisy moment on a shared machine hits both, and then
//! each takes open-loop load at half the registry's saturation, checked against the SLO.

use crate::machine::LoadAverage;
use crate::measure::{self, Load};
use crate::results::{Point, Population, Saturation, SloRun};
use crate::scenario::Scenario;
use crate::server::{Launch, Server};
use crate::table;
use crate::targets;
use artemis_loadgen::{Pacing, Slo};

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
        let run = |server, pacing, slo| self.load.measure(server, scenario, instances, pacing, slo);
        let (mut noop_runs, mut registry_runs) = (Vec::new(), Vec::new());
        for _ in 0..self.rounds {
            noop_runs.push(run(noop, Pacing::Max, Slo::default())?);
            registry_runs.push(run(registry, Pacing::Max, Slo::default())?);
        }
        let (noop_saturation, registry_saturation) =
            (Saturation::of(noop_runs), Saturation::of(registry_runs));
        let half = Pacing::Rate(registry_saturation.rate / 2.0);
        let slo = SloRun {
            rate: registry_saturation.rate / 2.0,
            registry: run(registry, half, targets::slo())?,
            noop: run(noop, half, targets::slo())?,
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
