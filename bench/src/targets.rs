//! The performance targets (docs/benchmarks.md, "Against the targets") checked against the results.
//! They are reported, never failed on: the benchmark exits 0 whatever they say, and tests never
//! time anything.

use crate::display;
use crate::results::{HeartbeatCost, Population};
use crate::scenario::Scenario;
use artemis_loadgen::Slo;
use serde::Serialize;

/// Each operation's saturation, as a share of the no-op server's on the same transport.
const MIN_RATIO: f64 = 0.85;
/// "Flat from 1 k to 1 M": no larger population's ratio below this share of the ratio at the
/// smallest population (growing faster is noise, not a shortfall).
const FLATNESS: f64 = 0.9;
/// The objective at half of saturation.
pub(crate) const SLO: &str = "p99=500us,p999=1ms";
/// Resident memory per registered instance, checked at the largest population (smaller ones
/// are dominated by fixed costs).
const MAX_RSS_PER_INSTANCE: f64 = 1200.0;

/// One target and what was measured against it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Check {
    pub target: String,
    pub measured: String,
    pub met: bool,
}

/// The SLO of the runs at half saturation.
pub(crate) fn slo() -> Slo {
    Slo {
        latency: Slo::parse_latency(SLO).expect("the benchmark's SLO parses"),
        max_error_rate: None,
    }
}

/// Every target, in the order docs/benchmarks.md lists them.
pub(crate) fn check(
    populations: &[Population],
    scenarios: &[Scenario],
    heartbeat_cost: &[HeartbeatCost],
) -> Vec<Check> {
    let mut checks = Vec::new();
    for p in populations {
        for point in &p.points {
            checks.push(Check {
                target: format!(
                    "{} at {} instances >= {} of no-op",
                    point.scenario.name(),
                    display::count(p.instances),
                    display::ratio(MIN_RATIO)
                ),
                measured: display::ratio(point.ratio),
                met: point.ratio >= MIN_RATIO,
            });
        }
    }
    if populations.len() > 1 {
        let mut by_size: Vec<&Population> = populations.iter().collect();
        by_size.sort_by_key(|p| p.instances);
        for &scenario in scenarios {
            let ratios: Vec<f64> = by_size
                .iter()
                .filter_map(|p| p.point(scenario).map(|point| point.ratio))
                .collect();
            let Some((&smallest, larger)) = ratios.split_first() else {
                continue;
            };
            let shown: Vec<String> = ratios.iter().map(|&r| display::ratio(r)).collect();
            checks.push(Check {
                target: format!(
                    "{} flat as the population grows (each ratio >= {} of the smallest population's)",
                    scenario.name(),
                    display::ratio(FLATNESS)
                ),
                measured: shown.join(" -> "),
                met: larger.iter().all(|&r| r >= FLATNESS * smallest),
            });
        }
    }
    for p in populations {
        for point in &p.points {
            let run = &point.slo.registry;
            checks.push(Check {
                target: format!(
                    "{} at {} instances, {} at half saturation ({})",
                    point.scenario.name(),
                    display::count(p.instances),
                    SLO,
                    display::rate(point.slo.rate)
                ),
                measured: format!(
                    "p99 {}, p99.9 {}",
                    display::latency(run.p99_us),
                    display::latency(run.p999_us)
                ),
                met: run.slo_met == Some(true),
            });
        }
    }
    if let Some(largest) = populations.iter().max_by_key(|p| p.instances) {
        checks.push(Check {
            target: format!(
                "RSS per instance at {} instances <= {MAX_RSS_PER_INSTANCE:.0} B",
                display::count(largest.instances)
            ),
            measured: format!("{:.0} B", largest.rss_per_instance_bytes),
            met: largest.rss_per_instance_bytes <= MAX_RSS_PER_INSTANCE,
        });
    }
    for cost in heartbeat_cost {
        checks.push(Check {
            target: format!(
                "a WebSocket heartbeat costs the server less CPU per instance than heartbeat.json (batch {})",
                cost.batch
            ),
            measured: format!("WebSocket/HTTP {}", display::ratio(cost.ratio)),
            met: cost.ratio < 1.0,
        });
    }
    let failed: u64 = populations
        .iter()
        .flat_map(|p| &p.points)
        .map(|point| point.registry.failed + point.slo.registry.failed)
        .sum();
    checks.push(Check {
        target: "the registry answers every request with success".to_owned(),
        measured: format!("{failed} failed"),
        met: failed == 0,
    });
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::LoadAverage;
    use crate::measure::Sample;
    use crate::results::{Point, Saturation, SloRun};

    fn sample(rate: f64, slo_met: Option<bool>) -> Sample {
        Sample {
            rate,
            ok: 1,
            failed: 0,
            failures: Default::default(),
            p99_us: Some(100.0),
            p999_us: Some(200.0),
            slo_met,
        }
    }

    /// A population of `instances` whose only scenario, heartbeat, reaches `ratio` of no-op.
    fn population(instances: u64, ratio: f64, rss_per_instance_bytes: f64) -> Population {
        Population {
            instances,
            services: instances / 10,
            registry_transport: vec![],
            prefill_seconds: 0.0,
            rss_before_bytes: 0,
            rss_after_bytes: 0,
            rss_per_instance_bytes,
            load_average: LoadAverage::default(),
            points: vec![Point {
                scenario: Scenario::Heartbeat,
                noop: Saturation::of(vec![sample(100.0, None)]),
                registry: Saturation::of(vec![sample(100.0 * ratio, None)]),
                ratio,
                slo: SloRun {
                    rate: 50.0 * ratio,
                    registry: sample(50.0 * ratio, Some(true)),
                    noop: sample(50.0 * ratio, Some(true)),
                },
            }],
        }
    }

    fn verdicts(populations: &[Population]) -> Vec<(String, bool)> {
        check(populations, &[Scenario::Heartbeat], &[])
            .into_iter()
            .map(|c| (c.target, c.met))
            .collect()
    }

    #[test]
    fn flat_means_no_loss_as_the_population_grows() {
        let growing = verdicts(&[
            population(1_000_000, 0.95, 1000.0),
            population(1_000, 0.86, 3000.0),
        ]);
        let flat = growing.iter().find(|(t, _)| t.contains("flat")).unwrap();
        assert!(flat.1, "a ratio that grows is not a shortfall");
        let falling = verdicts(&[
            population(1_000, 0.95, 3000.0),
            population(1_000_000, 0.80, 1000.0),
        ]);
        assert!(!falling.iter().find(|(t, _)| t.contains("flat")).unwrap().1);
        assert!(
            !falling
                .iter()
                .find(|(t, _)| t.contains("1M instances >="))
                .unwrap()
                .1
        );
    }

    #[test]
    fn memory_is_judged_at_the_largest_population() {
        let v = verdicts(&[
            population(1_000, 0.9, 3000.0),
            population(1_000_000, 0.9, 1100.0),
        ]);
        let rss = v.iter().find(|(t, _)| t.starts_with("RSS")).unwrap();
        assert_eq!(
            rss,
            &(
                "RSS per instance at 1M instances <= 1200 B".to_owned(),
                true
            )
        );
        assert!(v.iter().all(|(_, met)| *met), "{v:?}");
    }
}
