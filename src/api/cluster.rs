//! `cluster/up-registry-nodes.json` and `cluster/up-discovery-nodes.json` (contract §4.4): the
//! nodes a client in a given region and zone may use. A single node lists itself when it takes
//! clients from other zones or the client is in its own zone.

use artemis_shards::ErrorCode;

use super::decode::{self, ZoneRequest};
use super::envelope::{failure, malformed};
use super::{rate_limited, Input, Part, Response};
use crate::per_core::Core;
use crate::rate_limit::LimitedOp;

pub fn up_nodes(core: &Core, input: Input<'_>, op: LimitedOp) -> Response {
    let request = if input.is_get() {
        ZoneRequest {
            region_id: input.query_value("regionId"),
            zone_id: input.query_value("zoneId"),
        }
    } else {
        match decode::zone_request(input.body) {
            Err(e) => return malformed(e),
            Ok(request) => request.unwrap_or_default(),
        }
    };
    if let Some(refused) = rate_limited(core, op) {
        return refused;
    }
    let config = &core.node.config;
    let allow_other_zone = match op {
        LimitedOp::UpRegistryNodes => config.allow_registry_from_other_zone,
        _ => config.allow_discovery_from_other_zone,
    };
    if core.node.serves_zone(
        allow_other_zone,
        request.region_id.as_deref(),
        request.zone_id.as_deref(),
    ) {
        Response::json(vec![Part::Shared(core.node.documents.up_nodes.clone())])
    } else {
        failure(
            ErrorCode::DataNotFound,
            Some("No available service nodes."),
            &["nodes"],
        )
    }
}
