//! Request bytes for one endpoint: for HTTP/1.1 the constant part is built once per scenario and
//! each request only appends its length or query and its body; on a WebSocket connection a
//! request is the body in one text frame.

use crate::websocket;
use std::io::Write;

#[derive(Clone, Debug)]
pub struct Endpoint {
    payload: Payload,
    head: Vec<u8>,
    tail: Vec<u8>,
}

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
    pub fn post(host: &str, path: &str) -> Endpoint {
        Endpoint {
            payload: Payload::Body,
            head: format!(
                "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
                 Content-Length: "
            )
            .into_bytes(),
            tail: b"\r\n\r\n".to_vec(),
        }
    }

    /// A GET of `path`; `write` takes the query string.
    pub fn get(host: &str, path: &str) -> Endpoint {
        Endpoint {
            payload: Payload::Query,
            head: format!("GET {path}?").into_bytes(),
            tail: format!(" HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes(),
        }
    }

    /// A text frame on an upgraded connection; `write` takes the text.
    pub fn frame() -> Endpoint {
        Endpoint {
            payload: Payload::Frame,
            head: vec![],
            tail: vec![],
        }
    }

    /// Appends the whole request to `out`: `payload` is the body of a POST, the query of a GET
    /// or the text of a frame.
    pub fn write(&self, payload: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&self.head);
        match self.payload {
            Payload::Body => {
                write!(out, "{}", payload.len()).expect("writing to a Vec cannot fail");
                out.extend_from_slice(&self.tail);
                out.extend_from_slice(payload);
            }
            Payload::Query => {
                out.extend_from_slice(payload);
                out.extend_from_slice(&self.tail);
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
        Endpoint::post("h:1", "/api/registry/register.json").write(b"{}", &mut out);
        assert_eq!(
            out,
            b"POST /api/registry/register.json HTTP/1.1\r\nHost: h:1\r\n\
              Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        );
    }

    #[test]
    fn get_carries_the_query() {
        let mut out = vec![];
        Endpoint::get("h", "/api/discovery/service.json").write(b"serviceId=a", &mut out);
        assert_eq!(
            out,
            b"GET /api/discovery/service.json?serviceId=a HTTP/1.1\r\nHost: h\r\n\r\n"
        );
    }
}
