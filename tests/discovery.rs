//! `service.json` (POST and GET), `lookup.json` and `services.json` (docs/api.md, "Discovery"), and
//! the promise that a registered instance is in the very next discovery call, on any connection.

mod common;

use common::artemis::{
    instance, instances, service_ids, service_request, with, LOOKUP, REGISTER, REGISTRY_SUCCESS,
    SERVICE, SERVICES, UNREGISTER,
};
use common::json::{assert_body, assert_java_key_order, fail_status, SUCCESS};
use common::Server;
use serde_json::{json, Value};

/// A `service.json` reply listing exactly `instances` (JSON texts in Java key order).
fn found(service_id: &str, instances: &[String]) -> String {
    format!(
        r#"{{"responseStatus":{SUCCESS},"service":{{"instances":[{}],"logicInstances":[],"metadata":null,"routeRules":[],"serviceId":"{service_id}"}}}}"#,
        instances.join(",")
    )
}

/// The `version` and the service ids of a `services.json` reply.
fn services_listing(body: &Value) -> (u64, Vec<String>) {
    assert_eq!(
        body["responseStatus"],
        serde_json::from_str::<Value>(SUCCESS).unwrap()
    );
    let mut ids: Vec<String> = body["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|s| s["serviceId"].as_str().expect("serviceId").to_owned())
        .collect();
    ids.sort();
    (body["version"].as_u64().expect("version"), ids)
}

#[test]
fn service_json_post_lists_the_instances_of_a_service() {
    let server = Server::start(&[]);
    let list = [instance("svc.post", "a"), instance("svc.post", "b")];
    server.register_ok(&list);
    let reply = server.post(SERVICE, &service_request("svc.post"));
    let body = reply.json();
    let listed = body["service"]["instances"].as_array().expect("instances");
    assert_eq!(listed.len(), 2, "{body}");
    // Instance order within a service is not defined (docs/api.md): compare as a set, then the
    // exact bytes in whichever order came back.
    let first = listed[0]["instanceId"].as_str().unwrap();
    let ordered = if first == "a" {
        [list[0].clone(), list[1].clone()]
    } else {
        [list[1].clone(), list[0].clone()]
    };
    assert_body(&reply, &found("svc.post", &ordered));
}

#[test]
fn service_json_get_answers_as_the_post_does() {
    let server = Server::start(&[]);
    server.register_ok(&[instance("svc.get", "a")]);
    let expected = found("svc.get", &[instance("svc.get", "a")]);
    assert_body(
        &server.get("/api/discovery/service.json?serviceId=svc.get&regionId=SHA&zoneId=SHAJQ"),
        &expected,
    );
    assert_body(
        &server.get("/api/discovery/service.json?regionId=sha&serviceId=svc%2Eget"),
        &expected,
    );
    assert_body(
        &server.post(SERVICE, &service_request("svc.get")),
        &expected,
    );
}

#[test]
fn service_json_get_without_a_region_is_no_permission() {
    let server = Server::start(&[]);
    assert_body(
        &server.get("/api/discovery/service.json?serviceId=svc"),
        &format!(
            r#"{{"responseStatus":{},"service":null}}"#,
            fail_status(
                "no-permission",
                "regionId is not the same as the registry node. regionId: null, registry node.regionId: SHA"
            )
        ),
    );
}

#[test]
fn an_unknown_service_is_the_unfiltered_null_list_shape() {
    let server = Server::start(&[]);
    let expected = format!(
        r#"{{"responseStatus":{SUCCESS},"service":{{"instances":null,"logicInstances":null,"metadata":null,"routeRules":null,"serviceId":"x"}}}}"#
    );
    assert_body(&server.post(SERVICE, &service_request("x")), &expected);
    assert_body(
        &server.get("/api/discovery/service.json?serviceId=x&regionId=SHA"),
        &expected,
    );
}

#[test]
fn service_json_without_a_service_id_is_a_bad_request() {
    let server = Server::start(&[]);
    let expected = format!(
        r#"{{"responseStatus":{},"service":null}}"#,
        fail_status(
            "bad-request",
            "Request is null or request.discoveryConfig is null."
        )
    );
    for body in [
        r#"{"regionId":"SHA"}"#,
        r#"{"discoveryConfig":null,"regionId":"SHA"}"#,
        r#"{"discoveryConfig":{"serviceId":"  "},"regionId":"SHA"}"#,
        "null",
    ] {
        assert_body(&server.post(SERVICE, body), &expected);
    }
    assert_body(
        &server.get("/api/discovery/service.json?regionId=SHA"),
        &expected,
    );
}

/// Deviation (docs/compatibility.md): service ids are matched case-insensitively.
#[test]
fn service_ids_match_case_insensitively() {
    let server = Server::start(&[]);
    server.register_ok(&[instance("Framework.Case.Service", "i1")]);
    assert_eq!(server.instance_ids("framework.case.service"), ["i1"]);
    assert_eq!(
        server.service("framework.case.service")["serviceId"],
        "framework.case.service",
        "the reply echoes the id asked for"
    );
    assert_eq!(server.instance_ids("FRAMEWORK.CASE.SERVICE"), ["i1"]);
    server.register_ok(&[instance("framework.case.service", "i2")]);
    assert_eq!(server.instance_ids("Framework.Case.Service"), ["i1", "i2"]);
}

#[test]
fn lookup_masks_blank_service_ids_and_keeps_request_order() {
    let server = Server::start(&[]);
    server.register_ok(&[instance("look.b", "i1")]);
    let reply = server.post(
        LOOKUP,
        r#"{"regionId":"SHA","zoneId":"SHAJQ","discoveryConfigs":[{"serviceId":"look.a"},{"serviceId":""},null,{"serviceId":"look.b"}]}"#,
    );
    let body = reply.json();
    let services = body["services"].as_array().expect("services");
    let ids: Vec<&Value> = services.iter().map(|s| &s["serviceId"]).collect();
    assert_eq!(
        ids,
        [&json!("look.a"), &json!(""), &Value::Null, &json!("look.b")],
        "a blank id is echoed as sent, as Java does"
    );
    assert_eq!(services[0]["instances"], json!([]));
    assert_eq!(services[1]["instances"], Value::Null);
    assert_eq!(services[3]["instances"][0]["instanceId"], "i1");
}

#[test]
fn lookup_with_an_empty_list_succeeds_with_no_services() {
    let server = Server::start(&[]);
    assert_body(
        &server.post(LOOKUP, r#"{"regionId":"SHA","discoveryConfigs":[]}"#),
        &format!(r#"{{"responseStatus":{SUCCESS},"services":[]}}"#),
    );
}

#[test]
fn services_json_lists_every_registered_service() {
    let server = Server::start(&[]);
    let services = service_ids("all", 12, server.shards);
    let list: Vec<String> = services.iter().map(|s| instance(s, "i1")).collect();
    server.register_ok(&list);
    let get = server.get(SERVICES);
    assert_java_key_order(&get.body);
    let (_, listed) = services_listing(&get.json());
    let mut expected = services.clone();
    expected.sort();
    assert_eq!(listed, expected);
    let post = server.post(SERVICES, r#"{"regionId":"SHA","zoneId":"SHAJQ"}"#);
    assert_eq!(post.text(), get.text(), "GET and POST answer alike");
    let one = &get.json()["services"][0];
    assert_eq!(one["logicInstances"], json!([]));
    assert_eq!(one["routeRules"], json!([]));
    assert_eq!(one["metadata"], Value::Null);
}

/// Deviation (docs/compatibility.md): the version moves on every change, not every 30 s.
#[test]
fn services_json_version_increases_after_each_change() {
    let server = Server::start(&[]);
    let (empty, listed) = services_listing(&server.get(SERVICES).json());
    assert!(listed.is_empty());
    server.register_ok(&[instance("ver.svc", "i1")]);
    let (after_register, listed) = services_listing(&server.get(SERVICES).json());
    assert!(after_register > empty, "{after_register} > {empty}");
    assert_eq!(listed, ["ver.svc"]);
    let (unchanged, _) = services_listing(&server.get(SERVICES).json());
    assert_eq!(
        unchanged, after_register,
        "a read does not move the version"
    );
    server.register_ok(&[instance("ver.other", "i1")]);
    let (after_second, _) = services_listing(&server.get(SERVICES).json());
    assert!(after_second > after_register);
    assert_body(
        &server.unregister(&[instance("ver.svc", "i1")]),
        REGISTRY_SUCCESS,
    );
    let (after_unregister, listed) = services_listing(&server.get(SERVICES).json());
    assert!(after_unregister > after_second);
    assert_eq!(
        listed,
        ["ver.other"],
        "a service without instances is dropped"
    );
}

#[test]
fn discovery_replies_keep_java_key_order() {
    let server = Server::start(&[]);
    let full = with(
        &instance("order.svc", "i1"),
        "metadata",
        json!({"z": "1", "a": "2"}),
    );
    server.register_ok(&[full]);
    for reply in [
        server.post(SERVICE, &service_request("order.svc")),
        server.post(SERVICE, &service_request("unknown.svc")),
        server.post(
            LOOKUP,
            r#"{"regionId":"SHA","discoveryConfigs":[{"serviceId":"order.svc"}]}"#,
        ),
        server.get(SERVICES),
    ] {
        assert_java_key_order(&reply.body);
    }
}

/// A client that got `success` for a register sees the instance in its very next discovery
/// call on another connection — for services owned by every shard, over fresh connection pairs
/// (which the kernel spreads over the cores' listeners).
#[test]
fn a_register_is_visible_to_the_next_read_on_another_connection() {
    let server = Server::start(&[]);
    let services = service_ids("ryw", 200, server.shards);
    for round in services.chunks(20) {
        let (mut writer, mut reader) = (server.connect(), server.connect());
        for service in round {
            let id = format!("{service}-i");
            let reply = writer.post(REGISTER, &instances(&[instance(service, &id)]));
            assert_body(&reply, REGISTRY_SUCCESS);
            let seen = reader.post(SERVICE, &service_request(service)).json();
            assert_eq!(
                seen["service"]["instances"][0]["instanceId"], id,
                "{service} not visible right after its register: {seen}"
            );
        }
        let listed = reader.get(SERVICES).text().to_owned();
        for service in round {
            assert!(listed.contains(&format!(r#""serviceId":"{service}""#)));
        }
    }
}

/// Deviation (docs/compatibility.md): the same holds for an unregister, which Java shows only after
/// the next lease clean.
#[test]
fn an_unregister_is_visible_to_the_next_read_on_another_connection() {
    let server = Server::start(&[]);
    let services = service_ids("gone", 40, server.shards);
    let (mut writer, mut reader) = (server.connect(), server.connect());
    for service in &services {
        let registration = instances(&[instance(service, "i1")]);
        assert_body(&writer.post(REGISTER, &registration), REGISTRY_SUCCESS);
        assert_body(&writer.post(UNREGISTER, &registration), REGISTRY_SUCCESS);
        let seen = reader.post(SERVICE, &service_request(service)).json();
        assert_eq!(seen["service"]["instances"], Value::Null, "{seen}");
    }
}

#[test]
fn another_zone_is_refused_discovery_when_other_zones_are_not_allowed() {
    let server = Server::start(&["--allow-discovery-from-other-zone", "false"]);
    server.register_ok(&[instance("zoned.svc", "i1")]);
    let other_zone =
        r#"{"discoveryConfig":{"serviceId":"zoned.svc"},"regionId":"SHA","zoneId":"SHAOY"}"#;
    let refused = server.post(SERVICE, other_zone).json();
    assert_eq!(refused["responseStatus"]["errorCode"], "no-permission");
    assert_eq!(refused["service"], Value::Null);
    let masked = server
        .post(
            LOOKUP,
            r#"{"regionId":"SHA","zoneId":"SHAOY","discoveryConfigs":[{"serviceId":"zoned.svc"}]}"#,
        )
        .json();
    assert_eq!(masked["responseStatus"]["errorCode"], "success");
    assert_eq!(masked["services"][0]["instances"], Value::Null);
    assert_eq!(
        server.instance_ids("zoned.svc"),
        ["i1"],
        "its own zone is served"
    );
}

#[test]
fn lookup_answers_services_of_every_shard_in_request_order() {
    let server = Server::start(&[]);
    let services = service_ids("look.many", 30, server.shards);
    let list: Vec<String> = services.iter().map(|s| instance(s, "i1")).collect();
    server.register_ok(&list);
    let mut asked: Vec<&str> = services.iter().map(String::as_str).collect();
    asked.reverse();
    asked.insert(10, "look.missing");
    let configs: Vec<Value> = asked.iter().map(|id| json!({ "serviceId": id })).collect();
    let body = server
        .post(
            LOOKUP,
            &json!({"regionId": "SHA", "discoveryConfigs": configs}).to_string(),
        )
        .json();
    let answered: Vec<&str> = body["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["serviceId"].as_str().unwrap())
        .collect();
    assert_eq!(answered, asked);
    for service in body["services"].as_array().unwrap() {
        let expected = usize::from(service["serviceId"] != "look.missing");
        assert_eq!(service["instances"].as_array().unwrap().len(), expected);
    }
}

/// Java's controller dereferences a missing list: an exception without a message.
#[test]
fn lookup_without_a_config_list_is_an_internal_service_error() {
    let server = Server::start(&[]);
    assert_body(
        &server.post(LOOKUP, r#"{"regionId":"SHA"}"#),
        r#"{"responseStatus":{"errorCode":"internal-service-error","message":null,"status":"fail"},"services":null}"#,
    );
}
