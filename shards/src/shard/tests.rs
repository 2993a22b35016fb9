//! The registry rules of one shard, driven through its public operations.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::change::CHANGE_OVERHEAD_BYTES;
use crate::instance::tests::i1;
use crate::lease::LEGACY_METADATA_KEY;
use crate::management::ManagementView;

mod anti_entropy;

const T0: u64 = 1_700_000_000_000;
const TTL: u64 = 20_000;
const LEGACY_TTL: u64 = 90_000;
const SERVICE: &str = "framework.soa.testservice.v2.testservice";
/// How long a removal is remembered.
const REMOVAL_MEMORY: u64 = 600_000;

fn config(self_preservation: Option<SafetyConfig>, allow_other_zone: bool) -> ShardConfig {
    ShardConfig {
        rules: NodeRules {
            region_id: "SHA".into(),
            zone_id: "SHAJQ".into(),
            allow_registry_from_other_zone: allow_other_zone,
        },
        lease_ttl_ms: TTL,
        legacy_lease_ttl_ms: LEGACY_TTL,
        self_preservation,
        eviction_batch: 1000,
        delta_retention: Retention::Count(10_000),
        delta_retention_bytes: usize::MAX,
        limits: InstanceLimits::default(),
        removal_memory: RemovalMemory {
            memory_ms: REMOVAL_MEMORY,
            max_entries: 1_000,
        },
    }
}

/// A shard with a clock of its own, starting at 0.
fn new_shard(config: ShardConfig) -> Shard {
    Shard::new(config, Arc::new(VersionClock::starting_at(0)))
}

/// The deployment of docs/compatibility.md's reference exchanges (region SHA, zone SHAJQ, other
/// zones allowed), with self-preservation off.
fn shard() -> Shard {
    new_shard(config(None, true))
}

/// I1 with another instance id (and ip) in the same service.
fn nth(n: usize) -> Instance {
    let mut instance = i1();
    instance.instance_id = Some(format!("10.2.3.{n}:8080"));
    instance.ip = Some(format!("10.2.3.{n}"));
    instance
}

fn batch(instances: impl IntoIterator<Item = Instance>) -> Vec<(u32, Instance)> {
    (0..).zip(instances).collect()
}

fn one(instance: Instance) -> Vec<(u32, Instance)> {
    batch([instance])
}

fn json(instance: &Instance) -> String {
    String::from_utf8(instance.to_json()).unwrap()
}

/// The instance fragments of a service's discovery bytes, sorted (their order carries no meaning).
fn fragments(shard: &mut Shard, service_id: &str) -> Vec<String> {
    let Some(snapshot) = shard.service(service_id) else {
        return Vec::new();
    };
    let array = std::str::from_utf8(&snapshot.instances_json).unwrap();
    let inner = array.strip_prefix('[').unwrap().strip_suffix(']').unwrap();
    let mut parts: Vec<String> = inner
        .split(",{\"groupId\":")
        .enumerate()
        .map(|(i, part)| match i {
            0 => part.to_string(),
            _ => format!("{{\"groupId\":{part}"),
        })
        .collect();
    parts.sort();
    parts
}

fn sorted_json(instances: &[Instance]) -> Vec<String> {
    let mut all: Vec<String> = instances.iter().map(json).collect();
    all.sort();
    all
}

/// The bytes of an instance's key, as a kept change counts them.
fn key_bytes(instance: &Instance) -> usize {
    let key = instance.key();
    key.region_id.len() + key.service_id.len() + key.instance_id.len()
}

fn failure(failed: &[FailedInstance]) -> (u32, ErrorCode, &str) {
    assert_eq!(failed.len(), 1, "{failed:?}");
    (
        failed[0].index,
        failed[0].error_code,
        &failed[0].error_message,
    )
}

// ---- reference exchanges (docs/compatibility.md) and node rules ----

#[test]
fn register_makes_the_instance_discoverable() {
    let mut shard = shard();
    assert!(shard.register(&one(i1()), T0).is_empty());
    let snapshot = shard.service(SERVICE).unwrap();
    assert_eq!(&*snapshot.service_id, SERVICE);
    assert_eq!(
        std::str::from_utf8(&snapshot.instances_json).unwrap(),
        format!("[{}]", json(&i1()))
    );
    assert_eq!(shard.version(), 1);
    assert_eq!(snapshot.version, 1);
}

#[test]
fn vector_3_heartbeat_for_unknown_instance() {
    let failed = shard().heartbeat(&one(i1()), T0);
    assert_eq!(
        failure(&failed),
        (
            0,
            ErrorCode::DataNotFound,
            "sha/shajq/framework.soa.testservice.v2.testservice/10.2.3.4:8080: Instance is not exising! Need re-register."
        )
    );
    assert_eq!(failed[0].instance, i1());
}

#[test]
fn vector_4_register_from_wrong_region() {
    let mut shard = shard();
    let mut fra = i1();
    fra.region_id = Some("FRA".into());
    let failed = shard.register(&one(fra.clone()), T0);
    assert_eq!(
        failure(&failed),
        (
            0,
            ErrorCode::NoPermission,
            "fra/shajq/framework.soa.testservice.v2.testservice/10.2.3.4:8080: regionId is not the same as the registry node. regionId: FRA, registry node.regionId: SHA"
        )
    );
    assert_eq!(failed[0].instance, fra);
    assert!(shard.service(SERVICE).is_none());
    assert_eq!(shard.version(), 0);
}

#[test]
fn vector_5_register_without_url() {
    let mut shard = shard();
    let mut no_url = i1();
    no_url.url = None;
    let failed = shard.register(&one(no_url), T0);
    assert_eq!(
        failure(&failed),
        (
            0,
            ErrorCode::InternalServiceError,
            "sha/shajq/framework.soa.testservice.v2.testservice/10.2.3.4:8080: Exception: argument instance.url is null or whitespace"
        )
    );
    assert_eq!(shard.stats().instances, 0);
}

#[test]
fn zone_checked_when_other_zones_not_allowed() {
    let mut other_zone = i1();
    other_zone.zone_id = Some("SHAOY".into());
    let mut strict = new_shard(config(None, false));
    let failed = strict.register(&one(other_zone.clone()), T0);
    assert_eq!(
        failure(&failed),
        (
            0,
            ErrorCode::NoPermission,
            "sha/shaoy/framework.soa.testservice.v2.testservice/10.2.3.4:8080: zoneId is not the same as the registry node. zoneId: SHAOY, registry node.zoneId: SHAJQ"
        )
    );
    assert!(shard().register(&one(other_zone), T0).is_empty());
}

#[test]
fn failures_keep_their_request_index_and_the_rest_succeeds() {
    let mut shard = shard();
    let mut bad = nth(2);
    bad.service_id = Some(" ".into());
    let requests = vec![(5, nth(1)), (9, bad), (11, nth(3))];
    let failed = shard.register(&requests, T0);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].index, 9);
    assert!(failed[0]
        .error_message
        .ends_with(": Exception: argument instance.serviceId is null or whitespace"));
    assert_eq!(
        fragments(&mut shard, SERVICE),
        sorted_json(&[nth(1), nth(3)])
    );
}

#[test]
fn region_rule_applies_to_heartbeat_and_unregister() {
    let mut shard = shard();
    shard.register(&one(i1()), T0);
    let mut fra = i1();
    fra.region_id = Some("fra".into());
    for failed in [
        shard.heartbeat(&one(fra.clone()), T0),
        shard.unregister(&one(fra.clone()), T0),
    ] {
        assert_eq!(failure(&failed).1, ErrorCode::NoPermission);
    }
    assert_eq!(shard.stats().instances, 1);
}

#[test]
fn arguments_are_checked_on_heartbeat_and_unregister_as_on_register() {
    let mut shard = shard();
    shard.register(&one(i1()), T0);
    for (field, clear) in [
        (
            "url",
            (|i: &mut Instance| i.url = None) as fn(&mut Instance),
        ),
        ("instanceId", |i| i.instance_id = Some(" ".into())),
    ] {
        let mut bad = i1();
        clear(&mut bad);
        for failed in [
            shard.heartbeat(&one(bad.clone()), T0 + 1),
            shard.unregister(&one(bad), T0 + 1),
        ] {
            let (_, code, message) = failure(&failed);
            assert_eq!(code, ErrorCode::InternalServiceError);
            let reason = format!(": Exception: argument instance.{field} is null or whitespace");
            assert!(message.ends_with(&reason), "{message}");
        }
    }
    assert_eq!(shard.stats().instances, 1, "nothing was unregistered");
}

#[test]
fn a_heartbeat_finds_only_a_lease_of_its_own_kind() {
    let mut legacy = i1();
    legacy
        .metadata
        .get_or_insert_with(Vec::new)
        .push((LEGACY_METADATA_KEY.into(), Some("1".into())));
    let mut shard = shard();
    shard.register(&one(legacy.clone()), T0);
    let failed = shard.heartbeat(&one(i1()), T0 + 1);
    let (_, code, message) = failure(&failed);
    assert_eq!(code, ErrorCode::DataNotFound);
    assert!(message.ends_with(NO_LEASE), "{message}");
    assert!(shard.heartbeat(&one(legacy.clone()), T0 + 1).is_empty());
    // Unregistering through the other kind's lease set finds nothing to remove.
    assert!(shard.unregister(&one(i1()), T0 + 2).is_empty());
    assert_eq!(shard.stats().instances, 1);
    assert!(shard.unregister(&one(legacy), T0 + 3).is_empty());
    assert_eq!(shard.stats().instances, 0);

    shard.register(&one(i1()), T0 + 4);
    let mut marked = i1();
    marked.metadata = Some(vec![(LEGACY_METADATA_KEY.into(), Some("1".into()))]);
    let failed = shard.heartbeat(&one(marked), T0 + 5);
    let (_, code, _) = failure(&failed);
    assert_eq!(code, ErrorCode::DataNotFound);
}

// ---- size limits ----

const I1_NAME: &str = "sha/shajq/framework.soa.testservice.v2.testservice/10.2.3.4:8080";

#[test]
fn an_instance_over_a_size_limit_fails_alone_as_a_bad_request() {
    let mut shard = shard();
    let mut long_id = nth(2);
    long_id.instance_id = Some("i".repeat(257));
    let mut big_value = nth(3);
    big_value.metadata = Some(vec![("blob".into(), Some("v".repeat(8193)))]);
    let mut at_limits = nth(4);
    at_limits.instance_id = Some("i".repeat(256));
    at_limits.metadata = Some(vec![("blob".into(), Some("v".repeat(8192)))]);
    let requests = vec![
        (0, nth(1)),
        (1, long_id.clone()),
        (2, big_value.clone()),
        (3, at_limits.clone()),
    ];
    let failed = shard.register(&requests, T0);
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert_eq!(
        (failed[0].index, failed[0].error_code),
        (1, ErrorCode::BadRequest)
    );
    assert_eq!(
        failed[0].error_message,
        format!(
            "sha/shajq/{SERVICE}/{}: instance.instanceId is longer than 256 bytes",
            "i".repeat(257)
        )
    );
    assert_eq!(failed[0].instance, long_id);
    assert_eq!(
        (failed[1].index, failed[1].error_code),
        (2, ErrorCode::BadRequest)
    );
    assert_eq!(
        failed[1].error_message,
        format!(
            "sha/shajq/{SERVICE}/10.2.3.3:8080: instance.metadata.blob is longer than 8192 bytes"
        )
    );
    assert_eq!(
        fragments(&mut shard, SERVICE),
        sorted_json(&[nth(1), at_limits])
    );
    assert_eq!(shard.version(), 2, "a refused instance changes nothing");
}

#[test]
fn size_limits_come_before_the_region_check() {
    let mut far = i1();
    far.region_id = Some("F".repeat(300));
    let failed = shard().register(&one(far), T0);
    assert_eq!(failure(&failed).1, ErrorCode::BadRequest);
    assert!(failed[0]
        .error_message
        .ends_with(": instance.regionId is longer than 256 bytes"));
}

#[test]
fn the_limits_are_settings_of_the_shard() {
    let mut shard = new_shard(ShardConfig {
        limits: InstanceLimits {
            max_id_bytes: 16,
            max_metadata_bytes: 4,
        },
        ..config(None, true)
    });
    let failed = shard.register(&one(i1()), T0);
    assert_eq!(
        failure(&failed),
        (
            0,
            ErrorCode::BadRequest,
            &*format!("{I1_NAME}: instance.serviceId is longer than 16 bytes")
        )
    );
    let mut short = i1();
    short.service_id = Some("svc".into());
    short.metadata = Some(vec![("key".into(), Some("value".into()))]);
    let failed = shard.register(&one(short.clone()), T0);
    assert_eq!(
        failure(&failed).2,
        "sha/shajq/svc/10.2.3.4:8080: instance.metadata is longer than 4 bytes (keys and values together)"
    );
    short.metadata = Some(vec![("k".into(), Some("v".into()))]);
    assert!(shard.register(&one(short), T0).is_empty());
}

#[test]
fn heartbeat_and_unregister_check_the_ids_only() {
    let mut shard = shard();
    shard.register(&one(i1()), T0);
    // What a heartbeat or unregister does not read may be of any size.
    let mut loose = i1();
    loose.url = Some("u".repeat(10_000));
    loose.port = -1;
    loose.metadata = Some(vec![("blob".into(), Some("v".repeat(100_000)))]);
    assert!(shard.heartbeat(&one(loose.clone()), T0 + 1).is_empty());

    let mut long_zone = i1();
    long_zone.zone_id = Some("z".repeat(257));
    for failed in [
        shard.heartbeat(&one(long_zone.clone()), T0 + 2),
        shard.unregister(&one(long_zone.clone()), T0 + 2),
    ] {
        let (_, code, message) = failure(&failed);
        assert_eq!(code, ErrorCode::BadRequest);
        assert!(
            message.ends_with(": instance.zoneId is longer than 256 bytes"),
            "{message}"
        );
    }
    assert_eq!(shard.stats().instances, 1);
    assert!(shard.unregister(&one(loose), T0 + 3).is_empty());
    assert_eq!(shard.stats().instances, 0);
}

#[test]
fn a_port_outside_0_to_65535_is_refused_on_register() {
    let mut shard = shard();
    for port in [-1, 65_536, 99_999] {
        let mut bad = i1();
        bad.port = port;
        let failed = shard.register(&one(bad), T0);
        assert_eq!(
            failure(&failed),
            (
                0,
                ErrorCode::BadRequest,
                &*format!("{I1_NAME}: instance.port {port} is not a port (0 to 65535)")
            )
        );
    }
    let mut top = i1();
    top.port = 65_535;
    assert!(shard.register(&one(top), T0).is_empty());
}

// ---- register ----

#[test]
fn re_register_replaces_data_and_lease() {
    let mut shard = shard();
    shard.register(&batch([i1(), nth(7)]), T0);
    shard.heartbeat(&one(i1()), T0 + 5_000);
    let mut updated = i1();
    updated.port = 9090;
    updated.status = Some("down".into());
    assert!(shard.register(&one(updated.clone()), T0 + 8_000).is_empty());

    assert_eq!(shard.stats().instances, 2);
    assert_eq!(
        fragments(&mut shard, SERVICE),
        sorted_json(&[updated, nth(7)])
    );
    let leases = shard.leases(&[], false);
    let lease = leases
        .iter()
        .find(|l| l.instance.ends_with("/10.2.3.4:8080"))
        .unwrap();
    assert_eq!(
        (lease.creation_ms, lease.renewal_ms),
        (T0 + 8_000, T0 + 8_000)
    );
}

#[test]
fn re_registering_the_same_instance_is_a_new_lease_and_a_new_change_with_its_digest_unchanged() {
    let mut shard = shard();
    shard.register(&batch([i1(), nth(7)]), T0);
    let digest = shard.digest();
    let version = shard.changes_since(0).unwrap().last().unwrap().version;
    let registered = shard.changes_since(0).unwrap()[0].instance_json.clone();
    assert!(shard.register(&one(i1()), T0 + 8_000).is_empty());

    assert_eq!(shard.digest(), digest);
    let since = shard.changes_since(version).unwrap();
    assert_eq!(since.len(), 1);
    assert_eq!(since[0].kind, ChangeKind::New);
    assert_eq!(since[0].instance_json[..], *json(&i1()).as_bytes());
    assert!(
        Arc::ptr_eq(&registered, &since[0].instance_json),
        "the fragment is kept, not copied again"
    );
    assert_eq!(fragments(&mut shard, SERVICE), sorted_json(&[i1(), nth(7)]));
    let lease = |shard: &Shard| {
        let leases = shard.leases(&[], false);
        let lease = leases
            .iter()
            .find(|l| l.instance.ends_with("/10.2.3.4:8080"));
        lease.map(|l| (l.creation_ms, l.renewal_ms))
    };
    assert_eq!(lease(&shard), Some((T0 + 8_000, T0 + 8_000)));
    // The first lease's expiry is stale: the instance lives until the second one's.
    shard.evict(T0 + TTL + 1);
    assert_eq!(lease(&shard), Some((T0 + 8_000, T0 + 8_000)));
    shard.evict(T0 + 8_000 + TTL + 1);
    assert_eq!(lease(&shard), None);

    let mut updated = nth(7);
    updated.port = 9090;
    shard.register(&batch([nth(7)]), T0 + 30_000);
    let before = shard.digest();
    shard.register(&one(updated), T0 + 31_000);
    assert_ne!(shard.digest(), before, "changed data changes the digest");
}

#[test]
fn instance_keys_and_service_ids_ignore_case() {
    let mut shard = shard();
    shard.register(&one(i1()), T0);
    let mut shouting = i1();
    shouting.service_id = Some(SERVICE.to_uppercase());
    shouting.instance_id = Some("10.2.3.4:8080".to_uppercase());
    shouting.region_id = Some("sha".into());
    shouting.machine_name = Some("host2".into());
    assert!(shard.register(&one(shouting.clone()), T0 + 1).is_empty());

    assert_eq!(shard.stats().instances, 1);
    assert_eq!(shard.stats().services, 1);
    let snapshot = shard.service(&SERVICE.to_uppercase()).unwrap();
    assert_eq!(
        &*snapshot.service_id, SERVICE,
        "display id is the first one"
    );
    assert_eq!(
        fragments(&mut shard, "Framework.SOA.TestService.V2.TestService"),
        sorted_json(&[shouting])
    );
    assert!(shard.heartbeat(&one(i1()), T0 + 2).is_empty());
    assert!(shard.unregister(&one(nth(4)), T0 + 3).is_empty());
    assert!(shard.service(SERVICE).is_none());
}

// ---- heartbeat ----

#[test]
fn heartbeat_keeps_the_lease_alive() {
    let mut shard = shard();
    shard.register(&one(i1()), T0);
    assert!(shard.heartbeat(&one(i1()), T0 + 15_000).is_empty());
    assert_eq!(shard.evict(T0 + 25_000), 0);
    assert_eq!(shard.evict(T0 + 35_000), 0);
    assert!(shard.service(SERVICE).is_some());
    assert_eq!(shard.evict(T0 + 35_001), 1);
    assert!(shard.service(SERVICE).is_none());
}

#[test]
fn heartbeat_touches_neither_data_nor_discovery() {
    let mut shard = shard();
    shard.register(&one(i1()), T0);
    let before = shard.service(SERVICE).unwrap();
    let mut changed = i1();
    changed.port = 1;
    assert!(shard.heartbeat(&one(changed), T0 + 1_000).is_empty());
    let after = shard.service(SERVICE).unwrap();
    assert!(Arc::ptr_eq(&before.instances_json, &after.instances_json));
    assert_eq!(shard.version(), 1);
    assert_eq!(fragments(&mut shard, SERVICE), sorted_json(&[i1()]));
}

#[test]
fn heartbeat_on_expired_lease_fails() {
    let mut shard = shard();
    shard.register(&one(i1()), T0);
    assert!(shard.heartbeat(&one(i1()), T0 + TTL).is_empty());
    let failed = shard.heartbeat(&one(i1()), T0 + 2 * TTL + 1);
    assert_eq!(failure(&failed).1, ErrorCode::DataNotFound);
    assert!(failed[0]
        .error_message
        .ends_with(": Instance is not exising! Need re-register."));
    // Re-registering is how the client recovers.
    shard.register(&one(i1()), T0 + 2 * TTL + 2);
    assert!(shard.heartbeat(&one(i1()), T0 + 2 * TTL + 3).is_empty());
}

// ---- a peer's replicated writes ----

#[test]
fn replicated_writes_check_the_region_but_not_the_zone() {
    let mut strict = new_shard(config(None, false));
    let mut other_zone = i1();
    other_zone.zone_id = Some("SHAOY".into());
    assert!(strict
        .register_replicated(&one(other_zone.clone()), T0)
        .is_empty());
    assert!(strict
        .heartbeat_replicated(&one(other_zone.clone()), T0 + 1)
        .is_empty());
    assert_eq!(
        fragments(&mut strict, SERVICE),
        sorted_json(&[other_zone.clone()])
    );
    assert!(strict
        .unregister_replicated(&one(other_zone), T0 + 2)
        .is_empty());
    assert!(strict.service(SERVICE).is_none());

    let mut fra = i1();
    fra.region_id = Some("FRA".into());
    for failed in [
        strict.register_replicated(&one(fra.clone()), T0),
        strict.heartbeat_replicated(&one(fra.clone()), T0),
        strict.unregister_replicated(&one(fra.clone()), T0),
    ] {
        assert_eq!(failure(&failed).1, ErrorCode::NoPermission);
    }
    assert_eq!(strict.stats().instances, 0);
}

#[test]
fn replicated_writes_by_key_alone_renew_and_remove_what_they_name() {
    let mut shard = shard();
    shard.register(&one(i1()), T0);
    let key_only = Instance {
        region_id: i1().region_id,
        service_id: i1().service_id,
        instance_id: i1().instance_id,
        ..Instance::default()
    };
    assert!(shard
        .heartbeat_replicated(&one(key_only.clone()), T0 + TTL - 1)
        .is_empty());
    // Renewed: still there one TTL after the register.
    assert_eq!(shard.evict(T0 + TTL + 1), 0);
    assert!(shard
        .unregister_replicated(&one(key_only.clone()), T0 + TTL + 2)
        .is_empty());
    assert!(shard.service(SERVICE).is_none());
    // Without a lease there is nothing to register from: Java's argument check.
    let failed = shard.heartbeat_replicated(&one(key_only), T0 + TTL + 3);
    assert_eq!(failure(&failed).1, ErrorCode::InternalServiceError);
}

#[test]
fn a_replicated_heartbeat_without_a_live_lease_registers_the_instance() {
    let mut shard = shard();
    assert!(shard.heartbeat_replicated(&one(i1()), T0).is_empty());
    assert_eq!(fragments(&mut shard, SERVICE), sorted_json(&[i1()]));
    let changes = shard.take_unpushed();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].kind, ChangeKind::New);
    // A client's heartbeat now finds the lease the peer's made.
    assert!(shard.heartbeat(&one(i1()), T0 + 1).is_empty());

    // An expired lease is registered anew, with the data the peer sent.
    let mut moved = i1();
    moved.url = Some("http://10.2.3.4:9090/".into());
    let later = T0 + 2 * TTL;
    assert!(shard
        .heartbeat_replicated(&one(moved.clone()), later)
        .is_empty());
    assert_eq!(fragments(&mut shard, SERVICE), sorted_json(&[moved]));
    let lease = &shard.leases(&[], false)[0];
    assert_eq!((lease.creation_ms, lease.renewal_ms), (later, later));
}

#[test]
fn a_replicated_heartbeat_of_a_live_lease_only_renews_it() {
    let mut shard = shard();
    shard.register(&one(i1()), T0);
    let version = shard.version();
    let mut changed = i1();
    changed.url = Some("http://elsewhere/".into());
    assert!(shard
        .heartbeat_replicated(&one(changed), T0 + TTL)
        .is_empty());
    assert_eq!(shard.version(), version, "nothing discovery shows changed");
    assert_eq!(fragments(&mut shard, SERVICE), sorted_json(&[i1()]));
    let lease = &shard.leases(&[], false)[0];
    assert_eq!((lease.creation_ms, lease.renewal_ms), (T0, T0 + TTL));
}

#[test]
fn a_replicated_heartbeat_that_would_register_checks_the_instance_as_a_register_does() {
    let mut shard = shard();
    let mut no_url = i1();
    no_url.url = None;
    let failed = shard.heartbeat_replicated(&one(no_url), T0);
    assert_eq!(failure(&failed).1, ErrorCode::InternalServiceError);
    assert_eq!(shard.stats().instances, 0);
}

// ---- unregister ----

#[test]
fn unregister_removes_from_discovery_at_once() {
    let mut shard = shard();
    shard.register(&batch([i1(), nth(1)]), T0);
    assert!(shard.unregister(&one(i1()), T0 + 1).is_empty());
    assert_eq!(shard.version(), 3);
    assert_eq!(fragments(&mut shard, SERVICE), sorted_json(&[nth(1)]));
    assert_eq!(
        failure(&shard.heartbeat(&one(i1()), T0 + 2)).1,
        ErrorCode::DataNotFound
    );
    assert_eq!(shard.stats().leases_expired_total, 0);
}

#[test]
fn unregister_of_unknown_instance_is_a_silent_no_op() {
    let mut shard = shard();
    shard.register(&one(nth(1)), T0);
    assert!(shard.unregister(&one(i1()), T0 + 1).is_empty());
    assert_eq!(shard.version(), 1);
    assert_eq!(shard.stats().instances, 1);
}

#[test]
fn empty_service_is_dropped() {
    let mut shard = shard();
    let mut other = i1();
    other.service_id = Some("other.service".into());
    shard.register(&batch([i1(), nth(1), other]), T0);
    assert_eq!(shard.stats().services, 2);
    shard.unregister(&batch([i1(), nth(1)]), T0 + 1);
    assert!(shard.service(SERVICE).is_none());
    let services = shard.services();
    assert_eq!(services.len(), 1);
    assert_eq!(&*services[0].service_id, "other.service");
    assert_eq!(shard.stats().services, 1);
}

#[test]
fn removal_keeps_the_other_members_positions_right() {
    // Swap-removal moves the last member; later updates of the moved one must hit it.
    let mut shard = shard();
    shard.register(&batch((1..=4).map(nth)), T0);
    shard.unregister(&one(nth(1)), T0 + 1);
    let mut moved = nth(4);
    moved.port = 4444;
    shard.register(&one(moved.clone()), T0 + 2);
    shard.unregister(&one(nth(2)), T0 + 3);
    assert_eq!(
        fragments(&mut shard, SERVICE),
        sorted_json(&[nth(3), moved.clone()])
    );
    shard.unregister(&one(moved), T0 + 4);
    assert_eq!(fragments(&mut shard, SERVICE), sorted_json(&[nth(3)]));
}

// ---- expiry and eviction ----

#[test]
fn lease_expires_strictly_after_ttl() {
    let mut shard = shard();
    shard.register(&one(i1()), T0);
    assert_eq!(shard.evict(T0 + TTL), 0);
    assert!(shard.service(SERVICE).is_some());
    assert_eq!(shard.evict(T0 + TTL + 1), 1);
    assert!(shard.service(SERVICE).is_none());
    assert_eq!(shard.version(), 2);
    let stats = shard.stats();
    assert_eq!(
        (stats.instances, stats.services, stats.leases_expired_total),
        (0, 0, 1)
    );
}

#[test]
fn eviction_removes_at_most_a_batch_per_call() {
    let mut shard = new_shard(ShardConfig {
        eviction_batch: 3,
        ..config(None, true)
    });
    shard.register(&batch((1..=10).map(nth)), T0);
    let after = T0 + TTL + 1;
    let removed: Vec<usize> = (0..5).map(|_| shard.evict(after)).collect();
    assert_eq!(removed, [3, 3, 3, 1, 0]);
    assert_eq!(shard.stats().leases_expired_total, 10);
}

#[test]
fn eviction_work_on_stale_index_entries_is_bounded() {
    let mut shard = new_shard(ShardConfig {
        eviction_batch: 2,
        ..config(None, true)
    });
    // 100 registrations of one key: 99 index entries go stale, all due at the same time.
    for _ in 0..100 {
        shard.register(&one(i1()), T0);
    }
    let after = T0 + TTL + 1;
    // Each call looks at no more than 2 × 8 entries: 6 calls skip 96 stale ones.
    for _ in 0..6 {
        assert_eq!(shard.evict(after), 0);
    }
    assert_eq!(shard.evict(after), 1);
    assert_eq!(shard.stats().instances, 0);
}

#[test]
fn renewed_leases_are_rescheduled_not_removed() {
    let mut shard = shard();
    shard.register(&batch([i1(), nth(1)]), T0);
    for second in 1..=10 {
        shard.heartbeat(&one(i1()), T0 + second * 10_000);
        shard.evict(T0 + second * 10_000);
    }
    assert_eq!(shard.stats().leases_expired_total, 1);
    assert_eq!(fragments(&mut shard, SERVICE), sorted_json(&[i1()]));
}

#[test]
fn legacy_instances_use_the_legacy_ttl_and_lease_list() {
    let mut legacy = nth(1);
    legacy
        .metadata
        .get_or_insert_with(Vec::new)
        .push((LEGACY_METADATA_KEY.into(), Some("true".into())));
    let mut shard = shard();
    shard.register(&batch([i1(), legacy.clone()]), T0);

    let normal = shard.leases(&[], false);
    let legacy_leases = shard.leases(&[], true);
    assert_eq!(normal.len(), 1);
    assert_eq!(normal[0].ttl_ms, TTL);
    assert_eq!(
        legacy_leases,
        [LeaseStatus {
            service_id: SERVICE.into(),
            instance: legacy.display_name(),
            creation_ms: T0,
            renewal_ms: T0,
            ttl_ms: LEGACY_TTL,
        }]
    );

    assert_eq!(shard.evict(T0 + TTL + 1), 1);
    assert_eq!(fragments(&mut shard, SERVICE), sorted_json(&[legacy]));
    assert_eq!(shard.evict(T0 + LEGACY_TTL), 0);
    assert_eq!(shard.evict(T0 + LEGACY_TTL + 1), 1);
}

// ---- self-preservation ----

/// Registers 100 instances and renews all of them once, then renews only `alive` of them
/// once the first renewals have left the 12 s window; returns the shard and that moment.
fn preservation_scenario(self_preservation: Option<SafetyConfig>, alive: usize) -> (Shard, u64) {
    let mut shard = new_shard(config(self_preservation, true));
    shard.register(&batch((0..100).map(nth)), T0);
    assert!(shard
        .heartbeat(&batch((0..100).map(nth)), T0 + 1_000)
        .is_empty());
    shard.check_safety(T0 + 1_000);
    let later = T0 + 13_000;
    assert!(shard
        .heartbeat(&batch((0..alive).map(nth)), later)
        .is_empty());
    shard.check_safety(later);
    (shard, later)
}

#[test]
fn self_preservation_suspends_expiry_when_renewals_drop() {
    let (mut shard, later) = preservation_scenario(Some(SafetyConfig::default()), 84);
    let stats = shard.stats();
    assert_eq!((stats.renewals_in_window, stats.max_renewals), (84, 100));
    assert_eq!(stats.max_renewals_updated_ms, T0 + 1_000);
    assert!(!stats.safe);

    // The 16 unrenewed leases expire at T0 + 21 001 but stay in discovery...
    let expired_at = T0 + 1_000 + TTL + 1;
    assert_eq!(shard.evict(expired_at), 0);
    assert_eq!(fragments(&mut shard, SERVICE).len(), 100);
    // ...while their heartbeats still fail.
    assert_eq!(
        failure(&shard.heartbeat(&one(nth(99)), expired_at)).1,
        ErrorCode::DataNotFound
    );

    // Renewals recover to 85 % of the max: expiry resumes.
    assert!(shard.heartbeat(&one(nth(0)), later + 500).is_empty());
    shard.check_safety(later + 500);
    assert!(shard.stats().safe);
    assert_eq!(shard.evict(expired_at), 16);
    assert_eq!(shard.stats().leases_expired_total, 16);
    assert_eq!(fragments(&mut shard, SERVICE).len(), 84);
}

#[test]
fn unregister_works_while_preserving() {
    let (mut shard, later) = preservation_scenario(Some(SafetyConfig::default()), 50);
    assert!(!shard.stats().safe);
    assert!(shard.unregister(&one(nth(0)), later).is_empty());
    assert_eq!(fragments(&mut shard, SERVICE).len(), 99);
}

#[test]
fn without_self_preservation_expired_leases_always_go() {
    let (mut shard, _) = preservation_scenario(None, 50);
    let stats = shard.stats();
    assert!(stats.safe);
    assert_eq!((stats.renewals_in_window, stats.max_renewals), (0, 0));
    assert_eq!(shard.evict(T0 + 1_000 + TTL + 1), 50);
    assert_eq!(fragments(&mut shard, SERVICE).len(), 50);
}

// ---- discovery bytes and versions ----

#[test]
fn snapshot_rebuilt_at_most_once_per_version() {
    let mut shard = shard();
    shard.register(&batch((0..1000).map(nth)), T0);
    let first = shard.service(SERVICE).unwrap();
    let again = shard.service(&SERVICE.to_uppercase()).unwrap();
    let listed = shard.services();
    assert!(Arc::ptr_eq(&first.instances_json, &again.instances_json));
    assert!(Arc::ptr_eq(
        &first.instances_json,
        &listed[0].instances_json
    ));
    assert!(Arc::ptr_eq(&first.service_id, &listed[0].service_id));
    assert_eq!(first.version, 1000);

    shard.register(&one(nth(1000)), T0 + 1);
    let next = shard.service(SERVICE).unwrap();
    assert!(!Arc::ptr_eq(&first.instances_json, &next.instances_json));
    assert_eq!(next.version, 1001);
    assert_eq!(fragments(&mut shard, SERVICE).len(), 1001);
}

#[test]
fn versions_move_only_on_discovery_changes() {
    let mut other = i1();
    other.service_id = Some("other.service".into());
    let mut shard = shard();
    shard.register(&one(i1()), T0);
    shard.register(&one(other.clone()), T0);
    assert_eq!(shard.version(), 2);
    let mine = shard.service(SERVICE).unwrap().version;
    assert_eq!(mine, 1);

    shard.heartbeat(&one(i1()), T0 + 1);
    shard.register(&one(Instance::default()), T0 + 1);
    shard.unregister(&one(nth(9)), T0 + 1);
    shard.evict(T0 + 1);
    assert_eq!(shard.version(), 2);

    shard.unregister(&one(other), T0 + 2);
    assert_eq!(shard.version(), 3);
    assert_eq!(
        shard.service(SERVICE).unwrap().version,
        mine,
        "other services keep theirs"
    );
    shard.evict(T0 + 2 * TTL);
    assert_eq!(shard.version(), 4);
}

#[test]
fn services_lists_every_service_with_instances() {
    let mut shard = shard();
    let ids = ["a.service", "B.Service", "c.service"];
    shard.register(
        &batch(ids.iter().map(|id| {
            let mut instance = i1();
            instance.service_id = Some(id.to_string());
            instance
        })),
        T0,
    );
    let mut listed: Vec<String> = shard
        .services()
        .iter()
        .map(|s| s.service_id.to_string())
        .collect();
    listed.sort();
    assert_eq!(listed, ["B.Service", "a.service", "c.service"]);
}

#[test]
fn re_registering_a_large_instance_keeps_deltas_within_the_byte_bound() {
    let mut big = i1();
    big.metadata = Some(
        (0..8)
            .map(|n| (format!("k{n}"), Some("v".repeat(8000))))
            .collect(),
    );
    let each = big.to_json().len() + key_bytes(&big) + CHANGE_OVERHEAD_BYTES;
    let mut shard = new_shard(ShardConfig {
        delta_retention_bytes: 10 * each,
        ..config(None, true)
    });
    for n in 0..1000 {
        assert!(shard.register(&one(big.clone()), T0 + n).is_empty());
    }
    let stats = shard.stats();
    assert_eq!(
        (stats.changes_retained, stats.changes_retained_bytes),
        (10, 10 * each)
    );
    assert_eq!(shard.changes_since(0), Err(ChangesGone));
    assert_eq!(shard.changes_since(989), Err(ChangesGone));
    let recent = shard.changes_since(990).unwrap();
    assert_eq!(recent.iter().map(|c| c.version).collect::<Vec<_>>(), [1000]);

    shard.unregister(&one(i1()), T0 + 1000);
    let stats = shard.stats();
    assert_eq!(stats.changes_retained, 10);
    assert!(stats.changes_retained_bytes <= 10 * each);
    let delete = shard.changes_since(1000).unwrap();
    assert_eq!(delete.len(), 1);
    assert_eq!(delete[0].kind, ChangeKind::Delete);
}

// ---- leases and stats ----

#[test]
fn leases_filtered_by_service_ignoring_case() {
    let mut other = i1();
    other.service_id = Some("Other.Service".into());
    let mut shard = shard();
    shard.register(&batch([i1(), nth(1), other.clone()]), T0);
    shard.heartbeat(&one(nth(1)), T0 + 500);

    let filter = ["other.service".to_string(), "OTHER.SERVICE".to_string()];
    let leases = shard.leases(&filter, false);
    assert_eq!(leases.len(), 1);
    assert_eq!(leases[0].service_id, "Other.Service");
    assert_eq!(leases[0].instance, other.display_name());

    let mine = shard.leases(&[SERVICE.to_uppercase()], false);
    let mut renewals: Vec<u64> = mine.iter().map(|l| l.renewal_ms).collect();
    renewals.sort();
    assert_eq!(renewals, [T0, T0 + 500]);
    assert_eq!(shard.leases(&[], false).len(), 3);
    assert!(shard.leases(&["none".to_string()], false).is_empty());
    assert!(shard.leases(&[], true).is_empty());
}

#[test]
fn stats_count_instances_services_and_renewals() {
    let mut shard = new_shard(config(Some(SafetyConfig::default()), true));
    let mut other = i1();
    other.service_id = Some("other.service".into());
    shard.register(&batch([i1(), nth(1), other.clone()]), T0);
    shard.heartbeat(&batch([i1(), nth(1), nth(2)]), T0 + 1_000);
    shard.check_safety(T0 + 1_000);
    assert_eq!(
        shard.stats(),
        ShardStats {
            instances: 3,
            services: 2,
            leases_expired_total: 0,
            renewals_in_window: 2,
            max_renewals: 2,
            max_renewals_updated_ms: T0 + 1_000,
            safe: true,
            changes_retained: 3,
            changes_retained_bytes: 3 * CHANGE_OVERHEAD_BYTES
                + [&i1(), &nth(1), &other]
                    .iter()
                    .map(|i| i.to_json().len() + key_bytes(i))
                    .sum::<usize>(),
        }
    );
}

// ---- against a model ----

#[test]
fn random_operations_match_a_model() {
    let mut shard = shard();
    let mut model: BTreeMap<usize, (Instance, u64)> = BTreeMap::new();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |bound: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % bound
    };
    let mut now = T0;
    for step in 0..5_000 {
        now += next(400);
        let n = next(40) as usize;
        let mut instance = nth(n);
        match next(4) {
            0 => {
                instance.port = step;
                shard.register(&one(instance.clone()), now);
                model.insert(n, (instance, now));
            }
            1 => {
                let alive = model
                    .get(&n)
                    .is_some_and(|(_, renewed)| now <= renewed + TTL);
                assert_eq!(shard.heartbeat(&one(instance), now).is_empty(), alive);
                if alive {
                    model.get_mut(&n).unwrap().1 = now;
                }
            }
            2 => {
                shard.unregister(&one(instance), now);
                model.remove(&n);
            }
            _ => {
                shard.evict(now);
                model.retain(|_, (_, renewed)| now <= *renewed + TTL);
            }
        }
        let expected: Vec<Instance> = model.values().map(|(i, _)| i.clone()).collect();
        assert_eq!(
            fragments(&mut shard, SERVICE),
            sorted_json(&expected),
            "step {step}"
        );
        assert_eq!(shard.stats().instances, model.len());
    }
}

// ---- push ----

#[test]
fn register_unregister_and_expiry_are_pushed_in_order() {
    let mut shard = shard();
    shard.register(&one(i1()), T0);
    shard.register(&one(i1()), T0 + 1);
    shard.register(&one(nth(1)), T0 + 2);
    shard.unregister(&one(i1()), T0 + 3);
    shard.heartbeat(&one(nth(1)), T0 + 4);
    shard.evict(T0 + 2 + TTL + 5);
    let pushed: Vec<(ChangeKind, String, u64)> = shard
        .take_unpushed()
        .into_iter()
        .map(|c| (c.kind, c.key.instance_id.into(), c.time_ms))
        .collect();
    let i1_id = "10.2.3.4:8080".to_string();
    let nth_id = "10.2.3.1:8080".to_string();
    assert_eq!(
        pushed,
        [
            (ChangeKind::New, i1_id.clone(), T0),
            (ChangeKind::New, i1_id.clone(), T0 + 1),
            (ChangeKind::New, nth_id.clone(), T0 + 2),
            (ChangeKind::Delete, i1_id, T0 + 3),
            (ChangeKind::Delete, nth_id, T0 + 2 + TTL + 5),
        ]
    );
    assert!(shard.take_unpushed().is_empty());
}

// --- management state ---

fn pulled_out(instances: &[&Instance]) -> Arc<ManagementView> {
    let data = crate::management::ManagementData {
        instance_operations: instances
            .iter()
            .map(|i| crate::management::InstanceOperation {
                region_id: i.region_id.clone().unwrap(),
                service_id: i.service_id.clone().unwrap(),
                instance_id: i.instance_id.clone().unwrap(),
                operation: "pullout".into(),
                operator_id: "ops".into(),
                token: None,
            })
            .collect(),
        ..Default::default()
    };
    Arc::new(ManagementView::new(&data))
}

fn kinds_of(changes: &[Change]) -> Vec<(&str, &str)> {
    changes
        .iter()
        .map(|c| (c.kind.as_str(), &*c.key.instance_id))
        .collect()
}

#[test]
fn a_pull_out_leaves_discovery_as_a_delete_and_a_pull_in_returns_as_a_new() {
    let mut shard = shard();
    shard.register(&batch([nth(1), nth(2)]), T0);
    shard.take_unpushed();
    let before = shard.service(SERVICE).unwrap().version;

    shard.apply_management(pulled_out(&[&nth(1)]), T0 + 1);
    assert_eq!(fragments(&mut shard, SERVICE), vec![json(&nth(2))]);
    assert!(shard.service(SERVICE).unwrap().version > before);
    assert_eq!(
        kinds_of(&shard.take_unpushed()),
        [("delete", "10.2.3.1:8080")]
    );

    // Its re-registers and heartbeats publish nothing while it is out.
    shard.register(&one(nth(1)), T0 + 2);
    assert!(shard.heartbeat(&one(nth(1)), T0 + 3).is_empty());
    assert!(shard.take_unpushed().is_empty());
    assert_eq!(fragments(&mut shard, SERVICE), vec![json(&nth(2))]);

    // Pulled back in while it still holds a lease.
    shard.apply_management(Arc::default(), T0 + 4);
    assert_eq!(fragments(&mut shard, SERVICE).len(), 2);
    assert_eq!(kinds_of(&shard.take_unpushed()), [("new", "10.2.3.1:8080")]);
    let delta = shard.changes_since(0).unwrap();
    assert_eq!(delta.last().unwrap().kind, ChangeKind::New);
}

#[test]
fn a_pulled_out_instance_is_listed_down_by_the_management_view() {
    let mut shard = shard();
    shard.register(&batch([nth(1), nth(2)]), T0);
    shard.apply_management(pulled_out(&[&nth(2)]), T0 + 1);
    let managed = shard.managed(Some(&SERVICE.to_uppercase()));
    assert_eq!(managed.len(), 1);
    let mut down: Vec<(String, bool)> = managed[0]
        .instances
        .iter()
        .map(|i| (String::from_utf8(i.json.to_vec()).unwrap(), i.down))
        .collect();
    down.sort();
    assert_eq!(down, [(json(&nth(1)), false), (json(&nth(2)), true)]);
    assert_eq!(managed[0].instances[0].ttl_ms, TTL);
    assert_eq!(shard.managed(None).len(), 1);
    assert!(shard.managed(Some("nope")).is_empty());
}

#[test]
fn route_rules_reload_their_service_and_reach_its_discovery_bytes() {
    use crate::management::{Group, ManagementData, RouteRule, RouteRuleGroup};
    let mut shard = shard();
    shard.register(&one(i1()), T0);
    shard.take_unpushed();
    let data = ManagementData {
        groups: vec![Group {
            group_id: 1,
            service_id: SERVICE.into(),
            region_id: "SHA".into(),
            zone_id: "SHAJQ".into(),
            name: "g".into(),
            status: Some("active".into()),
            ..Group::default()
        }],
        route_rules: vec![RouteRule {
            route_rule_id: 1,
            service_id: SERVICE.into(),
            name: "r".into(),
            status: Some("active".into()),
            ..RouteRule::default()
        }],
        route_rule_groups: vec![RouteRuleGroup {
            route_rule_group_id: 1,
            route_rule_id: 1,
            group_id: 1,
            ..RouteRuleGroup::default()
        }],
        ..ManagementData::default()
    };
    shard.apply_management(Arc::new(ManagementView::new(&data)), T0 + 1);
    let pushed = shard.take_unpushed();
    assert_eq!(kinds_of(&pushed), [("reload", "reload")]);
    let mut reload = Vec::new();
    pushed[0].write_json(&mut reload);
    assert!(String::from_utf8(reload).unwrap().ends_with(&format!(
        r#""instance":{{"groupId":null,"healthCheckUrl":null,"instanceId":"reload","ip":"0.0.0.0","machineName":null,"metadata":null,"port":0,"protocol":null,"regionId":null,"serviceId":"{SERVICE}","status":null,"url":"http://serviceId/reload","zoneId":null}}}}"#
    )));
    let lists = shard.service(SERVICE).unwrap().lists;
    assert!(std::str::from_utf8(&lists)
        .unwrap()
        .contains(r#""routeRules":[{"groups":[{"groupKey":"#));
    // A service only management data names is found, without instances.
    shard.unregister(&one(i1()), T0 + 2);
    let only_rules = shard.service(SERVICE).unwrap();
    assert!(!only_rules.registered);
    assert_eq!(&**only_rules.instances_json, b"[]");
}

// ---- Prometheus http_sd ----

#[test]
fn targets_of_named_services_or_of_all() {
    let mut shard = shard();
    let mut other = nth(9);
    other.service_id = Some("Other.Service".into());
    assert!(shard
        .register(&batch([nth(1), nth(2), other]), T0)
        .is_empty());
    let count = |parts: &[Arc<InstancesJson>]| {
        let groups = parts
            .iter()
            .map(|p| p.windows(10).filter(|w| w == b"{\"targets\"").count());
        (parts.len(), groups.sum::<usize>())
    };
    assert_eq!(count(&shard.targets(&[])), (2, 3));
    assert_eq!(count(&shard.targets(&[SERVICE.into()])), (1, 2));
    assert_eq!(count(&shard.targets(&["other.service".into()])), (1, 1));
    assert_eq!(count(&shard.targets(&["no.such.service".into()])), (0, 0));
    // Derived once per version, whichever way the service is asked for.
    let named = shard.targets(&[SERVICE.into()]);
    let all = shard.targets(&[]);
    assert!(all.iter().any(|part| Arc::ptr_eq(part, &named[0])));
}
