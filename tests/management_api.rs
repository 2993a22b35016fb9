//! The management endpoints over real sockets (Java's §4.6–§4.10): pull-outs of instances,
//! servers, zones and groups and how discovery sees them, groups, tags, route rules and their
//! weights, logical instances, canary ips, the nine operation logs, Java's refusals word for
//! word, the management token, the group rate limiter, and that a write is answered only once
//! every connection sees it.
//!
//! Every family runs twice, against the default embedded store and against PostgreSQL (when
//! `ARTEMIS_TEST_POSTGRES` names a server); the token, the limiter and the refusals do not
//! depend on the store and run once.

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

/// `{"serviceId":"<service>"}`.
fn of_service(service: &str) -> String {
    format!(r#"{{"serviceId":"{service}"}}"#)
}

/// Asserts that POSTing `body` to a management path answers exactly `expected`.
fn answers(server: &Server, path: &str, body: &str, expected: &str) {
    assert_body(&server.post(&at(path), body), expected);
}

/// Asserts that the write `body` to a management path went through.
fn written(server: &Server, path: &str, body: &str) {
    answers(server, path, body, WRITTEN);
}

/// [`written`], the operator's context around `fields`.
fn written_by_operator(server: &Server, path: &str, fields: &str) {
    written(server, path, &by_operator(fields));
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
    let code = &reply["responseStatus"]["errorCode"];
    assert_eq!(code, "success", "{path}: {reply}");
    reply
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
    let id = |i: &Value| i["instanceId"].as_str().unwrap_or_default().to_string();
    ids.iter().map(id).collect()
}

/// The first route rule discovery shows for `service`.
fn discovered_rule(server: &Server, service: &str) -> Value {
    looked_up(server, service)["routeRules"][0].clone()
}

/// The ids of the rows of `list` in a reply.
fn ids(reply: &Value, list: &str, id: &str) -> Vec<i64> {
    let rows = reply[list].as_array().cloned().unwrap_or_default();
    rows.iter().filter_map(|r| r[id].as_i64()).collect()
}

/// The body of an `operate-instance.json` on I1 (vector 10).
fn operate_i1(complete: bool) -> String {
    format!(
        r#"{{"instanceKey":{{"regionId":"SHA","serviceId":"{I1_SERVICE}","instanceId":"10.2.3.4:8080"}},"operation":"pullout","operationComplete":{complete},"operatorId":"ops","token":"t"}}"#
    )
}

/// `{"down":<down>,"responseStatus":SUCCESS}`.
fn down_reply(down: bool) -> String {
    format!(r#"{{"down":{down},"responseStatus":{SUCCESS}}}"#)
}

/// Vector 10, and what it leaves in the management views. Used on both stores.
fn pull_out_and_back_in(server: &Server) {
    server.register_ok(&[I1]);
    let i1 = format!(r#"{{"instance":{I1}}}"#);
    written(server, "operate-instance.json", &operate_i1(false));
    assert!(discovered(server, I1_SERVICE).is_empty(), "pulled out");
    answers(server, "instance-down.json", &i1, &down_reply(true));
    let view = ok(server, "service.json", &of_service(I1_SERVICE));
    let shown = &view["service"]["instances"][0];
    assert_eq!(shown["status"], "down", "{view}");
    for key in ["creationTime", "renewalTime", "ttl"] {
        let ms = shown["metadata"][key].as_str().unwrap_or_default();
        assert!(ms.parse::<u64>().is_ok(), "metadata.{key} of {shown}");
    }
    assert_eq!(shown["metadata"]["k"], "v", "the registered metadata stays");
    let key =
        format!(r#"{{"instanceId":"10.2.3.4:8080","regionId":"SHA","serviceId":"{I1_SERVICE}"}}"#);
    let asked = format!(r#"{{"instanceKey":{key}}}"#);
    let expected = format!(
        r#"{{"operations":{{"instanceKey":{key},"operations":["pullout"]}},"responseStatus":{SUCCESS}}}"#
    );
    answers(server, "instance-operations.json", &asked, &expected);
    let all = server.get(&at("all-instance-operations.json?regionId=SHA"));
    let operations = &all.json()["allInstanceOperations"][0]["operations"];
    assert_eq!(operations, &json!(["pullout"]));

    written(server, "operate-instance.json", &operate_i1(true));
    assert_eq!(discovered(server, I1_SERVICE), ["10.2.3.4:8080"], "back");
    answers(server, "instance-down.json", &i1, &down_reply(false));
    let view = ok(server, "service.json", &of_service(I1_SERVICE));
    assert_eq!(view["service"]["instances"][0]["status"], "up");
    let none = format!(r#"{{"operations":null,"responseStatus":{SUCCESS}}}"#);
    answers(server, "instance-operations.json", &asked, &none);
}

fn vector_10_pull_out_and_pull_in_an_instance(server: &Server) {
    pull_out_and_back_in(server);
    let services = server.get(&at("services.json"));
    assert_eq!(services.status, 200);
    assert_java_key_order(&services.body);
    let services = services.json();
    let version = services["version"].as_u64().unwrap();
    assert!(version > 1_500_000_000_000, "now, in ms");
    assert_eq!(services["services"][0]["serviceId"], I1_SERVICE);
}

/// A write is answered once every core applied it: the very next lookup, on a new connection
/// (the kernel may hand it to either core), shows it, every time.
fn a_write_is_visible_to_the_next_lookup_on_any_connection(server: &Server) {
    server.register_ok(&[I1]);
    for round in 0..10 {
        written(server, "operate-instance.json", &operate_i1(false));
        assert!(discovered(server, I1_SERVICE).is_empty(), "round {round}");
        written(server, "operate-instance.json", &operate_i1(true));
        assert_eq!(discovered(server, I1_SERVICE).len(), 1, "round {round}");
    }
}

fn a_server_pull_out_hides_every_instance_on_its_ip(server: &Server) {
    let service = "management.server.pullout";
    let other = with(&instance(service, "other:80"), "ip", json!("10.9.9.9"));
    server.register_ok(&[instance(service, "a:80"), instance(service, "b:80"), other]);
    let key = r#""serverKey":{"regionId":"SHA","serverId":"10.0.0.1"}"#;
    let asked = format!("{{{key}}}");
    let pull = |complete: bool| {
        format!(
            r#"{{{key},"operation":"pullout","operationComplete":{complete},"operatorId":"ops"}}"#
        )
    };
    written(server, "operate-server.json", &pull(false));
    assert_eq!(discovered(server, service), ["other:80"]);
    answers(server, "server-down.json", &asked, &down_reply(true));
    let ops = ok(server, "server-operations.json", &asked);
    assert_eq!(ops["operations"]["serverKey"]["serverId"], "10.0.0.1");
    let all = call(server, "all-server-operations.json", "null");
    assert_eq!(all["allServerOperations"].as_array().unwrap().len(), 1);
    let view = ok(server, "service.json", &of_service(service));
    let shown = view["service"]["instances"].as_array().unwrap().clone();
    let pulled_out = shown.iter().filter(|i| i["status"] == "down").count();
    assert_eq!(pulled_out, 2, "{view}");

    written(server, "operate-server.json", &pull(true));
    assert_eq!(discovered(server, service).len(), 3);
    answers(server, "server-down.json", &asked, &down_reply(false));
}

fn a_zone_pull_out_hides_the_services_instances_in_the_zone(server: &Server) {
    let service = "management.zone.pullout";
    server.register_ok(&[instance(service, "a:80"), instance(service, "b:80")]);
    let key = format!(r#"{{"regionId":"SHA","serviceId":"{service}","zoneId":"SHAJQ"}}"#);
    let operate = |complete: bool| {
        format!(
            r#""zoneOperationsList":[{{"operations":["pullout"],"zoneKey":{key}}}],"operationComplete":{complete}"#
        )
    };
    let asked = format!(r#"{{"zoneKey":{key}}}"#);
    written_by_operator(server, "zone/operate-zone-operations.json", &operate(false));
    assert!(discovered(server, service).is_empty());
    answers(server, "zone/is-zone-down.json", &asked, &down_reply(true));
    let expected = format!(
        r#"{{"operations":{{"operations":["pullout"],"zoneKey":{key}}},"responseStatus":{SUCCESS}}}"#
    );
    answers(server, "zone/get-zone-operations.json", &asked, &expected);
    let all = ok(server, "zone/get-all-zone-operations.json", "{}");
    assert_eq!(all["allZoneOperations"].as_array().unwrap().len(), 1);
    let list = "zone/get-zone-operations-list.json";
    let listed = ok(server, list, r#"{"zoneId":"SHAJQ"}"#);
    assert_eq!(
        listed["zoneOperationsList"][0]["zoneKey"]["serviceId"],
        service
    );
    let none = ok(server, list, r#"{"zoneId":"NOPE"}"#);
    assert_eq!(none["zoneOperationsList"], json!([]));

    written_by_operator(server, "zone/operate-zone-operations.json", &operate(true));
    assert_eq!(discovered(server, service).len(), 2);
    answers(server, "zone/is-zone-down.json", &asked, &down_reply(false));
}

/// A group of `service` in SHA/SHAJQ named `name`, active; returns its id.
fn insert_group(server: &Server, service: &str, name: &str) -> i64 {
    let group = format!(
        r#""groups":[{{"serviceId":"{service}","regionId":"SHA","zoneId":"SHAJQ","name":"{name}","appId":"app","status":"active"}}]"#
    );
    written_by_operator(server, "group/insert-groups.json", &group);
    let filter = format!(r#"{{"serviceId":"{service}","name":"{name}"}}"#);
    let found = ok(server, "group/get-groups.json", &filter);
    let key = format!("{service}/sha/shajq/{name}").to_lowercase();
    assert_eq!(found["groups"][0]["groupKey"], key.as_str());
    ids(&found, "groups", "groupId")[0]
}

/// An active route rule of `service` named `name`, with the group `group_id` in it at the
/// unreleased weight `weight`; returns the rule's id.
fn insert_rule(server: &Server, service: &str, name: &str, group_id: i64, weight: i64) -> i64 {
    let rule = format!(
        r#""routeRules":[{{"serviceId":"{service}","name":"{name}","status":"active","strategy":"weighted-round-robin"}}]"#
    );
    written_by_operator(server, "group/insert-route-rules.json", &rule);
    let filter = format!(r#"{{"serviceId":"{service}","name":"{name}"}}"#);
    let rules = ok(server, "group/get-route-rules.json", &filter);
    let rule_id = ids(&rules, "routeRules", "routeRuleId")[0];
    let path = "group/insert-route-rule-groups.json";
    written_by_operator(server, path, &rule_group(rule_id, group_id, weight));
    rule_id
}

/// `"routeRuleGroups":[..]` of one group in one rule at the unreleased weight `weight`.
fn rule_group(rule_id: i64, group_id: i64, weight: i64) -> String {
    format!(
        r#""routeRuleGroups":[{{"routeRuleId":{rule_id},"groupId":{group_id},"unreleasedWeight":{weight}}}]"#
    )
}

/// Groups, a route rule and its group's weight: discovery shows weight 5 until the written
/// weight is released. Used on both stores.
fn weights_wait_for_release(server: &Server) {
    let service = "management.route.weights";
    server.register_ok(&[instance(service, "a:80")]);
    let group_id = insert_group(server, service, "g1");
    let rule_id = insert_rule(server, service, "rule1", group_id, 50);
    let shown = discovered_rule(server, service);
    assert_eq!(shown["routeId"], "rule1", "{shown}");
    assert_eq!(shown["strategy"], "weighted-round-robin", "{shown}");
    assert_eq!(
        shown["groups"][0]["groupKey"],
        format!("{service}/sha/shajq/g1")
    );
    assert_eq!(shown["groups"][0]["weight"], 5, "unreleased: {shown}");
    let filter = format!(r#"{{"groupId":{group_id}}}"#);
    let rows = ok(server, "group/get-route-rule-groups.json", &filter);
    assert_eq!(rows["routeRuleGroups"][0]["unreleasedWeight"], 50);
    assert_eq!(rows["routeRuleGroups"][0]["weight"], Value::Null);

    let release = rule_group(rule_id, group_id, 50);
    written_by_operator(server, "group/release-route-rule-groups.json", &release);
    let shown = discovered_rule(server, service);
    assert_eq!(shown["groups"][0]["weight"], 50, "released: {shown}");
    let all = ok(server, "group/get-all-route-rule-groups.json", "{}");
    assert_eq!(all["routeRuleGroups"][0]["weight"], 50);
}

fn route_rule_weights_wait_for_their_release(server: &Server) {
    weights_wait_for_release(server);
    let all = ok(server, "group/get-all-route-rules.json", "{}");
    assert_eq!(all["routeRules"][0]["strategy"], "weighted-round-robin");
}

fn group_tags_and_named_instances_show_in_discovery(server: &Server) {
    let service = "management.group.tags";
    server.register_ok(&[instance(service, "a:80")]);
    let group_id = insert_group(server, service, "tagged");
    let rule = format!(
        r#""routeRule":{{"serviceId":"{service}","name":"rule","status":"active","strategy":"close-by-visit"}},"groups":[{{"serviceId":"{service}","regionId":"SHA","zoneId":"SHAJQ","name":"tagged","appId":"app","status":"active","weight":7}}]"#
    );
    written_by_operator(server, "group/create-route-rule.json", &rule);
    let tags =
        format!(r#""groupTagsList":[{{"groupId":{group_id},"tags":{{"env":"blue","dc":"a"}}}}]"#);
    written_by_operator(server, "group/insert-group-tags.json", &tags);
    let named = format!(r#""groupInstances":[{{"groupId":{group_id},"instanceId":"a:80"}}]"#);
    written_by_operator(server, "group/insert-group-instances.json", &named);

    let group = discovered_rule(server, service)["groups"][0].clone();
    assert_eq!(
        group["metadata"],
        json!({"dc": "a", "env": "blue"}),
        "{group}"
    );
    assert_eq!(group["instanceIds"], json!(["a:80"]));
    let asked = format!(r#"{{"groupId":{group_id}}}"#);
    let expected = format!(
        r#"{{"groupTags":{{"groupId":{group_id},"tags":{{"dc":"a","env":"blue"}}}},"responseStatus":{SUCCESS}}}"#
    );
    answers(server, "group/get-group-tags.json", &asked, &expected);
    let all = ok(server, "group/get-all-group-tags.json", "{}");
    assert_eq!(all["allGroupTags"][0]["groupId"], group_id);
    let members = ok(server, "group/get-group-instances.json", &asked);
    assert_eq!(members["groupInstances"][0]["instanceId"], "a:80");
    let view = ok(server, "service.json", &of_service(service));
    let listed = &view["groups"][0];
    assert_eq!(listed["groupKey"], format!("{service}/sha/shajq/tagged"));
    assert_eq!(listed["instanceIds"], json!(["a:80"]));
    assert_eq!(listed["metadata"]["env"], "blue");

    let untag = format!(r#"{{"groupId":{group_id},"tag":"env"}}"#);
    written(server, "group/delete-group-tags.json", &untag);
    let group = discovered_rule(server, service)["groups"][0].clone();
    assert_eq!(group["metadata"], json!({"dc": "a"}));
    let member_ids = ids(&members, "groupInstances", "id");
    let unnamed = format!(r#""groupInstanceIds":{member_ids:?}"#);
    written_by_operator(server, "group/delete-group-instances.json", &unnamed);
    let members = ok(server, "group/get-group-instances.json", &asked);
    assert_eq!(members["groupInstances"], json!([]));
}

fn a_group_operation_pulls_the_group_out(server: &Server) {
    let service = "management.group.pullout";
    server.register_ok(&[instance(service, "a:80")]);
    let operate = |complete: bool| {
        format!(
            r#"{{"serviceId":"{service}","regionId":"SHA","zoneId":"SHAJQ","name":"default","appId":"app","status":"active","operation":"pullout","operationComplete":{complete},"operatorId":"ops","token":"t"}}"#
        )
    };
    written(
        server,
        "group/operate-group-operation.json",
        &operate(false),
    );
    assert!(
        discovered(server, service).is_empty(),
        "the default group is out"
    );
    let all = ok(server, "group/get-all-group-operations.json", "{}");
    assert_eq!(
        all["allGroupOperations"][0]["operations"],
        json!(["pullout"])
    );
    let group_id = all["allGroupOperations"][0]["groupId"].as_i64().unwrap();
    let asked = format!(r#"{{"groupId":{group_id}}}"#);
    let one = ok(server, "group/get-group-operations.json", &asked);
    assert_eq!(one["groupOperations"]["groupId"], group_id);

    written(server, "group/operate-group-operation.json", &operate(true));
    assert_eq!(discovered(server, service), ["a:80"]);
    let list = format!(
        r#""groupOperationsList":[{{"groupId":{group_id},"operations":["again"]}}],"operationComplete":false"#
    );
    written_by_operator(server, "group/operate-group-operations.json", &list);
    assert!(
        discovered(server, service).is_empty(),
        "out by the list form"
    );
    let none = format!(r#"{{"groupOperations":null,"responseStatus":{SUCCESS}}}"#);
    answers(
        server,
        "group/get-group-operations.json",
        r#"{"groupId":-1}"#,
        &none,
    );
}

fn service_instances_are_listed_as_logic_instances(server: &Server) {
    let service = "management.logical";
    server.register_ok(&[instance(service, "a:80")]);
    let logical = format!(
        r#""serviceInstances":[{{"serviceId":"{service}","instanceId":"logic-1","regionId":"SHA","zoneId":"SHAJQ","ip":"10.1.1.1","port":81,"url":"http://10.1.1.1:81/","metadata":{{"m":"1"}}}}]"#
    );
    written_by_operator(server, "group/insert-service-instances.json", &logical);
    let shown = looked_up(server, service)["logicInstances"][0].clone();
    assert_eq!(shown["instanceId"], "logic-1", "{shown}");
    assert_eq!(shown["status"], "up");
    assert_eq!(shown["metadata"], json!({"m": "1"}));
    let rows = ok(
        server,
        "group/get-service-instances.json",
        &of_service(service),
    );
    assert_eq!(rows["serviceInstances"][0]["port"], 81);
    let ids = ids(&rows, "serviceInstances", "id");
    let delete = format!(r#""serviceInstanceIds":{ids:?}"#);
    written_by_operator(server, "group/delete-service-instances.json", &delete);
    assert_eq!(looked_up(server, service)["logicInstances"], json!([]));
}

fn canary_ips_make_the_canary_route_rule(server: &Server) {
    let service = "management.canary";
    server.register_ok(&[instance(service, "a:80")]);
    let update = |ips: &str| format!(r#""serviceId":"{service}","appId":"app1","canaryIps":{ips}"#);
    let path = "canary/update-canary-ips.json";
    written_by_operator(server, path, &update(r#"["10.0.0.1","10.0.0.2"]"#));
    let rule = discovered_rule(server, service);
    assert_eq!(rule["routeId"], "canary-route-rule", "{rule}");
    let group = &rule["groups"][0];
    assert_eq!(group["groupKey"], format!("{service}/sha/canary/app1"));
    assert_eq!(group["weight"], 5);
    let mut named: Vec<String> = serde_json::from_value(group["instanceIds"].clone()).unwrap();
    named.sort();
    assert_eq!(named, ["10.0.0.1", "10.0.0.2"]);

    written_by_operator(server, path, &update(r#"["10.0.0.3"]"#));
    let group = &discovered_rule(server, service)["groups"][0];
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
    written(server, "operate-instance.json", &pull);
    let pull_server = r#"{"serverKey":{"regionId":"SHA","serverId":"10.7.7.7"},"operation":"pullout","operatorId":"ops"}"#;
    written(server, "operate-server.json", pull_server);
    let zone = format!(
        r#""zoneOperationsList":[{{"operations":["pullout"],"zoneKey":{{"regionId":"SHA","serviceId":"{service}","zoneId":"Z9"}}}}]"#
    );
    written_by_operator(server, "zone/operate-zone-operations.json", &zone);
    let group_id = insert_group(server, service, "logged");
    let rule_id = insert_rule(server, service, "logged", group_id, 9);
    let ops = format!(r#""groupOperationsList":[{{"groupId":{group_id},"operations":["x"]}}]"#);
    written_by_operator(server, "group/operate-group-operations.json", &ops);
    let named = format!(r#""groupInstances":[{{"groupId":{group_id},"instanceId":"a:80"}}]"#);
    written_by_operator(server, "group/insert-group-instances.json", &named);
    let logical =
        format!(r#""serviceInstances":[{{"serviceId":"{service}","instanceId":"logic-9"}}]"#);
    written_by_operator(server, "group/insert-service-instances.json", &logical);

    let by_service = format!(r#"{{"serviceId":"{service}","name":"logged"}}"#);
    let by_group = format!(r#"{{"groupId":{group_id},"instanceId":"a:80"}}"#);
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
            by_service.clone(),
            "groupId",
            json!(group_id),
        ),
        (
            "route-rule-logs.json",
            by_service,
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
            by_group,
            "operatorId",
            json!("ops"),
        ),
        (
            "service-instance-logs.json",
            of_service(service),
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

fn each_of_the_nine_logs_returns_the_rows_written(server: &Server) {
    logs_record_every_write(server);
}

/// `{"responseStatus":..}` failed with `code` and `message`.
fn refused(code: &str, message: &str) -> String {
    format!(r#"{{"responseStatus":{}}}"#, fail_status(code, message))
}

/// [`refused`], beside the data field `field` (`null`, or `false` for `down`).
fn refused_beside(field: &str, code: &str, message: &str) -> String {
    let empty = if field == "down" { "false" } else { "null" };
    format!(
        r#"{{"{field}":{empty},"responseStatus":{}}}"#,
        fail_status(code, message)
    )
}

#[test]
fn refusals_word_for_word() {
    let server = Server::start(&[]);
    let bad = "bad-request";
    let internal = "internal-service-error";
    let no_operator = operate_i1(false).replace(r#","operatorId":"ops""#, "");
    let operator_missing = refused(bad, "operatorId is null or empty");
    answers(
        &server,
        "operate-instance.json",
        &no_operator,
        &operator_missing,
    );
    let blank_region = operate_i1(false).replace(r#""regionId":"SHA""#, r#""regionId":"  ""#);
    let region_missing = refused(bad, "regionId is null or empty");
    answers(
        &server,
        "operate-instance.json",
        &blank_region,
        &region_missing,
    );
    let keyless = r#"{"operation":"x","operatorId":"o"}"#;
    answers(&server, "operate-server.json", keyless, &region_missing);
    answers(
        &server,
        "group/insert-groups.json",
        "null",
        &refused(bad, "request is null"),
    );
    let no_token = refused(internal, "insert groups failed.");
    answers(
        &server,
        "group/insert-groups.json",
        r#"{"groups":[]}"#,
        &no_token,
    );
    let release = "group/release-route-rule-groups.json";
    answers(
        &server,
        release,
        keyless,
        &refused(internal, "get route-rule-groups failed."),
    );
    let serviceless = by_operator(r#""appId":"a""#);
    let canary = refused(internal, "update canary ips");
    answers(
        &server,
        "canary/update-canary-ips.json",
        &serviceless,
        &canary,
    );
    let no_key = refused_beside("operations", bad, "request.instanceKey is null");
    answers(&server, "instance-operations.json", "{}", &no_key);
    let no_server = refused_beside("down", bad, "request.serverKey null");
    answers(&server, "server-down.json", "{}", &no_server);
    let no_request = refused_beside("down", bad, "request is null");
    answers(&server, "instance-down.json", "null", &no_request);
    let no_service = format!(
        r#"{{"groups":null,"responseStatus":{},"service":null}}"#,
        fail_status(bad, "Request is null or request.servcieId is null.")
    );
    answers(&server, "service.json", r#"{"serviceId":" "}"#, &no_service);
    let no_groups = refused_beside("groups", bad, "request is null");
    answers(&server, "group/get-groups.json", "null", &no_groups);
    let no_logs = refused_beside("logs", bad, "request is null");
    answers(&server, "log/group-logs.json", "null", &no_logs);
    // The store's own check of a route rule: internal-service-error, saying what is missing.
    let nameless = by_operator(r#""routeRule":{"serviceId":"s","status":"active"},"groups":[]"#);
    let unnamed = refused(internal, "routeRule.name is null or empty");
    answers(&server, "group/create-route-rule.json", &nameless, &unnamed);
    // Group tags skip the operator check.
    written(
        &server,
        "group/delete-group-tags.json",
        r#"{"groupId":12345}"#,
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
    let denied = refused("no-permission", "management token missing or wrong");
    let operate = "operate-instance.json";
    let without = operate_i1(false).replace(r#","token":"t""#, "");
    assert_body(&post_with(&server, operate, &[], &without), &denied);
    let wrong = [("Authorization", "Bearer nope")];
    assert_body(&post_with(&server, operate, &wrong, &without), &denied);
    assert_body(
        &post_with(&server, operate, &[], &operate_i1(false)),
        &denied,
    );
    let groups = by_operator(r#""groups":[]"#);
    assert_body(
        &post_with(&server, "group/insert-groups.json", &[], &groups),
        &denied,
    );

    let bearer = [("Authorization", "Bearer s3cret")];
    assert_body(&post_with(&server, operate, &bearer, &without), WRITTEN);
    assert!(discovered(&server, I1_SERVICE).is_empty());
    let in_body = operate_i1(true).replace(r#""token":"t""#, r#""token":"s3cret""#);
    assert_body(&post_with(&server, operate, &[], &in_body), WRITTEN);
    assert_eq!(discovered(&server, I1_SERVICE).len(), 1);

    // Reads and logs stay open, and the logs do not keep the token.
    let logs = call(&server, "log/instance-operation-logs.json", "{}");
    let logs = logs["logs"].as_array().unwrap().clone();
    assert_eq!(logs.len(), 2, "{logs:?}");
    assert!(logs.iter().all(|l| l["token"] != "s3cret"), "{logs:?}");
    ok(&server, "group/get-all-groups.json", "{}");
}

#[test]
fn get_groups_is_rate_limited_at_the_31st_call_in_10_s() {
    let server = Server::start(&[]);
    // One connection stays on one core, whose share of the budget is then the whole of it.
    let mut client = server.connect();
    let path = at("group/get-groups.json");
    // A body that is not JSON is refused before the limiter counts it.
    for _ in 0..5 {
        assert_eq!(client.post(&path, "not json").status, 400);
    }
    for call in 1..=30 {
        let reply = client.post(&path, "{}");
        assert_eq!(
            reply.json()["responseStatus"]["errorCode"],
            "success",
            "call {call}"
        );
    }
    let limited = refused_beside("groups", "rate-limited", "Request is rate limited.");
    assert_body(&client.post(&path, "{}"), &limited);
    // Other operations of the limiter count apart.
    let rules = client.post(&at("group/get-route-rules.json"), "{}");
    assert_eq!(rules.json()["responseStatus"]["errorCode"], "success");
}

/// Declares each family's test twice: on the embedded store, and on a PostgreSQL database of its
/// own (skipped without `ARTEMIS_TEST_POSTGRES`, a failure under CI).
macro_rules! on_both_stores {
    ($($family:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[test]
            fn $family() {
                super::$family(&super::Server::start(&[]));
            })*
        }

        mod on_postgres {
            $(#[test]
            fn $family() {
                let Some(database) = super::TestDatabase::create(stringify!($family)) else {
                    return;
                };
                let url = database.url();
                super::$family(&super::Server::start(&["--management-db", &url]));
            })*
        }
    };
}

on_both_stores!(
    vector_10_pull_out_and_pull_in_an_instance,
    a_write_is_visible_to_the_next_lookup_on_any_connection,
    a_server_pull_out_hides_every_instance_on_its_ip,
    a_zone_pull_out_hides_the_services_instances_in_the_zone,
    route_rule_weights_wait_for_their_release,
    group_tags_and_named_instances_show_in_discovery,
    a_group_operation_pulls_the_group_out,
    service_instances_are_listed_as_logic_instances,
    canary_ips_make_the_canary_route_rule,
    each_of_the_nine_logs_returns_the_rows_written,
);
