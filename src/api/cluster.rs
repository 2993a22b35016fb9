//! `cluster/up-registry-nodes.json` and `cluster/up-discovery-nodes.json` (Java's
//! `ClusterController`; see `docs/api.md`): the nodes a client in a given region and zone may
//! use, this node first, then its peers as they last described themselves. A node is listed
//! by Java's rule ([`PeerStatus::lists`]); a `starting` node is never listed, so clients go to
//! a node that serves.

use std::sync::Arc;

use artemis_shards::ErrorCode;

use super::envelope::{failure, malformed, SUCCESS};
use super::{rate_limited, Context, Input, Part, Response};
use crate::cluster::{PeerStatus, Role};
use crate::rate_limit::LimitedOp;

pub(super) fn up_nodes(ctx: &Context<'_>, input: Input<'_>, op: LimitedOp) -> Response {
    let request = match input.zone_request() {
        Err(e) => return malformed(e),
        Ok(request) => request,
    };
    if let Some(refused) = rate_limited(ctx, op) {
        return refused;
    }
    let role = match op {
        LimitedOp::UpRegistryNodes => Role::Registry,
        _ => Role::Discovery,
    };
    let cluster = &ctx.node.cluster;
    let (region, zone) = (request.region_id.as_deref(), request.zone_id.as_deref());
    let listed = |status: &PeerStatus, node_zone: &str| {
        status.lists(role, (&cluster.region, node_zone), region, zone)
    };
    let mut nodes: Vec<Arc<[u8]>> = Vec::with_capacity(cluster.peers.len() + 1);
    if listed(&ctx.status().status, &cluster.zone) {
        nodes.push(ctx.node.documents.service_node.clone());
    }
    for peer in &cluster.peers {
        if peer
            .status()
            .is_some_and(|status| listed(&status, &peer.zone))
        {
            nodes.push(peer.service_node.clone());
        }
    }
    if nodes.is_empty() {
        return failure(
            ErrorCode::DataNotFound,
            Some("No available service nodes."),
            &["nodes"],
        );
    }
    let mut parts = Vec::with_capacity(2 * nodes.len() + 3);
    parts.push(Part::Static(br#"{"nodes":["#));
    for (i, node) in nodes.into_iter().enumerate() {
        if i > 0 {
            parts.push(Part::Static(b","));
        }
        parts.push(Part::Shared(node));
    }
    parts.push(Part::Static(br#"],"responseStatus":"#));
    parts.push(Part::Static(SUCCESS));
    parts.push(Part::Static(b"}"));
    Response::json(parts)
}
