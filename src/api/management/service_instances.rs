//! §4.8's service (logical) instances: instances an operator defines for a service, which
//! discovery lists in its `logicInstances` beside the registered ones.

use artemis_shards::management::ServiceInstance;

use super::json::{write_list, write_map, write_object, Field};
use super::requests::Props;
use super::{text_matches, Asked, Read};
use crate::api::decode::DecodeError;
use crate::api::Context;
use crate::management::store::Write;

/// Java's `ServiceInstance`.
fn service_instance(p: &Props) -> Result<ServiceInstance, DecodeError> {
    Ok(ServiceInstance {
        id: p.long("id")?.unwrap_or(0),
        service_id: p.text("serviceId")?.unwrap_or_default(),
        instance_id: p.text("instanceId")?.unwrap_or_default(),
        group_id: p.text("groupId")?,
        region_id: p.text("regionId")?,
        zone_id: p.text("zoneId")?,
        ip: p.text("ip")?,
        port: p.int("port")?,
        protocol: p.text("protocol")?,
        url: p.text("url")?,
        health_check_url: p.text("healthCheckUrl")?,
        machine_name: p.text("machineName")?,
        description: p.text("description")?,
        metadata: p.map("metadata")?,
    })
}

/// `insert-service-instances.json`: `{"serviceInstances":[ServiceInstance]}`, upserted on
/// service and instance id.
pub(super) fn insert(_: &Context<'_>, p: Props<'_, '_>) -> Result<Asked<Write>, DecodeError> {
    Ok(Ok(Write::InsertServiceInstances(
        p.each("serviceInstances", service_instance)?,
    )))
}

/// `delete-service-instances.json`: `{"serviceInstanceIds":[long]}`.
pub(super) fn delete(_: &Context<'_>, p: Props<'_, '_>) -> Result<Asked<Write>, DecodeError> {
    Ok(Ok(Write::DeleteServiceInstances(
        p.longs("serviceInstanceIds")?,
    )))
}

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

/// The filter of `get-service-instances.json`.
pub(super) struct ServiceInstanceFilter {
    service_id: Option<String>,
    instance_id: Option<String>,
}

/// `get-service-instances.json`: `{"serviceId","instanceId"}` → `serviceInstances`.
pub(super) const SERVICE_INSTANCES: Read<ServiceInstanceFilter> = Read::of(
    "serviceInstances",
    |p| {
        Ok(Ok(ServiceInstanceFilter {
            service_id: p.text("serviceId")?,
            instance_id: p.text("instanceId")?,
        }))
    },
    |data, f, out| {
        let rows = data.service_instances.iter().filter(|s| {
            text_matches(&f.service_id, Some(&s.service_id))
                && text_matches(&f.instance_id, Some(&s.instance_id))
        });
        write_list(out, rows, write_service_instance)
    },
);
