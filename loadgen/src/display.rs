//! How durations, latencies and rates are written: for people in the table and progress lines,
//! and as humantime strings in the JSON configuration.

use std::time::Duration;

/// `850ns`, `312µs`, `1.21ms`, `2.50s`.
pub(crate) fn latency(nanos: u64) -> String {
    match nanos {
        n if n < 1_000 => format!("{n}ns"),
        n if n < 1_000_000 => format!("{}µs", n / 1_000),
        n if n < 1_000_000_000 => format!("{:.2}ms", n as f64 / 1e6),
        n => format!("{:.2}s", n as f64 / 1e9),
    }
}

/// Requests per second, rounded to a whole request.
pub(crate) fn rate(per_second: f64) -> String {
    format!("{per_second:.0}/s")
}

/// Serializes a `Duration` the way it is given on the command line (`5s`, `500us`).
pub(crate) fn serialize_duration<S: serde::Serializer>(
    d: &Duration,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_duration(*d))
}

/// Serializes an optional `Duration` as [`serialize_duration`] does, `None` as `null`.
pub(crate) fn serialize_some_duration<S: serde::Serializer>(
    d: &Option<Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => serialize_duration(d, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_read_naturally() {
        assert_eq!(latency(850), "850ns");
        assert_eq!(latency(312_400), "312µs");
        assert_eq!(latency(1_214_000), "1.21ms");
        assert_eq!(latency(2_500_000_000), "2.50s");
    }
}
