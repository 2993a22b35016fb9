//! `status/*.json` (Java's `StatusController`; see `docs/api.md`): this node's status, its
//! cluster's, its configuration, and its leases.

use std::collections::BTreeMap;
use std::sync::Arc;

use artemis_shards::json::{write_int, write_str};
use artemis_shards::{LeaseStatus, ShardStats};

use super::envelope::{malformed, write_by_service, SUCCESS};
use super::{rate_limited, Context, Input, Part, Response};
use crate::clock::format_ms;
use crate::decode;
use crate::rate_limit::LimitedOp;
use crate::router::WsEndpoint;

/// A reply prepared at start, unless refused (see [`refused`]).
pub(super) fn document(
    ctx: &Context<'_>,
    input: Input<'_>,
    body: &Arc<[u8]>,
    op: Option<LimitedOp>,
) -> Response {
    if let Some(refused) = refused(ctx, input, op) {
        return refused;
    }
    Response::json(vec![Part::Shared(body.clone())])
}

/// `status/cluster.json`: this node's status, then each peer's as it last sent it (`unknown`,
/// its flags `null`, while it has not answered).
pub(super) fn cluster(ctx: &Context<'_>, input: Input<'_>) -> Response {
    if let Some(refused) = refused(ctx, input, Some(LimitedOp::GetCluster)) {
        return refused;
    }
    let peers = &ctx.node.cluster.peers;
    let head = format!(r#"{{"nodeCount":{},"nodesStatus":["#, peers.len() + 1);
    let mut parts = Vec::with_capacity(2 * peers.len() + 5);
    parts.push(Part::Owned(head.into_bytes()));
    parts.push(Part::Shared(ctx.status().status.json.clone()));
    for peer in peers {
        parts.push(Part::Static(b","));
        parts.push(Part::Shared(peer.status_json()));
    }
    parts.push(Part::Static(br#"],"responseStatus":"#));
    parts.push(Part::Static(SUCCESS));
    parts.push(Part::Static(b"}"));
    Response::json(parts)
}

/// The refusal of a status request, if any: a POST body, which Java ignores, must still be
/// JSON, and `op`'s rate limit must admit it.
fn refused(ctx: &Context<'_>, input: Input<'_>, op: Option<LimitedOp>) -> Option<Response> {
    if !input.is_get() {
        if let Err(e) = decode::zone_request(input.body) {
            return Some(malformed(e));
        }
    }
    op.and_then(|op| rate_limited(ctx, op))
}

/// `status/message/connections.json`: the open sessions of `/ws/registry/heartbeat` and
/// `/ws/discovery/instance-change` (all-instance-change sessions are not counted, as in Java),
/// as strings.
pub(super) fn websocket_sessions(ctx: &Context<'_>) -> Response {
    let count = |endpoint| ctx.metrics.websocket_sessions(endpoint).to_string();
    let body = format!(
        r#"{{"discovery":"{}","registry":"{}"}}"#,
        count(WsEndpoint::InstanceChange),
        count(WsEndpoint::Heartbeat)
    );
    Response::json(vec![Part::Owned(body.into_bytes())])
}

/// `leases.json` / `legacy-leases.json`: the leases of the services asked for (all when none),
/// grouped by service, with the self-preservation figures of the whole node.
pub(super) async fn leases(ctx: &Context<'_>, input: Input<'_>, op: LimitedOp) -> Response {
    let legacy = op == LimitedOp::GetLegacyLeases;
    let service_ids: Vec<String> = if input.is_get() {
        input
            .query
            .map(|q| crate::http::query_values(q, "appIds").collect())
            .unwrap_or_default()
    } else {
        match decode::leases_request(input.body) {
            Err(e) => return malformed(e),
            Ok(request) => request
                .and_then(|r| r.service_ids)
                .unwrap_or_default()
                .into_iter()
                .flatten()
                .collect(),
        }
    };
    if let Some(refused) = rate_limited(ctx, op) {
        return refused;
    }
    let all = ctx.link.leases(service_ids, legacy).await;
    Response::json(vec![Part::Owned(leases_body(
        &all.leases,
        &all.stats,
        ctx.node.config.self_preservation,
    ))])
}

fn leases_body(leases: &[LeaseStatus], stats: &[ShardStats], safe_check_enabled: bool) -> Vec<u8> {
    let mut by_service: BTreeMap<&str, Vec<&LeaseStatus>> = BTreeMap::new();
    for lease in leases {
        by_service.entry(&lease.service_id).or_default().push(lease);
    }
    let flag = |b: bool| if b { "true" } else { "false" };
    let mut out = format!(
        r#"{{"isSafe":{},"isSafeCheckEnabled":{},"leaseCount":{},"leaseUpdateCountLastTimeWindow":{},"leaseUpdateMaxCount":{},"leaseUpdateMaxCountLastUpdateTime":{},"leases":"#,
        flag(stats.iter().all(|s| s.safe)),
        flag(safe_check_enabled),
        leases.len(),
        stats.iter().map(|s| s.renewals_in_window).sum::<u64>(),
        stats.iter().map(|s| s.max_renewals).sum::<u64>(),
        stats.iter().map(|s| s.max_renewals_updated_ms).max().unwrap_or(0),
    )
    .into_bytes();
    write_by_service(&mut out, &by_service, |out, lease| {
        out.extend_from_slice(br#"{"creationTime":"#);
        write_str(out, &format_ms(lease.creation_ms));
        out.extend_from_slice(br#","evitionTime":"#);
        write_str(out, &format_ms(0));
        out.extend_from_slice(br#","instance":"#);
        write_str(out, &lease.instance);
        out.extend_from_slice(br#","renewalTime":"#);
        write_str(out, &format_ms(lease.renewal_ms));
        out.extend_from_slice(br#","ttl":"#);
        write_int(out, lease.ttl_ms as i64);
        out.push(b'}');
    });
    out.extend_from_slice(br#","responseStatus":"#);
    out.extend_from_slice(SUCCESS);
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_shape() {
        let lease = LeaseStatus {
            service_id: "Svc".into(),
            instance: "sha/shajq/svc/i1".into(),
            creation_ms: 0,
            renewal_ms: 1_000,
            ttl_ms: 20_000,
        };
        let stats = ShardStats {
            instances: 1,
            services: 1,
            leases_expired_total: 0,
            renewals_in_window: 4,
            max_renewals: 9,
            max_renewals_updated_ms: 77,
            safe: true,
            changes_retained: 0,
            changes_retained_bytes: 0,
        };
        let body = String::from_utf8(leases_body(&[lease], &[stats], true)).unwrap();
        assert_eq!(
            body,
            r#"{"isSafe":true,"isSafeCheckEnabled":true,"leaseCount":1,"leaseUpdateCountLastTimeWindow":4,"leaseUpdateMaxCount":9,"leaseUpdateMaxCountLastUpdateTime":77,"leases":{"Svc":[{"creationTime":"1970-01-01 00:00:00.000","evitionTime":"1970-01-01 00:00:00.000","instance":"sha/shajq/svc/i1","renewalTime":"1970-01-01 00:00:01.000","ttl":20000}]},"responseStatus":{"errorCode":"success","message":"","status":"success"}}"#
        );
    }
}
