//! One client connection: read, answer every complete request in the buffer, write all the
//! answers at once, repeat.
//!
//! Pipelined requests are answered in order, and all replies to one read go out in a single
//! write. A protocol error is answered and the connection closed; it never reaches other
//! connections. A connection idle past the idle timeout, or a request that has not arrived
//! whole within it after its first byte, is closed.

use std::sync::atomic::Ordering;
use std::time::Instant;

use http::{Method, StatusCode};

use crate::api::{self, Input, Response};
use crate::http::{self as h1, Body, HttpError, Parse, Reply, Request};
use crate::per_core::Core;
use crate::router::Endpoint;
use crate::runtime::{IN_FLIGHT, SHUTTING_DOWN};
use crate::transport::{Connection, ReadBuffer};

/// Serves `conn` until the peer closes, a protocol error, the idle timeout, or shutdown.
pub async fn serve<C: Connection>(mut conn: C, core: &Core) {
    core.counters().connection_opened();
    let idle = core.node.config.idle_timeout;
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
            match h1::parse_request(buf, &core.limits) {
                Ok(Parse::Complete(request)) => {
                    let len = request.len;
                    close = !answer(core, request, buf, &mut output).await;
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
                    refuse(core, &error, &mut output);
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
    core.counters().connection_closed();
}

/// Appends the reply to one request; false when the connection must close after it.
async fn answer(core: &Core, mut request: Request, buf: &mut [u8], output: &mut Vec<u8>) -> bool {
    let started = Instant::now();
    let endpoint = Endpoint::from_path(&buf[request.path.clone()]);
    let response = match endpoint {
        None => Response::refusal(StatusCode::NOT_FOUND, "No endpoint at this path"),
        Some(_) if request.method == Method::OPTIONS => {
            let echo =
                |range: &Option<std::ops::Range<usize>>| range.clone().map_or(&[][..], |r| &buf[r]);
            h1::write_preflight(
                output,
                echo(&request.cors_request_method),
                echo(&request.cors_request_headers),
                request.keep_alive,
            );
            return request.keep_alive;
        }
        Some(endpoint) if !endpoint.allows(&request.method) => Response::refusal(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!(
                "Method not allowed; this endpoint takes {}",
                endpoint.allowed_methods()
            ),
        ),
        Some(endpoint) => {
            let query = request.query.clone();
            let mut owned = Vec::new();
            let (head, body) = match &mut request.body {
                Body::Empty => (&*buf, &mut owned[..]),
                Body::InBuffer(range) => {
                    let (head, rest) = buf.split_at_mut(range.start);
                    (&*head, &mut rest[..range.len()])
                }
                Body::Owned(bytes) => (&*buf, &mut bytes[..]),
            };
            let input = Input {
                method: &request.method,
                query: query.map(|q| &head[q]),
                body,
            };
            api::respond(core, endpoint, input).await
        }
    };
    if response.status.is_success() {
        if let Some(endpoint) = endpoint {
            core.counters().record_request(endpoint, started.elapsed());
        }
    } else {
        core.counters()
            .record_protocol_error(response.status.as_u16());
    }
    let parts: Vec<&[u8]> = response.parts.iter().map(AsRef::as_ref).collect();
    h1::write_response(
        output,
        &Reply {
            status: response.status,
            content_type: Some(response.content_type),
            body: &parts,
            gzip: request.accepts_gzip,
            keep_alive: request.keep_alive,
        },
    );
    request.keep_alive
}

/// Appends the answer to a request that could not be read; the connection closes after it.
fn refuse(core: &Core, error: &HttpError, output: &mut Vec<u8>) {
    core.counters()
        .record_protocol_error(error.status().as_u16());
    let response = Response::refusal(error.status(), error.message());
    let parts: Vec<&[u8]> = response.parts.iter().map(AsRef::as_ref).collect();
    h1::write_response(
        output,
        &Reply {
            status: response.status,
            content_type: Some(response.content_type),
            body: &parts,
            gzip: false,
            keep_alive: false,
        },
    );
}
