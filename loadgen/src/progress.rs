//! The once-a-second progress line on long runs (current rate and p99). Each worker counts its
//! second and sends it over a channel; the main thread prints a line once every worker has
//! reported that second.

use crate::clock::{Nanos, NANOS_PER_SEC};
use crate::display;
use crate::tally::histogram;
use crossbeam_channel::{Receiver, Sender};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;

/// One worker's second.
pub(crate) struct Snapshot {
    second: u64,
    warmup: bool,
    ok: u64,
    failed: u64,
    latency: Histogram<u64>,
}

/// A worker's side: counts the current second and sends it when the second is over.
pub(crate) struct Interval {
    tx: Sender<Snapshot>,
    measure_from: Nanos,
    current: Snapshot,
    ends_at: Nanos,
}

impl Interval {
    pub(crate) fn new(tx: Sender<Snapshot>, start: Nanos, measure_from: Nanos) -> Interval {
        Interval {
            tx,
            measure_from,
            current: Snapshot {
                second: 1,
                warmup: measure_from > start,
                ok: 0,
                failed: 0,
                latency: histogram(),
            },
            ends_at: start + NANOS_PER_SEC,
        }
    }

    pub(crate) fn success(&mut self, latency: Nanos) {
        self.current.ok += 1;
        self.current.latency.saturating_record(latency.max(1));
    }

    pub(crate) fn failure(&mut self) {
        self.current.failed += 1;
    }

    /// Sends every second that is over by `now`.
    pub(crate) fn tick(&mut self, now: Nanos) {
        while now >= self.ends_at {
            let next = Snapshot {
                second: self.current.second + 1,
                warmup: self.measure_from > self.ends_at,
                ok: 0,
                failed: 0,
                latency: histogram(),
            };
            // The printer going away only means nobody is watching.
            let _ = self.tx.send(std::mem::replace(&mut self.current, next));
            self.ends_at += NANOS_PER_SEC;
        }
    }
}

/// Prints a line per second on stderr until every worker has hung up.
pub(crate) fn print(rx: Receiver<Snapshot>, workers: usize) {
    let mut pending: BTreeMap<u64, (usize, Snapshot)> = BTreeMap::new();
    for s in rx {
        let second = s.second;
        let entry = pending.entry(second).or_insert_with(|| {
            (
                0,
                Snapshot {
                    second,
                    warmup: s.warmup,
                    ok: 0,
                    failed: 0,
                    latency: histogram(),
                },
            )
        });
        entry.0 += 1;
        entry.1.ok += s.ok;
        entry.1.failed += s.failed;
        entry
            .1
            .latency
            .add(&s.latency)
            .expect("auto-resizing histograms always add");
        if entry.0 == workers {
            if let Some((_, all)) = pending.remove(&second) {
                eprintln!("{}", line(&all));
            }
        }
    }
}

fn line(s: &Snapshot) -> String {
    let p99 = if s.latency.is_empty() {
        "-".to_owned()
    } else {
        display::latency(s.latency.value_at_quantile(0.99))
    };
    format!(
        "[{:>4}s] {:>10}  p99 {:>8}  errors {}{}",
        s.second,
        display::rate((s.ok + s.failed) as f64),
        p99,
        s.failed,
        if s.warmup { "  (warm-up)" } else { "" }
    )
}
