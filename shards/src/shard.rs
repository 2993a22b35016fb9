//! One shard: the registrations, services, leases and safe checker owned by one core.
//!
//! Every operation takes its batch and `now` and returns its result; nothing here blocks, reads
//! a clock or does I/O. A write borrows its batch: what the shard keeps it copies, so the
//! instances go back to the core that decoded them and are freed there. A heartbeat is a hash
//! lookup and a store. A register or unregister touches only its own registration and service
//! (a re-register of the very same instance only renews it in place). Eviction does bounded work
//! per call. Every change visible to discovery takes the next version of the node's clock (the
//! changed service takes it as its own) and goes into the shard's change log, from which deltas
//! are answered.
//! Management state arrives as a whole new view; the shard compares it with the one it had and
//! re-checks only the services the difference touches: pulled-out instances leave discovery as
//! `delete`s, pulled-in ones come back as `new`s, and services whose route rules or logical
//! instances changed get a `reload`. A pulled-out instance's re-registers publish nothing.
//! For anti-entropy, the shard keeps each service's digest up to date on every change and
//! remembers the instances it saw removed for a while (see `shard/anti_entropy.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use crate::change::{Change, ChangeKind, ChangeLog, ChangesGone, Retention};
use crate::digest::Digests;
use crate::expiry::{Due, ExpiryIndex};
use crate::failed_instance::FailedInstance;
use crate::instance::Instance;
use crate::lease::{is_legacy, Lease, LeaseStatus};
use crate::limits::InstanceLimits;
use crate::management::{InstanceFacts, ManagementView, NO_LISTS};
use crate::registration::{Registration, Registrations};
use crate::removals::{Removal, RemovalMemory, Removals};
use crate::rules::{check_arguments, NodeRules, Rejection};
use crate::safety::{SafeChecker, SafetyConfig};
use crate::service::{InstancesJson, Member, Service, ServiceSnapshot};
use crate::version::VersionClock;
use crate::ErrorCode;

pub use anti_entropy::{Held, Merged, ServiceState};

/// How many expiry-index entries one `evict()` may look at per lease it may remove: entries of
/// renewed leases are pushed back, entries of removed ones skipped, all within this bound.
const INDEX_WORK_PER_REMOVAL: usize = 8;

/// How a write applies the node rules to an instance: a client's region and zone
/// ([`NodeRules::admit`]), or a peer's region alone ([`NodeRules::admit_replicated`]).
type Admission = fn(&NodeRules, &Instance) -> Result<(), Rejection>;

/// Java's reason for a heartbeat without a live lease (its typo included).
const NO_LEASE: &str = "Instance is not exising! Need re-register.";

/// Settings of one shard.
#[derive(Clone, Debug)]
pub struct ShardConfig {
    pub rules: NodeRules,
    /// TTL of normal leases (default 20 s).
    pub lease_ttl_ms: u64,
    /// TTL of legacy leases, metadata `java_registry` non-blank (default 90 s).
    pub legacy_lease_ttl_ms: u64,
    /// `None` turns self-preservation off: expired leases are always removed.
    pub self_preservation: Option<SafetyConfig>,
    /// At most this many leases removed per `evict()` call.
    pub eviction_batch: usize,
    /// How long changes are kept for deltas.
    pub delta_retention: Retention,
    /// At most this many bytes of changes are kept for deltas, whatever `delta_retention` says
    /// (see `Change::retained_bytes`); the oldest go first.
    pub delta_retention_bytes: usize,
    /// How large a client may make one instance.
    pub limits: InstanceLimits,
    /// How long and how many removed instances are remembered for anti-entropy.
    pub removal_memory: RemovalMemory,
}

/// The shard's counters, for status and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardStats {
    pub instances: usize,
    pub services: usize,
    pub leases_expired_total: u64,
    pub renewals_in_window: u64,
    pub max_renewals: u64,
    pub max_renewals_updated_ms: u64,
    pub safe: bool,
    /// Changes kept for deltas.
    pub changes_retained: usize,
    /// What the changes kept for deltas count against `delta_retention_bytes`.
    pub changes_retained_bytes: usize,
}

/// Registry state of one shard.
pub struct Shard {
    config: ShardConfig,
    registrations: Registrations,
    /// Services by lowercased service id; a service without instances is dropped.
    services: HashMap<String, Service>,
    expiry: ExpiryIndex,
    safety: Option<SafeChecker>,
    clock: Arc<VersionClock>,
    changes: ChangeLog,
    leases_expired_total: u64,
    /// The management state applied last.
    view: Arc<ManagementView>,
    /// The lists of a service without management data, shared by all its snapshots.
    no_lists: Arc<[u8]>,
    /// Each service's digest, for anti-entropy.
    digests: Digests,
    /// The instances removed lately, so that no peer's stale copy brings them back.
    removals: Removals,
}

/// A service as the management view shows it: every leased instance, pulled out or not.
#[derive(Clone, Debug)]
pub struct ManagedService {
    pub service_id: Arc<str>,
    pub instances: Vec<ManagedInstance>,
    /// As `ServiceSnapshot::lists`, pulled-out logical instances included.
    pub lists: Vec<u8>,
}

/// One leased instance of a [`ManagedService`].
#[derive(Clone, Debug)]
pub struct ManagedInstance {
    /// The instance's JSON as registered.
    pub json: Arc<[u8]>,
    pub down: bool,
    pub creation_ms: u64,
    pub renewal_ms: u64,
    pub ttl_ms: u64,
}

impl Shard {
    /// A shard numbering its changes with the node's `clock`.
    pub fn new(config: ShardConfig, clock: Arc<VersionClock>) -> Shard {
        Shard {
            safety: config.self_preservation.clone().map(SafeChecker::new),
            changes: ChangeLog::new(
                config.delta_retention,
                config.delta_retention_bytes,
                clock.current(),
            ),
            removals: Removals::new(config.removal_memory),
            digests: Digests::default(),
            clock,
            config,
            registrations: Registrations::default(),
            services: HashMap::new(),
            expiry: ExpiryIndex::default(),
            leases_expired_total: 0,
            view: Arc::default(),
            no_lists: NO_LISTS.into(),
        }
    }

    /// Registers each instance under a new lease, replacing any registration with its key.
    pub fn register(&mut self, batch: &[(u32, Instance)], now_ms: u64) -> Vec<FailedInstance> {
        self.store_each(batch, now_ms, NodeRules::admit)
    }

    /// A peer's replicated register (Java's `replication/registry/register.json`): as
    /// [`Shard::register`], but only the instance's region is checked, not its zone.
    pub fn register_replicated(
        &mut self,
        batch: &[(u32, Instance)],
        now_ms: u64,
    ) -> Vec<FailedInstance> {
        self.store_each(batch, now_ms, NodeRules::admit_replicated)
    }

    /// A peer's replicated heartbeat: renews the instance's live lease, or registers the
    /// instance when it has none (Java's replication heartbeat heals a lease this node missed or
    /// let expire). Only the region is checked. An instance named by its key alone (a client of
    /// the older Rust API heartbeated the peer by `instance_keys`) renews a live lease here too;
    /// without one there is nothing to register from, and Java's argument check refuses it.
    pub fn heartbeat_replicated(
        &mut self,
        batch: &[(u32, Instance)],
        now_ms: u64,
    ) -> Vec<FailedInstance> {
        self.apply(
            batch,
            now_ms,
            InstanceLimits::check,
            NodeRules::admit_replicated,
            |shard, instance, now_ms| {
                let live = shard.live_lease(instance, now_ms).ok();
                if live.is_none() {
                    check_arguments(instance)?;
                }
                Ok(live)
            },
            |shard, instance, lease, now_ms| match lease {
                Some(slot) => shard.renew(slot, now_ms),
                None => shard.store(instance, (), now_ms),
            },
        )
    }

    /// A peer's replicated unregister: as [`Shard::unregister`], only the region checked; an
    /// instance named by its key alone removes the lease it names.
    pub fn unregister_replicated(
        &mut self,
        batch: &[(u32, Instance)],
        now_ms: u64,
    ) -> Vec<FailedInstance> {
        self.remove_each(
            batch,
            now_ms,
            NodeRules::admit_replicated,
            |shard, instance, _| {
                let found = shard.lease_of_kind(instance);
                if found.is_none() {
                    check_arguments(instance)?;
                }
                Ok(found)
            },
        )
    }

    /// Renews each instance's lease; fails for a missing or expired one. As Java's executor, it
    /// checks the instance's arguments first.
    pub fn heartbeat(&mut self, batch: &[(u32, Instance)], now_ms: u64) -> Vec<FailedInstance> {
        self.renew_each(batch, now_ms, |shard, instance, now_ms| {
            check_arguments(instance)?;
            shard.live_lease(instance, now_ms)
        })
    }

    /// [`Shard::heartbeat`] of instances named by their keys alone (the older Rust API's
    /// `instance_keys`), which carry nothing but ids to check.
    pub fn heartbeat_by_key(
        &mut self,
        batch: &[(u32, Instance)],
        now_ms: u64,
    ) -> Vec<FailedInstance> {
        self.renew_each(batch, now_ms, Shard::live_lease)
    }

    /// Removes each instance from the registry and discovery at once; unknown ones are no-ops.
    /// As Java's executor, it checks the instance's arguments first.
    pub fn unregister(&mut self, batch: &[(u32, Instance)], now_ms: u64) -> Vec<FailedInstance> {
        self.remove_each(batch, now_ms, NodeRules::admit, |shard, instance, _| {
            check_arguments(instance)?;
            Ok(shard.lease_of_kind(instance))
        })
    }

    /// [`Shard::unregister`] of instances named by their keys alone.
    pub fn unregister_by_key(
        &mut self,
        batch: &[(u32, Instance)],
        now_ms: u64,
    ) -> Vec<FailedInstance> {
        self.remove_each(batch, now_ms, NodeRules::admit, |shard, instance, _| {
            Ok(shard.lease_of_kind(instance))
        })
    }

    fn store_each(
        &mut self,
        batch: &[(u32, Instance)],
        now_ms: u64,
        admit: Admission,
    ) -> Vec<FailedInstance> {
        let check = |_: &Shard, instance: &Instance, _| check_arguments(instance);
        self.apply(
            batch,
            now_ms,
            InstanceLimits::check,
            admit,
            check,
            Shard::store,
        )
    }

    fn renew_each(
        &mut self,
        batch: &[(u32, Instance)],
        now_ms: u64,
        find: fn(&Shard, &Instance, u64) -> Result<u32, Rejection>,
    ) -> Vec<FailedInstance> {
        let renew = |shard: &mut Shard, _: &Instance, slot, now_ms| shard.renew(slot, now_ms);
        let (limits, admit) = (InstanceLimits::check_ids, NodeRules::admit);
        self.apply(batch, now_ms, limits, admit, find, renew)
    }

    fn remove_each(
        &mut self,
        batch: &[(u32, Instance)],
        now_ms: u64,
        admit: Admission,
        find: fn(&Shard, &Instance, u64) -> Result<Option<u32>, Rejection>,
    ) -> Vec<FailedInstance> {
        let remove = |shard: &mut Shard, _: &Instance, slot: Option<u32>, now_ms| {
            if let Some(slot) = slot {
                shard.remove(slot, now_ms);
            }
        };
        let limits = InstanceLimits::check_ids;
        self.apply(batch, now_ms, limits, admit, find, remove)
    }

    /// The discovery bytes of a service (id matched case-insensitively); `None` when it has
    /// neither instances nor management data.
    pub fn service(&mut self, service_id: &str) -> Option<ServiceSnapshot> {
        let key = service_id.to_lowercase();
        match self.services.get_mut(&key) {
            Some(service) => Some(snapshot(
                service,
                &self.view,
                &self.registrations,
                &self.no_lists,
            )),
            None => self.unregistered(&key, service_id),
        }
    }

    /// The snapshot of a service only management data names: no instances, its lists.
    fn unregistered(&self, key: &str, service_id: &str) -> Option<ServiceSnapshot> {
        if !self.view.has_rules(key) {
            return None;
        }
        let mut lists = Vec::new();
        self.view.write_lists(&mut lists, key, &[], true);
        Some(ServiceSnapshot {
            service_id: service_id.into(),
            version: self.clock.current(),
            instances_json: Arc::new(InstancesJson::new(b"[]".to_vec())),
            lists: lists.into(),
            registered: false,
        })
    }

    /// The Prometheus `http_sd` target groups of the services named by `keys` (lowercased ids),
    /// or of every service when `keys` is empty: one part per service that has targets, each
    /// its groups comma-separated. Unknown services are skipped.
    pub fn targets(&mut self, keys: &[String]) -> Vec<Arc<InstancesJson>> {
        let services = &mut self.services;
        let targets: Vec<Arc<InstancesJson>> = if keys.is_empty() {
            services.values_mut().map(Service::targets).collect()
        } else {
            let each = |key: &String| services.get_mut(key).map(Service::targets);
            keys.iter().filter_map(each).collect()
        };
        targets.into_iter().filter(|t| !t.is_empty()).collect()
    }

    /// The discovery bytes of every service with instances, in no particular order.
    pub fn services(&mut self) -> Vec<ServiceSnapshot> {
        let (view, registrations, no_lists) = (&self.view, &self.registrations, &self.no_lists);
        self.services
            .values_mut()
            .map(|service| snapshot(service, view, registrations, no_lists))
            .collect()
    }

    /// The management state applied last.
    pub fn management_view(&self) -> &Arc<ManagementView> {
        &self.view
    }

    /// Applies a new management state: instances it pulls out leave discovery (`delete`), those
    /// it lets back in return (`new`), and services whose lists changed get a `reload`.
    pub fn apply_management(&mut self, view: Arc<ManagementView>, now_ms: u64) {
        let before = std::mem::replace(&mut self.view, view);
        let affected = self.view.affected(&before);
        let keys: Vec<String> = if affected.every_service {
            self.services.keys().cloned().collect()
        } else {
            let known = affected.services.into_iter();
            known.filter(|k| self.services.contains_key(k)).collect()
        };
        for key in keys {
            self.filter_again(&key, now_ms);
        }
        for key in affected.reload {
            let version = self.clock.next();
            let service_id = match self.services.get_mut(&key) {
                Some(service) => {
                    service.touch(version);
                    service.id().clone()
                }
                None => Arc::from(self.view.service_id(&key).unwrap_or(&key)),
            };
            self.changes
                .record(Change::reload(version, now_ms, service_id));
        }
    }

    /// Checks each instance of the service against the view, recording those that flip.
    fn filter_again(&mut self, key: &str, now_ms: u64) {
        let Some(service) = self.services.get_mut(key) else {
            return;
        };
        for position in 0..service.len() {
            let member = &service.members()[position];
            let Some(registration) = self.registrations.get(member.slot) else {
                continue;
            };
            let down = self.view.is_down(&registration.facts());
            if down == member.down {
                continue;
            }
            let version = self.clock.next();
            let instance_json = member.fragment.clone();
            service.set_down(position, down, version);
            self.changes.record(Change {
                version,
                kind: if down {
                    ChangeKind::Delete
                } else {
                    ChangeKind::New
                },
                time_ms: now_ms,
                service_id: service.id().clone(),
                key: registration.key.clone(),
                instance_json,
            });
        }
    }

    /// Every leased instance of one service (or of all), pulled out or not, with its lease.
    pub fn managed(&self, service_id: Option<&str>) -> Vec<ManagedService> {
        let managed = |(key, service): (&String, &Service)| {
            let instances = service
                .members()
                .iter()
                .filter_map(|member| {
                    let lease = &self.registrations.get(member.slot)?.lease;
                    Some(ManagedInstance {
                        json: member.fragment.clone(),
                        down: member.down,
                        creation_ms: lease.creation_ms,
                        renewal_ms: lease.renewal_ms,
                        ttl_ms: lease.ttl_ms,
                    })
                })
                .collect();
            let mut lists = Vec::new();
            let facts = self.facts_of(service, key);
            self.view.write_lists(&mut lists, key, &facts, false);
            ManagedService {
                service_id: service.id().clone(),
                instances,
                lists,
            }
        };
        match service_id {
            Some(id) => {
                let key = id.to_lowercase();
                self.services
                    .get_key_value(&key)
                    .map(managed)
                    .into_iter()
                    .collect()
            }
            None => self.services.iter().map(managed).collect(),
        }
    }

    /// The facts and JSON of every member, for a view that needs them (a canary rule).
    fn facts_of<'a>(
        &'a self,
        service: &'a Service,
        key: &str,
    ) -> Vec<(InstanceFacts<'a>, &'a [u8])> {
        members_facts(service, key, &self.view, &self.registrations)
    }

    /// Removes up to `eviction_batch` expired leases, only while the safe checker reports safe
    /// (always when self-preservation is off). Returns how many were removed.
    /// Old changes beyond the delta retention are dropped on the way.
    pub fn evict(&mut self, now_ms: u64) -> usize {
        self.changes.trim(now_ms);
        self.removals.trim(now_ms);
        if !self.is_safe() {
            return 0;
        }
        let batch = self.config.eviction_batch;
        let mut work = batch.saturating_mul(INDEX_WORK_PER_REMOVAL);
        let mut removed = 0;
        while removed < batch && work > 0 {
            let Some(due) = self.expiry.pop_due(now_ms) else {
                break;
            };
            work -= 1;
            let Some(registration) = self.registrations.current(due.slot, due.generation) else {
                continue;
            };
            if registration.lease.is_expired(now_ms) {
                let expiry = Removal::expired(registration.lease.renewal_ms);
                self.remove_as(due.slot, expiry, now_ms);
                removed += 1;
            } else {
                let due_ms = registration.lease.expires_at_ms();
                self.expiry.schedule(Due { due_ms, ..due });
            }
        }
        self.leases_expired_total += removed as u64;
        removed
    }

    /// Runs the safe checker (every 1000 ms); a no-op when self-preservation is off.
    pub fn check_safety(&mut self, now_ms: u64) {
        if let Some(safety) = &mut self.safety {
            safety.check(now_ms);
        }
    }

    /// The normal (or, with `legacy`, the legacy) leases of the given services, matched
    /// case-insensitively; all services when `service_ids` is empty.
    pub fn leases(&self, service_ids: &[String], legacy: bool) -> Vec<LeaseStatus> {
        let status = |registration: &Registration| LeaseStatus {
            service_id: registration.service_id.to_string(),
            instance: registration.name.to_string(),
            creation_ms: registration.lease.creation_ms,
            renewal_ms: registration.lease.renewal_ms,
            ttl_ms: registration.lease.ttl_ms,
        };
        let wanted = |registration: &&Registration| registration.lease.legacy == legacy;
        if service_ids.is_empty() {
            return self
                .registrations
                .iter()
                .filter(wanted)
                .map(status)
                .collect();
        }
        let mut keys: Vec<String> = service_ids.iter().map(|id| id.to_lowercase()).collect();
        keys.sort_unstable();
        keys.dedup();
        keys.iter()
            .filter_map(|key| self.services.get(key))
            .flat_map(Service::slots)
            .filter_map(|slot| self.registrations.get(slot))
            .filter(wanted)
            .map(status)
            .collect()
    }

    pub fn stats(&self) -> ShardStats {
        let safety = self.safety.as_ref();
        ShardStats {
            instances: self.registrations.len(),
            services: self.services.len(),
            leases_expired_total: self.leases_expired_total,
            renewals_in_window: safety.map_or(0, SafeChecker::renewals_in_window),
            max_renewals: safety.map_or(0, SafeChecker::max_renewals),
            max_renewals_updated_ms: safety.map_or(0, SafeChecker::max_renewals_updated_ms),
            safe: self.is_safe(),
            changes_retained: self.changes.len(),
            changes_retained_bytes: self.changes.bytes(),
        }
    }

    /// The node clock's current version. Everything this shard answers now includes each of its
    /// own changes up to this version (see `VersionClock`).
    pub fn version(&self) -> u64 {
        self.clock.current()
    }

    /// The latest change of each instance changed after `version`, or `ChangesGone` when
    /// changes after it are no longer all kept.
    pub fn changes_since(&self, version: u64) -> Result<Vec<Change>, ChangesGone> {
        self.changes.since(version)
    }

    /// Every change made since the last [`Shard::mark_pushed`], in order, for pushing to
    /// subscribers; read where the log keeps them, not copied.
    pub fn unpushed(&self) -> impl Iterator<Item = &Change> {
        self.changes.unpushed()
    }

    /// The changes made so far have been pushed, or had no subscriber to go to.
    pub fn mark_pushed(&mut self) {
        self.changes.mark_pushed();
    }

    /// [`Shard::unpushed`], copied, then marked pushed.
    #[cfg(test)]
    pub(crate) fn take_unpushed(&mut self) -> Vec<Change> {
        let changes = self.unpushed().cloned().collect();
        self.mark_pushed();
        changes
    }

    /// Runs each instance through the size `limits`, the node rules as `admit` applies them and
    /// `check`, then `commit`s it or reports it. The limits come first, so that no other check
    /// reads (or quotes in its reason) a field over its limit.
    fn apply<T>(
        &mut self,
        batch: &[(u32, Instance)],
        now_ms: u64,
        limits: fn(&InstanceLimits, &Instance) -> Result<(), Rejection>,
        admit: Admission,
        check: fn(&Shard, &Instance, u64) -> Result<T, Rejection>,
        commit: fn(&mut Shard, &Instance, T, u64),
    ) -> Vec<FailedInstance> {
        let mut failed = Vec::new();
        for (index, instance) in batch {
            let checked = limits(&self.config.limits, instance)
                .and_then(|()| admit(&self.config.rules, instance))
                .and_then(|()| check(self, instance, now_ms));
            match checked {
                Ok(found) => commit(self, instance, found, now_ms),
                Err(rejection) => {
                    failed.push(FailedInstance::new(*index, rejection, instance.clone()));
                }
            }
        }
        failed
    }

    /// The slot of the instance's lease, if it exists and is of the instance's kind. Java keeps
    /// legacy leases (`java_registry` metadata) and the others apart: an instance sent without
    /// the marker is looked for among the others only, and the other way round.
    fn lease_of_kind(&self, instance: &Instance) -> Option<u32> {
        let legacy = is_legacy(instance);
        self.registrations.find(&instance.key()).filter(|&slot| {
            self.registrations
                .get(slot)
                .is_some_and(|r| r.lease.legacy == legacy)
        })
    }

    /// The slot of the instance's lease, if it exists, is of its kind and has not expired.
    fn live_lease(&self, instance: &Instance, now_ms: u64) -> Result<u32, Rejection> {
        self.lease_of_kind(instance)
            .filter(|&slot| {
                self.registrations
                    .get(slot)
                    .is_some_and(|r| !r.lease.is_expired(now_ms))
            })
            .ok_or_else(|| Rejection {
                code: ErrorCode::DataNotFound,
                reason: NO_LEASE.into(),
            })
    }

    fn renew(&mut self, slot: u32, now_ms: u64) {
        if let Some(registration) = self.registrations.get_mut(slot) {
            registration.lease.renew(now_ms);
            if let Some(safety) = &mut self.safety {
                safety.record(now_ms);
            }
        }
    }

    /// Stores `instance` under a new lease, in place of any registration with its key.
    fn store(&mut self, instance: &Instance, (): (), now_ms: u64) {
        self.store_as_of(instance, now_ms, now_ms, now_ms);
    }

    /// [`Shard::store`] under a lease created at `registration_ms` and last renewed at
    /// `renewal_ms` (a copy merged from a peer keeps the peer's). A removal remembered of the
    /// key is forgotten.
    fn store_as_of(
        &mut self,
        instance: &Instance,
        registration_ms: u64,
        renewal_ms: u64,
        now_ms: u64,
    ) {
        let key = instance.key();
        let legacy = is_legacy(instance);
        let mut lease = Lease::new(renewal_ms, self.ttl_ms(legacy), legacy);
        lease.creation_ms = registration_ms;
        let json = instance.to_json();
        self.removals.forget(&key);
        let version = self.clock.next();
        let down = self.view.is_down(&InstanceFacts {
            key: &key,
            service_id: instance.service_id.as_deref().unwrap_or(""),
            zone_id: instance.zone_id.as_deref(),
            ip: instance.ip.as_deref(),
            group_id: instance.group_id.as_deref(),
        });
        let member = |slot, fragment: &Arc<[u8]>| Member {
            slot,
            fragment: Arc::clone(fragment),
            down,
        };
        let (slot, generation, was_shown, fragment) = match self.registrations.find(&key) {
            Some(slot) => {
                let service = self
                    .services
                    .get_mut(&*key.service_id)
                    .expect("a registration's service exists");
                let position = self
                    .registrations
                    .get(slot)
                    .expect("indexed slot is live")
                    .position;
                let current = &service.members()[position];
                // The very same instance again (a client re-registering, a peer's copy): only its
                // lease is new, its fragment is kept, and nothing derived from its data need be
                // rebuilt.
                let same = *current.fragment == *json;
                let fragment = if same {
                    Arc::clone(&current.fragment)
                } else {
                    json.into()
                };
                let replaced = service.replace(position, member(slot, &fragment), version);
                let generation = if same {
                    self.registrations.renew(slot, lease)
                } else {
                    self.digests.remove(&key, &replaced.fragment);
                    self.digests.add(&key, &fragment);
                    let registration = Registration::new(instance, lease, position);
                    self.registrations.replace(slot, registration)
                };
                (slot, generation, !replaced.down, fragment)
            }
            None => {
                let fragment: Arc<[u8]> = json.into();
                let service = self
                    .services
                    .entry(key.service_id.to_string())
                    .or_insert_with(|| Service::new(instance.service_id.as_deref().unwrap_or("")));
                let position = service.len();
                self.digests.add(&key, &fragment);
                let registration = Registration::new(instance, lease, position);
                let (slot, generation) = self.registrations.insert(registration);
                service.add(member(slot, &fragment), version);
                (slot, generation, false, fragment)
            }
        };
        // A pulled-out instance's re-register publishes nothing (Java's publisher drops `new`s
        // of down instances); one that moved under a pull-out leaves discovery.
        let kind = match (down, was_shown) {
            (false, _) => Some(ChangeKind::New),
            (true, true) => Some(ChangeKind::Delete),
            (true, false) => None,
        };
        if let Some(kind) = kind {
            let service_id = self.services[&*key.service_id].id().clone();
            self.changes.record(Change {
                version,
                kind,
                time_ms: now_ms,
                service_id,
                key,
                instance_json: fragment,
            });
        }
        self.expiry.schedule(Due {
            due_ms: lease.expires_at_ms(),
            slot,
            generation,
        });
    }

    /// Removes the registration in `slot` (an unregister now).
    fn remove(&mut self, slot: u32, now_ms: u64) {
        self.remove_as(slot, Removal::unregistered(now_ms), now_ms);
    }

    /// Removes the registration in `slot` from its service, dropping the service once empty,
    /// and remembers the `removal`.
    fn remove_as(&mut self, slot: u32, removal: Removal, now_ms: u64) {
        let Some(registration) = self.registrations.remove(slot) else {
            return;
        };
        let version = self.clock.next();
        let key = registration.key;
        let service = self
            .services
            .get_mut(&*key.service_id)
            .expect("a registration's service exists");
        let (Member { fragment, .. }, moved) = service.remove(registration.position, version);
        let service_id = service.id().clone();
        if service.is_empty() {
            self.services.remove(&*key.service_id);
        }
        if let Some(moved) = moved.and_then(|moved| self.registrations.get_mut(moved)) {
            moved.position = registration.position;
        }
        self.digests.remove(&key, &fragment);
        self.removals.remember(&key, removal, now_ms);
        self.changes.record(Change {
            version,
            kind: ChangeKind::Delete,
            time_ms: now_ms,
            service_id,
            key,
            instance_json: fragment,
        });
    }

    fn is_safe(&self) -> bool {
        self.safety.as_ref().is_none_or(SafeChecker::is_safe)
    }

    /// The TTL of a normal or a legacy lease.
    fn ttl_ms(&self, legacy: bool) -> u64 {
        if legacy {
            self.config.legacy_lease_ttl_ms
        } else {
            self.config.lease_ttl_ms
        }
    }
}

/// The service's snapshot, its lists written by the management view.
fn snapshot(
    service: &mut Service,
    view: &ManagementView,
    registrations: &Registrations,
    no_lists: &Arc<[u8]>,
) -> ServiceSnapshot {
    service.snapshot(|service| {
        let key = service.id().to_lowercase();
        if !view.has_rules(&key) {
            return no_lists.clone();
        }
        let facts = members_facts(service, &key, view, registrations);
        let mut lists = Vec::new();
        view.write_lists(&mut lists, &key, &facts, true);
        lists.into()
    })
}

/// The facts and JSON of every member when the view needs them (a canary rule), else none.
fn members_facts<'a>(
    service: &'a Service,
    key: &str,
    view: &ManagementView,
    registrations: &'a Registrations,
) -> Vec<(InstanceFacts<'a>, &'a [u8])> {
    if !view.needs_instances(key) {
        return Vec::new();
    }
    service
        .members()
        .iter()
        .filter_map(|m| Some((registrations.get(m.slot)?.facts(), &*m.fragment)))
        .collect()
}

mod anti_entropy;
#[cfg(test)]
mod tests;
