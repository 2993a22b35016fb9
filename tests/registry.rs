//! `register.json`, `heartbeat.json` and `unregister.json` (docs/api.md, "Registry") beyond the
//! reference exchanges of docs/compatibility.md: batches over several shards, replacement,
//! validation, and the request spellings the decoder accepts.

mod common;

use common::artemis::{
    instance, service_ids, service_on_shard, with, without, HEARTBEAT, PARTIAL_FAIL, REGISTER,
    REGISTRY_SUCCESS, SERVICE, SERVICES, UNREGISTER,
};
use common::json::{assert_body, assert_json, fail_status};
use common::Server;
use serde_json::json;

#[test]
fn re_register_replaces_the_instance_data() {
    let server = Server::start(&[]);
    let first = instance("replace.svc", "i1");
    server.register_ok(&[&first]);
    let second = with(&first, "url", json!("http://moved/"));
    let second = with(&second, "metadata", json!({"version": "2"}));
    server.register_ok(&[&second]);
    let service = server.service("replace.svc");
    let listed = service["instances"].as_array().expect("instances");
    assert_eq!(listed.len(), 1, "{service}");
    assert_json(&listed[0], &second);
}

#[test]
fn instance_identity_ignores_case() {
    let server = Server::start(&[]);
    server.register_ok(&[instance("case.svc", "host-a:80")]);
    server.register_ok(&[instance("case.svc", "HOST-A:80")]);
    assert_eq!(server.instance_ids("case.svc"), ["HOST-A:80"]);
    assert_body(
        &server.heartbeat(&[instance("case.svc", "Host-A:80")]),
        REGISTRY_SUCCESS,
    );
}

#[test]
fn partial_fail_lists_the_failed_instances_in_request_order() {
    let server = Server::start(&[]);
    assert!(server.shards >= 2, "this test needs two shards");
    let (a, b) = (
        service_on_shard("order", 0, server.shards),
        service_on_shard("order", 1, server.shards),
    );
    let ok_a = instance(&a, "ok-a");
    let bad_b = with(&instance(&b, "bad-b"), "regionId", json!("FRA"));
    let ok_b = instance(&b, "ok-b");
    let no_url_a = without(&instance(&a, "no-url-a"), "url");
    let bad_a = with(&instance(&a, "bad-a"), "regionId", json!("NRT"));
    let no_id_b = without(&instance(&b, "x"), "instanceId");
    let reply = server.register(&[ok_a, bad_b, ok_b, no_url_a, bad_a, no_id_b]);
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_json(&body["responseStatus"], PARTIAL_FAIL);
    let failed: Vec<(&str, &str)> = body["failedInstances"]
        .as_array()
        .expect("failedInstances")
        .iter()
        .map(|f| {
            (
                f["errorCode"].as_str().unwrap(),
                f["errorMessage"].as_str().unwrap(),
            )
        })
        .collect();
    let codes: Vec<&str> = failed.iter().map(|f| f.0).collect();
    assert_eq!(
        codes,
        [
            "no-permission",
            "internal-service-error",
            "no-permission",
            "internal-service-error"
        ]
    );
    assert!(failed[0].1.starts_with(&format!("fra/shajq/{b}/bad-b: ")));
    assert!(failed[1]
        .1
        .starts_with(&format!("sha/shajq/{a}/no-url-a: ")));
    assert!(failed[2].1.starts_with(&format!("nrt/shajq/{a}/bad-a: ")));
    assert!(failed[3]
        .1
        .ends_with(": Exception: argument instance.instanceId is null or whitespace"));
    assert_eq!(server.instance_ids(&a), ["ok-a"]);
    assert_eq!(server.instance_ids(&b), ["ok-b"]);
}

#[test]
fn null_entries_in_the_list_are_skipped() {
    let server = Server::start(&[]);
    let reply = server.post(
        REGISTER,
        &format!(
            r#"{{"instances":[null,{},null]}}"#,
            instance("nulls.svc", "i1")
        ),
    );
    assert_body(&reply, REGISTRY_SUCCESS);
    assert_eq!(server.instance_ids("nulls.svc"), ["i1"]);
}

#[test]
fn a_null_body_is_request_is_null() {
    let server = Server::start(&[]);
    let expected = format!(
        r#"{{"failedInstances":null,"responseStatus":{}}}"#,
        fail_status("bad-request", "request is null")
    );
    for path in [REGISTER, HEARTBEAT, UNREGISTER] {
        assert_body(&server.post(path, "null"), &expected);
    }
}

#[test]
fn a_missing_instance_list_is_a_bad_request() {
    let server = Server::start(&[]);
    let expected = format!(
        r#"{{"failedInstances":null,"responseStatus":{}}}"#,
        fail_status("bad-request", "request.instances is null or empty.")
    );
    for path in [REGISTER, HEARTBEAT, UNREGISTER] {
        assert_body(&server.post(path, "{}"), &expected);
        assert_body(&server.post(path, r#"{"instances":null}"#), &expected);
    }
}

#[test]
fn heartbeat_of_registered_instances_succeeds() {
    let server = Server::start(&[]);
    let list: Vec<String> = service_ids("beat", 8, server.shards)
        .iter()
        .map(|s| instance(s, "i1"))
        .collect();
    server.register_ok(&list);
    assert_body(&server.heartbeat(&list), REGISTRY_SUCCESS);
}

#[test]
fn unregister_of_an_unknown_instance_succeeds() {
    let server = Server::start(&[]);
    assert_body(
        &server.unregister(&[instance("never.registered", "i1")]),
        REGISTRY_SUCCESS,
    );
}

#[test]
fn unregister_removes_only_the_named_instance() {
    let server = Server::start(&[]);
    let (one, two) = (instance("pair.svc", "one"), instance("pair.svc", "two"));
    server.register_ok(&[one.clone(), two]);
    assert_body(&server.unregister(&[one]), REGISTRY_SUCCESS);
    assert_eq!(server.instance_ids("pair.svc"), ["two"]);
}

#[test]
fn region_and_zone_match_case_insensitively() {
    let server = Server::start(&["--allow-registry-from-other-zone", "false"]);
    let lower = with(&instance("lower.svc", "i1"), "regionId", json!("sha"));
    server.register_ok(&[with(&lower, "zoneId", json!("shajq"))]);
    assert_eq!(server.instance_ids("lower.svc"), ["i1"]);
}

#[test]
fn another_zone_registers_by_default() {
    let server = Server::start(&[]);
    server.register_ok(&[with(&instance("zone.svc", "i1"), "zoneId", json!("SHAOY"))]);
    assert_eq!(server.instance_ids("zone.svc"), ["i1"]);
}

#[test]
fn another_zone_is_refused_when_other_zones_are_not_allowed() {
    let server = Server::start(&["--allow-registry-from-other-zone", "false"]);
    let other = with(&instance("zone.svc", "i1"), "zoneId", json!("SHAOY"));
    let body = server.register(&[other]).json();
    assert_json(&body["responseStatus"], PARTIAL_FAIL);
    assert_eq!(body["failedInstances"][0]["errorCode"], "no-permission");
    assert_eq!(
        body["failedInstances"][0]["errorMessage"],
        "sha/shaoy/zone.svc/i1: zoneId is not the same as the registry node. zoneId: SHAOY, registry node.zoneId: SHAJQ"
    );
    assert!(server.instance_ids("zone.svc").is_empty());
}

#[test]
fn instances_of_services_on_every_shard_are_all_discoverable() {
    let server = Server::start(&[]);
    let services = service_ids("spread", 40, server.shards);
    let list: Vec<String> = services
        .iter()
        .flat_map(|s| [instance(s, "a"), instance(s, "b")])
        .collect();
    server.register_ok(&list);
    for service in &services {
        assert_eq!(server.instance_ids(service), ["a", "b"], "{service}");
    }
    let listed = server.get(SERVICES).json();
    let mut ids: Vec<&str> = listed["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|s| s["serviceId"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut expected: Vec<&str> = services.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(ids, expected);
}

/// The older Rust README's spellings: `region_id`, `instance_keys`, `discovery_config`.
#[test]
fn snake_case_request_spellings_are_accepted() {
    let server = Server::start(&[]);
    let register = r#"{"instances":[{"region_id":"SHA","zone_id":"SHAJQ","service_id":"snake.svc","instance_id":"i1","url":"http://i1/","health_check_url":"http://i1/health","machine_name":"m"}]}"#;
    assert_body(&server.post(REGISTER, register), REGISTRY_SUCCESS);
    let service = server
        .post(
            SERVICE,
            r#"{"discovery_config":{"service_id":"snake.svc"},"region_id":"SHA","zone_id":"SHAJQ"}"#,
        )
        .json();
    let listed = &service["service"]["instances"][0];
    assert_eq!(listed["instanceId"], "i1");
    assert_eq!(listed["healthCheckUrl"], "http://i1/health");
    assert_eq!(listed["machineName"], "m");
    let keys =
        r#"{"instance_keys":[{"region_id":"SHA","service_id":"snake.svc","instance_id":"i1"}]}"#;
    assert_body(&server.post(HEARTBEAT, keys), REGISTRY_SUCCESS);
    assert_body(&server.post(UNREGISTER, keys), REGISTRY_SUCCESS);
    assert!(server.instance_ids("snake.svc").is_empty());
}

#[test]
fn property_names_match_case_insensitively() {
    let server = Server::start(&[]);
    let register = r#"{"INSTANCES":[{"RegionId":"SHA","ZONEID":"SHAJQ","serviceid":"case.props","InstanceID":"i1","URL":"http://i1/","Port":81}]}"#;
    assert_body(&server.post(REGISTER, register), REGISTRY_SUCCESS);
    let listed = &server.service("case.props")["instances"][0];
    assert_eq!(listed["instanceId"], "i1");
    assert_eq!(listed["url"], "http://i1/");
    assert_eq!(listed["port"], 81);
}

#[test]
fn unknown_properties_are_ignored() {
    let server = Server::start(&[]);
    let with_extras = with(
        &instance("extras.svc", "i1"),
        "weight",
        json!({"nested": [1, 2, {"deep": null}]}),
    );
    let body = format!(r#"{{"requestId":"r-1","instances":[{with_extras}],"trace":[true]}}"#);
    assert_body(&server.post(REGISTER, &body), REGISTRY_SUCCESS);
    let listed = &server.service("extras.svc")["instances"][0];
    assert_json(listed, &instance("extras.svc", "i1"));
}

/// Jackson coerces scalars: a numeric string where an int is expected, a number where a
/// string is expected; a missing int is 0.
#[test]
fn scalars_are_coerced_as_jackson_does() {
    let server = Server::start(&[]);
    let register = r#"{"instances":[{"regionId":"SHA","serviceId":"coerce.svc","instanceId":42,"url":"http://x/","port":"8081"}]}"#;
    assert_body(&server.post(REGISTER, register), REGISTRY_SUCCESS);
    let listed = &server.service("coerce.svc")["instances"][0];
    assert_eq!(listed["instanceId"], "42");
    assert_eq!(listed["port"], 8081);
    assert_eq!(listed["zoneId"], serde_json::Value::Null);
    let missing_port = r#"{"instances":[{"regionId":"SHA","serviceId":"coerce.svc","instanceId":"p","url":"http://p/"}]}"#;
    assert_body(&server.post(REGISTER, missing_port), REGISTRY_SUCCESS);
    let ports: Vec<i64> = server.service("coerce.svc")["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["port"].as_i64().unwrap())
        .collect();
    assert!(ports.contains(&0), "{ports:?}");
}

/// Map entries keep the order they were sent in (only bean properties are sorted), and a
/// `null` value is written as `null`.
#[test]
fn metadata_is_echoed_in_the_order_sent() {
    let server = Server::start(&[]);
    let sent = r#"{"instances":[{"regionId":"SHA","serviceId":"meta.svc","instanceId":"i1","url":"http://i1/","metadata":{"zone":"z","alpha":"a","empty":null}}]}"#;
    assert_body(&server.post(REGISTER, sent), REGISTRY_SUCCESS);
    let reply = server.post(SERVICE, &common::artemis::service_request("meta.svc"));
    assert!(
        reply
            .text()
            .contains(r#""metadata":{"zone":"z","alpha":"a","empty":null}"#),
        "{}",
        reply.text()
    );
}

#[test]
fn strings_needing_escapes_round_trip() {
    let server = Server::start(&[]);
    let tricky = json!({
        "regionId": "SHA",
        "serviceId": "escape.svc",
        "instanceId": "quote\"back\\slash\ttab/é/中文/😀",
        "url": "http://x/?a=1&b=<2>",
        "metadata": {"line\nbreak": "\u{1}control"}
    });
    let reply = server.post(REGISTER, &json!({ "instances": [tricky] }).to_string());
    assert_body(&reply, REGISTRY_SUCCESS);
    let listed = &server.service("escape.svc")["instances"][0];
    for field in ["instanceId", "url", "metadata"] {
        assert_eq!(listed[field], tricky[field], "{field}");
    }
}

#[test]
fn a_batch_naming_one_instance_twice_keeps_the_last() {
    let server = Server::start(&[]);
    let first = instance("twice.svc", "i1");
    let last = with(&first, "url", json!("http://last/"));
    server.register_ok(&[&first, &last]);
    let listed = server.service("twice.svc")["instances"].clone();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["url"], "http://last/");
}

#[test]
fn heartbeat_failures_over_several_shards_keep_request_order() {
    let server = Server::start(&[]);
    assert!(server.shards >= 2, "this test needs two shards");
    let on = |shard, id: &str| instance(&service_on_shard("beat.order", shard, server.shards), id);
    let known = [on(0, "known-0"), on(1, "known-1")];
    server.register_ok(&known);
    let batch = [
        on(1, "unknown-1"),
        known[0].clone(),
        on(0, "unknown-0"),
        known[1].clone(),
        on(1, "unknown-2"),
    ];
    let body = server.heartbeat(&batch).json();
    assert_json(&body["responseStatus"], PARTIAL_FAIL);
    let failed: Vec<&str> = body["failedInstances"]
        .as_array()
        .expect("failedInstances")
        .iter()
        .map(|f| {
            assert_eq!(f["errorCode"], "data-not-found");
            f["instance"]["instanceId"].as_str().unwrap()
        })
        .collect();
    assert_eq!(failed, ["unknown-1", "unknown-0", "unknown-2"]);
}
