//! One suite of the store's behaviours, run over both backends: each behaviour is a function
//! of a store (or of a database, for opening and migrating), run once on a fresh SQLite
//! directory and once on a fresh PostgreSQL database.
//!
//! PostgreSQL tests use the server at `ARTEMIS_TEST_POSTGRES` (a URL whose user may create
//! databases, e.g. `postgres://postgres:postgres@127.0.0.1:5432/postgres`), creating a database
//! of their own and dropping it after. Without it they are skipped, except under CI (`CI` set),
//! where they fail.

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use artemis_shards::management::{
    Group, ManagementData, OperationContext, RouteRule, RouteRuleGroup, ServiceInstance,
};

use super::{
    open, schema, Change, GroupOperations, GroupTags, LogKind, LogQuery, LogRow, LogValue, Store,
    StoreError, StoreLocation, Write, ZoneOperations,
};

const NOW: u64 = 1_700_000_000_000;

/// A database the suite can open stores on, and reach behind the store's back.
trait Database {
    fn location(&self) -> StoreLocation;
    /// Runs one statement directly (to play an older or newer server).
    fn execute(&self, sql: &str);
    fn schema_versions(&self) -> Vec<i64>;

    fn open(&self) -> Box<dyn Store> {
        open(&self.location()).expect("open the store")
    }
}

/// A name no other test (or test run) uses.
fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}_{}_{nanos}_{n}", std::process::id())
}

/// A fresh data directory, removed after.
struct SqliteDatabase {
    dir: PathBuf,
}

impl SqliteDatabase {
    fn new() -> SqliteDatabase {
        let dir = std::env::temp_dir().join(unique_name("artemis_store"));
        SqliteDatabase {
            dir: dir.join("data"),
        }
    }

    fn connection(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.dir.join("management.db")).expect("open management.db")
    }
}

impl Drop for SqliteDatabase {
    fn drop(&mut self) {
        if let Some(parent) = self.dir.parent() {
            let _ = std::fs::remove_dir_all(parent);
        }
    }
}

impl Database for SqliteDatabase {
    fn location(&self) -> StoreLocation {
        StoreLocation::Sqlite(self.dir.clone())
    }

    fn execute(&self, sql: &str) {
        self.connection().execute(sql, []).expect(sql);
    }

    fn schema_versions(&self) -> Vec<i64> {
        let connection = self.connection();
        let mut statement = connection
            .prepare("SELECT version FROM schema_version")
            .unwrap();
        let versions = statement.query_map([], |row| row.get(0)).unwrap();
        versions.collect::<Result<_, _>>().unwrap()
    }
}

/// A fresh database on the test server, dropped after.
struct PostgresDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PostgresDatabase {
    /// `None` (the test is skipped) when no server is configured, outside CI.
    fn new() -> Option<PostgresDatabase> {
        let Ok(admin_url) = std::env::var("ARTEMIS_TEST_POSTGRES") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "ARTEMIS_TEST_POSTGRES is not set: CI runs the PostgreSQL store tests against \
                 the server .ci/run starts"
            );
            eprintln!("skipped: set ARTEMIS_TEST_POSTGRES to run the PostgreSQL store tests");
            return None;
        };
        let name = unique_name("artemis_test");
        let (base, query) = match admin_url.split_once('?') {
            Some((base, query)) => (base, format!("?{query}")),
            None => (admin_url.as_str(), String::new()),
        };
        let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
        let url = format!("{server}/{name}{query}");
        admin(&admin_url, &format!("CREATE DATABASE {name}"));
        Some(PostgresDatabase {
            admin_url,
            name,
            url,
        })
    }

    fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).expect("connect to the test database")
    }
}

fn admin(url: &str, sql: &str) {
    let mut client = postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to ARTEMIS_TEST_POSTGRES ({url}): {e}"));
    client.batch_execute(sql).expect(sql);
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        admin(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

impl Database for PostgresDatabase {
    fn location(&self) -> StoreLocation {
        StoreLocation::Postgres(self.url.clone())
    }

    fn execute(&self, sql: &str) {
        self.client().batch_execute(sql).expect(sql);
    }

    fn schema_versions(&self) -> Vec<i64> {
        let rows = self
            .client()
            .query("SELECT version FROM schema_version", &[])
            .unwrap();
        rows.iter().map(|row| row.get(0)).collect()
    }
}

/// Each behaviour, as a test on each backend.
macro_rules! on_both {
    (stores: $($store:ident),+; databases: $($database:ident),+ $(;)?) => {
        mod on_sqlite {
            $(#[test] fn $store() { super::$store(&mut *super::Database::open(&super::SqliteDatabase::new())) })+
            $(#[test] fn $database() { super::$database(&super::SqliteDatabase::new()) })+
        }
        mod on_postgres {
            $(#[test] fn $store() {
                if let Some(database) = super::PostgresDatabase::new() {
                    super::$store(&mut *super::Database::open(&database));
                }
            })+
            $(#[test] fn $database() {
                if let Some(database) = super::PostgresDatabase::new() {
                    super::$database(&database);
                }
            })+
        }
    };
}

on_both! {
    stores: upserts_are_idempotent, pull_out_then_pull_in, deletes_cascade,
        release_copies_unreleased_weights, canary_ips_are_set_exactly,
        create_route_rule_validates_and_is_idempotent, logs_are_recorded_and_filtered,
        unknown_references_are_invalid;
    databases: migrations_apply_once, newer_schema_is_refused, reopening_keeps_the_data;
}

fn context(operator: &str) -> OperationContext {
    OperationContext {
        operation: Some("test".into()),
        operator_id: Some(operator.into()),
        token: Some(format!("token-of-{operator}")),
        reason: Some("testing".into()),
        extensions: Some("{}".into()),
    }
}

fn apply_as(store: &mut dyn Store, operator: &str, write: Write) -> Result<(), StoreError> {
    let change = Change {
        write,
        context: context(operator),
    };
    store.apply(&change, NOW)
}

fn apply(store: &mut dyn Store, write: Write) {
    apply_as(store, "alice", write.clone()).unwrap_or_else(|e| panic!("{write:?}: {e}"));
}

fn load(store: &mut dyn Store) -> ManagementData {
    store.load().expect("load")
}

fn group(name: &str) -> Group {
    Group {
        service_id: "svc".into(),
        region_id: "r1".into(),
        zone_id: "z1".into(),
        name: name.into(),
        app_id: Some("app".into()),
        status: Some("active".into()),
        ..Default::default()
    }
}

fn rule(name: &str) -> RouteRule {
    RouteRule {
        service_id: "svc".into(),
        name: name.into(),
        status: Some("active".into()),
        strategy: Some("weighted-round-robin".into()),
        ..Default::default()
    }
}

fn instance_op(instance_id: &str, complete: bool) -> Write {
    Write::Instance {
        region_id: "r1".into(),
        service_id: "svc".into(),
        instance_id: instance_id.into(),
        operation: "pullout".into(),
        complete,
    }
}

fn server_op(complete: bool) -> Write {
    Write::Server {
        region_id: "r1".into(),
        server_id: "10.0.0.1".into(),
        operation: "pullout".into(),
        complete,
    }
}

fn zone_ops(zone_id: &str, operations: &[&str], complete: bool) -> Write {
    let zone = ZoneOperations {
        region_id: "r1".into(),
        service_id: "svc".into(),
        zone_id: zone_id.into(),
        operations: operations.iter().map(|op| op.to_string()).collect(),
    };
    Write::Zones {
        zones: vec![zone],
        complete,
    }
}

fn rule_group(route_rule_id: i64, group_id: i64, unreleased: i64) -> RouteRuleGroup {
    RouteRuleGroup {
        route_rule_id,
        group_id,
        weight: Some(1),
        unreleased_weight: Some(unreleased),
        ..Default::default()
    }
}

fn pull_out_group(store: &mut dyn Store, group_id: i64) {
    let operations = GroupOperations {
        group_id,
        operations: vec!["pullout".into()],
    };
    let groups = vec![operations];
    apply(
        store,
        Write::GroupOperations {
            groups,
            complete: false,
        },
    );
}

/// A group and a route rule in the store, by their ids.
fn group_and_rule(store: &mut dyn Store) -> (i64, i64) {
    apply(store, Write::InsertGroups(vec![group("g1")]));
    apply(store, Write::InsertRouteRules(vec![rule("rule1")]));
    let data = load(store);
    (data.groups[0].group_id, data.route_rules[0].route_rule_id)
}

fn upserts_are_idempotent(store: &mut dyn Store) {
    apply(store, instance_op("inst-1", false));
    apply_as(store, "bob", instance_op("inst-1", false)).unwrap();
    // Instance keys match case-insensitively on their ids; the first spelling stays.
    let shouted = Write::Instance {
        region_id: "R1".into(),
        service_id: "SVC".into(),
        instance_id: "INST-1".into(),
        operation: "pullout".into(),
        complete: false,
    };
    apply_as(store, "carol", shouted).unwrap();
    apply(store, server_op(false));
    apply(store, server_op(false));
    // Zone keys are case-sensitive.
    apply(store, zone_ops("z1", &["pullout"], false));
    apply(store, zone_ops("z1", &["pullout"], false));
    apply(store, zone_ops("Z1", &["pullout"], false));
    apply(store, Write::InsertGroups(vec![group("g1")]));
    let described = Group {
        description: Some("second".into()),
        ..group("g1")
    };
    apply(store, Write::InsertGroups(vec![described]));
    apply(
        store,
        Write::InsertRouteRules(vec![rule("rule1"), rule("rule1")]),
    );
    let instance = ServiceInstance {
        service_id: "svc".into(),
        instance_id: "logical-1".into(),
        port: 8080,
        metadata: Some(BTreeMap::from([("k\"1".into(), "v\u{e9}".into())])),
        ..Default::default()
    };
    apply(store, Write::InsertServiceInstances(vec![instance.clone()]));
    let moved = ServiceInstance {
        port: 9090,
        ..instance
    };
    apply(store, Write::InsertServiceInstances(vec![moved]));

    let data = load(store);
    assert_eq!(data.instance_operations.len(), 1);
    let op = &data.instance_operations[0];
    assert_eq!(
        (op.region_id.as_str(), op.instance_id.as_str()),
        ("r1", "inst-1")
    );
    assert_eq!(op.operator_id, "carol");
    assert_eq!(op.token.as_deref(), Some("token-of-carol"));
    assert_eq!(data.server_operations.len(), 1);
    let zones: Vec<&str> = data
        .zone_operations
        .iter()
        .map(|z| z.zone_id.as_str())
        .collect();
    assert_eq!(zones, ["z1", "Z1"]);
    assert_eq!(data.groups.len(), 1);
    assert_eq!(data.groups[0].description.as_deref(), Some("second"));
    assert_eq!(data.route_rules.len(), 1);
    assert_eq!(data.service_instances.len(), 1);
    let logical = &data.service_instances[0];
    assert_eq!(logical.port, 9090);
    let metadata = logical.metadata.as_ref().expect("metadata kept");
    assert_eq!(metadata.get("k\"1").map(String::as_str), Some("v\u{e9}"));
}

fn pull_out_then_pull_in(store: &mut dyn Store) {
    apply(store, instance_op("inst-1", false));
    apply(store, server_op(false));
    apply(store, zone_ops("z1", &["pullout", "maintenance"], false));
    let data = load(store);
    assert_eq!(data.instance_operations.len(), 1);
    assert_eq!(data.server_operations.len(), 1);
    assert_eq!(data.zone_operations.len(), 2);

    apply(store, instance_op("INST-1", true));
    apply(store, server_op(true));
    apply(store, zone_ops("z1", &["pullout", "maintenance"], true));
    let data = load(store);
    assert!(data.instance_operations.is_empty());
    assert!(data.server_operations.is_empty());
    assert!(data.zone_operations.is_empty());

    // A group operation finds or creates its group.
    let operate = |complete| Write::GroupOperation {
        group: group("g1"),
        operation: "pullout".into(),
        complete,
    };
    apply(store, operate(false));
    let data = load(store);
    assert_eq!(data.groups.len(), 1);
    assert_eq!(data.group_operations.len(), 1);
    let group_id = data.groups[0].group_id;
    assert_eq!(data.group_operations[0].group_id, group_id);
    apply(store, operate(true));
    let data = load(store);
    assert_eq!(data.groups.len(), 1, "the group stays");
    assert!(data.group_operations.is_empty());

    let operations = GroupOperations {
        group_id,
        operations: vec!["a".into(), "b".into()],
    };
    let write = |complete| Write::GroupOperations {
        groups: vec![operations.clone()],
        complete,
    };
    apply(store, write(false));
    assert_eq!(load(store).group_operations.len(), 2);
    apply(store, write(true));
    assert!(load(store).group_operations.is_empty());
}

fn deletes_cascade(store: &mut dyn Store) {
    let (group_id, route_rule_id) = group_and_rule(store);
    apply(store, Write::InsertGroups(vec![group("g2")]));
    let other_group = load(store).groups[1].group_id;
    let tags = |group_id| GroupTags {
        group_id,
        tags: BTreeMap::from([("a".into(), "1".into()), ("b".into(), "2".into())]),
    };
    apply(
        store,
        Write::InsertGroupTags(vec![tags(group_id), tags(other_group)]),
    );
    pull_out_group(store, group_id);
    let instances = vec![(group_id, "i1".to_owned()), (other_group, "i2".to_owned())];
    apply(store, Write::InsertGroupInstances(instances));
    let weights = vec![
        rule_group(route_rule_id, group_id, 10),
        rule_group(route_rule_id, other_group, 20),
    ];
    apply(store, Write::InsertRouteRuleGroups(weights));

    apply(store, Write::DeleteGroups(vec![group_id, 999_999]));
    let data = load(store);
    assert_eq!(
        data.groups.iter().map(|g| g.group_id).collect::<Vec<_>>(),
        [other_group]
    );
    assert!(data.group_tags.iter().all(|t| t.group_id == other_group));
    assert_eq!(data.group_tags.len(), 2);
    assert!(data.group_operations.is_empty());
    assert_eq!(data.group_instances.len(), 1);
    assert_eq!(data.route_rule_groups.len(), 1);

    apply(store, Write::DeleteRouteRules(vec![route_rule_id]));
    let data = load(store);
    assert!(data.route_rules.is_empty());
    assert!(data.route_rule_groups.is_empty());
    assert_eq!(data.groups.len(), 1, "a rule's groups outlive it");

    let by_tag = Write::DeleteGroupTags {
        group_id: None,
        tag: Some("a".into()),
        value: None,
    };
    apply(store, by_tag);
    let tags: Vec<String> = load(store).group_tags.into_iter().map(|t| t.tag).collect();
    assert_eq!(tags, ["b"]);
    let everything = Write::DeleteGroupTags {
        group_id: None,
        tag: None,
        value: None,
    };
    assert!(matches!(
        apply_as(store, "alice", everything),
        Err(StoreError::Invalid(_))
    ));

    let instance_id = load(store).group_instances[0].id;
    apply(store, Write::DeleteGroupInstances(vec![instance_id]));
    assert!(load(store).group_instances.is_empty());
    let logical = ServiceInstance {
        service_id: "svc".into(),
        instance_id: "l1".into(),
        ..Default::default()
    };
    apply(store, Write::InsertServiceInstances(vec![logical]));
    let logical_id = load(store).service_instances[0].id;
    apply(store, Write::DeleteServiceInstances(vec![logical_id]));
    assert!(load(store).service_instances.is_empty());
}

fn release_copies_unreleased_weights(store: &mut dyn Store) {
    let (group_id, route_rule_id) = group_and_rule(store);
    let weights = |unreleased| vec![rule_group(route_rule_id, group_id, unreleased)];
    apply(store, Write::InsertRouteRuleGroups(weights(100)));
    let stored = load(store).route_rule_groups;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].weight, stored[0].unreleased_weight),
        (None, Some(100)),
        "weight is not taken from a request"
    );

    apply(store, Write::UpdateRouteRuleGroups(weights(200)));
    apply(store, Write::ReleaseRouteRuleGroups(weights(0)));
    let stored = load(store).route_rule_groups;
    assert_eq!(
        (stored[0].weight, stored[0].unreleased_weight),
        (Some(200), Some(200))
    );

    // By id, and without touching the released weight.
    let by_id = RouteRuleGroup {
        route_rule_group_id: stored[0].route_rule_group_id,
        ..rule_group(route_rule_id, group_id, 300)
    };
    apply(store, Write::UpdateRouteRuleGroups(vec![by_id]));
    let stored = load(store).route_rule_groups;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].weight, stored[0].unreleased_weight),
        (Some(200), Some(300))
    );

    apply(
        store,
        Write::DeleteRouteRuleGroups(vec![stored[0].route_rule_group_id]),
    );
    assert!(load(store).route_rule_groups.is_empty());
}

fn canary_ips_are_set_exactly(store: &mut dyn Store) {
    let canary = |ips: &[&str]| Write::CanaryIps {
        service_id: "svc".into(),
        app_id: "app1".into(),
        region_id: "r1".into(),
        ips: ips.iter().map(|ip| ip.to_string()).collect(),
    };
    apply(store, canary(&["10.0.0.1", "10.0.0.2"]));
    apply(store, canary(&["10.0.0.2", "10.0.0.3"]));
    let data = load(store);
    assert_eq!(data.route_rules.len(), 1);
    let rule = &data.route_rules[0];
    assert_eq!(rule.name, "canary-route-rule");
    assert_eq!(rule.status.as_deref(), Some("active"));
    assert_eq!(rule.strategy.as_deref(), Some("weighted-round-robin"));
    assert_eq!(data.groups.len(), 1);
    let group = &data.groups[0];
    assert_eq!(
        (group.zone_id.as_str(), group.name.as_str()),
        ("canary", "app1")
    );
    assert_eq!(group.app_id.as_deref(), Some("app1"));
    assert_eq!(group.status.as_deref(), Some("active"));
    assert_eq!(data.route_rule_groups.len(), 1);
    let weight = &data.route_rule_groups[0];
    assert_eq!(
        (weight.route_rule_id, weight.group_id),
        (rule.route_rule_id, group.group_id)
    );
    assert_eq!(
        weight.weight, None,
        "discovery resolves a missing weight to 5"
    );
    let ips: Vec<&str> = data
        .group_instances
        .iter()
        .map(|i| i.instance_id.as_str())
        .collect();
    assert_eq!(ips, ["10.0.0.2", "10.0.0.3"]);

    apply(store, canary(&[]));
    assert!(load(store).group_instances.is_empty());
}

/// Each write is refused as invalid, and none leaves anything behind.
fn all_invalid(store: &mut dyn Store, writes: impl IntoIterator<Item = Write>) {
    for write in writes {
        let result = apply_as(store, "alice", write.clone());
        let invalid = matches!(result, Err(StoreError::Invalid(_)));
        assert!(invalid, "{write:?}: {result:?}");
    }
    assert_eq!(load(store), ManagementData::default(), "nothing written");
}

fn create_route_rule_validates_and_is_idempotent(store: &mut dyn Store) {
    let create = |rule: RouteRule, groups: Vec<(Group, Option<i64>)>| Write::CreateRouteRule {
        rule,
        groups,
    };
    let good = || vec![(group("g1"), Some(10)), (group("g2"), Some(20))];
    let mut other_service = group("g1");
    other_service.service_id = "other".into();
    let mut no_app = group("g1");
    no_app.app_id = None;
    let mut blank_zone = group("g1");
    blank_zone.zone_id = " ".into();
    let invalid = [
        create(
            RouteRule {
                name: String::new(),
                ..rule("r")
            },
            good(),
        ),
        create(
            RouteRule {
                status: None,
                ..rule("r")
            },
            good(),
        ),
        create(rule("r"), vec![(other_service, Some(1))]),
        create(rule("r"), vec![(no_app, Some(1))]),
        create(rule("r"), vec![(blank_zone, Some(1))]),
        create(rule("r"), vec![(group("g1"), None)]),
    ];
    all_invalid(store, invalid);

    apply(store, create(rule("r"), good()));
    let first = load(store);
    assert_eq!(first.route_rules.len(), 1);
    assert_eq!(first.groups.len(), 2);
    let weights: Vec<Option<i64>> = first
        .route_rule_groups
        .iter()
        .map(|g| g.unreleased_weight)
        .collect();
    assert_eq!(weights, [Some(10), Some(20)]);
    assert!(first.route_rule_groups.iter().all(|g| g.weight.is_none()));

    apply(store, create(rule("r"), good()));
    assert_eq!(load(store), first, "creating again changes nothing");
    let changed = RouteRule {
        description: Some("changed".into()),
        strategy: None,
        ..rule("r")
    };
    let changed_group = Group {
        description: Some("changed".into()),
        ..group("g1")
    };
    apply(store, create(changed, vec![(changed_group, Some(10))]));
    assert_eq!(
        load(store),
        first,
        "an existing rule and group are left as they are"
    );
}

fn unknown_references_are_invalid(store: &mut dyn Store) {
    let invalid = [
        Write::GroupOperations {
            groups: vec![GroupOperations {
                group_id: 424_242,
                operations: vec!["x".into()],
            }],
            complete: false,
        },
        Write::InsertGroupTags(vec![GroupTags {
            group_id: 424_242,
            tags: BTreeMap::from([("a".into(), "b".into())]),
        }]),
        Write::InsertGroupInstances(vec![(424_242, "i".into())]),
        Write::InsertRouteRuleGroups(vec![rule_group(424_242, 424_243, 1)]),
        Write::UpdateGroups(vec![Group {
            group_id: 424_242,
            ..group("g")
        }]),
        Write::UpdateRouteRules(vec![RouteRule {
            route_rule_id: 424_242,
            ..rule("r")
        }]),
    ];
    all_invalid(store, invalid);
    // A failed write leaves the store usable, and updates by id work.
    let (group_id, _) = group_and_rule(store);
    let renamed = Group {
        group_id,
        ..group("renamed")
    };
    apply(store, Write::UpdateGroups(vec![renamed]));
    let names: Vec<String> = load(store).groups.into_iter().map(|g| g.name).collect();
    assert_eq!(names, ["renamed"]);
}

fn logs(
    store: &mut dyn Store,
    kind: LogKind,
    filters: Vec<(&'static str, LogValue)>,
    limit: usize,
) -> Vec<LogRow> {
    store
        .logs(&LogQuery {
            kind,
            filters,
            limit,
        })
        .expect("logs")
}

fn field<'a>(row: &'a LogRow, name: &str) -> &'a LogValue {
    let found = row.0.iter().find(|(field, _)| *field == name);
    &found
        .unwrap_or_else(|| panic!("no field {name} in {row:?}"))
        .1
}

fn logs_are_recorded_and_filtered(store: &mut dyn Store) {
    // A change to every table, so that every log has a row.
    apply(store, instance_op("inst-1", false));
    apply_as(store, "bob", instance_op("inst-2", false)).unwrap();
    apply(store, instance_op("inst-1", true));
    apply(store, server_op(false));
    apply(store, zone_ops("z1", &["pullout"], false));
    let (group_id, route_rule_id) = group_and_rule(store);
    pull_out_group(store, group_id);
    apply(
        store,
        Write::InsertRouteRuleGroups(vec![rule_group(route_rule_id, group_id, 5)]),
    );
    apply(
        store,
        Write::InsertGroupInstances(vec![(group_id, "i1".into())]),
    );
    let logical = ServiceInstance {
        service_id: "svc".into(),
        instance_id: "l1".into(),
        ..Default::default()
    };
    apply(store, Write::InsertServiceInstances(vec![logical]));

    let kinds = [
        LogKind::Instance,
        LogKind::Server,
        LogKind::GroupOperation,
        LogKind::Group,
        LogKind::RouteRule,
        LogKind::RouteRuleGroup,
        LogKind::ZoneOperation,
        LogKind::GroupInstance,
        LogKind::ServiceInstance,
    ];
    for kind in kinds {
        let rows = logs(store, kind, vec![], 10);
        assert!(!rows.is_empty(), "{kind:?} logged");
        let names: Vec<&str> = rows[0].0.iter().map(|(name, _)| *name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted, "{kind:?} fields in alphabetical order");
        assert_eq!(field(&rows[0], "createTime"), &LogValue::Int(NOW as i64));
        assert_eq!(
            field(&rows[0], "operatorId"),
            &LogValue::Text("alice".into())
        );
        assert!(matches!(field(&rows[0], "id"), LogValue::Int(_)));
    }
    let instance_log = logs(store, LogKind::Instance, vec![], 10);
    let names: Vec<&str> = instance_log[0].0.iter().map(|(name, _)| *name).collect();
    let expected = "complete createTime extensions id instanceId operation operatorId regionId \
                    serviceId token updateTime";
    assert_eq!(names, expected.split_whitespace().collect::<Vec<_>>());

    // Newest first; an operation log names the pull-out, not the request's operation.
    assert_eq!(instance_log.len(), 3);
    let ids: Vec<&LogValue> = instance_log.iter().map(|row| field(row, "id")).collect();
    let newest_first =
        |pair: &[&LogValue]| matches!(pair, [LogValue::Int(a), LogValue::Int(b)] if a > b);
    assert!(ids.windows(2).all(newest_first));
    let text = |s: &str| LogValue::Text(s.into());
    let by_bob = vec![("operatorId", text("bob"))];
    let by_bob = logs(store, LogKind::Instance, by_bob, 10);
    let pulled_out = vec![
        ("regionId", text("r1")),
        ("complete", LogValue::Bool(false)),
    ];
    let by_name = vec![("name", text("g1"))];
    let group_log = logs(store, LogKind::Group, by_name, 10);
    let by_group = vec![("groupId", LogValue::Int(group_id))];
    let weights = logs(store, LogKind::RouteRuleGroup, by_group, 10);
    let expected = [
        (&instance_log[0], "complete", LogValue::Bool(true)),
        (&instance_log[0], "operation", text("pullout")),
        (&instance_log[2], "instanceId", text("inst-1")),
        (&by_bob[0], "instanceId", text("inst-2")),
        (&group_log[0], "groupId", LogValue::Int(group_id)),
        (&group_log[0], "operation", text("test")),
        (&group_log[0], "reason", text("testing")),
        (&weights[0], "unreleasedWeight", LogValue::Int(5)),
        (&weights[0], "weight", LogValue::Null),
    ];
    for (row, name, value) in expected {
        assert_eq!(field(row, name), &value, "{name} of {row:?}");
    }
    assert_eq!(by_bob.len(), 1);
    assert_eq!(group_log.len(), 1);
    assert_eq!(logs(store, LogKind::Instance, pulled_out, 10).len(), 2);
    assert_eq!(logs(store, LogKind::Instance, vec![], 2).len(), 2, "limit");

    let unknown = LogQuery {
        kind: LogKind::Server,
        filters: vec![("zoneId", LogValue::Null)],
        limit: 1,
    };
    assert!(matches!(store.logs(&unknown), Err(StoreError::Invalid(_))));
}

fn migrations_apply_once(database: &dyn Database) {
    drop(database.open());
    drop(database.open());
    assert_eq!(database.schema_versions(), [schema::VERSION]);
}

fn newer_schema_is_refused(database: &dyn Database) {
    drop(database.open());
    database.execute(&format!(
        "UPDATE schema_version SET version = {}",
        schema::VERSION + 1
    ));
    let Err(StoreError::Failed(why)) = open(&database.location()) else {
        panic!("a newer schema was not refused");
    };
    assert!(why.contains("newer than this server knows"), "{why}");
}

fn reopening_keeps_the_data(database: &dyn Database) {
    let mut store = database.open();
    apply(&mut *store, instance_op("inst-1", false));
    apply(&mut *store, Write::InsertGroups(vec![group("g1")]));
    let before = load(&mut *store);
    drop(store);
    let mut store = database.open();
    assert_eq!(load(&mut *store), before);
    assert_eq!(logs(&mut *store, LogKind::Instance, vec![], 10).len(), 1);
}

#[test]
fn sqlite_has_no_watcher() {
    let database = SqliteDatabase::new();
    assert!(database.open().watcher().is_none());
}

/// A port on which nothing listens.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

#[test]
fn postgres_unreachable_is_unavailable() {
    if PostgresDatabase::new().is_none() {
        return;
    }
    let url = format!("postgres://postgres@127.0.0.1:{}/artemis", closed_port());
    let mut store = open(&StoreLocation::Postgres(url)).expect("a store that connects later");
    let started = Instant::now();
    assert!(matches!(store.load(), Err(StoreError::Unavailable(_))));
    assert!(matches!(
        apply_as(&mut *store, "alice", server_op(false)),
        Err(StoreError::Unavailable(_))
    ));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "failing took {:?}",
        started.elapsed()
    );
}

/// Forwards connections on a port of its own to the test server, until dropped; dropping it
/// also breaks the connections it carries.
struct Forwarder {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    streams: std::sync::Arc<std::sync::Mutex<Vec<TcpStream>>>,
    accepting: Option<std::thread::JoinHandle<()>>,
}

impl Forwarder {
    fn start(port: u16, to: std::net::SocketAddr) -> Forwarder {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the forwarder");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let streams = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (stopping, carried) = (stop.clone(), streams.clone());
        let accepting = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let server = TcpStream::connect(to).expect("connect to the test server");
                client.set_nonblocking(false).expect("blocking");
                let mut carried = carried.lock().expect("streams");
                for (mut from, mut into) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server.try_clone().unwrap(), client.try_clone().unwrap()),
                ] {
                    std::thread::spawn(move || std::io::copy(&mut from, &mut into));
                }
                carried.extend([client, server]);
            }
        });
        Forwarder {
            stop,
            streams,
            accepting: Some(accepting),
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(accepting) = self.accepting.take() {
            let _ = accepting.join();
        }
        for stream in self.streams.lock().expect("streams").drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// The server's address, from the test URL.
fn server_address(database: &PostgresDatabase) -> std::net::SocketAddr {
    let config: postgres::Config = database.url.parse().expect("test URL");
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(host)) => host.clone(),
        _ => "127.0.0.1".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
        .expect("resolve the test server")
        .next()
        .expect("an address")
}

#[test]
fn postgres_node_starts_while_the_database_is_down_and_reconnects() {
    let Some(database) = PostgresDatabase::new() else {
        return;
    };
    let port = closed_port();
    // The test database, reached through the forwarder's port.
    let config: postgres::Config = database.url.parse().expect("test URL");
    let user = config.get_user().unwrap_or("postgres");
    let password = config.get_password().map(String::from_utf8_lossy);
    let password = password.map_or(String::new(), |password| format!(":{password}"));
    let url = format!(
        "postgres://{user}{password}@127.0.0.1:{port}/{}",
        database.name
    );
    let mut store = open(&StoreLocation::Postgres(url)).expect("open while the database is down");
    assert!(matches!(store.load(), Err(StoreError::Unavailable(_))));

    let forwarder = Forwarder::start(port, server_address(&database));
    apply(&mut *store, server_op(false));
    assert_eq!(
        database.schema_versions(),
        [schema::VERSION],
        "the first connection migrated"
    );

    drop(forwarder);
    assert!(matches!(store.load(), Err(StoreError::Unavailable(_))));
    let _forwarder = Forwarder::start(port, server_address(&database));
    assert_eq!(
        load(&mut *store).server_operations.len(),
        1,
        "the next call reconnects"
    );
}

#[test]
fn postgres_nodes_migrate_one_at_a_time() {
    let Some(database) = PostgresDatabase::new() else {
        return;
    };
    let location = database.location();
    let nodes: Vec<_> = (0..4)
        .map(|_| {
            let location = location.clone();
            std::thread::spawn(move || open(&location).map(drop))
        })
        .collect();
    for node in nodes {
        node.join().expect("node thread").expect("open");
    }
    assert_eq!(database.schema_versions(), [schema::VERSION]);
}

#[test]
fn postgres_watcher_hears_other_nodes() {
    let Some(database) = PostgresDatabase::new() else {
        return;
    };
    let mut node_a = database.open();
    let mut node_b = database.open();
    let mut watcher = node_a.watcher().expect("a shared store has a watcher");
    assert_eq!(
        watcher.wait(Duration::from_secs(5)),
        Ok(true),
        "connecting may have missed a change"
    );
    assert_eq!(watcher.wait(Duration::from_millis(100)), Ok(false));

    apply(&mut *node_b, server_op(false));
    assert_eq!(watcher.wait(Duration::from_secs(5)), Ok(true));
    assert_eq!(watcher.wait(Duration::from_millis(100)), Ok(false));
    apply(&mut *node_a, server_op(true));
    assert_eq!(
        watcher.wait(Duration::from_secs(5)),
        Ok(true),
        "a node hears its own changes too"
    );

    // A lost connection is reported once, then the watcher listens again.
    database.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    );
    assert!(matches!(
        watcher.wait(Duration::from_secs(5)),
        Err(StoreError::Unavailable(_))
    ));
    assert_eq!(watcher.wait(Duration::from_secs(5)), Ok(true));
    apply(&mut *node_b, server_op(false));
    assert_eq!(watcher.wait(Duration::from_secs(5)), Ok(true));
}
