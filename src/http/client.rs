//! This server as an HTTP/1.1 client of its peers: status polls, replication batches, the join
//! copy and digests go out over one keep-alive connection per peer and core, on the core's own
//! executor, so no second runtime or thread pool is involved.
//!
//! A request is a JSON POST whose body is sent gzipped, as Java's nodes send theirs; a reply may
//! come gzipped or chunked and is inflated within the same bound a request body has. One
//! request is in flight per connection at a time. A connection that failed, timed out or was
//! closed by the peer is dropped and the next request opens a new one. Where to connect is an
//! [`Address`] that may change while the client lives (a host name resolved again): a keep-alive
//! connection to an address no longer current is dropped before the next request.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::body::{self, Framing};
use super::{gzip, headers, HttpError, Limits};
use crate::transport::glommio_tcp::GlommioConnection;
use crate::transport::{Connection, Output, ReadBuffer};

/// Most headers a reply may carry.
const MAX_HEADERS: usize = 32;

/// A reply from a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientReply {
    pub status: u16,
    /// Inflated when it came gzipped.
    pub body: Vec<u8>,
}

/// Why a request got no reply.
#[derive(Debug)]
pub(crate) enum ClientError {
    /// No connection could be opened.
    Connect(io::Error),
    /// The connection failed or closed before the whole reply came.
    Io(io::Error),
    /// The reply did not come within the timeout.
    TimedOut,
    /// The bytes that came are not an HTTP reply, or too large.
    Malformed(&'static str),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect(e) => write!(f, "cannot connect: {e}"),
            ClientError::Io(e) => write!(f, "connection failed: {e}"),
            ClientError::TimedOut => write!(f, "no reply in time"),
            ClientError::Malformed(why) => write!(f, "malformed reply: {why}"),
        }
    }
}

/// Where a client connects, set again by whoever resolves it (`None`: it does not resolve now).
/// Read once per request; written rarely, from any thread.
#[derive(Debug, Default)]
pub(crate) struct Address(RwLock<Option<SocketAddr>>);

impl Address {
    pub(crate) fn new(addr: Option<SocketAddr>) -> Address {
        Address(RwLock::new(addr))
    }

    pub(crate) fn get(&self) -> Option<SocketAddr> {
        *self.0.read().expect("no holder panics")
    }

    /// Sets it; whether that changed it.
    pub(crate) fn set(&self, addr: Option<SocketAddr>) -> bool {
        let mut current = self.0.write().expect("no holder panics");
        std::mem::replace(&mut *current, addr) != addr
    }
}

/// One peer's keep-alive connection, opened when needed.
pub(crate) struct HttpClient {
    address: Arc<Address>,
    /// `host[:port]` for the `Host` header.
    authority: String,
    timeout: Duration,
    /// Largest reply body, inflated.
    max_body: usize,
    /// `Authorization: Bearer ...` sent with every request, if any.
    bearer: Option<String>,
    /// The open connection and the address it was opened to.
    conn: Option<(GlommioConnection, SocketAddr)>,
    input: ReadBuffer,
    output: Output,
}

impl HttpClient {
    pub(crate) fn new(
        address: Arc<Address>,
        authority: String,
        timeout: Duration,
        max_body: usize,
        bearer: Option<String>,
    ) -> HttpClient {
        HttpClient {
            address,
            authority,
            timeout,
            max_body,
            bearer,
            conn: None,
            input: ReadBuffer::default(),
            output: Output::default(),
        }
    }

    /// POSTs `json` (gzipped) to `path` and waits for the whole reply, within the timeout for
    /// connecting and again for the exchange. A failed exchange drops the connection.
    pub(crate) async fn post_json(
        &mut self,
        path: &str,
        json: &[u8],
    ) -> Result<ClientReply, ClientError> {
        self.post_packed(path, &pack(json)).await
    }

    /// [`HttpClient::post_json`] of a body already [`pack`]ed.
    pub(crate) async fn post_packed(
        &mut self,
        path: &str,
        packed: &[u8],
    ) -> Result<ClientReply, ClientError> {
        let result = self.exchange(path, packed).await;
        if result.is_err() {
            self.conn = None;
            self.input = ReadBuffer::default();
        }
        result
    }

    async fn exchange(&mut self, path: &str, packed: &[u8]) -> Result<ClientReply, ClientError> {
        let addr = self.address.get().ok_or_else(|| {
            let why = io::Error::new(io::ErrorKind::NotFound, "the address does not resolve");
            ClientError::Connect(why)
        })?;
        if self.conn.as_ref().is_some_and(|(_, to)| *to != addr) {
            self.conn = None;
            self.input = ReadBuffer::default();
        }
        if self.conn.is_none() {
            let conn = GlommioConnection::connect(addr, self.timeout)
                .await
                .map_err(ClientError::Connect)?;
            self.conn = Some((conn, addr));
        }
        write_request(
            &mut self.output,
            &self.authority,
            path,
            self.bearer.as_deref(),
            packed,
        );
        let (conn, _) = self.conn.as_mut().expect("connected above");
        let deadline = std::time::Instant::now() + self.timeout;
        conn.write_all(&mut self.output, self.timeout)
            .await
            .map_err(failed)?;
        loop {
            if let Some((reply, len, keep_alive)) =
                parse_reply(self.input.filled_mut(), self.max_body)?
            {
                self.input.consume(len);
                if !keep_alive {
                    self.conn = None;
                }
                return Ok(reply);
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(ClientError::TimedOut);
            }
            if conn
                .read_into(&mut self.input, left)
                .await
                .map_err(failed)?
                == 0
            {
                return Err(ClientError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }
}

/// A failed read or write: past the exchange's deadline, or an I/O error.
fn failed(e: io::Error) -> ClientError {
    match e.kind() {
        io::ErrorKind::TimedOut => ClientError::TimedOut,
        _ => ClientError::Io(e),
    }
}

/// A request body as it is sent: the JSON gzipped.
pub(crate) fn pack(json: &[u8]) -> Vec<u8> {
    gzip::gzip(&[json.into()])
}

/// Appends a POST of a [`pack`]ed JSON body, as a Java node sends it.
fn write_request(
    out: &mut Vec<u8>,
    authority: &str,
    path: &str,
    bearer: Option<&str>,
    packed: &[u8],
) {
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(authority.as_bytes());
    out.extend_from_slice(
        b"\r\nContent-Type: application/json\r\nAccept: application/json\r\n\
          Accept-Encoding: gzip\r\nContent-Encoding: gzip\r\nConnection: keep-alive\r\n",
    );
    if let Some(token) = bearer {
        out.extend_from_slice(b"Authorization: Bearer ");
        out.extend_from_slice(token.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", packed.len()).as_bytes());
    out.extend_from_slice(packed);
}

/// The reply at the start of `buf`: `Some((reply, bytes it took, keep-alive))` once all of it is
/// there.
fn parse_reply(
    buf: &[u8],
    max_body: usize,
) -> Result<Option<(ClientReply, usize, bool)>, ClientError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Response::new(&mut fields);
    let head_len = match head.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(ClientError::Malformed("not an HTTP/1.1 reply")),
    };
    let status = head.code.unwrap_or(0);
    let mut framing = Framing::Length(0);
    let (mut gzipped, mut keep_alive) = (false, head.version == Some(1));
    for field in head.headers.iter() {
        let (name, value) = (field.name.as_bytes(), field.value);
        if name.eq_ignore_ascii_case(b"content-length") {
            let len = headers::content_length(value)
                .ok_or(ClientError::Malformed("bad Content-Length"))?;
            framing = Framing::Length(len);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            framing = Framing::Chunked;
        } else if name.eq_ignore_ascii_case(b"content-encoding") {
            gzipped = headers::is_gzip(value.trim_ascii());
        } else if name.eq_ignore_ascii_case(b"connection") {
            keep_alive &= !headers::has_item(value, "close");
        }
    }
    let limits = Limits {
        max_head: usize::MAX,
        max_body,
    };
    let framed = body::frame(buf, head_len, framing, &limits).map_err(|e| match e {
        HttpError::BodyTooLarge => ClientError::Malformed("reply body too large"),
        _ => ClientError::Malformed("bad body framing"),
    })?;
    let Some((body, end)) = framed else {
        return Ok(None);
    };
    let mut body = body.bytes(buf).to_vec();
    if gzipped {
        body =
            gzip::gunzip(&body, max_body).map_err(|_| ClientError::Malformed("bad gzip body"))?;
    }
    Ok(Some((ClientReply { status, body }, end, keep_alive)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_a_gzipped_json_post() {
        let mut out = Vec::new();
        let packed = pack(b"{}");
        write_request(&mut out, "h:1", "/api/status/node.json", Some("t"), &packed);
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("POST /api/status/node.json HTTP/1.1\r\nHost: h:1\r\n"));
        assert!(text.contains("Content-Encoding: gzip\r\n"));
        assert!(text.contains("Authorization: Bearer t\r\n"));
        let body_at = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert_eq!(gzip::gunzip(&out[body_at..], 100).unwrap(), b"{}");
    }

    #[test]
    fn replies_are_read_whole_whatever_their_framing() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}rest";
        let (reply, len, keep) = parse_reply(plain, 100).unwrap().unwrap();
        assert_eq!(
            (reply.status, &reply.body[..], len, keep),
            (200, &b"{}"[..], plain.len() - 4, true)
        );
        assert!(parse_reply(&plain[..plain.len() - 5], 100)
            .unwrap()
            .is_none());

        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n1\r\n{\r\n1\r\n}\r\n0\r\n\r\n";
        let (reply, _, keep) = parse_reply(chunked, 100).unwrap().unwrap();
        assert_eq!((&reply.body[..], keep), (&b"{}"[..], false));

        let packed = gzip::gzip(&[b"{\"a\":1}".as_slice().into()]);
        let mut gz = format!(
            "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            packed.len()
        )
        .into_bytes();
        gz.extend_from_slice(&packed);
        assert_eq!(parse_reply(&gz, 100).unwrap().unwrap().0.body, b"{\"a\":1}");

        assert!(matches!(
            parse_reply(b"garbage\r\n\r\n", 100),
            Err(ClientError::Malformed(_))
        ));
        let big = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
        assert!(matches!(
            parse_reply(big, 100),
            Err(ClientError::Malformed(_))
        ));
    }
}
