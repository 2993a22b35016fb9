//! What operators poll: `GET /health` and the Prometheus `GET /metrics`, whose figures must be
//! the real ones — checked against exactly what each test did.

mod common;

use common::artemis::{instance, service_ids, service_request, LOOKUP, SERVICE, SERVICES};
use common::Server;

#[test]
fn health_answers_200_while_serving() {
    let server = Server::start(&[]);
    let reply = server.get("/health");
    assert_eq!(reply.status, 200);
}

#[test]
fn metrics_count_the_requests_and_instances_of_the_test() {
    let server = Server::start(&[]);
    let services = service_ids("metrics", 5, server.shards);
    let five: Vec<String> = services.iter().map(|s| instance(s, "i1")).collect();
    server.register_ok(&five[0..2]);
    server.register_ok(&five[2..4]);
    server.register_ok(&[&five[4], &five[0]]);
    server.heartbeat(&five);
    server.heartbeat(&five[..1]);
    server.post(SERVICE, &service_request(&services[0]));
    server.get(&format!("{SERVICE}?serviceId={}&regionId=SHA", services[1]));
    server.post(LOOKUP, r#"{"regionId":"SHA","discoveryConfigs":[]}"#);
    server.get(SERVICES);

    assert_eq!(server.metric("artemis_register_requests_total"), 3.0);
    assert_eq!(server.metric("artemis_heartbeat_requests_total"), 2.0);
    assert_eq!(server.metric("artemis_discovery_requests_total"), 4.0);
    assert_eq!(server.metric("artemis_active_instances"), 5.0);
    assert_eq!(
        server.metric(r#"artemis_requests_total{endpoint="lookup",outcome="success"}"#),
        1.0
    );
    assert_eq!(server.metric("artemis_shard_instances"), 5.0);
    assert_eq!(server.metric("artemis_shard_services"), 5.0);

    server.unregister(&five[..1]);
    assert_eq!(server.metric("artemis_active_instances"), 4.0);
}

#[test]
fn metrics_count_refused_requests_by_status() {
    let server = Server::start(&[]);
    server.get("/no/such/path");
    server.get("/api/registry/register.json");
    assert_eq!(
        server.metric(r#"artemis_http_errors_total{code="404"}"#),
        1.0
    );
    assert_eq!(
        server.metric(r#"artemis_http_errors_total{code="405"}"#),
        1.0
    );
    assert_eq!(server.metric("artemis_register_requests_total"), 0.0);
}

#[test]
fn metrics_are_prometheus_text() {
    let server = Server::start(&[]);
    let reply = server.get("/metrics");
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("Content-Type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{reply:?}"
    );
    let text = reply.text();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').expect("`series value`");
        assert!(value.parse::<f64>().is_ok(), "{line}");
        let name = series.split('{').next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|base| text.contains(&format!("# TYPE {base} histogram")))
            .unwrap_or(name);
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "no TYPE for {line}"
        );
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "no HELP for {line}"
        );
    }
    for name in [
        "artemis_register_requests_total",
        "artemis_heartbeat_requests_total",
        "artemis_discovery_requests_total",
        "artemis_active_instances",
    ] {
        assert_eq!(server.metric(name), 0.0);
    }
}
