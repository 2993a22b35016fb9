//! The management endpoints over real sockets (Java's §4.6–§4.10): pull-outs of instances,
//! servers, zones and groups and how discovery sees them, groups, tags, route rules and their
//! weights, logical instances, canary ips, the nine operation logs, Java's refusals word for
//! word, the management token, the group rate limiter, and that a write is answered only once
//! every connection sees it.
//!
//! These run against the default embedded store; `core_flows_on_postgresql` runs the core
//! flows again against PostgreSQL when `ARTEMIS_TEST_POSTGRES` names a server.

mod common;

use common::artemis::{instance, with, I1, I1_SERVICE, LOOKUP};
use common::client::request;
use common::json::{assert_body, assert_java_key_order, fail_status, SUCCESS};
use common::postgres::TestDatabase;
use common::{Reply, Server, REGION, ZONE};
use serde_json::{json, Value};

/// `/api/management/<path>`.
fn at(path: &str) -> String {
    format!("/api/management/{path}")
}

/// Java's reply to a write that went through.
const WRITTEN: &str =
    r#"{"responseStatus":{"errorCode":"success","message":"","status":"success"}}"#;

/// The operator's context every `BusinessDao` write needs, around `fields`.
fn by_operator(fields: &str) -> String {
    format!(r#"{{"operation":"test","operatorId":"ops","token":"t","reason":"testing",{fields}}}"#)
}

/// POSTs `body` to a management path and returns the reply's JSON, asserting HTTP 200 and
/// Java's key order.
fn call(server: &Server, path: &str, body: &str) -> Value {
    let reply = server.post(&at(path), body);
    assert_eq!(reply.status, 200, "{path}: {}", reply.text());
    assert_java_key_order(&reply.body);
    reply.json()
}

/// [`call`], asserting success.
fn ok(server: &Server, path: &str, body: &str) -> Value {
    let reply = call(server, path, body);
    assert_eq!(
        reply["responseStatus"]["errorCode"], "success",
        "{path}: {reply}"
    );
    reply
}

/// The `responseStatus` of a reply as (errorCode, message).
fn status(reply: &Value) -> (String, String) {
    let status = &reply["responseStatus"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (text(&status["errorCode"]), text(&status["message"]))
}

/// The service as `lookup.json` shows it, asked on a connection of its own.
fn looked_up(server: &Server, service_id: &str) -> Value {
    let body = format!(
        r#"{{"regionId":"{REGION}","zoneId":"{ZONE}","discoveryConfigs":[{{"serviceId":"{service_id}"}}]}}"#
    );
    let reply = server.connect().post(LOOKUP, &body);
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["services"][0].clone()
}

/// The instance ids a lookup of `service_id` lists, in order.
fn discovered(server: &Server, service_id: &str) -> Vec<String> {
    let service = looked_up(server, service_id);
    let ids = service["instances"].as_array().cloned().unwrap_or_default();
    ids.iter()
        .map(|i| i["instanceId"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The body of an `operate-instance.json` on I1 (vector 10).
fn operate_i1(complete: bool) -> String {
    format!(
        r#"{{"instanceKey":{{"regionId":"SHA","serviceId":"{I1_SERVICE}","instanceId":"10.2.3.4:8080"}},"operation":"pullout","operationComplete":{complete},"operatorId":"ops","token":"t"}}"#
    )
}

/// Vector 10, and what it leaves in the management views. Used on both stores.
fn pull_out_and_back_in(server: &Server) {
    server.register_ok(&[I1]);
    assert_body(
        &server.post(&at("operate-instance.json"), &operate_i1(false)),
        WRITTEN,
    );
    assert!(
        discovered(server, I1_SERVICE).is_empty(),
        "I1 is pulled out"
    );
    let down = server.post(
        &at("instance-down.json"),
        &format!(r#"{{"instance":{I1}}}"#),
    );
    assert_body(
        &down,
        &format!(r#"{{"down":true,"responseStatus":{SUCCESS}}}"#),
    );
    let view = ok(
        server,
        "service.json",
        &format!(r#"{{"serviceId":"{I1_SERVICE}"}}"#),
    );
    let shown = &view["service"]["instances"][0];
    assert_eq!(shown["status"], "down", "{view}");
    for key in ["creationTime", "renewalTime", "ttl"] {
        let ms = shown["metadata"][key].as_str().unwrap_or_default();
        assert!(ms.parse::<u64>().is_ok(), "metadata.{key} of {shown}");
    }
    assert_eq!(shown["metadata"]["k"], "v", "the registered metadata stays");
    let key = r#"{"instanceId":"10.2.3.4:8080","regionId":"SHA","serviceId":"framework.soa.testservice.v2.testservice"}"#;
    let expected = format!(
        r#"{{"operations":{{"instanceKey":{key},"operations":["pullout"]}},"responseStatus":{SUCCESS}}}"#
    );
    let asked = format!(r#"{{"instanceKey":{key}}}"#);
    assert_body(
        &server.post(&at("instance-operations.json"), &asked),
        &expected,
    );
    let all = server.get(&at("all-instance-operations.json?regionId=SHA"));
    assert_eq!(
        all.json()["allInstanceOperations"][0]["operations"],
        json!(["pullout"])
    );

    assert_body(
        &server.post(&at("operate-instance.json"), &operate_i1(true)),
        WRITTEN,
    );
    assert_eq!(
        discovered(server, I1_SERVICE),
        ["10.2.3.4:8080"],
        "I1 is back"
    );
    let down = server.post(
        &at("instance-down.json"),
        &format!(r#"{{"instance":{I1}}}"#),
    );
    assert_body(
        &down,
        &format!(r#"{{"down":false,"responseStatus":{SUCCESS}}}"#),
    );
    let view = ok(
        server,
        "service.json",
        &format!(r#"{{"serviceId":"{I1_SERVICE}"}}"#),
    );
    assert_eq!(view["service"]["instances"][0]["status"], "up");
    let none = format!(r#"{{"operations":null,"responseStatus":{SUCCESS}}}"#);
    assert_body(&server.post(&at("instance-operations.json"), &asked), &none);
}

#[test]
fn vector_10_pull_out_and_pull_in_an_instance() {
    let server = Server::start(&[]);
    pull_out_and_back_in(&server);
    let services = server.get(&at("services.json"));
    assert_eq!(services.status, 200);
    assert_java_key_order(&services.body);
    let services = services.json();
    assert!(
        services["version"].as_u64().unwrap() > 1_500_000_000_000,
        "now in ms"
    );
    assert_eq!(services["services"][0]["serviceId"], I1_SERVICE);
}

/// A write is answered once every core applied it: the very next lookup, on a new connection
/// (the kernel may hand it to either core), shows it, every time.
#[test]
fn a_write_is_visible_to_the_next_lookup_on_any_connection() {
    let server = Server::start(&[]);
    server.register_ok(&[I1]);
    for round in 0..10 {
        assert_body(
            &server.post(&at("operate-instance.json"), &operate_i1(false)),
            WRITTEN,
        );
        assert!(
            discovered(&server, I1_SERVICE).is_empty(),
            "round {round}: pulled out"
        );
        assert_body(
            &server.post(&at("operate-instance.json"), &operate_i1(true)),
            WRITTEN,
        );
        assert_eq!(
            discovered(&server, I1_SERVICE).len(),
            1,
            "round {round}: back"
        );
    }
}

#[test]
fn a_server_pull_out_hides_every_instance_on_its_ip() {
    let server = Server::start(&[]);
    let service = "management.server.pullout";
    let other = with(&instance(service, "other:80"), "ip", json!("10.9.9.9"));
    server.register_ok(&[instance(service, "a:80"), instance(service, "b:80"), other]);
    let key = r#""serverKey":{"regionId":"SHA","serverId":"10.0.0.1"}"#;
    let pull = |complete: bool| {
        format!(
            r#"{{{key},"operation":"pullout","operationComplete":{complete},"operatorId":"ops"}}"#
        )
    };
    assert_body(
        &server.post(&at("operate-server.json"), &pull(false)),
        WRITTEN,
    );
    assert_eq!(discovered(&server, service), ["other:80"]);
    let down = call(&server, "server-down.json", &format!("{{{key}}}"));
    assert_eq!(down["down"], true);
    let ops = ok(&server, "server-operations.json", &format!("{{{key}}}"));
    assert_eq!(ops["operations"]["serverKey"]["serverId"], "10.0.0.1");
    let all = call(&server, "all-server-operations.json", "null");
    assert_eq!(all["allServerOperations"].as_array().unwrap().len(), 1);
    let view = ok(
        &server,
        "service.json",
        &format!(r#"{{"serviceId":"{service}"}}"#),
    );
    let statuses: Vec<&Value> = view["service"]["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["status"])
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == "down").count(),
        2,
        "{view}"
    );

    assert_body(
        &server.post(&at("operate-server.json"), &pull(true)),
        WRITTEN,
    );
    assert_eq!(discovered(&server, service).len(), 3);
    assert_eq!(
        call(&server, "server-down.json", &format!("{{{key}}}"))["down"],
        false
    );
}

#[test]
fn a_zone_pull_out_hides_the_services_instances_in_the_zone() {
    let server = Server::start(&[]);
    let service = "management.zone.pullout";
    server.register_ok(&[instance(service, "a:80"), instance(service, "b:80")]);
    let key = format!(r#"{{"regionId":"SHA","serviceId":"{service}","zoneId":"SHAJQ"}}"#);
    let operate = |complete: bool| {
        by_operator(&format!(
            r#""zoneOperationsList":[{{"operations":["pullout"],"zoneKey":{key}}}],"operationComplete":{complete}"#
        ))
    };
    assert_body(
        &server.post(&at("zone/operate-zone-operations.json"), &operate(false)),
        WRITTEN,
    );
    assert!(discovered(&server, service).is_empty());
    let asked = format!(r#"{{"zoneKey":{key}}}"#);
    assert_eq!(
        call(&server, "zone/is-zone-down.json", &asked)["down"],
        true
    );
    let expected = format!(
        r#"{{"operations":{{"operations":["pullout"],"zoneKey":{key}}},"responseStatus":{SUCCESS}}}"#
    );
    assert_body(
        &server.post(&at("zone/get-zone-operations.json"), &asked),
        &expected,
    );
    let all = ok(&server, "zone/get-all-zone-operations.json", "{}");
    assert_eq!(all["allZoneOperations"].as_array().unwrap().len(), 1);
    let listed = ok(
        &server,
        "zone/get-zone-operations-list.json",
        r#"{"zoneId":"SHAJQ"}"#,
    );
    assert_eq!(
        listed["zoneOperationsList"][0]["zoneKey"]["serviceId"],
        service
    );
    let none = ok(
        &server,
        "zone/get-zone-operations-list.json",
        r#"{"zoneId":"NOPE"}"#,
    );
    assert_eq!(none["zoneOperationsList"], json!([]));

    assert_body(
        &server.post(&at("zone/operate-zone-operations.json"), &operate(true)),
        WRITTEN,
    );
    assert_eq!(discovered(&server, service).len(), 2);
    assert_eq!(
        call(&server, "zone/is-zone-down.json", &asked)["down"],
        false
    );
}

/// The ids of the rows of `list` in a reply.
fn ids(reply: &Value, list: &str, id: &str) -> Vec<i64> {
    let rows = reply[list].as_array().cloned().unwrap_or_default();
    rows.iter().filter_map(|r| r[id].as_i64()).collect()
}

/// A group of `service` in SHA/SHAJQ named `name`, active; returns its id.
fn insert_group(server: &Server, service: &str, name: &str) -> i64 {
    let group = format!(
        r#""groups":[{{"serviceId":"{service}","regionId":"SHA","zoneId":"SHAJQ","name":"{name}","appId":"app","status":"active"}}]"#
    );
    assert_body(
        &server.post(&at("group/insert-groups.json"), &by_operator(&group)),
        WRITTEN,
    );
    let filter = format!(r#"{{"serviceId":"{service}","name":"{name}"}}"#);
    let found = ok(server, "group/get-groups.json", &filter);
    let expected_key = format!("{service}/sha/shajq/{name}");
    assert_eq!(
        found["groups"][0]["groupKey"],
        expected_key.to_lowercase().as_str()
    );
    ids(&found, "groups", "groupId")[0]
}

/// The first route rule discovery shows for `service`.
fn discovered_rule(server: &Server, service: &str) -> Value {
    looked_up(server, service)["routeRules"][0].clone()
}

/// Groups, a route rule and its group's weight: discovery shows weight 5 until the written
/// weight is released. Used on both stores.
fn weights_wait_for_release(server: &Server) {
    let service = "management.route.weights";
    server.register_ok(&[instance(service, "a:80")]);
    let group_id = insert_group(server, service, "g1");
    let rule = format!(
        r#""routeRules":[{{"serviceId":"{service}","name":"rule1","status":"active","strategy":"weighted-round-robin"}}]"#
    );
    assert_body(
        &server.post(&at("group/insert-route-rules.json"), &by_operator(&rule)),
        WRITTEN,
    );
    let rules = ok(
        server,
        "group/get-route-rules.json",
        &format!(r#"{{"serviceId":"{service}"}}"#),
    );
    let rule_id = ids(&rules, "routeRules", "routeRuleId")[0];
    let weight = format!(
        r#""routeRuleGroups":[{{"routeRuleId":{rule_id},"groupId":{group_id},"unreleasedWeight":50}}]"#
    );
    let written = server.post(
        &at("group/insert-route-rule-groups.json"),
        &by_operator(&weight),
    );
    assert_body(&written, WRITTEN);
    let shown = discovered_rule(server, service);
    assert_eq!(shown["routeId"], "rule1", "{shown}");
    assert_eq!(
        shown["groups"][0]["groupKey"],
        format!("{service}/sha/shajq/g1")
    );
    assert_eq!(shown["groups"][0]["weight"], 5, "unreleased: {shown}");
    let rows = ok(
        server,
        "group/get-route-rule-groups.json",
        &format!(r#"{{"groupId":{group_id}}}"#),
    );
    assert_eq!(rows["routeRuleGroups"][0]["unreleasedWeight"], 50);
    assert_eq!(rows["routeRuleGroups"][0]["weight"], Value::Null);

    let release = server.post(
        &at("group/release-route-rule-groups.json"),
        &by_operator(&weight),
    );
    assert_body(&release, WRITTEN);
    assert_eq!(
        discovered_rule(server, service)["groups"][0]["weight"],
        50,
        "released"
    );
    let all = ok(server, "group/get-all-route-rule-groups.json", "{}");
    assert_eq!(all["routeRuleGroups"][0]["weight"], 50);
}

#[test]
fn route_rule_weights_wait_for_their_release() {
    let server = Server::start(&[]);
    weights_wait_for_release(&server);
    let all = ok(&server, "group/get-all-route-rules.json", "{}");
    assert_eq!(all["routeRules"][0]["strategy"], "weighted-round-robin");
}

#[test]
fn group_tags_and_named_instances_show_in_discovery() {
    let server = Server::start(&[]);
    let service = "management.group.tags";
    server.register_ok(&[instance(service, "a:80")]);
    let group_id = insert_group(&server, service, "tagged");
    let rule = format!(
        r#""routeRule":{{"serviceId":"{service}","name":"rule","status":"active","strategy":"close-by-visit"}},"groups":[{{"serviceId":"{service}","regionId":"SHA","zoneId":"SHAJQ","name":"tagged","appId":"app","status":"active","weight":7}}]"#
    );
    assert_body(
        &server.post(&at("group/create-route-rule.json"), &by_operator(&rule)),
        WRITTEN,
    );
    let tags =
        format!(r#""groupTagsList":[{{"groupId":{group_id},"tags":{{"env":"blue","dc":"a"}}}}]"#);
    assert_body(
        &server.post(&at("group/insert-group-tags.json"), &by_operator(&tags)),
        WRITTEN,
    );
    let named = format!(r#""groupInstances":[{{"groupId":{group_id},"instanceId":"a:80"}}]"#);
    let inserted = server.post(
        &at("group/insert-group-instances.json"),
        &by_operator(&named),
    );
    assert_body(&inserted, WRITTEN);

    let group = discovered_rule(&server, service)["groups"][0].clone();
    assert_eq!(
        group["metadata"],
        json!({"dc": "a", "env": "blue"}),
        "{group}"
    );
    assert_eq!(group["instanceIds"], json!(["a:80"]));
    let expected = format!(
        r#"{{"groupTags":{{"groupId":{group_id},"tags":{{"dc":"a","env":"blue"}}}},"responseStatus":{SUCCESS}}}"#
    );
    let asked = format!(r#"{{"groupId":{group_id}}}"#);
    assert_body(
        &server.post(&at("group/get-group-tags.json"), &asked),
        &expected,
    );
    assert_eq!(
        ok(&server, "group/get-all-group-tags.json", "{}")["allGroupTags"][0]["groupId"],
        group_id
    );
    let members = ok(&server, "group/get-group-instances.json", &asked);
    assert_eq!(members["groupInstances"][0]["instanceId"], "a:80");
    let view = ok(
        &server,
        "service.json",
        &format!(r#"{{"serviceId":"{service}"}}"#),
    );
    let listed = &view["groups"][0];
    assert_eq!(listed["groupKey"], format!("{service}/sha/shajq/tagged"));
    assert_eq!(listed["instanceIds"], json!(["a:80"]));
    assert_eq!(listed["metadata"]["env"], "blue");

    let untag = format!(r#"{{"groupId":{group_id},"tag":"env"}}"#);
    assert_body(
        &server.post(&at("group/delete-group-tags.json"), &untag),
        WRITTEN,
    );
    let group = discovered_rule(&server, service)["groups"][0].clone();
    assert_eq!(group["metadata"], json!({"dc": "a"}));
    let member_ids = ids(&members, "groupInstances", "id");
    let drop_named = by_operator(&format!(r#""groupInstanceIds":{member_ids:?}"#));
    assert_body(
        &server.post(&at("group/delete-group-instances.json"), &drop_named),
        WRITTEN,
    );
    let members = ok(&server, "group/get-group-instances.json", &asked);
    assert_eq!(members["groupInstances"], json!([]));
}

#[test]
fn a_group_operation_pulls_the_group_out() {
    let server = Server::start(&[]);
    let service = "management.group.pullout";
    server.register_ok(&[instance(service, "a:80")]);
    let operate = |complete: bool| {
        format!(
            r#"{{"serviceId":"{service}","regionId":"SHA","zoneId":"SHAJQ","name":"default","appId":"app","status":"active","operation":"pullout","operationComplete":{complete},"operatorId":"ops","token":"t"}}"#
        )
    };
    assert_body(
        &server.post(&at("group/operate-group-operation.json"), &operate(false)),
        WRITTEN,
    );
    assert!(
        discovered(&server, service).is_empty(),
        "the default group is pulled out"
    );
    let all = ok(&server, "group/get-all-group-operations.json", "{}");
    assert_eq!(
        all["allGroupOperations"][0]["operations"],
        json!(["pullout"])
    );
    let group_id = all["allGroupOperations"][0]["groupId"].as_i64().unwrap();
    let one = ok(
        &server,
        "group/get-group-operations.json",
        &format!(r#"{{"groupId":{group_id}}}"#),
    );
    assert_eq!(one["groupOperations"]["groupId"], group_id);

    assert_body(
        &server.post(&at("group/operate-group-operation.json"), &operate(true)),
        WRITTEN,
    );
    assert_eq!(discovered(&server, service), ["a:80"]);
    let list = format!(
        r#""groupOperationsList":[{{"groupId":{group_id},"operations":["again"]}}],"operationComplete":false"#
    );
    let operated = server.post(
        &at("group/operate-group-operations.json"),
        &by_operator(&list),
    );
    assert_body(&operated, WRITTEN);
    assert!(
        discovered(&server, service).is_empty(),
        "pulled out by the list form"
    );
    let none = format!(r#"{{"groupOperations":null,"responseStatus":{SUCCESS}}}"#);
    assert_body(
        &server.post(&at("group/get-group-operations.json"), r#"{"groupId":-1}"#),
        &none,
    );
}

#[test]
fn service_instances_are_listed_as_logic_instances() {
    let server = Server::start(&[]);
    let service = "management.logical";
    server.register_ok(&[instance(service, "a:80")]);
    let logical = format!(
        r#""serviceInstances":[{{"serviceId":"{service}","instanceId":"logic-1","regionId":"SHA","zoneId":"SHAJQ","ip":"10.1.1.1","port":81,"url":"http://10.1.1.1:81/","metadata":{{"m":"1"}}}}]"#
    );
    let inserted = server.post(
        &at("group/insert-service-instances.json"),
        &by_operator(&logical),
    );
    assert_body(&inserted, WRITTEN);
    let shown = looked_up(&server, service)["logicInstances"][0].clone();
    assert_eq!(shown["instanceId"], "logic-1", "{shown}");
    assert_eq!(shown["status"], "up");
    assert_eq!(shown["metadata"], json!({"m": "1"}));
    let rows = ok(
        &server,
        "group/get-service-instances.json",
        &format!(r#"{{"serviceId":"{service}"}}"#),
    );
    assert_eq!(rows["serviceInstances"][0]["port"], 81);
    let ids = ids(&rows, "serviceInstances", "id");
    let delete = by_operator(&format!(r#""serviceInstanceIds":{ids:?}"#));
    assert_body(
        &server.post(&at("group/delete-service-instances.json"), &delete),
        WRITTEN,
    );
    assert_eq!(looked_up(&server, service)["logicInstances"], json!([]));
}

#[test]
fn canary_ips_make_the_canary_route_rule() {
    let server = Server::start(&[]);
    let service = "management.canary";
    server.register_ok(&[instance(service, "a:80")]);
    let update = |ips: &str| {
        by_operator(&format!(
            r#""serviceId":"{service}","appId":"app1","canaryIps":{ips}"#
        ))
    };
    let path = at("canary/update-canary-ips.json");
    assert_body(
        &server.post(&path, &update(r#"["10.0.0.1","10.0.0.2"]"#)),
        WRITTEN,
    );
    let rule = discovered_rule(&server, service);
    assert_eq!(rule["routeId"], "canary-route-rule", "{rule}");
    let group = &rule["groups"][0];
    assert_eq!(group["groupKey"], format!("{service}/sha/canary/app1"));
    assert_eq!(group["weight"], 5);
    let mut named: Vec<String> = serde_json::from_value(group["instanceIds"].clone()).unwrap();
    named.sort();
    assert_eq!(named, ["10.0.0.1", "10.0.0.2"]);

    assert_body(&server.post(&path, &update(r#"["10.0.0.3"]"#)), WRITTEN);
    let group = &discovered_rule(&server, service)["groups"][0];
    assert_eq!(
        group["instanceIds"],
        json!(["10.0.0.3"]),
        "exactly the ips sent"
    );
}

/// The logs a run of writes leaves: each query names one row written, by a filter.
fn logs_record_every_write(server: &Server) {
    let service = "management.logs";
    server.register_ok(&[instance(service, "a:80")]);
    let pull = format!(
        r#"{{"instanceKey":{{"regionId":"SHA","serviceId":"{service}","instanceId":"a:80"}},"operation":"pullout","operationComplete":false,"operatorId":"ops","token":"t"}}"#
    );
    assert_body(&server.post(&at("operate-instance.json"), &pull), WRITTEN);
    let server_pull = r#"{"serverKey":{"regionId":"SHA","serverId":"10.7.7.7"},"operation":"pullout","operatorId":"ops"}"#;
    assert_body(
        &server.post(&at("operate-server.json"), server_pull),
        WRITTEN,
    );
    let zone = format!(
        r#""zoneOperationsList":[{{"operations":["pullout"],"zoneKey":{{"regionId":"SHA","serviceId":"{service}","zoneId":"Z9"}}}}]"#
    );
    let zoned = server.post(
        &at("zone/operate-zone-operations.json"),
        &by_operator(&zone),
    );
    assert_body(&zoned, WRITTEN);
    let group_id = insert_group(server, service, "logged");
    let rule =
        format!(r#""routeRules":[{{"serviceId":"{service}","name":"logged","status":"active"}}]"#);
    assert_body(
        &server.post(&at("group/insert-route-rules.json"), &by_operator(&rule)),
        WRITTEN,
    );
    let rules = ok(
        server,
        "group/get-route-rules.json",
        &format!(r#"{{"serviceId":"{service}"}}"#),
    );
    let rule_id = ids(&rules, "routeRules", "routeRuleId")[0];
    let weight = format!(
        r#""routeRuleGroups":[{{"routeRuleId":{rule_id},"groupId":{group_id},"unreleasedWeight":9}}]"#
    );
    let weighted = server.post(
        &at("group/insert-route-rule-groups.json"),
        &by_operator(&weight),
    );
    assert_body(&weighted, WRITTEN);
    let ops =
        format!(r#""groupOperationsList":[{{"groupId":{group_id},"operations":["pullout"]}}]"#);
    let operated = server.post(
        &at("group/operate-group-operations.json"),
        &by_operator(&ops),
    );
    assert_body(&operated, WRITTEN);
    let named = format!(r#""groupInstances":[{{"groupId":{group_id},"instanceId":"a:80"}}]"#);
    let inserted = server.post(
        &at("group/insert-group-instances.json"),
        &by_operator(&named),
    );
    assert_body(&inserted, WRITTEN);
    let logical =
        format!(r#""serviceInstances":[{{"serviceId":"{service}","instanceId":"logic-9"}}]"#);
    let inserted = server.post(
        &at("group/insert-service-instances.json"),
        &by_operator(&logical),
    );
    assert_body(&inserted, WRITTEN);

    let queries = [
        (
            "instance-operation-logs.json",
            format!(r#"{{"serviceId":"{service}","complete":false}}"#),
            "instanceId",
            json!("a:80"),
        ),
        (
            "server-operation-logs.json",
            r#"{"serverId":"10.7.7.7"}"#.to_string(),
            "operatorId",
            json!("ops"),
        ),
        (
            "group-operation-logs.json",
            format!(r#"{{"groupId":{group_id}}}"#),
            "operatorId",
            json!("ops"),
        ),
        (
            "group-logs.json",
            format!(r#"{{"serviceId":"{service}","name":"logged"}}"#),
            "groupId",
            json!(group_id),
        ),
        (
            "route-rule-logs.json",
            format!(r#"{{"serviceId":"{service}","name":"logged"}}"#),
            "routeRuleId",
            json!(rule_id),
        ),
        (
            "route-rule-group-logs.json",
            format!(r#"{{"routeRuleId":{rule_id}}}"#),
            "unreleasedWeight",
            json!(9),
        ),
        (
            "zone-operation-logs.json",
            r#"{"zoneId":"Z9"}"#.to_string(),
            "serviceId",
            json!(service),
        ),
        (
            "group-instance-logs.json",
            format!(r#"{{"groupId":{group_id},"instanceId":"a:80"}}"#),
            "operatorId",
            json!("ops"),
        ),
        (
            "service-instance-logs.json",
            format!(r#"{{"serviceId":"{service}"}}"#),
            "instanceId",
            json!("logic-9"),
        ),
    ];
    for (path, filter, field, value) in queries {
        let reply = ok(server, &format!("log/{path}"), &filter);
        let logs = reply["logs"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: {reply}"));
        assert_eq!(logs.len(), 1, "{path} {filter}: {reply}");
        assert_eq!(logs[0][field], value, "{path}: {reply}");
        assert!(logs[0]["createTime"].as_i64().is_some(), "{path}: {reply}");
    }
    let none = ok(
        server,
        "log/instance-operation-logs.json",
        r#"{"operatorId":"nobody"}"#,
    );
    assert_eq!(none["logs"], json!([]));
}

#[test]
fn each_of_the_nine_logs_returns_the_rows_written() {
    let server = Server::start(&[]);
    logs_record_every_write(&server);
}

#[test]
fn refusals_word_for_word() {
    let server = Server::start(&[]);
    let refused = |path: &str, body: &str, expected: String| {
        assert_body(&server.post(&at(path), body), &expected);
    };
    let status_only =
        |code, message| format!(r#"{{"responseStatus":{}}}"#, fail_status(code, message));
    let without_operator = operate_i1(false).replace(r#","operatorId":"ops""#, "");
    refused(
        "operate-instance.json",
        &without_operator,
        status_only("bad-request", "operatorId is null or empty"),
    );
    let blank_region = operate_i1(false).replace(r#""regionId":"SHA""#, r#""regionId":"  ""#);
    refused(
        "operate-instance.json",
        &blank_region,
        status_only("bad-request", "regionId is null or empty"),
    );
    refused(
        "operate-server.json",
        r#"{"operation":"x","operatorId":"o"}"#,
        status_only("bad-request", "regionId is null or empty"),
    );
    refused(
        "group/insert-groups.json",
        "null",
        status_only("bad-request", "request is null"),
    );
    refused(
        "group/insert-groups.json",
        r#"{"groups":[]}"#,
        status_only("internal-service-error", "insert groups failed."),
    );
    refused(
        "group/release-route-rule-groups.json",
        r#"{"operation":"x","operatorId":"o"}"#,
        status_only("internal-service-error", "get route-rule-groups failed."),
    );
    refused(
        "canary/update-canary-ips.json",
        &by_operator(r#""appId":"a""#),
        status_only("internal-service-error", "update canary ips"),
    );
    refused(
        "instance-operations.json",
        "{}",
        format!(
            r#"{{"operations":null,"responseStatus":{}}}"#,
            fail_status("bad-request", "request.instanceKey is null")
        ),
    );
    refused(
        "server-down.json",
        "{}",
        format!(
            r#"{{"down":false,"responseStatus":{}}}"#,
            fail_status("bad-request", "request.serverKey null")
        ),
    );
    refused(
        "instance-down.json",
        "null",
        format!(
            r#"{{"down":false,"responseStatus":{}}}"#,
            fail_status("bad-request", "request is null")
        ),
    );
    refused(
        "service.json",
        r#"{"serviceId":" "}"#,
        format!(
            r#"{{"groups":null,"responseStatus":{},"service":null}}"#,
            fail_status(
                "bad-request",
                "Request is null or request.servcieId is null."
            )
        ),
    );
    refused(
        "group/get-groups.json",
        "null",
        format!(
            r#"{{"groups":null,"responseStatus":{}}}"#,
            fail_status("bad-request", "request is null")
        ),
    );
    refused(
        "log/group-logs.json",
        "null",
        format!(
            r#"{{"logs":null,"responseStatus":{}}}"#,
            fail_status("bad-request", "request is null")
        ),
    );
    // The store's own check of a route rule: internal-service-error, saying what is missing.
    let nameless = by_operator(r#""routeRule":{"serviceId":"s","status":"active"},"groups":[]"#);
    let reply = call(&server, "group/create-route-rule.json", &nameless);
    assert_eq!(
        status(&reply),
        (
            "internal-service-error".into(),
            "routeRule.name is null or empty".into()
        )
    );
    // Group tags skip the operator check.
    assert_body(
        &server.post(&at("group/delete-group-tags.json"), r#"{"groupId":12345}"#),
        WRITTEN,
    );
    // Not JSON, and not the path's methods: the framework's answers.
    assert_eq!(server.post(&at("group/get-groups.json"), "{").status, 400);
    assert_eq!(
        server
            .post(&at("group/insert-groups.json"), r#"{"groups":{}}"#)
            .status,
        400
    );
    assert_eq!(server.get(&at("operate-instance.json")).status, 405);
    assert_eq!(server.get(&at("services.json")).status, 200);
    assert_eq!(server.get(&at("no-such.json")).status, 404);
}

/// POSTs `body` with `headers` on a connection of its own.
fn post_with(server: &Server, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut headers = headers.to_vec();
    headers.push(("Content-Type", "application/json"));
    let mut client = server.connect();
    client.send(&request("POST", &at(path), &headers, body.as_bytes()));
    client.read_reply()
}

#[test]
fn a_management_token_guards_every_write() {
    let server = Server::start(&["--management-token", "s3cret"]);
    server.register_ok(&[I1]);
    let refused = format!(
        r#"{{"responseStatus":{}}}"#,
        fail_status("no-permission", "management token missing or wrong")
    );
    let without = operate_i1(false).replace(r#","token":"t""#, "");
    assert_body(
        &post_with(&server, "operate-instance.json", &[], &without),
        &refused,
    );
    let wrong = post_with(
        &server,
        "operate-instance.json",
        &[("Authorization", "Bearer nope")],
        &without,
    );
    assert_body(&wrong, &refused);
    assert_body(
        &post_with(&server, "operate-instance.json", &[], &operate_i1(false)),
        &refused,
    );
    let groups = by_operator(r#""groups":[]"#);
    assert_body(
        &post_with(&server, "group/insert-groups.json", &[], &groups),
        &refused,
    );

    let bearer = post_with(
        &server,
        "operate-instance.json",
        &[("Authorization", "Bearer s3cret")],
        &without,
    );
    assert_body(&bearer, WRITTEN);
    assert!(discovered(&server, I1_SERVICE).is_empty());
    let in_body = operate_i1(true).replace(r#""token":"t""#, r#""token":"s3cret""#);
    assert_body(
        &post_with(&server, "operate-instance.json", &[], &in_body),
        WRITTEN,
    );
    assert_eq!(discovered(&server, I1_SERVICE).len(), 1);

    // Reads and logs stay open, and the logs do not keep the token.
    let logs = call(&server, "log/instance-operation-logs.json", "{}");
    let tokens: Vec<&Value> = logs["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["token"])
        .collect();
    assert_eq!(tokens.len(), 2, "{logs}");
    assert!(tokens.iter().all(|t| *t != "s3cret"), "{logs}");
    ok(&server, "group/get-all-groups.json", "{}");
}

#[test]
fn get_groups_is_rate_limited_at_the_31st_call_in_10_s() {
    let server = Server::start(&[]);
    // One connection stays on one core, whose share of the budget is then the whole of it.
    let mut client = server.connect();
    for call in 1..=30 {
        let reply = client.post(&at("group/get-groups.json"), "{}");
        assert_eq!(
            reply.json()["responseStatus"]["errorCode"],
            "success",
            "call {call}"
        );
    }
    let limited = client.post(&at("group/get-groups.json"), "{}");
    let expected = format!(
        r#"{{"groups":null,"responseStatus":{}}}"#,
        fail_status("rate-limited", "Request is rate limited.")
    );
    assert_body(&limited, &expected);
    // Other operations of the limiter count apart.
    let rules = client.post(&at("group/get-route-rules.json"), "{}");
    assert_eq!(rules.json()["responseStatus"]["errorCode"], "success");
}

/// The core flows against PostgreSQL, a database of their own; skipped without a server (a
/// failure under CI).
#[test]
fn core_flows_on_postgresql() {
    let Some(database) = TestDatabase::create("core_flows_on_postgresql") else {
        return;
    };
    let url = database.url();
    let server = Server::start(&["--management-db", &url]);
    pull_out_and_back_in(&server);
    weights_wait_for_release(&server);
    logs_record_every_write(&server);
}
