//! Leases (docs/compatibility.md, "Leases and self-preservation"): expiry after the TTL, heartbeats
//! that keep an instance alive, self-preservation, and what `status/leases.json` reports about
//! them.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::artemis::{
    instance, with, HEARTBEAT, LEASES, LEGACY_LEASES, REGISTRY_SUCCESS, SHORT_LEASES,
};
use common::json::{assert_body, assert_java_key_order};
use common::{poll, Server};
use serde_json::{json, Value};

/// Generous: expiry takes one TTL plus a clean interval; a loaded machine may take longer.
const EXPIRY_DEADLINE: Duration = Duration::from_secs(15);

/// `yyyy-MM-dd HH:mm:ss.SSS`, as Java's `SimpleDateFormat` writes lease times.
fn is_java_timestamp(text: &str) -> bool {
    let pattern = "dddd-dd-dd dd:dd:dd.ddd";
    text.len() == pattern.len()
        && text
            .chars()
            .zip(pattern.chars())
            .all(|(c, p)| if p == 'd' { c.is_ascii_digit() } else { c == p })
}

fn leases(server: &Server, service_ids: &[&str]) -> Value {
    let reply = server.post(LEASES, &json!({ "serviceIds": service_ids }).to_string());
    assert_eq!(reply.status, 200);
    assert_java_key_order(&reply.body);
    reply.json()
}

/// The service ids `leases` lists, sorted.
fn leased_services(leases: &Value) -> Vec<String> {
    let mut ids: Vec<String> = leases["leases"]
        .as_object()
        .expect("leases is an object")
        .keys()
        .cloned()
        .collect();
    ids.sort();
    ids
}

#[test]
fn an_instance_without_heartbeats_expires_after_the_ttl() {
    let server = Server::start(SHORT_LEASES);
    let expiring = instance("expire.svc", "i1");
    server.register_ok(&[&expiring]);
    assert_eq!(
        server.instance_ids("expire.svc"),
        ["i1"],
        "present right after its register"
    );
    let gone = poll(EXPIRY_DEADLINE, || {
        server.instance_ids("expire.svc").is_empty().then_some(())
    });
    assert!(
        gone.is_some(),
        "still discoverable {EXPIRY_DEADLINE:?} after a 2 s TTL"
    );
    let heartbeat = server.heartbeat(&[expiring]).json();
    assert_eq!(
        heartbeat["failedInstances"][0]["errorCode"],
        "data-not-found"
    );
    assert_eq!(server.metric("artemis_leases_expired_total"), 1.0);
    assert_eq!(server.metric("artemis_active_instances"), 0.0);
    assert_eq!(leases(&server, &[])["leaseCount"], 0);
}

/// Heartbeats every 300 ms for 2.5 TTLs: the instance stays while a sibling without
/// heartbeats, registered with it, expires. (A 3 s TTL leaves 2.7 s of slack per heartbeat for a
/// loaded machine.)
#[test]
fn heartbeats_keep_an_instance_alive_past_the_ttl() {
    let server = Server::start(&[
        "--lease-ttl",
        "3s",
        "--clean-interval",
        "100ms",
        "--self-preservation",
        "false",
    ]);
    let kept = instance("kept.svc", "kept");
    server.register_ok(&[kept.clone(), instance("kept.svc", "dropped")]);
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(7500) {
        assert_body(&server.heartbeat(&[&kept]), REGISTRY_SUCCESS);
        assert!(server.instance_ids("kept.svc").contains(&"kept".to_owned()));
        thread::sleep(Duration::from_millis(300));
    }
    let settled = poll(EXPIRY_DEADLINE, || {
        let ids = server.instance_ids("kept.svc");
        (ids == ["kept"]).then_some(ids)
    });
    assert!(settled.is_some(), "{:?}", server.instance_ids("kept.svc"));
    assert_body(&server.heartbeat(&[kept]), REGISTRY_SUCCESS);
}

#[test]
fn leases_json_reports_each_lease_with_its_ttl() {
    let server = Server::start(&["--lease-ttl", "7s"]);
    server.register_ok(&[instance("Lease.Svc", "i1"), instance("lease.other", "i2")]);
    let all = leases(&server, &[]);
    assert_eq!(all["leaseCount"], 2);
    assert_eq!(all["isSafeCheckEnabled"], true);
    assert_eq!(all["isSafe"], true);
    assert_eq!(all["responseStatus"]["errorCode"], "success");
    assert_eq!(leased_services(&all), ["Lease.Svc", "lease.other"]);
    let lease = &all["leases"]["Lease.Svc"][0];
    assert_eq!(lease["instance"], "sha/shajq/lease.svc/i1");
    assert_eq!(lease["ttl"], 7000);
    for time in ["creationTime", "renewalTime"] {
        let text = lease[time].as_str().expect("a time string");
        assert!(is_java_timestamp(text), "{time}: {text}");
    }
    // Deviation (docs/compatibility.md): unregister removes a lease at once, so no lease has an
    // eviction time.
    assert_eq!(lease["evitionTime"], "1970-01-01 00:00:00.000");
}

#[test]
fn leases_json_says_when_self_preservation_is_off() {
    let server = Server::start(&["--self-preservation", "false"]);
    let status = leases(&server, &[]);
    assert_eq!(status["isSafeCheckEnabled"], false);
    assert_eq!(status["isSafe"], true);
}

#[test]
fn leases_json_lists_only_the_services_asked_for() {
    let server = Server::start(&[]);
    server.register_ok(&[
        instance("pick.a", "i1"),
        instance("pick.a", "i2"),
        instance("pick.b", "i1"),
        instance("pick.c", "i1"),
    ]);
    let picked = leases(&server, &["pick.a", "PICK.C", "pick.none"]);
    assert_eq!(leased_services(&picked), ["pick.a", "pick.c"]);
    assert_eq!(picked["leaseCount"], 3);
    let get = server.get(&format!(
        "{LEASES}?appIds=pick.a&appIds=PICK.C&appIds=pick.none"
    ));
    assert_eq!(get.json(), picked);
    let everything = server.get(LEASES).json();
    assert_eq!(leased_services(&everything), ["pick.a", "pick.b", "pick.c"]);
    assert_eq!(everything["leaseCount"], 4);
}

#[test]
fn legacy_instances_have_their_own_leases_and_ttl() {
    let server = Server::start(&["--legacy-lease-ttl", "30s"]);
    let legacy = with(
        &instance("legacy.svc", "old"),
        "metadata",
        json!({"java_registry": "true"}),
    );
    server.register_ok(&[legacy, instance("legacy.svc", "new")]);
    let legacy_leases = server.post(LEGACY_LEASES, "{}").json();
    assert_eq!(legacy_leases["leaseCount"], 1);
    assert_eq!(
        legacy_leases["leases"]["legacy.svc"][0]["instance"],
        "sha/shajq/legacy.svc/old"
    );
    assert_eq!(legacy_leases["leases"]["legacy.svc"][0]["ttl"], 30000);
    let normal = leases(&server, &[]);
    assert_eq!(normal["leaseCount"], 1);
    assert_eq!(
        normal["leases"]["legacy.svc"][0]["instance"],
        "sha/shajq/legacy.svc/new"
    );
    assert_eq!(server.instance_ids("legacy.svc"), ["new", "old"]);
}

/// Eureka-style self-preservation: a shard that saw at least 50 renewals in its window turns
/// unsafe when renewals then stop, and expires nothing while unsafe — even leases past their TTL.
#[test]
fn self_preservation_holds_expiry_when_renewals_stop() {
    // The shard turns unsafe 2-3 s after the renewals; the TTL leaves a wide margin after that.
    let ttl = Duration::from_secs(12);
    let server = Server::start(&[
        "--lease-ttl",
        "12s",
        "--clean-interval",
        "100ms",
        "--self-preservation-window",
        "2s",
        // The test polls leases.json every 100 ms, past Java's 10 per 10 s.
        "--status-rate-limit-map",
        "get-leases:1000",
    ]);
    let list: Vec<String> = (0..60)
        .map(|n| instance("preserve.svc", &format!("i{n}")))
        .collect();
    server.register_ok(&list);
    assert_body(&server.heartbeat(&list), REGISTRY_SUCCESS);
    let renewed = Instant::now();
    // The window's renewals (60) set the max; once they leave the window the count is 0 < 85 %.
    let unsafe_status = poll(EXPIRY_DEADLINE, || {
        let status = leases(&server, &[]);
        (status["isSafe"] == false).then_some(status)
    })
    .expect("self-preservation turns on once renewals stop");
    assert!(
        renewed.elapsed() < ttl,
        "turned unsafe only after the leases expired"
    );
    assert_eq!(unsafe_status["leaseCount"], 60, "{unsafe_status}");
    assert_eq!(unsafe_status["leaseUpdateMaxCount"], 60);
    assert_eq!(unsafe_status["leaseUpdateCountLastTimeWindow"], 0);
    assert_eq!(
        server.metric("artemis_self_preservation_safe"),
        server.shards as f64 - 1.0
    );

    while renewed.elapsed() < ttl + Duration::from_millis(1500) {
        thread::sleep(Duration::from_millis(100));
    }
    let held = leases(&server, &[]);
    assert_eq!(held["isSafe"], false);
    assert_eq!(
        held["leaseCount"], 60,
        "expired leases are held while unsafe"
    );
    assert_eq!(server.instance_ids("preserve.svc").len(), 60);
    assert_eq!(server.metric("artemis_leases_expired_total"), 0.0);
    // Expired leases cannot be renewed, even while self-preservation holds them.
    let heartbeat = server
        .post(HEARTBEAT, &common::artemis::instances(&list[..1]))
        .json();
    assert_eq!(
        heartbeat["failedInstances"][0]["errorCode"],
        "data-not-found"
    );
}
