//! Request bytes for one endpoint: for HTTP/1.1 the request line is built once per scenario and
//! each request appends the headers of the connection's target, its length or query and its
//! body; on a WebSocket connection a request is the body in one text frame. The headers belong
//! to the connection, not the scenario, so that one workload can feed connections to several
//! targets (`--targets`), each request naming its own `Host`.

use crate::websocket;
use std::io::Write;

/// The header lines every HTTP request of a run carries after its request line: `Host`, and
/// `Accept-Encoding: gzip` when the run asks for compressed replies, as Java clients do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Headers(String);

impl Headers {
    pub(crate) fn new(host: &str, accept_gzip: bool) -> Headers {
        let accept = if accept_gzip {
            "Accept-Encoding: gzip\r\n"
        } else {
            ""
        };
        Headers(format!("Host: {host}\r\n{accept}"))
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    payload: Payload,
    /// What comes before the headers: the request line of a POST, the request line up to the
    /// query of a GET.
    head: Vec<u8>,
}

/// The POST headers after the connection's own, up to the body's length.
const POST_HEADERS: &[u8] = b"Content-Type: application/json\r\nContent-Length: ";

/// What `write` takes.
#[derive(Clone, Copy, Debug)]
enum Payload {
    /// The body of a POST.
    Body,
    /// The query string of a GET.
    Query,
    /// The text of a WebSocket frame.
    Frame,
}

impl Endpoint {
    /// A JSON POST to `path`; `write` takes the body.
    pub(crate) fn post(path: &str) -> Endpoint {
        Endpoint {
            payload: Payload::Body,
            head: format!("POST {path} HTTP/1.1\r\n").into_bytes(),
        }
    }

    /// A GET of `path`; `write` takes the query string.
    pub(crate) fn get(path: &str) -> Endpoint {
        Endpoint {
            payload: Payload::Query,
            head: format!("GET {path}?").into_bytes(),
        }
    }

    /// A text frame on an upgraded connection; `write` takes the text.
    pub(crate) fn frame() -> Endpoint {
        Endpoint {
            payload: Payload::Frame,
            head: vec![],
        }
    }

    /// Appends the whole request to `out`, with `headers` (the connection's; a frame has
    /// none): `payload` is the body of a POST, the query of a GET or the text of a frame.
    pub(crate) fn write(&self, headers: &Headers, payload: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&self.head);
        match self.payload {
            Payload::Body => {
                out.extend_from_slice(headers.0.as_bytes());
                out.extend_from_slice(POST_HEADERS);
                write!(out, "{}", payload.len()).expect("writing to a Vec cannot fail");
                out.extend_from_slice(b"\r\n\r\n");
                out.extend_from_slice(payload);
            }
            Payload::Query => {
                out.extend_from_slice(payload);
                out.extend_from_slice(b" HTTP/1.1\r\n");
                out.extend_from_slice(headers.0.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Payload::Frame => websocket::write_text(payload, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_carries_content_type_and_length() {
        let mut out = vec![];
        Endpoint::post("/api/registry/register.json").write(
            &Headers::new("h:1", false),
            b"{}",
            &mut out,
        );
        assert_eq!(
            out,
            b"POST /api/registry/register.json HTTP/1.1\r\nHost: h:1\r\n\
              Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        );
    }

    #[test]
    fn get_carries_the_query() {
        let mut out = vec![];
        Endpoint::get("/api/discovery/service.json").write(
            &Headers::new("h", false),
            b"serviceId=a",
            &mut out,
        );
        assert_eq!(
            out,
            b"GET /api/discovery/service.json?serviceId=a HTTP/1.1\r\nHost: h\r\n\r\n"
        );
    }

    #[test]
    fn gzip_is_accepted_only_when_asked_for() {
        let gzip = Headers::new("h", true);
        let mut post = vec![];
        Endpoint::post("/p").write(&gzip, b"{}", &mut post);
        assert_eq!(
            post,
            b"POST /p HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip\r\n\
              Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        );
        let mut get = vec![];
        Endpoint::get("/g").write(&gzip, b"q=1", &mut get);
        assert_eq!(
            get,
            b"GET /g?q=1 HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip\r\n\r\n"
        );
        let plain = Headers::new("h", false);
        for endpoint in [Endpoint::post("/p"), Endpoint::get("/g")] {
            let mut out = vec![];
            endpoint.write(&plain, b"x", &mut out);
            assert!(!String::from_utf8(out).unwrap().contains("Accept-Encoding"));
        }
    }
}
