//! §4.6's pull-outs of one instance, or of a whole server (every instance with one `ip` in a
//! region): the two writes, the operations on a key or on all of them, and whether an
//! instance or a server is down.

use artemis_shards::management::{InstanceOperation, ManagementView, ServerOperation};
use artemis_shards::Instance;

use super::json::{write_list, write_object, write_texts, Field};
use super::requests::Props;
use super::{grouped, write_first, Asked, Read, Refusal};
use crate::api::decode::DecodeError;
use crate::api::{Context, Input};
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

/// `operate-instance.json`: `{"instanceKey":{..},"operation","operationComplete","operatorId","token"}`.
pub(super) fn operate_instance(
    _: &Context<'_>,
    p: Props<'_, '_>,
) -> Result<Asked<Write>, DecodeError> {
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
}

/// `operate-server.json`: `{"serverKey":{"regionId","serverId"},"operation",...}`.
pub(super) fn operate_server(
    _: &Context<'_>,
    p: Props<'_, '_>,
) -> Result<Asked<Write>, DecodeError> {
    let asked = pull(&p, "serverKey", ["regionId", "serverId"])?;
    Ok(asked.map(
        |([region_id, server_id], operation, complete)| Write::Server {
            region_id,
            server_id,
            operation,
            complete,
        },
    ))
}

/// Java's `InstanceKey` identity: region, service and instance, whatever their case.
type InstanceKey = (String, String, String);

fn instance_key_of(row: &InstanceOperation) -> InstanceKey {
    let lower = |s: &str| s.to_lowercase();
    (
        lower(&row.region_id),
        lower(&row.service_id),
        lower(&row.instance_id),
    )
}

/// Java's `ServerKey` identity: region and server, whatever their case.
type ServerKey = (String, String);

fn server_key_of(row: &ServerOperation) -> ServerKey {
    (row.region_id.to_lowercase(), row.server_id.to_lowercase())
}

/// `InstanceOperations`: `{"instanceKey":{..},"operations":[..]}`.
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
    let ops = |out: &mut Vec<u8>| write_texts(out, ops.iter().copied());
    write_object(
        out,
        &[
            ("instanceKey", Field::With(&key)),
            ("operations", Field::With(&ops)),
        ],
    );
}

/// `ServerOperations`: `{"operations":[..],"serverKey":{"regionId","serverId"}}`.
fn write_server_operations(out: &mut Vec<u8>, (row, ops): (&ServerOperation, Vec<&str>)) {
    let key = |out: &mut Vec<u8>| {
        write_object(
            out,
            &[
                ("regionId", Field::Text(Some(&row.region_id))),
                ("serverId", Field::Text(Some(&row.server_id))),
            ],
        )
    };
    let ops = |out: &mut Vec<u8>| write_texts(out, ops.iter().copied());
    write_object(
        out,
        &[
            ("operations", Field::With(&ops)),
            ("serverKey", Field::With(&key)),
        ],
    );
}

/// `instance-operations.json`: `{"instanceKey":..}` → `operations`, `null` when none.
pub(super) const INSTANCE_OPERATIONS: Read<InstanceKey> = Read::of(
    "operations",
    |p| {
        let Some(key) = p.object("instanceKey")? else {
            return Ok(Err(Refusal::bad_request("request.instanceKey is null")));
        };
        let part = |name| Ok::<_, DecodeError>(key.text(name)?.unwrap_or_default().to_lowercase());
        Ok(Ok((
            part("regionId")?,
            part("serviceId")?,
            part("instanceId")?,
        )))
    },
    |data, key, out| {
        let rows = data
            .instance_operations
            .iter()
            .filter(|r| instance_key_of(r) == key);
        write_first(
            out,
            grouped(rows, instance_key_of, |r| r.operation.as_str()),
            write_instance_operations,
        )
    },
);

/// A request's `serverKey`, or `missing` (Java words it differently per endpoint).
fn server_key(p: &Props, missing: &str) -> Result<Asked<ServerKey>, DecodeError> {
    let Some(key) = p.object("serverKey")? else {
        return Ok(Err(Refusal::bad_request(missing)));
    };
    let part = |name| Ok::<_, DecodeError>(key.text(name)?.unwrap_or_default());
    Ok(Ok((part("regionId")?, part("serverId")?)))
}

/// `server-operations.json`: `{"serverKey":..}` → `operations`, `null` when none.
pub(super) const SERVER_OPERATIONS: Read<ServerKey> = Read::of(
    "operations",
    |p| {
        let key = server_key(&p, "request.serverKey is null")?;
        Ok(key.map(|(region, server)| (region.to_lowercase(), server.to_lowercase())))
    },
    |data, key, out| {
        let rows = data
            .server_operations
            .iter()
            .filter(|r| server_key_of(r) == key);
        write_first(
            out,
            grouped(rows, server_key_of, |r| r.operation.as_str()),
            write_server_operations,
        )
    },
);

/// The region of an all-operations query (GET `?regionId=` or POST `{"regionId"}`): blank is
/// every region, else the region exactly as Java's `equals` compares it.
fn region_filter(region: &Option<String>, row_region: &str) -> bool {
    region
        .as_deref()
        .filter(|r| !r.trim().is_empty())
        .is_none_or(|r| r == row_region)
}

fn region_request(p: Props<'_, '_>) -> Result<Asked<Option<String>>, DecodeError> {
    Ok(Ok(p.text("regionId")?))
}

fn region_query(input: &Input<'_>) -> Option<String> {
    input.query_value("regionId")
}

/// `all-instance-operations.json` → `allInstanceOperations`.
pub(super) const ALL_INSTANCE_OPERATIONS: Read<Option<String>> = Read::of(
    "allInstanceOperations",
    region_request,
    |data, region, out| {
        let rows = data
            .instance_operations
            .iter()
            .filter(|r| region_filter(&region, &r.region_id));
        let all = grouped(rows, instance_key_of, |r| r.operation.as_str());
        write_list(out, all, write_instance_operations)
    },
)
.or_query(region_query);

/// `all-server-operations.json` → `allServerOperations`.
pub(super) const ALL_SERVER_OPERATIONS: Read<Option<String>> = Read::of(
    "allServerOperations",
    region_request,
    |data, region, out| {
        let rows = data
            .server_operations
            .iter()
            .filter(|r| region_filter(&region, &r.region_id));
        let all = grouped(rows, server_key_of, |r| r.operation.as_str());
        write_list(out, all, write_server_operations)
    },
)
.or_query(region_query);

/// `instance-down.json`'s `{"instance":Instance}`: the fields the pull-outs match on.
pub(super) fn instance(p: Props<'_, '_>) -> Result<Asked<Instance>, DecodeError> {
    let Some(i) = p.object("instance")? else {
        return Ok(Err(Refusal::bad_request("request.instance is null")));
    };
    Ok(Ok(Instance {
        region_id: i.text("regionId")?,
        zone_id: i.text("zoneId")?,
        group_id: i.text("groupId")?,
        service_id: i.text("serviceId")?,
        instance_id: i.text("instanceId")?,
        ip: i.text("ip")?,
        ..Instance::default()
    }))
}

/// `server-down.json`'s `{"serverKey":..}` (Java's message lacks an "is").
pub(super) fn down_server(p: Props<'_, '_>) -> Result<Asked<ServerKey>, DecodeError> {
    server_key(&p, "request.serverKey null")
}

pub(super) fn is_server_down(view: &ManagementView, (region, server): ServerKey) -> bool {
    view.is_server_down(&region, &server)
}
