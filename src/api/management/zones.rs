//! §4.7's zone pull-outs: every instance of one service in one zone of a region.

use artemis_shards::management::{ManagementView, ZoneOperation};

use super::json::{write_list, write_object, write_operations, Field};
use super::reads::{grouped, write_first, Column, Read};
use super::requests::Props;
use super::writes::Writes;
use super::{Asked, Refusal};
use crate::decode::DecodeError;
use crate::management::store::{Write, ZoneOperations};

/// Java's `ZoneKey`: region, service and zone.
type ZoneKey = [String; 3];

/// The `zoneKey` object of a request, if there is one (missing parts are empty).
fn zone_key_in(p: &Props) -> Result<Option<ZoneKey>, DecodeError> {
    let Some(key) = p.object("zoneKey")? else {
        return Ok(None);
    };
    let parts = key.texts_of(["regionId", "serviceId", "zoneId"])?;
    Ok(Some(parts.map(Option::unwrap_or_default)))
}

/// `operate-zone-operations.json`: `{"zoneOperationsList":[{"operations":[..],"zoneKey":..}],
/// "operationComplete"}` plus the operator's context.
pub(super) const OPERATE: Writes = Writes::with_cause("operate zone-operations failed.", |_, p| {
    let mut zones = Vec::new();
    for item in p.objects("zoneOperationsList")? {
        let key = zone_key_in(&item)?.filter(|key| key.iter().all(|k| !k.trim().is_empty()));
        let Some([region_id, service_id, zone_id]) = key else {
            let why = "operate zone-operations failed.zoneKey is null or empty";
            return Ok(Err(Refusal::internal(why)));
        };
        zones.push(ZoneOperations {
            region_id,
            service_id,
            zone_id,
            operations: item.texts("operations")?,
        });
    }
    let complete = p.flag("operationComplete")?;
    Ok(Ok(Write::Zones { zones, complete }))
});

/// Each zone's operations among `rows`; a zone key matches exactly, case included, as Java's
/// `HashMap` of `ZoneKey`s does.
fn by_zone(rows: Vec<&ZoneOperation>) -> Vec<(&ZoneOperation, Vec<&str>)> {
    let key = |r: &ZoneOperation| (r.region_id.clone(), r.service_id.clone(), r.zone_id.clone());
    grouped(rows, key, |r| r.operation.as_str())
}

/// `ZoneOperations`: `{"operations":[..],"zoneKey":{"regionId","serviceId","zoneId"}}`.
fn write_zone_operations(out: &mut Vec<u8>, (row, ops): (&ZoneOperation, Vec<&str>)) {
    let key = |out: &mut Vec<u8>| {
        write_object(
            out,
            &[
                ("regionId", Field::Text(Some(&row.region_id))),
                ("serviceId", Field::Text(Some(&row.service_id))),
                ("zoneId", Field::Text(Some(&row.zone_id))),
            ],
        )
    };
    write_operations(out, "zoneKey", Field::With(&key), &ops);
}

/// `get-all-zone-operations.json` → `allZoneOperations` (the request's region is ignored).
pub(super) const ALL_ZONE_OPERATIONS: Read<ZoneOperation> = Read::of(
    "allZoneOperations",
    |data| &data.zone_operations,
    |out, rows| write_list(out, by_zone(rows), write_zone_operations),
);

/// The zone of a zone operation, by its fields.
const ZONE: &[Column<ZoneOperation>] = &[
    Column::text("regionId", |r| Some(&r.region_id)),
    Column::text("serviceId", |r| Some(&r.service_id)),
    Column::text("zoneId", |r| Some(&r.zone_id)),
];

/// `get-zone-operations-list.json`: `{"regionId","serviceId","zoneId"}` → `zoneOperationsList`.
pub(super) const ZONE_OPERATIONS_LIST: Read<ZoneOperation> = Read::of(
    "zoneOperationsList",
    |data| &data.zone_operations,
    |out, rows| write_list(out, by_zone(rows), write_zone_operations),
)
.filtered(ZONE);

/// `get-zone-operations.json`: `{"zoneKey":..}` → `operations`, `null` when none.
pub(super) const ZONE_OPERATIONS: Read<ZoneOperation> = Read::of(
    "operations",
    |data| &data.zone_operations,
    |out, rows| write_first(out, by_zone(rows), write_zone_operations),
)
.filtered(&[
    Column::key(Column::text("regionId", |r| Some(&r.region_id))),
    Column::key(Column::text("serviceId", |r| Some(&r.service_id))),
    Column::key(Column::text("zoneId", |r| Some(&r.zone_id))),
])
.within("zoneKey", None);

/// `is-zone-down.json`'s `{"zoneKey":..}`; none is not down.
pub(super) fn zone_key(p: Props<'_, '_>) -> Result<Asked<Option<ZoneKey>>, DecodeError> {
    Ok(Ok(zone_key_in(&p)?))
}

pub(super) fn is_zone_down(view: &ManagementView, key: Option<ZoneKey>) -> bool {
    key.is_some_and(|[region, service, zone]| view.is_zone_down(&region, &service, &zone))
}
