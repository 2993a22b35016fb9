//! The delta property: for random registers, unregisters and expiries over many services spread
//! across several shards sharing one version clock, the delta from any retained version, applied
//! to the full list taken at that version, gives exactly the current full list.
//!
//! Full lists are gathered shard by shard with other changes in between, as the server gathers
//! them from cores that keep working; the version such a list claims is the smallest clock value
//! the shards reported.

use std::collections::BTreeMap;
use std::sync::Arc;

use artemis_shards::{
    shard_for, ChangeKind, Instance, InstanceKey, InstanceLimits, NodeRules, RemovalMemory,
    Retention, Shard, ShardConfig, VersionClock,
};

const SHARDS: usize = 3;
const SERVICES: u64 = 12;
const INSTANCES: u64 = 8;
const TTL: u64 = 1_000;

/// Instance key → the instance's JSON.
type FullList = BTreeMap<InstanceKey, String>;

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn shards(clock: &Arc<VersionClock>, retention: Retention) -> Vec<Shard> {
    (0..SHARDS)
        .map(|_| {
            let config = ShardConfig {
                rules: NodeRules {
                    region_id: "SHA".into(),
                    zone_id: "Z".into(),
                    allow_registry_from_other_zone: true,
                },
                lease_ttl_ms: TTL,
                legacy_lease_ttl_ms: TTL,
                self_preservation: None,
                eviction_batch: 1_000,
                delta_retention: retention,
                delta_retention_bytes: usize::MAX,
                limits: InstanceLimits::default(),
                removal_memory: RemovalMemory {
                    memory_ms: 600_000,
                    max_entries: 1_000,
                },
            };
            Shard::new(config, clock.clone())
        })
        .collect()
}

fn instance(service: u64, id: u64, generation: u64) -> Instance {
    Instance {
        region_id: Some("SHA".into()),
        zone_id: Some("Z".into()),
        service_id: Some(format!("Svc.{service}")),
        instance_id: Some(format!("10.0.{service}.{id}:80")),
        url: Some(format!("http://10.0.{service}.{id}/v{generation}")),
        ..Instance::default()
    }
}

fn owner(instance: &Instance) -> usize {
    shard_for(instance.service_id.as_deref().unwrap(), SHARDS)
}

/// One shard's part of the full list.
fn shard_list(shard: &mut Shard) -> FullList {
    let mut list = FullList::new();
    for snapshot in shard.services() {
        let array: Vec<serde_json::Value> =
            serde_json::from_slice(&snapshot.instances_json).unwrap();
        for value in array {
            let field = |name: &str| value[name].as_str().unwrap().to_lowercase();
            let key = InstanceKey {
                region_id: field("regionId").into(),
                service_id: field("serviceId").into(),
                instance_id: field("instanceId").into(),
            };
            list.insert(key, value.to_string());
        }
    }
    list
}

/// A random write on the owning shard at `now`.
fn random_write(shards: &mut [Shard], rng: &mut Rng, now: u64) {
    let chosen = instance(rng.below(SERVICES), rng.below(INSTANCES), rng.below(1_000));
    let shard = &mut shards[owner(&chosen)];
    match rng.below(10) {
        0..=5 => assert!(shard.register(&[(0, chosen)], now).is_empty()),
        6..=7 => assert!(shard.unregister(&[(0, chosen)], now).is_empty()),
        _ => {
            shard.heartbeat(&[(0, chosen)], now);
        }
    }
}

/// `list` with every shard's delta since `version` applied; `None` when a shard no longer has it.
fn apply(list: &FullList, shards: &[Shard], version: u64) -> Option<FullList> {
    let mut list = list.clone();
    for shard in shards {
        for change in shard.changes_since(version).ok()? {
            match change.kind {
                ChangeKind::New => {
                    let json: serde_json::Value =
                        serde_json::from_slice(&change.instance_json).unwrap();
                    list.insert(change.key, json.to_string());
                }
                ChangeKind::Delete => {
                    list.remove(&change.key);
                }
                // No management state here, so no reloads.
                ChangeKind::Reload => unreachable!("a reload without management state"),
            }
        }
    }
    Some(list)
}

/// Runs random writes, takes full lists now and then, and checks every retained one against the
/// current list; returns how many checks were made and how many lists were refused as too old.
fn run(seed: u64, retention: Retention) -> (usize, usize) {
    let clock = Arc::new(VersionClock::starting_at(1));
    let mut shards = shards(&clock, retention);
    let mut rng = Rng(seed);
    let mut now = 1_000_000;
    let mut taken: Vec<(u64, FullList)> = Vec::new();
    let (mut checked, mut refused) = (0, 0);
    for step in 0..1_500 {
        now += rng.below(40);
        random_write(&mut shards, &mut rng, now);
        if step % 50 == 0 {
            for shard in &mut shards {
                shard.evict(now);
            }
        }
        if step % 97 == 0 {
            // Gathered shard by shard, with writes landing in between.
            let mut list = FullList::new();
            let mut version = u64::MAX;
            for s in 0..SHARDS {
                version = version.min(shards[s].version());
                list.extend(shard_list(&mut shards[s]));
                random_write(&mut shards, &mut rng, now);
            }
            taken.push((version, list));
        }
        if step % 31 == 0 {
            let current: FullList = shards.iter_mut().flat_map(shard_list).collect();
            for (version, list) in &taken {
                match apply(list, &shards, *version) {
                    Some(applied) => {
                        assert_eq!(
                            &applied, &current,
                            "delta from version {version} at step {step}"
                        );
                        checked += 1;
                    }
                    None => refused += 1,
                }
            }
        }
    }
    (checked, refused)
}

#[test]
fn delta_from_any_retained_version_gives_the_current_list() {
    for seed in 1..=3 {
        let (checked, refused) = run(seed * 0x9e37_79b9, Retention::Count(100_000));
        assert!(checked > 200, "only {checked} comparisons");
        assert_eq!(refused, 0);
    }
}

#[test]
fn short_retention_refuses_old_versions_and_stays_exact_for_the_rest() {
    let (checked, refused) = run(0xdead_beef, Retention::Count(40));
    assert!(checked > 0, "no version was still retained when checked");
    assert!(refused > 0, "no version was ever dropped");
}
