//! The seam between the network and everything above it.
//!
//! Connection handling needs only a few things from a transport: accept a connection, read more
//! bytes into the connection's buffer, write a batch of replies in one go (large shared bytes
//! sent from where they are, see [`Output`]), and hand a connection over to another core (a
//! WebSocket heartbeat session moves to the core that owns its instances). HTTP, routing and
//! shards sit above this seam, so the two transports — glommio's `TcpStream` and a ring of our
//! own (`uring`) — serve the very same connection loop, and `--io` picks one.

pub(crate) mod glommio_tcp;
mod output;
pub(crate) mod uring;

pub use output::Output;
pub(crate) use output::{Shareable, SharedBytes};

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// Which transport carries the connections (`--io`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Io {
    /// A ring of our own per core: multishot accept and receive, provided buffers, batched sends.
    Uring,
    /// glommio's own `TcpListener`/`TcpStream`.
    Glommio,
}

/// Connections that may wait to be accepted, per listening socket (glommio's figure).
const BACKLOG: i32 = 1024;

/// A socket listening on `addr` for one core: with `SO_REUSEPORT`, so that every core listens
/// on the same address, and `SO_REUSEADDR`, so that a server restarted at once binds its address
/// again while the connections of the one before (its peers' keep-alive connections, say) wait
/// out `TIME_WAIT`. Linux still refuses an address another socket listens on.
fn listening_socket(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_port(true)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket)
}

/// A listening socket of one core.
pub(crate) trait Listener {
    type Conn: Connection + 'static;
    /// The address it listens on (the port resolved when bound to port 0).
    fn local_addr(&self) -> io::Result<SocketAddr>;
    /// Waits for the next connection.
    async fn accept(&self) -> io::Result<Self::Conn>;
    /// Serves on this core a connection that another core released (see
    /// [`Connection::release`]).
    fn adopt(&self, socket: OwnedFd) -> io::Result<Self::Conn>;
}

/// One accepted connection, owned by the core that accepted it.
pub trait Connection {
    /// The address the peer connected from (IPv4-mapped IPv6 addresses as IPv4), if known.
    fn peer_ip(&self) -> Option<IpAddr>;
    /// Appends newly arrived bytes to `buf` and returns how many; 0 means the peer closed.
    /// Fails with `TimedOut` when nothing arrives within `timeout`. If the future is dropped
    /// first, bytes that had already arrived may be in `buf` all the same.
    async fn read_into(&mut self, buf: &mut ReadBuffer, timeout: Duration) -> io::Result<usize>;
    /// Writes all of `output` (every reply of one batch) before returning, and leaves it empty;
    /// fails with `TimedOut` when the peer has not taken all of it within `timeout` (the
    /// connection should then be dropped: what was left unsent goes with it). A transport may
    /// keep the buffer itself while the kernel sends from it, and hands it back when done; if
    /// the future is dropped first, the buffer stays with the transport.
    async fn write_all(&mut self, output: &mut Output, timeout: Duration) -> io::Result<()>;
    /// Lets go of the socket so that another core can serve it: waits until this core has no
    /// operation in flight on it, then appends to `buf` every byte received and not yet read.
    /// A connection whose peer has already closed, or that failed, is given back instead.
    async fn release(self, buf: &mut ReadBuffer) -> Result<OwnedFd, Self>
    where
        Self: Sized;
}

/// A connection's input buffer: bytes received and not yet consumed by the HTTP layer.
///
/// The backing vector stays initialised up to its length, so reading more never re-zeroes memory.
/// Once a large request has been consumed whole its memory goes back, so a connection waiting for
/// its next request holds little.
#[derive(Default)]
pub struct ReadBuffer {
    bytes: Vec<u8>,
    filled: usize,
}

impl ReadBuffer {
    /// The received, unconsumed bytes.
    pub fn filled_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[..self.filled]
    }

    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// How many received bytes are unconsumed.
    pub fn len(&self) -> usize {
        self.filled
    }

    /// Appends received bytes.
    pub fn append(&mut self, bytes: &[u8]) {
        self.spare(bytes.len())[..bytes.len()].copy_from_slice(bytes);
        self.advance(bytes.len());
    }

    /// Drops the first `n` received bytes (requests already answered); a buffer grown past
    /// [`INPUT_KEPT`] that this empties gives its memory back.
    pub fn consume(&mut self, n: usize) {
        self.bytes.copy_within(n..self.filled, 0);
        self.filled -= n;
        if self.filled == 0 && self.bytes.len() > INPUT_KEPT {
            self.bytes = Vec::new();
        }
    }

    /// Free space of at least `min` bytes after the received ones, to read into.
    pub fn spare(&mut self, min: usize) -> &mut [u8] {
        if self.bytes.len() - self.filled < min {
            self.bytes.resize(self.filled + min, 0);
        }
        &mut self.bytes[self.filled..]
    }

    /// Marks `n` bytes of the spare space as received.
    pub fn advance(&mut self, n: usize) {
        self.filled += n;
    }
}

/// The most an empty input buffer keeps allocated.
const INPUT_KEPT: usize = 16 * 1024;

#[cfg(test)]
mod tests {
    use super::ReadBuffer;

    #[test]
    fn read_buffer_keeps_unconsumed_bytes() {
        let mut buf = ReadBuffer::default();
        buf.spare(4)[..4].copy_from_slice(b"abcd");
        buf.advance(4);
        buf.consume(1);
        assert_eq!(buf.filled_mut(), b"bcd");
        buf.spare(2)[..2].copy_from_slice(b"ef");
        buf.advance(2);
        assert_eq!(buf.filled_mut(), b"bcdef");
        buf.consume(5);
        assert!(buf.is_empty());
        buf.append(b"gh");
        assert_eq!(buf.len(), 2);
        assert_eq!(buf.filled_mut(), b"gh");
    }

    #[test]
    fn a_consumed_large_buffer_gives_its_memory_back() {
        let mut buf = ReadBuffer::default();
        buf.append(&[1; 40_000]);
        buf.consume(39_000);
        assert_eq!(buf.len(), 1_000, "unconsumed bytes stay");
        buf.consume(1_000);
        assert_eq!(buf.spare(0).len(), 0);
        buf.append(b"small");
        buf.consume(5);
        assert!(buf.spare(0).len() >= 5, "a small buffer is kept");
    }
}
