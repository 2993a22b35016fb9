//! What the management store does, written once for both databases.
//!
//! Each backend gives a transaction as a [`Db`]: a statement with `$1, $2, …` parameters
//! (PostgreSQL's own; in SQLite, `$N` parameters bound by name) and rows of [`Value`]s back.
//! Everything else — each [`Write`]'s statements and log rows, loading, querying the logs — is
//! here, and any [`Backend`] is a [`Store`] by it.
//!
//! Statements on groups, route rules, route-rule groups, group instances and service instances
//! are built from each row type's field list (`entity!`): a column is named as its Rust field,
//! and a log's column is its JSON field name in `snake_case`, so one list serves the
//! statements, the reads and the log. A log field is `Bool` only for `complete`.
//!
//! Writes by key (Java's `insertOrUpdate`): `Insert*` upserts on the unique key and ignores the
//! id given; `Update*` updates the row with the id given (an unknown id is
//! [`StoreError::Invalid`]), or upserts on the key like `Insert*` when the id is 0. A delete of
//! an unknown id does nothing; deleting group tags with no filter at all is refused rather than
//! taken to mean every tag. A row naming a group or route rule that does not exist is refused
//! by the database's foreign keys, as [`StoreError::Invalid`].
//!
//! The logs' fields (JSON names; [`LogTable`] lists them in alphabetical order) are those of
//! Java's log DTOs: for the operation logs those of `docs/management.md`; for the others the
//! entity's own fields, its id named `groupId`, `routeRuleId`, `routeRuleGroupId`,
//! `groupInstanceId` or `serviceInstanceId`, plus `id` (the log row's), `operation`,
//! `operatorId`, `token`, `reason`, `extensions` and `createTime`. A cascade (a group's tags,
//! operations, instances and route-rule groups deleted with it) is not logged row by row.

use std::collections::BTreeMap;

use artemis_shards::json;
use artemis_shards::management::{
    Group, GroupInstance, GroupOperation, GroupTag, InstanceOperation, ManagementData,
    OperationContext, RouteRule, RouteRuleGroup, ServerOperation, ServiceInstance, ZoneOperation,
};
use simd_json::prelude::*;

pub(super) use super::LogValue as Value;
use super::{Change, GroupTags, LogKind, LogQuery, LogRow, Store, StoreError, Watcher, Write};

/// One open transaction of a backend.
pub(super) trait Db {
    /// Runs a statement that returns no rows; how many rows it changed.
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError>;
    /// Runs a statement that returns rows: a value per column (SQLite gives a boolean as `Int`).
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, StoreError>;
}

/// What a transaction does, which a backend may care about: SQLite takes the write lock at
/// the start of a write, PostgreSQL tells the other nodes when one commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Access {
    Read,
    Write,
}

/// A database: runs work in one transaction, committed only if the work succeeds.
pub(super) trait Backend: Send {
    fn transaction<T>(
        &mut self,
        access: Access,
        work: impl FnOnce(&mut dyn Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError>;
    /// [`Store::watcher`].
    fn watch(&self) -> Option<Box<dyn Watcher>>;
}

impl<B: Backend> Store for B {
    fn apply(&mut self, change: &Change, now_ms: u64) -> Result<(), StoreError> {
        let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
        self.transaction(Access::Write, |db| {
            let context = &change.context;
            Writer { db, context, now }.apply(&change.write)
        })
    }

    fn load(&mut self) -> Result<ManagementData, StoreError> {
        self.transaction(Access::Read, load)
    }

    fn logs(&mut self, query: &LogQuery) -> Result<Vec<LogRow>, StoreError> {
        self.transaction(Access::Read, |db| logs(db, query))
    }

    fn watcher(&self) -> Option<Box<dyn Watcher>> {
        self.watch()
    }
}

/// Fields by column name, with their values.
type Fields = Vec<(&'static str, Value)>;

/// A column's name: a log field's JSON name in `snake_case`.
fn column(name: &str) -> String {
    let mut column = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            column.push('_');
        }
        column.push(c.to_ascii_lowercase());
    }
    column
}

/// `WHERE a = $1 AND b = $2 …` over these columns, or nothing for none.
fn conditions<S: AsRef<str>>(columns: impl IntoIterator<Item = S>) -> String {
    let terms: Vec<String> = columns
        .into_iter()
        .enumerate()
        .map(|(i, column)| format!("{} = ${}", column.as_ref(), i + 1))
        .collect();
    if terms.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", terms.join(" AND "))
    }
}

fn values(fields: &[(&'static str, Value)]) -> Vec<Value> {
    fields.iter().map(|(_, value)| value.clone()).collect()
}

fn failed(why: impl Into<String>) -> StoreError {
    StoreError::Failed(why.into())
}

/// The type of a row's field, as a column holds it; `Option` for a column that may be NULL.
trait Cell: Sized {
    fn from_value(value: Value) -> Result<Self, StoreError>;
    fn value(&self) -> Value;
}

impl<T: Cell> Cell for Option<T> {
    fn from_value(value: Value) -> Result<Self, StoreError> {
        match value {
            Value::Null => Ok(None),
            value => T::from_value(value).map(Some),
        }
    }
    fn value(&self) -> Value {
        self.as_ref().map_or(Value::Null, T::value)
    }
}

/// A non-NULL column of one [`Value`] variant.
macro_rules! plain_cell {
    ($type:ty, $variant:ident, $what:literal) => {
        impl Cell for $type {
            fn from_value(value: Value) -> Result<Self, StoreError> {
                match value {
                    Value::$variant(value) => Ok(value),
                    other => Err(failed(format!(
                        concat!("expected ", $what, ", got {:?}"),
                        other
                    ))),
                }
            }
            fn value(&self) -> Value {
                Value::$variant(self.clone())
            }
        }
    };
}

plain_cell!(String, Text, "text");
plain_cell!(i64, Int, "an integer");

/// A port.
impl Cell for i32 {
    fn from_value(value: Value) -> Result<Self, StoreError> {
        i32::try_from(i64::from_value(value)?).map_err(|_| failed("a port is out of range"))
    }
    fn value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}

/// A logical instance's metadata: a JSON object of strings in a text column.
impl Cell for BTreeMap<String, String> {
    fn from_value(value: Value) -> Result<Self, StoreError> {
        let text = String::from_value(value)?;
        let bad = || failed(format!("metadata is not a JSON object of strings: {text}"));
        let mut bytes = text.clone().into_bytes();
        let value = simd_json::to_owned_value(&mut bytes).map_err(|_| bad())?;
        let object = value.as_object().ok_or_else(bad)?;
        let entry = |(key, value): (&String, &simd_json::OwnedValue)| {
            Ok((key.clone(), value.as_str().ok_or_else(bad)?.to_owned()))
        };
        object.iter().map(entry).collect()
    }
    fn value(&self) -> Value {
        let mut out = vec![b'{'];
        for (i, (key, value)) in self.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json::write_str(&mut out, key);
            out.push(b':');
            json::write_str(&mut out, value);
        }
        out.push(b'}');
        Value::Text(String::from_utf8_lossy(&out).into_owned())
    }
}

/// The cells of one row, read in order.
struct Cells(std::vec::IntoIter<Value>);

impl Cells {
    fn next<T: Cell>(&mut self) -> Result<T, StoreError> {
        let value = self
            .0
            .next()
            .ok_or_else(|| failed("a row has too few columns"))?;
        T::from_value(value)
    }
}

/// A row type of a table.
trait Row: Sized {
    const TABLE: &'static str;
    /// The columns [`Row::read`] reads, in order.
    const COLUMNS: &'static str;
    fn read(cells: &mut Cells) -> Result<Self, StoreError>;
}

/// The rows matching `filter` (a `WHERE` clause, or nothing), by id.
fn select<R: Row>(db: &mut dyn Db, filter: &str, params: &[Value]) -> Result<Vec<R>, StoreError> {
    let sql = format!(
        "SELECT {} FROM {} {filter} ORDER BY id",
        R::COLUMNS,
        R::TABLE
    );
    db.query(&sql, params)?
        .into_iter()
        .map(|row| R::read(&mut Cells(row.into_iter())))
        .collect()
}

fn by_id<R: Row>(db: &mut dyn Db, id: i64) -> Result<Option<R>, StoreError> {
    Ok(select(db, "WHERE id = $1", &[Value::Int(id)])?.pop())
}

/// The id in the first row, if any.
fn first_id(rows: Vec<Vec<Value>>) -> Result<Option<i64>, StoreError> {
    rows.into_iter()
        .next()
        .map(|row| Cells(row.into_iter()).next())
        .transpose()
}

/// A row with an id, whose changes are logged, and whose statements are built from its fields.
trait Entity: Row {
    const LOG: LogKind;
    /// How many of [`Entity::stored`]'s fields, from the first, are the unique key.
    const KEY: usize;
    fn id(&self) -> i64;
    /// Its fields by column name, as its log has them: the id first.
    fn fields(&self) -> Fields;
    /// What its statements write, by column name.
    fn stored(&self) -> Fields;
}

/// `INSERT` of these fields, then `ON CONFLICT (key) <on_conflict> RETURNING id`.
fn insert_sql<E: Entity>(stored: &[(&'static str, Value)], on_conflict: &str) -> String {
    let columns: Vec<&str> = stored.iter().map(|(column, _)| *column).collect();
    let params: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
    format!(
        "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) {on_conflict} RETURNING id",
        E::TABLE,
        columns.join(", "),
        params.join(", "),
        columns[..E::KEY].join(", "),
    )
}

/// A pull-out table's row: the key's fields, then the operation, the operator and the token.
macro_rules! operation_row {
    ($type:ident in $table:literal: $($key:ident),+) => {
        impl Row for $type {
            const TABLE: &'static str = $table;
            const COLUMNS: &'static str =
                concat!($(stringify!($key), ", ",)+ "operation, operator_id, token");
            fn read(c: &mut Cells) -> Result<Self, StoreError> {
                Ok($type {
                    $($key: c.next()?,)+
                    operation: c.next()?,
                    operator_id: c.next::<Option<String>>()?.unwrap_or_default(),
                    token: c.next()?,
                })
            }
        }
    };
}

operation_row!(InstanceOperation in "instance_operation": region_id, service_id, instance_id);
operation_row!(ServerOperation in "server_operation": region_id, server_id);
operation_row!(ZoneOperation in "zone_operation": region_id, service_id, zone_id);

impl Row for GroupOperation {
    const TABLE: &'static str = "group_operation";
    const COLUMNS: &'static str = "group_id, operation, operator_id, token";
    fn read(c: &mut Cells) -> Result<Self, StoreError> {
        let (group_id, operation) = (c.next()?, c.next()?);
        let (operator_id, token) = (c.next()?, c.next()?);
        Ok(GroupOperation {
            group_id,
            operation,
            operator_id,
            token,
        })
    }
}

impl Row for GroupTag {
    const TABLE: &'static str = "group_tag";
    const COLUMNS: &'static str = "group_id, tag, tag_value";
    fn read(c: &mut Cells) -> Result<Self, StoreError> {
        let (group_id, tag, value) = (c.next()?, c.next()?, c.next()?);
        Ok(GroupTag {
            group_id,
            tag,
            value,
        })
    }
}

/// An [`Entity`] whose columns are named as its fields, its id column `id`: the id field, the
/// column its log keeps the id in, its log, how many fields from the first make its unique key,
/// and its other fields; then, if not all of them, those its statements write.
macro_rules! entity {
    ($type:ident in $table:literal, id $id:ident as $log_id:literal, log $log:ident, key $key:literal:
        $($field:ident),+ $(; stores $($stored:ident),+)?) => {
        impl Row for $type {
            const TABLE: &'static str = $table;
            const COLUMNS: &'static str = concat!("id" $(, ", ", stringify!($field))+);
            fn read(c: &mut Cells) -> Result<Self, StoreError> {
                Ok($type { $id: c.next()?, $($field: c.next()?,)+ })
            }
        }

        impl Entity for $type {
            const LOG: LogKind = LogKind::$log;
            const KEY: usize = $key;
            fn id(&self) -> i64 {
                self.$id
            }
            fn fields(&self) -> Fields {
                vec![($log_id, Value::Int(self.$id)), $((stringify!($field), self.$field.value())),+]
            }
            fn stored(&self) -> Fields {
                entity!(@stored self $($field),+ $(; $($stored),+)?)
            }
        }
    };
    (@stored $self:ident $($field:ident),+) => {
        vec![$((stringify!($field), $self.$field.value())),+]
    };
    (@stored $self:ident $($field:ident),+; $($stored:ident),+) => {
        vec![$((stringify!($stored), $self.$stored.value())),+]
    };
}

entity!(Group in "service_group", id group_id as "group_id", log Group, key 4:
    service_id, region_id, zone_id, name, app_id, description, status);
entity!(RouteRule in "route_rule", id route_rule_id as "route_rule_id", log RouteRule, key 2:
    service_id, name, description, status, strategy);
// Only the unreleased weight is written: `weight` changes only by a release.
entity!(RouteRuleGroup in "route_rule_group", id route_rule_group_id as "route_rule_group_id",
    log RouteRuleGroup, key 2: route_rule_id, group_id, weight, unreleased_weight;
    stores route_rule_id, group_id, unreleased_weight);
entity!(GroupInstance in "group_instance", id id as "group_instance_id", log GroupInstance,
    key 2: group_id, instance_id);
entity!(ServiceInstance in "service_instance", id id as "service_instance_id",
    log ServiceInstance, key 2: service_id, instance_id, group_id, region_id, zone_id, ip, port,
    protocol, url, health_check_url, machine_name, description, metadata);

/// Everything but the logs.
fn load(db: &mut dyn Db) -> Result<ManagementData, StoreError> {
    Ok(ManagementData {
        instance_operations: select(db, "", &[])?,
        server_operations: select(db, "", &[])?,
        zone_operations: select(db, "", &[])?,
        groups: select(db, "", &[])?,
        group_tags: select(db, "", &[])?,
        group_operations: select(db, "", &[])?,
        group_instances: select(db, "", &[])?,
        service_instances: select(db, "", &[])?,
        route_rules: select(db, "", &[])?,
        route_rule_groups: select(db, "", &[])?,
    })
}

/// An operation table: its statements, over its key's columns then the operation (`$1 …`),
/// and its log. Inserting also takes the operator and the token; a second insert of the same
/// key updates them.
struct Operations {
    insert: &'static str,
    delete: &'static str,
    log: LogKind,
}

const INSTANCE_OPERATIONS: Operations = Operations {
    insert: "INSERT INTO instance_operation \
             (region_id, service_id, instance_id, operation, operator_id, token) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (lower(region_id), lower(service_id), lower(instance_id), operation) \
             DO UPDATE SET operator_id = excluded.operator_id, token = excluded.token",
    delete: "DELETE FROM instance_operation WHERE lower(region_id) = lower($1) \
             AND lower(service_id) = lower($2) AND lower(instance_id) = lower($3) \
             AND operation = $4",
    log: LogKind::Instance,
};

const SERVER_OPERATIONS: Operations = Operations {
    insert: "INSERT INTO server_operation (region_id, server_id, operation, operator_id, token) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (lower(region_id), lower(server_id), operation) \
             DO UPDATE SET operator_id = excluded.operator_id, token = excluded.token",
    delete: "DELETE FROM server_operation WHERE lower(region_id) = lower($1) \
             AND lower(server_id) = lower($2) AND operation = $3",
    log: LogKind::Server,
};

const ZONE_OPERATIONS: Operations = Operations {
    insert: "INSERT INTO zone_operation \
             (region_id, service_id, zone_id, operation, operator_id, token) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (region_id, service_id, zone_id, operation) \
             DO UPDATE SET operator_id = excluded.operator_id, token = excluded.token",
    delete: "DELETE FROM zone_operation WHERE region_id = $1 AND service_id = $2 \
             AND zone_id = $3 AND operation = $4",
    log: LogKind::ZoneOperation,
};

const GROUP_OPERATIONS: Operations = Operations {
    insert: "INSERT INTO group_operation (group_id, operation, operator_id, token) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (group_id, operation) \
             DO UPDATE SET operator_id = excluded.operator_id, token = excluded.token",
    delete: "DELETE FROM group_operation WHERE group_id = $1 AND operation = $2",
    log: LogKind::GroupOperation,
};

const UPSERT_GROUP_TAG: &str = "INSERT INTO group_tag (group_id, tag, tag_value) \
                                VALUES ($1, $2, $3) ON CONFLICT (group_id, tag) \
                                DO UPDATE SET tag_value = excluded.tag_value";

const RELEASE: &str = "UPDATE route_rule_group SET weight = unreleased_weight \
                       WHERE route_rule_id = $1 AND group_id = $2 RETURNING id";

/// The route rule a canary update puts its group in.
const CANARY_ROUTE_RULE: &str = "canary-route-rule";
/// The zone of a canary group.
const CANARY_ZONE: &str = "canary";

/// One [`Write`] in one transaction, with who asked for it and when.
struct Writer<'a> {
    db: &'a mut dyn Db,
    context: &'a OperationContext,
    now: i64,
}

impl Writer<'_> {
    fn apply(&mut self, write: &Write) -> Result<(), StoreError> {
        match write {
            Write::Instance {
                region_id,
                service_id,
                instance_id,
                operation,
                complete,
            } => {
                let key = vec![
                    ("region_id", region_id.value()),
                    ("service_id", service_id.value()),
                    ("instance_id", instance_id.value()),
                    ("operation", operation.value()),
                ];
                self.operate(&INSTANCE_OPERATIONS, key, *complete)
            }
            Write::Server {
                region_id,
                server_id,
                operation,
                complete,
            } => {
                let key = vec![
                    ("region_id", region_id.value()),
                    ("server_id", server_id.value()),
                    ("operation", operation.value()),
                ];
                self.operate(&SERVER_OPERATIONS, key, *complete)
            }
            Write::Zones { zones, complete } => {
                for zone in zones {
                    for operation in &zone.operations {
                        let key = vec![
                            ("region_id", zone.region_id.value()),
                            ("service_id", zone.service_id.value()),
                            ("zone_id", zone.zone_id.value()),
                            ("operation", operation.value()),
                        ];
                        self.operate(&ZONE_OPERATIONS, key, *complete)?;
                    }
                }
                Ok(())
            }
            Write::InsertRouteRules(rules) => self.upsert_each(rules),
            Write::UpdateRouteRules(rules) => self.update_each(rules),
            Write::DeleteRouteRules(ids) => self.delete_each::<RouteRule>(ids),
            Write::CreateRouteRule { rule, groups } => self.create_route_rule(rule, groups),
            Write::InsertRouteRuleGroups(groups) => self.upsert_each(groups),
            Write::UpdateRouteRuleGroups(groups) => self.update_each(groups),
            Write::ReleaseRouteRuleGroups(groups) => self.release(groups),
            Write::DeleteRouteRuleGroups(ids) => self.delete_each::<RouteRuleGroup>(ids),
            Write::InsertGroups(groups) => self.upsert_each(groups),
            Write::UpdateGroups(groups) => self.update_each(groups),
            Write::DeleteGroups(ids) => self.delete_each::<Group>(ids),
            Write::InsertGroupTags(tags) | Write::UpdateGroupTags(tags) => self.tag(tags),
            Write::DeleteGroupTags {
                group_id,
                tag,
                value,
            } => {
                let filters: Fields = [
                    ("group_id", group_id.map(Value::Int)),
                    ("tag", tag.clone().map(Value::Text)),
                    ("tag_value", value.clone().map(Value::Text)),
                ]
                .into_iter()
                .filter_map(|(name, value)| Some((name, value?)))
                .collect();
                if filters.is_empty() {
                    return Err(StoreError::Invalid(
                        "deleting group tags needs a groupId, a tag or a value".into(),
                    ));
                }
                let filter = conditions(filters.iter().map(|(name, _)| *name));
                let sql = format!("DELETE FROM group_tag {filter}");
                self.db.execute(&sql, &values(&filters)).map(drop)
            }
            Write::GroupOperations { groups, complete } => {
                for group in groups {
                    for operation in &group.operations {
                        self.operate_group(group.group_id, operation, *complete)?;
                    }
                }
                Ok(())
            }
            Write::GroupOperation {
                group,
                operation,
                complete,
            } => {
                let group_id = self.find_or_create(group)?;
                self.operate_group(group_id, operation, *complete)
            }
            Write::InsertGroupInstances(instances) => {
                for (group_id, instance_id) in instances {
                    self.add_instance(*group_id, instance_id)?;
                }
                Ok(())
            }
            Write::DeleteGroupInstances(ids) => self.delete_each::<GroupInstance>(ids),
            Write::InsertServiceInstances(instances) => self.upsert_each(instances),
            Write::DeleteServiceInstances(ids) => self.delete_each::<ServiceInstance>(ids),
            Write::CanaryIps {
                service_id,
                app_id,
                region_id,
                ips,
            } => self.canary(service_id, app_id, region_id, ips),
        }
    }

    /// Inserts (or, with `complete`, deletes) one operation row and logs it; `key` is its key
    /// by column name, the operation last.
    fn operate(
        &mut self,
        table: &Operations,
        key: Fields,
        complete: bool,
    ) -> Result<(), StoreError> {
        let mut params = values(&key);
        if complete {
            self.db.execute(table.delete, &params)?;
        } else {
            params.push(self.context.operator_id.value());
            params.push(self.context.token.value());
            self.db.execute(table.insert, &params)?;
        }
        self.log(table.log, key, Some(complete))
    }

    fn operate_group(
        &mut self,
        group_id: i64,
        operation: &str,
        complete: bool,
    ) -> Result<(), StoreError> {
        let key = vec![
            ("group_id", Value::Int(group_id)),
            ("operation", Value::Text(operation.to_owned())),
        ];
        self.operate(&GROUP_OPERATIONS, key, complete)
    }

    fn tag(&mut self, groups: &[GroupTags]) -> Result<(), StoreError> {
        for group in groups {
            for (tag, value) in &group.tags {
                let params = [group.group_id.value(), tag.value(), value.value()];
                self.db.execute(UPSERT_GROUP_TAG, &params)?;
            }
        }
        Ok(())
    }

    fn add_instance(&mut self, group_id: i64, instance_id: &str) -> Result<i64, StoreError> {
        let instance = GroupInstance {
            id: 0,
            group_id,
            instance_id: instance_id.to_owned(),
        };
        self.find_or_create(&instance)
    }

    /// Inserts the row, or updates the one with its key; logs it; returns its id.
    fn upsert<E: Entity>(&mut self, entity: &E) -> Result<i64, StoreError> {
        let stored = entity.stored();
        let updates: Vec<String> = stored[E::KEY..]
            .iter()
            .map(|(column, _)| format!("{column} = excluded.{column}"))
            .collect();
        let sql = insert_sql::<E>(&stored, &format!("DO UPDATE SET {}", updates.join(", ")));
        let id = first_id(self.db.query(&sql, &values(&stored))?)?
            .ok_or_else(|| failed(format!("an upsert into {} returned no id", E::TABLE)))?;
        self.log_row::<E>(id)?;
        Ok(id)
    }

    fn upsert_each<E: Entity>(&mut self, entities: &[E]) -> Result<(), StoreError> {
        for entity in entities {
            self.upsert(entity)?;
        }
        Ok(())
    }

    /// Updates the row with the entity's id, or upserts it by key when the id is 0.
    fn update_each<E: Entity>(&mut self, entities: &[E]) -> Result<(), StoreError> {
        for entity in entities {
            let id = entity.id();
            if id == 0 {
                self.upsert(entity)?;
                continue;
            }
            let stored = entity.stored();
            let sets: Vec<String> = stored
                .iter()
                .enumerate()
                .map(|(i, (column, _))| format!("{column} = ${}", i + 1))
                .collect();
            let sql = format!(
                "UPDATE {} SET {} WHERE id = ${}",
                E::TABLE,
                sets.join(", "),
                stored.len() + 1
            );
            let mut params = values(&stored);
            params.push(Value::Int(id));
            if self.db.execute(&sql, &params)? == 0 {
                return Err(StoreError::Invalid(format!("no {} with id {id}", E::TABLE)));
            }
            self.log_row::<E>(id)?;
        }
        Ok(())
    }

    /// The id of the row with the entity's key, inserting (and logging) it if missing.
    fn find_or_create<E: Entity>(&mut self, entity: &E) -> Result<i64, StoreError> {
        let stored = entity.stored();
        let sql = insert_sql::<E>(&stored, "DO NOTHING");
        if let Some(id) = first_id(self.db.query(&sql, &values(&stored))?)? {
            self.log_row::<E>(id)?;
            return Ok(id);
        }
        let key = &stored[..E::KEY];
        let filter = conditions(key.iter().map(|(name, _)| *name));
        let sql = format!("SELECT id FROM {} {filter}", E::TABLE);
        first_id(self.db.query(&sql, &values(key))?)?.ok_or_else(|| {
            failed(format!(
                "a row of {} is neither there nor inserted",
                E::TABLE
            ))
        })
    }

    /// Deletes the row with each id (its dependents go with it) and logs it.
    fn delete_each<E: Entity>(&mut self, ids: &[i64]) -> Result<(), StoreError> {
        for &id in ids {
            let Some(row) = by_id::<E>(self.db, id)? else {
                continue;
            };
            let sql = format!("DELETE FROM {} WHERE id = $1", E::TABLE);
            self.db.execute(&sql, &[Value::Int(id)])?;
            self.log(E::LOG, row.fields(), None)?;
        }
        Ok(())
    }

    fn log_row<E: Entity>(&mut self, id: i64) -> Result<(), StoreError> {
        let row = by_id::<E>(self.db, id)?
            .ok_or_else(|| failed(format!("no {} with id {id} to log", E::TABLE)))?;
        self.log(E::LOG, row.fields(), None)
    }

    /// `weight := unreleased_weight` for each (route rule, group).
    fn release(&mut self, groups: &[RouteRuleGroup]) -> Result<(), StoreError> {
        for group in groups {
            let params = [Value::Int(group.route_rule_id), Value::Int(group.group_id)];
            for row in self.db.query(RELEASE, &params)? {
                let id = Cells(row.into_iter()).next()?;
                self.log_row::<RouteRuleGroup>(id)?;
            }
        }
        Ok(())
    }

    /// Java's `createServiceRouteRules`: the rule and its groups inserted if missing (an
    /// existing one is left as it is), and each group's unreleased weight set.
    fn create_route_rule(
        &mut self,
        rule: &RouteRule,
        groups: &[(Group, Option<i64>)],
    ) -> Result<(), StoreError> {
        check_route_rule(rule, groups)?;
        let route_rule_id = self.find_or_create(rule)?;
        for (group, weight) in groups {
            let group_id = self.find_or_create(group)?;
            let unreleased_weight = *weight;
            self.upsert(&RouteRuleGroup {
                route_rule_id,
                group_id,
                unreleased_weight,
                ..Default::default()
            })?;
        }
        Ok(())
    }

    /// The service's canary rule and the app's canary group, found or made, and the group's
    /// instances set to exactly `ips`.
    fn canary(
        &mut self,
        service_id: &str,
        app_id: &str,
        region_id: &str,
        ips: &[String],
    ) -> Result<(), StoreError> {
        let active = Some("active".to_owned());
        let route_rule_id = self.find_or_create(&RouteRule {
            service_id: service_id.to_owned(),
            name: CANARY_ROUTE_RULE.to_owned(),
            status: active.clone(),
            strategy: Some("weighted-round-robin".to_owned()),
            ..Default::default()
        })?;
        let group_id = self.find_or_create(&Group {
            service_id: service_id.to_owned(),
            region_id: region_id.to_owned(),
            zone_id: CANARY_ZONE.to_owned(),
            name: app_id.to_owned(),
            app_id: Some(app_id.to_owned()),
            status: active,
            ..Default::default()
        })?;
        self.find_or_create(&RouteRuleGroup {
            route_rule_id,
            group_id,
            ..Default::default()
        })?;
        let current: Vec<GroupInstance> =
            select(self.db, "WHERE group_id = $1", &[Value::Int(group_id)])?;
        let stale: Vec<i64> = current
            .iter()
            .filter(|instance| !ips.contains(&instance.instance_id))
            .map(|instance| instance.id)
            .collect();
        self.delete_each::<GroupInstance>(&stale)?;
        for ip in ips {
            if !current.iter().any(|instance| instance.instance_id == *ip) {
                self.add_instance(group_id, ip)?;
            }
        }
        Ok(())
    }

    /// Appends a row to a log: `fields` (which may name the operation), then who asked and
    /// when, then `complete` for the operation logs.
    fn log(
        &mut self,
        kind: LogKind,
        mut fields: Fields,
        complete: Option<bool>,
    ) -> Result<(), StoreError> {
        let context = self.context;
        let asked = [
            ("operation", context.operation.value()),
            ("operator_id", context.operator_id.value()),
            ("token", context.token.value()),
            ("reason", context.reason.value()),
            ("extensions", context.extensions.value()),
            ("create_time", Value::Int(self.now)),
            ("update_time", Value::Int(self.now)),
        ];
        for (name, value) in asked {
            if !fields.iter().any(|(given, _)| *given == name) {
                fields.push((name, value));
            }
        }
        if let Some(complete) = complete {
            fields.push(("complete", Value::Bool(complete)));
        }
        let columns: Vec<&str> = fields.iter().map(|(column, _)| *column).collect();
        let params: Vec<String> = (1..=fields.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            LogTable::of(kind).name,
            columns.join(", "),
            params.join(", ")
        );
        self.db.execute(&sql, &values(&fields)).map(drop)
    }
}

/// What Java's `createServiceRouteRules` checks before it writes.
fn check_route_rule(rule: &RouteRule, groups: &[(Group, Option<i64>)]) -> Result<(), StoreError> {
    let missing = |what: &str| Err(StoreError::Invalid(format!("{what} is null or empty")));
    let blank = |s: Option<&str>| s.is_none_or(|s| s.trim().is_empty());
    if blank(Some(&rule.service_id)) {
        return missing("routeRule.serviceId");
    }
    if blank(Some(&rule.name)) {
        return missing("routeRule.name");
    }
    if blank(rule.status.as_deref()) {
        return missing("routeRule.status");
    }
    for (group, weight) in groups {
        if group.service_id != rule.service_id {
            return Err(StoreError::Invalid(format!(
                "group serviceId {} is not the route rule's serviceId {}",
                group.service_id, rule.service_id
            )));
        }
        let required = [
            ("group.regionId", Some(group.region_id.as_str())),
            ("group.zoneId", Some(group.zone_id.as_str())),
            ("group.name", Some(group.name.as_str())),
            ("group.appId", group.app_id.as_deref()),
            ("group.status", group.status.as_deref()),
        ];
        if let Some((what, _)) = required.iter().find(|(_, value)| blank(*value)) {
            return missing(what);
        }
        if weight.is_none() {
            return Err(StoreError::Invalid("group.weight is null".into()));
        }
    }
    Ok(())
}

/// A log's table and its fields by JSON name, in alphabetical order (`id` is the log row's).
struct LogTable {
    name: &'static str,
    fields: &'static str,
}

impl LogTable {
    fn of(kind: LogKind) -> LogTable {
        let (name, fields) = match kind {
            LogKind::Instance => ("instance_log", "complete createTime extensions id instanceId operation operatorId regionId serviceId token updateTime"),
            LogKind::Server => ("server_log", "complete createTime extensions id operation operatorId regionId serverId token updateTime"),
            LogKind::GroupOperation => ("group_operation_log", "complete createTime extensions groupId id operation operatorId reason token updateTime"),
            LogKind::ZoneOperation => ("zone_operation_log", "complete createTime id operation operatorId regionId serviceId token updateTime zoneId"),
            LogKind::Group => ("group_log", "appId createTime description extensions groupId id name operation operatorId reason regionId serviceId status token zoneId"),
            LogKind::RouteRule => ("route_rule_log", "createTime description extensions id name operation operatorId reason routeRuleId serviceId status strategy token"),
            LogKind::RouteRuleGroup => ("route_rule_group_log", "createTime extensions groupId id operation operatorId reason routeRuleGroupId routeRuleId token unreleasedWeight weight"),
            LogKind::GroupInstance => ("group_instance_log", "createTime extensions groupId groupInstanceId id instanceId operation operatorId reason token"),
            LogKind::ServiceInstance => ("service_instance_log", "createTime description extensions groupId healthCheckUrl id instanceId ip machineName metadata operation operatorId port protocol reason regionId serviceId serviceInstanceId token url zoneId"),
        };
        LogTable { name, fields }
    }

    /// The log's fields by JSON name, in alphabetical order.
    fn fields(&self) -> impl Iterator<Item = &'static str> {
        self.fields.split(' ')
    }
}

/// The rows of one log matching every filter, newest first.
fn logs(db: &mut dyn Db, query: &LogQuery) -> Result<Vec<LogRow>, StoreError> {
    let table = LogTable::of(query.kind);
    let names: Vec<&'static str> = table.fields().collect();
    if let Some((name, _)) = query.filters.iter().find(|(name, _)| !names.contains(name)) {
        return Err(StoreError::Invalid(format!(
            "{name} is not a field of {}",
            table.name
        )));
    }
    let columns: Vec<String> = names.iter().map(|name| column(name)).collect();
    let sql = format!(
        "SELECT {} FROM {} {} ORDER BY id DESC LIMIT {}",
        columns.join(", "),
        table.name,
        conditions(query.filters.iter().map(|(name, _)| column(name))),
        query.limit
    );
    let params: Vec<Value> = query
        .filters
        .iter()
        .map(|(_, value)| value.clone())
        .collect();
    let rows = db.query(&sql, &params)?;
    let row = |cells: Vec<Value>| {
        let fields = names
            .iter()
            .zip(cells)
            .map(|(&name, value)| match (name, value) {
                ("complete", Value::Int(n)) => (name, Value::Bool(n != 0)),
                (_, value) => (name, value),
            });
        LogRow(fields.collect())
    };
    Ok(rows.into_iter().map(row).collect())
}
