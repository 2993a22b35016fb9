//! Where management data lives: one interface, an embedded SQLite database by default and a
//! PostgreSQL database shared by the nodes of a cluster.
//!
//! A store is driven from the management thread only (see `management::worker`), never from a
//! shard core. Each [`Change`] is applied in one transaction together with its operation-log
//! row, so a change is either wholly committed (and then acknowledged) or not at all. After a
//! change the thread reloads the whole [`ManagementData`]: it is small, and reloading keeps the
//! in-memory state exactly what the database holds, whoever wrote it.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use artemis_shards::management::{
    Group, ManagementData, OperationContext, RouteRule, RouteRuleGroup, ServiceInstance,
};

/// A management write, as the endpoints of `docs/management.md` ask for it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Write {
    /// Pull an instance out (`complete == false`) or back in (`true`).
    Instance {
        region_id: String,
        service_id: String,
        instance_id: String,
        operation: String,
        complete: bool,
    },
    /// Pull every instance on a server (by `ip`) out, or back in.
    Server {
        region_id: String,
        server_id: String,
        operation: String,
        complete: bool,
    },
    /// Insert (or, with `complete`, delete) each zone's operations.
    Zones {
        zones: Vec<ZoneOperations>,
        complete: bool,
    },
    InsertRouteRules(Vec<RouteRule>),
    UpdateRouteRules(Vec<RouteRule>),
    DeleteRouteRules(Vec<i64>),
    /// Java's `createServiceRouteRules`: the rule and its groups, inserted if missing, with the
    /// groups' unreleased weights set.
    CreateRouteRule {
        rule: RouteRule,
        groups: Vec<(Group, Option<i64>)>,
    },
    /// Insert or update by (routeRuleId, groupId); only `unreleased_weight` is stored.
    InsertRouteRuleGroups(Vec<RouteRuleGroup>),
    UpdateRouteRuleGroups(Vec<RouteRuleGroup>),
    /// `weight := unreleased_weight` for each (routeRuleId, groupId).
    ReleaseRouteRuleGroups(Vec<RouteRuleGroup>),
    DeleteRouteRuleGroups(Vec<i64>),
    /// Upsert on (serviceId, regionId, zoneId, name).
    InsertGroups(Vec<Group>),
    UpdateGroups(Vec<Group>),
    DeleteGroups(Vec<i64>),
    /// Upsert each tag of each group.
    InsertGroupTags(Vec<GroupTags>),
    UpdateGroupTags(Vec<GroupTags>),
    /// Delete the tags matching every filter given.
    DeleteGroupTags {
        group_id: Option<i64>,
        tag: Option<String>,
        value: Option<String>,
    },
    /// Insert (or, with `complete`, delete) each group's operations.
    GroupOperations {
        groups: Vec<GroupOperations>,
        complete: bool,
    },
    /// Find or create the group, then insert (or delete) one operation on it.
    GroupOperation {
        group: Group,
        operation: String,
        complete: bool,
    },
    /// `(group_id, instance_id)` pairs.
    InsertGroupInstances(Vec<(i64, String)>),
    DeleteGroupInstances(Vec<i64>),
    /// Upsert on (serviceId, instanceId).
    InsertServiceInstances(Vec<ServiceInstance>),
    DeleteServiceInstances(Vec<i64>),
    /// Java's canary update: the service's `canary-route-rule` and the app's group in zone
    /// `canary` found or created, and the group's instance ids set to exactly `ips`.
    CanaryIps {
        service_id: String,
        app_id: String,
        region_id: String,
        ips: Vec<String>,
    },
}

/// The operations on one zone of one service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ZoneOperations {
    pub region_id: String,
    pub service_id: String,
    pub zone_id: String,
    pub operations: Vec<String>,
}

/// The operations on one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GroupOperations {
    pub group_id: i64,
    pub operations: Vec<String>,
}

/// The tags of one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GroupTags {
    pub group_id: i64,
    pub tags: BTreeMap<String, String>,
}

/// A write with who asked for it; what the operation log records.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Change {
    pub write: Write,
    pub context: OperationContext,
}

/// The nine operation logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogKind {
    Instance,
    Server,
    GroupOperation,
    Group,
    RouteRule,
    RouteRuleGroup,
    ZoneOperation,
    GroupInstance,
    ServiceInstance,
}

/// One value of a log row or filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LogValue {
    Null,
    Text(String),
    Int(i64),
    Bool(bool),
}

/// A query of one log: rows whose column equals each given value (Java's filter fields, by
/// their JSON names), newest first, at most `limit`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LogQuery {
    pub kind: LogKind,
    pub filters: Vec<(&'static str, LogValue)>,
    pub limit: usize,
}

/// One log row: its fields by JSON name, in alphabetical order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LogRow(pub Vec<(&'static str, LogValue)>);

/// Why a store call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StoreError {
    /// The database cannot be reached (or its connection broke); nothing was committed.
    Unavailable(String),
    /// The write breaks a rule of the data (a missing field, an unknown id); nothing was committed.
    Invalid(String),
    /// The database refused or failed the statement; nothing was committed.
    Failed(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Unavailable(why) => write!(f, "management store is unavailable: {why}"),
            StoreError::Invalid(why) => write!(f, "{why}"),
            StoreError::Failed(why) => write!(f, "management store failed: {why}"),
        }
    }
}

/// A management database.
pub(crate) trait Store: Send {
    /// Applies the change and its log row in one transaction, at `now_ms`; returns once
    /// committed. A PostgreSQL store also notifies the other nodes.
    fn apply(&mut self, change: &Change, now_ms: u64) -> Result<(), StoreError>;
    /// Everything but the logs.
    fn load(&mut self) -> Result<ManagementData, StoreError>;
    /// Rows of one log.
    fn logs(&mut self, query: &LogQuery) -> Result<Vec<LogRow>, StoreError>;
    /// What watches for other nodes' changes, for a store shared between nodes.
    fn watcher(&self) -> Option<Box<dyn Watcher>>;
}

/// Waits for other nodes' changes to a shared store, on a thread of its own.
pub(crate) trait Watcher: Send {
    /// Blocks up to `wait` for a change notice; `Ok(true)` when one came. Reconnects by itself
    /// after an error (reported once as `Err`).
    fn wait(&mut self, wait: Duration) -> Result<bool, StoreError>;
}

mod postgres;
mod schema;
mod sql;
mod sqlite;
#[cfg(test)]
mod tests;

/// Where a node keeps its management data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StoreLocation {
    /// `management.db` in this data directory: the node's own.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL database, by URL, that the nodes of a cluster share.
    Postgres(String),
}

/// Opens the store at `location` and brings its schema up to date. A PostgreSQL database that
/// cannot be reached yet is not an error: the store connects (and migrates) on its first call
/// that finds the database up, so that a node can start while its database is down.
pub(crate) fn open(location: &StoreLocation) -> Result<Box<dyn Store>, StoreError> {
    Ok(match location {
        StoreLocation::Sqlite(data_dir) => Box::new(sqlite::SqliteStore::open(data_dir)?),
        StoreLocation::Postgres(url) => Box::new(self::postgres::PostgresStore::open(url)?),
    })
}
