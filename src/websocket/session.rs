//! One WebSocket session, from the upgrade to the close.
//!
//! A single task per session: it hands received bytes to tungstenite, answers each complete
//! frame (a heartbeat reply, or a subscription, which has no reply), writes queued pushes as text
//! frames, and writes everything in one batch; then it waits for more bytes, a push, or its next
//! timer. The session pings after half the idle timeout without a frame and closes after the
//! whole of it; it closes after `--ws-session-ttl` as Java does, and at once when its push inbox
//! overflowed, with close code 1013 (try again later) so the client resubscribes.

use std::time::{Duration, Instant};

use std::cell::Cell;
use std::pin::pin;

use futures_lite::future::or;
use glommio::timer::sleep;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::{CloseFrame, FrameHeader};
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Bytes, Error, Message, WebSocket};

use super::pipe::Pipe;
use super::WsEndpoint;
use crate::api;
use crate::per_core::Core;
use crate::push::Inbox;
use crate::transport::{Connection, ReadBuffer};

/// tungstenite's own read buffer per session (its default of 128 KiB is meant for bulk traffic).
const READ_BUFFER: usize = 4096;

/// Serves one upgraded connection; `input` holds bytes that arrived after the upgrade request.
pub async fn serve<C: Connection>(
    mut conn: C,
    core: &Core,
    endpoint: WsEndpoint,
    mut input: ReadBuffer,
) {
    let config = &core.node.config;
    let (idle, ttl) = (config.idle_timeout, config.ws_session_ttl);
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(Some(config.max_body))
        .max_frame_size(Some(config.max_body));
    let mut ws = WebSocket::from_raw_socket(Pipe::default(), Role::Server, Some(ws_config));
    let inbox = Inbox::new(config.ws_queue);
    let subscribers = core.link.subscribers();
    let mut services: Vec<Box<str>> = Vec::new();
    subscribers.session_opened();
    if endpoint == WsEndpoint::AllInstanceChange {
        subscribers.subscribe_all(&inbox);
    }
    core.counters().websocket_opened(endpoint);

    let overflow_counted = Cell::new(false);
    let count_overflow = || {
        if !overflow_counted.replace(true) {
            core.counters().push_overflowed();
        }
    };

    let opened = Instant::now();
    let mut heard = opened;
    let mut pinged = false;
    loop {
        // Everything received, also what a read cut short by a push had already appended.
        let received = input.filled_mut().len();
        ws.get_mut().feed(input.filled_mut());
        input.consume(received);
        let mut ending = None;
        // Every complete frame received so far.
        loop {
            match ws.read() {
                Ok(Message::Text(text)) => {
                    (heard, pinged) = (Instant::now(), false);
                    if let Some(reply) =
                        on_text(core, endpoint, text.as_bytes(), &inbox, &mut services).await
                    {
                        write_text(&mut ws.get_mut().output, &reply);
                    }
                }
                Ok(_) => (heard, pinged) = (Instant::now(), false),
                Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(Error::Capacity(_)) => {
                    ending = Some((CloseCode::Size, "message too large"));
                    break;
                }
                Err(Error::ConnectionClosed | Error::AlreadyClosed) => {
                    ending = Some((CloseCode::Normal, ""));
                    break;
                }
                Err(_) => {
                    ending = Some((CloseCode::Protocol, "protocol error"));
                    break;
                }
            }
        }
        // Queued pushes, each serialized once by the shard that made the change.
        let mut pushed = 0;
        while let Some(json) = inbox.pop() {
            write_text(&mut ws.get_mut().output, &json);
            pushed += 1;
        }
        core.counters().pushed(pushed);
        let now = Instant::now();
        if inbox.overflowed() {
            ending = ending.or(Some((
                CloseCode::Again,
                "push queue full: subscriber too slow, resubscribe",
            )));
        } else if now >= opened + ttl {
            ending = ending.or(Some((CloseCode::Away, "session TTL reached")));
        } else if now >= heard + idle {
            ending = ending.or(Some((CloseCode::Away, "idle")));
        } else if !pinged && now >= heard + idle / 2 {
            let _ = ws.write(Message::Ping(Bytes::new()));
            pinged = true;
        }
        if let Some((code, reason)) = ending {
            let _ = ws.close(Some(CloseFrame {
                code,
                reason: reason.into(),
            }));
        }
        let _ = ws.flush();
        let output = &mut ws.get_mut().output;
        if !output.is_empty() {
            if !send(&mut conn, output, &inbox, idle, &count_overflow).await {
                break;
            }
            output.clear();
        }
        if ending.is_some() {
            break;
        }
        // Wait for bytes, a push, or the next timer.
        let next_timer = (opened + ttl).min(if pinged {
            heard + idle
        } else {
            heard + idle / 2
        });
        let wait = next_timer
            .saturating_duration_since(now)
            .max(Duration::from_millis(1));
        let read = async { Some(conn.read_into(&mut input, wait).await) };
        let push = async {
            inbox.ready().await;
            None
        };
        match or(read, push).await {
            Some(Ok(0)) => break,
            Some(Err(e)) if e.kind() != std::io::ErrorKind::TimedOut => break,
            _ => {}
        }
    }
    if inbox.overflowed() {
        count_overflow();
    }
    subscribers.session_closed(&inbox, &services);
    core.counters().websocket_closed(endpoint);
}

/// Writes `output`; false when the peer is gone or has not taken it within `idle`. A subscriber
/// that stops reading blocks this write while changes pile up in its inbox; once the inbox
/// overflows it takes no more, and the write keeps its deadline, so what a stalled session holds
/// stays bounded in bytes and in time. `overflowed` runs the moment the inbox overflows.
async fn send<C: Connection>(
    conn: &mut C,
    output: &[u8],
    inbox: &Inbox,
    idle: Duration,
    overflowed: &impl Fn(),
) -> bool {
    let write = async { conn.write_all(output).await.is_ok() };
    let deadline = async {
        sleep(idle).await;
        false
    };
    let mut write = pin!(or(write, deadline));
    let overflow = async {
        inbox.overflow().await;
        overflowed();
        None
    };
    match or(async { Some(write.as_mut().await) }, overflow).await {
        Some(written) => written,
        None => write.await,
    }
}

/// Answers one text frame: a heartbeat reply, or nothing for a subscription.
async fn on_text(
    core: &Core,
    endpoint: WsEndpoint,
    payload: &[u8],
    inbox: &std::rc::Rc<Inbox>,
    services: &mut Vec<Box<str>>,
) -> Option<Vec<u8>> {
    match endpoint {
        WsEndpoint::Heartbeat => Some(api::heartbeat_frame(core, payload).await),
        WsEndpoint::InstanceChange => {
            if let Some(service_id) = api::subscribed_service(payload) {
                let key: Box<str> = service_id.to_lowercase().into();
                core.link.subscribers().subscribe(&key, inbox);
                if !services.contains(&key) {
                    services.push(key);
                }
            }
            None
        }
        WsEndpoint::AllInstanceChange => None,
    }
}

/// Appends an unmasked, final text frame carrying `payload` (already valid UTF-8 JSON).
fn write_text(out: &mut Vec<u8>, payload: &[u8]) {
    let header = FrameHeader {
        opcode: OpCode::Data(Data::Text),
        ..FrameHeader::default()
    };
    header
        .format(payload.len() as u64, out)
        .expect("writing to a Vec cannot fail");
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_frames_are_framed_by_length() {
        let mut out = Vec::new();
        write_text(&mut out, b"hi");
        assert_eq!(out, [0x81, 2, b'h', b'i']);
        let long = vec![b'x'; 300];
        out.clear();
        write_text(&mut out, &long);
        assert_eq!(&out[..4], [0x81, 126, 1, 44]);
        assert_eq!(out.len(), 304);
    }
}
