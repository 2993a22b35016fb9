//! The transport on a ring of our own per core (`--io=uring`): the seam's listener and
//! connection on top of [`ring::Ring`].
//!
//! The listening socket is an ordinary `SO_REUSEPORT` socket; everything after `listen` goes
//! through the ring. A read parks the connection's buffer with the ring and waits for the
//! multishot receive to fill it, racing its deadline (`deadlines.rs`); a write hands the buffer of
//! replies to the ring's keeping and gets it back once the send has completed, or gives up at its
//! deadline.

mod buffers;
mod conn;
mod deadlines;
mod ring;
#[cfg(test)]
mod tests;

use std::future::{poll_fn, Future};
use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_lite::future::or;

pub(crate) use ring::{Ring, RECV_BUFFER_EXHAUSTED};

use super::{listening_socket, Connection, Listener, Output, ReadBuffer};

pub(crate) struct UringListener {
    ring: Rc<Ring>,
    key: usize,
}

impl UringListener {
    /// Binds a [`listening_socket`] on `addr`.
    pub(crate) fn bind(ring: Rc<Ring>, addr: SocketAddr) -> io::Result<Self> {
        let key = ring.add_listener(listening_socket(addr)?.into());
        Ok(UringListener { ring, key })
    }
}

impl Drop for UringListener {
    fn drop(&mut self) {
        self.ring.close_listener(self.key);
    }
}

impl Listener for UringListener {
    type Conn = UringConnection;

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.ring.local_addr(self.key)
    }

    async fn accept(&self) -> io::Result<UringConnection> {
        let stream: TcpStream = poll_fn(|cx| self.ring.poll_accept(self.key, cx)).await?;
        stream.set_nodelay(true)?;
        Ok(self.serve(stream))
    }

    fn adopt(&self, socket: OwnedFd) -> io::Result<UringConnection> {
        Ok(self.serve(socket.into()))
    }
}

impl UringListener {
    fn serve(&self, stream: TcpStream) -> UringConnection {
        let peer = stream.peer_addr().ok().map(|a| a.ip().to_canonical());
        UringConnection {
            peer,
            ring: self.ring.clone(),
            key: self.ring.add_conn(stream),
            released: false,
        }
    }
}

pub(crate) struct UringConnection {
    ring: Rc<Ring>,
    key: usize,
    /// The socket went to another core; the ring no longer knows the key.
    released: bool,
    peer: Option<IpAddr>,
}

impl Drop for UringConnection {
    fn drop(&mut self) {
        if !self.released {
            self.ring.orphan(self.key);
        }
    }
}

impl Connection for UringConnection {
    fn peer_ip(&self) -> Option<IpAddr> {
        self.peer
    }

    async fn read_into(&mut self, buf: &mut ReadBuffer, timeout: Duration) -> io::Result<usize> {
        if let Some(taken) = self.ring.take_input(self.key, buf) {
            return taken;
        }
        let before = buf.len();
        {
            let parked = Parked::new(&self.ring, self.key, buf);
            let arrival = poll_fn(|cx| parked.ring.poll_arrival(parked.key, cx));
            or(arrival, Deadline::new(&self.ring, self.key, timeout)).await;
        }
        match buf.len() - before {
            0 => self
                .ring
                .take_input(self.key, buf)
                .unwrap_or_else(|| Err(io::ErrorKind::TimedOut.into())),
            n => Ok(n),
        }
    }

    async fn write_all(&mut self, output: &mut Output, timeout: Duration) -> io::Result<()> {
        let mut started = false;
        let write = poll_fn(|cx| self.ring.poll_write(self.key, output, &mut started, cx));
        let deadline = async {
            Deadline::new(&self.ring, self.key, timeout).await;
            Err(io::ErrorKind::TimedOut.into())
        };
        or(write, deadline).await
    }

    async fn release(mut self, buf: &mut ReadBuffer) -> Result<OwnedFd, Self> {
        match poll_fn(|cx| self.ring.poll_release(self.key, buf, cx)).await {
            Ok(socket) => {
                self.released = true;
                Ok(socket)
            }
            Err(()) => Err(self),
        }
    }
}

/// Resolves once a connection's wait has lasted its timeout; its deadline is forgotten when it
/// is dropped.
struct Deadline<'a> {
    ring: &'a Ring,
    key: usize,
    at: Instant,
}

impl<'a> Deadline<'a> {
    fn new(ring: &'a Ring, key: usize, timeout: Duration) -> Self {
        let at = Instant::now() + timeout;
        Deadline { ring, key, at }
    }
}

impl Future for Deadline<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.ring.poll_deadline(self.key, self.at, cx)
    }
}

impl Drop for Deadline<'_> {
    fn drop(&mut self) {
        self.ring.clear_deadline(self.key);
    }
}

/// A connection's buffer lent to the ring while its task waits, given back when dropped (also if
/// the read is dropped half-way).
struct Parked<'a> {
    ring: &'a Ring,
    key: usize,
    buf: &'a mut ReadBuffer,
}

impl<'a> Parked<'a> {
    fn new(ring: &'a Ring, key: usize, buf: &'a mut ReadBuffer) -> Self {
        ring.park(key, buf);
        Parked { ring, key, buf }
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.ring.unpark(self.key, self.buf);
    }
}
