//! `/health` and `/metrics`: what operators and their scrapers poll.

use super::{Part, Response};
use crate::per_core::Core;
use crate::shard_link::{ShardReply, ShardRequest};

/// 200 while the node serves (a core that can answer this is serving).
pub fn health() -> Response {
    Response::json(vec![Part::Static(br#"{"status":"up"}"#)])
}

/// The Prometheus exposition: every core's counters and every shard's figures.
pub async fn metrics(core: &Core) -> Response {
    let stats: Vec<_> = core
        .link
        .call_all(|| ShardRequest::Stats)
        .await
        .into_iter()
        .map(|reply| match reply {
            ShardReply::Stats(s) => s,
            _ => unreachable!("a Stats request gets a Stats reply"),
        })
        .collect();
    Response {
        status: http::StatusCode::OK,
        content_type: "text/plain; version=0.0.4",
        parts: vec![Part::Owned(core.metrics.render(&stats).into_bytes())],
    }
}
