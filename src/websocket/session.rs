//! One WebSocket session, from the upgrade to the close.
//!
//! A single task per session, in turns: read every complete client frame where it lies in the
//! connection's buffer and answer it (a heartbeat reply, or a subscription, which has no reply);
//! add queued pushes as text frames; check the timers; write everything in one batch; then wait
//! for more bytes, a push, a timer or shutdown. The session pings after half the idle timeout
//! without a frame and closes after the whole of it; it closes after `--ws-session-ttl` as Java
//! does, with 1001 when the server stops, and at once when its push inbox overflowed, with close
//! code 1013 (try again later) so the client resubscribes.
//!
//! A heartbeat session moves, once, to the core that owns its instances: when another core's
//! shard owns more of a heartbeat's instances than this core's does (all of them, for a client of
//! one service), the reply is written, the connection is released with the bytes that followed,
//! and the core owning the most carries on with the same `Session`. A client heartbeats the same
//! instances every time, so its later heartbeats need no cross-core call, or as few as its
//! instances allow. It waits while that core serves more connections than this one (see
//! [`api::Context::may_move_to`]).

use std::cell::Cell;
use std::collections::HashSet;
use std::pin::pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::future::or;
use tungstenite::protocol::frame::coding::{CloseCode, Control, OpCode};

use super::frame::{self, Message, Reader};
use super::{SessionContext, Start};
use crate::api;
use crate::connection::{self, Moved, MovedKind};
use crate::limits::Limit;
use crate::metrics::CoreMetrics;
use crate::push::Inbox;
use crate::router::WsEndpoint;
use crate::transport::{Connection, Output, ReadBuffer};

/// What a session's task knows between frames: all that a heartbeat session takes along when it
/// moves to another core (its socket and unread bytes travel beside it).
pub struct Session {
    reader: Reader,
    opened: Instant,
    /// When the last frame arrived, and whether the client was pinged since.
    heard: Instant,
    pinged: bool,
}

/// The close code and reason of a session that is ending (a peer's close is echoed).
type Ending = (CloseCode, &'static str);

/// Serves one WebSocket connection; `input` holds bytes received and not yet read.
pub(crate) async fn serve<C: Connection>(
    mut conn: C,
    ctx: SessionContext<'_>,
    start: Start,
    mut input: ReadBuffer,
) {
    let mut task = Task::open(ctx, start);
    let moving = loop {
        let (ending, move_to) = task.read_frames(&mut input).await;
        task.flush_pushes();
        let ending = ending.or_else(|| task.check_timers());
        if !task.write(&mut conn, ending).await || ending.is_some() {
            break None;
        }
        if let Some(to) = move_to {
            // Asked again: a shutdown may have begun during the write.
            if task.may_move(to) {
                task.moves_left = false;
                match conn.release(&mut input).await {
                    Ok(socket) => break Some((to, socket)),
                    // The peer has gone: this core sees the session to its end.
                    Err(kept) => conn = kept,
                }
            }
            // Not moving after all: answer here the frames that followed the heartbeat.
            continue;
        }
        if !task.wait(&mut conn, &mut input).await {
            break None;
        }
    };
    task.close(moving, input);
}

/// A session's task: the session, its endpoint, its push inbox and subscriptions.
struct Task<'a> {
    ctx: SessionContext<'a>,
    endpoint: WsEndpoint,
    session: Session,
    /// Only a heartbeat session moves, and only once.
    moves_left: bool,
    inbox: Rc<Inbox>,
    /// The lowercased ids of the services this session follows.
    services: HashSet<Box<str>>,
    output: Output,
    overflow_counted: Cell<bool>,
}

impl<'a> Task<'a> {
    fn open(ctx: SessionContext<'a>, start: Start) -> Task<'a> {
        let config = &ctx.api.node.config;
        let (endpoint, session, moves_left) = match start {
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
        let task = Task {
            ctx,
            endpoint,
            session,
            moves_left,
            inbox: ctx.api.link.subscribers().inbox(config.ws_queue),
            services: HashSet::new(),
            output: Output::with_capacity(connection::OUTPUT_START),
            overflow_counted: Cell::new(false),
        };
        let subscribers = ctx.api.link.subscribers();
        if task.subscribes() {
            subscribers.session_opened();
        }
        if endpoint == WsEndpoint::AllInstanceChange {
            subscribers.subscribe_all(&task.inbox);
        }
        ctx.api.counters().websocket_opened(endpoint);
        task
    }

    /// Heartbeat sessions take no pushes, so they do not draw changes to their core.
    fn subscribes(&self) -> bool {
        self.endpoint != WsEndpoint::Heartbeat
    }

    /// Whether the session moves to core `to` now (see [`api::Context::may_move_to`]).
    fn may_move(&self, to: usize) -> bool {
        self.moves_left && !self.ctx.shutdown.is_stopping() && self.ctx.api.may_move_to(to)
    }

    /// Answers every complete frame in `input`; stops early when the session ends or its last
    /// heartbeat names another core that the session may move to now.
    async fn read_frames(&mut self, input: &mut ReadBuffer) -> (Option<Ending>, Option<usize>) {
        let counters = self.ctx.api.counters();
        let mut consumed = 0;
        let mut outcome = (None, None);
        while outcome == (None, None) {
            let buf = &mut input.filled_mut()[consumed..];
            let (taken, message) = match self.session.reader.next(buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(violation) => {
                    counters.websocket_refused(violation.too_big);
                    if violation.too_big {
                        counters.record_limit(Limit::WebSocketSize);
                    }
                    outcome.0 = Some((violation.code, violation.reason));
                    break;
                }
            };
            consumed += taken;
            (self.session.heard, self.session.pinged) = (Instant::now(), false);
            let text = match message {
                Message::Text(range) => &mut buf[range],
                Message::AssembledText => self.session.reader.assembled(),
                Message::Ping(range) => {
                    let pong = OpCode::Control(Control::Pong);
                    frame::write(&mut self.output, pong, &[&buf[range]]);
                    continue;
                }
                Message::Fragment | Message::Pong => continue,
                Message::Binary => {
                    counters.websocket_refused(false);
                    outcome.0 = Some((CloseCode::Unsupported, "binary messages are not supported"));
                    continue;
                }
                Message::Close(code) => {
                    outcome.0 = Some((code.unwrap_or(CloseCode::Normal), ""));
                    continue;
                }
            };
            let (ctx, endpoint, inbox) = (self.ctx.api, self.endpoint, &self.inbox);
            let output = &mut self.output;
            match on_text(ctx, endpoint, text, inbox, &mut self.services, output).await {
                // A move declined now leaves the frames that follow to be answered here.
                Ok(owner) => outcome.1 = owner.filter(|&to| self.may_move(to)),
                Err(ending) => outcome.0 = Some(ending),
            }
        }
        input.consume(consumed);
        outcome
    }

    /// Appends the queued pushes, each serialized once by the shard that made the change.
    fn flush_pushes(&mut self) {
        let mut pushed = 0;
        while let Some(json) = self.inbox.pop() {
            frame::write_text(&mut self.output, &[&json]);
            pushed += 1;
        }
        self.ctx.api.counters().pushed(pushed);
    }

    /// Why the session ends now, if it does; pings a client quiet for half the idle timeout.
    fn check_timers(&mut self) -> Option<Ending> {
        let config = &self.ctx.api.node.config;
        let (idle, ttl) = (config.idle_timeout, config.ws_session_ttl);
        let Session {
            opened,
            heard,
            pinged,
            ..
        } = self.session;
        let now = Instant::now();
        if self.inbox.overflowed() {
            Some((
                CloseCode::Again,
                "push queue full: subscriber too slow, resubscribe",
            ))
        } else if self.ctx.shutdown.is_stopping() {
            Some((CloseCode::Away, "server shutting down"))
        } else if now >= opened + ttl {
            Some((CloseCode::Away, "session TTL reached"))
        } else if now >= heard + idle {
            Some((CloseCode::Away, "idle"))
        } else {
            if !pinged && now >= heard + idle / 2 {
                frame::write(&mut self.output, OpCode::Control(Control::Ping), &[b""]);
                self.session.pinged = true;
            }
            None
        }
    }

    /// Writes the turn's output, with the close frame when the session ends; false when the peer
    /// is gone or has not taken it within the idle timeout. A subscriber that stops reading
    /// blocks this write while changes pile up in its inbox; once the inbox overflows it takes no
    /// more, and the write keeps its deadline, so what a stalled session holds stays bounded in
    /// bytes and in time. A session ending at shutdown is counted as in flight until written.
    async fn write<C: Connection>(&mut self, conn: &mut C, ending: Option<Ending>) -> bool {
        if let Some((code, reason)) = ending {
            frame::write_close(&mut self.output, code, reason);
        }
        if self.output.is_empty() {
            return true;
        }
        let _in_flight = ending.map(|_| self.ctx.shutdown.answering());
        let idle = self.ctx.api.node.config.idle_timeout;
        let written = {
            let output = &mut self.output;
            let mut write = pin!(async { conn.write_all(output, idle).await.is_ok() });
            let (inbox, counted, counters) =
                (&self.inbox, &self.overflow_counted, self.ctx.api.counters());
            let overflow = async {
                inbox.overflow().await;
                count_overflow(counted, counters);
                None
            };
            match or(async { Some(write.as_mut().await) }, overflow).await {
                Some(written) => written,
                None => write.await,
            }
        };
        connection::recycle(&mut self.output);
        written
    }

    /// Waits for bytes, a push, the next timer or shutdown; false when the peer is gone.
    async fn wait<C: Connection>(&self, conn: &mut C, input: &mut ReadBuffer) -> bool {
        let config = &self.ctx.api.node.config;
        let (idle, ttl) = (config.idle_timeout, config.ws_session_ttl);
        let session = &self.session;
        let next_timer = (session.opened + ttl).min(if session.pinged {
            session.heard + idle
        } else {
            session.heard + idle / 2
        });
        let wait = next_timer
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let read = async { Some(conn.read_into(input, wait).await) };
        let push = async {
            or(self.inbox.ready(), self.ctx.stop.raised()).await;
            None
        };
        match or(read, push).await {
            Some(Ok(0)) => false,
            Some(Err(e)) => e.kind() == std::io::ErrorKind::TimedOut,
            _ => true,
        }
    }

    /// Forgets the session's subscriptions and counts it closed; hands it to the core it moves
    /// to, if it moves.
    fn close(self, moving: Option<(usize, std::os::fd::OwnedFd)>, input: ReadBuffer) {
        let counters = self.ctx.api.counters();
        if self.inbox.overflowed() {
            count_overflow(&self.overflow_counted, counters);
        }
        if self.subscribes() {
            let services: Vec<_> = self.services.into_iter().collect();
            self.ctx
                .api
                .link
                .subscribers()
                .session_closed(&self.inbox, &services);
        }
        counters.websocket_closed(self.endpoint);
        if let Some((to, socket)) = moving {
            counters.websocket_moved();
            self.ctx.api.moving_out();
            let kind = MovedKind::Upgraded(Start::Moved(self.session));
            self.ctx.moves.send(
                to,
                Moved {
                    socket,
                    input,
                    kind,
                },
            );
        }
    }
}

/// Counts an overflowed session once.
fn count_overflow(counted: &Cell<bool>, counters: &CoreMetrics) {
    if !counted.replace(true) {
        counters.push_overflowed();
    }
}

/// Answers one text message: a heartbeat reply, or nothing for a subscription. For a heartbeat,
/// also names the shard owning the most of its instances, when that is another core's. A
/// subscription past `--ws-max-subscriptions` ends the session.
async fn on_text(
    ctx: api::Context<'_>,
    endpoint: WsEndpoint,
    text: &mut [u8],
    inbox: &Rc<Inbox>,
    services: &mut HashSet<Box<str>>,
    output: &mut Vec<u8>,
) -> Result<Option<usize>, Ending> {
    match endpoint {
        WsEndpoint::Heartbeat => {
            let (reply, owner) = api::heartbeat_frame(&ctx, text).await;
            frame::write_text(output, &reply);
            return Ok(owner);
        }
        WsEndpoint::InstanceChange => {
            if let Some(service_id) = api::subscribed_service(text) {
                let key: Box<str> = service_id.to_lowercase().into();
                if !services.contains(&key) {
                    if services.len() >= ctx.node.config.ws_max_subscriptions {
                        return Err((CloseCode::Policy, "too many subscriptions"));
                    }
                    ctx.link.subscribers().subscribe(&key, inbox);
                    services.insert(key);
                }
            }
        }
        WsEndpoint::AllInstanceChange => {}
    }
    Ok(None)
}
