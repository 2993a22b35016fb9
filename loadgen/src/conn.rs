//! One keep-alive client connection on a mio socket: write a request, read the reply. It speaks
//! HTTP/1.1, or WebSocket after an upgrade (a request is then a frame, and so is its reply).
//!
//! Minimal on purpose: one request in flight, HTTP replies framed by `Content-Length` (the Artemis
//! server always sends it). A body with `Content-Encoding: gzip` (the server's answer to a request
//! that accepts gzip) is inflated, so callers always see the plain body. Buffers are reused
//! across requests, so a steady run allocates nothing but the inflater of a gzipped reply.

use crate::websocket::{self, Upgrade};
use flate2::bufread::GzDecoder;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

const INITIAL_BUFFER: usize = 16 * 1024;

pub(crate) struct Connection {
    stream: TcpStream,
    /// Bytes of the current request already written.
    written: usize,
    buf: Vec<u8>,
    /// Bytes of `buf` read from the socket.
    filled: usize,
    /// Bytes at the front of `buf` that belong to the reply handed out last.
    consumed: usize,
    head: Option<Head>,
    /// Replies are WebSocket frames rather than HTTP messages.
    frames: bool,
    /// The body of the last gzipped reply, inflated.
    inflated: Vec<u8>,
}

/// The parsed head of the reply being read.
#[derive(Clone, Copy)]
struct Head {
    status: u16,
    body_start: usize,
    end: usize,
    /// The body is gzipped.
    gzip: bool,
}

/// A complete reply.
pub(crate) struct Reply<'a> {
    pub status: u16,
    /// The body as sent, or inflated when it was gzipped.
    pub body: &'a [u8],
}

impl Connection {
    /// Connects and, given an `upgrade`, switches to WebSocket (blocking, each step at most
    /// `timeout`), then registers the socket with `registry`.
    pub(crate) fn open(
        addr: SocketAddr,
        timeout: Duration,
        upgrade: Option<&Upgrade>,
        registry: &Registry,
        token: Token,
    ) -> io::Result<Connection> {
        let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_nodelay(true)?;
        if let Some(upgrade) = upgrade {
            stream.set_read_timeout(Some(timeout))?;
            upgrade.handshake(&mut stream)?;
        }
        stream.set_nonblocking(true)?;
        let mut stream = TcpStream::from_std(stream);
        registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
        Ok(Connection {
            stream,
            written: 0,
            buf: vec![0; INITIAL_BUFFER],
            filled: 0,
            consumed: 0,
            head: None,
            frames: upgrade.is_some(),
            inflated: Vec::new(),
        })
    }

    pub(crate) fn close(mut self, registry: &Registry) {
        // Deregistering a socket that is about to be closed cannot usefully fail.
        let _ = registry.deregister(&mut self.stream);
    }

    /// Writes what is left of `request`; `true` once all of it is out. Call again with the
    /// same request after a `false` when the socket is writable.
    pub(crate) fn write(&mut self, request: &[u8]) -> io::Result<bool> {
        while self.written < request.len() {
            match self.stream.write(&request[self.written..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.written = 0;
        Ok(true)
    }

    /// Reads what the socket has and returns the reply once it is complete: an HTTP/1.x message
    /// with a `Content-Length`, or a WebSocket text frame (pings are skipped; the status is then
    /// 200). Anything else, or a gzipped body that does not inflate, is an `InvalidData` error.
    pub(crate) fn read_reply(&mut self) -> io::Result<Option<Reply<'_>>> {
        self.discard_consumed();
        loop {
            if self.head.is_none() {
                self.head = self.parse()?;
            }
            if let Some(head) = self.head {
                if self.filled >= head.end {
                    self.consumed = head.end;
                    let mut body = &self.buf[head.body_start..head.end];
                    if head.gzip {
                        inflate(body, &mut self.inflated)?;
                        body = &self.inflated;
                    }
                    return Ok(Some(Reply {
                        status: head.status,
                        body,
                    }));
                }
            }
            if self.filled == self.buf.len() {
                let wanted = self.head.map_or(0, |h| h.end);
                self.buf.resize(wanted.max(self.buf.len() * 2), 0);
            }
            match self.stream.read(&mut self.buf[self.filled..]) {
                Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
                Ok(n) => self.filled += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The head of the reply in `buf`, past any pings (which count as consumed).
    fn parse(&mut self) -> io::Result<Option<Head>> {
        if !self.frames {
            return parse_head(&self.buf[..self.filled]);
        }
        loop {
            let Some(frame) = websocket::parse_frame(&self.buf[self.consumed..self.filled])? else {
                return Ok(None);
            };
            let at = self.consumed;
            if frame.text {
                return Ok(Some(Head {
                    status: 200,
                    body_start: at + frame.payload.start,
                    end: at + frame.payload.end,
                    gzip: false,
                }));
            }
            self.consumed += frame.payload.end;
        }
    }

    fn discard_consumed(&mut self) {
        if self.consumed > 0 {
            self.buf.copy_within(self.consumed..self.filled, 0);
            self.filled -= self.consumed;
            self.consumed = 0;
            self.head = None;
        }
    }
}

fn parse_head(bytes: &[u8]) -> io::Result<Option<Head>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let body_start = match response.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(io::Error::new(ErrorKind::InvalidData, e)),
    };
    let header = |name: &str| {
        let header = response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))?;
        Some(std::str::from_utf8(header.value).ok()?.trim())
    };
    let length = header("content-length")
        .and_then(|value| value.parse::<usize>().ok())
        .ok_or_else(|| io::Error::new(ErrorKind::InvalidData, "reply without Content-Length"))?;
    let gzip = header("content-encoding").is_some_and(|value| value.eq_ignore_ascii_case("gzip"));
    Ok(Some(Head {
        status: response.code.unwrap_or(0),
        body_start,
        end: body_start + length,
        gzip,
    }))
}

/// Inflates the gzip `body` into `out`, replacing what it held.
fn inflate(body: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    out.clear();
    match GzDecoder::new(body).read_to_end(out) {
        Ok(_) => Ok(()),
        Err(e) => Err(io::Error::new(ErrorKind::InvalidData, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::Failure;
    use crate::reply;
    use flate2::write::GzEncoder;

    #[test]
    fn head_gives_status_and_framing() {
        let reply = b"HTTP/1.1 415 Unsupported\r\ncontent-length: 3\r\n\r\nabc";
        let head = parse_head(reply).unwrap().unwrap();
        assert_eq!((head.status, head.body_start, head.end), (415, 47, 50));
        assert!(!head.gzip);
        let gzipped = b"HTTP/1.1 200 OK\r\nContent-Encoding: GZIP\r\nContent-Length: 3\r\n\r\n";
        assert!(parse_head(gzipped).unwrap().unwrap().gzip);
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Le")
            .unwrap()
            .is_none());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
    }

    /// A connection to a listener of ours, and our end of it; the poll must outlive both.
    fn connected() -> (mio::Poll, Connection, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let poll = mio::Poll::new().unwrap();
        let conn = Connection::open(
            addr,
            Duration::from_secs(1),
            None,
            poll.registry(),
            Token(0),
        )
        .unwrap();
        let (server, _) = listener.accept().unwrap();
        (poll, conn, server)
    }

    /// Sends a request on `conn`, answers it with `reply` from `server`, and reads the reply.
    fn exchange(
        conn: &mut Connection,
        server: &mut std::net::TcpStream,
        reply: &[u8],
    ) -> io::Result<(u16, Vec<u8>)> {
        assert!(conn.write(b"GET / HTTP/1.1\r\n\r\n").unwrap());
        let mut got = [0u8; 18];
        server.read_exact(&mut got).unwrap();
        server.write_all(reply).unwrap();
        loop {
            if let Some(r) = conn.read_reply()? {
                return Ok((r.status, r.body.to_vec()));
            }
        }
    }

    /// An HTTP 200 reply carrying `body`, with `Content-Encoding: gzip` if `gzip`.
    fn reply_of(body: &[u8], gzip: bool) -> Vec<u8> {
        let encoding = if gzip {
            "Content-Encoding: gzip\r\n"
        } else {
            ""
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\n{encoding}Content-Length: {}\r\n\r\n",
            body.len()
        );
        [head.as_bytes(), body].concat()
    }

    #[test]
    fn reads_replies_back_to_back_over_a_socket() {
        let (_poll, mut conn, mut server) = connected();
        let big = "x".repeat(40_000);
        for body in ["hello", big.as_str()] {
            let reply = reply_of(body.as_bytes(), false);
            let got = exchange(&mut conn, &mut server, &reply).unwrap();
            assert_eq!(got, (200, body.as_bytes().to_vec()));
        }
    }

    #[test]
    fn gzipped_bodies_are_inflated_before_they_are_judged() {
        let (_poll, mut conn, mut server) = connected();
        let json = format!(
            r#"{{"responseStatus":{{"errorCode":"success","message":"","status":"success"}},"service":{{"instances":[{}]}}}}"#,
            r#"{"status":"up"},"#.repeat(1000) + r#"{"status":"up"}"#
        );
        let mut encoder = GzEncoder::new(vec![], flate2::Compression::default());
        encoder.write_all(json.as_bytes()).unwrap();
        let packed = encoder.finish().unwrap();
        // Twice, so the second inflates into the buffer the first left behind; then a plain
        // reply on the same connection is judged as it came.
        for _ in 0..2 {
            let (status, body) =
                exchange(&mut conn, &mut server, &reply_of(&packed, true)).unwrap();
            assert_eq!(body, json.as_bytes());
            assert_eq!(reply::judge(status, &body), Ok(()));
        }
        let (status, body) =
            exchange(&mut conn, &mut server, &reply_of(json.as_bytes(), false)).unwrap();
        assert_eq!(reply::judge(status, &body), Ok(()));
    }

    #[test]
    fn a_gzip_body_that_does_not_inflate_is_malformed() {
        let mut encoder = GzEncoder::new(vec![], flate2::Compression::default());
        encoder.write_all(&[b'x'; 5000]).unwrap();
        let packed = encoder.finish().unwrap();
        let mut flipped = packed.clone();
        flipped[15] ^= 0xff;
        let truncated = &packed[..packed.len() - 6];
        for body in [&b"not gzip at all"[..], &flipped, truncated] {
            let (_poll, mut conn, mut server) = connected();
            let error = exchange(&mut conn, &mut server, &reply_of(body, true)).unwrap_err();
            assert_eq!(Failure::of_read(&error), Failure::Malformed);
        }
    }
}
