//! `GET /api/discovery/prometheus-sd.json` (docs/api.md, "Prometheus service discovery") over
//! real sockets: Prometheus' `http_sd` format, one target group per instance with its fields
//! and metadata as `__meta_artemis_*` labels, services chosen by `serviceId`, pulled-out and
//! removed instances left out, gzip, and the methods it takes.

mod common;

use std::collections::BTreeMap;
use std::io::Read;

use flate2::read::GzDecoder;
use serde_json::{json, Value};

use common::artemis::{instance, service_ids, with, I1, I1_SERVICE};
use common::client::request;
use common::Server;

const SD: &str = "/api/discovery/prometheus-sd.json";

/// The target groups `GET SD?query` answers, after checking what Prometheus checks of the reply.
fn groups(server: &Server, query: &str) -> Vec<Value> {
    let reply = server.get(&format!("{SD}{query}"));
    assert_eq!(reply.status, 200, "{reply:?}");
    let content_type = reply.header("Content-Type").unwrap_or_default();
    assert!(
        content_type
            .to_ascii_lowercase()
            .starts_with("application/json"),
        "{content_type}"
    );
    let Value::Array(groups) = reply.json() else {
        panic!("not an array: {reply:?}");
    };
    for group in &groups {
        assert_eq!(
            group["targets"].as_array().map(Vec::len),
            Some(1),
            "{group}"
        );
    }
    groups
}

/// Each group's labels, by its one target; asserts that no target comes twice.
fn by_target(groups: &[Value]) -> BTreeMap<String, Value> {
    let all: BTreeMap<String, Value> = groups
        .iter()
        .map(|g| {
            (
                g["targets"][0].as_str().unwrap().to_owned(),
                g["labels"].clone(),
            )
        })
        .collect();
    assert_eq!(all.len(), groups.len(), "{groups:?}");
    all
}

/// The targets of `SD?query`, sorted.
fn targets(server: &Server, query: &str) -> Vec<String> {
    by_target(&groups(server, query)).into_keys().collect()
}

/// An instance of `service` at `ip`:8080.
fn at(service: &str, id: &str, ip: &str) -> String {
    with(&instance(service, id), "ip", json!(ip))
}

#[test]
fn every_instance_is_a_target_group_with_its_fields_and_metadata_as_labels() {
    let server = Server::start(&[]);
    assert_eq!(groups(&server, ""), Vec::<Value>::new());
    let tagged = with(
        &at("sd.labels", "i1", "10.0.0.1"),
        "metadata",
        json!({"team.name": "payments", "weight": "10", "none": null}),
    );
    let grouped = with(&at("sd.labels", "i2", "10.0.0.2"), "groupId", json!("g1"));
    server.register_ok(&[&tagged, &grouped, I1]);
    let all = by_target(&groups(&server, ""));
    assert_eq!(
        all.keys().collect::<Vec<_>>(),
        ["10.0.0.1:8080", "10.0.0.2:8080", "10.2.3.4:8080"]
    );
    assert_eq!(
        all["10.0.0.1:8080"],
        json!({
            "__meta_artemis_region": "SHA",
            "__meta_artemis_zone": "SHAJQ",
            "__meta_artemis_service": "sd.labels",
            "__meta_artemis_instance_id": "i1",
            "__meta_artemis_machine_name": "test-host",
            "__meta_artemis_protocol": "http",
            "__meta_artemis_status": "up",
            "__meta_artemis_url": "http://i1/",
            "__meta_artemis_health_check_url": "http://i1/health",
            "__meta_artemis_metadata_team_name": "payments",
            "__meta_artemis_metadata_weight": "10",
        })
    );
    assert_eq!(all["10.0.0.2:8080"]["__meta_artemis_group"], "g1");
    assert_eq!(all["10.2.3.4:8080"]["__meta_artemis_metadata_k"], "v");
    assert_eq!(all["10.2.3.4:8080"]["__meta_artemis_service"], I1_SERVICE);
}

#[test]
fn service_ids_choose_the_services_whatever_their_case_and_shard() {
    let server = Server::start(&[]);
    let services = service_ids("sd.pick", 4, server.shards);
    let list: Vec<String> = services
        .iter()
        .enumerate()
        .map(|(n, s)| at(s, "i1", &format!("10.0.1.{n}")))
        .collect();
    server.register_ok(&list);
    assert_eq!(targets(&server, "").len(), 4);
    let one = format!("?serviceId={}", services[1].to_uppercase());
    assert_eq!(targets(&server, &one), ["10.0.1.1:8080"]);
    let two = format!(
        "?serviceId={}&serviceId={}&serviceId={}&serviceId=no.such.service",
        services[0], services[3], services[0]
    );
    assert_eq!(targets(&server, &two), ["10.0.1.0:8080", "10.0.1.3:8080"]);
    assert!(targets(&server, "?serviceId=no.such.service").is_empty());
    // A blank id names nothing: every service, as with none.
    assert_eq!(targets(&server, "?serviceId=%20").len(), 4);
}

#[test]
fn pulled_out_and_removed_instances_leave_the_targets() {
    let server = Server::start(&[]);
    let other = at(I1_SERVICE, "other", "10.2.3.5");
    server.register_ok(&[I1, &other]);
    let query = format!("?serviceId={I1_SERVICE}");
    assert_eq!(targets(&server, &query), ["10.2.3.4:8080", "10.2.3.5:8080"]);
    let operate = |complete: bool| {
        let body = format!(
            r#"{{"instanceKey":{{"regionId":"SHA","serviceId":"{I1_SERVICE}","instanceId":"10.2.3.4:8080"}},"operation":"pullout","operationComplete":{complete},"operatorId":"ops","token":"t"}}"#
        );
        let reply = server.post("/api/management/operate-instance.json", &body);
        assert_eq!(
            reply.json()["responseStatus"]["status"],
            "success",
            "{reply:?}"
        );
    };
    operate(false);
    assert_eq!(targets(&server, &query), ["10.2.3.5:8080"]);
    operate(true);
    assert_eq!(targets(&server, &query), ["10.2.3.4:8080", "10.2.3.5:8080"]);
    server.unregister(&[&other]);
    assert_eq!(targets(&server, &query), ["10.2.3.4:8080"]);
}

#[test]
fn a_large_list_is_gzipped_and_only_get_and_head_are_taken() {
    let server = Server::start(&[]);
    let list: Vec<String> = (0..40)
        .map(|n| at("sd.gzip", &format!("i{n}"), &format!("10.0.2.{n}")))
        .collect();
    server.register_ok(&list);
    let mut client = server.connect();
    let plain = client.get(SD);
    assert!(plain.body.len() >= 4096, "a body worth compressing");
    client.send(&request("GET", SD, &[("Accept-Encoding", "gzip")], b""));
    let packed = client.read_reply();
    assert_eq!(packed.header("Content-Encoding"), Some("gzip"));
    let mut unpacked = String::new();
    GzDecoder::new(&packed.body[..])
        .read_to_string(&mut unpacked)
        .expect("the body is gzip");
    assert_eq!(unpacked, plain.text());
    assert_eq!(server.post(SD, "{}").status, 405);
    client.send(&request("HEAD", SD, &[], b""));
    let head = client.read_head_reply();
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
}
