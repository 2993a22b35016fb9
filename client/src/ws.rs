//! The WebSocket side of a node: `ws://` beside its `http://` URL, as Java's SDK derives it,
//! with a connect timeout and the same size limit on messages as on HTTP replies. Pings from
//! the server are answered by tungstenite on the next write or flush.

use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::config::ClientConfig;
use crate::error::Error;
use crate::http::describe;

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens `path` on `node` (`http://host:port`).
pub(crate) async fn connect(
    node: &str,
    path: &str,
    config: &ClientConfig,
) -> Result<Socket, Error> {
    let url = format!(
        "ws://{}{path}",
        node.strip_prefix("http://").unwrap_or(node)
    );
    let limit = config.max_reply_bytes;
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit))
        .max_write_buffer_size(limit.max(1 << 20));
    let connecting = tokio_tungstenite::connect_async_with_config(url, Some(ws_config), true);
    match tokio::time::timeout(config.connect_timeout, connecting).await {
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(e)) => Err(Error::Transport {
            node: node.to_string(),
            reason: format!("WebSocket {path}: {}", describe(&e)),
        }),
        Err(_) => Err(Error::Timeout {
            node: node.to_string(),
            after: config.connect_timeout,
        }),
    }
}

/// What the session's next message means to its reader.
pub(crate) enum Incoming {
    Text(Utf8Bytes),
    /// A pong, with its payload.
    Pong(Vec<u8>),
    /// Nothing to act on (a ping, answered by tungstenite; a binary frame).
    Other,
}

/// The session's next message; an error when it closed or broke.
pub(crate) fn read(
    node: &str,
    next: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
) -> Result<Incoming, Error> {
    let closed = |reason: String| Error::Transport {
        node: node.to_string(),
        reason,
    };
    match next {
        Some(Ok(Message::Text(text))) => Ok(Incoming::Text(text)),
        Some(Ok(Message::Pong(payload))) => Ok(Incoming::Pong(payload.to_vec())),
        Some(Ok(Message::Close(frame))) => Err(closed(match frame {
            Some(frame) => format!("WebSocket closed: {} {}", frame.code, frame.reason),
            None => "WebSocket closed".to_string(),
        })),
        Some(Ok(_)) => Ok(Incoming::Other),
        Some(Err(e)) => Err(closed(format!("WebSocket: {}", describe(&e)))),
        None => Err(closed("WebSocket closed".to_string())),
    }
}

/// The next text message within `timeout`, skipping pings and pongs.
pub(crate) async fn next_text(
    socket: &mut Socket,
    node: &str,
    timeout: Duration,
) -> Result<Utf8Bytes, Error> {
    let reading = async {
        loop {
            if let Incoming::Text(text) = read(node, socket.next().await)? {
                return Ok(text);
            }
        }
    };
    tokio::time::timeout(timeout, reading)
        .await
        .map_err(|_| Error::Timeout {
            node: node.to_string(),
            after: timeout,
        })?
}

/// Reads whatever already arrived without waiting (a close frame the server sent while the
/// session was idle, a ping): an error when the session has ended, so the caller reconnects
/// before it sends.
pub(crate) fn drain(socket: &mut Socket, node: &str) -> Result<(), Error> {
    while let Some(next) = socket.next().now_or_never() {
        // A text here is a reply to a request this client gave up waiting for.
        read(node, next)?;
    }
    Ok(())
}
