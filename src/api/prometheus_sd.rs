//! `GET /api/discovery/prometheus-sd.json?serviceId=a&serviceId=b` (none: every service): the
//! instances in discovery as Prometheus `http_sd` target groups (see `docs/api.md`), so that
//! Prometheus scrapes what registers here without a service-discovery mechanism of its own.
//!
//! As discovery's, the reply is made of bytes the owning shards keep per service version (each
//! service's groups, derived once per version from its instances' fragments; pulled-out
//! instances left out, as from discovery) and sent as they are, gzip included; this endpoint
//! only joins them into one array.

use super::{Context, Input, Part, Response};

pub(super) async fn targets(ctx: &Context<'_>, input: Input<'_>) -> Response {
    // A node that cannot serve discovery yet answers 503: Prometheus keeps the targets it has
    // rather than taking an empty or partial list.
    let status = ctx.status();
    if !status.status.flags.can_serve_discovery {
        return Response::unavailable(&status.discovery_refusal);
    }
    let mut keys: Vec<String> = input
        .query
        .map(|query| crate::http::query_values(query, "serviceId").collect())
        .unwrap_or_default();
    keys.retain(|id| !id.trim().is_empty());
    for key in &mut keys {
        *key = key.to_lowercase();
    }
    keys.sort_unstable();
    keys.dedup();
    let services = ctx.link.targets(keys).await;
    let mut parts = Vec::with_capacity(services.len() * 2 + 1);
    parts.push(Part::Static(b"["));
    for (i, groups) in services.into_iter().enumerate() {
        if i > 0 {
            parts.push(Part::Static(b","));
        }
        parts.push(Part::Instances(groups));
    }
    parts.push(Part::Static(b"]"));
    Response::json(parts)
}
