//! `status/*.json` and `cluster/up-*-nodes.json` (docs/api.md, "Status" and "Cluster") of a
//! single node.

mod common;

use common::json::{assert_body, assert_java_key_order, SUCCESS};
use common::{Reply, Server};

/// This node's `ServiceNode`: its URL and zone.
fn service_node(server: &Server) -> String {
    format!(
        r#"{{"url":"http://{}/","zone":{{"metadata":null,"regionId":"SHA","zoneId":"SHAJQ"}}}}"#,
        server.addr
    )
}

/// This node's `ServiceNodeStatus`, up and serving both registry and discovery.
fn node_status(server: &Server, allow_registry_from_other_zone: bool) -> String {
    format!(
        r#"{{"allowDiscoveryFromOtherZone":true,"allowRegistryFromOtherZone":{allow_registry_from_other_zone},"canServiceDiscovery":true,"canServiceRegistry":true,"node":{},"status":"up"}}"#,
        service_node(server)
    )
}

/// The same document by `GET` and by `POST {}`.
fn get_and_post(server: &Server, path: &str) -> [Reply; 2] {
    [server.get(path), server.post(path, "{}")]
}

const NO_NODES: &str = r#"{"nodes":null,"responseStatus":{"errorCode":"data-not-found","message":"No available service nodes.","status":"fail"}}"#;

#[test]
fn node_json_describes_this_node() {
    let server = Server::start(&[]);
    let expected = format!(
        r#"{{"nodeStatus":{},"responseStatus":{SUCCESS}}}"#,
        node_status(&server, true)
    );
    for reply in get_and_post(&server, "/api/status/node.json") {
        assert_body(&reply, &expected);
    }
}

#[test]
fn cluster_json_lists_this_node_alone() {
    let server = Server::start(&["--allow-registry-from-other-zone", "false"]);
    let expected = format!(
        r#"{{"nodeCount":1,"nodesStatus":[{}],"responseStatus":{SUCCESS}}}"#,
        node_status(&server, false)
    );
    for reply in get_and_post(&server, "/api/status/cluster.json") {
        assert_body(&reply, &expected);
    }
}

#[test]
fn config_json_reports_the_effective_settings() {
    let server = Server::start(&[
        "--lease-ttl",
        "7s",
        "--clean-interval",
        "250ms",
        "--registry-rate-limit-map",
        "heartbeat:200000",
    ]);
    for reply in get_and_post(&server, "/api/status/config.json") {
        assert_eq!(reply.status, 200);
        assert_java_key_order(&reply.body);
        let body = reply.json();
        assert_eq!(body["responseStatus"]["errorCode"], "success");
        let properties = &body["properties"];
        assert_eq!(properties["region.id"], "SHA");
        assert_eq!(properties["zone.id"], "SHAJQ");
        let lease = "artemis.service.registry.instance.lease-manager";
        assert_eq!(properties[format!("{lease}.lease.ttl")], "7000");
        assert_eq!(
            properties[format!("{lease}.clean-task.run-interval")],
            "250"
        );
        let registry = "artemis.service.registry.rate-limiter";
        assert_eq!(properties[format!("{registry}.enabled")], "true");
        assert_eq!(
            properties[format!("{registry}.default-rate-limit")],
            "100000"
        );
        assert_eq!(
            properties[format!("{registry}.rate-limit-map")],
            "heartbeat:200000"
        );
        assert_eq!(
            properties["artemis.service.status.rate-limiter.rate-limit-map"],
            "get-leases:10"
        );
        assert!(properties
            .as_object()
            .unwrap()
            .values()
            .all(|v| v.is_string()));
        assert!(body["sources"].is_object(), "{body}");
    }
}

#[test]
fn deployment_json_describes_the_process() {
    let server = Server::start(&[]);
    for reply in get_and_post(&server, "/api/status/deployment.json") {
        assert_eq!(reply.status, 200);
        assert_java_key_order(&reply.body);
        let body = reply.json();
        assert_eq!(body["responseStatus"]["errorCode"], "success");
        assert_eq!(body["regionId"], "SHA");
        assert_eq!(body["zoneId"], "SHAJQ");
        assert_eq!(body["ip"], "127.0.0.1");
        assert_eq!(body["port"], server.addr.port());
        assert_eq!(body["protocol"], "http");
        for field in ["appId", "machineName", "path"] {
            assert!(body[field].is_string(), "{field} in {body}");
        }
        assert!(body["properties"].is_object() && body["sources"].is_object());
    }
}

#[test]
fn up_nodes_list_this_node() {
    let server = Server::start(&[]);
    let expected = format!(
        r#"{{"nodes":[{}],"responseStatus":{SUCCESS}}}"#,
        service_node(&server)
    );
    for path in [
        "/api/cluster/up-registry-nodes.json",
        "/api/cluster/up-discovery-nodes.json",
    ] {
        assert_body(
            &server.post(path, r#"{"regionId":"SHA","zoneId":"SHAJQ"}"#),
            &expected,
        );
        assert_body(
            &server.post(path, r#"{"regionId":"SHA","zoneId":"SHAOY"}"#),
            &expected,
        );
        assert_body(
            &server.get(&format!("{path}?regionId=SHA&zoneId=SHAJQ")),
            &expected,
        );
        assert_body(&server.get(path), &expected);
    }
}

#[test]
fn up_registry_nodes_for_another_zone_are_not_found_when_other_zones_are_refused() {
    let server = Server::start(&["--allow-registry-from-other-zone", "false"]);
    let registry = "/api/cluster/up-registry-nodes.json";
    let found = format!(
        r#"{{"nodes":[{}],"responseStatus":{SUCCESS}}}"#,
        service_node(&server)
    );
    assert_body(
        &server.post(registry, r#"{"regionId":"SHA","zoneId":"SHAOY"}"#),
        NO_NODES,
    );
    assert_body(
        &server.get(&format!("{registry}?regionId=SHA&zoneId=SHAOY")),
        NO_NODES,
    );
    assert_body(&server.post(registry, "{}"), NO_NODES);
    assert_body(
        &server.post(registry, r#"{"regionId":"SHA","zoneId":"SHAJQ"}"#),
        &found,
    );
    // Discovery still takes other zones (its own flag, default true).
    assert_body(
        &server.post(
            "/api/cluster/up-discovery-nodes.json",
            r#"{"regionId":"SHA","zoneId":"SHAOY"}"#,
        ),
        &found,
    );
}

#[test]
fn up_discovery_nodes_follow_the_discovery_zone_flag() {
    let server = Server::start(&["--allow-discovery-from-other-zone", "false"]);
    assert_body(
        &server.post(
            "/api/cluster/up-discovery-nodes.json",
            r#"{"regionId":"SHA","zoneId":"SHAOY"}"#,
        ),
        NO_NODES,
    );
}

#[test]
fn the_node_url_flag_sets_the_published_url() {
    let url = "http://registry.example:8080/artemis-service/";
    let server = Server::start(&["--node-url", url]);
    let nodes = server.get("/api/cluster/up-registry-nodes.json").json();
    assert_eq!(nodes["nodes"][0]["url"], url);
    let node = server.get("/api/status/node.json").json();
    assert_eq!(node["nodeStatus"]["node"]["url"], url);
}
