//! The expiry index: which lease to look at next, and when.
//!
//! A min-heap of `(due_ms, slot, generation)`. Heartbeats never touch it: when an entry comes due
//! the shard checks the lease, and a renewed lease is pushed back at its new expiry. Entries of
//! leases that were since removed or replaced carry an old generation and are skipped. So a
//! heartbeat stays O(1) and eviction pops only what is due.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A lease to check once `now > due_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Due {
    pub due_ms: u64,
    pub slot: u32,
    pub generation: u32,
}

/// Leases ordered by when they may expire.
#[derive(Default)]
pub(crate) struct ExpiryIndex {
    heap: BinaryHeap<Reverse<Due>>,
}

impl ExpiryIndex {
    pub(crate) fn schedule(&mut self, due: Due) {
        self.heap.push(Reverse(due));
    }

    /// The earliest entry, if it is past due at `now_ms`.
    pub(crate) fn pop_due(&mut self, now_ms: u64) -> Option<Due> {
        let Reverse(first) = *self.heap.peek()?;
        (now_ms > first.due_ms).then(|| {
            self.heap.pop();
            first
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due(due_ms: u64, slot: u32) -> Due {
        Due {
            due_ms,
            slot,
            generation: 0,
        }
    }

    #[test]
    fn pops_only_past_due_in_order() {
        let mut index = ExpiryIndex::default();
        index.schedule(due(300, 3));
        index.schedule(due(100, 1));
        index.schedule(due(200, 2));
        assert_eq!(index.pop_due(100), None);
        assert_eq!(index.pop_due(250), Some(due(100, 1)));
        assert_eq!(index.pop_due(250), Some(due(200, 2)));
        assert_eq!(index.pop_due(250), None);
        assert_eq!(index.pop_due(301), Some(due(300, 3)));
        assert_eq!(index.pop_due(u64::MAX), None);
    }
}
