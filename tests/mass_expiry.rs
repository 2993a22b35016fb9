//! Mass expiry: thousands of instances, registered (and heartbeated) by the load generator, stop
//! renewing at once. Without self-preservation every one of them is evicted, a bounded batch per
//! clean tick; with it, a shard that saw its renewals stop holds the expired leases
//! (docs/compatibility.md, "Leases and self-preservation"). Nothing is timed here;
//! docs/benchmarks.md has the measured figures.

mod common;

use artemis_loadgen::{prefill, run, Config, Kind, Pacing, Share};
use common::{poll, Server};
use std::thread;
use std::time::{Duration, Instant};

const INSTANCES: u64 = 4000;

/// `INSTANCES` instances over 400 services (so on every shard).
fn population(server: &Server) -> Config {
    Config {
        target: format!("http://{}", server.addr),
        region: common::REGION.to_owned(),
        zone: common::ZONE.to_owned(),
        prefill: INSTANCES,
        services: 400,
        batch: 100,
        timeout: Duration::from_secs(10),
        connections: 4,
        quiet: true,
        ..Config::default()
    }
}

#[test]
fn without_self_preservation_every_expired_instance_is_evicted() {
    let server = Server::start(&[
        "--lease-ttl",
        "2s",
        "--clean-interval",
        "100ms",
        "--eviction-batch",
        "100",
        "--self-preservation",
        "false",
    ]);
    prefill(&population(&server)).expect("the population registers");
    let gone = poll(Duration::from_secs(60), || {
        (server.metric("artemis_active_instances") == 0.0).then_some(())
    });
    assert!(gone.is_some(), "instances left after 60 s");
    assert_eq!(
        server.metric("artemis_leases_expired_total"),
        INSTANCES as f64
    );
    assert_eq!(server.metric("artemis_shard_services"), 0.0);
}

#[test]
fn with_self_preservation_the_instances_are_kept_once_renewals_stop() {
    // Renewals leave the 2 s window 2 s after they stop, and the checker (every second) then
    // finds the shard unsafe, well before the 8 s leases expire.
    let ttl = Duration::from_secs(8);
    let server = Server::start(&[
        "--lease-ttl",
        "8s",
        "--clean-interval",
        "100ms",
        "--eviction-batch",
        "100",
        "--self-preservation",
        "true",
        "--self-preservation-window",
        "2s",
    ]);
    // Every instance beats about every half second for 3 s: thousands of renewals per shard
    // in the window, far over the 50 that arm the checker.
    let report = run(Config {
        scenario: vec![Share {
            kind: Kind::Heartbeat,
            weight: 1,
        }],
        pacing: Pacing::Rate(80.0),
        duration: Duration::from_secs(3),
        warmup: Duration::ZERO,
        ..population(&server)
    })
    .expect("the heartbeats run");
    let stopped = Instant::now();
    let heartbeat = report.op("heartbeat").expect("a heartbeat row");
    assert_eq!(heartbeat.failed, 0, "{:?}", heartbeat.failures);

    let unsafe_everywhere = poll(ttl, || {
        (server.metric("artemis_self_preservation_safe") == 0.0).then_some(())
    });
    assert!(
        unsafe_everywhere.is_some(),
        "every shard turns unsafe once renewals stop"
    );
    while stopped.elapsed() < ttl + Duration::from_secs(3) {
        thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        server.metric("artemis_active_instances"),
        INSTANCES as f64,
        "self-preservation keeps the expired instances"
    );
    assert_eq!(server.metric("artemis_leases_expired_total"), 0.0);
}
