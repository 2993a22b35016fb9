//! `/health` and `/metrics`: what operators and their scrapers poll.

use super::{Context, Part, Response};

/// 200 while the node serves (a core that can answer this is serving).
pub(super) fn health() -> Response {
    Response::json(vec![Part::Static(br#"{"status":"up"}"#)])
}

/// The Prometheus exposition: every core's counters and every shard's figures.
pub(super) async fn metrics(ctx: &Context<'_>) -> Response {
    let stats = ctx.link.stats().await;
    Response {
        status: http::StatusCode::OK,
        content_type: "text/plain; version=0.0.4",
        parts: vec![Part::Owned(ctx.metrics.render(&stats).into_bytes())],
    }
}
