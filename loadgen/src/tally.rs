//! What a worker counts while it runs: per operation, latency histograms of the successful
//! replies and the failures by kind. Workers' tallies are merged into the report.

use crate::failure::Failure;
use crate::op::Op;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub struct OpTally {
    /// Latency of successful replies, in nanoseconds, from the intended send time.
    pub latency: Histogram<u64>,
    /// Response time of the same replies: from the actual send, so without the time a request
    /// waited in the load generator for a free connection (the same as `latency` in closed loop).
    pub response: Histogram<u64>,
    pub failures: BTreeMap<Failure, u64>,
}

#[derive(Clone, Debug)]
pub struct Tally {
    ops: Vec<OpTally>,
}

/// A latency histogram: 1 ns to an hour at three significant digits (growing beyond if need be).
pub(crate) fn histogram() -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid bounds");
    h.auto(true);
    h
}

impl Default for OpTally {
    fn default() -> OpTally {
        OpTally {
            latency: histogram(),
            response: histogram(),
            failures: BTreeMap::new(),
        }
    }
}

impl OpTally {
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            ops: Op::ALL.iter().map(|_| OpTally::default()).collect(),
        }
    }
}

impl Tally {
    pub fn success(&mut self, op: Op, latency: u64, response: u64) {
        let t = &mut self.ops[op.index()];
        t.latency.saturating_record(latency.max(1));
        t.response.saturating_record(response.max(1));
    }

    pub fn failure(&mut self, op: Op, failure: Failure) {
        *self.ops[op.index()].failures.entry(failure).or_insert(0) += 1;
    }

    pub fn merge(&mut self, other: &Tally) {
        for (mine, theirs) in self.ops.iter_mut().zip(&other.ops) {
            for (m, t) in [
                (&mut mine.latency, &theirs.latency),
                (&mut mine.response, &theirs.response),
            ] {
                m.add(t).expect("auto-resizing histograms always add");
            }
            for (f, n) in &theirs.failures {
                *mine.failures.entry(f.clone()).or_insert(0) += n;
            }
        }
    }

    /// The operations that saw any request, with their tallies.
    pub fn ops(&self) -> impl Iterator<Item = (Op, &OpTally)> {
        Op::ALL
            .iter()
            .zip(&self.ops)
            .filter(|(_, t)| !t.latency.is_empty() || !t.failures.is_empty())
            .map(|(op, t)| (*op, t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_counts_and_latencies() {
        let mut a = Tally::default();
        a.success(Op::Discover, 1000, 1000);
        a.failure(Op::Discover, Failure::Timeout);
        let mut b = Tally::default();
        b.success(Op::Discover, 3000, 3000);
        b.failure(Op::Discover, Failure::Timeout);
        b.failure(Op::Register, Failure::Http(415));
        a.merge(&b);
        let ops: Vec<_> = a
            .ops()
            .map(|(op, t)| (op, t.latency.len(), t.failed()))
            .collect();
        assert_eq!(ops, vec![(Op::Register, 0, 1), (Op::Discover, 2, 2)]);
    }
}
