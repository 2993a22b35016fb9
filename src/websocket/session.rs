//! One WebSocket session, from the upgrade to the close.
//!
//! A single task per session: it reads each complete client frame where it lies in the
//! connection's buffer, answers it (a heartbeat reply, or a subscription, which has no reply),
//! writes queued pushes as text frames, and writes everything in one batch; then it waits for
//! more bytes, a push, or its next timer. The session pings after half the idle timeout without
//! a frame and closes after the whole of it; it closes after `--ws-session-ttl` as Java does, and
//! at once when its push inbox overflowed, with close code 1013 (try again later) so the client
//! resubscribes.
//!
//! A heartbeat session moves, once, to the core that owns its instances: when another core's
//! shard owns more of a heartbeat's instances than this core's does (all of them, for a client of
//! one service), the reply is written, the connection is released with the bytes that followed,
//! and the core owning the most carries on with the same `Session`. A client heartbeats the same
//! instances every time, so its later heartbeats need no cross-core call, or as few as its
//! instances allow.

use std::cell::Cell;
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_lite::future::or;
use glommio::timer::sleep;
use tungstenite::protocol::frame::coding::{CloseCode, Control, OpCode};

use super::frame::{self, Message, Reader};
use super::{Start, WsEndpoint};
use crate::api;
use crate::connection;
use crate::limits::Limit;
use crate::per_core::Core;
use crate::push::Inbox;
use crate::runtime::SHUTTING_DOWN;
use crate::shard_link::MovedSession;
use crate::transport::{Connection, ReadBuffer};

/// What a session's task knows between frames: all that a heartbeat session takes along when it
/// moves to another core (its socket and unread bytes travel beside it).
pub struct Session {
    reader: Reader,
    opened: Instant,
    /// When the last frame arrived, and whether the client was pinged since.
    heard: Instant,
    pinged: bool,
}

/// Serves one WebSocket connection; `input` holds bytes received and not yet read.
pub async fn serve<C: Connection>(mut conn: C, core: &Core, start: Start, mut input: ReadBuffer) {
    let config = &core.node.config;
    let (idle, ttl) = (config.idle_timeout, config.ws_session_ttl);
    // Only a heartbeat session moves, and only once.
    let (endpoint, mut session, mut may_move) = match start {
        Start::Upgraded(endpoint) => {
            let now = Instant::now();
            let session = Session {
                reader: Reader::new(config.ws_max_frame, config.ws_max_message),
                opened: now,
                heard: now,
                pinged: false,
            };
            (endpoint, session, endpoint == WsEndpoint::Heartbeat)
        }
        Start::Moved(session) => (WsEndpoint::Heartbeat, session, false),
    };
    let mut output = Vec::with_capacity(connection::OUTPUT_START);
    let inbox = Inbox::new(config.ws_queue);
    let subscribers = core.link.subscribers();
    // Heartbeat sessions take no pushes, so they do not draw changes to their core.
    let subscribes = endpoint != WsEndpoint::Heartbeat;
    let mut services: Vec<Box<str>> = Vec::new();
    if subscribes {
        subscribers.session_opened();
    }
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

    // Where the session goes once it has let go of its connection.
    let mut moving: Option<(usize, MovedSession)> = None;
    loop {
        // The close code and reason, once the session is ending (a peer's close is echoed).
        let mut ending: Option<(CloseCode, &str)> = None;
        // The core owning the most of the last heartbeat's instances, when that is another core.
        let mut move_to: Option<usize> = None;
        // Every complete frame received so far, also what a read cut short by a push appended.
        let mut consumed = 0;
        while ending.is_none() && move_to.is_none() {
            let buf = &mut input.filled_mut()[consumed..];
            let (taken, message) = match session.reader.next(buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(violation) => {
                    core.counters().websocket_refused(violation.too_big);
                    if violation.too_big {
                        core.counters().record_limit(Limit::WebSocketSize);
                    }
                    ending = Some((violation.code, violation.reason));
                    break;
                }
            };
            consumed += taken;
            (session.heard, session.pinged) = (Instant::now(), false);
            let text = match message {
                Message::Text(range) => &mut buf[range],
                Message::AssembledText => session.reader.assembled(),
                Message::Ping(range) => {
                    frame::write(&mut output, OpCode::Control(Control::Pong), &[&buf[range]]);
                    continue;
                }
                Message::Fragment | Message::Pong => continue,
                Message::Binary => {
                    core.counters().websocket_refused(false);
                    ending = Some((CloseCode::Unsupported, "binary messages are not supported"));
                    continue;
                }
                Message::Close(code) => {
                    ending = Some((code.unwrap_or(CloseCode::Normal), ""));
                    continue;
                }
            };
            let owner = on_text(core, endpoint, text, &inbox, &mut services, &mut output).await;
            move_to = owner.filter(|_| may_move);
        }
        input.consume(consumed);
        // Queued pushes, each serialized once by the shard that made the change.
        let mut pushed = 0;
        while let Some(json) = inbox.pop() {
            frame::write_text(&mut output, &[&json]);
            pushed += 1;
        }
        core.counters().pushed(pushed);
        let now = Instant::now();
        let Session {
            opened,
            heard,
            pinged,
            ..
        } = session;
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
            frame::write(&mut output, OpCode::Control(Control::Ping), &[b""]);
            session.pinged = true;
        }
        if let Some((code, reason)) = ending {
            frame::write_close(&mut output, code, reason);
        }
        if !output.is_empty() {
            if !send(&mut conn, &mut output, &inbox, idle, &count_overflow).await {
                break;
            }
            connection::recycle(&mut output);
        }
        if ending.is_some() {
            break;
        }
        if let Some(to) = move_to {
            may_move = false;
            if !SHUTTING_DOWN.load(Ordering::Relaxed) {
                match conn.release(&mut input).await {
                    Ok(socket) => {
                        let session = MovedSession {
                            socket,
                            session,
                            input,
                        };
                        moving = Some((to, session));
                        break;
                    }
                    // The peer has gone: this core sees the session to its end.
                    Err(kept) => conn = kept,
                }
            }
            // Not moving after all: answer here the frames that followed the heartbeat.
            continue;
        }
        // Wait for bytes, a push, or the next timer.
        let next_timer = (session.opened + ttl).min(if session.pinged {
            session.heard + idle
        } else {
            session.heard + idle / 2
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
    if subscribes {
        subscribers.session_closed(&inbox, &services);
    }
    core.counters().websocket_closed(endpoint);
    if let Some((to, moved)) = moving {
        core.counters().websocket_moved();
        core.link.move_session(to, moved);
    }
}

/// Writes `output`; false when the peer is gone or has not taken it within `idle`. A subscriber
/// that stops reading blocks this write while changes pile up in its inbox; once the inbox
/// overflows it takes no more, and the write keeps its deadline, so what a stalled session holds
/// stays bounded in bytes and in time. `overflowed` runs the moment the inbox overflows.
async fn send<C: Connection>(
    conn: &mut C,
    output: &mut Vec<u8>,
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

/// Answers one text message: a heartbeat reply, or nothing for a subscription. For a heartbeat,
/// also names the shard owning the most of its instances, when that is another core's.
async fn on_text(
    core: &Core,
    endpoint: WsEndpoint,
    text: &mut [u8],
    inbox: &Rc<Inbox>,
    services: &mut Vec<Box<str>>,
    output: &mut Vec<u8>,
) -> Option<usize> {
    match endpoint {
        WsEndpoint::Heartbeat => {
            let (reply, owner) = api::heartbeat_frame(core, text).await;
            frame::write_text(output, &reply);
            return owner;
        }
        WsEndpoint::InstanceChange => {
            if let Some(service_id) = api::subscribed_service(text) {
                let key: Box<str> = service_id.to_lowercase().into();
                core.link.subscribers().subscribe(&key, inbox);
                if !services.contains(&key) {
                    services.push(key);
                }
            }
        }
        WsEndpoint::AllInstanceChange => {}
    }
    None
}
