//! The byte pipe tungstenite runs on: it reads what the connection received and writes into
//! the connection's next batch of output. tungstenite drives a blocking-style stream; this one
//! answers `WouldBlock` when it has nothing more to read, and the session awaits the socket.

use std::io::{self, Read, Write};

#[derive(Default)]
pub struct Pipe {
    input: Vec<u8>,
    read: usize,
    /// Bytes to send on the connection.
    pub output: Vec<u8>,
}

impl Pipe {
    /// Adds bytes received on the connection.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.read == self.input.len() {
            self.input.clear();
            self.read = 0;
        }
        self.input.extend_from_slice(bytes);
    }
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = &self.input[self.read..];
        if available.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.read += n;
        Ok(n)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_was_fed_then_would_block() {
        let mut pipe = Pipe::default();
        pipe.feed(b"abc");
        let mut buf = [0; 2];
        assert_eq!(pipe.read(&mut buf).unwrap(), 2);
        assert_eq!(&buf, b"ab");
        pipe.feed(b"d");
        assert_eq!(pipe.read(&mut buf).unwrap(), 2);
        assert_eq!(&buf, b"cd");
        assert_eq!(
            pipe.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        pipe.write_all(b"out").unwrap();
        assert_eq!(pipe.output, b"out");
    }
}
