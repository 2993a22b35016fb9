//! The reference exchanges of docs/compatibility.md that the registry and discovery endpoints
//! touch, against a server in region SHA, zone SHAJQ, with `I1` exactly as written there.

mod common;

use common::artemis::{
    with, without, HEARTBEAT, I1, I1_SERVICE, LOOKUP, PARTIAL_FAIL, REGISTER, REGISTRY_SUCCESS,
    SERVICE, UNREGISTER,
};
use common::json::{assert_body, fail_status, SUCCESS};
use common::Server;
use serde_json::json;

/// Vector 3's reply: the heartbeat of an instance without a lease.
fn heartbeat_not_found() -> String {
    format!(
        r#"{{"failedInstances":[{{"errorCode":"data-not-found","errorMessage":"sha/shajq/{I1_SERVICE}/10.2.3.4:8080: Instance is not exising! Need re-register.","instance":{I1}}}],"responseStatus":{PARTIAL_FAIL}}}"#
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
    assert_body(
        &reply,
        &format!(
            r#"{{"failedInstances":null,"responseStatus":{}}}"#,
            fail_status("bad-request", "request.instances is null or empty.")
        ),
    );
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
