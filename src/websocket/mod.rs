//! The WebSocket endpoints (Java's `WebSocketConfig` handlers; see `docs/websocket.md`), on the
//! server's own connections.
//!
//! `/ws/registry/heartbeat` takes `HeartbeatRequest` frames and answers each like
//! `heartbeat.json`; `/ws/discovery/instance-change` takes `DiscoveryConfig` frames, one per
//! service to follow, and pushes every change of those services; `/ws/discovery/all-instance-change`
//! pushes every change. The HTTP layer answers the upgrade; the session then owns the connection.
//! A heartbeat session whose instances live mostly on another core's shard moves to that core, so
//! that its later heartbeats need no cross-core call, or fewer (an HTTP request is answered where
//! it arrived).

pub mod frame;
mod session;

use http::Method;
use tungstenite::handshake::derive_accept_key;

use crate::api;
use crate::connection::Moved;
use crate::handoff::Handoffs;
use crate::http::Request;
use crate::router::WsEndpoint;
use crate::shutdown::{Shutdown, StopSignal};

pub(crate) use session::{serve, Session};

/// How a WebSocket session starts on a core.
pub enum Start {
    /// The connection was just upgraded to this endpoint.
    Upgraded(WsEndpoint),
    /// A heartbeat session another core moved here.
    Moved(Session),
}

/// What a session may use: the endpoints' context, the way to another core, and shutdown.
#[derive(Clone, Copy)]
pub(crate) struct SessionContext<'a> {
    pub api: api::Context<'a>,
    pub moves: &'a Handoffs<Moved<Start>>,
    pub shutdown: &'a Shutdown,
    /// This core's signal that the server stops.
    pub stop: &'a StopSignal,
}

/// Appends the `101 Switching Protocols` answer to a WebSocket upgrade request; false (nothing
/// written) when the request is not a valid upgrade.
pub(crate) fn accept(request: &Request, buf: &[u8], out: &mut Vec<u8>) -> bool {
    let Some(key) = request.websocket_key.clone() else {
        return false;
    };
    if request.method != Method::GET || !request.upgrade_websocket {
        return false;
    }
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
    );
    out.extend_from_slice(derive_accept_key(&buf[key]).as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{parse_request, Limits, Parse};

    fn request(raw: &[u8]) -> Request {
        match parse_request(raw, &Limits::default()) {
            Ok(Parse::Complete(request)) => request,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn accepts_a_valid_upgrade_with_the_rfc_key() {
        let raw = b"GET /ws/registry/heartbeat HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let mut out = Vec::new();
        assert!(accept(&request(raw), raw, &mut out));
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        // RFC 6455 §1.3's example.
        assert!(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    }

    #[test]
    fn refuses_requests_that_are_not_upgrades() {
        for raw in [
            &b"GET /ws/registry/heartbeat HTTP/1.1\r\n\r\n"[..],
            b"GET /ws/registry/heartbeat HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            b"POST /ws/registry/heartbeat HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Key: a\r\n\r\n",
        ] {
            let mut out = Vec::new();
            assert!(!accept(&request(raw), raw, &mut out));
            assert!(out.is_empty());
        }
    }
}
