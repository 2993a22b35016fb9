//! Registry state of one shard, free of I/O.
//!
//! Instances are hash-partitioned by lowercased service id, so every instance of a service lives
//! on one shard, owned by one core. Everything here takes its inputs (requests, `now`) as
//! arguments and returns results, so every registry rule is unit-testable without a socket.

pub mod instance;
pub mod json;

pub use instance::{Instance, InstanceKey};

/// The shard that owns `service_id`: FNV-1a of the lowercased id, modulo the shard count.
/// Every core computes the same owner for the same service, whatever the id's case.
pub fn shard_for(service_id: &str, shards: usize) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in service_id.bytes() {
        hash ^= u64::from(b.to_ascii_lowercase());
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % shards.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_ignores_case_and_spreads() {
        assert_eq!(shard_for("My.Service", 8), shard_for("my.service", 8));
        let mut seen = [0usize; 4];
        for i in 0..1000 {
            seen[shard_for(&format!("svc-{i}"), 4)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 150), "{seen:?}");
        assert_eq!(shard_for("anything", 1), 0);
    }
}
