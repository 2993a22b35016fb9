//! The bundled load generator against the real server: a short open-loop load, its counts, an
//! SLO no server can meet (exit code 1), and heartbeats of the prefilled instances. Figures are
//! never asserted here beyond "the load went through"; the benchmark (`bench/`) measures.

mod common;

use artemis_loadgen::{run, Config, Kind, Pacing, Share, Slo};
use std::time::Duration;

/// A second of discovery at 500 requests per second after 200 registered instances, on the
/// test server's region and zone.
fn load(server: &common::Server) -> Config {
    Config {
        target: format!("http://{}", server.addr),
        region: common::REGION.to_owned(),
        zone: common::ZONE.to_owned(),
        prefill: 200,
        services: 20,
        pacing: Pacing::Rate(500.0),
        duration: Duration::from_secs(1),
        warmup: Duration::from_millis(200),
        connections: 4,
        quiet: true,
        ..Config::default()
    }
}

fn impossible() -> Slo {
    Slo {
        latency: Slo::parse_latency("p50=1ns").unwrap(),
        max_error_rate: None,
    }
}

#[test]
fn discovery_load_is_counted_and_an_impossible_slo_exits_1() {
    let server = common::Server::start(&[]);
    let report = run(Config {
        slo: impossible(),
        ..load(&server)
    })
    .expect("the load runs");
    assert_eq!(report.prefill.as_ref().unwrap().instances, 200);
    let discover = report.op("discover").expect("a discover row");
    assert_eq!(discover.failed, 0, "{:?}", discover.failures);
    // 500 are scheduled in the measured second; a loaded test machine may get fewer through.
    assert!(
        (100..=501).contains(&discover.ok),
        "{} discoveries",
        discover.ok
    );
    assert_eq!(report.exit_code(), 1);
    assert_eq!(report.slo.violations[0].what, "discover p50");
}

#[test]
fn heartbeats_of_the_prefilled_instances_all_succeed() {
    let server = common::Server::start(&[]);
    let report = run(Config {
        scenario: vec![Share {
            kind: Kind::Heartbeat,
            weight: 1,
        }],
        ..load(&server)
    })
    .expect("the load runs");
    let heartbeat = report.op("heartbeat").expect("a heartbeat row");
    assert_eq!(heartbeat.failed, 0, "{:?}", heartbeat.failures);
    assert!(heartbeat.ok > 0);
    assert_eq!(report.exit_code(), 0);
}
