//! One client connection: read, answer the complete requests in the buffer, write all the
//! answers at once, repeat.
//!
//! Pipelined requests are answered in order, at most `pipeline_depth` per turn and only while the
//! turn's unsent replies stay under `output_bound`: the replies so far are written and the
//! connection yields its core to the others before it answers more, so one connection can hold
//! neither a core nor more than a bounded amount of memory. A protocol error is answered and the
//! connection closed; it never reaches other connections. A connection idle past the idle timeout
//! is closed; a request not whole within the request timeout after its first byte is answered 408
//! and closed; replies the client has not taken within the idle timeout are given up and the
//! socket closed. A connection the handler has no room for is answered at once and closed.
//!
//! A connection may change cores, once: when the handler says another core had better serve it
//! (the one whose shard owns a client's writes, so its later writes cost no cross-core call), the
//! connection is released after the reply is written and handed over with the bytes that
//! followed, and that core serves it from where it was. An upgraded connection may move the same
//! way, by its handler.

use std::io;
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::time::Instant;

use futures_lite::future::yield_now;
use http::StatusCode;

use crate::http::{self as h1, HttpError, Limits, Parse, Request};
use crate::limits::{ConnectionLimits, Limit};
use crate::shutdown::Shutdown;
use crate::transport::{Connection, Output, ReadBuffer};

/// A connection's output buffer starts this large, and keeps at most [`OUTPUT_KEPT`] between
/// batches: a discovery reply can take tens of KiB, and thousands of connections can sit idle
/// between polls, so the memory of a large reply goes back once it is sent.
pub(crate) const OUTPUT_START: usize = 4096;
const OUTPUT_KEPT: usize = 16 * 1024;

/// Makes a written `output` ready for the next batch, giving back the memory of a large one.
pub(crate) fn recycle(output: &mut Output) {
    output.recycle(OUTPUT_KEPT);
}

/// What happens to a connection after a request was answered.
pub enum Outcome<U> {
    KeepAlive,
    Close,
    /// The request switched protocols: the handler takes the connection over.
    Upgrade(U),
    /// Keep alive, and better served on this core (a core's index) from the next request on.
    MoveTo(usize),
}

impl<U> Outcome<U> {
    /// What the request's keep-alive asks for.
    pub fn after(request: &Request) -> Outcome<U> {
        if request.keep_alive {
            Outcome::KeepAlive
        } else {
            Outcome::Close
        }
    }
}

/// What every connection of a core is served under.
pub struct Terms {
    /// Request sizes.
    pub limits: Limits,
    /// Time and turn limits.
    pub connection: ConnectionLimits,
    pub shutdown: Shutdown,
}

/// What a server does with the requests a connection brings: the registry, or the benchmark's
/// no-op reference, which share everything below this trait.
pub trait Handler {
    /// What an upgraded connection becomes.
    type Upgrade;
    fn terms(&self) -> &Terms;
    /// Appends the reply to one request (`buf` is the buffer it was parsed from).
    async fn answer(
        &self,
        request: Request,
        buf: &mut [u8],
        output: &mut Output,
    ) -> Outcome<Self::Upgrade>;
    /// Serves a connection after `answer` upgraded it, or after another core moved it here
    /// upgraded; `buffered` holds the bytes received and not yet read.
    async fn take_over<C: Connection>(&self, conn: C, upgrade: Self::Upgrade, buffered: ReadBuffer);
    /// Hands a released connection to core `to`, whose [`Handler::moved_in`] yields it.
    fn move_to(&self, to: usize, moved: Moved<Self::Upgrade>);
    /// Waits for the next connection another core moved to this one. Never, for a handler that
    /// moves none.
    async fn moved_in(&self) -> Moved<Self::Upgrade> {
        std::future::pending().await
    }
    /// Appends the answer to a request refused before reaching `answer` (the connection closes
    /// after it), and counts it.
    fn refuse(&self, status: StatusCode, message: &str, output: &mut Output);
    /// A limit bit this connection.
    fn limit_hit(&self, limit: Limit);
    /// Takes a place for a new connection. When there is none, counts the limit, appends the
    /// answer to send before closing and returns false (`connection_closed` is then not called).
    fn admit(&self, output: &mut Output) -> bool;
    /// Takes a place for a connection moved here from another core, which gave its place back:
    /// it was admitted once and is not refused now.
    fn connection_moved_in(&self);
    fn connection_closed(&self);
}

/// A connection on its way from one core to another: its socket, the bytes received and not yet
/// read, and what it is.
pub struct Moved<U> {
    pub socket: OwnedFd,
    pub input: ReadBuffer,
    pub kind: MovedKind<U>,
}

/// What a moved connection is.
pub enum MovedKind<U> {
    /// Keep-alive HTTP, served from its next request.
    Http,
    /// Upgraded, served by the handler.
    Upgraded(U),
}

/// Serves a connection another core moved here, then closes it.
pub(crate) async fn resume<C: Connection, H: Handler>(
    conn: C,
    handler: &H,
    kind: MovedKind<H::Upgrade>,
    input: ReadBuffer,
) {
    handler.connection_moved_in();
    match kind {
        MovedKind::Http => serve_http(conn, handler, input, false).await,
        MovedKind::Upgraded(upgrade) => handler.take_over(conn, upgrade, input).await,
    }
    handler.connection_closed();
}

/// Serves `conn` until the peer closes, a protocol error, a timeout, shutdown, or it moves.
pub(crate) async fn serve<C: Connection, H: Handler>(mut conn: C, handler: &H) {
    let mut output = Output::default();
    if !handler.admit(&mut output) {
        let _ = conn
            .write_all(&mut output, handler.terms().connection.idle_timeout)
            .await;
        return;
    }
    serve_http(conn, handler, ReadBuffer::default(), true).await;
    handler.connection_closed();
}

/// The HTTP loop of an admitted connection, from the bytes in `input`, until it ends here (it
/// may have moved on: the core it moved to counts it from then on). It moves only when
/// `may_move`.
async fn serve_http<C: Connection, H: Handler>(
    mut conn: C,
    handler: &H,
    input: ReadBuffer,
    mut may_move: bool,
) {
    let mut client = Client {
        handler,
        peer: conn.peer_ip(),
        limits: handler.terms().connection,
        input,
        output: Output::with_capacity(OUTPUT_START),
        request_started: None,
        continue_sent: false,
    };
    // The last turn stopped early with requests still buffered (a moved connection may bring
    // some).
    let mut cut_short = !client.input.is_empty();
    loop {
        if !cut_short && !client.read(&mut conn).await {
            break;
        }
        let answering = handler.terms().shutdown.answering();
        let turn = client.answer_buffered().await;
        let written = client.write_within(&mut conn).await;
        drop(answering);
        cut_short = turn.cut_short;
        match turn.after {
            After::Upgrade(to) if written => {
                handler.take_over(conn, to, client.input).await;
                return;
            }
            _ if !written || handler.terms().shutdown.is_stopping() => return,
            After::Close | After::Upgrade(_) => return,
            After::MoveTo(to) if may_move => {
                may_move = false;
                match conn.release(&mut client.input).await {
                    Ok(socket) => {
                        let kind = MovedKind::Http;
                        let input = client.input;
                        handler.move_to(
                            to,
                            Moved {
                                socket,
                                input,
                                kind,
                            },
                        );
                        return;
                    }
                    // The peer has gone, or is going: it ends here.
                    Err(kept) => conn = kept,
                }
                // Requests that followed the one that asked for the move.
                cut_short = !client.input.is_empty();
            }
            After::MoveTo(_) | After::More => {}
        }
        if cut_short {
            yield_now().await;
        }
    }
}

/// A connection's buffers and the state of its request in progress.
struct Client<'h, H: Handler> {
    handler: &'h H,
    /// Where the peer connected from: every request says so.
    peer: Option<IpAddr>,
    limits: ConnectionLimits,
    input: ReadBuffer,
    output: Output,
    /// When the oldest unanswered byte arrived: the deadline of a request in progress.
    request_started: Option<Instant>,
    continue_sent: bool,
}

/// What one turn of answering left to do.
struct Turn<U> {
    after: After<U>,
    /// Requests are still buffered: the turn stopped at the pipeline depth or output bound.
    cut_short: bool,
}

enum After<U> {
    /// Read more and go on.
    More,
    Close,
    Upgrade(U),
    /// Go on, on another core.
    MoveTo(usize),
}

impl<H: Handler> Client<'_, H> {
    /// Waits for more bytes; false when the connection ends (closed by the peer, a failure, or a
    /// timeout, which is answered 408 when a request was in progress).
    async fn read<C: Connection>(&mut self, conn: &mut C) -> bool {
        let timeout = match self.request_started {
            Some(start) => self.limits.request_timeout.saturating_sub(start.elapsed()),
            None => self.limits.idle_timeout,
        };
        match conn.read_into(&mut self.input, timeout).await {
            Ok(0) => false,
            Ok(_) => true,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                if self.request_started.is_some() {
                    self.handler.limit_hit(Limit::RequestTimeout);
                    self.handler.refuse(
                        StatusCode::REQUEST_TIMEOUT,
                        "request not complete within the request timeout",
                        &mut self.output,
                    );
                    let _ = self.write_within(conn).await;
                } else {
                    self.handler.limit_hit(Limit::IdleTimeout);
                }
                false
            }
            Err(_) => false,
        }
    }

    /// Answers the complete requests in the buffer, in order, into the output.
    async fn answer_buffered(&mut self) -> Turn<H::Upgrade> {
        let mut consumed = 0;
        let mut answered = 0;
        let mut turn = Turn {
            after: After::More,
            cut_short: false,
        };
        loop {
            if self.input.len() == consumed {
                break;
            }
            if let Some(limit) = self.turn_is_full(answered) {
                self.handler.limit_hit(limit);
                turn.cut_short = true;
                break;
            }
            let buf = &mut self.input.filled_mut()[consumed..];
            match h1::parse_request(buf, &self.handler.terms().limits) {
                Ok(Parse::Complete(mut request)) => {
                    request.peer = self.peer;
                    let len = request.len;
                    let outcome = self.handler.answer(request, buf, &mut self.output).await;
                    consumed += len;
                    answered += 1;
                    self.continue_sent = false;
                    match outcome {
                        Outcome::KeepAlive => continue,
                        Outcome::Close => turn.after = After::Close,
                        Outcome::Upgrade(to) => turn.after = After::Upgrade(to),
                        Outcome::MoveTo(core) => turn.after = After::MoveTo(core),
                    }
                    break;
                }
                Ok(Parse::Incomplete { send_continue }) => {
                    if send_continue && !self.continue_sent {
                        self.output.extend_from_slice(h1::CONTINUE);
                        self.continue_sent = true;
                    }
                    break;
                }
                Err(error) => {
                    match error {
                        HttpError::HeadTooLarge => self.handler.limit_hit(Limit::HeadSize),
                        HttpError::BodyTooLarge => self.handler.limit_hit(Limit::BodySize),
                        _ => {}
                    }
                    let status = error.status();
                    self.handler
                        .refuse(status, error.message(), &mut self.output);
                    turn.after = After::Close;
                    break;
                }
            }
        }
        self.input.consume(consumed);
        self.request_started = match (self.input.is_empty(), consumed) {
            (true, _) => None,
            (false, 0) => self.request_started.or_else(|| Some(Instant::now())),
            (false, _) => Some(Instant::now()),
        };
        turn
    }

    /// The limit that ends this turn before the next buffered request, if one does.
    fn turn_is_full(&self, answered: usize) -> Option<Limit> {
        if answered == self.limits.pipeline_depth {
            Some(Limit::PipelineDepth)
        } else if answered > 0 && self.output.len() >= self.limits.output_bound {
            Some(Limit::OutputBound)
        } else {
            None
        }
    }

    /// Writes the output, giving up when the peer has not taken all of it within the idle
    /// timeout (a client that sends and never reads would otherwise hold its replies, and the
    /// core's memory, for ever); false when the write failed or was given up, counted as a write
    /// timeout. The connection then closes, and with it the socket and what was left unsent.
    async fn write_within<C: Connection>(&mut self, conn: &mut C) -> bool {
        if self.output.is_empty() {
            return true;
        }
        let written = match conn
            .write_all(&mut self.output, self.limits.idle_timeout)
            .await
        {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                self.handler.limit_hit(Limit::WriteTimeout);
                false
            }
            Err(_) => false,
        };
        recycle(&mut self.output);
        written
    }
}
