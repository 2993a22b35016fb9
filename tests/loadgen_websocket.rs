//! The load generator's WebSocket scenarios against the real server: heartbeat frames on
//! `/ws/registry/heartbeat`, and re-registers timed until `/ws/discovery/instance-change` pushes
//! them. Only "the load went through" is asserted; the figures are in docs/benchmarks.md.

mod common;

use artemis_loadgen::{run, Config, Kind, Pacing, Share};
use std::time::Duration;

/// Half a second of `kind` at 200 requests per second over 200 registered instances.
fn load(server: &common::Server, kind: Kind, batch: u64) -> Config {
    Config {
        target: format!("http://{}", server.addr),
        region: common::REGION.to_owned(),
        zone: common::ZONE.to_owned(),
        scenario: vec![Share { kind, weight: 1 }],
        prefill: 200,
        services: 20,
        batch,
        pacing: Pacing::Rate(200.0),
        duration: Duration::from_millis(500),
        warmup: Duration::from_millis(300),
        connections: 4,
        quiet: true,
        ..Config::default()
    }
}

#[test]
fn heartbeat_frames_all_succeed() {
    let server = common::Server::start(&[]);
    let report = run(load(&server, Kind::WsHeartbeat, 10)).expect("the load runs");
    let heartbeat = report.op("heartbeat").expect("a heartbeat row");
    assert_eq!(heartbeat.failed, 0, "{:?}", heartbeat.failures);
    assert!(heartbeat.ok > 0);
}

#[test]
fn every_register_is_pushed_to_a_subscriber() {
    let server = common::Server::start(&[]);
    let report = run(load(&server, Kind::Push, 1)).expect("the load runs");
    let register = report.op("register").expect("a register row");
    let push = report.op("push").expect("a push row");
    assert_eq!(register.failed, 0, "{:?}", register.failures);
    assert_eq!(push.failed, 0, "{:?}", push.failures);
    assert!(push.ok > 0);
    // Each instance is registered at most once in the run, and the run waits for its push.
    assert_eq!(push.ok, register.ok);
}
