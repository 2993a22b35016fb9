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

/// What a server does with the requests a connection brings: the registry, or the benchmark's
/// no-op reference, which share everything below this trait.
pub trait Handler {
    fn limits(&self) -> &Limits;
    fn idle_timeout(&self) -> Duration;
    /// Appends the reply to one request (`buf` is the buffer it was parsed from); false when
    /// the connection must close after it.
    async fn answer(&self, request: Request, buf: &mut [u8], output: &mut Vec<u8>) -> bool;
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
        loop {
            let buf = &mut input.filled_mut()[consumed..];
            if buf.is_empty() {
                break;
            }
            match h1::parse_request(buf, handler.limits()) {
                Ok(Parse::Complete(request)) => {
                    let len = request.len;
                    close = !handler.answer(request, buf, &mut output).await;
                    consumed += len;
                    continue_sent = false;
                    if close {
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
