//! The endpoints: each turns a request into a Java-shaped reply.
//!
//! An endpoint takes a narrow [`Context`] (the shard link, the node's settings, the rate limits
//! and the counters), never the whole core, so each can be tested on a one-shard link without a
//! mesh or an executor.
//!
//! A reply is a list of parts written back to back: constant bytes, bytes shared with a shard's
//! snapshot, and the few bytes built for this request. Discovery replies are mostly shared
//! parts, so the read path copies cached bytes once, into the connection's output, and builds
//! no JSON.

mod bearer;
mod cluster;

mod digest;
mod discovery;
mod envelope;
mod management;
mod ops;
mod prometheus_sd;
mod registry;
mod replication;
mod status;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use artemis_shards::{Deflated, ErrorCode, InstancesJson};
use http::{Method, StatusCode};

use crate::decode::{self, DecodeError, ZoneRequest};

use crate::http::{BodyPart, DeflateCache};
use crate::management::Management;
use crate::metrics::{CoreMetrics, Metrics, Outcome};
use crate::node::{Node, StatusDocuments};
use crate::rate_limit::{LimitedOp, RateLimits};
use crate::replication::Replicator;
use crate::router::Endpoint;
use crate::shard_link::{ShardLink, WriteOp};
use crate::transport::SharedBytes;

/// What an endpoint may use: this core's link to the shards, the node, the way to the
/// management store, the rate limits, the counters, and the replies this core keeps.
#[derive(Clone, Copy)]
pub(crate) struct Context<'a> {
    pub link: &'a ShardLink,
    pub node: &'a Node,
    pub management: &'a Management,
    pub rate_limits: &'a RateLimits,
    pub metrics: &'a Metrics,
    pub kept: &'a KeptReplies,
    /// This core's replication of client writes to the peers.
    pub replicator: &'a Replicator,
}

/// Replies a core builds once and keeps while they hold: deltas between two versions.
#[derive(Default)]
pub(crate) struct KeptReplies {
    pub(crate) deltas: discovery::KeptDeltas,
}

impl Context<'_> {
    /// How this node describes its status now: `starting` until it has joined its cluster and
    /// its management state is loaded.
    pub(crate) fn status(&self) -> &StatusDocuments {
        let documents = &self.node.documents;
        match (self.node.cluster.is_joined(), self.management.is_loaded()) {
            (false, _) => &documents.joining,
            (true, false) => &documents.starting,
            (true, true) => &documents.up,
        }
    }

    /// Whether the node is `up`: joined and its management state loaded (Java's management
    /// writes need it).
    pub(crate) fn is_up(&self) -> bool {
        self.node.cluster.is_joined() && self.management.is_loaded()
    }

    /// This core's own counters.
    pub(crate) fn counters(&self) -> &CoreMetrics {
        self.metrics.core(self.link.me())
    }

    /// Whether a client connection of this core may move to core `to`, whose shard owns its
    /// writes: not while `to` serves more connections than this core, nor once it serves
    /// `--max-connections-per-core`. A move saves every later write of the client a cross-core
    /// call, but the clients of one busy service would otherwise all crowd onto one core and
    /// leave the others idle.
    pub(crate) fn may_move_to(&self, to: usize) -> bool {
        let open = |core| self.metrics.core(core).connections_open() as usize;
        let cap = self
            .node
            .config
            .max_connections_per_core
            .unwrap_or(usize::MAX);
        open(to) <= open(self.link.me()) && open(to) < cap
    }

    /// A client moves to another core: this core's unspent rate-limit shares go back, for the
    /// core it moves to to take.
    pub(crate) fn moving_out(&self) {
        self.rate_limits.give_back(self.link.me());
    }
}

/// One piece of a reply body.
pub(crate) enum Part {
    Static(&'static [u8]),
    Shared(Arc<[u8]>),
    /// A service's instances at one version, with their deflated form for gzip replies.
    Instances(Arc<InstancesJson>),
    /// A body kept for the replies that follow (a delta between two versions).
    Kept(Arc<Kept>),
    Owned(Vec<u8>),
}

/// Bytes built once and sent to every reply that asks for the same, from where they are.
pub(crate) struct Kept(Vec<u8>);

impl SharedBytes for Kept {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Part {
    fn as_ref(&self) -> &[u8] {
        match self {
            Part::Static(b) => b,
            Part::Shared(b) => b,
            Part::Instances(b) => b,
            Part::Kept(b) => b.bytes(),
            Part::Owned(b) => b,
        }
    }
}

impl Part {
    /// The part as a slice of an HTTP body, with where its deflated form is kept, if anywhere.
    pub(crate) fn body_part(&self) -> BodyPart<'_> {
        match self {
            Part::Instances(json) => BodyPart {
                bytes: json,
                shared: Some(json),
                deflated: Some(&json.deflated),
            },
            Part::Kept(kept) => BodyPart {
                bytes: kept.bytes(),
                shared: Some(kept),
                deflated: None,
            },
            other => other.as_ref().into(),
        }
    }
}

/// A service's instance array keeps its deflated form with it, one per version, for every gzip
/// reply that carries it.
impl DeflateCache for OnceLock<Deflated> {
    fn get_or_deflate(&self, deflate: &dyn Fn() -> (Box<[u8]>, u32)) -> (&[u8], u32) {
        let kept = self.get_or_init(|| {
            let (blocks, crc32) = deflate();
            Deflated { blocks, crc32 }
        });
        (&kept.blocks, kept.crc32)
    }
}

/// A service's instance array is sent from where it is kept, whatever the number of replies.
impl SharedBytes for InstancesJson {
    fn bytes(&self) -> &[u8] {
        self
    }
}

/// A reply before HTTP framing.
pub(crate) struct Response {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub parts: Vec<Part>,
    /// What its `responseStatus` says, for the request counters.
    pub outcome: Outcome,
}

pub(crate) const JSON: &str = "application/json;charset=UTF-8";

impl Response {
    /// 200 with a JSON body whose `responseStatus` is a success.
    pub(crate) fn json(parts: Vec<Part>) -> Response {
        Response {
            status: StatusCode::OK,
            content_type: JSON,
            parts,
            outcome: Outcome::Success,
        }
    }

    /// 200 with a JSON body whose `responseStatus` says `outcome`.
    pub(crate) fn json_with(outcome: Outcome, parts: Vec<Part>) -> Response {
        Response {
            outcome,
            ..Response::json(parts)
        }
    }

    /// A 503: the node has no room for the request (a limit bit), with a `service-unavailable`
    /// `responseStatus`, which Java's SDK takes as "try another node".
    pub(crate) fn unavailable(message: &str) -> Response {
        Response {
            status: StatusCode::SERVICE_UNAVAILABLE,
            content_type: JSON,
            parts: vec![Part::Owned(envelope::unavailable(message))],
            outcome: Outcome::Fail(ErrorCode::ServiceUnavailable),
        }
    }

    /// A protocol-level refusal (400, 404, 405, ...): the status and a `bad-request`
    /// `responseStatus` saying why.
    pub(crate) fn refusal(status: StatusCode, message: &str) -> Response {
        Response {
            status,
            content_type: JSON,
            parts: vec![Part::Owned(envelope::refusal(message))],
            outcome: Outcome::Fail(ErrorCode::BadRequest),
        }
    }
}

/// What an endpoint gets from the request.
pub(crate) struct Input<'a> {
    pub method: &'a Method,
    /// The raw query string, if any.
    pub query: Option<&'a [u8]>,
    /// The body, decoded from chunked and gzip framing; simd-json parses it in place.
    pub body: &'a mut [u8],
    /// The address the client connected from, if known.
    pub peer: Option<IpAddr>,
    /// The raw `Authorization` header, if any.
    pub authorization: Option<&'a [u8]>,
}

impl Input<'_> {
    /// The first value of query parameter `name`, percent-decoded.
    pub(crate) fn query_value(&self, name: &str) -> Option<String> {
        crate::http::query_values(self.query?, name).next()
    }

    /// A `{"regionId":..,"zoneId":..}` request: a GET's query parameters, or the body.
    fn zone_request(self) -> Result<ZoneRequest, DecodeError> {
        if self.is_get() {
            return Ok(ZoneRequest {
                region_id: self.query_value("regionId"),
                zone_id: self.query_value("zoneId"),
            });
        }
        decode::zone_request(self.body).map(Option::unwrap_or_default)
    }

    /// The client is on this host.
    pub(crate) fn is_from_loopback(&self) -> bool {
        self.peer.is_some_and(|ip| ip.is_loopback())
    }

    fn is_get(&self) -> bool {
        self.method == Method::GET
    }
}

/// The reply to a heartbeat sent as a WebSocket frame: what `heartbeat.json` answers, under the
/// same rate limit, or Java's canned success when the payload is not a heartbeat request at all
/// (Java's `HeartbeatWsHandler`; see `docs/websocket.md`).
///
/// The payload is decoded in place, where the frame arrived. Also names the shard that owns the
/// most of the instances heartbeated, when it owns more of them than this core's shard does.
pub(crate) async fn heartbeat_frame(
    ctx: &Context<'_>,
    payload: &mut [u8],
) -> (Vec<Part>, Option<usize>) {
    let started = std::time::Instant::now();
    let input = Input {
        method: &Method::POST,
        query: None,
        body: payload,
        peer: None,
        authorization: None,
    };
    let (response, owner) = registry::serve(ctx, WriteOp::Heartbeat, input).await;
    if response.status != StatusCode::OK {
        return (vec![Part::Static(registry::SUCCESS_REPLY)], None);
    }
    ctx.counters()
        .record_request(Endpoint::Heartbeat, response.outcome, started.elapsed());
    (response.parts, owner)
}

/// The service a `/ws/discovery/instance-change` frame subscribes to: the non-blank `serviceId`
/// of a `DiscoveryConfig`.
pub(crate) fn subscribed_service(payload: &mut [u8]) -> Option<String> {
    decode::discovery_config_request(payload)
        .ok()
        .flatten()
        .and_then(|config| config.service_id)
        .filter(|id| !id.trim().is_empty())
}

/// `None` when this core may serve `op` now (and it is counted); otherwise the `rate-limited`
/// reply, counted in the metrics.
fn rate_limited(ctx: &Context<'_>, op: LimitedOp) -> Option<Response> {
    if ctx.rate_limits.admit(op, ctx.link.me()) {
        return None;
    }
    ctx.counters().record_rate_limited(op);
    Some(envelope::rate_limited(op))
}

/// Answers one request for `endpoint`; for a client's registry write, also names the core whose
/// shard owns the most of its instances when that is not this core (where the client's writes
/// had better be served).
pub(crate) async fn respond(
    ctx: &Context<'_>,
    endpoint: Endpoint,
    input: Input<'_>,
) -> (Response, Option<usize>) {
    let response = match endpoint {
        Endpoint::Register => return registry::serve(ctx, WriteOp::Register, input).await,
        Endpoint::Heartbeat => return registry::serve(ctx, WriteOp::Heartbeat, input).await,
        Endpoint::Unregister => return registry::serve(ctx, WriteOp::Unregister, input).await,
        Endpoint::Service => discovery::service(ctx, input).await,
        Endpoint::Lookup => discovery::lookup(ctx, input).await,
        Endpoint::Services => discovery::services(ctx, input).await,
        Endpoint::ServicesDelta => discovery::services_delta(ctx, input).await,
        Endpoint::PrometheusSd => prometheus_sd::targets(ctx, input).await,
        Endpoint::NodeStatus => status::document(ctx, input, &ctx.status().node_status, None),
        Endpoint::ClusterStatus => status::cluster(ctx, input),
        Endpoint::Leases => status::leases(ctx, input, LimitedOp::GetLeases).await,
        Endpoint::LegacyLeases => status::leases(ctx, input, LimitedOp::GetLegacyLeases).await,
        Endpoint::ConfigStatus => status::document(
            ctx,
            input,
            &ctx.node.documents.config,
            Some(LimitedOp::GetConfig),
        ),
        Endpoint::DeploymentStatus => status::document(
            ctx,
            input,
            &ctx.node.documents.deployment,
            Some(LimitedOp::GetDeployment),
        ),
        Endpoint::UpRegistryNodes => cluster::up_nodes(ctx, input, LimitedOp::UpRegistryNodes),
        Endpoint::UpDiscoveryNodes => cluster::up_nodes(ctx, input, LimitedOp::UpDiscoveryNodes),
        Endpoint::WebSocketSessions => status::websocket_sessions(ctx),
        Endpoint::Health => ops::health(),
        Endpoint::Metrics => ops::metrics(ctx).await,
        Endpoint::ReplicationRegister => replication::write(ctx, WriteOp::Register, input).await,
        Endpoint::ReplicationHeartbeat => replication::write(ctx, WriteOp::Heartbeat, input).await,
        Endpoint::ReplicationUnregister => {
            replication::write(ctx, WriteOp::Unregister, input).await
        }
        Endpoint::ReplicationServices => replication::services(ctx, input).await,
        Endpoint::ReplicationDigest => digest::digest(ctx, input).await,
        Endpoint::ReplicationServiceStates => digest::service_states(ctx, input).await,
        Endpoint::Management(endpoint) => management::respond(ctx, endpoint, input).await,
    };
    (response, None)
}
