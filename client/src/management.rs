//! Operating the registry from Rust: Java Artemis' management endpoints (pull-outs of
//! instances, servers, zones and groups; groups, their tags and instances; route rules and
//! their groups' weights; canary ips; the operation logs; the nodes' status) as typed calls, on
//! the same configuration, failover, timeouts and [`Error`] as the other clients. The `artemis`
//! binary's management commands are made of these calls.
//!
//! Replies are the server's JSON as it came ([`serde_json::Value`], `responseStatus` included):
//! they are Java's DTOs read by people and scripts, and a typed copy would only mirror them.
//! What a caller writes is typed ([`Group`], [`ServiceRouteRule`], [`RouteRuleGroup`],
//! [`OperationTarget`], [`LogFilter`]). Every write carries Java's operation context (the
//! operation, the operator, the token) and the token also as `Authorization: Bearer`, which the
//! server's `--management-token` asks for.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};

use crate::config::ClientConfig;
use crate::error::Error;
use crate::failover::Failover;
use crate::wire::{Reply, ResponseStatus, UP_REGISTRY_NODES};

/// The `token` of a write when the client has no management token: Java's checked writes
/// refuse a blank one, and the operation logs show which tool wrote.
const NO_TOKEN: &str = "artemis-client";

/// The operation of a pull-out (any text is one; this is what Java's portal writes).
const PULL_OUT: &str = "pullout";

/// The name of a service's canary rule and the zone of its canary groups (Java's canary).
const CANARY_RULE: &str = "canary-route-rule";
const CANARY_ZONE: &str = "canary";

/// Calls the management endpoints of a registry, in the name of one operator.
///
/// ```no_run
/// # async fn demo() -> Result<(), artemis_client::Error> {
/// use artemis_client::{ClientConfig, Group, LogFilter, LogKind, ManagementClient, OperationTarget};
///
/// let config = ClientConfig::new(["http://127.0.0.1:8080"]);
/// let manage = ManagementClient::new(config, "alice")?.with_token("s3cret")?;
/// let server = OperationTarget::Server {
///     region_id: "SHA".into(),
///     server_id: "10.0.0.1".into(),
/// };
/// manage.pull_out(&server).await?;
/// let blue = Group {
///     status: Some("active".into()),
///     ..Group::new("demo.service", "SHA", "SHAJQ", "blue")
/// };
/// manage.insert(&[blue]).await?;
/// let mine = LogFilter {
///     operator_id: Some("alice".into()),
///     ..LogFilter::default()
/// };
/// let logs = manage.logs(LogKind::Server, &mine).await?;
/// println!("{}", logs["logs"]);
/// manage.pull_in(&server).await?;
/// # Ok(())
/// # }
/// ```
pub struct ManagementClient {
    failover: Failover,
    operator: String,
    token: Option<String>,
}

/// What a pull-out takes out of discovery, and a pull-in puts back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationTarget {
    /// One instance of a service.
    Instance {
        region_id: String,
        service_id: String,
        instance_id: String,
    },
    /// Every instance on a server (its `ip`).
    Server {
        region_id: String,
        server_id: String,
    },
    /// A service's instances in one zone (service and zone matched exactly, as Java does).
    Zone {
        region_id: String,
        service_id: String,
        zone_id: String,
    },
    /// The instances of a group.
    Group { group_id: i64 },
}

/// The kinds of [`OperationTarget`], for listing every operation of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    Instance,
    Server,
    Zone,
    Group,
}

/// Java's management `Group`: the instances of a service whose group key
/// (`service/region/zone/group/instance`) starts with `service/region/zone/name`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Group {
    /// The store's id; 0 for a group not stored yet (insert and update then match on service,
    /// region, zone and name).
    pub group_id: i64,
    pub service_id: String,
    pub region_id: String,
    pub zone_id: String,
    pub name: String,
    pub app_id: Option<String>,
    pub description: Option<String>,
    /// `active` or `inactive`; discovery shows only active groups in route rules.
    pub status: Option<String>,
}

impl Group {
    /// A new group `name` of `service_id` in `region_id` and `zone_id`.
    pub fn new(
        service_id: impl Into<String>,
        region_id: impl Into<String>,
        zone_id: impl Into<String>,
        name: impl Into<String>,
    ) -> Group {
        Group {
            service_id: service_id.into(),
            region_id: region_id.into(),
            zone_id: zone_id.into(),
            name: name.into(),
            ..Group::default()
        }
    }
}

/// Java's `ServiceRouteRule`: a service's rule of how traffic is spread over its groups.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceRouteRule {
    /// The store's id; 0 for a rule not stored yet (matched on service and name).
    pub route_rule_id: i64,
    pub service_id: String,
    /// Discovery shows it as the rule's `routeId`.
    pub name: String,
    pub description: Option<String>,
    /// `active` or `inactive`.
    pub status: Option<String>,
    /// `weighted-round-robin` or `close-by-visit`.
    pub strategy: Option<String>,
}

impl ServiceRouteRule {
    /// A new rule `name` of `service_id`.
    pub fn new(service_id: impl Into<String>, name: impl Into<String>) -> ServiceRouteRule {
        ServiceRouteRule {
            service_id: service_id.into(),
            name: name.into(),
            ..ServiceRouteRule::default()
        }
    }
}

/// Java's `RouteRuleGroup`: a group in a route rule, with its weight. A weight written waits
/// as `unreleased_weight` until it is released.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RouteRuleGroup {
    /// The store's id; 0 for one not stored yet (matched on rule and group).
    pub route_rule_group_id: i64,
    pub route_rule_id: i64,
    pub group_id: i64,
    /// The weight discovery shows (written only by a release).
    pub weight: Option<i64>,
    /// The weight the next release makes current.
    pub unreleased_weight: Option<i64>,
}

impl RouteRuleGroup {
    /// Group `group_id` in rule `route_rule_id`, with `weight` to release.
    pub fn new(route_rule_id: i64, group_id: i64, weight: i64) -> RouteRuleGroup {
        RouteRuleGroup {
            route_rule_id,
            group_id,
            unreleased_weight: Some(weight),
            ..RouteRuleGroup::default()
        }
    }
}

/// A kind of record the server keeps as a list: [`Group`], [`ServiceRouteRule`],
/// [`RouteRuleGroup`]. Each kind is read and written by the same calls of [`ManagementClient`]
/// ([`all`](ManagementClient::all), [`one`](ManagementClient::one),
/// [`find`](ManagementClient::find), [`insert`](ManagementClient::insert),
/// [`update`](ManagementClient::update), [`delete`](ManagementClient::delete)), at Java's paths
/// for it. An insert of a record whose key is stored already updates that one; an update finds
/// each record by its id, or by its key when the id is 0.
pub trait Record: Serialize + DeserializeOwned {
    /// The kind's name in Java's paths: `get-all-{PATH}.json`, `insert-{PATH}.json`, ...
    const PATH: &'static str;
    /// The field that lists records of the kind in requests and replies.
    const FIELD: &'static str;
    /// The field of a delete that lists the ids.
    const IDS: &'static str;
    /// What one is called in messages.
    const NAME: &'static str;

    /// The store's id; 0 for a record not stored yet.
    fn id(&self) -> i64;

    /// Whether `other` has this record's key (what the server matches a write without an id on).
    fn same_key(&self, other: &Self) -> bool;
}

/// Deleting a group deletes its tags, operations, instances and places in route rules.
impl Record for Group {
    const PATH: &'static str = "groups";
    const FIELD: &'static str = "groups";
    const IDS: &'static str = "groupIds";
    const NAME: &'static str = "group";

    fn id(&self) -> i64 {
        self.group_id
    }

    /// Service, region, zone and name, in any case.
    fn same_key(&self, other: &Group) -> bool {
        fn key(g: &Group) -> [&str; 4] {
            [&g.service_id, &g.region_id, &g.zone_id, &g.name]
        }
        key(self)
            .into_iter()
            .zip(key(other))
            .all(|(a, b)| a.eq_ignore_ascii_case(b))
    }
}

/// Deleting a route rule deletes its groups' weights.
impl Record for ServiceRouteRule {
    const PATH: &'static str = "route-rules";
    const FIELD: &'static str = "routeRules";
    const IDS: &'static str = "routeRuleIds";
    const NAME: &'static str = "route rule";

    fn id(&self) -> i64 {
        self.route_rule_id
    }

    /// Service and name, in any case.
    fn same_key(&self, other: &ServiceRouteRule) -> bool {
        self.service_id.eq_ignore_ascii_case(&other.service_id)
            && self.name.eq_ignore_ascii_case(&other.name)
    }
}

/// An insert or update writes `unreleased_weight`, which waits for
/// [`release_route_rule_groups`](ManagementClient::release_route_rule_groups).
impl Record for RouteRuleGroup {
    const PATH: &'static str = "route-rule-groups";
    const FIELD: &'static str = "routeRuleGroups";
    const IDS: &'static str = "routeRuleGroupIds";
    const NAME: &'static str = "route-rule group";

    fn id(&self) -> i64 {
        self.route_rule_group_id
    }

    /// Rule and group.
    fn same_key(&self, other: &RouteRuleGroup) -> bool {
        (self.route_rule_id, self.group_id) == (other.route_rule_id, other.group_id)
    }
}

/// The nine operation logs of Java's `ManagementLogController`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    Instance,
    Server,
    Zone,
    GroupOperation,
    Group,
    GroupInstance,
    RouteRule,
    RouteRuleGroup,
    ServiceInstance,
}

impl LogKind {
    fn path(self) -> &'static str {
        match self {
            LogKind::Instance => "/api/management/log/instance-operation-logs.json",
            LogKind::Server => "/api/management/log/server-operation-logs.json",
            LogKind::Zone => "/api/management/log/zone-operation-logs.json",
            LogKind::GroupOperation => "/api/management/log/group-operation-logs.json",
            LogKind::Group => "/api/management/log/group-logs.json",
            LogKind::GroupInstance => "/api/management/log/group-instance-logs.json",
            LogKind::RouteRule => "/api/management/log/route-rule-logs.json",
            LogKind::RouteRuleGroup => "/api/management/log/route-rule-group-logs.json",
            LogKind::ServiceInstance => "/api/management/log/service-instance-logs.json",
        }
    }
}

/// The filters of a log query; a field left `None` matches every row, and a field the log does
/// not have is ignored by the server. The fields are those of Java's nine log requests, all of
/// them (as the DTOs above are Java's, whole): build one with `..LogFilter::default()`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogFilter {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_rule_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator_id: Option<String>,
    /// Operation logs only: `true` for pull-ins, `false` for pull-outs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub complete: Option<bool>,
}

/// One app's canary: its group in the service's canary rule and the ips of its instances that
/// take the canary traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Canary {
    pub app_id: String,
    pub group_id: i64,
    pub ips: Vec<String>,
}

/// Any reply, kept whole, with its `responseStatus` read for failover.
struct Raw {
    status: Option<ResponseStatus>,
    value: Value,
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Raw, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let status = value
            .get("responseStatus")
            .and_then(|s| ResponseStatus::deserialize(s).ok());
        Ok(Raw { status, value })
    }
}

impl Reply for Raw {
    fn response_status(&self) -> Option<&ResponseStatus> {
        self.status.as_ref()
    }
}

/// `{"name": value}`.
fn one_field(name: &str, value: impl Serialize) -> Value {
    json!({ name: value })
}

/// The rows of `field` in `reply`, read as `T` (rows that do not read are skipped).
fn rows<T: DeserializeOwned>(reply: &Value, field: &str) -> Vec<T> {
    let list = reply[field].as_array().map(Vec::as_slice).unwrap_or(&[]);
    list.iter()
        .filter_map(|row| T::deserialize(row).ok())
        .collect()
}

impl ManagementClient {
    /// A client for the registry `config` names, writing as `operator` (the operation logs name
    /// it). Calls need a tokio runtime; making the client does not.
    pub fn new(
        config: ClientConfig,
        operator: impl Into<String>,
    ) -> Result<ManagementClient, Error> {
        config.check()?;
        let operator = operator.into();
        if operator.trim().is_empty() {
            return Err(Error::Config("the operator is blank".into()));
        }
        Ok(ManagementClient {
            failover: Failover::new(&config, UP_REGISTRY_NODES).for_management(None)?,
            operator,
            token: None,
        })
    }

    /// Sends `token` (the server's `--management-token`) with every call, as
    /// `Authorization: Bearer` and in each write's `token` field.
    pub fn with_token(mut self, token: impl Into<String>) -> Result<ManagementClient, Error> {
        let token = token.into();
        self.failover = self.failover.for_management(Some(&token))?;
        self.token = Some(token);
        Ok(self)
    }

    /// `POST path` with `request` (any management endpoint, as it is): the server's reply when
    /// it answered `success`.
    pub async fn call(&self, path: &str, request: &Value) -> Result<Value, Error> {
        let body = Bytes::from(request.to_string());
        let reply: Raw = self.failover.call(path, body).await?;
        Ok(reply.value)
    }

    /// A write to `path`: `request` with Java's operation context added (`operation`, unless
    /// the request names one, `operatorId` and `token`).
    pub async fn write(&self, path: &str, operation: &str, request: Value) -> Result<Value, Error> {
        let mut request = request;
        if let Some(fields) = request.as_object_mut() {
            fields
                .entry("operation")
                .or_insert_with(|| operation.into());
            fields.insert("operatorId".into(), self.operator.clone().into());
            let token = self.token.as_deref().unwrap_or(NO_TOKEN);
            fields.insert("token".into(), token.into());
        }
        self.call(path, &request).await
    }

    /// Every service's leased instances, each `up` or `down` (`services.json`).
    pub async fn services(&self) -> Result<Value, Error> {
        self.call("/api/management/services.json", &json!({})).await
    }

    /// One service's leased instances and its groups (`service.json`).
    pub async fn service(&self, service_id: &str) -> Result<Value, Error> {
        let request = json!({ "serviceId": service_id });
        self.call("/api/management/service.json", &request).await
    }

    /// The node's own status (`status/node.json`): its URL, region, zone and state.
    pub async fn node_status(&self) -> Result<Value, Error> {
        self.call("/api/status/node.json", &json!({})).await
    }

    /// The status of every node of the cluster, as the node asked knows it
    /// (`status/cluster.json`).
    pub async fn cluster_status(&self) -> Result<Value, Error> {
        self.call("/api/status/cluster.json", &json!({})).await
    }

    /// Takes `target` out of discovery.
    pub async fn pull_out(&self, target: &OperationTarget) -> Result<Value, Error> {
        self.operate(target, false).await
    }

    /// Puts back what [`pull_out`](Self::pull_out) took out (Java's "operation complete").
    pub async fn pull_in(&self, target: &OperationTarget) -> Result<Value, Error> {
        self.operate(target, true).await
    }

    async fn operate(&self, target: &OperationTarget, complete: bool) -> Result<Value, Error> {
        let (path, request) = match target {
            OperationTarget::Instance {
                region_id,
                service_id,
                instance_id,
            } => (
                "/api/management/operate-instance.json",
                json!({
                    "instanceKey": {
                        "instanceId": instance_id, "regionId": region_id, "serviceId": service_id,
                    },
                    "operationComplete": complete,
                }),
            ),
            OperationTarget::Server {
                region_id,
                server_id,
            } => (
                "/api/management/operate-server.json",
                json!({
                    "serverKey": { "regionId": region_id, "serverId": server_id },
                    "operationComplete": complete,
                }),
            ),
            OperationTarget::Zone {
                region_id,
                service_id,
                zone_id,
            } => (
                "/api/management/zone/operate-zone-operations.json",
                json!({
                    "zoneOperationsList": [{
                        "operations": [PULL_OUT],
                        "zoneKey": { "regionId": region_id, "serviceId": service_id, "zoneId": zone_id },
                    }],
                    "operationComplete": complete,
                }),
            ),
            OperationTarget::Group { group_id } => (
                "/api/management/group/operate-group-operations.json",
                json!({
                    "groupOperationsList": [{ "groupId": group_id, "operations": [PULL_OUT] }],
                    "operationComplete": complete,
                }),
            ),
        };
        self.write(path, PULL_OUT, request).await
    }

    /// The operations on `target` (`operations`, or `null` when there is none).
    pub async fn operations(&self, target: &OperationTarget) -> Result<Value, Error> {
        let (path, request) = match target {
            OperationTarget::Instance {
                region_id,
                service_id,
                instance_id,
            } => (
                "/api/management/instance-operations.json",
                json!({ "instanceKey": {
                    "instanceId": instance_id, "regionId": region_id, "serviceId": service_id,
                }}),
            ),
            OperationTarget::Server {
                region_id,
                server_id,
            } => (
                "/api/management/server-operations.json",
                json!({ "serverKey": { "regionId": region_id, "serverId": server_id } }),
            ),
            OperationTarget::Zone {
                region_id,
                service_id,
                zone_id,
            } => (
                "/api/management/zone/get-zone-operations.json",
                json!({ "zoneKey": {
                    "regionId": region_id, "serviceId": service_id, "zoneId": zone_id,
                }}),
            ),
            OperationTarget::Group { group_id } => (
                "/api/management/group/get-group-operations.json",
                json!({ "groupId": group_id }),
            ),
        };
        self.call(path, &request).await
    }

    /// Every operation of one kind (in `region_id`, or all regions; groups have none). The
    /// reply's list is `allInstanceOperations`, `allServerOperations`, `allZoneOperations` or
    /// `allGroupOperations`.
    pub async fn all_operations(
        &self,
        kind: OperationKind,
        region_id: Option<&str>,
    ) -> Result<Value, Error> {
        let path = match kind {
            OperationKind::Instance => "/api/management/all-instance-operations.json",
            OperationKind::Server => "/api/management/all-server-operations.json",
            OperationKind::Zone => "/api/management/zone/get-all-zone-operations.json",
            OperationKind::Group => "/api/management/group/get-all-group-operations.json",
        };
        self.call(path, &json!({ "regionId": region_id })).await
    }

    /// Every record of kind `R` (listed under `R::FIELD`).
    pub async fn all<R: Record>(&self) -> Result<Value, Error> {
        let path = format!("/api/management/group/get-all-{}.json", R::PATH);
        self.call(&path, &json!({})).await
    }

    /// The record of kind `R` with id `id`, if there is one.
    pub async fn one<R: Record>(&self, id: i64) -> Result<Option<R>, Error> {
        let all = self.all::<R>().await?;
        Ok(rows::<R>(&all, R::FIELD).into_iter().find(|r| r.id() == id))
    }

    /// The stored record with `like`'s key, if there is one (the id the server gave an insert).
    pub async fn find<R: Record>(&self, like: &R) -> Result<Option<R>, Error> {
        let all = self.all::<R>().await?;
        Ok(rows::<R>(&all, R::FIELD)
            .into_iter()
            .find(|r| r.same_key(like)))
    }

    /// Stores `records` (one whose key is stored already updates that one).
    pub async fn insert<R: Record>(&self, records: &[R]) -> Result<Value, Error> {
        self.write_records("insert", records).await
    }

    /// Changes `records`, each found by its id (or, with id 0, by its key).
    pub async fn update<R: Record>(&self, records: &[R]) -> Result<Value, Error> {
        self.write_records("update", records).await
    }

    /// Deletes the records of kind `R` with these ids.
    pub async fn delete<R: Record>(&self, ids: &[i64]) -> Result<Value, Error> {
        let path = format!("/api/management/group/delete-{}.json", R::PATH);
        self.write(&path, "delete", one_field(R::IDS, ids)).await
    }

    /// An `operation` (`insert`, `update`, `release`) of `records` at Java's path for it.
    async fn write_records<R: Record>(
        &self,
        operation: &str,
        records: &[R],
    ) -> Result<Value, Error> {
        let path = format!("/api/management/group/{operation}-{}.json", R::PATH);
        self.write(&path, operation, one_field(R::FIELD, records))
            .await
    }

    /// The instances named into groups (`groupInstances`: `groupId`, `id`, `instanceId`),
    /// filtered by group and instance when given.
    pub async fn group_instances(
        &self,
        group_id: Option<i64>,
        instance_id: Option<&str>,
    ) -> Result<Value, Error> {
        let request = json!({ "groupId": group_id, "instanceId": instance_id });
        let path = "/api/management/group/get-group-instances.json";
        self.call(path, &request).await
    }

    /// Names `instance_ids` into group `group_id`.
    pub async fn insert_group_instances(
        &self,
        group_id: i64,
        instance_ids: &[String],
    ) -> Result<Value, Error> {
        let rows: Vec<Value> = instance_ids
            .iter()
            .map(|id| json!({ "groupId": group_id, "instanceId": id }))
            .collect();
        let request = json!({ "groupInstances": rows });
        let path = "/api/management/group/insert-group-instances.json";
        self.write(path, "insert", request).await
    }

    /// Removes the group-instance rows with these ids (the `id` of
    /// [`group_instances`](Self::group_instances)).
    pub async fn delete_group_instances(&self, ids: &[i64]) -> Result<Value, Error> {
        let request = json!({ "groupInstanceIds": ids });
        let path = "/api/management/group/delete-group-instances.json";
        self.write(path, "delete", request).await
    }

    /// Every group's tags (`allGroupTags`), or one group's (`groupTags`, `null` when none).
    pub async fn group_tags(&self, group_id: Option<i64>) -> Result<Value, Error> {
        match group_id {
            Some(group_id) => {
                let path = "/api/management/group/get-group-tags.json";
                self.call(path, &json!({ "groupId": group_id })).await
            }
            None => {
                let path = "/api/management/group/get-all-group-tags.json";
                self.call(path, &json!({})).await
            }
        }
    }

    /// Sets `tags` on group `group_id` (a tag it has is given the new value; the others stay).
    pub async fn set_group_tags(
        &self,
        group_id: i64,
        tags: &BTreeMap<String, String>,
    ) -> Result<Value, Error> {
        let request = json!({ "groupTagsList": [{ "groupId": group_id, "tags": tags }] });
        let path = "/api/management/group/update-group-tags.json";
        self.write(path, "update", request).await
    }

    /// Deletes the tags of group `group_id` named `tag` (every tag when `None`), or only those
    /// whose value is `value`.
    pub async fn delete_group_tags(
        &self,
        group_id: i64,
        tag: Option<&str>,
        value: Option<&str>,
    ) -> Result<Value, Error> {
        let request = json!({ "groupId": group_id, "tag": tag, "value": value });
        let path = "/api/management/group/delete-group-tags.json";
        self.write(path, "delete", request).await
    }

    /// Makes each group's unreleased weight its weight, the one discovery shows (matched on rule
    /// and group).
    pub async fn release_route_rule_groups(
        &self,
        groups: &[RouteRuleGroup],
    ) -> Result<Value, Error> {
        self.write_records("release", groups).await
    }

    /// Sets the ips of `app_id`'s instances that take `service_id`'s canary traffic to exactly
    /// `ips` (empty: none); the service's canary rule and the app's canary group are made when
    /// missing.
    pub async fn set_canary_ips(
        &self,
        service_id: &str,
        app_id: &str,
        ips: &[String],
    ) -> Result<Value, Error> {
        let request = json!({ "serviceId": service_id, "appId": app_id, "canaryIps": ips });
        let path = "/api/management/canary/update-canary-ips.json";
        self.write(path, "update", request).await
    }

    /// The canaries of `service_id`: each app's group in the service's canary rule and the ips
    /// it names (Java has no endpoint for this; it is read from the rule, its groups and their
    /// instances).
    pub async fn canaries(&self, service_id: &str) -> Result<Vec<Canary>, Error> {
        let rules = self.all::<ServiceRouteRule>().await?;
        let Some(rule) = rows::<ServiceRouteRule>(&rules, ServiceRouteRule::FIELD)
            .into_iter()
            .find(|r| r.name == CANARY_RULE && r.service_id.eq_ignore_ascii_case(service_id))
        else {
            return Ok(Vec::new());
        };
        let in_rule: Vec<i64> =
            rows::<RouteRuleGroup>(&self.all::<RouteRuleGroup>().await?, RouteRuleGroup::FIELD)
                .into_iter()
                .filter(|g| g.route_rule_id == rule.route_rule_id)
                .map(|g| g.group_id)
                .collect();
        let groups = rows::<Group>(&self.all::<Group>().await?, Group::FIELD);
        let named = self.group_instances(None, None).await?;
        let named = named["groupInstances"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let canaries = groups
            .into_iter()
            .filter(|g| in_rule.contains(&g.group_id) && g.zone_id == CANARY_ZONE)
            .map(|g| Canary {
                ips: named
                    .iter()
                    .filter(|row| row["groupId"].as_i64() == Some(g.group_id))
                    .filter_map(|row| row["instanceId"].as_str().map(str::to_string))
                    .collect(),
                app_id: g.app_id.unwrap_or(g.name),
                group_id: g.group_id,
            })
            .collect();
        Ok(canaries)
    }

    /// The newest rows (at most 1000) of one operation log that match `filter` (`logs`).
    pub async fn logs(&self, kind: LogKind, filter: &LogFilter) -> Result<Value, Error> {
        let request = serde_json::to_value(filter).unwrap_or_else(|_| json!({}));
        self.call(kind.path(), &request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_serialize_as_javas_dtos() {
        let mut group = Group::new("svc", "SHA", "SHAJQ", "blue");
        group.status = Some("active".into());
        assert_eq!(
            serde_json::to_value(&group).unwrap(),
            json!({"groupId":0,"serviceId":"svc","regionId":"SHA","zoneId":"SHAJQ","name":"blue",
                   "appId":null,"description":null,"status":"active"})
        );
        let read: Group =
            serde_json::from_value(json!({"groupId":7,"groupKey":"x","name":"n"})).unwrap();
        assert_eq!((read.group_id, read.name.as_str()), (7, "n"));
        let weight = serde_json::to_value(RouteRuleGroup::new(1, 2, 30)).unwrap();
        assert_eq!(weight["unreleasedWeight"], 30);
        assert_eq!(weight["routeRuleId"], 1);
        let filter = LogFilter {
            service_id: Some("svc".into()),
            complete: Some(false),
            ..LogFilter::default()
        };
        assert_eq!(
            serde_json::to_value(&filter).unwrap(),
            json!({"serviceId":"svc","complete":false})
        );
    }

    #[test]
    fn a_reply_is_kept_whole_with_its_status() {
        let raw: Raw = serde_json::from_str(
            r#"{"logs":[],"responseStatus":{"errorCode":"success","message":"","status":"success"}}"#,
        )
        .unwrap();
        assert!(raw.response_status().is_some());
        assert_eq!(raw.value["logs"], json!([]));
        let raw: Raw = serde_json::from_str("[1]").unwrap();
        assert!(raw.response_status().is_none());
    }

    #[test]
    fn a_blank_operator_or_a_bad_token_is_refused() {
        let config = ClientConfig::new(["http://127.0.0.1:8080"]);
        assert!(ManagementClient::new(config.clone(), " ").is_err());
        let client = ManagementClient::new(config, "alice").unwrap();
        assert!(client.with_token("a\nb").is_err());
    }
}
