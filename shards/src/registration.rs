//! The shard's registrations: each registered instance with its lease, found by instance key.
//!
//! A registration keeps only what the shard needs besides the instance's JSON fragment (which its
//! service holds): the key, the service id as sent and the instance's display name for lease
//! listings. Keeping the whole `Instance` too would double the memory per instance.
//!
//! Registrations live in a slab of numbered slots so the service and the expiry index can point
//! at them with a `u32`. A slot's generation moves whenever its registration is replaced or
//! removed, which is how an expiry entry recognises that the lease it was scheduled for is gone.
//!
//! Slots are found by a 64-bit hash of the instance key, checked against the key the slot's
//! registration holds, so the index keeps no second copy of any key (the copy was about 200
//! bytes an instance). Two keys whose hashes collide, which at a million instances happens in
//! about one registry in thirty million, are told apart by a small map of full keys for the
//! later ones.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, RandomState};

use crate::instance::{Instance, InstanceKey};
use crate::lease::Lease;
use crate::management::InstanceFacts;
use crate::prehashed::Prehashed;

/// One registered instance with its lease and its position in its service.
pub(crate) struct Registration {
    pub key: InstanceKey,
    /// The service id as the instance sent it.
    pub service_id: Box<str>,
    /// `Instance::display_name()`.
    pub name: Box<str>,
    pub zone_id: Option<Box<str>>,
    pub ip: Option<Box<str>>,
    pub group_id: Option<Box<str>>,
    pub lease: Lease,
    pub position: usize,
}

impl Registration {
    pub(crate) fn new(instance: &Instance, lease: Lease, position: usize) -> Registration {
        Registration {
            key: instance.key(),
            service_id: instance.service_id.as_deref().unwrap_or_default().into(),
            name: instance.display_name().into(),
            zone_id: instance.zone_id.as_deref().map(Into::into),
            ip: instance.ip.as_deref().map(Into::into),
            group_id: instance.group_id.as_deref().map(Into::into),
            lease,
            position,
        }
    }
}

impl Registration {
    /// What management operations match the instance by.
    pub(crate) fn facts(&self) -> InstanceFacts<'_> {
        InstanceFacts {
            key: &self.key,
            service_id: &self.service_id,
            zone_id: self.zone_id.as_deref(),
            ip: self.ip.as_deref(),
            group_id: self.group_id.as_deref(),
        }
    }
}

#[derive(Default)]
struct Slot {
    generation: u32,
    registration: Option<Registration>,
}

/// Registrations by slot, and slots by instance key.
#[derive(Default)]
pub(crate) struct Registrations<S = RandomState> {
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// How keys are hashed for `by_hash`: seeded per shard, so nobody outside can aim keys at
    /// one hash.
    hasher: S,
    /// The slot of each key by the key's hash: the first key registered with a hash.
    by_hash: HashMap<u64, u32, BuildHasherDefault<Prehashed>>,
    /// The slots of keys whose hash an other key's slot already holds in `by_hash`.
    collided: HashMap<InstanceKey, u32>,
}

impl<S: BuildHasher> Registrations<S> {
    pub(crate) fn find(&self, key: &InstanceKey) -> Option<u32> {
        let slot = self.by_hash.get(&self.hasher.hash_one(key)).copied();
        if let Some(slot) = slot.filter(|&s| self.get(s).is_some_and(|r| r.key == *key)) {
            return Some(slot);
        }
        // A key whose hash was taken, even if the key that took it is gone since.
        if self.collided.is_empty() {
            return None;
        }
        self.collided.get(key).copied()
    }

    pub(crate) fn get(&self, slot: u32) -> Option<&Registration> {
        self.slots.get(slot as usize)?.registration.as_ref()
    }

    pub(crate) fn get_mut(&mut self, slot: u32) -> Option<&mut Registration> {
        self.slots.get_mut(slot as usize)?.registration.as_mut()
    }

    /// The registration in `slot`, if it is still the one of `generation`.
    pub(crate) fn current(&self, slot: u32, generation: u32) -> Option<&Registration> {
        let slot = self.slots.get(slot as usize)?;
        (slot.generation == generation)
            .then_some(slot.registration.as_ref())
            .flatten()
    }

    /// Stores a new registration under its key; returns its slot and generation.
    pub(crate) fn insert(&mut self, registration: Registration) -> (u32, u32) {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(Slot::default());
            (self.slots.len() - 1) as u32
        });
        let hash = self.hasher.hash_one(&registration.key);
        match self.by_hash.entry(hash) {
            Entry::Vacant(free) => {
                free.insert(slot);
            }
            Entry::Occupied(_) => {
                self.collided.insert(registration.key.clone(), slot);
            }
        }
        let entry = &mut self.slots[slot as usize];
        entry.registration = Some(registration);
        (slot, entry.generation)
    }

    /// Replaces the registration in `slot` (same key, same position); returns the new generation.
    pub(crate) fn replace(&mut self, slot: u32, registration: Registration) -> u32 {
        let (current, generation) = self.next_generation(slot);
        *current = registration;
        generation
    }

    /// Gives the registration in `slot` a new `lease`, as [`Registrations::replace`] with a
    /// registration of the same instance would; returns the new generation.
    pub(crate) fn renew(&mut self, slot: u32, lease: Lease) -> u32 {
        let (current, generation) = self.next_generation(slot);
        current.lease = lease;
        generation
    }

    /// Moves the occupied `slot` to its next generation: its registration, and that generation.
    fn next_generation(&mut self, slot: u32) -> (&mut Registration, u32) {
        let entry = &mut self.slots[slot as usize];
        entry.generation = entry.generation.wrapping_add(1);
        let registration = entry.registration.as_mut().expect("an occupied slot");
        (registration, entry.generation)
    }

    /// Removes the registration in `slot` and forgets its key.
    pub(crate) fn remove(&mut self, slot: u32) -> Option<Registration> {
        let entry = self.slots.get_mut(slot as usize)?;
        let registration = entry.registration.take()?;
        entry.generation = entry.generation.wrapping_add(1);
        let hash = self.hasher.hash_one(&registration.key);
        if self.by_hash.get(&hash) == Some(&slot) {
            self.by_hash.remove(&hash);
        } else {
            self.collided.remove(&registration.key);
        }
        self.free.push(slot);
        Some(registration)
    }

    pub(crate) fn len(&self) -> usize {
        self.by_hash.len() + self.collided.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Registration> {
        self.slots.iter().filter_map(|s| s.registration.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::tests::i1;

    fn registration(instance: Instance) -> Registration {
        Registration::new(&instance, Lease::new(0, 20_000, false), 0)
    }

    #[test]
    fn generations_move_on_replace_and_remove() {
        let mut regs: Registrations = Registrations::default();
        let key = i1().key();
        let (slot, generation) = regs.insert(registration(i1()));
        assert_eq!(regs.find(&key), Some(slot));
        assert!(regs.current(slot, generation).is_some());

        let newer = regs.replace(
            slot,
            Registration::new(&i1(), Lease::new(5, 20_000, false), 0),
        );
        assert_ne!(newer, generation);
        assert!(regs.current(slot, generation).is_none());
        assert_eq!(regs.current(slot, newer).unwrap().lease.creation_ms, 5);

        assert!(regs.remove(slot).is_some());
        assert!(regs.current(slot, newer).is_none());
        assert_eq!(regs.find(&key), None);
        assert_eq!(regs.len(), 0);
        assert!(regs.remove(slot).is_none());
    }

    #[test]
    fn a_renewed_registration_has_a_new_generation_and_its_lease_alone_changes() {
        let mut regs: Registrations = Registrations::default();
        let (slot, generation) = regs.insert(registration(i1()));
        let newer = regs.renew(slot, Lease::new(7, 20_000, false));
        assert_ne!(newer, generation);
        assert!(regs.current(slot, generation).is_none());
        let renewed = regs.current(slot, newer).unwrap();
        assert_eq!(renewed.lease.creation_ms, 7);
        assert_eq!(renewed.key, i1().key());
        assert_eq!(regs.find(&i1().key()), Some(slot));
    }

    /// Hashes every key to the same hash.
    #[derive(Default)]
    struct OneHash;

    impl std::hash::Hasher for OneHash {
        fn finish(&self) -> u64 {
            7
        }

        fn write(&mut self, _: &[u8]) {}
    }

    #[test]
    fn keys_whose_hashes_collide_are_each_found_until_removed() {
        let mut regs: Registrations<BuildHasherDefault<OneHash>> = Registrations::default();
        let nth = |n: usize| Instance {
            instance_id: Some(format!("10.0.0.{n}:8080")),
            ..i1()
        };
        let key = |n: usize| nth(n).key();
        let (a, _) = regs.insert(registration(nth(1)));
        let (b, _) = regs.insert(registration(nth(2)));
        let (c, _) = regs.insert(registration(nth(3)));
        assert_eq!(
            [regs.find(&key(1)), regs.find(&key(2)), regs.find(&key(3))],
            [Some(a), Some(b), Some(c)]
        );
        assert_eq!(regs.find(&key(4)), None);
        assert_eq!(regs.len(), 3);
        // The key that holds the hash goes first: the others are still found.
        assert!(regs.remove(a).is_some());
        assert_eq!(
            [regs.find(&key(1)), regs.find(&key(2)), regs.find(&key(3))],
            [None, Some(b), Some(c)]
        );
        // A new key takes the free hash; the older ones stay where they are.
        let (d, _) = regs.insert(registration(nth(4)));
        assert_eq!(regs.find(&key(4)), Some(d));
        assert_eq!(regs.find(&key(2)), Some(b));
        assert!(regs.remove(b).is_some());
        assert!(regs.remove(c).is_some());
        assert_eq!([regs.find(&key(2)), regs.find(&key(3))], [None, None]);
        assert_eq!(regs.find(&key(4)), Some(d));
        assert_eq!(regs.len(), 1);
    }

    #[test]
    fn freed_slots_are_reused_with_a_new_generation() {
        let mut regs: Registrations = Registrations::default();
        let (slot, generation) = regs.insert(registration(i1()));
        regs.remove(slot);
        let mut other = i1();
        other.instance_id = Some("other".into());
        let (reused, next) = regs.insert(registration(other));
        assert_eq!(reused, slot);
        assert_ne!(next, generation);
        assert_eq!(regs.len(), 1);
        assert_eq!(regs.iter().count(), 1);
    }
}
