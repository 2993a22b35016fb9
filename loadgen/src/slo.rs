//! The latency and error-rate objective a run is checked against
//! (`--slo p99=500us,p999=1ms --max-error-rate 0.001`), and the verdict.

use crate::display;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::fmt;
use std::time::Duration;

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Slo {
    /// Latency bounds every operation must meet.
    pub latency: Vec<Bound>,
    /// Largest allowed share of failed requests, over all operations.
    pub max_error_rate: Option<f64>,
}

/// "The `percentile` of latencies is at most `limit`."
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bound {
    /// As written: `p99`, `p999`, `max`.
    pub name: String,
    pub percentile: f64,
    #[serde(serialize_with = "display::serialize_duration")]
    pub limit: Duration,
}

/// One broken promise, printed as `discover p99 = 812µs > 500µs` and written to the JSON report
/// with its figures as numbers: `{"what": "discover p99", "op": "discover", "metric": "p99",
/// "percentile": 99.0, "unit": "us", "measured": 812.4, "limit": 500.0}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Violation {
    /// The operation and the metric, as the table names them: `discover p99`, `error rate`.
    pub what: String,
    /// The operation whose figure broke the bound (`discover`, ...); `all` for the error rate,
    /// which is over all operations.
    pub op: String,
    /// The bound's metric as written in `--slo` (`p99`, `p999`, `max`), or `error_rate`.
    pub metric: String,
    /// The latency percentile the bound is on (99.9 for `p999`, 100 for `max`); `None` for the
    /// error rate.
    pub percentile: Option<f64>,
    /// What `measured` and `limit` are in.
    pub unit: Unit,
    /// The measured figure; `None` when there is none (no successful reply to take a latency
    /// from).
    pub measured: Option<f64>,
    /// The largest figure the bound allows.
    pub limit: f64,
}

/// The unit of a violation's figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Unit {
    /// Latency in microseconds.
    #[serde(rename = "us")]
    Micros,
    /// A share of the requests, between 0 and 1.
    #[serde(rename = "ratio")]
    Ratio,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (measured, limit) = match self.unit {
            Unit::Micros => (self.measured.map(micros), micros(self.limit)),
            Unit::Ratio => (
                self.measured.map(|m| format!("{m:.6}")),
                format!("{}", self.limit),
            ),
        };
        let measured = measured.unwrap_or_else(|| "no successful reply".to_owned());
        write!(f, "{} = {measured} > {limit}", self.what)
    }
}

/// Microseconds as the table writes a latency.
fn micros(us: f64) -> String {
    display::latency((us * 1e3).round() as u64)
}

impl Slo {
    /// Parses `p99=500us,p999=1ms,max=10ms`.
    pub fn parse_latency(spec: &str) -> Result<Vec<Bound>, String> {
        spec.split(',')
            .map(|part| {
                let (name, limit) = part
                    .trim()
                    .split_once('=')
                    .ok_or_else(|| format!("SLO term {part:?} is not NAME=DURATION"))?;
                let limit = humantime::parse_duration(limit.trim())
                    .map_err(|e| format!("SLO term {part:?}: {e}"))?;
                Ok(Bound {
                    name: name.trim().to_owned(),
                    percentile: percentile(name.trim())?,
                    limit,
                })
            })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.latency.is_empty() && self.max_error_rate.is_none()
    }

    /// The latency bounds `op` breaks. With no successful reply at all there is nothing to
    /// vouch for the latency, which breaks every bound.
    pub fn check_latency(&self, op: &str, latency: &Histogram<u64>) -> Vec<Violation> {
        self.latency
            .iter()
            .filter_map(|b| {
                let limit = crate::clock::nanos(b.limit);
                let measured = match latency.is_empty() {
                    true => None,
                    false => Some(latency.value_at_quantile(b.percentile / 100.0)),
                };
                if measured.is_some_and(|m| m <= limit) {
                    return None;
                }
                Some(Violation {
                    what: format!("{op} {}", b.name),
                    op: op.to_owned(),
                    metric: b.name.clone(),
                    percentile: Some(b.percentile),
                    unit: Unit::Micros,
                    measured: measured.map(|m| m as f64 / 1e3),
                    limit: limit as f64 / 1e3,
                })
            })
            .collect()
    }

    /// The error-rate bound, if `failed` out of `ok + failed` requests break it.
    pub fn check_errors(&self, ok: u64, failed: u64) -> Option<Violation> {
        let max = self.max_error_rate?;
        let rate = if ok + failed == 0 {
            0.0
        } else {
            failed as f64 / (ok + failed) as f64
        };
        (rate > max).then(|| Violation {
            what: "error rate".to_owned(),
            op: "all".to_owned(),
            metric: "error_rate".to_owned(),
            percentile: None,
            unit: Unit::Ratio,
            measured: Some(rate),
            limit: max,
        })
    }
}

/// `p99` → 99, `p999` → 99.9, `p9999` → 99.99, `p99.9` → 99.9, `p50` → 50, `max` → 100.
fn percentile(name: &str) -> Result<f64, String> {
    if name == "max" {
        return Ok(100.0);
    }
    let digits = name
        .strip_prefix('p')
        .filter(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("SLO percentile {name:?} is not like p99, p999 or max"))?;
    let value: f64 = if digits.contains('.') || digits.len() <= 2 {
        digits
            .parse()
            .map_err(|_| format!("bad percentile {name:?}"))?
    } else {
        format!("{}.{}", &digits[..2], &digits[2..])
            .parse()
            .map_err(|_| format!("bad percentile {name:?}"))?
    };
    if value > 0.0 && value <= 100.0 {
        Ok(value)
    } else {
        Err(format!("percentile {name:?} is not within (0, 100]"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slo(spec: &str) -> Slo {
        Slo {
            latency: Slo::parse_latency(spec).unwrap(),
            max_error_rate: None,
        }
    }

    #[test]
    fn parses_percentiles_and_durations() {
        let s = slo("p99=500us, p999=1ms,p50=100µs,max=2s,p99.99=3ms");
        let got: Vec<_> = s.latency.iter().map(|b| (b.percentile, b.limit)).collect();
        assert_eq!(
            got,
            vec![
                (99.0, Duration::from_micros(500)),
                (99.9, Duration::from_millis(1)),
                (50.0, Duration::from_micros(100)),
                (100.0, Duration::from_secs(2)),
                (99.99, Duration::from_millis(3)),
            ]
        );
        assert_eq!(s.latency[1].name, "p999");
    }

    #[test]
    fn rejects_bad_terms() {
        for bad in [
            "p99",
            "p99=fast",
            "q99=1ms",
            "p=1ms",
            "p0=1ms",
            "",
            "p100.5=1ms",
        ] {
            assert!(Slo::parse_latency(bad).is_err(), "{bad:?} was accepted");
        }
    }

    fn histogram(samples_us: &[u64]) -> Histogram<u64> {
        let mut h = Histogram::new(3).unwrap();
        for s in samples_us {
            h.record(s * 1000).unwrap();
        }
        h
    }

    #[test]
    fn latency_within_bounds_is_met() {
        let h = histogram(&[100; 1000]);
        assert!(slo("p99=500us,max=1ms")
            .check_latency("discover", &h)
            .is_empty());
    }

    #[test]
    fn tail_over_a_bound_is_a_violation() {
        // 990 fast replies and 10 at 2 ms: p99 is fast, p99.9 is not.
        let mut samples = vec![100; 990];
        samples.extend([2000; 10]);
        let h = histogram(&samples);
        let v = slo("p99=500us,p999=1ms").check_latency("discover", &h);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].what, "discover p999");
        assert_eq!(v[0].to_string(), "discover p999 = 2.00ms > 1.00ms");
        assert_eq!(
            (v[0].op.as_str(), v[0].metric.as_str()),
            ("discover", "p999")
        );
        assert_eq!((v[0].percentile, v[0].unit), (Some(99.9), Unit::Micros));
        assert_eq!(v[0].limit, 1000.0);
        // The histogram keeps three significant digits.
        assert!((v[0].measured.unwrap() - 2000.0).abs() <= 2.0, "{v:?}");
        assert_eq!(
            serde_json::to_value(&v[0]).unwrap(),
            serde_json::json!({
                "what": "discover p999",
                "op": "discover",
                "metric": "p999",
                "percentile": 99.9,
                "unit": "us",
                "measured": v[0].measured.unwrap(),
                "limit": 1000.0,
            })
        );
    }

    #[test]
    fn no_successful_reply_breaks_latency_bounds() {
        let h = histogram(&[]);
        let v = slo("p99=1s").check_latency("heartbeat", &h);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].measured, None);
        assert_eq!(v[0].limit, 1e6);
        assert_eq!(
            v[0].to_string(),
            "heartbeat p99 = no successful reply > 1.00s"
        );
        assert!(serde_json::to_value(&v[0]).unwrap()["measured"].is_null());
    }

    #[test]
    fn error_rate_bound() {
        let s = Slo {
            latency: vec![],
            max_error_rate: Some(0.001),
        };
        assert!(s.check_errors(10_000, 10).is_none());
        let v = s.check_errors(10_000, 11).unwrap();
        assert_eq!((v.op.as_str(), v.metric.as_str()), ("all", "error_rate"));
        assert_eq!((v.percentile, v.unit, v.limit), (None, Unit::Ratio, 0.001));
        assert_eq!(v.measured, Some(11.0 / 10_011.0));
        assert_eq!(v.to_string(), "error rate = 0.001099 > 0.001");
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(
            (json["unit"].as_str(), json["limit"].as_f64()),
            (Some("ratio"), Some(0.001))
        );
        assert!(s.check_errors(0, 0).is_none());
        assert!(Slo::default().check_errors(0, 5).is_none());
    }
}
