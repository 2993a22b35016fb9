//! The run second by second: the progress line (`12s/60s`, rate, p99, errors) and the report's
//! per-second series. Each worker counts the requests that complete in each of its periods and
//! sends a period when it is over; the main thread merges the workers' periods, prints a line
//! once every worker has reported one (unless quiet) and keeps the measured ones.
//!
//! Periods are seconds: those of the warm-up counted from the start (the last one cut short
//! where the measured time begins), then those of the measured time counted from its beginning
//! (the last one cut short where it ends, a `--duration` that is not whole seconds). Requests
//! still in flight when the measured time ends complete in its last second, so the series adds
//! up to the report's counts: like the report, a measured period counts only measured requests
//! (those intended in the measured time), and pushes, which are not requests, are left out.

use crate::clock::{Nanos, NANOS_PER_SEC};
use crate::display;
use crate::report::Second;
use crate::tally::histogram;
use crossbeam_channel::{Receiver, Sender};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    Warmup,
    Measured,
}

/// One worker's period, or all workers' merged.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// Position among the run's periods, the same in every worker.
    seq: u64,
    stage: Stage,
    /// 1 for the first period of its stage.
    index: u64,
    /// How long the period is.
    length: Nanos,
    /// The end of the period, from the beginning of its stage.
    ends_after: Nanos,
    ok: u64,
    failed: u64,
    latency: Histogram<u64>,
}

impl Snapshot {
    fn new(seq: u64, stage: Stage, index: u64, length: Nanos, ends_after: Nanos) -> Snapshot {
        Snapshot {
            seq,
            stage,
            index,
            length,
            ends_after,
            ok: 0,
            failed: 0,
            latency: histogram(),
        }
    }

    fn add(&mut self, other: &Snapshot) {
        self.ok += other.ok;
        self.failed += other.failed;
        self.latency
            .add(&other.latency)
            .expect("auto-resizing histograms always add");
    }

    /// The period as the report's series gives it.
    fn second(&self) -> Second {
        let us = |q: f64| {
            (!self.latency.is_empty()).then(|| self.latency.value_at_quantile(q) as f64 / 1e3)
        };
        Second {
            second: self.index,
            seconds: self.length as f64 / 1e9,
            requests: self.ok + self.failed,
            errors: self.failed,
            p50_us: us(0.5),
            p99_us: us(0.99),
        }
    }
}

/// A worker's side: counts the current period and sends it when it is over.
pub(crate) struct Interval {
    tx: Sender<Snapshot>,
    start: Nanos,
    measure_from: Nanos,
    stop_at: Nanos,
    current: Snapshot,
    ends_at: Nanos,
}

impl Interval {
    /// The periods of a run that starts at `start`, measures from `measure_from` and stops
    /// sending at `stop_at`.
    pub(crate) fn new(
        tx: Sender<Snapshot>,
        start: Nanos,
        measure_from: Nanos,
        stop_at: Nanos,
    ) -> Interval {
        let mut interval = Interval {
            tx,
            start,
            measure_from,
            stop_at,
            current: Snapshot::new(0, Stage::Warmup, 0, 0, 0),
            ends_at: start,
        };
        let stage = match start < measure_from {
            true => Stage::Warmup,
            false => Stage::Measured,
        };
        interval.current = interval.period(0, stage, 1);
        interval
    }

    /// Period `seq`, the `index`th second of `stage`.
    fn period(&mut self, seq: u64, stage: Stage, index: u64) -> Snapshot {
        let (origin, end) = match stage {
            Stage::Warmup => (self.start, self.measure_from),
            Stage::Measured => (self.measure_from, self.stop_at),
        };
        let begins_at = (origin + (index - 1) * NANOS_PER_SEC).min(end);
        self.ends_at = (origin + index * NANOS_PER_SEC).min(end);
        Snapshot::new(
            seq,
            stage,
            index,
            self.ends_at - begins_at,
            self.ends_at - origin,
        )
    }

    /// Whether the current period is the run's last: it takes every completion from its
    /// beginning on, those after the measured time included.
    fn is_last(&self) -> bool {
        self.current.stage == Stage::Measured && self.ends_at >= self.stop_at
    }

    /// Counts a successful request that completed at `now`, intended in the measured time if
    /// `measured`.
    pub(crate) fn success(&mut self, now: Nanos, latency: Nanos, measured: bool) {
        if let Some(s) = self.counting(now, measured) {
            s.ok += 1;
            s.latency.saturating_record(latency.max(1));
        }
    }

    /// Counts a failed request, as [`Interval::success`] does.
    pub(crate) fn failure(&mut self, now: Nanos, measured: bool) {
        if let Some(s) = self.counting(now, measured) {
            s.failed += 1;
        }
    }

    /// The period a request completed at `now` counts in; `None` for a warm-up request that
    /// completed in the measured time, which the report leaves out too.
    fn counting(&mut self, now: Nanos, measured: bool) -> Option<&mut Snapshot> {
        self.tick(now);
        (measured || self.current.stage == Stage::Warmup).then_some(&mut self.current)
    }

    /// Sends every period that is over by `now` (never the last, see [`Interval::finish`]).
    pub(crate) fn tick(&mut self, now: Nanos) {
        while !self.is_last() && now >= self.ends_at {
            self.advance();
        }
    }

    /// Sends the periods left, the last included, once the worker's last request is in. A
    /// worker that ran out of requests early sends the rest empty, so each period is reported
    /// by every worker.
    pub(crate) fn finish(mut self) {
        while !self.is_last() {
            self.advance();
        }
        // The collector going away only means nobody is watching.
        let _ = self.tx.send(self.current);
    }

    fn advance(&mut self) {
        let c = &self.current;
        let next = match c.stage == Stage::Warmup && self.ends_at >= self.measure_from {
            true => self.period(c.seq + 1, Stage::Measured, 1),
            false => self.period(c.seq + 1, c.stage, c.index + 1),
        };
        let _ = self.tx.send(std::mem::replace(&mut self.current, next));
    }
}

/// Merges the workers' periods until every worker has hung up: prints a line per period on
/// stderr unless `quiet`, and returns the measured periods, the report's per-second series.
/// `warmup` and `measured` are the lengths of the stages, for the `12s/60s` of the lines.
pub(crate) fn collect(
    rx: Receiver<Snapshot>,
    workers: usize,
    quiet: bool,
    warmup: Duration,
    measured: Duration,
) -> Vec<Second> {
    let mut pending: BTreeMap<u64, (usize, Snapshot)> = BTreeMap::new();
    let mut series = Vec::new();
    for s in rx {
        let entry = pending.entry(s.seq).or_insert_with(|| {
            (
                0,
                Snapshot::new(s.seq, s.stage, s.index, s.length, s.ends_after),
            )
        });
        entry.0 += 1;
        entry.1.add(&s);
        if entry.0 < workers {
            continue;
        }
        let Some((_, all)) = pending.remove(&s.seq) else {
            continue;
        };
        if !quiet {
            eprintln!("{}", line(&all, warmup, measured));
        }
        if all.stage == Stage::Measured {
            series.push(all.second());
        }
    }
    series
}

/// `    12s/60s     2001/s  p99   3.76ms  errors 0`, or `warm-up 1s/1s ...` in the warm-up.
fn line(s: &Snapshot, warmup: Duration, measured: Duration) -> String {
    let p99 = if s.latency.is_empty() {
        "-".to_owned()
    } else {
        display::latency(s.latency.value_at_quantile(0.99))
    };
    let rate = match s.length {
        0 => 0.0,
        length => (s.ok + s.failed) as f64 * 1e9 / length as f64,
    };
    let (stage, total) = match s.stage {
        Stage::Warmup => ("warm-up ", warmup),
        Stage::Measured => ("", measured),
    };
    let progress = format!(
        "{stage}{}/{}",
        seconds(s.ends_after),
        seconds(crate::clock::nanos(total))
    );
    format!(
        "{progress:>15} {:>10}  p99 {p99:>8}  errors {}",
        display::rate(rate),
        s.failed
    )
}

/// `12s`, `2.5s`, `0.25s`.
fn seconds(nanos: Nanos) -> String {
    if nanos.is_multiple_of(NANOS_PER_SEC) {
        return format!("{}s", nanos / NANOS_PER_SEC);
    }
    let text = format!("{:.3}", nanos as f64 / 1e9);
    format!("{}s", text.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Nanos = 1_000_000;
    const S: Nanos = NANOS_PER_SEC;

    /// Collects what `workers` intervals, driven by `drive`, send.
    fn run(workers: usize, drive: impl FnOnce(Vec<Interval>)) -> Vec<Second> {
        let (tx, rx) = crossbeam_channel::unbounded();
        // Start at 10 s, measure from 11.5 s, stop sending at 14 s.
        let intervals = (0..workers)
            .map(|_| Interval::new(tx.clone(), 10 * S, 11 * S + 500 * MS, 14 * S))
            .collect();
        drop(tx);
        drive(intervals);
        collect(
            rx,
            workers,
            true,
            Duration::from_millis(1500),
            Duration::from_millis(2500),
        )
    }

    #[test]
    fn measured_seconds_count_what_completed_in_them() {
        let series = run(1, |mut w| {
            let mut i = w.remove(0);
            i.success(10 * S + 100 * MS, 300_000, false);
            // A warm-up request that completes in the measured time is left out, as the
            // report leaves it out.
            i.success(11 * S + 600 * MS, 300_000, false);
            i.success(11 * S + 700 * MS, 100_000, true);
            i.failure(12 * S + 600 * MS, true);
            i.tick(13 * S + 600 * MS);
            i.success(13 * S + 700 * MS, 200_000, true);
            // In flight when the measured time ended: the last second takes it.
            i.success(14 * S + 300 * MS, 400_000, true);
            i.finish();
        });
        let seconds: Vec<_> = series
            .iter()
            .map(|s| (s.second, s.seconds, s.requests, s.errors))
            .collect();
        assert_eq!(
            seconds,
            vec![(1, 1.0, 1, 0), (2, 1.0, 1, 1), (3, 0.5, 2, 0)]
        );
        let p50 = series[0].p50_us.unwrap();
        assert!((99.0..=101.0).contains(&p50), "{p50}");
        assert_eq!((series[1].p50_us, series[1].p99_us), (None, None));
        let p99 = series[2].p99_us.unwrap();
        assert!((399.0..=401.0).contains(&p99), "{p99}");
    }

    #[test]
    fn workers_seconds_merge_and_an_early_finish_reports_the_rest_empty() {
        let series = run(2, |w| {
            let [mut a, mut b]: [Interval; 2] = w.try_into().ok().unwrap();
            a.success(11 * S + 600 * MS, 100_000, true);
            // `b` ran out of requests in the warm-up.
            b.success(10 * S + 600 * MS, 100_000, false);
            b.finish();
            a.success(12 * S + 600 * MS, 100_000, true);
            a.success(12 * S + 700 * MS, 100_000, true);
            a.finish();
        });
        let requests: Vec<_> = series.iter().map(|s| s.requests).collect();
        assert_eq!(requests, vec![1, 2, 0]);
    }

    #[test]
    fn without_warm_up_the_first_second_is_measured() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut i = Interval::new(tx, 0, 0, 2 * S);
        i.success(500 * MS, 1000, true);
        i.finish();
        let series = collect(rx, 1, true, Duration::ZERO, Duration::from_secs(2));
        let requests: Vec<_> = series.iter().map(|s| (s.second, s.requests)).collect();
        assert_eq!(requests, vec![(1, 1), (2, 0)]);
    }

    #[test]
    fn lines_say_elapsed_over_total() {
        let mut s = Snapshot::new(13, Stage::Measured, 12, S, 12 * S);
        s.ok = 1990;
        s.failed = 10;
        s.latency.record(3_760_000).unwrap();
        let total = Duration::from_secs(60);
        assert_eq!(
            line(&s, Duration::from_secs(1), total),
            "        12s/60s     2000/s  p99   3.76ms  errors 10"
        );
        let warm = Snapshot::new(0, Stage::Warmup, 1, 500 * MS, 500 * MS);
        assert_eq!(
            line(&warm, Duration::from_millis(1500), total),
            "warm-up 0.5s/1.5s        0/s  p99        -  errors 0"
        );
        assert_eq!(seconds(2 * S + 250 * MS), "2.25s");
    }
}
