//! `register.json`, `heartbeat.json`, `unregister.json` (Java's `RegistryController`; see
//! `docs/api.md`), and the same writes as a peer replicates them (`replication/registry/`).
//!
//! The instances of one request are grouped by owning shard; each group goes to its owner in
//! one call, all groups at once, and the failed entries that come back are merged in the order
//! the client sent the instances.

use artemis_shards::{shard_for, ErrorCode, FailedInstance, Instance};

use super::envelope::{failure, malformed};
use super::{rate_limited, Context, Input, Part, Response};
use crate::decode::{self, InstancesRequest};
use crate::metrics::Outcome;
use crate::rate_limit::LimitedOp;
use crate::replication::Updates;
use crate::shard_link::{Named, WriteOp};

/// Who sent a registry write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    /// A client: counted by `artemis.service.registry`, refused while this node cannot serve
    /// the registry, its instances' region and zone checked.
    Client,
    /// A peer replicating a client's write: counted by `artemis.service.registry.replication`,
    /// taken whatever this node's status, its instances' region checked and not their zone,
    /// never replicated further.
    Peer,
}

/// Java's identity of the operation in the limiter of its origin.
fn limited(op: WriteOp, origin: Origin) -> LimitedOp {
    match (origin, op) {
        (Origin::Client, WriteOp::Register) => LimitedOp::Register,
        (Origin::Client, WriteOp::Heartbeat) => LimitedOp::Heartbeat,
        (Origin::Client, WriteOp::Unregister) => LimitedOp::Unregister,
        (Origin::Peer, WriteOp::Register) => LimitedOp::ReplicationRegister,
        (Origin::Peer, WriteOp::Heartbeat) => LimitedOp::ReplicationHeartbeat,
        (Origin::Peer, WriteOp::Unregister) => LimitedOp::ReplicationUnregister,
    }
}

/// A registry reply where nothing failed.
pub(super) const SUCCESS_REPLY: &[u8] =
    br#"{"failedInstances":null,"responseStatus":{"errorCode":"success","message":"","status":"success"}}"#;

const PARTIAL_FAIL: &[u8] = br#"{"errorCode":"partial_fail","message":"","status":"partial_fail"}"#;

/// A client's `op` write: decodes the body (a malformed one is refused before it counts against
/// the rate limit, as Java's framework refuses it before the service), checks the limit, then
/// serves. Also names the shard that owns the most of the request's instances when it owns more
/// of them than this core's shard does (where the client's writes had better be served).
pub(super) async fn serve(
    ctx: &Context<'_>,
    op: WriteOp,
    input: Input<'_>,
) -> (Response, Option<usize>) {
    serve_from(ctx, op, Origin::Client, input).await
}

/// [`serve`] of a peer's replicated write.
pub(super) async fn handle_replicated(
    ctx: &Context<'_>,
    op: WriteOp,
    input: Input<'_>,
) -> Response {
    serve_from(ctx, op, Origin::Peer, input).await.0
}

async fn serve_from(
    ctx: &Context<'_>,
    op: WriteOp,
    origin: Origin,
    input: Input<'_>,
) -> (Response, Option<usize>) {
    let request = match decode::instances_request(input.body) {
        Err(e) => return (malformed(e), None),
        Ok(request) => request,
    };
    if let Some(refused) = rate_limited(ctx, limited(op, origin)) {
        return (refused, None);
    }
    let refusal = |message: &str| {
        let response = failure(ErrorCode::BadRequest, Some(message), &["failedInstances"]);
        (response, None)
    };
    let (instances, named) = match request {
        None => return refusal("request is null"),
        Some(InstancesRequest {
            instances: Some(list),
            by_key,
        }) if !list.is_empty() => (
            list,
            if by_key {
                Named::Keys
            } else {
                Named::Instances
            },
        ),
        Some(_) => return refusal("request.instances is null or empty."),
    };
    let status = ctx.status();
    if origin == Origin::Client && !status.status.flags.can_serve_registry {
        let message = Some(status.registry_refusal.as_str());
        let response = failure(ErrorCode::ServiceUnavailable, message, &["failedInstances"]);
        return (response, None);
    }
    // Each failed entry echoes its instance: a bound on the list bounds the reply too.
    let most = ctx.node.config.max_instances_per_request as usize;
    if instances.len() > most {
        return refusal(&format!(
            "request.instances has {} instances; at most {most} per request",
            instances.len()
        ));
    }

    let shards = ctx.link.shards();
    let mut batches: Vec<Vec<(u32, Instance)>> = vec![Vec::new(); shards];
    // A client's write goes on to the peers; a peer's never does.
    let mut replicated = match origin {
        Origin::Client => ctx.replicator.updates(instances.len()),
        Origin::Peer => Updates::default(),
    };
    let count = instances.len();
    for (index, instance) in instances.into_iter().enumerate() {
        if let Some(instance) = instance {
            ctx.replicator.add(&mut replicated, index, &instance);
            let owner = shard_for(instance.service_id.as_deref().unwrap_or(""), shards);
            let batch = &mut batches[owner];
            // Room for the instances still to come rather than a `Vec`'s first four: a client's
            // one instance would take over a kilobyte.
            if batch.capacity() == 0 {
                batch.reserve_exact(count - index);
            }
            batch.push((index as u32, instance));
        }
    }
    let here = batches[ctx.link.me()].len();
    let main_owner = (0..shards)
        .max_by_key(|&shard| (batches[shard].len(), std::cmp::Reverse(shard)))
        .filter(|&shard| batches[shard].len() > here);
    let mut failed = match origin {
        Origin::Client => ctx.link.write(op, named, batches).await,
        Origin::Peer => ctx.link.write_replicated(op, batches).await,
    };
    failed.sort_by_key(|f| f.index);
    ctx.replicator.enqueue(op, replicated, &failed);
    let response = match failed.first() {
        None => Response::json(vec![Part::Static(SUCCESS_REPLY)]),
        Some(first) => Response::json_with(
            Outcome::PartialFail(first.error_code),
            vec![Part::Owned(reply_body(&failed))],
        ),
    };
    (response, main_owner)
}

/// `{"failedInstances":[...],"responseStatus":...}`: `partial_fail` with every failed entry.
fn reply_body(failed: &[FailedInstance]) -> Vec<u8> {
    let mut out = br#"{"failedInstances":["#.to_vec();
    for (i, f) in failed.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        f.write_json(&mut out);
    }
    out.extend_from_slice(br#"],"responseStatus":"#);
    out.extend_from_slice(PARTIAL_FAIL);
    out.push(b'}');
    out
}
