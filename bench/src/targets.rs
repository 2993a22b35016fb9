//! The performance targets (docs/benchmarks.md, "Against the targets") checked against the results.
//! They are reported, never failed on: the benchmark exits 0 whatever they say, and tests never
//! time anything.

use crate::display;
use crate::results::{HeartbeatCost, Population, Tails};
use crate::scenario::Scenario;
use serde::Serialize;

/// Writes' saturation (heartbeat, re-register), as a share of the no-op server's on the same
/// transport.
const MIN_WRITE_RATIO: f64 = 0.90;
/// Discovery's saturation, likewise: it replies from the snapshot of each service's version.
const MIN_DISCOVERY_RATIO: f64 = 0.95;
/// "Flat from 1 k to 1 M": no larger population's ratio below this share of the ratio at the
/// smallest population (growing faster is noise, not a shortfall).
const FLATNESS: f64 = 0.9;
/// The objective at half of saturation, for the registry's median tails, wherever the no-op
/// server's median tails meet it at the same rate.
pub(crate) const SLO: &str = "p99 <= 500µs, p99.9 <= 1ms";
const SLO_P99_US: f64 = 500.0;
const SLO_P999_US: f64 = 1000.0;
/// At half of saturation, the registry's median p99 and p99.9 at most this many times the no-op
/// server's at the same rate.
const MAX_TAIL_RATIO: f64 = 1.2;
/// Resident memory per registered instance, checked at the largest population.
const MAX_RSS_PER_INSTANCE: f64 = 1200.0;
/// The population the memory target is stated at: below it the registry's fixed costs decide
/// the figure, which is shown but not judged.
const RSS_JUDGED_FROM: u64 = 1_000_000;

/// One target and what was measured against it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Check {
    pub target: String,
    pub measured: String,
    /// `None`: not judged, as the target applies only where the no-op server meets it.
    pub met: Option<bool>,
}

/// The minimum share of the no-op server's saturation for `scenario`.
fn min_ratio(scenario: Scenario) -> f64 {
    match scenario {
        Scenario::Discover => MIN_DISCOVERY_RATIO,
        Scenario::Heartbeat | Scenario::Reregister => MIN_WRITE_RATIO,
    }
}

/// Whether median tails meet the SLO; `None` without figures.
fn meets_slo(tails: &Tails) -> Option<bool> {
    Some(tails.p99_us? <= SLO_P99_US && tails.p999_us? <= SLO_P999_US)
}

fn tails(t: &Tails) -> String {
    format!(
        "p99 {}, p99.9 {}",
        display::latency(t.p99_us),
        display::latency(t.p999_us)
    )
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
            let min = min_ratio(point.scenario);
            checks.push(Check {
                target: format!(
                    "{} at {} instances >= {} of no-op",
                    point.scenario.name(),
                    display::count(p.instances),
                    display::ratio(min)
                ),
                measured: display::ratio(point.ratio),
                met: Some(point.ratio >= min),
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
                met: Some(larger.iter().all(|&r| r >= FLATNESS * smallest)),
            });
        }
    }
    for p in populations {
        for point in &p.points {
            let (registry, noop) = (&point.slo.registry, &point.slo.noop);
            let at = format!(
                "{} at {} instances, half saturation ({}), medians of {} runs",
                point.scenario.name(),
                display::count(p.instances),
                display::rate(point.slo.rate),
                registry.runs.len()
            );
            let noop_meets = meets_slo(noop);
            let measured = format!("{}; the no-op {}", tails(registry), tails(noop));
            checks.push(Check {
                target: format!("{at}: {SLO} where the no-op meets it"),
                measured: measured.clone(),
                met: match noop_meets {
                    Some(true) => meets_slo(registry).or(Some(false)),
                    _ => None,
                },
            });
            let within = |r: Option<f64>, n: Option<f64>| Some(r? <= MAX_TAIL_RATIO * n?);
            checks.push(Check {
                target: format!("{at}: p99 and p99.9 within {MAX_TAIL_RATIO}x the no-op's"),
                measured,
                met: Some(
                    within(registry.p99_us, noop.p99_us) == Some(true)
                        && within(registry.p999_us, noop.p999_us) == Some(true),
                ),
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
            met: (largest.instances >= RSS_JUDGED_FROM)
                .then_some(largest.rss_per_instance_bytes <= MAX_RSS_PER_INSTANCE),
        });
    }
    for cost in heartbeat_cost {
        checks.push(Check {
            target: format!(
                "a WebSocket heartbeat costs the server less CPU per instance than heartbeat.json (batch {})",
                cost.batch
            ),
            measured: format!("WebSocket/HTTP {}", display::ratio(cost.ratio)),
            met: Some(cost.ratio < 1.0),
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
        met: Some(failed == 0),
    });
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::LoadAverage;
    use crate::measure::Sample;
    use crate::results::{Point, Saturation, SloRun};

    fn sample(rate: f64, p99: f64) -> Sample {
        Sample {
            rate,
            ok: 1,
            failed: 0,
            failures: Default::default(),
            p99_us: Some(p99),
            p999_us: Some(2.0 * p99),
            response_p99_us: None,
        }
    }

    /// A population of `instances` whose only scenario, heartbeat, reaches `ratio` of no-op,
    /// and at half of saturation p99 `registry_p99` against the no-op's `noop_p99` (p99.9 twice
    /// that).
    fn point(
        instances: u64,
        ratio: f64,
        rss_per_instance_bytes: f64,
        (registry_p99, noop_p99): (f64, f64),
    ) -> Population {
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
                noop: Saturation::of(vec![sample(100.0, 100.0)]),
                registry: Saturation::of(vec![sample(100.0 * ratio, 100.0)]),
                ratio,
                slo: SloRun {
                    rate: 50.0 * ratio,
                    registry: Tails::of(vec![sample(50.0 * ratio, registry_p99)]),
                    noop: Tails::of(vec![sample(50.0 * ratio, noop_p99)]),
                },
            }],
        }
    }

    fn population(instances: u64, ratio: f64, rss_per_instance_bytes: f64) -> Population {
        point(instances, ratio, rss_per_instance_bytes, (100.0, 100.0))
    }

    fn verdicts(populations: &[Population]) -> Vec<(String, Option<bool>)> {
        check(populations, &[Scenario::Heartbeat], &[])
            .into_iter()
            .map(|c| (c.target, c.met))
            .collect()
    }

    fn verdict(v: &[(String, Option<bool>)], part: &str) -> Option<bool> {
        v.iter().find(|(t, _)| t.contains(part)).unwrap().1
    }

    #[test]
    fn flat_means_no_loss_as_the_population_grows() {
        let growing = verdicts(&[
            population(1_000_000, 0.95, 1000.0),
            population(1_000, 0.91, 3000.0),
        ]);
        assert_eq!(
            verdict(&growing, "flat"),
            Some(true),
            "a ratio that grows is not a shortfall"
        );
        let falling = verdicts(&[
            population(1_000, 0.95, 3000.0),
            population(1_000_000, 0.80, 1000.0),
        ]);
        assert_eq!(verdict(&falling, "flat"), Some(false));
        assert_eq!(verdict(&falling, "1M instances >="), Some(false));
    }

    #[test]
    fn writes_need_nine_tenths_of_the_no_op_and_discovery_more() {
        assert_eq!(min_ratio(Scenario::Heartbeat), 0.90);
        assert_eq!(min_ratio(Scenario::Reregister), 0.90);
        assert_eq!(min_ratio(Scenario::Discover), 0.95);
        let v = verdicts(&[population(1_000, 0.89, 1000.0)]);
        assert_eq!(verdict(&v, ">= 90% of no-op"), Some(false));
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
                Some(true)
            )
        );
        assert!(v.iter().all(|(_, met)| *met == Some(true)), "{v:?}");
        let small = verdicts(&[population(100_000, 0.9, 1300.0)]);
        assert_eq!(
            verdict(&small, "RSS per instance at 100k"),
            None,
            "below 1M instances fixed costs decide the figure"
        );
    }

    #[test]
    fn latency_at_half_saturation_is_judged_against_the_no_op() {
        // p99 first, p99.9 twice it: the registry's, then the no-op's.
        let v = verdicts(&[point(1_000, 0.9, 1000.0, (450.0, 400.0))]);
        assert_eq!(verdict(&v, "where the no-op meets it"), Some(true));
        assert_eq!(verdict(&v, "within 1.2x"), Some(true));
        let slower = verdicts(&[point(1_000, 0.9, 1000.0, (600.0, 400.0))]);
        assert_eq!(verdict(&slower, "where the no-op meets it"), Some(false));
        assert_eq!(verdict(&slower, "within 1.2x"), Some(false));
        let noisy = verdicts(&[point(1_000, 0.9, 1000.0, (2000.0, 1800.0))]);
        assert_eq!(
            verdict(&noisy, "where the no-op meets it"),
            None,
            "the no-op misses it too"
        );
        assert_eq!(verdict(&noisy, "within 1.2x"), Some(true));
    }
}
