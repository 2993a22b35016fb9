//! The HTTP parser's properties, on arbitrary bytes. The fuzz targets call these, and the stable
//! test suite (`tests/fuzz_regressions.rs`) replays the committed corpus through them, so a
//! finding stays fixed without nightly.
//!
//! The parser is driven as `src/connection.rs` drives it: parse at the start of the unconsumed
//! bytes, on `Complete` consume `request.len` and parse on (pipelining), on `Incomplete` wait for
//! the next read, on an error stop. Beyond "no panic", each request must lie within the bytes
//! it claims and within the limits, must parse the same from exactly its own bytes, and a
//! stream cut into reads anywhere must give the same requests and the same error as the
//! stream read at once.

use artemis::{parse_request, Body, HttpError, Limits, Parse, Request};

/// What the parser made of a byte stream, in order.
#[derive(Debug, PartialEq, Eq)]
pub struct Stream {
    /// The complete requests, each with ranges relative to its own first byte.
    pub requests: Vec<Request>,
    /// How the stream ended.
    pub end: End,
}

#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// Every byte was consumed by a complete request.
    Drained,
    /// The last request still waits for bytes.
    Incomplete,
    /// The connection is answered with this error and closed.
    Error(HttpError),
}

/// Feeds `wire` to the parser in reads of the sizes `reads` yields (the rest in one read when it
/// runs out), checking every request on the way.
pub fn feed(wire: &[u8], mut reads: impl Iterator<Item = usize>, limits: &Limits) -> Stream {
    let mut input = Vec::with_capacity(wire.len());
    let mut consumed = 0;
    let mut requests = Vec::new();
    let mut rest = wire;
    while !rest.is_empty() {
        let (read, after) = rest.split_at(reads.next().unwrap_or(rest.len()).min(rest.len()));
        input.extend_from_slice(read);
        rest = after;
        loop {
            let buf = &input[consumed..];
            if buf.is_empty() {
                break;
            }
            match parse_request(buf, limits) {
                Ok(Parse::Complete(request)) => {
                    check_request(buf, &request, limits);
                    consumed += request.len;
                    requests.push(request);
                }
                Ok(Parse::Incomplete { send_continue }) => {
                    assert!(
                        !send_continue || is_head(buf),
                        "100-continue asked for, but not right after the head"
                    );
                    break;
                }
                Err(error) => {
                    return Stream {
                        requests,
                        end: End::Error(error),
                    }
                }
            }
        }
    }
    let end = if consumed == input.len() {
        End::Drained
    } else {
        End::Incomplete
    };
    Stream { requests, end }
}

/// Whether `buf` is exactly one complete request head, with no body byte after it.
fn is_head(buf: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    httparse::Request::new(&mut headers).parse(buf) == Ok(httparse::Status::Complete(buf.len()))
}

/// A request parsed from the start of `buf` lies within `buf`, keeps to the limits, and parses
/// the same from exactly its own bytes (nothing after it changes it).
fn check_request(buf: &[u8], request: &Request, limits: &Limits) {
    let len = request.len;
    assert!(len > 0 && len <= buf.len(), "len {len} of {}", buf.len());
    let head_ranges = [
        Some(&request.path),
        request.query.as_ref(),
        request.cors_request_headers.as_ref(),
        request.cors_request_method.as_ref(),
        request.websocket_key.as_ref(),
    ];
    for range in head_ranges.into_iter().flatten() {
        assert!(range.start <= range.end && range.end <= len.min(limits.max_head));
    }
    match &request.body {
        Body::Empty => {}
        Body::InBuffer(range) => {
            assert!(
                !range.is_empty() && range.end <= len,
                "body {range:?} of {len}"
            );
            assert!(range.len() <= limits.max_body);
        }
        Body::Owned(bytes) => assert!(bytes.len() <= limits.max_body),
    }
    assert_eq!(
        parse_request(&buf[..len], limits),
        Ok(Parse::Complete(request.clone())),
        "the request parses differently from its own bytes"
    );
}

/// Target `http_request`: arbitrary bytes, read at once, under the server's default limits.
pub fn request_bytes(wire: &[u8]) {
    feed(wire, std::iter::empty(), &Limits::default());
}

/// Target `http_split`: arbitrary bytes under arbitrary limits, cut into arbitrary reads; the
/// cut stream must parse as the whole one does.
///
/// The input is `[head limit, body limit, n, n read sizes..., wire...]`. A limit byte `b` is
/// the default for 0, else `(b - 1) * 16` bytes of head and `(b - 1) * 8` of body; a read
/// size byte `s` reads `s + 1` bytes, and the sizes repeat until the wire is read.
pub fn split_reads(data: &[u8]) {
    let [head, body, n, rest @ ..] = data else {
        return;
    };
    let (sizes, wire) = rest.split_at(usize::from(*n).min(rest.len()));
    let limit = |b: u8, unit: usize, default: usize| match b {
        0 => default,
        b => usize::from(b - 1) * unit,
    };
    let defaults = Limits::default();
    let limits = Limits {
        max_head: limit(*head, 16, defaults.max_head),
        max_body: limit(*body, 8, defaults.max_body),
    };
    let whole = feed(wire, std::iter::empty(), &limits);
    if sizes.is_empty() {
        return;
    }
    let reads = sizes.iter().map(|&s| usize::from(s) + 1).cycle();
    assert_eq!(
        feed(wire, reads, &limits),
        whole,
        "cut into reads {sizes:?}"
    );
}
