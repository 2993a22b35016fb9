//! `replication/registry/*.json` (Java's `RegistryReplicationController`; see `docs/api.md`):
//! a peer's replicated register, heartbeat and unregister, and its copy of the whole registry.
//!
//! Java's rules hold: no node-status or zone check (the region must still match), nothing
//! written here is replicated further, a replicated heartbeat for a lease this node does not
//! hold registers the instance, and `services.json` is the raw registry (pulled-out instances
//! included, no management lists). Unlike Java's, these endpoints are not an open door: only
//! the configured peers' addresses may call them (loopback, on a node without peers), and with
//! `--cluster-token` only with `Authorization: Bearer <token>`; anyone else gets
//! `no-permission`.

use std::net::IpAddr;

use artemis_shards::json::write_str;
use artemis_shards::ErrorCode;

use super::bearer::{bearer_token, same_secret};
use super::envelope::{failure, malformed, SUCCESS};
use super::{rate_limited, registry, Context, Input, Part, Response};
use crate::cluster::Cluster;
use crate::rate_limit::LimitedOp;
use crate::shard_link::WriteOp;

/// A peer's replicated write.
pub(super) async fn write(ctx: &Context<'_>, op: WriteOp, input: Input<'_>) -> Response {
    if let Some(refused) = refusal(ctx, &input, "failedInstances") {
        return refused;
    }
    registry::handle_replicated(ctx, op, input).await
}

/// `services.json`: every instance of every service, as registered (`regionId` required).
pub(super) async fn services(ctx: &Context<'_>, input: Input<'_>) -> Response {
    if let Some(refused) = refusal(ctx, &input, "services") {
        return refused;
    }
    let request = match input.zone_request() {
        Err(e) => return malformed(e),
        Ok(request) => request,
    };
    if let Some(refused) = rate_limited(ctx, LimitedOp::GetServices) {
        return refused;
    }
    let region = request.region_id.as_deref();
    if let Err(rejection) = ctx.node.registry_rules.admit_region(region) {
        return failure(rejection.code, Some(&rejection.reason), &["services"]);
    }
    let mut body = br#"{"responseStatus":"#.to_vec();
    body.extend_from_slice(SUCCESS);
    body.extend_from_slice(br#","services":["#);
    for (i, service) in ctx.link.managed_services(None).await.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(br#"{"instances":["#);
        for (j, instance) in service.instances.iter().enumerate() {
            if j > 0 {
                body.push(b',');
            }
            body.extend_from_slice(&instance.json);
        }
        // Java's `new Service(serviceId, instances)`: no lists, no metadata.
        body.extend_from_slice(
            br#"],"logicInstances":null,"metadata":null,"routeRules":null,"serviceId":"#,
        );
        write_str(&mut body, &service.service_id);
        body.push(b'}');
    }
    body.extend_from_slice(b"]}");
    Response::json(vec![Part::Owned(body)])
}

/// The `no-permission` reply (`null_field` being the reply's other field) to a request that
/// may not replicate to this node; `None` when it may. The anti-entropy endpoints
/// (`api::digest`) are guarded by it too.
pub(super) fn refusal(ctx: &Context<'_>, input: &Input<'_>, null_field: &str) -> Option<Response> {
    let why = refused(&ctx.node.cluster, input.peer, input.authorization)?;
    Some(failure(ErrorCode::NoPermission, Some(why), &[null_field]))
}

/// Why a request from `peer` with `authorization` may not replicate to this node, if it may
/// not: it must come from a configured peer's address (loopback when there is no peer), and
/// carry the cluster token when there is one.
fn refused(
    cluster: &Cluster,
    peer: Option<IpAddr>,
    authorization: Option<&[u8]>,
) -> Option<&'static str> {
    let known = peer.is_some_and(|ip| match cluster.peers.is_empty() {
        true => ip.is_loopback(),
        false => cluster.is_peer_address(ip),
    });
    if !known {
        return Some("replication is accepted from the cluster's nodes only");
    }
    let secret = cluster.token.as_deref()?;
    let token = authorization.and_then(bearer_token);
    match token.is_some_and(|token| same_secret(token, secret.as_bytes())) {
        true => None,
        false => Some("replication needs the cluster token (Authorization: Bearer)"),
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use clap::Parser;

    use super::*;
    use crate::config::{Cli, Command};

    fn cluster(flags: &[&str]) -> Cluster {
        let args = ["artemis", "server"].iter().chain(flags);
        let Command::Server(config) = Cli::parse_from(args).command;
        Cluster::new(&config, "http://127.0.0.1:8080/".into())
    }

    fn ip(last: u8) -> Option<IpAddr> {
        Some(Ipv4Addr::new(127, 0, 0, last).into())
    }

    const STRANGER: Option<&str> = Some("replication is accepted from the cluster's nodes only");

    #[test]
    fn only_the_peers_addresses_may_replicate() {
        let nodes = "http://127.0.0.1:8080/,http://127.0.0.2:8080/";
        let with_peers = cluster(&["--cluster-nodes", nodes]);
        assert_eq!(refused(&with_peers, ip(2), None), None);
        assert_eq!(
            refused(&with_peers, ip(1), None),
            STRANGER,
            "itself is no peer"
        );
        let remote = Some(Ipv4Addr::new(10, 0, 0, 9).into());
        assert_eq!(refused(&with_peers, remote, None), STRANGER);
        assert_eq!(refused(&with_peers, None, None), STRANGER);

        let alone = cluster(&[]);
        assert_eq!(refused(&alone, ip(1), None), None);
        assert_eq!(
            refused(&alone, ip(7), None),
            None,
            "all of 127/8 is loopback"
        );
        assert_eq!(refused(&alone, remote, None), STRANGER);
    }

    #[test]
    fn a_peer_that_resolves_anew_is_let_in_at_its_new_address_only() {
        let nodes = "http://127.0.0.1:8080/,http://127.0.0.2:8080/";
        let moving = cluster(&["--cluster-nodes", nodes]);
        let moved = "127.0.0.5:8080".parse().ok();
        assert!(moving.peers[0].address.set(moved));
        assert_eq!(refused(&moving, ip(5), None), None);
        assert_eq!(refused(&moving, ip(2), None), STRANGER);
        assert!(moving.peers[0].address.set(None));
        assert_eq!(refused(&moving, ip(5), None), STRANGER);
    }

    #[test]
    fn with_a_cluster_token_a_peer_must_send_it() {
        let nodes = "http://127.0.0.1:8080/,http://127.0.0.2:8080/";
        let secured = cluster(&["--cluster-nodes", nodes, "--cluster-token", "s3cret"]);
        let no_token = Some("replication needs the cluster token (Authorization: Bearer)");
        assert_eq!(refused(&secured, ip(2), None), no_token);
        assert_eq!(refused(&secured, ip(2), Some(b"Bearer wrong")), no_token);
        assert_eq!(refused(&secured, ip(2), Some(b"Basic s3cret")), no_token);
        assert_eq!(refused(&secured, ip(2), Some(b"Bearer s3cret")), None);
        assert_eq!(refused(&secured, ip(3), Some(b"Bearer s3cret")), STRANGER);
    }
}
