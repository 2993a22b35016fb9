//! `services.json` versions and `services-delta.json` over the wire: a client that holds the full
//! list at some version and applies the delta since it ends with the current full list.

mod common;

use std::collections::BTreeMap;

use serde_json::{json, Value};

use common::artemis::{instance, instances, service_ids, SERVICES};
use common::Server;

const DELTA: &str = "/api/discovery/services-delta.json";

/// Instance id → instance, over every service of a `services.json` reply.
fn full_list(reply: &Value) -> BTreeMap<String, Value> {
    reply["services"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["instances"].as_array().unwrap().clone())
        .map(|i| (i["instanceId"].as_str().unwrap().to_string(), i))
        .collect()
}

fn services(server: &Server) -> (u64, BTreeMap<String, Value>) {
    let reply = server.get(SERVICES).json();
    (reply["version"].as_u64().unwrap(), full_list(&reply))
}

fn delta(server: &Server, version: u64) -> Value {
    server
        .post(DELTA, &json!({ "version": version }).to_string())
        .json()
}

fn not_found() -> Value {
    json!({"delta":null,"responseStatus":{"errorCode":"data-not-found","message":"Delta is not found.","status":"fail"},"version":0})
}

#[test]
fn vector_8_unknown_version_is_not_found() {
    let server = Server::start(&[]);
    let reply = server.post(DELTA, r#"{"version":123}"#);
    assert_eq!(
        reply.text(),
        r#"{"delta":null,"responseStatus":{"errorCode":"data-not-found","message":"Delta is not found.","status":"fail"},"version":0}"#
    );
}

#[test]
fn delta_applied_to_an_old_list_gives_the_current_list() {
    let server = Server::start(&[]);
    let ids = service_ids("delta.svc", 12, server.shards);
    let first: Vec<String> = ids.iter().map(|s| instance(s, &format!("{s}-a"))).collect();
    server.register_ok(&first);
    let (v0, old) = services(&server);
    assert_eq!(old.len(), 12);

    // Changes on every shard: new instances, re-registered ones with new data, removals.
    let added: Vec<String> = ids.iter().map(|s| instance(s, &format!("{s}-b"))).collect();
    server.register_ok(&added);
    let changed = common::artemis::with(&first[0], "status", json!("down"));
    server.register_ok(&[changed]);
    assert_eq!(
        server.unregister(&first[1..4]).json()["responseStatus"]["status"],
        "success"
    );

    let reply = delta(&server, v0);
    assert_eq!(reply["responseStatus"]["status"], "success", "{reply}");
    let mut list = old;
    for (_, changes) in reply["delta"].as_object().unwrap() {
        for change in changes.as_array().unwrap() {
            let id = change["instance"]["instanceId"]
                .as_str()
                .unwrap()
                .to_string();
            match change["changeType"].as_str().unwrap() {
                "new" => list.insert(id, change["instance"].clone()),
                "delete" => list.remove(&id),
                other => panic!("unexpected change type {other}"),
            };
        }
    }
    let (now, current) = services(&server);
    assert_eq!(list, current);
    assert_eq!(reply["version"].as_u64().unwrap(), now);
    assert!(now > v0);
}

#[test]
fn current_version_and_future_versions_are_not_found() {
    let server = Server::start(&[]);
    server.register_ok(&[instance("current.svc", "i1")]);
    let (version, _) = services(&server);
    assert_eq!(delta(&server, version), not_found());
    assert_eq!(delta(&server, version + 1_000), not_found());
}

#[test]
fn versions_older_than_the_retention_are_not_found() {
    let server = Server::start(&["--delta-retention", "3"]);
    let (v0, _) = services(&server);
    let many: Vec<String> = (0..20)
        .map(|i| instance("retained.svc", &format!("i{i}")))
        .collect();
    for one in &many {
        server.register_ok(std::slice::from_ref(one));
    }
    assert_eq!(delta(&server, v0), not_found());
    let (recent, _) = services(&server);
    server.register_ok(&[instance("retained.svc", "last")]);
    assert_eq!(
        delta(&server, recent)["responseStatus"]["status"],
        "success"
    );
}

#[test]
fn services_version_moves_on_every_change() {
    let server = Server::start(&[]);
    let (v0, _) = services(&server);
    server.register_ok(&[instance("moving.svc", "i1")]);
    let (v1, _) = services(&server);
    server.post(
        common::artemis::HEARTBEAT,
        &instances(&[instance("moving.svc", "i1")]),
    );
    let (v2, _) = services(&server);
    server.unregister(&[instance("moving.svc", "i1")]);
    let (v3, _) = services(&server);
    assert!(v0 < v1, "register moves the version");
    assert_eq!(v1, v2, "a heartbeat changes nothing visible");
    assert!(v2 < v3, "unregister moves the version");
}
