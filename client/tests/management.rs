//! The management client against the real server: pull-outs and their operation queries and
//! logs, groups and route rules written with typed values and read back, canaries, the
//! management token, and which refusals are final (a store's verdict is not retried elsewhere).

mod common;

use std::collections::BTreeMap;

use artemis_client::{
    Error, ErrorCode, Group, LogFilter, LogKind, ManagementClient, OperationKind, OperationTarget,
    RouteRuleGroup, ServiceRouteRule,
};
use common::{config, instance, Server, REGION, ZONE};
use serde_json::json;

fn client(server: &Server) -> ManagementClient {
    ManagementClient::new(config(&[server.url()]), "alice").unwrap()
}

#[tokio::test]
async fn an_instance_pulled_out_leaves_discovery_until_pulled_in_and_both_are_logged() {
    let server = Server::start(&[]);
    let mine = instance("sdk.manage.pull", "i-1");
    server.register(&mine);
    let manage = client(&server);
    let target = OperationTarget::Instance {
        region_id: REGION.into(),
        service_id: mine.service_id.clone(),
        instance_id: "i-1".into(),
    };

    let reply = manage.pull_out(&target).await.unwrap();
    assert_eq!(reply["responseStatus"]["status"], "success");
    assert!(server.instance_ids(&mine.service_id).is_empty());
    let ops = manage.operations(&target).await.unwrap();
    assert_eq!(ops["operations"]["operations"], json!(["pullout"]), "{ops}");
    let all = manage
        .all_operations(OperationKind::Instance, Some(REGION))
        .await
        .unwrap();
    assert_eq!(
        all["allInstanceOperations"].as_array().map(Vec::len),
        Some(1)
    );
    let view = manage.service(&mine.service_id).await.unwrap();
    assert_eq!(view["service"]["instances"][0]["status"], "down", "{view}");

    manage.pull_in(&target).await.unwrap();
    assert_eq!(server.instance_ids(&mine.service_id), ["i-1"]);
    let filter = LogFilter {
        service_id: Some(mine.service_id.clone()),
        operator_id: Some("alice".into()),
        ..LogFilter::default()
    };
    let logs = manage.logs(LogKind::Instance, &filter).await.unwrap();
    let logs = logs["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 2, "{logs:?}");
    assert_eq!(logs[0]["complete"], true, "the newest first: the pull-in");
    assert_eq!(logs[0]["token"], "artemis-client");
}

#[tokio::test]
async fn groups_route_rules_and_canaries_are_written_typed_and_read_back() {
    let server = Server::start(&[]);
    // service.json shows route rules of a service the registry knows.
    server.register(&instance("sdk.manage.route", "i-1"));
    let manage = client(&server);
    let mut blue = Group::new("sdk.manage.route", REGION, ZONE, "blue");
    blue.status = Some("active".into());
    manage.insert(&[blue]).await.unwrap();
    let groups = manage.all::<Group>().await.unwrap();
    let group_id = groups["groups"][0]["groupId"].as_i64().unwrap();
    let mut stored = manage
        .one::<Group>(group_id)
        .await
        .unwrap()
        .expect("the group");
    assert_eq!(stored.name, "blue");
    stored.description = Some("the blue ones".into());
    manage.update(&[stored]).await.unwrap();
    let stored = manage.one::<Group>(group_id).await.unwrap().unwrap();
    assert_eq!(stored.description.as_deref(), Some("the blue ones"));

    let tags = BTreeMap::from([("color".to_string(), "blue".to_string())]);
    manage.set_group_tags(group_id, &tags).await.unwrap();
    let named = ["i-1".to_string()];
    manage
        .insert_group_instances(group_id, &named)
        .await
        .unwrap();
    let rows = manage.group_instances(Some(group_id), None).await.unwrap();
    assert_eq!(rows["groupInstances"][0]["instanceId"], "i-1");

    let mut rule = ServiceRouteRule::new("sdk.manage.route", "r1");
    rule.status = Some("active".into());
    rule.strategy = Some("weighted-round-robin".into());
    manage.insert(&[rule]).await.unwrap();
    let rules = manage.all::<ServiceRouteRule>().await.unwrap();
    let rule_id = rules["routeRules"][0]["routeRuleId"].as_i64().unwrap();
    assert_eq!(
        manage
            .one::<ServiceRouteRule>(rule_id)
            .await
            .unwrap()
            .map(|r| r.name),
        Some("r1".to_string())
    );
    manage
        .insert(&[RouteRuleGroup::new(rule_id, group_id, 20)])
        .await
        .unwrap();
    let rows = manage.all::<RouteRuleGroup>().await.unwrap();
    let row_id = rows["routeRuleGroups"][0]["routeRuleGroupId"]
        .as_i64()
        .unwrap();
    let row = manage.one::<RouteRuleGroup>(row_id).await.unwrap().unwrap();
    assert_eq!((row.unreleased_weight, row.weight), (Some(20), None));
    manage.release_route_rule_groups(&[row]).await.unwrap();
    let row = manage.one::<RouteRuleGroup>(row_id).await.unwrap().unwrap();
    assert_eq!(row.weight, Some(20));
    let service = server.post(
        "/api/discovery/service.json",
        &format!(
            r#"{{"discoveryConfig":{{"serviceId":"sdk.manage.route"}},"regionId":"{REGION}","zoneId":"{ZONE}"}}"#
        ),
    );
    let group = &service["service"]["routeRules"][0]["groups"][0];
    assert_eq!(group["weight"], 20, "{service}");
    assert_eq!(group["metadata"], json!({"color": "blue"}), "{service}");
    assert_eq!(group["instanceIds"], json!(["i-1"]), "{service}");

    let ips = ["10.0.0.7".to_string()];
    manage
        .set_canary_ips("sdk.manage.route", "app1", &ips)
        .await
        .unwrap();
    let canaries = manage.canaries("sdk.manage.route").await.unwrap();
    assert_eq!(canaries.len(), 1, "{canaries:?}");
    assert_eq!(
        (canaries[0].app_id.as_str(), &canaries[0].ips[..]),
        ("app1", &ips[..])
    );

    manage.delete::<RouteRuleGroup>(&[row_id]).await.unwrap();
    manage.delete::<ServiceRouteRule>(&[rule_id]).await.unwrap();
    manage.delete::<Group>(&[group_id]).await.unwrap();
    assert!(manage.one::<Group>(group_id).await.unwrap().is_none());
    let filter = LogFilter {
        route_rule_id: Some(rule_id),
        ..LogFilter::default()
    };
    let logs = manage.logs(LogKind::RouteRuleGroup, &filter).await.unwrap();
    assert!(logs["logs"].as_array().unwrap().len() >= 3, "{logs}");
}

#[tokio::test]
async fn writes_need_the_management_token_and_a_store_verdict_is_final() {
    let server = Server::start(&["--management-token", "s3cret"]);
    let target = OperationTarget::Server {
        region_id: REGION.into(),
        server_id: "10.0.0.9".into(),
    };
    match client(&server).pull_out(&target).await {
        Err(Error::Server {
            code: ErrorCode::NoPermission,
            message,
        }) => assert!(message.contains("token"), "{message}"),
        other => panic!("a write without the token: {other:?}"),
    }
    let manage = client(&server).with_token("s3cret").unwrap();
    manage.pull_out(&target).await.unwrap();
    let logs = manage
        .logs(LogKind::Server, &LogFilter::default())
        .await
        .unwrap();
    assert_eq!(logs["logs"][0]["token"], "(management token)", "{logs}");

    // No group 999: the store refuses with internal-service-error, answered at once and not
    // taken for a node that is down.
    let mut missing = Group::new("s", REGION, ZONE, "n");
    missing.group_id = 999;
    match manage.update(&[missing]).await {
        Err(Error::Server {
            code: ErrorCode::InternalServiceError,
            message,
        }) => assert!(message.contains("999"), "{message}"),
        other => panic!("an update of no group: {other:?}"),
    }
}

#[tokio::test]
async fn an_unreachable_node_is_unavailable_and_status_reads_need_no_write_rights() {
    let gone = format!("http://127.0.0.1:{}", common::free_port());
    let mut unreachable = config(&[gone]);
    unreachable.follow_cluster = false;
    unreachable.attempts = 2;
    let manage = ManagementClient::new(unreachable, "alice").unwrap();
    match manage.services().await {
        Err(Error::Unavailable { attempts: 2, last }) => {
            assert!(matches!(*last, Error::Transport { .. }), "{last:?}")
        }
        other => panic!("no node: {other:?}"),
    }

    let server = Server::start(&["--management-token", "s3cret"]);
    let manage = client(&server);
    let node = manage.node_status().await.unwrap();
    assert_eq!(node["nodeStatus"]["status"], "up", "{node}");
    let cluster = manage.cluster_status().await.unwrap();
    assert_eq!(cluster["nodesStatus"].as_array().map(Vec::len), Some(1));
    assert!(manage.services().await.unwrap()["services"].is_array());
}
