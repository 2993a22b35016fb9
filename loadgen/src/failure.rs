//! Why one request failed. Failures are counted by kind and never enter the latency figures.

use std::fmt;
use std::io::{self, ErrorKind};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Failure {
    /// The reply's HTTP status was not 200.
    Http(u16),
    /// HTTP 200, but the Java `responseStatus` was not `success`: its status and error code
    /// (for `partial_fail`, the first failed instance's error code).
    Status { status: String, code: String },
    /// The reply was not HTTP/1.1 with a Content-Length, had a gzip body that did not inflate,
    /// or had no `responseStatus`.
    Malformed,
    /// The connection could not be opened.
    Connect,
    /// The connection broke while the request was in flight.
    Io,
    /// No reply within the request timeout.
    Timeout,
}

impl Failure {
    /// Why a reply could not be read: it was malformed (`InvalidData`, see
    /// `Connection::read_reply`), or the connection broke.
    pub fn of_read(error: &io::Error) -> Failure {
        match error.kind() {
            ErrorKind::InvalidData => Failure::Malformed,
            _ => Failure::Io,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Http(code) => write!(f, "http {code}"),
            Failure::Status { status, code } => write!(f, "{status}: {code}"),
            Failure::Malformed => f.write_str("malformed reply"),
            Failure::Connect => f.write_str("connect error"),
            Failure::Io => f.write_str("io error"),
            Failure::Timeout => f.write_str("timeout"),
        }
    }
}
