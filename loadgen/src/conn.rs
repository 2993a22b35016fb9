//! One keep-alive client connection on a mio socket: write a request, read the reply. It speaks
//! HTTP/1.1, or WebSocket after an upgrade (a request is then a frame, and so is its reply).
//!
//! Minimal on purpose: one request in flight, HTTP replies framed by `Content-Length` (the Artemis
//! server always sends it). Buffers are reused across requests, so a steady run allocates nothing.

use crate::websocket::{self, Upgrade};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

const INITIAL_BUFFER: usize = 16 * 1024;

pub struct Connection {
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
}

/// The parsed head of the reply being read.
#[derive(Clone, Copy)]
struct Head {
    status: u16,
    body_start: usize,
    end: usize,
}

/// A complete reply.
pub struct Reply<'a> {
    pub status: u16,
    pub body: &'a [u8],
}

impl Connection {
    /// Connects and, given an `upgrade`, switches to WebSocket (blocking, each step at most
    /// `timeout`), then registers the socket with `registry`.
    pub fn open(
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
        })
    }

    pub fn close(mut self, registry: &Registry) {
        // Deregistering a socket that is about to be closed cannot usefully fail.
        let _ = registry.deregister(&mut self.stream);
    }

    /// Writes what is left of `request`; `true` once all of it is out. Call again with the
    /// same request after a `false` when the socket is writable.
    pub fn write(&mut self, request: &[u8]) -> io::Result<bool> {
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
    /// 200). Anything else is an `InvalidData` error.
    pub fn read_reply(&mut self) -> io::Result<Option<Reply<'_>>> {
        self.discard_consumed();
        loop {
            if self.head.is_none() {
                self.head = self.parse()?;
            }
            if let Some(head) = self.head {
                if self.filled >= head.end {
                    self.consumed = head.end;
                    return Ok(Some(Reply {
                        status: head.status,
                        body: &self.buf[head.body_start..head.end],
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
    let length = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| {
            std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        })
        .ok_or_else(|| io::Error::new(ErrorKind::InvalidData, "reply without Content-Length"))?;
    Ok(Some(Head {
        status: response.code.unwrap_or(0),
        body_start,
        end: body_start + length,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_gives_status_and_framing() {
        let reply = b"HTTP/1.1 415 Unsupported\r\ncontent-length: 3\r\n\r\nabc";
        let head = parse_head(reply).unwrap().unwrap();
        assert_eq!((head.status, head.body_start, head.end), (415, 47, 50));
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Le")
            .unwrap()
            .is_none());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn reads_replies_back_to_back_over_a_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let poll = mio::Poll::new().unwrap();
        let mut conn = Connection::open(
            addr,
            Duration::from_secs(1),
            None,
            poll.registry(),
            Token(0),
        )
        .unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let big = "x".repeat(40_000);
        for body in ["hello", big.as_str()] {
            assert!(conn.write(b"GET / HTTP/1.1\r\n\r\n").unwrap());
            let mut got = [0u8; 18];
            server.read_exact(&mut got).unwrap();
            write!(
                server,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            let reply = loop {
                if let Some(r) = conn.read_reply().unwrap() {
                    break (r.status, r.body.to_vec());
                }
            };
            assert_eq!(reply, (200, body.as_bytes().to_vec()));
        }
    }
}
