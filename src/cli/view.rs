//! How a command shows a reply without `--json`: the rows of the server's JSON as a table, a
//! missing or null field as `-`. One function per kind of reply, named after it.

use serde_json::Value;

use super::table::Table;

pub(super) fn services(reply: &Value) {
    let mut t = instances_table();
    for service in array(&reply["services"]) {
        add_instances(&mut t, service);
    }
    t.print();
}

pub(super) fn service(reply: &Value) {
    let mut t = instances_table();
    add_instances(&mut t, &reply["service"]);
    t.print();
    let groups = array(&reply["groups"]);
    if !groups.is_empty() {
        println!();
        let mut t = Table::new(&["GROUP", "INSTANCES"]);
        for group in groups {
            let ids: Vec<String> = array(&group["instanceIds"]).into_iter().map(text).collect();
            t.row(vec![text(&group["groupKey"]), ids.join(",")]);
        }
        t.print();
    }
}

/// `all-*-operations`: what each operation is on, and the operations.
pub(super) fn operations(reply: &Value) {
    let kinds: [(&str, &str, &[&str], &[&str]); 4] = [
        (
            "allInstanceOperations",
            "instanceKey",
            &["REGION", "SERVICE", "INSTANCE"],
            &["regionId", "serviceId", "instanceId"],
        ),
        (
            "allServerOperations",
            "serverKey",
            &["REGION", "SERVER"],
            &["regionId", "serverId"],
        ),
        (
            "allZoneOperations",
            "zoneKey",
            &["REGION", "SERVICE", "ZONE"],
            &["regionId", "serviceId", "zoneId"],
        ),
        ("allGroupOperations", "", &["GROUP"], &["groupId"]),
    ];
    let Some((list, key, header, columns)) =
        kinds.iter().find(|(list, ..)| reply.get(list).is_some())
    else {
        return;
    };
    let mut t = Table::new(&[*header, &["OPERATIONS"]].concat());
    for row in array(&reply[*list]) {
        let of = if key.is_empty() { row } else { &row[*key] };
        let mut cells = fields(of, columns);
        cells.push(joined(&row["operations"]));
        t.row(cells);
    }
    t.print();
}

const GROUP_FIELDS: [&str; 7] = [
    "groupId",
    "serviceId",
    "regionId",
    "zoneId",
    "name",
    "appId",
    "status",
];

pub(super) fn groups(reply: &Value) {
    let mut t = Table::new(&["ID", "SERVICE", "REGION", "ZONE", "NAME", "APP", "STATUS"]);
    for group in array(&reply["groups"]) {
        t.row(fields(group, &GROUP_FIELDS));
    }
    t.print();
}

/// `group show`: the group's fields, then what is named into it, its tags and operations.
pub(super) fn group(all: &Value) {
    for key in GROUP_FIELDS.iter().chain(&["groupKey", "description"]) {
        println!("{key}: {}", text(&all["group"][*key]));
    }
    let ids: Vec<String> = array(&all["groupInstances"])
        .iter()
        .map(|i| text(&i["instanceId"]))
        .collect();
    println!("instances: {}", ids.join(","));
    let tags = all["groupTags"]["tags"].as_object();
    let tags: Vec<String> = tags
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", text(v)))
        .collect();
    println!("tags: {}", tags.join(","));
    println!(
        "operations: {}",
        joined(&all["groupOperations"]["operations"])
    );
}

pub(super) fn group_instances(reply: &Value) {
    let mut t = Table::new(&["ID", "GROUP", "INSTANCE"]);
    for row in array(&reply["groupInstances"]) {
        t.row(fields(row, &["id", "groupId", "instanceId"]));
    }
    t.print();
}

/// `allGroupTags` or one group's `groupTags`: a row per tag.
pub(super) fn tags(reply: &Value) {
    let mut t = Table::new(&["GROUP", "TAG", "VALUE"]);
    let groups = match reply.get("allGroupTags") {
        Some(all) => array(all),
        None => [&reply["groupTags"]]
            .into_iter()
            .filter(|g| !g.is_null())
            .collect(),
    };
    for group in groups {
        for (tag, value) in group["tags"].as_object().into_iter().flatten() {
            t.row(vec![text(&group["groupId"]), tag.clone(), text(value)]);
        }
    }
    t.print();
}

const RULE_FIELDS: [&str; 5] = ["routeRuleId", "serviceId", "name", "status", "strategy"];

pub(super) fn route_rules(reply: &Value) {
    let mut t = Table::new(&["ID", "SERVICE", "NAME", "STATUS", "STRATEGY"]);
    for rule in array(&reply["routeRules"]) {
        t.row(fields(rule, &RULE_FIELDS));
    }
    t.print();
}

/// `route-rule show`: the rule's fields, then its groups.
pub(super) fn route_rule(all: &Value) {
    for key in RULE_FIELDS.iter().chain(&["description"]) {
        println!("{key}: {}", text(&all["routeRule"][*key]));
    }
    println!();
    route_rule_groups(all);
}

pub(super) fn route_rule_groups(reply: &Value) {
    let mut t = Table::new(&["ID", "ROUTE RULE", "GROUP", "WEIGHT", "UNRELEASED"]);
    let columns = [
        "routeRuleGroupId",
        "routeRuleId",
        "groupId",
        "weight",
        "unreleasedWeight",
    ];
    for row in array(&reply["routeRuleGroups"]) {
        t.row(fields(row, &columns));
    }
    t.print();
}

pub(super) fn canaries(all: &Value) {
    let mut t = Table::new(&["APP", "GROUP", "IPS"]);
    for canary in array(&all["canaries"]) {
        let mut cells = fields(canary, &["appId", "groupId"]);
        cells.push(joined(&canary["ips"]));
        t.row(cells);
    }
    t.print();
}

/// A log's rows, with the columns of its first row (the logs differ in their fields).
pub(super) fn logs(reply: &Value) {
    let rows = array(&reply["logs"]);
    let Some(first) = rows.first().and_then(|v| v.as_object()) else {
        println!("(no log rows)");
        return;
    };
    let columns: Vec<&str> = first
        .iter()
        .filter(|(_, v)| !v.is_object() && !v.is_array())
        .map(|(k, _)| k.as_str())
        .collect();
    let mut t = Table::new(&columns);
    for row in rows {
        t.row(fields(row, &columns));
    }
    t.print();
}

pub(super) fn cluster(reply: &Value) {
    let mut t = Table::new(&["URL", "REGION", "ZONE", "STATUS", "REGISTRY", "DISCOVERY"]);
    for node in array(&reply["nodesStatus"]) {
        let zone = &node["node"]["zone"];
        t.row(vec![
            text(&node["node"]["url"]),
            text(&zone["regionId"]),
            text(&zone["zoneId"]),
            text(&node["status"]),
            text(&node["canServiceRegistry"]),
            text(&node["canServiceDiscovery"]),
        ]);
    }
    t.print();
}

fn instances_table() -> Table {
    Table::new(&["SERVICE", "INSTANCE", "ADDRESS", "ZONE", "STATUS"])
}

fn add_instances(t: &mut Table, service: &Value) {
    for i in array(&service["instances"]) {
        let address = match (&i["ip"], &i["port"]) {
            (Value::String(ip), Value::Number(port)) => format!("{ip}:{port}"),
            (ip, _) => text(ip),
        };
        t.row(vec![
            text(&i["serviceId"]),
            text(&i["instanceId"]),
            address,
            text(&i["zoneId"]),
            text(&i["status"]),
        ]);
    }
}

/// Keeps the items of the list `list` that `wanted` says so of (a list filtered client-side).
pub(super) fn keep(list: &mut Value, wanted: impl Fn(&Value) -> bool) {
    if let Some(items) = list.as_array_mut() {
        items.retain(|item| wanted(item));
    }
}

pub(super) fn array(v: &Value) -> Vec<&Value> {
    v.as_array().map(|a| a.iter().collect()).unwrap_or_default()
}

fn fields(v: &Value, names: &[&str]) -> Vec<String> {
    names.iter().map(|n| text(&v[*n])).collect()
}

/// A list of values, comma-separated.
fn joined(list: &Value) -> String {
    let items: Vec<String> = array(list).into_iter().map(text).collect();
    items.join(",")
}

/// A value as a table shows it: strings bare, null as `-`.
pub(super) fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
