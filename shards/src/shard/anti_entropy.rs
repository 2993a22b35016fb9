//! A shard's part in anti-entropy: its digest, the state of the services a peer asks for, and
//! the merge of a peer's state into it.
//!
//! Replication is best effort, so every node now and then compares its digest with each peer's
//! and pulls the services that differ: each instance with its lease's registration and last
//! renewal times, and the removals the peer remembers (`removals.rs`). The merge rule, per
//! instance key:
//!
//! 1. **The peer has it, we do not**: we add it, unless a removal we remember ends the peer's
//!    copy (an unregister at or after the copy's registration; an expiry of a lease last renewed
//!    at or after the copy's last renewal), or the copy's lease has run out by our TTL.
//! 2. **Both have it, with different JSON**: the later registration wins; on a tie, the larger
//!    JSON, so that both sides choose the same copy. The lease keeps the later of the two
//!    renewals (heartbeats renew a key, whichever registration holds it).
//! 3. **The peer remembers its removal**: our copy goes if the removal ends it (the same test),
//!    and the removal is remembered here unless our copy outlives it, so that a third node's
//!    stale copy cannot bring it back here either.
//! 4. **Nothing is removed because the peer lacks it**: absence is not a deletion. A node never
//!    forgets an instance because a peer missed it; expiry cleans up what no one heartbeats.
//!
//! A copy taken from a peer keeps the peer's registration and renewal times (never later than
//! now): its lease runs out when the peer's would, and later merges compare the times of the
//! registration itself, not of a merge, so a stale copy passed from node to node never looks newer
//! than it is. An expiry counts from the lease's last renewal rather than from when it was noticed,
//! so that a partition's heal does not delete, on the side that kept hearing heartbeats, the
//! instances the other side let expire. What a merge changes is recorded and pushed to
//! subscribers like any change (`new`, `delete`) and is never replicated: each node pulls what
//! it lacks.
//!
//! A Java peer tells no times and no removals: its instances are only added, when missing here
//! and not remembered as removed, under a fresh lease ([`Shard::add_missing`]).

use std::sync::Arc;

use super::Shard;
use crate::digest::ServiceDigest;
use crate::instance::{Instance, InstanceKey};
use crate::lease::is_legacy;
use crate::removals::Removal;
use crate::rules::check_arguments;

/// An instance as a node holds it, with its lease's times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held<I> {
    /// Its JSON when this shard tells it; parsed when a peer's arrives.
    pub instance: I,
    /// Its lease's creation: when the register that made it was taken.
    pub registration_ms: u64,
    pub renewal_ms: u64,
}

/// What a node holds of a service: its instances and the removals it remembers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceState<I> {
    pub instances: Vec<Held<I>>,
    pub removals: Vec<(InstanceKey, Removal)>,
}

/// What a merge changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Merged {
    pub added: u64,
    pub replaced: u64,
    pub removed: u64,
}

impl std::ops::Add for Merged {
    type Output = Merged;

    fn add(self, other: Merged) -> Merged {
        Merged {
            added: self.added + other.added,
            replaced: self.replaced + other.replaced,
            removed: self.removed + other.removed,
        }
    }
}

impl Shard {
    /// The digest of every service with instances, by lowercased service id: O(services).
    pub fn digest(&self) -> Vec<(Box<str>, ServiceDigest)> {
        self.digests.all()
    }

    /// The state of each service named (ids matched case-insensitively), whether or not it
    /// has instances or remembered removals.
    pub fn service_states(&self, service_ids: &[String]) -> Vec<(String, ServiceState<Arc<[u8]>>)> {
        service_ids
            .iter()
            .map(|id| {
                let key = id.to_lowercase();
                let members = self.services.get(&key).map_or(&[][..], |s| s.members());
                let instances = members
                    .iter()
                    .filter_map(|member| {
                        let lease = &self.registrations.get(member.slot)?.lease;
                        Some(Held {
                            instance: member.fragment.clone(),
                            registration_ms: lease.creation_ms,
                            renewal_ms: lease.renewal_ms,
                        })
                    })
                    .collect();
                let removals = self.removals.of_service(&key);
                (
                    key,
                    ServiceState {
                        instances,
                        removals,
                    },
                )
            })
            .collect()
    }

    /// Merges a peer's state of its services by the rule above.
    pub fn merge(&mut self, peer: ServiceState<Instance>, now_ms: u64) -> Merged {
        let mut merged = Merged::default();
        for (key, removal) in peer.removals {
            match self.registrations.find(&key) {
                Some(slot) => {
                    let lease = self.registrations.get(slot).expect("indexed slot").lease;
                    if removal.ends(lease.creation_ms, lease.renewal_ms) {
                        self.remove_as(slot, removal, now_ms);
                        merged.removed += 1;
                    }
                }
                None => self.removals.remember(&key, removal, now_ms),
            }
        }
        for held in peer.instances {
            let renewal_ms = held.renewal_ms.min(now_ms);
            let registration_ms = held.registration_ms.min(renewal_ms);
            let instance = held.instance;
            if !self.admits(&instance) || self.ran_out(&instance, renewal_ms, now_ms) {
                continue;
            }
            let key = instance.key();
            match self.registrations.find(&key) {
                Some(slot) => {
                    let ours = self.registrations.get(slot).expect("indexed slot");
                    let fragment =
                        &self.services[&*key.service_id].members()[ours.position].fragment;
                    let theirs = instance.to_json();
                    let mine = (ours.lease.creation_ms, &fragment[..]);
                    if *theirs != **fragment && (registration_ms, &theirs[..]) > mine {
                        // Heartbeats renew a key, whichever registration: ours count too.
                        let renewal_ms = renewal_ms.max(ours.lease.renewal_ms);
                        self.store_as_of(&instance, registration_ms, renewal_ms, now_ms);
                        merged.replaced += 1;
                    }
                }
                None => {
                    let removed = self.removals.get(&key);
                    if !removed.is_some_and(|r| r.ends(registration_ms, renewal_ms)) {
                        self.store_as_of(&instance, registration_ms, renewal_ms, now_ms);
                        merged.added += 1;
                    }
                }
            }
        }
        merged
    }

    /// Adds each of a Java peer's instances that this shard neither holds nor remembers as
    /// removed, under a fresh lease; replaces and removes nothing.
    pub fn add_missing(&mut self, instances: Vec<Instance>, now_ms: u64) -> Merged {
        let mut merged = Merged::default();
        for instance in instances {
            let key = instance.key();
            let known =
                self.registrations.find(&key).is_some() || self.removals.get(&key).is_some();
            if !known && self.admits(&instance) {
                self.store(&instance, (), now_ms);
                merged.added += 1;
            }
        }
        merged
    }

    /// Whether a peer's instance passes what a replicated register checks: the size limits, the
    /// region, and the ids and URL every register needs.
    fn admits(&self, instance: &Instance) -> bool {
        self.config
            .limits
            .check(instance)
            .and_then(|()| self.config.rules.admit_replicated(instance))
            .and_then(|()| check_arguments(instance))
            .is_ok()
    }

    /// Whether a lease last renewed at `renewal_ms` has run out by now, by this node's TTL.
    fn ran_out(&self, instance: &Instance, renewal_ms: u64, now_ms: u64) -> bool {
        now_ms > renewal_ms.saturating_add(self.ttl_ms(is_legacy(instance)))
    }
}
