//! §4.7's zone pull-outs: every instance of one service in one zone of a region. A zone key
//! matches exactly, case included, as Java's `HashMap` of `ZoneKey`s does.

use artemis_shards::management::{ManagementView, ZoneOperation};

use super::json::{write_list, write_object, write_texts, Field};
use super::requests::Props;
use super::{grouped, text_matches, write_first, Asked, Read, Refusal};
use crate::api::decode::DecodeError;
use crate::api::Context;
use crate::management::store::{Write, ZoneOperations};

/// Java's `ZoneKey`: region, service and zone.
type ZoneKey = (String, String, String);

fn key_of(row: &ZoneOperation) -> ZoneKey {
    (
        row.region_id.clone(),
        row.service_id.clone(),
        row.zone_id.clone(),
    )
}

/// The `zoneKey` object of a request, if there is one (missing parts are empty).
fn zone_key_in(p: &Props) -> Result<Option<ZoneKey>, DecodeError> {
    let Some(key) = p.object("zoneKey")? else {
        return Ok(None);
    };
    let part = |name| Ok::<_, DecodeError>(key.text(name)?.unwrap_or_default());
    Ok(Some((
        part("regionId")?,
        part("serviceId")?,
        part("zoneId")?,
    )))
}

/// `operate-zone-operations.json`: `{"zoneOperationsList":[{"operations":[..],"zoneKey":..}],
/// "operationComplete"}` plus the operator's context.
pub(super) fn operate(_: &Context<'_>, p: Props<'_, '_>) -> Result<Asked<Write>, DecodeError> {
    let mut zones = Vec::new();
    for item in p.objects("zoneOperationsList")? {
        let key =
            zone_key_in(&item)?.filter(|(r, s, z)| [r, s, z].iter().all(|k| !k.trim().is_empty()));
        let Some((region_id, service_id, zone_id)) = key else {
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
    let ops = |out: &mut Vec<u8>| write_texts(out, ops.iter().copied());
    write_object(
        out,
        &[
            ("operations", Field::With(&ops)),
            ("zoneKey", Field::With(&key)),
        ],
    );
}

/// The zones' operations among `rows`, each zone once.
fn zone_operations<'a>(
    rows: impl IntoIterator<Item = &'a ZoneOperation>,
) -> Vec<(&'a ZoneOperation, Vec<&'a str>)> {
    grouped(rows, key_of, |r| r.operation.as_str())
}

/// `get-all-zone-operations.json` → `allZoneOperations` (the request's region is ignored).
pub(super) const ALL_ZONE_OPERATIONS: Read<()> = Read::of(
    "allZoneOperations",
    |_| Ok(Ok(())),
    |data, (), out| {
        write_list(
            out,
            zone_operations(&data.zone_operations),
            write_zone_operations,
        )
    },
);

/// `get-zone-operations.json`: `{"zoneKey":..}` → `operations`, `null` when none.
pub(super) const ZONE_OPERATIONS: Read<Option<ZoneKey>> = Read::of(
    "operations",
    |p| Ok(Ok(zone_key_in(&p)?)),
    |data, key, out| {
        let rows = data
            .zone_operations
            .iter()
            .filter(|r| Some(key_of(r)) == key);
        write_first(out, zone_operations(rows), write_zone_operations)
    },
);

/// The filter of `get-zone-operations-list.json`.
pub(super) struct ZoneFilter {
    region_id: Option<String>,
    service_id: Option<String>,
    zone_id: Option<String>,
}

/// `get-zone-operations-list.json`: `{"regionId","serviceId","zoneId"}` → `zoneOperationsList`.
pub(super) const ZONE_OPERATIONS_LIST: Read<ZoneFilter> = Read::of(
    "zoneOperationsList",
    |p| {
        Ok(Ok(ZoneFilter {
            region_id: p.text("regionId")?,
            service_id: p.text("serviceId")?,
            zone_id: p.text("zoneId")?,
        }))
    },
    |data, filter, out| {
        let rows = data.zone_operations.iter().filter(|r| {
            text_matches(&filter.region_id, Some(&r.region_id))
                && text_matches(&filter.service_id, Some(&r.service_id))
                && text_matches(&filter.zone_id, Some(&r.zone_id))
        });
        write_list(out, zone_operations(rows), write_zone_operations)
    },
);

/// `is-zone-down.json`'s `{"zoneKey":..}`; none is not down.
pub(super) fn zone_key(p: Props<'_, '_>) -> Result<Asked<Option<ZoneKey>>, DecodeError> {
    Ok(Ok(zone_key_in(&p)?))
}

pub(super) fn is_zone_down(view: &ManagementView, key: Option<ZoneKey>) -> bool {
    key.is_some_and(|(region, service, zone)| view.is_zone_down(&region, &service, &zone))
}
