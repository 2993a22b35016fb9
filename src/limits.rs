//! What one client may take of a node: connections, time, and requests per turn; and the name
//! under which `/metrics` counts each limit that bites (`artemis_limit_rejections_total{limit}`).
//!
//! Request sizes are the HTTP layer's (`http::Limits`); rates per operation are `rate_limit`'s.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// Every limit that can bite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// A connection beyond `--max-connections-per-core` on its core: answered 503, closed.
    ConnectionsPerCore,
    /// A connection beyond `--max-connections` on the node: answered 503, closed.
    Connections,
    /// A request head over `--max-head`: 431, closed.
    HeadSize,
    /// A request body over `--max-body`: 413, closed.
    BodySize,
    /// A request not complete `--request-timeout` after its first byte: 408, closed.
    RequestTimeout,
    /// A connection idle for `--idle-timeout`: closed.
    IdleTimeout,
    /// A batch of replies the client has not taken within `--idle-timeout` (it sends but never
    /// reads): closed, and what was left unsent is dropped.
    WriteTimeout,
    /// More than `--max-pipeline` requests in one read: the rest wait for the connection's next
    /// turn (counted once per turn cut short).
    PipelineDepth,
    /// A turn's replies reached `--max-output` bytes with requests still buffered: the rest wait
    /// until the client has taken those (counted once per turn cut short).
    OutputBound,
    /// A WebSocket frame over `--ws-max-frame`, or message over `--ws-max-message`: the session
    /// is closed with 1009.
    WebSocketSize,
}

impl Limit {
    pub const ALL: [Limit; 10] = [
        Limit::ConnectionsPerCore,
        Limit::Connections,
        Limit::HeadSize,
        Limit::BodySize,
        Limit::RequestTimeout,
        Limit::IdleTimeout,
        Limit::WriteTimeout,
        Limit::PipelineDepth,
        Limit::OutputBound,
        Limit::WebSocketSize,
    ];

    /// The metric label.
    pub fn name(self) -> &'static str {
        match self {
            Limit::ConnectionsPerCore => "connections_per_core",
            Limit::Connections => "connections",
            Limit::HeadSize => "head_size",
            Limit::BodySize => "body_size",
            Limit::RequestTimeout => "request_timeout",
            Limit::IdleTimeout => "idle_timeout",
            Limit::WriteTimeout => "write_timeout",
            Limit::PipelineDepth => "pipeline_depth",
            Limit::OutputBound => "output_bound",
            Limit::WebSocketSize => "websocket_size",
        }
    }

    /// Position in `ALL`.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// How long a connection may stay quiet or take over one request, and how many requests it has
/// answered per turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Closed after this long without a byte while no request is in progress.
    pub idle_timeout: Duration,
    /// Answered 408 and closed when a request is not whole this long after its first byte.
    pub request_timeout: Duration,
    /// Requests answered per read before the connection waits for its next turn.
    pub pipeline_depth: usize,
    /// Reply bytes a turn may queue before the requests still buffered wait for the next turn.
    pub output_bound: usize,
}

impl Default for ConnectionLimits {
    /// The server's defaults (`--idle-timeout`, `--request-timeout`, `--max-pipeline`).
    fn default() -> Self {
        ConnectionLimits {
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
            pipeline_depth: 32,
            output_bound: 256 * 1024,
        }
    }
}

/// Connection admission: at most `per_core` open on this core and `total` on the node. The
/// node-wide count is one shared atomic, touched once per connection opened or closed (never
/// per request).
pub(crate) struct ConnectionCap {
    per_core: usize,
    total: usize,
    open_here: Cell<usize>,
    open_on_node: Arc<AtomicUsize>,
}

impl ConnectionCap {
    /// A core's cap; every core shares `open_on_node`.
    pub(crate) fn new(
        per_core: usize,
        total: usize,
        open_on_node: Arc<AtomicUsize>,
    ) -> ConnectionCap {
        ConnectionCap {
            per_core,
            total,
            open_here: Cell::new(0),
            open_on_node,
        }
    }

    /// Takes a place for a new connection, or says which limit it would break.
    pub(crate) fn open(&self) -> Result<(), Limit> {
        if self.open_here.get() >= self.per_core {
            return Err(Limit::ConnectionsPerCore);
        }
        if self.open_on_node.fetch_add(1, Relaxed) >= self.total {
            self.open_on_node.fetch_sub(1, Relaxed);
            return Err(Limit::Connections);
        }
        self.open_here.set(self.open_here.get() + 1);
        Ok(())
    }

    /// Takes a place for a connection another core admitted and gave its place back for.
    pub(crate) fn adopt(&self) {
        self.open_here.set(self.open_here.get() + 1);
        self.open_on_node.fetch_add(1, Relaxed);
    }

    /// Gives back the place of a connection that `open` admitted.
    pub(crate) fn close(&self) {
        self.open_here.set(self.open_here.get() - 1);
        self.open_on_node.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_core_and_per_node() {
        let node = Arc::new(AtomicUsize::new(0));
        let (a, b) = (
            ConnectionCap::new(2, 3, node.clone()),
            ConnectionCap::new(2, 3, node.clone()),
        );
        assert_eq!(a.open(), Ok(()));
        assert_eq!(a.open(), Ok(()));
        assert_eq!(a.open(), Err(Limit::ConnectionsPerCore));
        assert_eq!(b.open(), Ok(()));
        assert_eq!(b.open(), Err(Limit::Connections));
        assert_eq!(node.load(Relaxed), 3);
        a.close();
        assert_eq!(b.open(), Ok(()));
        assert_eq!(b.open(), Err(Limit::ConnectionsPerCore));
    }
}
