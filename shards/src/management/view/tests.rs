use super::*;
use crate::management::model::*;

fn instance(service: &str, id: &str, ip: &str, zone: &str, group: Option<&str>) -> Instance {
    Instance {
        region_id: Some("SHA".into()),
        zone_id: Some(zone.into()),
        group_id: group.map(Into::into),
        service_id: Some(service.into()),
        instance_id: Some(id.into()),
        ip: Some(ip.into()),
        url: Some(format!("http://{ip}/")),
        ..Instance::default()
    }
}

fn group(id: i64, service: &str, zone: &str, name: &str, status: &str) -> Group {
    Group {
        group_id: id,
        service_id: service.into(),
        region_id: "SHA".into(),
        zone_id: zone.into(),
        name: name.into(),
        app_id: Some("app".into()),
        description: None,
        status: Some(status.into()),
    }
}

fn lists(view: &ManagementView, service: &str, instances: &[Instance]) -> String {
    let keys: Vec<InstanceKey> = instances.iter().map(Instance::key).collect();
    let jsons: Vec<Vec<u8>> = instances.iter().map(Instance::to_json).collect();
    let facts: Vec<(InstanceFacts<'_>, &[u8])> = instances
        .iter()
        .zip(&keys)
        .zip(&jsons)
        .map(|((i, key), json)| {
            let facts = InstanceFacts {
                key,
                service_id: i.service_id.as_deref().unwrap(),
                zone_id: i.zone_id.as_deref(),
                ip: i.ip.as_deref(),
                group_id: i.group_id.as_deref(),
            };
            (facts, &json[..])
        })
        .collect();
    let mut out = Vec::new();
    view.write_lists(&mut out, &service.to_lowercase(), &facts, true);
    String::from_utf8(out).unwrap()
}

#[test]
fn an_empty_view_pulls_nothing_out_and_adds_empty_lists() {
    let view = ManagementView::default();
    assert!(!view.is_instance_down(&instance("s", "i", "1.1.1.1", "z", None)));
    assert_eq!(lists(&view, "s", &[]).as_bytes(), NO_LISTS);
}

#[test]
fn each_operation_pulls_out_what_it_names() {
    let a = instance("Svc", "I-1", "10.0.0.1", "ZoneA", None);
    let b = instance("Svc", "i-2", "10.0.0.2", "ZoneB", Some("blue"));
    let op = |s: &str| s.to_string();
    let by_instance = ManagementView::new(&ManagementData {
        instance_operations: vec![InstanceOperation {
            region_id: op("sha"),
            service_id: op("svc"),
            instance_id: op("i-1"),
            operation: op("pullout"),
            operator_id: op("ops"),
            token: None,
        }],
        ..ManagementData::default()
    });
    assert!(by_instance.is_instance_down(&a));
    assert!(!by_instance.is_instance_down(&b));

    let by_server = ManagementView::new(&ManagementData {
        server_operations: vec![ServerOperation {
            region_id: op("SHA"),
            server_id: op("10.0.0.2"),
            operation: op("pullout"),
            operator_id: op("ops"),
            token: None,
        }],
        ..ManagementData::default()
    });
    assert!(!by_server.is_instance_down(&a));
    assert!(by_server.is_instance_down(&b));
    assert!(by_server.is_server_down("sha", "10.0.0.2"));

    let by_zone = ManagementView::new(&ManagementData {
        zone_operations: vec![ZoneOperation {
            region_id: op("SHA"),
            service_id: op("Svc"),
            zone_id: op("ZoneA"),
            operation: op("pullout"),
            operator_id: op("ops"),
            token: None,
        }],
        ..ManagementData::default()
    });
    assert!(by_zone.is_instance_down(&a));
    assert!(!by_zone.is_instance_down(&b));
    // Zone keys match exactly, as Java's HashMap does.
    assert!(!by_zone.is_instance_down(&instance("svc", "x", "1", "ZoneA", None)));
    assert!(by_zone.is_zone_down("SHA", "Svc", "ZoneA"));

    let by_group = ManagementView::new(&ManagementData {
        groups: vec![group(7, "svc", "ZoneB", "Blue", "active")],
        group_operations: vec![GroupOperation {
            group_id: 7,
            operation: op("pullout"),
            operator_id: Some(op("ops")),
            token: None,
        }],
        ..ManagementData::default()
    });
    assert!(!by_group.is_instance_down(&a));
    assert!(by_group.is_instance_down(&b));
}

#[test]
fn route_rules_carry_active_groups_with_fixed_weights() {
    let data = ManagementData {
        groups: vec![
            group(1, "svc", "z", "g1", "active"),
            group(2, "svc", "z", "g2", "inactive"),
        ],
        group_tags: vec![GroupTag {
            group_id: 1,
            tag: "env".into(),
            value: "prod".into(),
        }],
        group_instances: vec![GroupInstance {
            id: 1,
            group_id: 1,
            instance_id: "I-9".into(),
        }],
        route_rules: vec![
            RouteRule {
                route_rule_id: 10,
                service_id: "Svc".into(),
                name: "r1".into(),
                status: Some("Active".into()),
                strategy: Some("weighted-round-robin".into()),
                ..RouteRule::default()
            },
            RouteRule {
                route_rule_id: 11,
                service_id: "svc".into(),
                name: "off".into(),
                status: Some("inactive".into()),
                ..RouteRule::default()
            },
        ],
        route_rule_groups: vec![
            RouteRuleGroup {
                route_rule_group_id: 1,
                route_rule_id: 10,
                group_id: 1,
                weight: None,
                unreleased_weight: Some(100),
            },
            RouteRuleGroup {
                route_rule_group_id: 2,
                route_rule_id: 10,
                group_id: 2,
                weight: Some(50),
                unreleased_weight: Some(50),
            },
            RouteRuleGroup {
                route_rule_group_id: 3,
                route_rule_id: 11,
                group_id: 1,
                weight: Some(50),
                unreleased_weight: None,
            },
        ],
        ..ManagementData::default()
    };
    let view = ManagementView::new(&data);
    assert_eq!(
        lists(&view, "svc", &[]),
        r#","logicInstances":[],"metadata":null,"routeRules":[{"groups":[{"groupKey":"svc/sha/z/g1","instanceIds":["I-9"],"instances":null,"metadata":{"env":"prod"},"weight":5}],"routeId":"r1","strategy":"weighted-round-robin"}],"serviceId":"#
    );
    let mut released = data.clone();
    released.route_rule_groups[0].weight = Some(100);
    let after = ManagementView::new(&released);
    assert!(lists(&after, "svc", &[]).contains(r#""weight":100"#));
    let affected = after.affected(&view);
    assert!(affected.reload.contains("svc"));
    assert!(affected.services.is_empty() && !affected.every_service);
}

#[test]
fn canary_groups_list_their_instances_and_logic_instances_are_filtered() {
    let canary = instance("svc", "10.1.1.1", "10.1.1.1", "z", None);
    let other = instance("svc", "10.1.1.2", "10.1.1.2", "z", None);
    let data = ManagementData {
        groups: vec![group(1, "svc", "canary", "app", "active")],
        group_instances: vec![GroupInstance {
            id: 1,
            group_id: 1,
            instance_id: "10.1.1.1".into(),
        }],
        route_rules: vec![RouteRule {
            route_rule_id: 1,
            service_id: "svc".into(),
            name: CANARY_ROUTE_RULE.into(),
            status: Some("active".into()),
            strategy: Some("weighted-round-robin".into()),
            ..RouteRule::default()
        }],
        route_rule_groups: vec![RouteRuleGroup {
            route_rule_group_id: 1,
            route_rule_id: 1,
            group_id: 1,
            weight: None,
            unreleased_weight: None,
        }],
        service_instances: vec![ServiceInstance {
            id: 1,
            service_id: "svc".into(),
            instance_id: "logic-1".into(),
            region_id: Some("SHA".into()),
            ip: Some("10.9.9.9".into()),
            ..ServiceInstance::default()
        }],
        ..ManagementData::default()
    };
    let view = ManagementView::new(&data);
    assert!(view.needs_instances("svc"));
    let json = lists(&view, "svc", &[canary.clone(), other.clone()]);
    let canary_json = String::from_utf8(canary.to_json()).unwrap();
    assert!(
        json.contains(&format!(r#""instances":[{canary_json}]"#)),
        "{json}"
    );
    assert!(!json.contains("10.1.1.2"));
    assert!(
        json.starts_with(r#","logicInstances":[{"groupId":null"#),
        "{json}"
    );
    assert!(json.contains(r#""instanceId":"logic-1""#) && json.contains(r#""status":"up""#));

    let mut pulled = data.clone();
    pulled.server_operations.push(ServerOperation {
        region_id: "sha".into(),
        server_id: "10.9.9.9".into(),
        operation: "pullout".into(),
        operator_id: "ops".into(),
        token: None,
    });
    let after = ManagementView::new(&pulled);
    assert!(lists(&after, "svc", &[]).starts_with(r#","logicInstances":[],"#));
    let affected = after.affected(&view);
    assert!(affected.every_service && affected.reload.contains("svc"));
}
