//! The load generator's attacks against the real server: well-behaved requests all succeed
//! beside idle and slowloris connections, the server's timeout closes the slowloris ones, and a
//! burst of garbage on many connections leaves the server answering correctly. Nothing is timed
//! here; docs/benchmarks.md has the measured effect on latency.

mod common;

use artemis_loadgen::{attack, run, AttackerReport, Config, Hostility, Pacing, Report};
use common::artemis::{instance, instances, service_request, REGISTER, REGISTRY_SUCCESS, SERVICE};
use common::json::assert_body;
use common::Server;
use std::time::Duration;

/// Discovery at 200 requests per second for 3 s on 4 connections, beside `attack`.
fn under_attack(server: &Server, attack: &str) -> Report {
    run(Config {
        target: format!("http://{}", server.addr),
        region: common::REGION.to_owned(),
        zone: common::ZONE.to_owned(),
        prefill: 100,
        services: 10,
        pacing: Pacing::Rate(200.0),
        duration: Duration::from_secs(3),
        warmup: Duration::from_millis(500),
        // Generous: the machine running the suite may be busy with other work.
        timeout: Duration::from_secs(10),
        connections: 4,
        quiet: true,
        attack: attack::parse(attack).unwrap(),
        probe: Some(Duration::from_millis(200)),
        ..Config::default()
    })
    .expect("the load runs")
}

fn attacker(report: &Report, kind: Hostility) -> &AttackerReport {
    report
        .attack
        .iter()
        .find(|a| a.kind == kind)
        .expect("the attacker is reported")
}

fn assert_all_discoveries_succeeded(report: &Report) {
    let discover = report.op("discover").expect("a discover row");
    assert_eq!(discover.failed, 0, "{:?}", discover.failures);
    assert!(discover.ok > 0);
    for probe in &report.probes {
        assert_eq!(probe.failed, 0, "{probe:?}");
        assert!(probe.ok > 0, "{probe:?}");
    }
}

#[test]
fn well_behaved_clients_are_served_beside_idle_and_slowloris_connections() {
    let server = Server::start(&["--request-timeout", "1s"]);
    let report = under_attack(&server, "idle=300,slowloris=20@100ms");
    assert_all_discoveries_succeeded(&report);

    let idle = attacker(&report, Hostility::Idle);
    assert!(idle.opened >= 300, "{idle:?}");
    let slowloris = attacker(&report, Hostility::Slowloris);
    assert!(slowloris.opened >= 20, "{slowloris:?}");
    assert!(
        slowloris.closed_by_server >= 20,
        "the request timeout closes every slowloris connection: {slowloris:?}"
    );
    assert!(slowloris.bytes_sent > 0);
    // Whatever a slowloris got before the close (nothing, or a 408), it was no success.
    assert!(
        !slowloris.replies.contains_key("200"),
        "{:?}",
        slowloris.replies
    );
}

#[test]
fn a_burst_of_garbage_on_many_connections_leaves_the_server_answering() {
    let server = Server::start(&[]);
    let report = under_attack(&server, "garbage=32@2ms");
    assert_all_discoveries_succeeded(&report);

    let garbage = attacker(&report, Hostility::Garbage);
    assert!(garbage.closed_by_server > 32, "{garbage:?}");
    assert!(
        garbage.replies.get("400").is_some_and(|&n| n > 0),
        "{garbage:?}"
    );
    assert!(
        !garbage.replies.contains_key("200"),
        "{:?}",
        garbage.replies
    );
    assert!(server.metric("artemis_http_errors_total{code=\"400\"}") > 0.0);

    // Fresh clients on new connections are served as before.
    for n in 0..8 {
        let mut client = server.connect();
        let service = format!("after.garbage.{n}");
        let reply = client.post(REGISTER, &instances(&[instance(&service, "i1")]));
        assert_body(&reply, REGISTRY_SUCCESS);
        let seen = client.post(SERVICE, &service_request(&service)).json();
        assert_eq!(seen["service"]["instances"][0]["instanceId"], "i1");
    }
    assert_eq!(server.get("/health").status, 200);
}
