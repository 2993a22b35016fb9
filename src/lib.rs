//! The Artemis registry server: a thread-per-core io_uring service registry that speaks the Java
//! Artemis `.json` HTTP API byte for byte.
//!
//! A request's way through, by module: `runtime` (pinned executors, one listener per core) →
//! `transport` (the socket) → `connection` (read, answer, write) → `http` (parse, frame) →
//! `router` (every path, the method check) → `api` (the endpoints) → `shard_link` (a typed call
//! to the owning core's shard) → the `artemis-shards` crate (the registry state). `management`
//! keeps pull-outs, groups and route rules in a store, off the cores, and hands the shards the
//! state they filter discovery with. `replication` sends every client write on to the cluster's
//! peers. `server` ties
//! one core's pieces together; `websocket` and `push` serve sessions and the changes they
//! follow; `handoff` moves a session to another core; `mesh` is the cross-core channels;
//! `shutdown` is how everything stops. What a client may take is bounded by `limits` and
//! `rate_limit`; `metrics` counts it all.

// Every future here runs on the executor of the core that created it and is never sent to another
// thread, so the traits' async fns need no `Send` bound.
#![allow(async_fn_in_trait)]

mod api;
mod clock;
mod cluster;
mod config;
mod connection;
pub mod decode;
mod handoff;
mod http;
mod limits;
mod management;
mod mesh;
mod metrics;
mod node;
#[cfg(test)]
mod noise;
mod push;
mod rate_limit;
mod replication;
mod router;
mod runtime;
mod server;
mod shard_link;
mod shutdown;
mod transport;
mod websocket;

// The `artemis` command line and what it starts.
pub use config::{
    parse_core_list, parse_duration, Cli, ClusterNodes, Command, CoreList, ServerConfig,
};
/// The allocator the server and the no-op reference server install as `#[global_allocator]`.
pub use mimalloc::MiMalloc as Allocator;
pub use runtime::{run, select_cores, App, Failure, Layout};
pub use server::Server;

// The layers below the registry, which the benchmark's no-op reference server shares.
pub use connection::{Handler, Moved, MovedKind, Outcome, Terms};
pub use http::{parse_request, write_response, Body, HttpError, Limits, Parse, Reply, Request};
pub use limits::{ConnectionLimits, Limit};
pub use shutdown::Shutdown;
pub use transport::{Connection, Io, Output, ReadBuffer};

// What the fuzz targets drive directly: the request decoders (`decode`, public above) and the
// WebSocket frame reader.
pub use websocket::frame as websocket_frame;
