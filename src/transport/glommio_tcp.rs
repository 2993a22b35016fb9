//! The transport on glommio's own `TcpListener`/`TcpStream`.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::time::Duration;

use futures_lite::future::or;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use glommio::timer::sleep;

use super::{listening_socket, Connection, Listener, Output, ReadBuffer};

/// How much a single read may add to a connection's buffer: a request usually fits in the first
/// read's, so a connection waiting for its next request holds only that; a longer one reads on
/// in larger chunks.
const FIRST_READ: usize = 4 * 1024;
const READ_CHUNK: usize = 16 * 1024;

pub(crate) struct GlommioListener(TcpListener);

impl GlommioListener {
    /// Binds a [`listening_socket`] on `addr`.
    pub(crate) fn bind(addr: SocketAddr) -> io::Result<Self> {
        let socket = listening_socket(addr)?;
        // SAFETY: the descriptor is a bound, listening TCP socket that the listener now owns
        // alone.
        Ok(GlommioListener(unsafe {
            TcpListener::from_raw_fd(socket.into_raw_fd())
        }))
    }
}

impl Listener for GlommioListener {
    type Conn = GlommioConnection;

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr().map_err(io::Error::from)
    }

    async fn accept(&self) -> io::Result<GlommioConnection> {
        let stream = self.0.accept().await.map_err(io::Error::from)?;
        stream.set_nodelay(true).map_err(io::Error::from)?;
        Ok(GlommioConnection(stream))
    }

    fn adopt(&self, socket: OwnedFd) -> io::Result<GlommioConnection> {
        // SAFETY: the descriptor is an open TCP socket that the stream now owns alone.
        Ok(GlommioConnection(unsafe {
            TcpStream::from_raw_fd(socket.into_raw_fd())
        }))
    }
}

pub(crate) struct GlommioConnection(TcpStream);

impl GlommioConnection {
    /// An outbound connection to `addr` (this server as a client of its peers), on this core's
    /// executor; fails after `timeout` without one.
    pub(crate) async fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<Self> {
        let stream = TcpStream::connect_timeout(addr, timeout)
            .await
            .map_err(io::Error::from)?;
        stream.set_nodelay(true).map_err(io::Error::from)?;
        Ok(GlommioConnection(stream))
    }
}

impl Connection for GlommioConnection {
    fn peer_ip(&self) -> Option<IpAddr> {
        self.0.peer_addr().ok().map(|a| a.ip().to_canonical())
    }

    async fn read_into(&mut self, buf: &mut ReadBuffer, timeout: Duration) -> io::Result<usize> {
        self.0
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .map_err(io::Error::from)?;
        let chunk = if buf.is_empty() {
            FIRST_READ
        } else {
            READ_CHUNK
        };
        let n = self.0.read(buf.spare(chunk)).await?;
        buf.advance(n);
        Ok(n)
    }

    async fn write_all(&mut self, output: &mut Output, timeout: Duration) -> io::Result<()> {
        let write = async {
            for piece in output.pieces(0) {
                AsyncWriteExt::write_all(&mut self.0, piece).await?;
            }
            Ok(())
        };
        let deadline = async {
            sleep(timeout).await;
            Err(io::ErrorKind::TimedOut.into())
        };
        let written = or(write, deadline).await;
        output.clear();
        written
    }

    /// glommio's stream cannot give up its descriptor, so a duplicate leaves and the stream
    /// closes its own. Its reads and writes are awaited where they are made and it keeps no
    /// buffer, so nothing is in flight or held here.
    async fn release(self, _buf: &mut ReadBuffer) -> Result<OwnedFd, Self> {
        // SAFETY: the stream owns this descriptor and stays alive while it is borrowed here.
        let socket = unsafe { BorrowedFd::borrow_raw(self.0.as_raw_fd()) };
        match socket.try_clone_to_owned() {
            Ok(socket) => Ok(socket),
            Err(_) => Err(self),
        }
    }
}
