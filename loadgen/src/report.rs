//! The outcome of a run: per-operation counts, rates and latency percentiles, failures by kind,
//! the SLO verdict and the whole configuration; with `--attack` how the hostile connections
//! fared, with `--probe` how `/health` and `/metrics` answered. Printed as a table for people and
//! written as JSON (`--json FILE`) for machines.

use crate::attack::AttackerReport;
use crate::config::{Config, Pacing};
use crate::display;
use crate::op::Op;
use crate::probe::ProbeReport;
use crate::scenario::Kind;
use crate::slo::Violation;
use crate::tally::{OpTally, Tally};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::{self, Write};

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub config: Config,
    pub prefill: Option<Prefill>,
    /// Length of the measured time, in seconds.
    pub seconds: f64,
    /// Requests per second asked for; `None` in closed loop.
    pub asked_rate: Option<f64>,
    /// Replies (successful or not) per second in the measured time; pushes are not requests
    /// and are left out.
    pub achieved_rate: f64,
    pub ops: Vec<OpReport>,
    /// All operations together.
    pub total: OpReport,
    pub slo: Verdict,
    /// How each `--attack` kind fared, over the whole run (warm-up included).
    pub attack: Vec<AttackerReport>,
    /// `/health` and `/metrics` under `--probe`, over the whole run (warm-up included).
    pub probes: Vec<ProbeReport>,
    /// The measured time second by second, all operations together (pushes, which are not
    /// requests, left out): what completed in each second.
    pub per_second: Vec<Second>,
    /// The `total` row's latency histogram, for `--hgrm`.
    #[serde(skip)]
    latency: Samples,
}

/// A latency histogram that `{:?}` shows as its count rather than its thousands of buckets.
#[derive(Clone)]
struct Samples(Histogram<u64>);

impl fmt::Debug for Samples {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Histogram({} samples)", self.0.len())
    }
}

/// One second of the measured time: the requests that completed in it. A request counts in the
/// second its reply (or failure) came in; those still in flight when the measured time ends
/// count in its last second, so the seconds add up to the report's counts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Second {
    /// 1 for the first second of the measured time.
    pub second: u64,
    /// How long this second is, in seconds: 1, but for a last one cut short by a `--duration`
    /// that is not whole seconds.
    pub seconds: f64,
    /// Requests completed, successful or not.
    pub requests: u64,
    /// Requests that failed (any kind of failure).
    pub errors: u64,
    /// Latency of this second's successful replies (from the intended send time), from a
    /// histogram of this second alone; `None` when none succeeded.
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Prefill {
    /// Instances registered by this prefill (those already registered left out).
    pub instances: u64,
    pub seconds: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct OpReport {
    pub op: &'static str,
    pub ok: u64,
    pub failed: u64,
    /// Replies per second.
    pub rate: f64,
    /// Latency of the successful replies, from the intended send time; `None` when there was
    /// none.
    pub latency_us: Option<Percentiles>,
    /// Response time of the same replies, from the actual send: without the wait for a free
    /// connection in the load generator, which grows without bound above saturation.
    pub response_us: Option<Percentiles>,
    /// Failures by kind.
    pub failures: BTreeMap<String, u64>,
}

/// Microseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
    pub min: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    /// Whether there was any objective to check.
    pub checked: bool,
    pub met: bool,
    pub violations: Vec<Violation>,
}

impl Report {
    pub fn new(config: Config, prefill: Option<Prefill>, tally: &Tally) -> Report {
        let seconds = config.duration.as_secs_f64();
        let mut all = OpTally::default();
        let mut violations = Vec::new();
        let mut ops = Vec::new();
        for (op, t) in tally.ops() {
            violations.extend(config.slo.check_latency(op.name(), &t.latency));
            all.latency
                .add(&t.latency)
                .expect("auto-resizing histograms add");
            all.response
                .add(&t.response)
                .expect("auto-resizing histograms add");
            for (f, n) in &t.failures {
                *all.failures.entry(f.clone()).or_insert(0) += n;
            }
            ops.push(OpReport::new(op.name(), t, seconds));
        }
        let total = OpReport::new("all", &all, seconds);
        violations.extend(config.slo.check_errors(total.ok, total.failed));
        if ops.is_empty() && !config.slo.latency.is_empty() {
            violations.extend(config.slo.check_latency("all", &all.latency));
        }
        Report {
            prefill,
            seconds,
            asked_rate: match config.pacing {
                Pacing::Rate(r) => Some(r),
                Pacing::Max => None,
            },
            achieved_rate: total.rate
                - ops
                    .iter()
                    .filter(|o| o.op == Op::Push.name())
                    .map(|o| o.rate)
                    .sum::<f64>(),
            ops,
            total,
            slo: Verdict {
                checked: !config.slo.is_empty(),
                met: violations.is_empty(),
                violations,
            },
            config,
            attack: Vec::new(),
            probes: Vec::new(),
            per_second: Vec::new(),
            latency: Samples(all.latency),
        }
    }

    /// 0 when the SLO is met (or there is none), 1 when it is violated.
    pub fn exit_code(&self) -> u8 {
        if self.slo.met {
            0
        } else {
            1
        }
    }

    /// The latency of every successful reply in the measured time, all operations together:
    /// nanoseconds from the intended send time, the histogram of the `total` row's figures.
    pub fn latency_histogram(&self) -> &Histogram<u64> {
        &self.latency.0
    }

    /// [`Report::latency_histogram`] in HdrHistogram's percentile-distribution text format (the
    /// `.hgrm` that wrk2 prints and HdrHistogram's plotter reads), values in milliseconds: what
    /// `--hgrm FILE` writes.
    pub fn hgrm(&self) -> String {
        crate::hgrm::write(&self.latency.0)
    }

    /// The row of operation `name` (`register`, `heartbeat`, `unregister`, `discover`).
    pub fn op(&self, name: &str) -> Option<&OpReport> {
        self.ops.iter().find(|o| o.op == name)
    }

    /// The human table.
    pub fn table(&self) -> String {
        let c = &self.config;
        let mut out = String::new();
        let scenario: Vec<String> = c
            .scenario
            .iter()
            .map(|s| format!("{}={}", s.kind.name(), s.weight))
            .collect();
        let _ = writeln!(
            out,
            "{}  scenario {}  {} measured after {} warm-up  cores {:?}  {} connections",
            targets(c),
            scenario.join(","),
            humantime::format_duration(c.duration),
            humantime::format_duration(c.warmup),
            c.cores,
            c.connections,
        );
        if let Some(p) = &self.prefill {
            let _ = writeln!(
                out,
                "prefilled {} instances in {:.2}s",
                p.instances, p.seconds
            );
        }
        if c.prefilled > 0 {
            let _ = writeln!(out, "{} instances were already registered", c.prefilled);
        }
        if c.busy_poll {
            let _ = writeln!(out, "the workers polled without sleeping (--busy-poll)");
        }
        let asked = self
            .asked_rate
            .map_or("max (closed loop)".to_owned(), display::rate);
        let _ = writeln!(
            out,
            "rate asked {asked}  achieved {}\n",
            display::rate(self.achieved_rate)
        );
        let _ = writeln!(
            out,
            "{:<11} {:>10} {:>8} {:>10} {}",
            "operation",
            "ok",
            "failed",
            "rate",
            latency_columns()
        );
        let rows = self
            .ops
            .iter()
            .chain((self.ops.len() > 1).then_some(&self.total));
        for o in rows {
            let _ = writeln!(
                out,
                "{:<11} {:>10} {:>8} {:>10} {}",
                o.op,
                o.ok,
                o.failed,
                display::rate(o.rate),
                percentiles(o.latency_us.as_ref()),
            );
        }
        if self.asked_rate.is_some() {
            let _ = writeln!(
                out,
                "from the actual send (waits for a free connection left out):"
            );
            for o in &self.ops {
                let _ = writeln!(
                    out,
                    "{:<11} {:>10} {:>8} {:>10} {}",
                    o.op,
                    "",
                    "",
                    "",
                    percentiles(o.response_us.as_ref()),
                );
            }
        }
        for o in self.ops.iter().filter(|o| o.failed > 0) {
            for (kind, n) in &o.failures {
                let _ = writeln!(out, "  {} failed: {kind} x{n}", o.op);
            }
        }
        if !self.probes.is_empty() {
            let _ = writeln!(
                out,
                "\n{:<11} {:>10} {:>8} {:>10} {}",
                "probe",
                "ok",
                "failed",
                "",
                latency_columns()
            );
            for p in &self.probes {
                let _ = writeln!(
                    out,
                    "{:<11} {:>10} {:>8} {:>10} {}",
                    p.path,
                    p.ok,
                    p.failed,
                    "",
                    percentiles(p.latency_us.as_ref())
                );
                for (kind, n) in &p.failures {
                    let _ = writeln!(out, "  {} failed: {kind} x{n}", p.path);
                }
            }
        }
        if !self.attack.is_empty() {
            let _ = writeln!(
                out,
                "\n{:<10} {:>7} {:>7} {:>9} {:>8} {:>9} {:>12} {:>9}  replies",
                "attack", "conns", "every", "opened", "refused", "closed", "closed after", "open"
            );
            for a in &self.attack {
                let replies: Vec<String> =
                    a.replies.iter().map(|(s, n)| format!("{s} x{n}")).collect();
                let after = a.closed_after_ms.as_ref().map_or("-".to_owned(), |l| {
                    format!(
                        "{}/{}",
                        display::latency((l.p50 * 1e6) as u64),
                        display::latency((l.max * 1e6) as u64)
                    )
                });
                let _ = writeln!(
                    out,
                    "{:<10} {:>7} {:>7} {:>9} {:>8} {:>9} {:>12} {:>9}  {}",
                    a.kind.name(),
                    a.connections,
                    humantime::format_duration(a.every).to_string(),
                    a.opened,
                    a.connect_failed,
                    a.closed_by_server,
                    after,
                    a.open_at_end,
                    if replies.is_empty() {
                        "-".to_owned()
                    } else {
                        replies.join(", ")
                    },
                );
            }
        }
        out
    }

    /// The closing lines: `SLO met`, or one line per violation (so a violated line is last).
    pub fn verdict_lines(&self) -> Vec<String> {
        if !self.slo.checked {
            return vec![];
        }
        if self.slo.met {
            return vec!["SLO met".to_owned()];
        }
        self.slo
            .violations
            .iter()
            .map(|v| format!("SLO violated: {v}"))
            .collect()
    }
}

/// The heads of the latency columns, as [`percentiles`] fills them.
/// Where the run went: `target URL`, or with several, `targets URL, URL`, and for the
/// replication scenario which one it registered on and which one pushed.
fn targets(c: &Config) -> String {
    match c.targets().as_slice() {
        [one] => format!("target {one}"),
        [register, subscribe] if c.scenario.iter().any(|s| s.kind == Kind::Replication) => {
            format!("targets {register} (registers), {subscribe} (pushes)")
        }
        all => format!("targets {}", all.join(", ")),
    }
}

fn latency_columns() -> String {
    let heads = ["min", "mean", "p50", "p90", "p95", "p99", "p99.9", "max"];
    let heads: Vec<String> = heads.iter().map(|h| format!("{h:>8}")).collect();
    heads.join(" ")
}

/// `min mean p50 p90 p95 p99 p99.9 max` in table columns (the order vegeta prints them in).
fn percentiles(l: Option<&Percentiles>) -> String {
    let p = |f: fn(&Percentiles) -> f64| {
        l.map_or("-".to_owned(), |l| {
            display::latency((f(l) * 1e3).round() as u64)
        })
    };
    format!(
        "{:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        p(|l| l.min),
        p(|l| l.mean),
        p(|l| l.p50),
        p(|l| l.p90),
        p(|l| l.p95),
        p(|l| l.p99),
        p(|l| l.p999),
        p(|l| l.max)
    )
}

impl OpReport {
    fn new(op: &'static str, t: &OpTally, seconds: f64) -> OpReport {
        let ok = t.latency.len();
        let failed = t.failed();
        OpReport {
            op,
            ok,
            failed,
            rate: (ok + failed) as f64 / seconds,
            latency_us: (!t.latency.is_empty()).then(|| Percentiles::of(&t.latency)),
            response_us: (!t.response.is_empty()).then(|| Percentiles::of(&t.response)),
            failures: t
                .failures
                .iter()
                .map(|(f, n)| (f.to_string(), *n))
                .collect(),
        }
    }
}

impl Percentiles {
    pub(crate) fn of(h: &Histogram<u64>) -> Percentiles {
        let us = |q: f64| h.value_at_quantile(q) as f64 / 1e3;
        Percentiles {
            p50: us(0.5),
            p90: us(0.9),
            p95: us(0.95),
            p99: us(0.99),
            p999: us(0.999),
            max: h.max() as f64 / 1e3,
            mean: h.mean() / 1e3,
            min: h.min() as f64 / 1e3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::Failure;
    use crate::op::Op;
    use crate::scenario::Share;
    use crate::slo::Slo;
    use std::time::Duration;

    fn report(slo: &str, max_error_rate: Option<f64>) -> Report {
        let mut tally = Tally::default();
        for _ in 0..1000 {
            tally.success(Op::Discover, 200_000, 100_000);
        }
        tally.failure(Op::Discover, Failure::Timeout);
        let config = Config {
            duration: Duration::from_secs(2),
            slo: Slo {
                latency: Slo::parse_latency(slo).unwrap(),
                max_error_rate,
            },
            ..Config::default()
        };
        Report::new(config, None, &tally)
    }

    #[test]
    fn counts_and_rates() {
        let r = report("p99=1ms", None);
        let d = r.op("discover").unwrap();
        assert_eq!((d.ok, d.failed), (1000, 1));
        assert_eq!(d.rate, 500.5);
        assert_eq!(d.failures["timeout"], 1);
        assert!((199.0..=201.0).contains(&d.latency_us.as_ref().unwrap().p99));
        assert_eq!(r.achieved_rate, 500.5);
        assert!(r.table().contains("discover"));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["config"]["duration"], "2s");
        assert_eq!(json["ops"][0]["op"], "discover");
    }

    #[test]
    fn the_table_names_every_target() {
        let first_line = |config: Config| {
            let table = Report::new(config, None, &Tally::default()).table();
            table.lines().next().unwrap().to_owned()
        };
        let one = Config::default();
        assert!(first_line(one.clone()).starts_with("target http://127.0.0.1:8080  scenario"));
        let three = Config {
            more_targets: vec![
                "http://127.0.0.1:8081".into(),
                "http://127.0.0.1:8082".into(),
            ],
            ..one
        };
        assert!(first_line(three.clone()).starts_with(
            "targets http://127.0.0.1:8080, http://127.0.0.1:8081, http://127.0.0.1:8082  "
        ));
        let replication = Config {
            scenario: Share::alone(Kind::Replication),
            more_targets: vec!["http://127.0.0.1:8081".into()],
            ..three
        };
        assert!(first_line(replication.clone()).starts_with(
            "targets http://127.0.0.1:8080 (registers), http://127.0.0.1:8081 (pushes)  "
        ));
        let json = serde_json::to_value(Report::new(replication, None, &Tally::default()));
        assert_eq!(
            json.unwrap()["config"]["more_targets"][0],
            "http://127.0.0.1:8081"
        );
    }

    #[test]
    fn min_mean_and_p95_beside_the_percentiles() {
        let mut tally = Tally::default();
        for us in 1..=100 {
            tally.success(Op::Heartbeat, us * 1000, us * 1000);
        }
        let r = Report::new(Config::default(), None, &tally);
        let l = r.op("heartbeat").unwrap().latency_us.clone().unwrap();
        let near = |got: f64, want: f64| (got - want).abs() <= want * 0.01;
        assert!(near(l.min, 1.0), "{l:?}");
        assert!(near(l.mean, 50.5), "{l:?}");
        assert!(near(l.p95, 95.0), "{l:?}");
        assert!(near(l.p90, 90.0) && near(l.p99, 99.0) && near(l.max, 100.0));
        let json = serde_json::to_value(&r).unwrap();
        let latency = &json["ops"][0]["latency_us"];
        for key in ["min", "mean", "p50", "p90", "p95", "p99", "p999", "max"] {
            assert!(latency[key].is_f64(), "{key} missing: {latency}");
        }
        let table = r.table();
        let head = table.lines().find(|l| l.starts_with("operation")).unwrap();
        let heads: Vec<_> = head.split_whitespace().collect();
        assert_eq!(
            heads,
            [
                "operation",
                "ok",
                "failed",
                "rate",
                "min",
                "mean",
                "p50",
                "p90",
                "p95",
                "p99",
                "p99.9",
                "max"
            ]
        );
        let row = table.lines().find(|l| l.starts_with("heartbeat")).unwrap();
        let cells: Vec<_> = row.split_whitespace().collect();
        assert_eq!(&cells[4..6], ["1µs", "50µs"]);
        assert_eq!(cells[8], "95µs");
        // Every column lines up under its head.
        assert_eq!(row.len() - row.matches('µ').count(), head.len());
    }

    #[test]
    fn verdicts_and_exit_codes() {
        let met = report("p99=1ms", Some(0.01));
        assert_eq!(
            (met.exit_code(), met.verdict_lines()),
            (0, vec!["SLO met".into()])
        );
        let slow = report("p99=100us", None);
        assert_eq!(slow.exit_code(), 1);
        assert_eq!(
            slow.verdict_lines().last().unwrap(),
            "SLO violated: discover p99 = 200µs > 100µs"
        );
        let json = serde_json::to_value(&slow).unwrap();
        let v = &json["slo"]["violations"][0];
        assert_eq!(
            (v["op"].as_str(), v["metric"].as_str()),
            (Some("discover"), Some("p99"))
        );
        assert_eq!(
            (v["percentile"].as_f64(), v["limit"].as_f64()),
            (Some(99.0), Some(100.0))
        );
        assert!(
            (199.0..=201.0).contains(&v["measured"].as_f64().unwrap()),
            "{v}"
        );
        assert_eq!(report("p99=1ms", Some(0.0001)).exit_code(), 1);
    }
}
