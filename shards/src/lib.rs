//! Registry state of one shard, free of I/O.
//!
//! Instances are hash-partitioned by lowercased service id, so every instance of a service lives
//! on one shard, owned by one core. Everything here takes its inputs (requests, `now`) as
//! arguments and returns results, so every registry rule is unit-testable without a socket.

mod change;
mod digest;
mod error_code;
mod expiry;
mod failed_instance;
mod http_sd;
pub mod instance;
pub mod json;
mod lease;
mod limits;
pub mod management;
mod prehashed;
mod registration;
mod removals;
mod rules;
mod safety;
mod service;
mod shard;
mod version;

pub use change::{Change, ChangeKind, ChangesGone, Retention, CHANGE_OVERHEAD_BYTES};
pub use digest::ServiceDigest;
pub use error_code::ErrorCode;
pub use failed_instance::FailedInstance;
pub use instance::{Instance, InstanceKey, Metadata};
pub use lease::{LeaseStatus, LEGACY_METADATA_KEY};
pub use limits::InstanceLimits;
pub use prehashed::Prehashed;
pub use removals::{Removal, RemovalMemory, REMOVALS_PER_SHARD};
pub use rules::{NodeRules, Rejection};
pub use safety::SafetyConfig;
pub use service::{Deflated, InstancesJson, ServiceSnapshot};
pub use shard::{
    Held, ManagedInstance, ManagedService, Merged, ServiceState, Shard, ShardConfig, ShardStats,
};
pub use version::VersionClock;

/// The shard that owns `service_id`: FNV-1a of the lowercased id, modulo the shard count.
/// Every core computes the same owner for the same service, whatever the id's case. Ids are
/// lowercased as the service map keys them (`str::to_lowercase`), so the owner and the key agree
/// for non-ASCII ids too.
pub fn shard_for(service_id: &str, shards: usize) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut add = |b: u8| {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    };
    if service_id.is_ascii() {
        service_id.bytes().for_each(|b| add(b.to_ascii_lowercase()));
    } else {
        let mut utf8 = [0u8; 4];
        for c in service_id.chars().flat_map(char::to_lowercase) {
            c.encode_utf8(&mut utf8).bytes().for_each(&mut add);
        }
    }
    (hash % shards.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_ignores_case_and_spreads() {
        assert_eq!(shard_for("My.Service", 8), shard_for("my.service", 8));
        assert_eq!(shard_for("ÄPFEL.Dienst", 8), shard_for("äpfel.dienst", 8));
        let mut seen = [0usize; 4];
        for i in 0..1000 {
            seen[shard_for(&format!("svc-{i}"), 4)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 150), "{seen:?}");
        assert_eq!(shard_for("anything", 1), 0);
    }
}
