//! `service.json`, `lookup.json`, `services.json` and `services-delta.json` (Java's
//! `DiscoveryController`; see `docs/api.md`),
//! answered from the owning shards' pre-serialized instance arrays and change logs.
//!
//! Java's quirks are kept: `service.json` answers an unknown service with the unfiltered
//! null-list shape; `lookup.json` masks per-service problems (wrong region, blank id) as that
//! same shape under an overall success, and answers an unknown service with empty lists.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use artemis_shards::json::write_opt_str;
use artemis_shards::{Change, ErrorCode, ServiceSnapshot};

use super::envelope::{fail_status, failure, malformed, object, write_by_service, SUCCESS};
use super::{Context, Input, Kept, Part, Response};
use crate::decode::{self, LookupRequest, ServiceRequest};
use crate::metrics::Outcome;
use crate::transport::SharedBytes;

/// How a `Service` object is filled.
enum Shape {
    /// Passed the filters: the shard's instance array and the lists management adds.
    Found(ServiceSnapshot),
    /// Passed the filters but has no instances: empty lists.
    Empty,
    /// `new Service(serviceId)`: every list `null`.
    Unfiltered,
}

/// Appends a Java `Service` object for `service_id`.
fn push_service(parts: &mut Vec<Part>, shape: Shape, service_id: Option<&str>) {
    match shape {
        Shape::Found(snapshot) => {
            parts.push(Part::Static(br#"{"instances":"#));
            parts.push(Part::Instances(snapshot.instances_json));
            parts.push(Part::Shared(snapshot.lists));
        }
        Shape::Empty => parts.push(Part::Static(
            br#"{"instances":[],"logicInstances":[],"metadata":null,"routeRules":[],"serviceId":"#,
        )),
        Shape::Unfiltered => parts.push(Part::Static(
            br#"{"instances":null,"logicInstances":null,"metadata":null,"routeRules":null,"serviceId":"#,
        )),
    }
    let mut id = Vec::with_capacity(service_id.map_or(4, str::len) + 3);
    write_opt_str(&mut id, service_id);
    id.push(b'}');
    parts.push(Part::Owned(id));
}

/// `{"responseStatus":SUCCESS,"<field>":` — the head of a successful discovery reply.
fn success_head(field: &'static [u8]) -> Vec<Part> {
    let mut parts = Vec::with_capacity(8);
    parts.push(Part::Static(br#"{"responseStatus":"#));
    parts.push(Part::Static(SUCCESS));
    parts.push(Part::Static(field));
    parts
}

fn non_blank(id: Option<String>) -> Option<String> {
    id.filter(|s| !s.trim().is_empty())
}

/// Java's discovery status check: until the node has joined its cluster and loaded its
/// management state, discovery is refused with `service-unavailable`, which the SDK takes as
/// "try another node".
fn not_ready(ctx: &Context<'_>, null_fields: &[&str]) -> Option<Response> {
    let status = ctx.status();
    if status.status.flags.can_serve_discovery {
        return None;
    }
    let message = &status.discovery_refusal;
    Some(failure(
        ErrorCode::ServiceUnavailable,
        Some(message),
        null_fields,
    ))
}

pub(super) async fn service(ctx: &Context<'_>, input: Input<'_>) -> Response {
    let request = if input.is_get() {
        ServiceRequest {
            discovery_config: input
                .query_value("serviceId")
                .map(|id| decode::DiscoveryConfig {
                    service_id: Some(id),
                }),
            region_id: input.query_value("regionId"),
            zone_id: input.query_value("zoneId"),
        }
    } else {
        match decode::service_request(input.body) {
            Err(e) => return malformed(e),
            Ok(request) => request.unwrap_or(ServiceRequest {
                discovery_config: None,
                region_id: None,
                zone_id: None,
            }),
        }
    };
    let Some(service_id) = non_blank(request.discovery_config.and_then(|c| c.service_id)) else {
        return failure(
            ErrorCode::BadRequest,
            Some("Request is null or request.discoveryConfig is null."),
            &["service"],
        );
    };
    if let Some(refused) = not_ready(ctx, &["service"]) {
        return refused;
    }
    let rules = &ctx.node.discovery_rules;
    if let Err(rejection) =
        rules.admit_origin(request.region_id.as_deref(), request.zone_id.as_deref())
    {
        return failure(rejection.code, Some(&rejection.reason), &["service"]);
    }
    // A service only management data names is unknown to the registry: Java's unfiltered shape.
    let shape = match ctx.link.service(&service_id).await {
        Some(snapshot) if snapshot.registered => Shape::Found(snapshot),
        _ => Shape::Unfiltered,
    };
    let mut parts = success_head(br#","service":"#);
    push_service(&mut parts, shape, Some(&service_id));
    parts.push(Part::Static(b"}"));
    Response::json(parts)
}

pub(super) async fn lookup(ctx: &Context<'_>, input: Input<'_>) -> Response {
    let request = match decode::lookup_request(input.body) {
        Err(e) => return malformed(e),
        Ok(request) => request,
    };
    let Some(LookupRequest {
        discovery_configs: Some(configs),
        region_id,
        zone_id,
    }) = request
    else {
        // Java's controller dereferences the missing list: an exception without a message.
        return failure(ErrorCode::InternalServiceError, None, &["services"]);
    };
    if let Some(refused) = not_ready(ctx, &["services"]) {
        return refused;
    }
    let admitted = ctx
        .node
        .discovery_rules
        .admit_origin(region_id.as_deref(), zone_id.as_deref())
        .is_ok();
    let mut parts = success_head(br#","services":["#);
    for (i, config) in configs.into_iter().enumerate() {
        if i > 0 {
            parts.push(Part::Static(b","));
        }
        // A blank id is echoed as sent, as Java's `new Service(serviceId)` does.
        let sent = config.and_then(|c| c.service_id);
        let shape = match non_blank(sent.clone()) {
            Some(id) if admitted => match ctx.link.service(&id).await {
                Some(snapshot) => Shape::Found(snapshot),
                None => Shape::Empty,
            },
            _ => Shape::Unfiltered,
        };
        push_service(&mut parts, shape, sent.as_deref());
    }
    parts.push(Part::Static(b"]}"));
    Response::json(parts)
}

pub(super) async fn services(ctx: &Context<'_>, input: Input<'_>) -> Response {
    // The request's region and zone are ignored, as in Java; a POST body must still be JSON.
    if !input.is_get() {
        if let Err(e) = decode::zone_request(input.body) {
            return malformed(e);
        }
    }
    if let Some(refused) = not_ready(ctx, &["services", "version"]) {
        return refused;
    }
    // The list holds every change up to the smallest version a shard reported (VersionClock).
    let all = ctx.link.services().await;
    let mut parts = success_head(br#","services":["#);
    for (i, snapshot) in all.services.into_iter().enumerate() {
        if i > 0 {
            parts.push(Part::Static(b","));
        }
        let service_id = snapshot.service_id.clone();
        push_service(&mut parts, Shape::Found(snapshot), Some(&service_id));
    }
    parts.push(Part::Owned(
        format!(r#"],"version":{}}}"#, all.version).into_bytes(),
    ));
    Response::json(parts)
}

/// `services-delta.json`: the latest change of each instance changed since the client's version,
/// grouped by service. A version the shards no longer cover, an unknown one, or the current one
/// gets Java's `data-not-found`, and the client fetches `services.json` instead.
///
/// A reply is built once per (client's version, current version) and kept while no change
/// follows: clients of one node poll from the same few versions, and a delta can be tens of MB.
pub(crate) async fn services_delta(ctx: &Context<'_>, input: Input<'_>) -> Response {
    let since = match decode::delta_request(input.body) {
        Err(e) => return malformed(e),
        Ok(request) => request.map_or(0, |r| r.version),
    };
    let not_found = || {
        let status = fail_status(ErrorCode::DataNotFound, Some("Delta is not found."));
        let body = object(&[
            ("delta", b"null"),
            ("responseStatus", &status),
            ("version", b"0"),
        ]);
        Response::json_with(
            Outcome::Fail(ErrorCode::DataNotFound),
            vec![Part::Owned(body)],
        )
    };
    if let Some(refused) = not_ready(ctx, &["delta", "version"]) {
        return refused;
    }
    let Ok(since) = u64::try_from(since) else {
        return not_found();
    };
    if let Some(kept) = ctx.kept.deltas.get(since, ctx.link.version()) {
        return Response::json(vec![Part::Kept(kept)]);
    }
    let Ok(delta) = ctx.link.delta(since).await else {
        return not_found();
    };
    let version = delta.version;
    if since >= version {
        return not_found();
    }
    let mut by_service: BTreeMap<Arc<str>, Vec<Change>> = BTreeMap::new();
    for change in delta.changes {
        by_service
            .entry(change.service_id.clone())
            .or_default()
            .push(change);
    }
    let mut changes = Vec::new();
    write_by_service(&mut changes, &by_service, |out, change| {
        change.write_json(out)
    });
    let body = object(&[
        ("delta", &changes),
        ("responseStatus", SUCCESS),
        ("version", version.to_string().as_bytes()),
    ]);
    let kept = ctx.kept.deltas.keep(since, version, body);
    Response::json(vec![Part::Kept(kept)])
}

/// Most delta replies a core keeps at once, and the most bytes they may hold together (the
/// newest is kept whatever its size).
const KEPT_DELTAS: usize = 8;
const KEPT_DELTA_BYTES: usize = 64 << 20;

/// The delta replies of the current version, by the version they start from.
#[derive(Default)]
pub(crate) struct KeptDeltas {
    /// `(since, version, reply)`, newest last.
    replies: RefCell<Vec<(u64, u64, Arc<Kept>)>>,
}

impl KeptDeltas {
    /// The reply from `since` to `version`, if kept.
    fn get(&self, since: u64, version: u64) -> Option<Arc<Kept>> {
        let replies = self.replies.borrow();
        let found = replies
            .iter()
            .find(|(s, v, _)| (*s, *v) == (since, version));
        found.map(|(_, _, reply)| reply.clone())
    }

    /// Keeps `body`, the reply from `since` to `version`, dropping replies of older versions
    /// and the oldest beyond the bounds.
    fn keep(&self, since: u64, version: u64, body: Vec<u8>) -> Arc<Kept> {
        let kept = Arc::new(Kept(body));
        let mut replies = self.replies.borrow_mut();
        replies.retain(|(_, v, _)| *v == version);
        replies.push((since, version, kept.clone()));
        let mut bytes: usize = replies.iter().map(|(_, _, r)| r.bytes().len()).sum();
        while replies.len() > KEPT_DELTAS || (replies.len() > 1 && bytes > KEPT_DELTA_BYTES) {
            bytes -= replies.remove(0).2.bytes().len();
        }
        kept
    }
}
