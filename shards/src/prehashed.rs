//! A `Hasher` for maps whose keys are hashes already: the shard's index of registrations by key
//! hash, and the replication outboxes, whose updates carry their key's hash. Hashing such a key
//! again would only spend time.

use std::hash::Hasher;

/// Hands a map the `u64` it is given as the hash.
#[derive(Default)]
pub struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }

    /// What these keys never write (each writes its hash whole), folded in all the same.
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }
}
