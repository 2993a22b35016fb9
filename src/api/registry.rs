//! `register.json`, `heartbeat.json`, `unregister.json` (contract §4.1).
//!
//! The instances of one request are grouped by owning shard; each group goes to its owner in
//! one call, all groups at once, and the failed entries that come back are merged in the order
//! the client sent the instances.

use artemis_shards::{shard_for, ErrorCode, FailedInstance, Instance};

use super::decode::{self, InstancesRequest};
use super::envelope::{failure, malformed};
use super::{rate_limited, Input, Part, Response};
use crate::per_core::Core;
use crate::rate_limit::LimitedOp;
use crate::shard_link::{ShardReply, ShardRequest};

#[derive(Clone, Copy)]
pub enum Op {
    Register,
    Heartbeat,
    Unregister,
}

impl Op {
    /// Java's identity of the operation in the `artemis.service.registry` limiter.
    fn limited(self) -> LimitedOp {
        match self {
            Op::Register => LimitedOp::Register,
            Op::Heartbeat => LimitedOp::Heartbeat,
            Op::Unregister => LimitedOp::Unregister,
        }
    }

    fn request(self, batch: Vec<(u32, Instance)>) -> ShardRequest {
        match self {
            Op::Register => ShardRequest::Register(batch),
            Op::Heartbeat => ShardRequest::Heartbeat(batch),
            Op::Unregister => ShardRequest::Unregister(batch),
        }
    }
}

/// A registry reply where nothing failed.
pub const SUCCESS_REPLY: &[u8] =
    br#"{"failedInstances":null,"responseStatus":{"errorCode":"success","message":"","status":"success"}}"#;

const PARTIAL_FAIL: &[u8] = br#"{"errorCode":"partial_fail","message":"","status":"partial_fail"}"#;

/// Decodes the body (a malformed one is refused before it counts against the rate limit, as
/// Java's framework refuses it before the service), checks the limit, then serves.
pub async fn handle(core: &Core, op: Op, input: Input<'_>) -> Response {
    serve(core, op, input).await.0
}

/// [`handle`], also naming the shard that owns the most of the request's instances when it owns
/// more of them than this core's shard does (where the client's heartbeats had better be served).
pub async fn serve(core: &Core, op: Op, input: Input<'_>) -> (Response, Option<usize>) {
    let request = match decode::instances_request(input.body) {
        Err(e) => return (malformed(e), None),
        Ok(request) => request,
    };
    if let Some(refused) = rate_limited(core, op.limited()) {
        return (refused, None);
    }
    let refusal = |message| {
        let response = failure(ErrorCode::BadRequest, Some(message), &["failedInstances"]);
        (response, None)
    };
    let instances = match request {
        None => return refusal("request is null"),
        Some(InstancesRequest {
            instances: Some(list),
        }) if !list.is_empty() => list,
        Some(_) => return refusal("request.instances is null or empty."),
    };

    let shards = core.link.shards();
    let mut batches: Vec<Vec<(u32, Instance)>> = vec![Vec::new(); shards];
    for (index, instance) in instances.into_iter().enumerate() {
        if let Some(instance) = instance {
            let owner = shard_for(instance.service_id.as_deref().unwrap_or(""), shards);
            batches[owner].push((index as u32, instance));
        }
    }
    let here = batches[core.link.me()].len();
    let main_owner = (0..shards)
        .max_by_key(|&shard| (batches[shard].len(), std::cmp::Reverse(shard)))
        .filter(|&shard| batches[shard].len() > here);
    let calls: Vec<_> = batches
        .into_iter()
        .enumerate()
        .filter(|(_, batch)| !batch.is_empty())
        .map(|(owner, batch)| (owner, op.request(batch)))
        .collect();
    let mut failed: Vec<FailedInstance> = core
        .link
        .call_many(calls)
        .await
        .into_iter()
        .flat_map(ShardReply::into_failed)
        .collect();
    let body = if failed.is_empty() {
        Part::Static(SUCCESS_REPLY)
    } else {
        failed.sort_by_key(|f| f.index);
        Part::Owned(reply_body(&failed))
    };
    (Response::json(vec![body]), main_owner)
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
