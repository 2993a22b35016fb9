//! §4.6's pull-outs of one instance, or of a whole server (every instance with one `ip` in a
//! region): the two writes, the operations on a key or on all of them, and whether an instance
//! or a server is down. Keys match whatever their case, as Java's `InstanceKey` and `ServerKey`.

use artemis_shards::management::{InstanceOperation, ServerOperation};
use artemis_shards::Instance;

use super::json::{write_list, write_object, write_operations, Field};
use super::reads::{grouped, write_first, Column, Read};
use super::requests::Props;
use super::writes::Writes;
use super::{Asked, Refusal};
use crate::decode::DecodeError;
use crate::management::store::Write;

/// Java's `ModelUtil.check`: every field, trimmed, must be there, else "<field> is null or
/// empty", in the order given.
fn required(fields: Vec<(&str, Option<String>)>) -> Asked<Vec<String>> {
    let checked = fields.into_iter().map(|(name, value)| {
        let value = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        value.ok_or_else(|| Refusal::bad_request(format!("{name} is null or empty")))
    });
    checked.collect()
}

/// A pull-out request: the parts of its key object `key`, its operation and whether it is
/// complete (a pull-in). The operator is required too, and recorded from the request's context.
fn pull<const N: usize>(
    p: &Props,
    key: &str,
    parts: [&'static str; N],
) -> Result<Asked<([String; N], String, bool)>, DecodeError> {
    let key = p.object(key)?;
    let mut fields = Vec::with_capacity(N + 2);
    for name in parts {
        fields.push((name, key.map_or(Ok(None), |k| k.text(name))?));
    }
    fields.push(("operation", p.text("operation")?));
    fields.push(("operatorId", p.text("operatorId")?));
    let complete = p.flag("operationComplete")?;
    Ok(required(fields).map(|mut values| {
        let operation = std::mem::take(&mut values[N]);
        let key = std::array::from_fn(|i| std::mem::take(&mut values[i]));
        (key, operation, complete)
    }))
}

/// `operate-instance.json`: `{"instanceKey":{..},"operation","operationComplete","operatorId",
/// "token"}`.
pub(super) const OPERATE_INSTANCE: Writes = Writes::plain("Update instance failed.", |_, p| {
    let asked = pull(&p, "instanceKey", ["regionId", "serviceId", "instanceId"])?;
    Ok(asked.map(
        |([region_id, service_id, instance_id], operation, complete)| Write::Instance {
            region_id,
            service_id,
            instance_id,
            operation,
            complete,
        },
    ))
});

/// `operate-server.json`: `{"serverKey":{"regionId","serverId"},"operation",...}`.
pub(super) const OPERATE_SERVER: Writes = Writes::plain("Update server failed.", |_, p| {
    let asked = pull(&p, "serverKey", ["regionId", "serverId"])?;
    Ok(asked.map(
        |([region_id, server_id], operation, complete)| Write::Server {
            region_id,
            server_id,
            operation,
            complete,
        },
    ))
});

/// Each instance key's operations among `rows`.
fn by_instance(rows: Vec<&InstanceOperation>) -> Vec<(&InstanceOperation, Vec<&str>)> {
    let key = |r: &InstanceOperation| {
        let lower = |s: &str| s.to_lowercase();
        (
            lower(&r.region_id),
            lower(&r.service_id),
            lower(&r.instance_id),
        )
    };
    grouped(rows, key, |r| r.operation.as_str())
}

/// Each server's operations among `rows`.
fn by_server(rows: Vec<&ServerOperation>) -> Vec<(&ServerOperation, Vec<&str>)> {
    let key = |r: &ServerOperation| (r.region_id.to_lowercase(), r.server_id.to_lowercase());
    grouped(rows, key, |r| r.operation.as_str())
}

/// `InstanceOperations`: `{"instanceKey":{"instanceId","regionId","serviceId"},"operations"}`.
fn write_instance_operations(out: &mut Vec<u8>, (row, ops): (&InstanceOperation, Vec<&str>)) {
    let key = |out: &mut Vec<u8>| {
        write_object(
            out,
            &[
                ("instanceId", Field::Text(Some(&row.instance_id))),
                ("regionId", Field::Text(Some(&row.region_id))),
                ("serviceId", Field::Text(Some(&row.service_id))),
            ],
        )
    };
    write_operations(out, "instanceKey", Field::With(&key), &ops);
}

/// `ServerOperations`: `{"operations","serverKey":{"regionId","serverId"}}`.
fn write_server_operations(out: &mut Vec<u8>, (row, ops): (&ServerOperation, Vec<&str>)) {
    let key = |out: &mut Vec<u8>| {
        let region = ("regionId", Field::Text(Some(&row.region_id)));
        write_object(
            out,
            &[region, ("serverId", Field::Text(Some(&row.server_id)))],
        )
    };
    write_operations(out, "serverKey", Field::With(&key), &ops);
}

const INSTANCE_KEY: &[Column<InstanceOperation>] = &[
    Column::key(Column::text("regionId", |r| Some(&r.region_id))),
    Column::key(Column::text("serviceId", |r| Some(&r.service_id))),
    Column::key(Column::text("instanceId", |r| Some(&r.instance_id))),
];

const SERVER_KEY: &[Column<ServerOperation>] = &[
    Column::key(Column::text("regionId", |r| Some(&r.region_id))),
    Column::key(Column::text("serverId", |r| Some(&r.server_id))),
];

/// `instance-operations.json`: `{"instanceKey":..}` → `operations`, `null` when none.
pub(super) const INSTANCE_OPERATIONS: Read<InstanceOperation> = Read::of(
    "operations",
    |data| &data.instance_operations,
    |out, rows| write_first(out, by_instance(rows), write_instance_operations),
)
.filtered(INSTANCE_KEY)
.within("instanceKey", Some("request.instanceKey is null"));

/// `server-operations.json`: `{"serverKey":..}` → `operations`, `null` when none.
pub(super) const SERVER_OPERATIONS: Read<ServerOperation> = Read::of(
    "operations",
    |data| &data.server_operations,
    |out, rows| write_first(out, by_server(rows), write_server_operations),
)
.filtered(SERVER_KEY)
.within("serverKey", Some("request.serverKey is null"));

/// `all-instance-operations.json` (POST, or GET `?regionId=`) → `allInstanceOperations`.
pub(super) const ALL_INSTANCE_OPERATIONS: Read<InstanceOperation> = Read::of(
    "allInstanceOperations",
    |data| &data.instance_operations,
    |out, rows| write_list(out, by_instance(rows), write_instance_operations),
)
.filtered(&[Column::text("regionId", |r| Some(&r.region_id))])
.or_get();

/// `all-server-operations.json` (POST, or GET `?regionId=`) → `allServerOperations`.
pub(super) const ALL_SERVER_OPERATIONS: Read<ServerOperation> = Read::of(
    "allServerOperations",
    |data| &data.server_operations,
    |out, rows| write_list(out, by_server(rows), write_server_operations),
)
.filtered(&[Column::text("regionId", |r| Some(&r.region_id))])
.or_get();

/// `instance-down.json`'s `{"instance":Instance}`: the fields the pull-outs match on.
pub(super) fn instance(p: Props<'_, '_>) -> Result<Asked<Instance>, DecodeError> {
    let Some(i) = p.object("instance")? else {
        return Ok(Err(Refusal::bad_request("request.instance is null")));
    };
    let [region_id, zone_id, group_id, service_id, instance_id, ip] = i.texts_of([
        "regionId",
        "zoneId",
        "groupId",
        "serviceId",
        "instanceId",
        "ip",
    ])?;
    Ok(Ok(Instance {
        region_id,
        zone_id,
        group_id,
        service_id,
        instance_id,
        ip,
        ..Instance::default()
    }))
}

/// `server-down.json`'s `{"serverKey":..}` (Java's message lacks an "is").
pub(super) fn server_key(p: Props<'_, '_>) -> Result<Asked<(String, String)>, DecodeError> {
    let Some(key) = p.object("serverKey")? else {
        return Ok(Err(Refusal::bad_request("request.serverKey null")));
    };
    let [region, server] = key.texts_of(["regionId", "serverId"])?;
    Ok(Ok((region.unwrap_or_default(), server.unwrap_or_default())))
}
