//! One client connection: read, answer the complete requests in the buffer, write all the
//! answers at once, repeat.
//!
//! Pipelined requests are answered in order, at most `pipeline_depth` per turn: the replies so
//! far are written and the connection yields its core to the others before it answers more, so
//! one connection cannot hold a core. A protocol error is answered and the connection closed; it
//! never reaches other connections. A connection idle past the idle timeout is closed; a request
//! not whole within the request timeout after its first byte is answered 408 and closed. A
//! connection the handler has no room for is answered 503 at once and closed. A handler may
//! move an upgraded connection to another core, which then serves it from where it was.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures_lite::future::{or, yield_now};
use glommio::timer::sleep;
use http::StatusCode;

use crate::api::{Part, Response};
use crate::http::{self as h1, BodyPart, HttpError, Limits, Parse, Reply, Request};
use crate::limits::{ConnectionLimits, Limit};
use crate::runtime::{IN_FLIGHT, SHUTTING_DOWN};
use crate::transport::{Connection, ReadBuffer};

/// A connection's output buffer starts this large, and keeps at most [`OUTPUT_KEPT`] between
/// batches: a discovery reply can take tens of KiB, and thousands of connections can sit idle
/// between polls, so the memory of a large reply goes back once it is sent.
pub const OUTPUT_START: usize = 4096;
const OUTPUT_KEPT: usize = 16 * 1024;

/// Makes a written `output` ready for the next batch, giving back the memory of a large one.
pub fn recycle(output: &mut Vec<u8>) {
    output.clear();
    if output.capacity() > OUTPUT_KEPT {
        *output = Vec::with_capacity(OUTPUT_START);
    }
}

/// What happens to a connection after a request was answered.
pub enum Outcome<U> {
    KeepAlive,
    Close,
    /// The request switched protocols: the handler takes the connection over.
    Upgrade(U),
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

/// What a server does with the requests a connection brings: the registry, or the benchmark's
/// no-op reference, which share everything below this trait.
pub trait Handler {
    /// What an upgraded connection becomes.
    type Upgrade;
    fn limits(&self) -> &Limits;
    fn connection_limits(&self) -> &ConnectionLimits;
    /// Appends the reply to one request (`buf` is the buffer it was parsed from).
    async fn answer(
        &self,
        request: Request,
        buf: &mut [u8],
        output: &mut Vec<u8>,
    ) -> Outcome<Self::Upgrade>;
    /// Serves a connection after `answer` upgraded it, or after another core moved it here;
    /// `buffered` holds the bytes received and not yet read.
    async fn take_over<C: Connection>(&self, conn: C, upgrade: Self::Upgrade, buffered: ReadBuffer);
    /// Waits for the next upgraded connection another core moved to this one: its socket, what
    /// it is, and the bytes it brought. Never, for a handler that moves none.
    async fn moved_in(&self) -> (OwnedFd, Self::Upgrade, ReadBuffer) {
        std::future::pending().await
    }
    /// A request refused before reaching `answer`, or answered with a non-2xx status.
    fn refused(&self, status: StatusCode);
    /// A limit bit this connection.
    fn limit_hit(&self, limit: Limit);
    /// Takes a place for a new connection; `Err` names the limit that leaves none (the
    /// connection is then answered 503 and closed, and `connection_closed` is not called).
    fn connection_opened(&self) -> Result<(), Limit>;
    /// Takes a place for a connection moved here from another core, which gave its place back:
    /// it was admitted once and is not refused now.
    fn connection_moved_in(&self);
    fn connection_closed(&self);
}

/// Serves a connection another core moved here, then closes it.
pub async fn resume<C: Connection, H: Handler>(
    conn: C,
    handler: &H,
    upgrade: H::Upgrade,
    buffered: ReadBuffer,
) {
    handler.connection_moved_in();
    handler.take_over(conn, upgrade, buffered).await;
    handler.connection_closed();
}

/// Serves `conn` until the peer closes, a protocol error, a timeout, or shutdown.
pub async fn serve<C: Connection, H: Handler>(mut conn: C, handler: &H) {
    if let Err(limit) = handler.connection_opened() {
        handler.limit_hit(limit);
        let mut output = Vec::new();
        write(
            &mut output,
            &Response::unavailable("Too many connections on this node; try another node."),
            false,
            false,
        );
        let _ = conn.write_all(&mut output).await;
        return;
    }
    let limits = *handler.connection_limits();
    let mut input = ReadBuffer::default();
    let mut output = Vec::with_capacity(OUTPUT_START);
    // When the oldest unanswered byte arrived: the deadline of a request in progress.
    let mut request_started: Option<Instant> = None;
    let mut continue_sent = false;
    // The last turn stopped at the pipeline depth with requests still buffered.
    let mut cut_short = false;
    loop {
        if !cut_short {
            let timeout = match request_started {
                Some(start) => limits.request_timeout.saturating_sub(start.elapsed()),
                None => limits.idle_timeout,
            };
            match conn.read_into(&mut input, timeout).await {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    if request_started.is_some() {
                        handler.limit_hit(Limit::RequestTimeout);
                        refuse(handler, &Refusal::RequestTimeout, &mut output);
                        let _ = conn.write_all(&mut output).await;
                    } else {
                        handler.limit_hit(Limit::IdleTimeout);
                    }
                    break;
                }
                Err(_) => break,
            }
        }
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        let mut consumed = 0;
        let mut answered = 0;
        let mut close = false;
        let mut upgrade = None;
        cut_short = false;
        loop {
            let buf = &mut input.filled_mut()[consumed..];
            if buf.is_empty() {
                break;
            }
            if answered == limits.pipeline_depth {
                handler.limit_hit(Limit::PipelineDepth);
                cut_short = true;
                break;
            }
            match h1::parse_request(buf, handler.limits()) {
                Ok(Parse::Complete(request)) => {
                    let len = request.len;
                    let outcome = handler.answer(request, buf, &mut output).await;
                    consumed += len;
                    answered += 1;
                    continue_sent = false;
                    match outcome {
                        Outcome::KeepAlive => {}
                        Outcome::Close => close = true,
                        Outcome::Upgrade(to) => upgrade = Some(to),
                    }
                    if close || upgrade.is_some() {
                        break;
                    }
                }
                Ok(Parse::Incomplete { send_continue }) => {
                    if send_continue && !continue_sent {
                        output.extend_from_slice(h1::CONTINUE);
                        continue_sent = true;
                    }
                    break;
                }
                Err(error) => {
                    match error {
                        HttpError::HeadTooLarge => handler.limit_hit(Limit::HeadSize),
                        HttpError::BodyTooLarge => handler.limit_hit(Limit::BodySize),
                        _ => {}
                    }
                    refuse(handler, &Refusal::Malformed(error), &mut output);
                    close = true;
                    break;
                }
            }
        }
        input.consume(consumed);
        request_started = match (input.is_empty(), consumed) {
            (true, _) => None,
            (false, 0) => request_started.or_else(|| Some(Instant::now())),
            (false, _) => Some(Instant::now()),
        };
        let written =
            output.is_empty() || write_within(&mut conn, &mut output, &limits, handler).await;
        recycle(&mut output);
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        if let Some(to) = upgrade.filter(|_| written) {
            handler.take_over(conn, to, input).await;
            break;
        }
        if !written || close || SHUTTING_DOWN.load(Ordering::Relaxed) {
            break;
        }
        if cut_short {
            yield_now().await;
        }
    }
    handler.connection_closed();
}

/// Writes `output`, giving up when the peer has not taken all of it within the idle timeout (a
/// client that sends and never reads would otherwise hold its replies, and the core's memory, for
/// ever); false when the write failed or was given up, counted as a write timeout.
async fn write_within<C: Connection, H: Handler>(
    conn: &mut C,
    output: &mut Vec<u8>,
    limits: &ConnectionLimits,
    handler: &H,
) -> bool {
    let write = async { Some(conn.write_all(output).await.is_ok()) };
    let deadline = async {
        sleep(limits.idle_timeout).await;
        None
    };
    match or(write, deadline).await {
        Some(written) => written,
        None => {
            handler.limit_hit(Limit::WriteTimeout);
            false
        }
    }
}

/// Appends `response` framed as HTTP.
pub fn write(output: &mut Vec<u8>, response: &Response, gzip: bool, keep_alive: bool) {
    let parts: Vec<BodyPart> = response.parts.iter().map(Part::body_part).collect();
    h1::write_response(
        output,
        &Reply {
            status: response.status,
            content_type: Some(response.content_type),
            body: &parts,
            gzip,
            keep_alive,
        },
    );
}

/// Why a connection is answered and closed before its request reached the handler.
enum Refusal {
    Malformed(HttpError),
    RequestTimeout,
}

/// Appends the answer to a request that could not be read; the connection closes after it.
fn refuse<H: Handler>(handler: &H, refusal: &Refusal, output: &mut Vec<u8>) {
    let (status, message) = match refusal {
        Refusal::Malformed(error) => (error.status(), error.message()),
        Refusal::RequestTimeout => (
            StatusCode::REQUEST_TIMEOUT,
            "request not complete within the request timeout",
        ),
    };
    handler.refused(status);
    write(output, &Response::refusal(status, message), false, false);
}
