//! Anti-entropy on one shard: the removal memory, the digest kept up to date, and every case of
//! the merge rule (see `shard/anti_entropy.rs`).

use super::*;
use crate::digest::ServiceDigest;
use crate::instance::InstanceKey;
use crate::removals::Removal;
use crate::shard::{Held, Merged, ServiceState};

/// The shard's state of the test service, as a peer would receive it.
fn state_of(shard: &Shard) -> ServiceState<Instance> {
    let (_, state) = shard.service_states(&[SERVICE.into()]).remove(0);
    ServiceState {
        instances: state
            .instances
            .into_iter()
            .map(|held| Held {
                instance: parse(&held.instance),
                registration_ms: held.registration_ms,
                renewal_ms: held.renewal_ms,
            })
            .collect(),
        removals: state.removals,
    }
}

/// The test instance whose JSON is `json` (the shard crate has no
/// JSON reader; a peer's instances arrive parsed).
fn parse(json: &[u8]) -> Instance {
    (0..10)
        .map(nth)
        .chain((0..10).map(|n| changed(nth(n))))
        .chain([elsewhere()])
        .find(|i| i.to_json() == json)
        .expect("a test instance")
}

/// An instance of another service.
fn elsewhere() -> Instance {
    let mut instance = nth(7);
    instance.service_id = Some("Other.Service".into());
    instance
}

/// I1 with other data.
fn changed(mut instance: Instance) -> Instance {
    instance.url = Some("http://10.2.3.4:9090/changed/".into());
    instance
}

/// A peer's copy registered at `registration_ms` and last renewed at `renewal_ms`.
fn copy(instance: Instance, registration_ms: u64, renewal_ms: u64) -> Held<Instance> {
    Held {
        instance,
        registration_ms,
        renewal_ms,
    }
}

fn peer(
    instances: Vec<Held<Instance>>,
    removals: Vec<(InstanceKey, Removal)>,
) -> ServiceState<Instance> {
    ServiceState {
        instances,
        removals,
    }
}

fn merged(added: u64, replaced: u64, removed: u64) -> Merged {
    Merged {
        added,
        replaced,
        removed,
    }
}

/// `(creation, renewal)` of the test service's only lease.
fn lease_times(shard: &Shard) -> (u64, u64) {
    let leases = shard.leases(&[], false);
    assert_eq!(leases.len(), 1, "{leases:?}");
    (leases[0].creation_ms, leases[0].renewal_ms)
}

/// The digest of every service recomputed from what the shard holds.
fn recomputed(shard: &Shard) -> Vec<(Box<str>, ServiceDigest)> {
    let mut all: Vec<(Box<str>, ServiceDigest)> = shard
        .managed(None)
        .into_iter()
        .map(|service| {
            let mut digest = ServiceDigest::default();
            for instance in &service.instances {
                digest.add(&parse(&instance.json).key(), &instance.json);
            }
            (service.service_id.to_lowercase().into(), digest)
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

fn digest(shard: &Shard) -> Vec<(Box<str>, ServiceDigest)> {
    let mut all = shard.digest();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

// ---- removal memory ----

#[test]
fn an_unregister_is_remembered_until_the_key_registers_again() {
    let mut shard = shard();
    shard.register(&one(i1()), T0);
    shard.unregister(&one(i1()), T0 + 5);
    assert_eq!(
        state_of(&shard).removals,
        [(i1().key(), Removal::unregistered(T0 + 5))]
    );
    shard.register(&one(i1()), T0 + 6);
    assert!(state_of(&shard).removals.is_empty());
}

#[test]
fn an_expiry_is_remembered_at_the_last_renewal() {
    let mut shard = shard();
    shard.register(&one(i1()), T0);
    shard.heartbeat(&one(i1()), T0 + 1_000);
    assert_eq!(shard.evict(T0 + 1_000 + TTL + 1), 1);
    assert_eq!(
        state_of(&shard).removals,
        [(i1().key(), Removal::expired(T0 + 1_000))]
    );
}

#[test]
fn removals_are_forgotten_after_the_removal_memory() {
    let mut shard = shard();
    shard.register(&one(i1()), T0);
    shard.unregister(&one(i1()), T0);
    shard.evict(T0 + REMOVAL_MEMORY);
    assert_eq!(state_of(&shard).removals.len(), 1);
    shard.evict(T0 + REMOVAL_MEMORY + 1);
    assert!(state_of(&shard).removals.is_empty());
}

// ---- digest ----

#[test]
fn the_digest_kept_on_every_change_equals_one_recomputed() {
    let mut shard = shard();
    assert!(digest(&shard).is_empty());
    shard.register(&batch([i1(), nth(1), nth(2), elsewhere()]), T0);
    assert_eq!(digest(&shard), recomputed(&shard));
    assert_eq!(&*digest(&shard)[0].0, SERVICE);
    assert_eq!(digest(&shard)[0].1.count, 3);
    shard.register(&one(changed(i1())), T0 + 1);
    shard.heartbeat(&one(nth(1)), T0 + 2);
    assert_eq!(digest(&shard), recomputed(&shard));
    shard.unregister(&one(nth(2)), T0 + 3);
    assert_eq!(digest(&shard), recomputed(&shard));
    assert_eq!(shard.evict(T0 + TTL + 2), 2, "only nth(1) was kept alive");
    assert_eq!(digest(&shard), recomputed(&shard));
    assert_eq!(digest(&shard)[0].1.count, 1);
    let merging = peer(vec![copy(nth(3), T0, T0 + TTL)], vec![]);
    assert_eq!(shard.merge(merging, T0 + TTL + 5), merged(1, 0, 0));
    assert_eq!(digest(&shard), recomputed(&shard));
    shard.unregister(&batch([nth(1), nth(3)]), T0 + TTL + 10);
    assert!(digest(&shard).is_empty());
}

#[test]
fn the_digest_stays_exact_through_random_changes() {
    let mut shard = shard();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for step in 0..2_000 {
        let now = T0 + step * 100;
        let n = next(10) as usize;
        let instance = match next(2) {
            0 => nth(n),
            _ => changed(nth(n)),
        };
        match next(5) {
            0 | 1 => drop(shard.register(&one(instance), now)),
            2 => drop(shard.unregister(&one(instance), now)),
            3 => drop(shard.evict(now)),
            _ => {
                let held = copy(instance, now - next(1_000), now - next(1_000));
                let removal = Removal::unregistered(now - next(1_000));
                let removed = nth(next(10) as usize).key();
                shard.merge(peer(vec![held], vec![(removed, removal)]), now);
            }
        }
        assert_eq!(digest(&shard), recomputed(&shard), "step {step}");
    }
}

#[test]
fn a_pull_out_leaves_the_digest_as_it_is() {
    let mut shard = shard();
    shard.register(&batch([i1(), nth(1)]), T0);
    let before = digest(&shard);
    shard.apply_management(pulled_out(&[&nth(1)]), T0 + 1);
    assert_eq!(fragments(&mut shard, SERVICE), sorted_json(&[i1()]));
    assert_eq!(
        digest(&shard),
        before,
        "the digest covers the registry, not discovery"
    );
}

#[test]
fn nodes_with_the_same_instances_have_the_same_digest() {
    let (mut a, mut b) = (shard(), shard());
    a.register(&batch([i1(), nth(1)]), T0);
    b.register(&batch([nth(1)]), T0 + 5);
    b.register(&batch([i1()]), T0 + 6);
    assert_eq!(digest(&a), digest(&b));
    b.register(&one(changed(i1())), T0 + 7);
    assert_ne!(digest(&a), digest(&b));
}

// ---- the merge rule ----

#[test]
fn rule_1_a_copy_we_lack_is_added_with_the_peers_times_and_pushed() {
    let mut shard = shard();
    let result = shard.merge(peer(vec![copy(i1(), T0, T0 + 3_000)], vec![]), T0 + 4_000);
    assert_eq!(result, merged(1, 0, 0));
    assert_eq!(fragments(&mut shard, SERVICE), sorted_json(&[i1()]));
    assert_eq!(lease_times(&shard), (T0, T0 + 3_000));
    assert_eq!(kinds_of(&shard.take_unpushed()), [("new", "10.2.3.4:8080")]);
    // Its lease runs out when the peer's would.
    assert_eq!(shard.evict(T0 + 3_000 + TTL), 0);
    assert_eq!(shard.evict(T0 + 3_000 + TTL + 1), 1);
}

#[test]
fn rule_1_times_from_a_peer_ahead_of_us_are_taken_as_now() {
    let mut shard = shard();
    shard.merge(peer(vec![copy(i1(), T0 + 50, T0 + 90)], vec![]), T0 + 10);
    assert_eq!(lease_times(&shard), (T0 + 10, T0 + 10));
}

#[test]
fn rule_1_an_unregister_here_at_or_after_the_copys_registration_keeps_it_out() {
    let mut shard = shard();
    shard.register(&one(i1()), T0);
    shard.unregister(&one(i1()), T0 + 100);
    shard.take_unpushed();
    for registered in [T0, T0 + 100] {
        let stale = peer(vec![copy(i1(), registered, T0 + 150)], vec![]);
        assert_eq!(shard.merge(stale, T0 + 200), Merged::default());
    }
    assert!(shard.service(SERVICE).is_none());
    assert!(shard.take_unpushed().is_empty());
    // A registration after the unregister is a new life: it comes in, and the removal goes.
    let newer = peer(vec![copy(i1(), T0 + 101, T0 + 150)], vec![]);
    assert_eq!(shard.merge(newer, T0 + 200), merged(1, 0, 0));
    assert!(state_of(&shard).removals.is_empty());
}

#[test]
fn rule_1_an_expiry_here_keeps_out_only_copies_no_one_renewed_since() {
    let mut shard = shard();
    shard.register(&one(i1()), T0);
    shard.evict(T0 + TTL + 1);
    let now = T0 + TTL + 10;
    let stale = peer(vec![copy(i1(), T0, T0)], vec![]);
    assert_eq!(shard.merge(stale, now), Merged::default());
    // The peer heard a heartbeat this node missed: the instance is alive.
    let alive = peer(vec![copy(i1(), T0, T0 + 5_000)], vec![]);
    assert_eq!(shard.merge(alive, now), merged(1, 0, 0));
}

#[test]
fn rule_1_a_copy_whose_lease_ran_out_is_not_taken() {
    let mut shard = shard();
    let expired = peer(vec![copy(i1(), T0, T0)], vec![]);
    assert_eq!(shard.merge(expired, T0 + TTL + 1), Merged::default());
    let mut legacy = nth(1);
    legacy.metadata = Some(vec![(LEGACY_METADATA_KEY.into(), Some("true".into()))]);
    let alive = peer(vec![copy(legacy, T0, T0)], vec![]);
    assert_eq!(shard.merge(alive, T0 + TTL + 1), merged(1, 0, 0));
}

#[test]
fn rule_2_the_later_registration_wins_either_way() {
    let mut shard = shard();
    shard.register(&one(i1()), T0 + 100);
    shard.take_unpushed();
    let older = peer(vec![copy(changed(i1()), T0 + 99, T0 + 200)], vec![]);
    assert_eq!(shard.merge(older, T0 + 300), Merged::default());
    assert_eq!(fragments(&mut shard, SERVICE), sorted_json(&[i1()]));
    let newer = peer(vec![copy(changed(i1()), T0 + 101, T0 + 200)], vec![]);
    assert_eq!(shard.merge(newer, T0 + 300), merged(0, 1, 0));
    assert_eq!(
        fragments(&mut shard, SERVICE),
        sorted_json(&[changed(i1())])
    );
    assert_eq!(lease_times(&shard), (T0 + 101, T0 + 200));
    assert_eq!(kinds_of(&shard.take_unpushed()), [("new", "10.2.3.4:8080")]);
    // A heartbeat here after the peer's last renewal keeps counting.
    shard.heartbeat(&one(changed(i1())), T0 + 400);
    let newest = peer(vec![copy(i1(), T0 + 102, T0 + 300)], vec![]);
    assert_eq!(shard.merge(newest, T0 + 500), merged(0, 1, 0));
    assert_eq!(lease_times(&shard), (T0 + 102, T0 + 400));
}

#[test]
fn rule_2_a_tie_goes_to_the_larger_json_on_both_sides() {
    let (mut a, mut b) = (shard(), shard());
    a.register(&one(i1()), T0);
    b.register(&one(changed(i1())), T0);
    let (from_a, from_b) = (state_of(&a), state_of(&b));
    a.merge(from_b, T0 + 1);
    b.merge(from_a, T0 + 1);
    assert_eq!(fragments(&mut a, SERVICE), fragments(&mut b, SERVICE));
    assert_eq!(digest(&a), digest(&b));
}

#[test]
fn rule_2_the_same_data_changes_nothing() {
    let mut shard = shard();
    shard.register(&one(i1()), T0);
    let version = shard.version();
    let same = peer(vec![copy(i1(), T0 + 50, T0 + 60)], vec![]);
    assert_eq!(shard.merge(same, T0 + 70), Merged::default());
    assert_eq!(shard.version(), version);
    assert_eq!(lease_times(&shard), (T0, T0));
}

#[test]
fn rule_3_a_later_removal_at_the_peer_removes_ours_and_is_remembered() {
    let mut shard = shard();
    shard.register(&batch([i1(), nth(1)]), T0);
    shard.take_unpushed();
    let gone = peer(vec![], vec![(i1().key(), Removal::unregistered(T0 + 10))]);
    assert_eq!(shard.merge(gone, T0 + 20), merged(0, 0, 1));
    assert_eq!(fragments(&mut shard, SERVICE), sorted_json(&[nth(1)]));
    assert_eq!(
        kinds_of(&shard.take_unpushed()),
        [("delete", "10.2.3.4:8080")]
    );
    assert_eq!(
        state_of(&shard).removals,
        [(i1().key(), Removal::unregistered(T0 + 10))],
        "remembered at the peer's time, not the merge's"
    );
}

#[test]
fn rule_3_an_earlier_removal_at_the_peer_leaves_ours_and_is_not_remembered() {
    let mut shard = shard();
    shard.register(&one(i1()), T0 + 10);
    let old = peer(vec![], vec![(i1().key(), Removal::unregistered(T0 + 9))]);
    assert_eq!(shard.merge(old, T0 + 20), Merged::default());
    // An expiry at the peer of a lease we renewed since: alive here.
    shard.heartbeat(&one(i1()), T0 + 5_000);
    let lapsed = peer(vec![], vec![(i1().key(), Removal::expired(T0 + 4_000))]);
    assert_eq!(shard.merge(lapsed, T0 + 5_001), Merged::default());
    assert_eq!(fragments(&mut shard, SERVICE), sorted_json(&[i1()]));
    assert!(state_of(&shard).removals.is_empty());
    // One that no one here renewed since the peer last did: gone.
    let lapsed = peer(vec![], vec![(i1().key(), Removal::expired(T0 + 5_000))]);
    assert_eq!(shard.merge(lapsed, T0 + 5_002), merged(0, 0, 1));
}

#[test]
fn rule_3_a_removal_learned_from_one_peer_keeps_a_third_nodes_stale_copy_out() {
    let mut shard = shard();
    let gone = peer(vec![], vec![(i1().key(), Removal::unregistered(T0 + 10))]);
    assert_eq!(shard.merge(gone, T0 + 20), Merged::default());
    let stale = peer(vec![copy(i1(), T0, T0 + 5)], vec![]);
    assert_eq!(shard.merge(stale, T0 + 30), Merged::default());
    assert!(shard.service(SERVICE).is_none());
}

#[test]
fn rule_4_absence_at_the_peer_removes_nothing() {
    let mut shard = shard();
    shard.register(&batch([i1(), nth(1)]), T0);
    assert_eq!(shard.merge(peer(vec![], vec![]), T0 + 1), Merged::default());
    let partial = peer(vec![copy(i1(), T0, T0)], vec![]);
    assert_eq!(shard.merge(partial, T0 + 1), Merged::default());
    assert_eq!(shard.stats().instances, 2);
}

#[test]
fn a_peers_instance_is_checked_as_a_replicated_register() {
    let mut shard = new_shard(config(None, false));
    let mut other_region = i1();
    other_region.region_id = Some("FRA".into());
    let mut no_url = nth(1);
    no_url.url = None;
    let mut other_zone = nth(2);
    other_zone.zone_id = Some("ELSEWHERE".into());
    let sent = vec![
        copy(other_region, T0, T0),
        copy(no_url, T0, T0),
        copy(other_zone.clone(), T0, T0),
    ];
    assert_eq!(shard.merge(peer(sent, vec![]), T0), merged(1, 0, 0));
    assert_eq!(fragments(&mut shard, SERVICE), sorted_json(&[other_zone]));
}

#[test]
fn two_diverged_nodes_converge_by_merging_each_others_state() {
    let (mut a, mut b) = (shard(), shard());
    // Both had i1 and nth(1); then, unheard by the other: A unregistered nth(1) and registered
    // nth(2); B re-registered i1 with other data and registered nth(3).
    for node in [&mut a, &mut b] {
        node.register(&batch([i1(), nth(1)]), T0);
    }
    a.unregister(&one(nth(1)), T0 + 10);
    a.register(&one(nth(2)), T0 + 11);
    b.register(&batch([changed(i1()), nth(3)]), T0 + 12);
    let (from_a, from_b) = (state_of(&a), state_of(&b));
    assert_eq!(a.merge(from_b, T0 + 20), merged(1, 1, 0));
    assert_eq!(b.merge(from_a, T0 + 20), merged(1, 0, 1));
    assert_eq!(digest(&a), digest(&b));
    assert_eq!(
        fragments(&mut a, SERVICE),
        sorted_json(&[changed(i1()), nth(2), nth(3)])
    );
}

#[test]
fn states_name_every_service_asked_for_with_lease_times_and_removals() {
    let mut shard = shard();
    shard.register(&batch([i1(), nth(1)]), T0);
    shard.heartbeat(&one(i1()), T0 + 7);
    shard.unregister(&one(nth(1)), T0 + 8);
    let states = shard.service_states(&[SERVICE.to_uppercase(), "none".into()]);
    assert_eq!(states.len(), 2);
    let (key, state) = &states[0];
    assert_eq!(key, SERVICE);
    assert_eq!(
        state.instances,
        [Held {
            instance: Arc::from(i1().to_json()),
            registration_ms: T0,
            renewal_ms: T0 + 7
        }]
    );
    assert_eq!(
        state.removals,
        [(nth(1).key(), Removal::unregistered(T0 + 8))]
    );
    assert_eq!(states[1].0, "none");
    assert!(states[1].1.instances.is_empty() && states[1].1.removals.is_empty());
}

// ---- a Java peer ----

#[test]
fn a_java_peers_instances_are_only_added_when_missing_and_not_removed_here() {
    let mut shard = shard();
    shard.register(&one(i1()), T0);
    shard.register(&one(nth(1)), T0);
    shard.unregister(&one(nth(1)), T0 + 1);
    let sent = vec![changed(i1()), nth(1), nth(2)];
    assert_eq!(shard.add_missing(sent, T0 + 10), merged(1, 0, 0));
    assert_eq!(fragments(&mut shard, SERVICE), sorted_json(&[i1(), nth(2)]));
    let leases = shard.leases(&[], false);
    let added = leases
        .iter()
        .find(|l| l.instance.ends_with("10.2.3.2:8080"))
        .unwrap();
    assert_eq!((added.creation_ms, added.renewal_ms), (T0 + 10, T0 + 10));
}
