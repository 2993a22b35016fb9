//! `cluster/up-registry-nodes.json` and `cluster/up-discovery-nodes.json` (Java's
//! `ClusterController`; see `docs/api.md`): the
//! nodes a client in a given region and zone may use. A single node lists itself when it takes
//! clients from other zones or the client is in its own zone.

use artemis_shards::ErrorCode;

use super::decode::{self, ZoneRequest};
use super::envelope::{failure, malformed};
use super::{rate_limited, Context, Input, Part, Response};
use crate::rate_limit::LimitedOp;

pub(super) fn up_nodes(ctx: &Context<'_>, input: Input<'_>, op: LimitedOp) -> Response {
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
    if let Some(refused) = rate_limited(ctx, op) {
        return refused;
    }
    let config = &ctx.node.config;
    let allow_other_zone = match op {
        LimitedOp::UpRegistryNodes => config.allow_registry_from_other_zone,
        _ => config.allow_discovery_from_other_zone,
    };
    if ctx.node.serves_zone(
        allow_other_zone,
        request.region_id.as_deref(),
        request.zone_id.as_deref(),
    ) {
        Response::json(vec![Part::Shared(ctx.node.documents.up_nodes.clone())])
    } else {
        failure(
            ErrorCode::DataNotFound,
            Some("No available service nodes."),
            &["nodes"],
        )
    }
}
