//! The node's version clock: one sequence shared by every shard, so versions mean the same
//! thing whichever shard made a change.
//!
//! Every change visible to discovery takes the next number. A shard takes its number and applies
//! the change in one step on its own core, so when a shard answers, every number it took up to the
//! clock's current value is in its answer. A reply gathered from all shards therefore includes
//! every change up to the smallest clock value the shards saw — the version it can honestly claim
//! (a few later changes may be in it too). The clock starts at the start time in microseconds, so
//! a version handed out by an earlier run of the server is older than anything this run knows.
//! It is one atomic counter: lock-free, taken only by writes that change discovery.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug)]
pub struct VersionClock(AtomicU64);

impl VersionClock {
    /// A clock whose first version is `start_ms` in microseconds.
    pub fn starting_at(start_ms: u64) -> VersionClock {
        VersionClock(AtomicU64::new(start_ms.saturating_mul(1000)))
    }

    /// The number of a new change.
    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The last number taken.
    pub fn current(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_the_start_time() {
        let clock = VersionClock::starting_at(5);
        assert_eq!(clock.current(), 5000);
        assert_eq!(clock.next(), 5001);
        assert_eq!(clock.next(), 5002);
        assert_eq!(clock.current(), 5002);
    }
}
