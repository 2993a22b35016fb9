//! §4.8's service (logical) instances: instances an operator defines for a service, which
//! discovery lists in its `logicInstances` beside the registered ones.

use artemis_shards::management::ServiceInstance;

use super::json::{write_list, write_map, write_object, Field};
use super::reads::{Column, Read};
use super::requests::Props;
use super::writes::{ids, rows, Writes};
use crate::decode::DecodeError;
use crate::management::store::Write;

/// Java's `ServiceInstance`.
fn service_instance(p: &Props) -> Result<ServiceInstance, DecodeError> {
    let [service_id, instance_id] = p
        .texts_of(["serviceId", "instanceId"])?
        .map(Option::unwrap_or_default);
    let [group_id, region_id, zone_id, ip, protocol, url, health_check_url, machine_name, description] =
        p.texts_of([
            "groupId",
            "regionId",
            "zoneId",
            "ip",
            "protocol",
            "url",
            "healthCheckUrl",
            "machineName",
            "description",
        ])?;
    Ok(ServiceInstance {
        id: p.long("id")?.unwrap_or(0),
        service_id,
        instance_id,
        group_id,
        region_id,
        zone_id,
        ip,
        port: p.int("port")?,
        protocol,
        url,
        health_check_url,
        machine_name,
        description,
        metadata: p.map("metadata")?,
    })
}

/// `insert-service-instances.json`: `{"serviceInstances":[ServiceInstance]}`, upserted on
/// service and instance id.
pub(super) const INSERT: Writes = Writes::checked("insert service instances failed.", |_, p| {
    rows(
        &p,
        "serviceInstances",
        service_instance,
        Write::InsertServiceInstances,
    )
});

/// `delete-service-instances.json`: `{"serviceInstanceIds":[long]}`.
pub(super) const DELETE: Writes = Writes::checked("delete service instances failed.", |_, p| {
    ids(&p, "serviceInstanceIds", Write::DeleteServiceInstances)
});

/// `ServiceInstance`, its fields in Java's order.
fn write_service_instance(out: &mut Vec<u8>, s: &ServiceInstance) {
    let metadata = |out: &mut Vec<u8>| match &s.metadata {
        Some(map) => write_map(out, map.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        None => out.extend_from_slice(b"null"),
    };
    write_object(
        out,
        &[
            ("description", Field::Text(s.description.as_deref())),
            ("groupId", Field::Text(s.group_id.as_deref())),
            ("healthCheckUrl", Field::Text(s.health_check_url.as_deref())),
            ("id", Field::Int(Some(s.id))),
            ("instanceId", Field::Text(Some(&s.instance_id))),
            ("ip", Field::Text(s.ip.as_deref())),
            ("machineName", Field::Text(s.machine_name.as_deref())),
            ("metadata", Field::With(&metadata)),
            ("port", Field::Int(Some(i64::from(s.port)))),
            ("protocol", Field::Text(s.protocol.as_deref())),
            ("regionId", Field::Text(s.region_id.as_deref())),
            ("serviceId", Field::Text(Some(&s.service_id))),
            ("url", Field::Text(s.url.as_deref())),
            ("zoneId", Field::Text(s.zone_id.as_deref())),
        ],
    );
}

/// `get-service-instances.json`: `{"serviceId","instanceId"}` → `serviceInstances`.
pub(super) const SERVICE_INSTANCES: Read<ServiceInstance> = Read::of(
    "serviceInstances",
    |data| &data.service_instances,
    |out, rows| write_list(out, rows, write_service_instance),
)
.filtered(&[
    Column::text("serviceId", |s| Some(&s.service_id)),
    Column::text("instanceId", |s| Some(&s.instance_id)),
]);
