//! A tiny HTTP/1.1 client over `std::net::TcpStream`: requests are plain bytes built by
//! [`request`], replies are read by [`Client::read_reply`] (status line, headers, and a
//! `Content-Length` body), so a test controls every byte on the wire.

use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A read that waits this long has found a hung server, not a slow one.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// `METHOD path HTTP/1.1` with a `Host`, the given headers, and `Content-Length` when there is a
/// body or the method is POST, unless `headers` frame the body themselves.
pub(crate) fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    let framed = headers.iter().any(|(name, _)| {
        name.eq_ignore_ascii_case("Content-Length")
            || name.eq_ignore_ascii_case("Transfer-Encoding")
    });
    if !framed && (!body.is_empty() || method == "POST") {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// `POST path` with `Content-Type: application/json`.
pub(crate) fn post_request(path: &str, body: &str) -> Vec<u8> {
    request(
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

/// `GET path`.
pub(crate) fn get_request(path: &str) -> Vec<u8> {
    request("GET", path, &[], b"")
}

/// One HTTP response.
#[derive(Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("Reply")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .finish()
    }
}

impl Reply {
    /// The first header named `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("the body is UTF-8")
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {:?}", self.text()))
    }

    /// The server closes the connection after this reply.
    pub(crate) fn closes(&self) -> bool {
        self.header("Connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// One connection; bytes read past a reply are kept for the next one (pipelining).
pub(crate) struct Client {
    stream: TcpStream,
    pending: Vec<u8>,
}

impl Client {
    pub(crate) fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("the server accepts a connection");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("read timeout");
        Client {
            stream,
            pending: Vec::new(),
        }
    }

    /// Writes `bytes` in one `write_all`.
    pub(crate) fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("the request is sent");
    }

    /// Half-closes the connection: the server reads end-of-stream after what was sent.
    pub(crate) fn shutdown_write(&mut self) {
        self.stream
            .shutdown(std::net::Shutdown::Write)
            .expect("shutdown");
    }

    /// Writes `bytes` in pieces of `piece_len`, `pause` apart, so they arrive in several reads.
    pub(crate) fn send_in_pieces(&mut self, bytes: &[u8], piece_len: usize, pause: Duration) {
        for piece in bytes.chunks(piece_len) {
            self.send(piece);
            std::thread::sleep(pause);
        }
    }

    pub(crate) fn post(&mut self, path: &str, body: &str) -> Reply {
        self.send(&post_request(path, body));
        self.read_reply()
    }

    pub(crate) fn get(&mut self, path: &str) -> Reply {
        self.send(&get_request(path));
        self.read_reply()
    }

    /// Reads one response: a `1xx` has no body; any other must carry `Content-Length`.
    pub(crate) fn read_reply(&mut self) -> Reply {
        self.read_reply_with_body(true)
    }

    /// Reads the response to a `HEAD`: its head only, whatever its `Content-Length` says.
    pub(crate) fn read_head_reply(&mut self) -> Reply {
        self.read_reply_with_body(false)
    }

    fn read_reply_with_body(&mut self, with_body: bool) -> Reply {
        let head_len = loop {
            if let Some(end) = find(&self.pending, b"\r\n\r\n") {
                break end + 4;
            }
            self.fill("a reply head");
        };
        let head = std::str::from_utf8(&self.pending[..head_len])
            .expect("the reply head is ASCII")
            .to_owned();
        let mut lines = head.trim_end().split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP/1.1 status line: {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .map(|line| {
                let (name, value) = line
                    .split_once(':')
                    .unwrap_or_else(|| panic!("not a header: {line:?}"));
                (name.to_owned(), value.trim().to_owned())
            })
            .collect();
        let mut reply = Reply {
            status,
            headers,
            body: Vec::new(),
        };
        let body_len = if !with_body || (100..200).contains(&status) {
            0
        } else {
            reply
                .header("Content-Length")
                .unwrap_or_else(|| panic!("a reply without Content-Length: {head:?}"))
                .parse()
                .expect("Content-Length is a number")
        };
        while self.pending.len() < head_len + body_len {
            self.fill("a reply body");
        }
        reply.body = self.pending[head_len..head_len + body_len].to_vec();
        self.pending.drain(..head_len + body_len);
        reply
    }

    /// Reads until the server closes the connection, for at most `within`; returns what
    /// arrived meanwhile. Panics if the connection is still open after `within`.
    pub(crate) fn read_until_closed(&mut self, within: Duration) -> Vec<u8> {
        let deadline = Instant::now() + within;
        let mut received = std::mem::take(&mut self.pending);
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the connection is still open after {within:?}"
            );
            self.stream
                .set_read_timeout(Some(left))
                .expect("read timeout");
            match self.stream.read(&mut chunk) {
                Ok(0) => return received,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return received,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("reading failed: {e}"),
            }
        }
    }

    /// Asserts that the server closes the connection (within 10 s) without sending more.
    pub(crate) fn assert_closed(&mut self) {
        let rest = self.read_until_closed(Duration::from_secs(10));
        assert!(
            rest.is_empty(),
            "unexpected bytes before the close: {:?}",
            String::from_utf8_lossy(&rest)
        );
    }

    fn fill(&mut self, what: &str) {
        let mut chunk = [0u8; 64 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => panic!(
                "the server closed the connection while the test read {what}; unread: {:?}",
                String::from_utf8_lossy(&self.pending)
            ),
            Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("reading {what} failed: {e}"),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
