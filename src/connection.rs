//! One client connection: read, answer every complete request in the buffer, write all the
//! answers at once, repeat.
//!
//! Pipelined requests are answered in order, and all replies to one read go out in a single
//! write. A protocol error is answered and the connection closed; it never reaches other
//! connections. A connection idle past the idle timeout, or a request that has not arrived
//! whole within it after its first byte, is closed.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use http::StatusCode;

use crate::api::Response;
use crate::http::{self as h1, HttpError, Limits, Parse, Reply, Request};
use crate::runtime::{IN_FLIGHT, SHUTTING_DOWN};
use crate::transport::{Connection, ReadBuffer};

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
    fn idle_timeout(&self) -> Duration;
    /// Appends the reply to one request (`buf` is the buffer it was parsed from).
    async fn answer(
        &self,
        request: Request,
        buf: &mut [u8],
        output: &mut Vec<u8>,
    ) -> Outcome<Self::Upgrade>;
    /// Serves a connection after `answer` upgraded it; `buffered` holds the bytes that followed
    /// the upgrade request.
    async fn take_over<C: Connection>(&self, conn: C, upgrade: Self::Upgrade, buffered: ReadBuffer);
    /// A request refused before reaching `answer`, or answered with a non-2xx status.
    fn refused(&self, status: StatusCode);
    fn connection_opened(&self);
    fn connection_closed(&self);
}

/// Serves `conn` until the peer closes, a protocol error, the idle timeout, or shutdown.
pub async fn serve<C: Connection, H: Handler>(mut conn: C, handler: &H) {
    handler.connection_opened();
    let idle = handler.idle_timeout();
    let mut input = ReadBuffer::default();
    let mut output = Vec::with_capacity(4096);
    // When the oldest unanswered byte arrived: the deadline of a request in progress.
    let mut request_started: Option<Instant> = None;
    let mut continue_sent = false;
    loop {
        let timeout = match request_started {
            Some(start) => idle.saturating_sub(start.elapsed()),
            None => idle,
        };
        match conn.read_into(&mut input, timeout).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        let mut consumed = 0;
        let mut close = false;
        let mut upgrade = None;
        loop {
            let buf = &mut input.filled_mut()[consumed..];
            if buf.is_empty() {
                break;
            }
            match h1::parse_request(buf, handler.limits()) {
                Ok(Parse::Complete(request)) => {
                    let len = request.len;
                    let outcome = handler.answer(request, buf, &mut output).await;
                    consumed += len;
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
                    refuse(handler, &error, &mut output);
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
        let written = output.is_empty() || conn.write_all(&output).await.is_ok();
        output.clear();
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        if let Some(to) = upgrade.filter(|_| written) {
            handler.take_over(conn, to, input).await;
            break;
        }
        if !written || close || SHUTTING_DOWN.load(Ordering::Relaxed) {
            break;
        }
    }
    handler.connection_closed();
}

/// Appends `response` framed as HTTP.
pub fn write(output: &mut Vec<u8>, response: &Response, gzip: bool, keep_alive: bool) {
    let parts: Vec<&[u8]> = response.parts.iter().map(AsRef::as_ref).collect();
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

/// Appends the answer to a request that could not be read; the connection closes after it.
fn refuse<H: Handler>(handler: &H, error: &HttpError, output: &mut Vec<u8>) {
    handler.refused(error.status());
    write(
        output,
        &Response::refusal(error.status(), error.message()),
        false,
        false,
    );
}
