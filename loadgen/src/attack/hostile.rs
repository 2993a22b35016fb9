//! One hostile connection: a nonblocking socket that connects without holding up the thread,
//! sends what its kind sends, drains whatever the server answers, and notices when the server
//! closes it.

use super::outcome::status_of;
use crate::clock::Nanos;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;

/// Bytes that hold an HTTP status line's `HTTP/1.1 NNN`.
const STATUS_LINE: usize = 12;

pub(super) struct Hostile {
    stream: TcpStream,
    /// When the connection was established; `None` while it is connecting.
    opened_at: Option<Nanos>,
    /// Bytes sent so far in this life.
    pub sent: u64,
    /// The first bytes the server sent in this life, up to a status line.
    first: [u8; STATUS_LINE],
    first_len: usize,
    /// The first reply has been counted.
    replied: bool,
}

/// What draining a connection found.
pub(super) struct Drained {
    /// The first reply of the connection's life, once its status line is in (`None` inside:
    /// not HTTP).
    pub reply: Option<Option<u16>>,
    /// The server closed the connection (end of stream or reset).
    pub closed: bool,
}

impl Hostile {
    /// Starts connecting; the connection is established when [`Hostile::established`] says so.
    pub(super) fn connect(
        addr: SocketAddr,
        registry: &Registry,
        token: Token,
    ) -> io::Result<Hostile> {
        let mut stream = TcpStream::connect(addr)?;
        registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
        Ok(Hostile {
            stream,
            opened_at: None,
            sent: 0,
            first: [0; STATUS_LINE],
            first_len: 0,
            replied: false,
        })
    }

    pub(super) fn is_open(&self) -> bool {
        self.opened_at.is_some()
    }

    /// After a readiness event while connecting: `true` once established, `false` while still
    /// connecting, an error when the attempt failed.
    pub(super) fn established(&mut self, now: Nanos) -> io::Result<bool> {
        if let Some(e) = self.stream.take_error()? {
            return Err(e);
        }
        match self.stream.peer_addr() {
            Ok(_) => {
                self.opened_at = Some(now);
                Ok(true)
            }
            Err(e) if e.kind() == ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// How long the connection has been open.
    pub(super) fn lifetime(&self, now: Nanos) -> Nanos {
        self.opened_at.map_or(0, |at| now.saturating_sub(at))
    }

    /// Writes what the socket takes of `bytes` and returns how much that was; an error means
    /// the server has closed the connection.
    pub(super) fn send(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self.stream.write(bytes) {
            Ok(n) => {
                self.sent += n as u64;
                Ok(n)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Reads everything that has arrived, keeping only the first reply's status line.
    pub(super) fn drain(&mut self, scratch: &mut [u8]) -> Drained {
        let closed = loop {
            match self.stream.read(scratch) {
                Ok(0) => break true,
                Ok(n) => {
                    let take = n.min(STATUS_LINE - self.first_len);
                    self.first[self.first_len..self.first_len + take]
                        .copy_from_slice(&scratch[..take]);
                    self.first_len += take;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break true,
            }
        };
        // A status line is judged once whole, or with what there is when the connection ends.
        let judged = self.first_len == STATUS_LINE || (closed && self.first_len > 0);
        let reply = (judged && !self.replied).then(|| status_of(&self.first[..self.first_len]));
        self.replied |= judged;
        Drained { reply, closed }
    }

    pub(super) fn close(mut self, registry: &Registry) {
        // The socket is dropped right after; a failed deregistration changes nothing.
        let _ = registry.deregister(&mut self.stream);
    }
}
