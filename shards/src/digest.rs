//! Digests of the registry, which nodes compare to find the services they disagree on.
//!
//! Per service (by lowercased id): how many instances it has and a 64-bit hash of them. An
//! instance's hash covers its key and its JSON (the bytes discovery and replication carry); a
//! service's hash is the wrapping sum of its instances' hashes, so it does not depend on their
//! order and an instance enters or leaves it in O(1). The shard keeps every service's digest up
//! to date on each change, so a node's digest costs O(services), never a rescan. The hash is
//! written out here rather than taken from std (whose hasher may change between releases), so
//! that nodes built apart compute the same digest for the same instances.

use std::collections::HashMap;

use crate::instance::InstanceKey;

/// What a node holds of one service, in brief.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServiceDigest {
    pub count: u64,
    /// The wrapping sum of [`instance_hash`] over its instances.
    pub hash: u64,
}

impl ServiceDigest {
    /// The digest with one more instance.
    pub fn add(&mut self, key: &InstanceKey, json: &[u8]) {
        self.count += 1;
        self.hash = self.hash.wrapping_add(instance_hash(key, json));
    }

    /// The digest without one of its instances.
    pub fn remove(&mut self, key: &InstanceKey, json: &[u8]) {
        self.count -= 1;
        self.hash = self.hash.wrapping_sub(instance_hash(key, json));
    }
}

/// The digest of every service of a shard.
#[derive(Default)]
pub(crate) struct Digests {
    by_service: HashMap<Box<str>, ServiceDigest>,
}

impl Digests {
    pub(crate) fn add(&mut self, key: &InstanceKey, json: &[u8]) {
        match self.by_service.get_mut(&*key.service_id) {
            Some(digest) => digest.add(key, json),
            None => {
                let mut digest = ServiceDigest::default();
                digest.add(key, json);
                self.by_service.insert(key.service_id.clone(), digest);
            }
        }
    }

    /// Takes an instance out; a service left without instances has no digest.
    pub(crate) fn remove(&mut self, key: &InstanceKey, json: &[u8]) {
        if let Some(digest) = self.by_service.get_mut(&*key.service_id) {
            digest.remove(key, json);
            if digest.count == 0 {
                self.by_service.remove(&*key.service_id);
            }
        }
    }

    /// Every service's digest, by lowercased service id.
    pub(crate) fn all(&self) -> Vec<(Box<str>, ServiceDigest)> {
        self.by_service
            .iter()
            .map(|(id, digest)| (id.clone(), *digest))
            .collect()
    }

    #[cfg(test)]
    pub(crate) fn get(&self, service_key: &str) -> Option<ServiceDigest> {
        self.by_service.get(service_key).copied()
    }
}

const PRIME_1: u64 = 0x9E37_79B1_85EB_CA87;
const PRIME_2: u64 = 0xC2B2_AE3D_27D4_EB4F;

/// The hash of one instance: its key's parts and its JSON, each with its length, eight bytes at
/// a time (xxHash64's round), finished with murmur3's avalanche so that sums stay spread.
pub(crate) fn instance_hash(key: &InstanceKey, json: &[u8]) -> u64 {
    let mut h = PRIME_1;
    for part in [
        key.region_id.as_bytes(),
        key.service_id.as_bytes(),
        key.instance_id.as_bytes(),
        json,
    ] {
        h = round(h, part.len() as u64);
        let mut words = part.chunks_exact(8);
        for word in &mut words {
            h = round(h, u64::from_le_bytes(word.try_into().expect("eight bytes")));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            h = round(h, u64::from_le_bytes(last));
        }
    }
    avalanche(h)
}

fn round(h: u64, word: u64) -> u64 {
    h.wrapping_add(word.wrapping_mul(PRIME_2))
        .rotate_left(31)
        .wrapping_mul(PRIME_1)
}

fn avalanche(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::tests::key;

    #[test]
    fn the_hash_is_fixed_and_tells_keys_and_data_apart() {
        // Written out so that a change of the function, which would split a mixed-version
        // cluster's digests, is seen.
        assert_eq!(instance_hash(&key("s", "a"), b"{}"), 0x41f7_7831_d206_200e);
        let base = instance_hash(&key("s", "a"), b"{\"port\":1}");
        assert_ne!(base, instance_hash(&key("s", "a"), b"{\"port\":2}"));
        assert_ne!(base, instance_hash(&key("s", "b"), b"{\"port\":1}"));
        // Lengths separate the parts: moving a byte from one part to the next changes it.
        assert_ne!(
            instance_hash(&key("ab", "c"), b""),
            instance_hash(&key("a", "bc"), b"")
        );
    }

    #[test]
    fn a_service_digest_ignores_order_and_undoes_a_removal() {
        let (a, b) = ((key("s", "a"), b"A"), (key("s", "b"), b"B"));
        let mut one = ServiceDigest::default();
        one.add(&a.0, a.1);
        one.add(&b.0, b.1);
        let mut other = ServiceDigest::default();
        other.add(&b.0, b.1);
        other.add(&a.0, a.1);
        assert_eq!(one, other);
        assert_eq!(one.count, 2);
        one.remove(&b.0, b.1);
        let mut just_a = ServiceDigest::default();
        just_a.add(&a.0, a.1);
        assert_eq!(one, just_a);
    }

    #[test]
    fn an_emptied_service_has_no_digest() {
        let mut digests = Digests::default();
        digests.add(&key("s", "a"), b"A");
        digests.add(&key("t", "a"), b"A");
        assert_eq!(digests.all().len(), 2);
        digests.remove(&key("s", "a"), b"A");
        assert_eq!(digests.get("s"), None);
        assert_eq!(digests.get("t").map(|d| d.count), Some(1));
    }
}
