//! The shard's registrations: each registered instance with its lease, found by instance key.
//!
//! Registrations live in a slab of numbered slots so the service and the expiry index can point
//! at them with a `u32`. A slot's generation moves whenever its registration is replaced or
//! removed, which is how an expiry entry recognises that the lease it was scheduled for is gone.

use std::collections::HashMap;

use crate::instance::{Instance, InstanceKey};
use crate::lease::Lease;

/// One registered instance, as sent, with its lease and its position in its service.
pub struct Registration {
    pub instance: Instance,
    pub lease: Lease,
    pub position: usize,
}

#[derive(Default)]
struct Slot {
    generation: u32,
    registration: Option<Registration>,
}

/// Registrations by slot, and slots by instance key.
#[derive(Default)]
pub struct Registrations {
    slots: Vec<Slot>,
    free: Vec<u32>,
    by_key: HashMap<InstanceKey, u32>,
}

impl Registrations {
    pub fn find(&self, key: &InstanceKey) -> Option<u32> {
        self.by_key.get(key).copied()
    }

    pub fn get(&self, slot: u32) -> Option<&Registration> {
        self.slots.get(slot as usize)?.registration.as_ref()
    }

    pub fn get_mut(&mut self, slot: u32) -> Option<&mut Registration> {
        self.slots.get_mut(slot as usize)?.registration.as_mut()
    }

    /// The registration in `slot`, if it is still the one of `generation`.
    pub fn current(&self, slot: u32, generation: u32) -> Option<&Registration> {
        let slot = self.slots.get(slot as usize)?;
        (slot.generation == generation)
            .then_some(slot.registration.as_ref())
            .flatten()
    }

    /// Stores a new registration under `key`; returns its slot and generation.
    pub fn insert(&mut self, key: InstanceKey, registration: Registration) -> (u32, u32) {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(Slot::default());
            (self.slots.len() - 1) as u32
        });
        self.by_key.insert(key, slot);
        let entry = &mut self.slots[slot as usize];
        entry.registration = Some(registration);
        (slot, entry.generation)
    }

    /// Replaces the instance and lease in `slot`, keeping its position; returns the new generation.
    pub fn replace(&mut self, slot: u32, instance: Instance, lease: Lease) -> u32 {
        let entry = &mut self.slots[slot as usize];
        entry.generation = entry.generation.wrapping_add(1);
        let registration = entry
            .registration
            .as_mut()
            .expect("replace targets an occupied slot");
        registration.instance = instance;
        registration.lease = lease;
        entry.generation
    }

    /// Removes the registration in `slot` and forgets its key.
    pub fn remove(&mut self, slot: u32) -> Option<Registration> {
        let entry = self.slots.get_mut(slot as usize)?;
        let registration = entry.registration.take()?;
        entry.generation = entry.generation.wrapping_add(1);
        self.by_key.remove(&registration.instance.key());
        self.free.push(slot);
        Some(registration)
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Registration> {
        self.slots.iter().filter_map(|s| s.registration.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::tests::i1;

    fn registration(instance: Instance) -> Registration {
        Registration {
            instance,
            lease: Lease::new(0, 20_000, false),
            position: 0,
        }
    }

    #[test]
    fn generations_move_on_replace_and_remove() {
        let mut regs = Registrations::default();
        let key = i1().key();
        let (slot, generation) = regs.insert(key.clone(), registration(i1()));
        assert_eq!(regs.find(&key), Some(slot));
        assert!(regs.current(slot, generation).is_some());

        let newer = regs.replace(slot, i1(), Lease::new(5, 20_000, false));
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
    fn freed_slots_are_reused_with_a_new_generation() {
        let mut regs = Registrations::default();
        let (slot, generation) = regs.insert(i1().key(), registration(i1()));
        regs.remove(slot);
        let mut other = i1();
        other.instance_id = Some("other".into());
        let (reused, next) = regs.insert(other.key(), registration(other));
        assert_eq!(reused, slot);
        assert_ne!(next, generation);
        assert_eq!(regs.len(), 1);
        assert_eq!(regs.iter().count(), 1);
    }
}
