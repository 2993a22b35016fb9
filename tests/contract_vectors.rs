//! The reference exchanges of docs/compatibility.md that the registry and discovery endpoints
//! touch, against a server in region SHA, zone SHAJQ, with `I1` exactly as written there.

mod common;

use common::artemis::{
    with, without, HEARTBEAT, I1, I1_SERVICE, LOOKUP, PARTIAL_FAIL, REGISTER, REGISTRY_SUCCESS,
    SERVICE, UNREGISTER,
};
use common::client::{get_request, request};
use common::json::{assert_body, fail_status, SUCCESS};
use common::Server;
use serde_json::{json, Value};

/// Vector 3's reply: the heartbeat of an instance without a lease.
fn heartbeat_not_found() -> String {
    format!(
        r#"{{"failedInstances":[{{"errorCode":"data-not-found","errorMessage":"sha/shajq/{I1_SERVICE}/10.2.3.4:8080: Instance is not exising! Need re-register.","instance":{I1}}}],"responseStatus":{PARTIAL_FAIL}}}"#
    )
}

/// Vector 2's reply: a register without instances.
fn empty_register_reply() -> String {
    format!(
        r#"{{"failedInstances":null,"responseStatus":{}}}"#,
        fail_status("bad-request", "request.instances is null or empty.")
    )
}

/// The lookup request of vectors 6 and 7, from `region`.
fn lookup_from(region: &str) -> String {
    format!(
        r#"{{"regionId":"{region}","zoneId":"SHAJQ","discoveryConfigs":[{{"serviceId":"{I1_SERVICE}"}},{{"serviceId":"no.such.service"}}]}}"#
    )
}

/// `new Service(serviceId)`: every list `null`.
fn unfiltered(service_id: &str) -> String {
    format!(
        r#"{{"instances":null,"logicInstances":null,"metadata":null,"routeRules":null,"serviceId":"{service_id}"}}"#
    )
}

#[test]
fn vector_1_register_succeeds() {
    let server = Server::start(&[]);
    let reply = server.post(REGISTER, &format!(r#"{{"instances":[{I1}]}}"#));
    assert_body(&reply, REGISTRY_SUCCESS);
    assert_eq!(server.instance_ids(I1_SERVICE), ["10.2.3.4:8080"]);
}

#[test]
fn vector_2_empty_register_is_a_bad_request() {
    let server = Server::start(&[]);
    let reply = server.post(REGISTER, r#"{"instances":[]}"#);
    assert_body(&reply, &empty_register_reply());
}

#[test]
fn vector_3_heartbeat_of_an_unknown_instance_is_data_not_found() {
    let server = Server::start(&[]);
    let reply = server.post(HEARTBEAT, &format!(r#"{{"instances":[{I1}]}}"#));
    assert_body(&reply, &heartbeat_not_found());
}

#[test]
fn vector_4_wrong_region_is_no_permission() {
    let server = Server::start(&[]);
    let fra = with(I1, "regionId", json!("FRA"));
    let reply = server.post(REGISTER, &format!(r#"{{"instances":[{fra}]}}"#));
    let echoed = I1.replace(r#""regionId":"SHA""#, r#""regionId":"FRA""#);
    assert_body(
        &reply,
        &format!(
            r#"{{"failedInstances":[{{"errorCode":"no-permission","errorMessage":"fra/shajq/{I1_SERVICE}/10.2.3.4:8080: regionId is not the same as the registry node. regionId: FRA, registry node.regionId: SHA","instance":{echoed}}}],"responseStatus":{PARTIAL_FAIL}}}"#
        ),
    );
    assert!(server.instance_ids(I1_SERVICE).is_empty());
}

#[test]
fn vector_5_missing_url_is_an_internal_service_error() {
    let server = Server::start(&[]);
    let reply = server.post(
        REGISTER,
        &format!(r#"{{"instances":[{}]}}"#, without(I1, "url")),
    );
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(
        body["responseStatus"],
        serde_json::from_str::<serde_json::Value>(PARTIAL_FAIL).unwrap()
    );
    let failed = body["failedInstances"].as_array().expect("failedInstances");
    assert_eq!(failed.len(), 1, "{body}");
    assert_eq!(failed[0]["errorCode"], "internal-service-error");
    let message = failed[0]["errorMessage"].as_str().expect("errorMessage");
    assert!(
        message.ends_with(": Exception: argument instance.url is null or whitespace"),
        "{message}"
    );
    assert_eq!(failed[0]["instance"]["url"], serde_json::Value::Null);
    assert_eq!(failed[0]["instance"]["instanceId"], "10.2.3.4:8080");
    assert!(server.instance_ids(I1_SERVICE).is_empty());
}

#[test]
fn vector_6_lookup_lists_registered_and_unknown_services_in_request_order() {
    let server = Server::start(&[]);
    server.post(REGISTER, &format!(r#"{{"instances":[{I1}]}}"#));
    let reply = server.post(LOOKUP, &lookup_from("SHA"));
    assert_body(
        &reply,
        &format!(
            r#"{{"responseStatus":{SUCCESS},"services":[{{"instances":[{I1}],"logicInstances":[],"metadata":null,"routeRules":[],"serviceId":"{I1_SERVICE}"}},{{"instances":[],"logicInstances":[],"metadata":null,"routeRules":[],"serviceId":"no.such.service"}}]}}"#
        ),
    );
}

#[test]
fn vector_7_lookup_from_a_wrong_region_masks_the_error_as_null_lists() {
    let server = Server::start(&[]);
    server.post(REGISTER, &format!(r#"{{"instances":[{I1}]}}"#));
    let masked = format!(
        r#"{{"responseStatus":{SUCCESS},"services":[{},{}]}}"#,
        unfiltered(I1_SERVICE),
        unfiltered("no.such.service")
    );
    assert_body(&server.post(LOOKUP, &lookup_from("FRA")), &masked);
    let without_region = format!(
        r#"{{"zoneId":"SHAJQ","discoveryConfigs":[{{"serviceId":"{I1_SERVICE}"}},{{"serviceId":"no.such.service"}}]}}"#
    );
    assert_body(&server.post(LOOKUP, &without_region), &masked);
}

#[test]
fn vector_7_service_from_a_wrong_region_is_no_permission() {
    let server = Server::start(&[]);
    let reply = server.post(
        SERVICE,
        r#"{"discoveryConfig":{"serviceId":"x"},"regionId":"FRA"}"#,
    );
    assert_body(
        &reply,
        r#"{"responseStatus":{"errorCode":"no-permission","message":"regionId is not the same as the registry node. regionId: FRA, registry node.regionId: SHA","status":"fail"},"service":null}"#,
    );
}

#[test]
fn vector_9_unregister_then_heartbeat_is_data_not_found() {
    let server = Server::start(&[]);
    let body = format!(r#"{{"instances":[{I1}]}}"#);
    server.post(REGISTER, &body);
    assert_body(&server.post(UNREGISTER, &body), REGISTRY_SUCCESS);
    assert_body(&server.post(HEARTBEAT, &body), &heartbeat_not_found());
}

/// Deviation (docs/compatibility.md): Java keeps an unregistered instance in discovery until the
/// next lease clean; this server removes it at once.
#[test]
fn vector_9_unregister_removes_the_instance_from_discovery_at_once() {
    let server = Server::start(&[]);
    let body = format!(r#"{{"instances":[{I1}]}}"#);
    server.post(REGISTER, &body);
    assert_eq!(server.instance_ids(I1_SERVICE), ["10.2.3.4:8080"]);
    server.post(UNREGISTER, &body);
    assert!(server.instance_ids(I1_SERVICE).is_empty());
    let lookup = server.post(LOOKUP, &lookup_from("SHA")).json();
    assert_eq!(lookup["services"][0]["instances"], json!([]));
}

// ---- what a differential test against Java Artemis 1.5.16 found (docs/compatibility.md) ----

/// The one failed entry of a registry reply: its error code and message.
fn only_failure(reply: &common::client::Reply) -> (String, String) {
    let body = reply.json();
    assert_eq!(
        body["responseStatus"],
        serde_json::from_str::<Value>(PARTIAL_FAIL).unwrap(),
        "{body}"
    );
    let failed = body["failedInstances"].as_array().expect("failedInstances");
    assert_eq!(failed.len(), 1, "{body}");
    let code = failed[0]["errorCode"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let message = failed[0]["errorMessage"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (code, message)
}

#[test]
fn head_is_answered_as_get_without_a_body() {
    let server = Server::start(&[]);
    let get = server.get("/api/status/node.json");
    let mut client = server.connect();
    for path in [
        "/api/status/node.json",
        "/api/discovery/service.json?serviceId=no.such.service",
    ] {
        client.send(&request("HEAD", path, &[], b""));
        let head = client.read_head_reply();
        assert_eq!(head.status, 200, "{path}: {head:?}");
        assert!(head.body.is_empty());
        if path == "/api/status/node.json" {
            let length = get.body.len().to_string();
            assert_eq!(head.header("Content-Length"), Some(length.as_str()));
        }
    }
    client.send(&request("HEAD", REGISTER, &[], b""));
    let refused = client.read_head_reply();
    assert_eq!(refused.status, 405);
    assert_eq!(refused.header("Allow"), Some("POST"));
    // Nothing was written after the heads: the next reply on the connection is the next one.
    client.send(&get_request("/health"));
    assert_eq!(client.read_reply().text(), r#"{"status":"up"}"#);
}

#[test]
fn heartbeat_and_unregister_check_the_instance_as_register_does() {
    let server = Server::start(&[]);
    assert_body(
        &server.post(REGISTER, &format!(r#"{{"instances":[{I1}]}}"#)),
        REGISTRY_SUCCESS,
    );
    for (path, field) in [
        (HEARTBEAT, "url"),
        (HEARTBEAT, "instanceId"),
        (UNREGISTER, "instanceId"),
    ] {
        let body = format!(r#"{{"instances":[{}]}}"#, without(I1, field));
        let (code, message) = only_failure(&server.post(path, &body));
        assert_eq!(code, "internal-service-error", "{path} without {field}");
        let reason = format!(": Exception: argument instance.{field} is null or whitespace");
        assert!(message.ends_with(&reason), "{path}: {message}");
    }
    assert_eq!(server.instance_ids(I1_SERVICE), ["10.2.3.4:8080"]);
}

#[test]
fn a_legacy_lease_is_not_renewed_by_a_heartbeat_without_its_marker() {
    let server = Server::start(&[]);
    let legacy = with(I1, "metadata", json!({"java_registry": "1"}));
    assert_body(
        &server.post(REGISTER, &format!(r#"{{"instances":[{legacy}]}}"#)),
        REGISTRY_SUCCESS,
    );
    let reply = server.post(HEARTBEAT, &format!(r#"{{"instances":[{I1}]}}"#));
    assert_body(&reply, &heartbeat_not_found());
    assert_body(
        &server.post(HEARTBEAT, &format!(r#"{{"instances":[{legacy}]}}"#)),
        REGISTRY_SUCCESS,
    );
}

#[test]
fn paths_and_bodies_java_tolerates() {
    let server = Server::start(&[]);
    for path in [
        "//api/status/node.json",
        "/api/status/node.json/",
        "/api/status/node.json;jsessionid=abc",
    ] {
        assert_eq!(server.get(path).status, 200, "{path}");
    }
    // A byte-order mark before the JSON, and bytes after a complete value, as Jackson reads them.
    let trailing = server.post(REGISTER, r#"{"instances":[]} xyz"#);
    assert_body(&trailing, &empty_register_reply());
    let bom = format!("\u{FEFF}{{\"instances\":[{I1}]}}");
    assert_body(&server.post(REGISTER, &bom), REGISTRY_SUCCESS);
    assert_eq!(server.instance_ids(I1_SERVICE), ["10.2.3.4:8080"]);
}

#[test]
fn a_blank_service_id_is_echoed_as_sent() {
    let server = Server::start(&[]);
    let reply = server.post(
        LOOKUP,
        r#"{"regionId":"SHA","zoneId":"SHAJQ","discoveryConfigs":[{"serviceId":""},{"serviceId":null}]}"#,
    );
    let unfiltered = |id: &str| {
        format!(
            r#"{{"instances":null,"logicInstances":null,"metadata":null,"routeRules":null,"serviceId":{id}}}"#
        )
    };
    assert_body(
        &reply,
        &format!(
            r#"{{"responseStatus":{SUCCESS},"services":[{},{}]}}"#,
            unfiltered(r#""""#),
            unfiltered("null"),
        ),
    );
}

#[test]
fn replies_carry_java_s_headers() {
    let server = Server::start(&[]);
    let reply = server.get("/api/status/node.json");
    assert_eq!(
        reply.header("Content-Type"),
        Some("application/json;charset=UTF-8")
    );
    assert_eq!(reply.header("Vary"), Some("Accept-Encoding"));

    let refused = server.exchange(&request("PUT", "/api/status/node.json", &[], b"{}"));
    assert_eq!(refused.status, 405);
    assert_eq!(refused.header("Allow"), Some("GET, HEAD, POST"));

    let preflight = server.exchange(&request(
        "OPTIONS",
        "/any/path/at/all",
        &[
            ("Origin", "http://example.com"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
        b"",
    ));
    assert_eq!(preflight.status, 200);
    assert_eq!(preflight.header("Access-Control-Allow-Origin"), Some("*"));
    assert_eq!(
        preflight.header("Access-Control-Allow-Methods"),
        Some("POST")
    );
    assert_eq!(
        preflight.header("Access-Control-Allow-Headers"),
        Some("content-type")
    );
}
