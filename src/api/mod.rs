//! The endpoints: each turns a request into a Java-shaped reply.
//!
//! A reply is a list of parts written back to back: constant bytes, bytes shared with a shard's
//! snapshot, and the few bytes built for this request. Discovery replies are mostly shared
//! parts, so the read path copies cached bytes once, into the connection's output, and builds
//! no JSON.

mod cluster;
pub mod decode;
mod discovery;
mod envelope;
mod ops;
mod registry;
mod status;

use std::sync::Arc;

use artemis_shards::InstancesJson;
use http::{Method, StatusCode};

use crate::http::BodyPart;
use crate::per_core::Core;
use crate::rate_limit::LimitedOp;
use crate::router::Endpoint;

/// One piece of a reply body.
pub enum Part {
    Static(&'static [u8]),
    Shared(Arc<[u8]>),
    /// A service's instances at one version, with their deflated form for gzip replies.
    Instances(Arc<InstancesJson>),
    Owned(Vec<u8>),
}

impl AsRef<[u8]> for Part {
    fn as_ref(&self) -> &[u8] {
        match self {
            Part::Static(b) => b,
            Part::Shared(b) => b,
            Part::Instances(b) => b,
            Part::Owned(b) => b,
        }
    }
}

impl Part {
    /// The part as a slice of an HTTP body, with where its deflated form is kept, if anywhere.
    pub fn body_part(&self) -> BodyPart<'_> {
        match self {
            Part::Instances(json) => BodyPart {
                bytes: json,
                deflated: Some(&json.deflated),
            },
            other => other.as_ref().into(),
        }
    }
}

/// A reply before HTTP framing.
pub struct Response {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub parts: Vec<Part>,
}

pub const JSON: &str = "application/json";

impl Response {
    /// 200 with a JSON body.
    pub fn json(parts: Vec<Part>) -> Response {
        Response {
            status: StatusCode::OK,
            content_type: JSON,
            parts,
        }
    }

    /// A 503: the node has no room for the request (a limit bit), with a `service-unavailable`
    /// `responseStatus`, which Java's SDK takes as "try another node".
    pub fn unavailable(message: &str) -> Response {
        Response {
            status: StatusCode::SERVICE_UNAVAILABLE,
            content_type: JSON,
            parts: vec![Part::Owned(envelope::unavailable(message))],
        }
    }

    /// A protocol-level refusal (400, 404, 405, ...): the status and a `bad-request`
    /// `responseStatus` saying why.
    pub fn refusal(status: StatusCode, message: &str) -> Response {
        Response {
            status,
            content_type: JSON,
            parts: vec![Part::Owned(envelope::refusal(message))],
        }
    }
}

/// What an endpoint gets from the request.
pub struct Input<'a> {
    pub method: &'a Method,
    /// The raw query string, if any.
    pub query: Option<&'a [u8]>,
    /// The body, decoded from chunked and gzip framing; simd-json parses it in place.
    pub body: &'a mut [u8],
}

impl Input<'_> {
    /// The first value of query parameter `name`, percent-decoded.
    pub fn query_value(&self, name: &str) -> Option<String> {
        crate::http::query_values(self.query?, name).next()
    }

    fn is_get(&self) -> bool {
        self.method == Method::GET
    }
}

/// The reply to a heartbeat sent as a WebSocket frame: what `heartbeat.json` answers, under the
/// same rate limit, or Java's canned success when the payload is not a heartbeat request at all
/// (contract §4.11).
///
/// The payload is decoded in place, where the frame arrived. Also names the shard that owns the
/// most of the instances heartbeated, when it owns more of them than this core's shard does.
pub async fn heartbeat_frame(core: &Core, payload: &mut [u8]) -> (Vec<Part>, Option<usize>) {
    let started = std::time::Instant::now();
    let input = Input {
        method: &Method::POST,
        query: None,
        body: payload,
    };
    let (response, owner) = registry::serve(core, registry::Op::Heartbeat, input).await;
    if response.status != StatusCode::OK {
        return (vec![Part::Static(registry::SUCCESS_REPLY)], None);
    }
    core.counters()
        .record_request(Endpoint::Heartbeat, started.elapsed());
    (response.parts, owner)
}

/// The service a `/ws/discovery/instance-change` frame subscribes to: the non-blank `serviceId`
/// of a `DiscoveryConfig`.
pub fn subscribed_service(payload: &mut [u8]) -> Option<String> {
    decode::discovery_config_request(payload)
        .ok()
        .flatten()
        .and_then(|config| config.service_id)
        .filter(|id| !id.trim().is_empty())
}

/// `None` when this core may serve `op` now (and it is counted); otherwise the `rate-limited`
/// reply, counted in the metrics.
fn rate_limited(core: &Core, op: LimitedOp) -> Option<Response> {
    if core.rate_limits.admit(op, core.link.me()) {
        return None;
    }
    core.counters().record_rate_limited(op);
    Some(envelope::rate_limited(op))
}

/// Answers one request for `endpoint`.
pub async fn respond(core: &Core, endpoint: Endpoint, input: Input<'_>) -> Response {
    use registry::Op;
    match endpoint {
        Endpoint::Register => registry::handle(core, Op::Register, input).await,
        Endpoint::Heartbeat => registry::handle(core, Op::Heartbeat, input).await,
        Endpoint::Unregister => registry::handle(core, Op::Unregister, input).await,
        Endpoint::Service => discovery::service(core, input).await,
        Endpoint::Lookup => discovery::lookup(core, input).await,
        Endpoint::Services => discovery::services(core, input).await,
        Endpoint::ServicesDelta => discovery::services_delta(core, input).await,
        Endpoint::NodeStatus => {
            status::document(core, input, &core.node.documents.node_status, None)
        }
        Endpoint::ClusterStatus => status::document(
            core,
            input,
            &core.node.documents.cluster_status,
            Some(LimitedOp::GetCluster),
        ),
        Endpoint::Leases => status::leases(core, input, LimitedOp::GetLeases).await,
        Endpoint::LegacyLeases => status::leases(core, input, LimitedOp::GetLegacyLeases).await,
        Endpoint::ConfigStatus => status::document(
            core,
            input,
            &core.node.documents.config,
            Some(LimitedOp::GetConfig),
        ),
        Endpoint::DeploymentStatus => status::document(
            core,
            input,
            &core.node.documents.deployment,
            Some(LimitedOp::GetDeployment),
        ),
        Endpoint::UpRegistryNodes => cluster::up_nodes(core, input, LimitedOp::UpRegistryNodes),
        Endpoint::UpDiscoveryNodes => cluster::up_nodes(core, input, LimitedOp::UpDiscoveryNodes),
        Endpoint::WebSocketSessions => status::websocket_sessions(core),
        Endpoint::Health => ops::health(),
        Endpoint::Metrics => ops::metrics(core).await,
    }
}
