//! Removal memory: which instances this shard saw leave, and when, so that a peer's stale copy
//! cannot bring them back (see `shard/anti_entropy.rs` for the rule that reads it).
//!
//! An unregister or an expiry remembers the instance key with its [`Removal`]; a later register
//! of the key forgets it. An entry is forgotten `memory_ms` after it was remembered, and beyond
//! `max_entries` the oldest go first, so the memory is bounded in time and in count whatever the
//! churn. Entries are grouped by service, since peers ask for the removals of the few services
//! whose digests differ. The age order is a queue with lazy deletion: a forgotten or refreshed
//! entry leaves a stale slot behind, skipped when it reaches the front, and the queue is compacted
//! once stale slots outnumber live ones, so every operation is O(1) amortized.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::instance::InstanceKey;

/// Removals remembered per shard at most by default (about 200 bytes each); the oldest go first.
pub const REMOVALS_PER_SHARD: usize = 1_000_000;

/// How long and how many removals a shard remembers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemovalMemory {
    /// An entry is forgotten this long after it was remembered (`--removal-memory`).
    pub memory_ms: u64,
    /// Beyond this many entries the oldest is forgotten.
    pub max_entries: usize,
}

/// How an instance left, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Removal {
    /// For an unregister, its time; for an expiry, the lease's last renewal: the last moment the
    /// node that removed it knew it alive.
    pub time_ms: u64,
    /// It expired rather than being unregistered.
    pub expired: bool,
}

impl Removal {
    /// An unregister at `time_ms`.
    pub fn unregistered(time_ms: u64) -> Removal {
        Removal {
            time_ms,
            expired: false,
        }
    }

    /// An expiry of a lease last renewed at `renewal_ms`.
    pub fn expired(renewal_ms: u64) -> Removal {
        Removal {
            time_ms: renewal_ms,
            expired: true,
        }
    }

    /// Whether this removal ends a copy of the instance registered at `registration_ms` and
    /// last renewed at `renewal_ms`: an unregister ends every registration made at or before it;
    /// an expiry ends every copy no one renewed after the expired lease's last renewal (a copy
    /// renewed later is alive: it heard a heartbeat the expired one missed).
    pub fn ends(&self, registration_ms: u64, renewal_ms: u64) -> bool {
        match self.expired {
            false => self.time_ms >= registration_ms,
            true => self.time_ms >= renewal_ms,
        }
    }
}

#[derive(Clone, Copy)]
struct Entry {
    removal: Removal,
    /// Its slot in the age queue.
    seq: u64,
}

/// One slot of the age queue: live while the entry of `key` still carries `seq`.
struct Aged {
    seq: u64,
    remembered_ms: u64,
    key: Arc<InstanceKey>,
}

/// The removals one shard remembers.
pub(crate) struct Removals {
    config: RemovalMemory,
    /// By lowercased service id, then by instance key.
    by_service: HashMap<Box<str>, HashMap<Arc<InstanceKey>, Entry>>,
    /// Remembered entries, oldest first, with stale slots among them.
    order: VecDeque<Aged>,
    len: usize,
    next_seq: u64,
}

impl Removals {
    pub(crate) fn new(config: RemovalMemory) -> Removals {
        Removals {
            config,
            by_service: HashMap::new(),
            order: VecDeque::new(),
            len: 0,
            next_seq: 0,
        }
    }

    /// Remembers that `key` left; a removal already remembered at a later time is kept.
    pub(crate) fn remember(&mut self, key: &InstanceKey, removal: Removal, now_ms: u64) {
        if self.config.max_entries == 0 {
            return;
        }
        let seq = self.next_seq;
        if !self.by_service.contains_key(&*key.service_id) {
            self.by_service
                .insert(key.service_id.clone(), HashMap::new());
        }
        let service = self
            .by_service
            .get_mut(&*key.service_id)
            .expect("inserted above");
        let key = match service.get_key_value(key) {
            Some((_, entry)) if entry.removal.time_ms > removal.time_ms => return,
            Some((known, _)) => known.clone(),
            None => {
                self.len += 1;
                Arc::new(key.clone())
            }
        };
        service.insert(key.clone(), Entry { removal, seq });
        self.next_seq += 1;
        self.order.push_back(Aged {
            seq,
            remembered_ms: now_ms,
            key,
        });
        while self.len > self.config.max_entries {
            self.forget_oldest();
        }
        self.compact();
    }

    /// Forgets `key`'s removal (it registered again).
    pub(crate) fn forget(&mut self, key: &InstanceKey) {
        let Some(service) = self.by_service.get_mut(&*key.service_id) else {
            return;
        };
        if service.remove(key).is_some() {
            self.len -= 1;
            if service.is_empty() {
                self.by_service.remove(&*key.service_id);
            }
            self.compact();
        }
    }

    /// The removal of `key`, if remembered.
    pub(crate) fn get(&self, key: &InstanceKey) -> Option<Removal> {
        let entry = self.by_service.get(&*key.service_id)?.get(key)?;
        Some(entry.removal)
    }

    /// Every removal remembered of the service (`service_key` lowercased).
    pub(crate) fn of_service(&self, service_key: &str) -> Vec<(InstanceKey, Removal)> {
        let Some(service) = self.by_service.get(service_key) else {
            return Vec::new();
        };
        let each = |(key, entry): (&Arc<InstanceKey>, &Entry)| ((**key).clone(), entry.removal);
        service.iter().map(each).collect()
    }

    /// Forgets what was remembered more than `memory_ms` before `now_ms`.
    pub(crate) fn trim(&mut self, now_ms: u64) {
        while let Some(oldest) = self.order.front() {
            let live = self.is_live(oldest);
            if live && now_ms.saturating_sub(oldest.remembered_ms) <= self.config.memory_ms {
                break;
            }
            self.forget_oldest();
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn is_live(&self, aged: &Aged) -> bool {
        self.by_service
            .get(&*aged.key.service_id)
            .and_then(|service| service.get(&*aged.key))
            .is_some_and(|entry| entry.seq == aged.seq)
    }

    /// Pops the front slot, forgetting its entry if it is live.
    fn forget_oldest(&mut self) {
        let Some(oldest) = self.order.pop_front() else {
            return;
        };
        if self.is_live(&oldest) {
            self.forget(&oldest.key);
        }
    }

    /// Drops the stale slots once they outnumber the live ones (amortized O(1) per operation).
    fn compact(&mut self) {
        if self.order.len() <= 2 * self.len + 64 {
            return;
        }
        let mut order = std::mem::take(&mut self.order);
        order.retain(|aged| self.is_live(aged));
        self.order = order;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::tests::key;

    fn memory(memory_ms: u64, max_entries: usize) -> Removals {
        Removals::new(RemovalMemory {
            memory_ms,
            max_entries,
        })
    }

    #[test]
    fn remembers_until_a_register_forgets() {
        let mut removals = memory(1_000, 10);
        removals.remember(&key("s", "a"), Removal::unregistered(5), 5);
        removals.remember(&key("t", "b"), Removal::expired(3), 6);
        assert_eq!(removals.get(&key("s", "a")), Some(Removal::unregistered(5)));
        assert_eq!(
            removals.of_service("t"),
            [(key("t", "b"), Removal::expired(3))]
        );
        assert!(removals.of_service("u").is_empty());
        removals.forget(&key("s", "a"));
        assert_eq!(removals.get(&key("s", "a")), None);
        assert!(removals.of_service("s").is_empty());
        assert_eq!(removals.len(), 1);
    }

    #[test]
    fn a_later_removal_replaces_an_earlier_one_never_the_reverse() {
        let mut removals = memory(1_000, 10);
        removals.remember(&key("s", "a"), Removal::unregistered(10), 10);
        removals.remember(&key("s", "a"), Removal::expired(4), 11);
        assert_eq!(
            removals.get(&key("s", "a")),
            Some(Removal::unregistered(10))
        );
        removals.remember(&key("s", "a"), Removal::unregistered(20), 20);
        let only = [(key("s", "a"), Removal::unregistered(20))];
        assert_eq!(removals.of_service("s"), only);
    }

    #[test]
    fn forgotten_after_the_memory() {
        let mut removals = memory(1_000, 10);
        removals.remember(&key("s", "a"), Removal::unregistered(0), 0);
        removals.remember(&key("s", "b"), Removal::unregistered(500), 500);
        removals.trim(1_000);
        assert_eq!(removals.len(), 2);
        removals.trim(1_001);
        assert_eq!(removals.get(&key("s", "a")), None);
        assert!(removals.get(&key("s", "b")).is_some());
        // Refreshed by a later removal: its age starts again.
        removals.remember(&key("s", "b"), Removal::unregistered(900), 900);
        removals.trim(1_600);
        assert!(removals.get(&key("s", "b")).is_some());
        removals.trim(1_901);
        assert_eq!(removals.len(), 0);
        assert!(removals.by_service.is_empty());
        assert!(removals.order.is_empty());
    }

    #[test]
    fn bounded_in_count_the_oldest_forgotten_first() {
        let mut removals = memory(u64::MAX, 3);
        for (i, id) in ["a", "b", "c", "d"].into_iter().enumerate() {
            removals.remember(&key("s", id), Removal::unregistered(i as u64), i as u64);
        }
        assert_eq!(removals.len(), 3);
        assert_eq!(removals.get(&key("s", "a")), None);
        assert!(removals.get(&key("s", "d")).is_some());
        // A forgotten entry's slot does not count: "b" is the oldest live one.
        removals.forget(&key("s", "c"));
        removals.remember(&key("s", "e"), Removal::unregistered(9), 9);
        removals.remember(&key("s", "f"), Removal::unregistered(9), 9);
        let mut left: Vec<_> = removals
            .of_service("s")
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        left.sort();
        assert_eq!(left, [key("s", "d"), key("s", "e"), key("s", "f")]);
        assert!(memory(1, 0).get(&key("s", "a")).is_none());
        let mut none = memory(1_000, 0);
        none.remember(&key("s", "a"), Removal::unregistered(1), 1);
        assert_eq!(none.len(), 0);
    }

    #[test]
    fn churn_leaves_no_pile_of_stale_slots() {
        let mut removals = memory(u64::MAX, 1_000_000);
        for round in 0..10_000 {
            removals.remember(&key("s", "a"), Removal::unregistered(round), round);
            removals.forget(&key("s", "a"));
        }
        assert_eq!(removals.len(), 0);
        assert!(removals.order.len() <= 64, "{}", removals.order.len());
    }

    #[test]
    fn an_unregister_ends_older_registrations_an_expiry_older_renewals() {
        let gone = Removal::unregistered(100);
        assert!(gone.ends(100, 500));
        assert!(!gone.ends(101, 101));
        let lapsed = Removal::expired(100);
        assert!(lapsed.ends(10, 100));
        assert!(!lapsed.ends(10, 101));
    }
}
