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

/// The shard that owns `service_id`: a hash of the lowercased id, scaled to the shard count.
/// Every core computes the same owner for the same service, whatever the id's case. Ids are
/// lowercased as the service map keys them (`str::to_lowercase`), so the owner and the key agree
/// for non-ASCII ids too.
pub fn shard_for(service_id: &str, shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    let hash = if service_id.is_ascii() {
        lowercase_hash(service_id.as_bytes())
    } else {
        lowercase_hash(service_id.to_lowercase().as_bytes())
    };
    // The hash scaled to the shard count: its high bits pick the shard, without a division.
    ((u128::from(hash) * shards as u128) >> 64) as usize
}

/// A hash of `bytes` with their ASCII capitals lowercased, taken eight bytes at a time: an id
/// hashed a byte at a time was one of the costlier steps of a heartbeat. Bytes of multi-byte
/// characters are hashed as they are (the caller lowercases those).
fn lowercase_hash(bytes: &[u8]) -> u64 {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGHS: u64 = ONES << 7;
    const MIX: u64 = 0x9e37_79b9_7f4a_7c15;
    // Per byte, the high bit when the byte is an ASCII capital: of the low seven bits, those
    // that reach 0x80 when `0x80 - 'A'` is added and not when `0x7f - 'Z'` is.
    let lowercase = |word: u64| {
        let low = word & !HIGHS;
        let from_a = low + ONES * u64::from(0x80 - b'A');
        let past_z = low + ONES * u64::from(0x7f - b'Z');
        let capitals = (from_a ^ past_z) & !word & HIGHS;
        word | capitals >> 2
    };
    let add = |hash: u64, word: u64| (hash ^ lowercase(word)).wrapping_mul(MIX).rotate_left(29);
    let mut chunks = bytes.chunks_exact(8);
    let mut hash = (bytes.len() as u64).wrapping_mul(MIX);
    for chunk in chunks.by_ref() {
        hash = add(
            hash,
            u64::from_le_bytes(chunk.try_into().expect("eight bytes")),
        );
    }
    let mut last = [0; 8];
    last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    hash = add(hash, u64::from_le_bytes(last));
    // Every bit of the input into the high bits, which pick the shard.
    hash ^= hash >> 32;
    hash = hash.wrapping_mul(MIX);
    hash ^ hash >> 29
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

    /// Every byte, at every place of the first two words and the remainder, is lowercased
    /// exactly when it is an ASCII capital: the same hash as the id lowercased first.
    #[test]
    fn the_hash_lowercases_ascii_capitals_only() {
        for len in 1..=20 {
            for at in 0..len {
                for byte in 0..=u8::MAX {
                    let mut id = vec![b'x'; len];
                    id[at] = byte;
                    let mut lowered = id.clone();
                    lowered.make_ascii_lowercase();
                    assert_eq!(lowercase_hash(&id), lowercase_hash(&lowered), "{id:?}");
                    if byte.is_ascii_uppercase() || byte == b'x' {
                        continue;
                    }
                    assert_ne!(
                        lowercase_hash(&id),
                        lowercase_hash(&vec![b'x'; len]),
                        "{id:?}"
                    );
                }
            }
        }
    }

    /// A character whose lowercase is ASCII (the Kelvin sign's is `k`) names the same service as
    /// that ASCII, and so has the same owner.
    #[test]
    fn owner_follows_the_lowercased_id() {
        for shards in 2..=16 {
            assert_eq!(
                shard_for("\u{212A}ey.Svc", shards),
                shard_for("KEY.svc", shards)
            );
            assert_eq!(shard_for("İx", shards), shard_for("i\u{307}X", shards));
            // A final capital sigma lowercases to the final small sigma in a whole id, as the
            // service map's key has it, not to the small sigma a lone character becomes.
            assert_eq!(shard_for("ΑΣ", shards), shard_for("ας", shards));
        }
    }

    /// Ids that differ in one place, or only in length, spread over the shards.
    #[test]
    fn near_ids_spread() {
        for shards in [2, 3, 8, 16] {
            let mut seen = vec![0usize; shards];
            for i in 0..4000 {
                seen[shard_for(&format!("framework.soa.service{i}"), shards)] += 1;
            }
            let fair = 4000 / shards;
            assert!(seen.iter().all(|&n| n > fair * 3 / 4), "{shards}: {seen:?}");
            let mut lengths = vec![0usize; shards];
            for len in 1..=400 {
                lengths[shard_for(&"a".repeat(len), shards)] += 1;
            }
            assert!(
                lengths.iter().all(|&n| n > 400 / shards / 2),
                "{shards}: {lengths:?}"
            );
        }
    }
}
