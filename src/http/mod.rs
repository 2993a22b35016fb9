//! The server's HTTP/1.1, hand-rolled on `httparse`: it reads requests out of a
//! connection's byte buffer and appends replies to its output buffer. No sockets and no
//! runtime live here, so keep-alive, pipelining, limits, chunked and gzip bodies are all
//! tested on plain byte strings.
//!
//! The connection loop: `parse_request(&buf[consumed..])`; on `Complete` answer it and
//! advance `consumed` by `request.len` (pipelined requests are answered in order); on
//! `Incomplete` write [`CONTINUE`] if asked, then read more; on an error write
//! `error.status()` with `error.message()` and close.

mod body;
pub(crate) mod client;
mod error;
mod gzip;
mod headers;
mod query;
mod request;
mod response;

pub use body::Body;
pub use error::HttpError;
pub(crate) use gzip::{BodyPart, DeflateCache};
pub(crate) use query::query_values;
pub use request::{parse_request, Parse, Request};
pub(crate) use response::{write_preflight, CONTINUE};
pub use response::{write_response, Reply};

/// How much one request may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Request line and headers, in bytes (431 beyond).
    pub max_head: usize,
    /// Body after de-chunking and gunzip, in bytes (413 beyond); `--max-body`.
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head: 16 << 10,
            max_body: 8 << 20,
        }
    }
}

#[cfg(test)]
mod tests {
    //! The parser as the connection loop drives it: pipelined buffers, requests cut at
    //! every byte, and random bytes that must never panic.

    use super::*;
    use crate::noise::Rng;

    fn requests() -> Vec<Vec<u8>> {
        let packed = gzip::gzip_plain(&[b"{\"instances\":[{\"serviceId\":\"s\"}]}"]);
        vec![
            b"GET /api/discovery/services.json?regionId=SHA&zoneId=1 HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            b"POST /api/registry/heartbeat.json HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"instances\":[]}".to_vec(),
            b"POST /api/registry/register.json HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n2;x=y\r\n[1\r\n3\r\n,2]\r\n0\r\nTrailer: t\r\n\r\n".to_vec(),
            [
                format!("POST /r HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n", packed.len()).as_bytes(),
                &packed,
            ]
            .concat(),
            b"OPTIONS /x HTTP/1.1\r\nAccess-Control-Request-Method: POST\r\n\r\n".to_vec(),
        ]
    }

    fn complete(buf: &[u8], limits: &Limits) -> Request {
        match parse_request(buf, limits) {
            Ok(Parse::Complete(request)) => request,
            other => panic!("expected a complete request, got {other:?}"),
        }
    }

    #[test]
    fn pipelined_requests_are_read_in_order() {
        let limits = Limits::default();
        let all = requests();
        let buf = all[..3].concat();
        let mut consumed = 0;
        let mut methods = Vec::new();
        while consumed < buf.len() {
            let request = complete(&buf[consumed..], &limits);
            methods.push(request.method.clone());
            assert_eq!(request.len, all[methods.len() - 1].len());
            consumed += request.len;
        }
        assert_eq!(
            methods,
            [http::Method::GET, http::Method::POST, http::Method::POST]
        );
    }

    #[test]
    fn every_split_is_incomplete_then_complete() {
        let limits = Limits::default();
        for wire in requests() {
            let whole = complete(&wire, &limits);
            for cut in 0..wire.len() {
                match parse_request(&wire[..cut], &limits) {
                    Ok(Parse::Incomplete { .. }) => {}
                    other => panic!("cut at {cut}: {other:?}"),
                }
            }
            assert_eq!(whole.len, wire.len());
        }
    }

    /// A real request (sometimes two back to back, sometimes plain noise) with a few
    /// random edits, so the fuzzing reaches bodies and not only the request line.
    fn random_input(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
        const TOKENS: &[&[u8]] = &[
            b"\r\n",
            b"\r\n\r\n",
            b":",
            b" ",
            b";",
            b"0",
            b"f",
            b"\xff",
            b"\0",
            b"?a=%2+",
            b"Content-Length: 9\r\n",
            b"Transfer-Encoding: chunked\r\n",
            b"Content-Encoding: gzip\r\n",
            b"Expect: 100-continue\r\n",
            b"Connection: close\r\n",
            b"\x1f\x8b\x08\x00",
            b"HTTP/1.0",
        ];
        let mut out = match rng.below(8) {
            0 => (0..rng.below(64)).map(|_| rng.next() as u8).collect(),
            1 => [
                &corpus[rng.below(corpus.len())][..],
                &corpus[rng.below(corpus.len())],
            ]
            .concat(),
            _ => corpus[rng.below(corpus.len())].clone(),
        };
        for _ in 0..rng.below(4) {
            let at = rng.below(out.len() + 1);
            match rng.below(4) {
                0 if at < out.len() => out[at] = rng.next() as u8,
                1 => {
                    let end = at + rng.below(out.len() - at + 1).min(8);
                    out.drain(at..end);
                }
                2 => {
                    let token = TOKENS[rng.below(TOKENS.len())];
                    out.splice(at..at, token.iter().copied());
                }
                _ => out.truncate(at),
            }
        }
        out
    }

    #[test]
    fn random_input_never_panics_and_splits_agree() {
        let corpus = requests();
        let limits = Limits {
            max_head: 200,
            max_body: 64,
        };
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let buf = random_input(&mut rng, &corpus);
            let mut consumed = 0;
            while let Ok(Parse::Complete(request)) = parse_request(&buf[consumed..], &limits) {
                let rest = &buf[consumed..];
                assert!(request.len > 0 && request.len <= rest.len());
                assert!(request.path.end <= request.len);
                let _ = request.body.bytes(rest);
                consumed += request.len;
            }
            let cut = rng.below(buf.len() + 1);
            match (
                parse_request(&buf[..cut], &limits),
                parse_request(&buf, &limits),
            ) {
                (Ok(Parse::Complete(early)), whole) => {
                    assert_eq!(whole, Ok(Parse::Complete(early)))
                }
                (early, Ok(Parse::Complete(_))) => {
                    assert!(matches!(early, Ok(Parse::Incomplete { .. })), "{early:?}")
                }
                _ => {}
            }
        }
    }
}
