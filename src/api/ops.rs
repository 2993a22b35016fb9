//! `/health` and `/metrics`: what operators and their scrapers poll.

use super::{Context, Part, Response};

/// 200 while the node serves (a core that can answer this is serving).
pub(super) fn health() -> Response {
    Response::json(vec![Part::Static(br#"{"status":"up"}"#)])
}

/// The Prometheus exposition: every core's counters, every shard's figures, and what each peer
/// said of itself.
pub(super) async fn metrics(ctx: &Context<'_>) -> Response {
    let stats = ctx.link.stats().await;
    let peers_up = ctx.node.cluster.peers_up();
    let text = ctx.metrics.render(&stats, &peers_up).into_bytes();
    Response {
        content_type: "text/plain; version=0.0.4",
        ..Response::json(vec![Part::Owned(text)])
    }
}
