//! The transport on glommio's own `TcpListener`/`TcpStream`.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};

use super::{Connection, Listener, ReadBuffer};

/// How much a single read may add to a connection's buffer.
const READ_CHUNK: usize = 16 * 1024;

pub struct GlommioListener(TcpListener);

impl GlommioListener {
    /// Binds with `SO_REUSEPORT`, so every core can listen on the same address.
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        TcpListener::bind(addr)
            .map(GlommioListener)
            .map_err(io::Error::from)
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
}

pub struct GlommioConnection(TcpStream);

impl Connection for GlommioConnection {
    async fn read_into(&mut self, buf: &mut ReadBuffer, timeout: Duration) -> io::Result<usize> {
        self.0
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .map_err(io::Error::from)?;
        let n = self.0.read(buf.spare(READ_CHUNK)).await?;
        buf.advance(n);
        Ok(n)
    }

    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        AsyncWriteExt::write_all(&mut self.0, bytes).await
    }
}
