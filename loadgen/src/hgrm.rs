//! A latency histogram in HdrHistogram's percentile-distribution text format (`.hgrm`), the one
//! Java's `Histogram.outputPercentileDistribution` and wrk2 print and HdrHistogram's plotter
//! reads: a line per percentile tick (value, percentile, total count to it, 1/(1-percentile)),
//! 5 ticks per half distance to 100%, then the Mean/StdDeviation, Max/Total count and
//! Buckets/SubBuckets trailer. The hdrhistogram crate serializes only to the binary V2 formats,
//! so the text is written here from its quantile iterator, as the Java code writes it.
//!
//! The histogram holds nanoseconds; the file gives milliseconds, as wrk2's does (and as the
//! plotter's axis says), with as many decimals as the histogram has significant digits.

use hdrhistogram::Histogram;
use std::fmt::Write;

/// Percentile ticks per half distance to 100%, Java's and wrk2's default.
const TICKS_PER_HALF_DISTANCE: u32 = 5;
/// Nanoseconds per millisecond, the unit of the file.
const NANOS_PER_UNIT: f64 = 1e6;

/// `h` (nanoseconds) as `.hgrm` text in milliseconds.
pub(crate) fn write(h: &Histogram<u64>) -> String {
    let digits = usize::from(h.sigfig());
    let ms = |nanos: f64| nanos / NANOS_PER_UNIT;
    let mut out = String::new();
    let _ = write!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
            total += v.count_since_last_iteration();
            let value = ms(v.value_iterated_to() as f64);
            let q = v.quantile_iterated_to();
            if q < 1.0 {
                let _ = writeln!(
                    out,
                    "{value:12.digits$} {q:2.12} {total:10} {:14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(out, "{value:12.digits$} {q:2.12} {total:10}");
            }
        }
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:12.digits$}, StdDeviation   = {:12.digits$}]",
        ms(h.mean()),
        ms(h.stdev())
    );
    let _ = writeln!(
        out,
        "#[Max     = {:12.digits$}, Total count    = {:12}]",
        ms(h.max() as f64),
        h.len()
    );
    // The sub-bucket count is a power of two that holds 2 * 10^digits values at unit
    // resolution, as HdrHistogram sizes it; the crate does not expose it.
    let sub_buckets = (2 * 10u64.pow(u32::from(h.sigfig()))).next_power_of_two();
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        sub_buckets
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tally::histogram;

    /// The value, percentile, total count and 1/(1-percentile) columns of the tick lines.
    fn ticks(text: &str) -> Vec<(f64, f64, u64, Option<f64>)> {
        text.lines()
            .skip(2)
            .take_while(|l| !l.starts_with('#'))
            .map(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                (
                    cols[0].parse().unwrap(),
                    cols[1].parse().unwrap(),
                    cols[2].parse().unwrap(),
                    cols.get(3).map(|c| c.parse().unwrap()),
                )
            })
            .collect()
    }

    #[test]
    fn percentile_distribution_as_hdrhistogram_prints_it() {
        let mut h = histogram();
        // 1 ms to 10 ms, a thousand values, then one at 100 ms.
        for i in 1..=1000u64 {
            h.record(i * 10_000 + 990_000).unwrap();
        }
        h.record(100_000_000).unwrap();
        let text = write(&h);
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            "       Value     Percentile TotalCount 1/(1-Percentile)"
        );
        assert_eq!(lines.next().unwrap(), "");
        let ticks = ticks(&text);
        // The first tick is the minimum, at percentile 0 and the count of values up to it.
        assert_eq!(ticks[0].1, 0.0);
        assert!((ticks[0].0 - 1.0).abs() < 0.002, "{:?}", ticks[0]);
        assert_eq!(ticks[0].2, 1);
        assert_eq!(ticks[0].3, Some(1.0));
        // A tick line reads like Java's: `%12.3f %2.12f %10d %14.2f`.
        let half = text
            .lines()
            .find(|l| l.contains(" 0.500000000000 "))
            .unwrap();
        assert_eq!(half.len(), 12 + 1 + 14 + 1 + 10 + 1 + 14, "{half:?}");
        assert!(half.trim_start().starts_with("6.00"), "{half:?}");
        assert!(half.ends_with("           2.00"), "{half:?}");
        // Ticks climb by fives per half distance: 0, 0.1, ..., 0.5, 0.55, ...
        let levels: Vec<f64> = ticks.iter().map(|t| t.1).take(8).collect();
        assert_eq!(levels, [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.55, 0.6]);
        // Values, counts and percentiles only grow; the last line is at 100 %, the maximum,
        // every value counted, and without the infinite 1/(1-percentile).
        for pair in ticks.windows(2) {
            assert!(pair[0].0 <= pair[1].0 && pair[0].1 < pair[1].1 && pair[0].2 <= pair[1].2);
        }
        let last = ticks.last().unwrap();
        assert_eq!((last.1, last.2, last.3), (1.0, 1001, None));
        assert!((last.0 - 100.0).abs() < 0.1, "{last:?}");
        let trailer: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
        assert_eq!(trailer.len(), 3);
        assert!(
            trailer[0].starts_with("#[Mean    =        6.0"),
            "{}",
            trailer[0]
        );
        assert!(trailer[0].contains(", StdDeviation   = "));
        assert!(
            trailer[1].starts_with("#[Max     =      100.0"),
            "{}",
            trailer[1]
        );
        assert!(trailer[1].ends_with(", Total count    =         1001]"));
        assert!(
            trailer[2].ends_with(", SubBuckets     =         2048]"),
            "{}",
            trailer[2]
        );
    }

    #[test]
    fn an_empty_histogram_has_the_header_and_the_trailer() {
        let text = write(&histogram());
        assert!(ticks(&text).is_empty());
        assert_eq!(text.lines().filter(|l| l.starts_with('#')).count(), 3);
        assert!(text.contains("Total count    =            0]"));
    }
}
