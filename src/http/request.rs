//! Reads one request from the start of a connection buffer. The head is parsed by
//! `httparse` into a fixed array of header slots; what the server needs from it is kept
//! as flags and as ranges of the buffer, so a small Content-Length request is read
//! without a single allocation.

use super::body::{self, Body, Framing};
use super::{gzip, headers, HttpError, Limits};
use http::Method;
use std::mem::MaybeUninit;
use std::net::IpAddr;
use std::ops::Range;

/// More headers than this is answered with 431.
const MAX_HEADERS: usize = 64;

/// One parsed request. Ranges index the buffer given to [`parse_request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The request target up to `?`, still percent-encoded.
    pub path: Range<usize>,
    /// The raw query string after `?`; decode it with [`super::query_values`].
    pub query: Option<Range<usize>>,
    /// HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
    pub keep_alive: bool,
    /// `Accept-Encoding` admits gzip.
    pub accepts_gzip: bool,
    /// The media type of `Content-Type` is `application/json` (parameters allowed).
    pub content_type_json: bool,
    pub has_content_type: bool,
    /// `Access-Control-Request-Headers`, echoed by a preflight.
    pub cors_request_headers: Option<Range<usize>>,
    /// `Access-Control-Request-Method`, echoed by a preflight.
    pub cors_request_method: Option<Range<usize>>,
    /// `Upgrade: websocket`.
    pub upgrade_websocket: bool,
    /// `Sec-WebSocket-Key`, for the handshake's accept key.
    pub websocket_key: Option<Range<usize>>,
    /// `Authorization`, for the management token.
    pub authorization: Option<Range<usize>>,
    /// The address the connection's peer connected from (set by the connection, not the parser).
    pub peer: Option<IpAddr>,
    /// De-chunked and gunzipped.
    pub body: Body,
    /// Bytes this request takes in the buffer, head and framed body; the next one starts here.
    pub len: usize,
}

/// The outcome of [`parse_request`] on a buffer that holds no error.
// A complete request goes straight to its handler by value; boxing it would cost an allocation
// per request to save copying a few hundred bytes.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse {
    Complete(Request),
    /// More bytes are needed. `send_continue`: the head is complete, asks for
    /// `Expect: 100-continue`, and no byte of the body has arrived yet — answer with
    /// [`super::CONTINUE`] (once) before reading on.
    Incomplete {
        send_continue: bool,
    },
}

/// What the head says beyond the [`Request`] fields.
struct Head {
    request: Request,
    framing: Framing,
    gzipped: bool,
    expect_continue: bool,
}

/// Parses the request at the start of `buf`. Call it again on `buf[request.len..]`
/// for pipelined requests, and after each read while it answers `Incomplete`.
///
/// Only the first `max_head` bytes are read for the head: what lies beyond the limit cannot
/// change the answer, so it does not depend on how the bytes were cut into reads.
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<Parse, HttpError> {
    let mut slots = [MaybeUninit::uninit(); MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut []);
    let head = &buf[..buf.len().min(limits.max_head)];
    let head_len = match parsed.parse_with_uninit_headers(head, &mut slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() < limits.max_head => {
            return Ok(Parse::Incomplete {
                send_continue: false,
            })
        }
        Ok(_) | Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadTooLarge),
        Err(httparse::Error::Version) => {
            return Err(HttpError::BadRequest("unsupported HTTP version"))
        }
        Err(_) => return Err(HttpError::BadRequest("malformed request head")),
    };
    let Head {
        mut request,
        framing,
        gzipped,
        expect_continue,
    } = read_head(&parsed, buf)?;
    let Some((body, end)) = body::frame(buf, head_len, framing, limits)? else {
        return Ok(Parse::Incomplete {
            send_continue: expect_continue && buf.len() == head_len,
        });
    };
    request.body = match body {
        Body::Empty => Body::Empty,
        framed if gzipped => Body::Owned(gzip::gunzip(framed.bytes(buf), limits.max_body)?),
        framed => framed,
    };
    request.len = end;
    Ok(Parse::Complete(request))
}

fn read_head(parsed: &httparse::Request, buf: &[u8]) -> Result<Head, HttpError> {
    let (Some(method), Some(target), Some(version)) = (parsed.method, parsed.path, parsed.version)
    else {
        return Err(HttpError::BadRequest("malformed request line"));
    };
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| HttpError::BadRequest("malformed method"))?;
    let target = range_of(buf, target.as_bytes());
    let (path, query) = match buf[target.clone()].iter().position(|&b| b == b'?') {
        Some(mark) => (
            target.start..target.start + mark,
            Some(target.start + mark + 1..target.end),
        ),
        None => (target, None),
    };
    let mut request = Request {
        method,
        path,
        query,
        keep_alive: version == 1,
        accepts_gzip: false,
        content_type_json: false,
        has_content_type: false,
        cors_request_headers: None,
        cors_request_method: None,
        upgrade_websocket: false,
        websocket_key: None,
        authorization: None,
        peer: None,
        body: Body::Empty,
        len: 0,
    };
    let (mut close, mut content_length, mut chunked) = (false, None, false);
    let (mut gzipped, mut expect_continue) = (false, false);
    for header in parsed.headers.iter() {
        let (name, value) = (header.name.as_bytes(), header.value);
        if name.eq_ignore_ascii_case(b"content-length") {
            let len = headers::content_length(value)
                .ok_or(HttpError::BadRequest("malformed Content-Length"))?;
            if content_length.is_some_and(|seen| seen != len) {
                return Err(HttpError::BadRequest("conflicting Content-Length"));
            }
            content_length = Some(len);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if chunked {
                return Err(HttpError::BadRequest("repeated Transfer-Encoding"));
            }
            if !value.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Err(HttpError::UnsupportedTransferEncoding);
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case(b"content-encoding") {
            let coding = value.trim_ascii();
            if headers::is_gzip(coding) && !gzipped {
                gzipped = true;
            } else if !coding.eq_ignore_ascii_case(b"identity") {
                return Err(HttpError::UnsupportedContentEncoding);
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            close |= headers::has_item(value, "close");
            request.keep_alive |= headers::has_item(value, "keep-alive");
        } else if name.eq_ignore_ascii_case(b"content-type") {
            request.has_content_type = true;
            request.content_type_json =
                headers::media_type(value).eq_ignore_ascii_case(b"application/json");
        } else if name.eq_ignore_ascii_case(b"accept-encoding") {
            request.accepts_gzip |= headers::accepts_gzip(value);
        } else if name.eq_ignore_ascii_case(b"expect") {
            expect_continue =
                version == 1 && value.trim_ascii().eq_ignore_ascii_case(b"100-continue");
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            request.upgrade_websocket |= headers::has_item(value, "websocket");
        } else if name.eq_ignore_ascii_case(b"authorization") {
            request.authorization = Some(range_of(buf, value.trim_ascii()));
        } else if name.eq_ignore_ascii_case(b"sec-websocket-key") {
            request.websocket_key = Some(range_of(buf, value.trim_ascii()));
        } else if name.eq_ignore_ascii_case(b"access-control-request-headers") {
            request.cors_request_headers = Some(range_of(buf, value.trim_ascii()));
        } else if name.eq_ignore_ascii_case(b"access-control-request-method") {
            request.cors_request_method = Some(range_of(buf, value.trim_ascii()));
        }
    }
    request.keep_alive &= !close;
    let framing = match (chunked, content_length) {
        (true, Some(_)) => {
            return Err(HttpError::BadRequest(
                "both Content-Length and Transfer-Encoding",
            ))
        }
        (true, None) => Framing::Chunked,
        (false, len) => Framing::Length(len.unwrap_or(0)),
    };
    Ok(Head {
        request,
        framing,
        gzipped,
        expect_continue,
    })
}

/// The range of `buf` that `part`, a slice borrowed from it, covers.
fn range_of(buf: &[u8], part: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize - buf.as_ptr() as usize;
    start..start + part.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_head: 512,
            max_body: 64,
        }
    }

    fn complete(buf: &[u8]) -> Request {
        match parse_request(buf, &limits()) {
            Ok(Parse::Complete(request)) => request,
            other => panic!("expected a complete request, got {other:?}"),
        }
    }

    fn error(buf: &[u8]) -> HttpError {
        parse_request(buf, &limits()).expect_err("expected an error")
    }

    #[test]
    fn get_with_query() {
        let buf = b"GET /api/discovery/service.json?serviceId=a%20b&regionId=SHA HTTP/1.1\r\nHost: x\r\n\r\n";
        let request = complete(buf);
        assert_eq!(request.method, Method::GET);
        assert_eq!(&buf[request.path.clone()], b"/api/discovery/service.json");
        assert_eq!(
            &buf[request.query.clone().unwrap()],
            b"serviceId=a%20b&regionId=SHA"
        );
        assert!(request.keep_alive);
        assert_eq!(request.body, Body::Empty);
        assert_eq!(request.len, buf.len());
    }

    #[test]
    fn post_json_body_stays_in_the_buffer() {
        let buf = b"POST /api/registry/heartbeat.json HTTP/1.1\r\n\
            content-type: Application/JSON; charset=UTF-8\r\nContent-Length: 2\r\n\r\n{}";
        let request = complete(buf);
        assert_eq!(request.method, Method::POST);
        assert!(request.query.is_none());
        assert!(request.has_content_type && request.content_type_json);
        assert_eq!(request.body, Body::InBuffer(buf.len() - 2..buf.len()));
        assert_eq!(request.body.bytes(buf), b"{}");
    }

    #[test]
    fn other_content_types_are_flagged() {
        let request = complete(b"POST / HTTP/1.1\r\nContent-Type: text/json\r\n\r\n");
        assert!(request.has_content_type && !request.content_type_json);
        let request = complete(b"POST / HTTP/1.1\r\n\r\n");
        assert!(!request.has_content_type && !request.content_type_json);
    }

    #[test]
    fn keep_alive_rules() {
        let keep = |head: &str| complete(head.as_bytes()).keep_alive;
        assert!(keep("GET / HTTP/1.1\r\n\r\n"));
        assert!(!keep("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"));
        assert!(!keep(
            "GET / HTTP/1.1\r\nConnection: Keep-Alive\r\nConnection: Close\r\n\r\n"
        ));
        assert!(!keep("GET / HTTP/1.0\r\n\r\n"));
        assert!(keep("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    }

    #[test]
    fn gzip_acceptance_and_upgrade() {
        let buf = b"GET /ws HTTP/1.1\r\nAccept-Encoding: gzip, deflate\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ== \r\n\r\n";
        let request = complete(buf);
        assert!(request.accepts_gzip && request.upgrade_websocket);
        let key = request.websocket_key.unwrap();
        assert_eq!(&buf[key], b"dGhlIHNhbXBsZSBub25jZQ==");
        let request = complete(b"GET / HTTP/1.1\r\nAccept-Encoding: gzip;q=0\r\n\r\n");
        assert!(!request.accepts_gzip && !request.upgrade_websocket);
    }

    #[test]
    fn preflight_headers_are_ranges() {
        let buf = b"OPTIONS /api/registry/register.json HTTP/1.1\r\n\
            Access-Control-Request-Method:  POST \r\nACCESS-CONTROL-REQUEST-HEADERS: content-type,x-a\r\n\r\n";
        let request = complete(buf);
        assert_eq!(request.method, Method::OPTIONS);
        assert_eq!(&buf[request.cors_request_method.unwrap()], b"POST");
        assert_eq!(
            &buf[request.cors_request_headers.unwrap()],
            b"content-type,x-a"
        );
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers() {
        let buf = b"POST /x HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n\
            3;name=value\r\n{\"a\r\n4\r\n\":1}\r\n0\r\nX-Sum: 9\r\n\r\n";
        let request = complete(buf);
        assert_eq!(request.body, Body::Owned(b"{\"a\":1}".to_vec()));
        assert_eq!(request.len, buf.len());
    }

    #[test]
    fn gzip_body_is_inflated() {
        let packed = gzip::gzip_plain(&[b"{\"instances\":[]}"]);
        let head = format!(
            "POST /x HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            packed.len()
        );
        let buf = [head.as_bytes(), &packed].concat();
        assert_eq!(
            complete(&buf).body,
            Body::Owned(b"{\"instances\":[]}".to_vec())
        );
    }

    #[test]
    fn gzip_and_chunked_together() {
        let packed = gzip::gzip_plain(&[b"[1,2,3]"]);
        let (a, b) = packed.split_at(5);
        let buf = [
            &b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Encoding: x-gzip\r\n\r\n"
                [..],
            format!("{:x}\r\n", a.len()).as_bytes(),
            a,
            format!("\r\n{:X}\r\n", b.len()).as_bytes(),
            b,
            b"\r\n0\r\n\r\n",
        ]
        .concat();
        assert_eq!(complete(&buf).body, Body::Owned(b"[1,2,3]".to_vec()));
    }

    #[test]
    fn empty_gzip_body_is_empty() {
        let request =
            complete(b"POST /x HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(request.body, Body::Empty);
    }

    #[test]
    fn expect_continue_is_asked_once_the_head_is_in() {
        let buf = b"POST /x HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\nhello";
        let head = buf.len() - 5;
        let limits = limits();
        let at = |cut: usize| parse_request(&buf[..cut], &limits).unwrap();
        assert_eq!(
            at(head - 1),
            Parse::Incomplete {
                send_continue: false
            }
        );
        assert_eq!(
            at(head),
            Parse::Incomplete {
                send_continue: true
            }
        );
        assert_eq!(
            at(head + 1),
            Parse::Incomplete {
                send_continue: false
            }
        );
        assert!(matches!(at(buf.len()), Parse::Complete(_)));
    }

    #[test]
    fn expect_continue_is_ignored_when_not_needed() {
        let limits = limits();
        let empty = b"POST /x HTTP/1.1\r\nExpect: 100-continue\r\n\r\n";
        assert!(matches!(
            parse_request(empty, &limits),
            Ok(Parse::Complete(_))
        ));
        let http10 = b"POST /x HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n";
        assert_eq!(
            parse_request(http10, &limits),
            Ok(Parse::Incomplete {
                send_continue: false
            })
        );
    }

    #[test]
    fn head_limit() {
        let limits = limits();
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(600));
        assert_eq!(error(long.as_bytes()), HttpError::HeadTooLarge);
        let unfinished = &long.as_bytes()[..limits.max_head];
        assert_eq!(error(unfinished), HttpError::HeadTooLarge);
        let fits = &long.as_bytes()[..limits.max_head - 1];
        assert_eq!(
            parse_request(fits, &limits),
            Ok(Parse::Incomplete {
                send_continue: false
            })
        );
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "a:b\r\n".repeat(MAX_HEADERS + 1)
        );
        assert_eq!(error(many.as_bytes()), HttpError::HeadTooLarge);
    }

    /// Found by the `http_split` fuzz target: a head error past `max_head` was a 400 when the
    /// bytes came in one read, and a 431 when a read ended within the limit.
    #[test]
    fn bytes_past_the_head_limit_are_not_read() {
        let limits = Limits {
            max_head: 32,
            max_body: 0,
        };
        let buf = b"GET /api/discovery/services.json HTTP/1.1\r\nno colon\r\n\r\n";
        assert_eq!(
            parse_request(buf, &limits),
            Err(HttpError::HeadTooLarge),
            "at once"
        );
        assert_eq!(
            parse_request(&buf[..31], &limits),
            Ok(Parse::Incomplete {
                send_continue: false
            })
        );
    }

    #[test]
    fn body_limit() {
        assert_eq!(
            error(b"POST / HTTP/1.1\r\nContent-Length: 65\r\n\r\n"),
            HttpError::BodyTooLarge
        );
        let packed = gzip::gzip_plain(&[&[b' '; 65]]);
        let head = format!(
            "POST / HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            packed.len()
        );
        assert_eq!(
            error(&[head.as_bytes(), &packed].concat()),
            HttpError::BodyTooLarge
        );
    }

    #[test]
    fn framing_errors() {
        for (rest, status) in [
            ("Content-Length: x\r\n\r\n", 400),
            ("Content-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
            (
                "Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                400,
            ),
            (
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                400,
            ),
            (
                "Content-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc",
                400,
            ),
            ("Transfer-Encoding: gzip, chunked\r\n\r\n", 501),
            ("Content-Encoding: br\r\n\r\n", 415),
            (
                "Content-Encoding: gzip\r\nContent-Encoding: gzip\r\n\r\n",
                415,
            ),
        ] {
            let buf = format!("POST / HTTP/1.1\r\n{rest}");
            assert_eq!(error(buf.as_bytes()).status(), status, "{rest:?}");
        }
    }

    #[test]
    fn repeated_equal_content_length_and_identity_coding_are_fine() {
        let buf = b"POST / HTTP/1.1\r\nContent-Length: 1\r\ncontent-length: 1\r\nContent-Encoding: identity\r\n\r\nx";
        assert_eq!(complete(buf).body.bytes(buf), b"x");
    }

    #[test]
    fn malformed_heads() {
        for head in [
            &b"GET / HTTP/2.0\r\n\r\n"[..],
            b"GET  / HTTP/1.1\r\n\r\n",
            b"G(T / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nbad header\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        ] {
            assert!(matches!(error(head), HttpError::BadRequest(_)), "{head:?}");
        }
    }

    #[test]
    fn extension_methods_are_kept() {
        assert_eq!(
            complete(b"PURGE /x HTTP/1.1\r\n\r\n").method.as_str(),
            "PURGE"
        );
    }
}
