//! The one HTTP call a management command makes: a minimal blocking HTTP/1.1 client over
//! `std::net::TcpStream`.
//!
//! The CLI makes one request and exits, so it needs neither a runtime nor a connection pool;
//! the SDK (`artemis-client`) is async on tokio and its HTTP layer is private. Plain `http://`
//! only, `Connection: close`, the body read to the end (by `Content-Length`, or chunked).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Most bytes of a reply read: a management view of a large registry is big, not unbounded.
const MAX_REPLY: u64 = 512 << 20;

/// Where the server is: `http://host[:port][/prefix]`.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    host: String,
    port: u16,
    prefix: String,
}

impl Endpoint {
    pub(crate) fn parse(url: &str) -> Result<Endpoint, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("--server {url}: only http:// URLs are supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => {
                let port = port
                    .parse()
                    .map_err(|_| format!("--server {url}: bad port {port:?}"))?;
                (host, port)
            }
            _ => (authority, 80),
        };
        if host.is_empty() {
            return Err(format!("--server {url}: no host"));
        }
        Ok(Endpoint {
            host: host.to_string(),
            port,
            prefix: path.trim_end_matches('/').to_string(),
        })
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}:{}{}{path}", self.host, self.port, self.prefix)
    }
}

/// What went wrong with a call.
#[derive(Debug)]
pub(crate) enum CallError {
    /// No answer: connection refused, timed out, closed early.
    Unreachable(String),
    /// An answer that is not HTTP/1.1 as expected.
    Garbled(String),
}

/// An answer: the status code and the body.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

/// `POST prefix/path` with a JSON `body`, the token as `Authorization: Bearer`.
pub(crate) fn post(
    endpoint: &Endpoint,
    path: &str,
    body: &str,
    token: Option<&str>,
) -> Result<Reply, CallError> {
    let url = endpoint.url(path);
    let unreachable = |e: std::io::Error| CallError::Unreachable(format!("{url}: {e}"));
    let host = endpoint.host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<_> = (host, endpoint.port)
        .to_socket_addrs()
        .map_err(unreachable)?
        .collect();
    let mut last = None;
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let mut stream = match stream {
        Some(s) => s,
        None => {
            let e = last.unwrap_or_else(|| std::io::Error::other("no address"));
            return Err(unreachable(e));
        }
    };
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .map_err(unreachable)?;
    stream
        .set_write_timeout(Some(IO_TIMEOUT))
        .map_err(unreachable)?;
    let mut head = format!(
        "POST {}{path} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: artemis-cli/{}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        endpoint.prefix,
        endpoint.host,
        endpoint.port,
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body.as_bytes());
    stream.write_all(&request).map_err(unreachable)?;
    let mut raw = Vec::new();
    (&mut stream)
        .take(MAX_REPLY)
        .read_to_end(&mut raw)
        .map_err(unreachable)?;
    parse_reply(&raw).map_err(|why| match raw.is_empty() {
        true => CallError::Unreachable(format!("{url}: closed without an answer")),
        false => CallError::Garbled(format!("{url}: {why}")),
    })
}

fn parse_reply(raw: &[u8]) -> Result<Reply, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("an incomplete HTTP head")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "a head that is not UTF-8")?;
    let rest = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("a bad status line {status_line:?}"))?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    let body = if chunked {
        dechunk(rest)?
    } else {
        match length {
            Some(n) if n <= rest.len() => rest[..n].to_vec(),
            Some(_) => return Err("a body shorter than its Content-Length".into()),
            None => rest.to_vec(),
        }
    };
    Ok(Reply { status, body })
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("an incomplete chunk")?;
        let size = std::str::from_utf8(&rest[..eol]).unwrap_or("");
        let size = size.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| "a bad chunk size")?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size + 2 {
            return Err("an incomplete chunk".into());
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_replies_parse() {
        let e = Endpoint::parse("http://10.0.0.1:9090/artemis/").unwrap();
        assert_eq!(e.url("/api/x"), "http://10.0.0.1:9090/artemis/api/x");
        assert_eq!(Endpoint::parse("http://h").unwrap().port, 80);
        assert!(Endpoint::parse("https://h").is_err());
        assert!(Endpoint::parse("http://h:x").is_err());
        let r = parse_reply(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"{}"[..]));
        let r = parse_reply(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, b"{}");
    }
}
