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

/// One broken promise, printed as `discover p99 = 812µs > 500µs`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Violation {
    pub what: String,
    pub measured: String,
    pub limit: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {} > {}", self.what, self.measured, self.limit)
    }
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
                let limit = display::latency(crate::clock::nanos(b.limit));
                if latency.is_empty() {
                    return Some(Violation {
                        what: format!("{op} {}", b.name),
                        measured: "no successful reply".to_owned(),
                        limit,
                    });
                }
                let measured = latency.value_at_quantile(b.percentile / 100.0);
                (measured > crate::clock::nanos(b.limit)).then(|| Violation {
                    what: format!("{op} {}", b.name),
                    measured: display::latency(measured),
                    limit,
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
            measured: format!("{rate:.6}"),
            limit: format!("{max}"),
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
    }

    #[test]
    fn no_successful_reply_breaks_latency_bounds() {
        let h = histogram(&[]);
        assert_eq!(slo("p99=1s").check_latency("heartbeat", &h).len(), 1);
    }

    #[test]
    fn error_rate_bound() {
        let s = Slo {
            latency: vec![],
            max_error_rate: Some(0.001),
        };
        assert!(s.check_errors(10_000, 10).is_none());
        assert!(s.check_errors(10_000, 11).is_some());
        assert!(s.check_errors(0, 0).is_none());
        assert!(Slo::default().check_errors(0, 5).is_none());
    }
}
