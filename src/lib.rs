//! The Artemis registry server: a thread-per-core io_uring service registry that speaks the Java
//! Artemis `.json` HTTP API byte for byte.
//!
//! One pinned glommio executor per core (`runtime`), each accepting its own connections
//! (`transport`, `connection`, `http`), routing requests (`router`, `api`) to the shard that owns
//! the service (`shard_link`, the `artemis-shards` crate); WebSocket sessions (`websocket`)
//! receive the changes shards push (`push`). What a client may take is bounded by `limits`
//! (connections, time, requests per turn) and `rate_limit` (Java's per-operation limits). The
//! benchmark harness reuses the runtime, transport and HTTP layer for its no-op reference server.

// Every future here runs on the executor of the core that created it and is never sent to another
// thread, so the traits' async fns need no `Send` bound.
#![allow(async_fn_in_trait)]

/// Public for its request decoders (`api::decode`), which the fuzz targets drive directly.
pub mod api;
mod clock;
pub mod config;
pub mod connection;
pub mod http;
pub mod limits;
mod metrics;
mod node;
pub mod per_core;
mod push;
pub mod rate_limit;
mod router;
pub mod runtime;
mod shard_link;
pub mod transport;
/// Public for its client frame reader (`websocket::frame`), which a fuzz target drives directly.
pub mod websocket;
