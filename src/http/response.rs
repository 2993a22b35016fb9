//! Writes replies into a connection's output buffer. A head is a handful of
//! `extend_from_slice` calls of constant bytes plus one decimal length; the body is
//! the server's cached slices written back to back, gzipped when the client accepts it
//! and the body is large enough to gain from it. Every reply carries the CORS headers
//! Java's caravan `CrossDomainFilter` adds.

use super::gzip::{self, BodyPart};
use crate::transport::Output;
use http::StatusCode;

/// The interim reply to `Expect: 100-continue`.
pub(crate) const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Bodies shorter than this go out uncompressed (ziplet's default threshold).
const GZIP_MIN_BODY: usize = 1024;

/// Java's `CrossDomainFilter` also sends `Access-Control-Allow-Credentials: true`; paired with
/// `Allow-Origin: *` it would ask browsers to send cookies cross-site, so it is left out (no
/// browser honours that pair anyway).
const CORS: &[u8] = b"Access-Control-Allow-Origin: *\r\n\
Access-Control-Expose-Headers: *\r\n";

/// Sent on a preflight that names no `Access-Control-Request-Method`.
const DEFAULT_ALLOW_METHODS: &[u8] = b"GET, POST, PUT, DELETE, OPTIONS, HEAD";

/// One complete response.
#[derive(Clone, Copy)]
pub struct Reply<'a> {
    pub status: StatusCode,
    pub content_type: Option<&'static str>,
    /// Written back to back as one body.
    pub body: &'a [BodyPart<'a>],
    /// The client accepts gzip; the body is compressed when it has at least 1024 bytes.
    pub gzip: bool,
    /// False adds `Connection: close`; the server closes after writing.
    pub keep_alive: bool,
    /// A reply to `HEAD`: the headers the reply would have (its plain `Content-Length`), no body.
    pub head_only: bool,
    /// The `Allow` header of a 405: the methods the endpoint takes.
    pub allow: Option<&'static str>,
}

/// Appends `reply` to `out`.
pub fn write_response(out: &mut Output, reply: &Reply) {
    let len: usize = reply.body.iter().map(|part| part.bytes.len()).sum();
    start_head(out, reply.status);
    if let Some(content_type) = reply.content_type {
        header(out, b"Content-Type: ", content_type.as_bytes());
        // As Java's compressing filter: the body may differ with `Accept-Encoding`.
        out.extend_from_slice(b"Vary: Accept-Encoding\r\n");
    }
    if let Some(allow) = reply.allow {
        header(out, b"Allow: ", allow.as_bytes());
    }
    if reply.head_only {
        end_head(out, len, reply.keep_alive);
    } else if reply.gzip && len >= GZIP_MIN_BODY {
        let packed = gzip::gzip(reply.body);
        out.extend_from_slice(b"Content-Encoding: gzip\r\n");
        end_head(out, packed.len(), reply.keep_alive);
        out.extend_from_slice(&packed);
    } else {
        end_head(out, len, reply.keep_alive);
        for part in reply.body {
            match part.shared {
                Some(from) => out.share(part.bytes, from),
                None => out.extend_from_slice(part.bytes),
            }
        }
    }
}

/// Appends the answer to a CORS preflight (`OPTIONS`): 200, empty body, the methods and
/// headers the request asked for echoed back (`allow_methods` empty: a default list;
/// `allow_headers` empty: no `Access-Control-Allow-Headers`), cached for an hour.
pub(crate) fn write_preflight(
    out: &mut Vec<u8>,
    allow_methods: &[u8],
    allow_headers: &[u8],
    keep_alive: bool,
) {
    start_head(out, StatusCode::OK);
    let methods = if allow_methods.is_empty() {
        DEFAULT_ALLOW_METHODS
    } else {
        allow_methods
    };
    header(out, b"Access-Control-Allow-Methods: ", methods);
    if !allow_headers.is_empty() {
        header(out, b"Access-Control-Allow-Headers: ", allow_headers);
    }
    out.extend_from_slice(b"Access-Control-Max-Age: 3600\r\n");
    end_head(out, 0, keep_alive);
}

/// The status line and the headers every reply has.
fn start_head(out: &mut Vec<u8>, status: StatusCode) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or_default().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(CORS);
}

fn header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// `Content-Length`, `Connection: close` when the connection ends, and the blank line.
fn end_head(out: &mut Vec<u8>, content_length: usize, keep_alive: bool) {
    out.extend_from_slice(b"Content-Length: ");
    push_decimal(out, content_length);
    out.extend_from_slice(if keep_alive {
        b"\r\n\r\n"
    } else {
        b"\r\nConnection: close\r\n\r\n"
    });
}

fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(reply: Reply) -> String {
        let mut out = Output::default();
        write_response(&mut out, &reply);
        String::from_utf8_lossy(&out).into_owned()
    }

    const JSON: Option<&str> = Some("application/json;charset=UTF-8");

    fn parts<'a>(slices: &[&'a [u8]]) -> Vec<BodyPart<'a>> {
        slices.iter().map(|&bytes| bytes.into()).collect()
    }

    /// A 200 JSON reply of `body`, kept alive, to a client that accepts gzip.
    fn json_reply<'a>(body: &'a [BodyPart<'a>]) -> Reply<'a> {
        Reply {
            status: StatusCode::OK,
            content_type: JSON,
            body,
            gzip: true,
            keep_alive: true,
            head_only: false,
            allow: None,
        }
    }

    #[test]
    fn small_reply() {
        let text = written(json_reply(&parts(&[b"{\"a\":", b"1}"])));
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\n\
             Access-Control-Allow-Origin: *\r\n\
             Access-Control-Expose-Headers: *\r\n\
             Content-Type: application/json;charset=UTF-8\r\n\
             Vary: Accept-Encoding\r\n\
             Content-Length: 7\r\n\r\n\
             {\"a\":1}"
        );
    }

    #[test]
    fn a_head_reply_has_the_headers_without_the_body() {
        let body = parts(&[b"{\"a\":", b"1}"]);
        let text = written(Reply {
            head_only: true,
            ..json_reply(&body)
        });
        assert!(text.ends_with("Content-Length: 7\r\n\r\n"), "{text}");
    }

    #[test]
    fn a_405_says_what_is_allowed() {
        let body = parts(&[b"{}"]);
        let text = written(Reply {
            status: StatusCode::METHOD_NOT_ALLOWED,
            allow: Some("GET, HEAD, POST"),
            ..json_reply(&body)
        });
        assert!(text.contains("\r\nAllow: GET, HEAD, POST\r\n"), "{text}");
    }

    #[test]
    fn closing_reply_without_type_or_body() {
        let text = written(Reply {
            status: StatusCode::NOT_FOUND,
            content_type: None,
            body: &[],
            gzip: false,
            keep_alive: false,
            head_only: false,
            allow: None,
        });
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(!text.contains("Content-Type"));
        assert!(text.ends_with("Content-Length: 0\r\nConnection: close\r\n\r\n"));
    }

    #[test]
    fn large_body_is_gzipped_when_accepted() {
        let big = vec![b'x'; 5000];
        let slices: &[&[u8]] = &[b"[", &big, b"]"];
        let body = &parts(slices);
        let mut out = Output::default();
        write_response(&mut out, &json_reply(body));
        let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = std::str::from_utf8(&out[..split]).unwrap();
        assert!(head.contains("Vary: Accept-Encoding\r\n"));
        assert!(head.contains("Content-Encoding: gzip\r\n"));
        let packed = &out[split..];
        assert!(head.contains(&format!("Content-Length: {}\r\n", packed.len())));
        assert_eq!(gzip::gunzip(packed, 10_000).unwrap(), slices.concat());

        let plain = written(Reply {
            gzip: false,
            ..json_reply(body)
        });
        assert!(plain.contains("Content-Length: 5002\r\n") && !plain.contains("gzip"));
    }

    #[test]
    fn gzip_threshold_is_1024_bytes() {
        let body = vec![b'y'; GZIP_MIN_BODY - 1];
        let reply = Reply {
            status: StatusCode::OK,
            content_type: None,
            body: &parts(&[&body]),
            gzip: true,
            keep_alive: true,
            head_only: false,
            allow: None,
        };
        assert!(!written(reply).contains("gzip"));
        let body = vec![b'y'; GZIP_MIN_BODY];
        let body = parts(&[&body]);
        let reply = Reply {
            body: &body,
            ..reply
        };
        assert!(written(reply).contains("Content-Encoding: gzip"));
    }

    #[test]
    fn preflight_echoes_the_request() {
        let mut out = Vec::new();
        write_preflight(&mut out, b"POST", b"content-type, x-trace", true);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\nAccess-Control-Allow-Origin: *\r\n"));
        assert!(text.contains("Access-Control-Allow-Methods: POST\r\n"));
        assert!(text.contains("Access-Control-Allow-Headers: content-type, x-trace\r\n"));
        assert!(text.ends_with("Access-Control-Max-Age: 3600\r\nContent-Length: 0\r\n\r\n"));
    }

    #[test]
    fn preflight_defaults() {
        let mut out = Vec::new();
        write_preflight(&mut out, b"", b"", false);
        let text = String::from_utf8(out).unwrap();
        assert!(text
            .contains("Access-Control-Allow-Methods: GET, POST, PUT, DELETE, OPTIONS, HEAD\r\n"));
        assert!(!text.contains("Allow-Headers"));
        assert!(text.ends_with("Connection: close\r\n\r\n"));
    }

    #[test]
    fn decimals() {
        for n in [0, 7, 10, 1024, 8 << 20, usize::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }
}
