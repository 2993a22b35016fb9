//! Management data as the store keeps it: one struct per table, and the whole set.
//!
//! Operators pull instances, servers, zones and groups out of traffic, and shape it with groups,
//! route rules and service (logical) instances. These rows are what the store persists and
//! reloads; the shards never read them directly but through a [`super::ManagementView`] built
//! from them. Field names follow Java's DTOs (`docs/management.md`).

use std::collections::BTreeMap;

/// Who asked for a management write, and why: Java's `OperationContext`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperationContext {
    pub operation: Option<String>,
    pub operator_id: Option<String>,
    pub token: Option<String>,
    pub reason: Option<String>,
    pub extensions: Option<String>,
}

/// An instance pulled out: one row per (instance key, operation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceOperation {
    pub region_id: String,
    pub service_id: String,
    pub instance_id: String,
    pub operation: String,
    pub operator_id: String,
    pub token: Option<String>,
}

/// A server (every instance with this `ip` in the region) pulled out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerOperation {
    pub region_id: String,
    pub server_id: String,
    pub operation: String,
    pub operator_id: String,
    pub token: Option<String>,
}

/// Every instance of a service in one zone pulled out. Matched case-sensitively, as Java's
/// `ZoneKey` map does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneOperation {
    pub region_id: String,
    pub service_id: String,
    pub zone_id: String,
    pub operation: String,
    pub operator_id: String,
    pub token: Option<String>,
}

/// A group of a service's instances: `serviceId/regionId/zoneId/name` prefixes their group keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Group {
    pub group_id: i64,
    pub service_id: String,
    pub region_id: String,
    pub zone_id: String,
    pub name: String,
    pub app_id: Option<String>,
    pub description: Option<String>,
    /// `active` or `inactive`.
    pub status: Option<String>,
}

/// One tag of a group (`ServiceGroup.metadata` in discovery).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupTag {
    pub group_id: i64,
    pub tag: String,
    pub value: String,
}

/// A group pulled out: every instance whose group key the group's key prefixes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupOperation {
    pub group_id: i64,
    pub operation: String,
    pub operator_id: Option<String>,
    pub token: Option<String>,
}

/// An instance named into a group by id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInstance {
    pub id: i64,
    pub group_id: i64,
    pub instance_id: String,
}

/// A logical instance of a service, defined by an operator (`Service.logicInstances`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceInstance {
    pub id: i64,
    pub service_id: String,
    pub instance_id: String,
    pub group_id: Option<String>,
    pub region_id: Option<String>,
    pub zone_id: Option<String>,
    pub ip: Option<String>,
    pub port: i32,
    pub protocol: Option<String>,
    pub url: Option<String>,
    pub health_check_url: Option<String>,
    pub machine_name: Option<String>,
    pub description: Option<String>,
    /// Kept in key order.
    pub metadata: Option<BTreeMap<String, String>>,
}

/// A route rule of a service (`ServiceRouteRule`); its `name` is the rule's `routeId`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteRule {
    pub route_rule_id: i64,
    pub service_id: String,
    pub name: String,
    pub description: Option<String>,
    /// `active` or `inactive`.
    pub status: Option<String>,
    /// `weighted-round-robin` or `close-by-visit`.
    pub strategy: Option<String>,
}

/// A group in a route rule, with its released weight and the weight waiting for release.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteRuleGroup {
    pub route_rule_group_id: i64,
    pub route_rule_id: i64,
    pub group_id: i64,
    pub weight: Option<i64>,
    pub unreleased_weight: Option<i64>,
}

/// Everything the store holds but the logs: what a node loads at start and after each change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManagementData {
    pub instance_operations: Vec<InstanceOperation>,
    pub server_operations: Vec<ServerOperation>,
    pub zone_operations: Vec<ZoneOperation>,
    pub groups: Vec<Group>,
    pub group_tags: Vec<GroupTag>,
    pub group_operations: Vec<GroupOperation>,
    pub group_instances: Vec<GroupInstance>,
    pub service_instances: Vec<ServiceInstance>,
    pub route_rules: Vec<RouteRule>,
    pub route_rule_groups: Vec<RouteRuleGroup>,
}
