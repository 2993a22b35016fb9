//! The client side of RFC 6455 that the WebSocket scenarios need: the upgrade handshake, masked
//! text frames out, unmasked server frames in. No fragmentation (the Artemis server sends every
//! message as one frame) and no extensions.

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::ops::Range;

/// The RFC's sample key and the accept value the server must derive from it.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &[u8] = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
const OPCODE_TEXT: u8 = 0x1;
const OPCODE_CLOSE: u8 = 0x8;
/// The longest handshake reply taken.
const MAX_HEAD: usize = 4096;

/// Where a connection upgrades to WebSocket.
#[derive(Clone, Debug)]
pub struct Upgrade {
    pub host: String,
    pub path: &'static str,
    /// Frames sent right after the handshake (subscriptions).
    pub hello: Vec<u8>,
}

impl Upgrade {
    /// Sends the upgrade request on a blocking `stream`, reads the `101` reply and no further
    /// (the server sends nothing more before the client's first frame), then sends `hello`.
    pub fn handshake(&self, stream: &mut TcpStream) -> io::Result<()> {
        write!(
            stream,
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n",
            self.path, self.host
        )?;
        let mut head = Vec::with_capacity(256);
        let mut byte = [0u8];
        while !head.ends_with(b"\r\n\r\n") {
            if head.len() == MAX_HEAD {
                return Err(invalid("handshake reply too long"));
            }
            stream.read_exact(&mut byte)?;
            head.push(byte[0]);
        }
        if !head.starts_with(b"HTTP/1.1 101") || memchr::memmem::find(&head, ACCEPT).is_none() {
            return Err(invalid("the server refused the upgrade"));
        }
        stream.write_all(&self.hello)
    }
}

/// Appends `payload` as one masked text frame.
pub(crate) fn write_text(payload: &[u8], out: &mut Vec<u8>) {
    out.push(0x80 | OPCODE_TEXT);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(0x80 | 126);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let mask = fastrand::u32(..).to_be_bytes();
    out.extend_from_slice(&mask);
    out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
}

/// A complete server frame at the front of a buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    /// A text frame (the replies and pushes); anything else is a ping or pong to skip.
    pub text: bool,
    pub payload: Range<usize>,
}

/// The frame at the front of `bytes`, once all of it is there. A masked or fragmented frame, or
/// a close, is an error: the server sends none of them on a healthy connection.
pub(crate) fn parse_frame(bytes: &[u8]) -> io::Result<Option<Frame>> {
    let [first, second, ..] = *bytes else {
        return Ok(None);
    };
    if first & 0x80 == 0 || second & 0x80 != 0 {
        return Err(invalid("fragmented or masked server frame"));
    }
    let opcode = first & 0x0f;
    if opcode == OPCODE_CLOSE {
        return Err(ErrorKind::ConnectionAborted.into());
    }
    let (start, len) = match second & 0x7f {
        126 if bytes.len() >= 4 => (4, u16::from_be_bytes([bytes[2], bytes[3]]) as usize),
        127 if bytes.len() >= 10 => {
            let len = u64::from_be_bytes(bytes[2..10].try_into().expect("8 bytes"));
            (
                10,
                usize::try_from(len).map_err(|_| invalid("frame too long"))?,
            )
        }
        126 | 127 => return Ok(None),
        len => (2, len as usize),
    };
    let end = start + len;
    Ok((bytes.len() >= end).then_some(Frame {
        text: opcode == OPCODE_TEXT,
        payload: start..end,
    }))
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tungstenite::protocol::frame::{coding::OpCode, Frame as TFrame, FrameHeader};

    /// Decodes a client frame with tungstenite, as the server does.
    fn decode(bytes: &[u8]) -> (FrameHeader, Vec<u8>) {
        let mut cursor = io::Cursor::new(bytes);
        let (header, len) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
        let start = cursor.position() as usize;
        assert_eq!(start + len as usize, bytes.len());
        let mut payload = bytes[start..].to_vec();
        if let Some(mask) = header.mask {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= mask[i % 4];
            }
        }
        (header, payload)
    }

    #[test]
    fn client_frames_are_masked_text_of_every_length_class() {
        for len in [0, 125, 126, 65_535, 65_536] {
            let payload: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let mut out = vec![];
            write_text(&payload, &mut out);
            let (header, got) = decode(&out);
            assert!(header.is_final && header.mask.is_some());
            assert_eq!(
                header.opcode,
                OpCode::Data(tungstenite::protocol::frame::coding::Data::Text)
            );
            assert_eq!(got, payload);
        }
    }

    #[test]
    fn server_frames_parse_once_complete() {
        for len in [3, 300, 70_000] {
            let payload = vec![b'x'; len];
            let mut bytes = vec![];
            TFrame::message(
                payload.clone(),
                OpCode::Data(tungstenite::protocol::frame::coding::Data::Text),
                true,
            )
            .format(&mut bytes)
            .unwrap();
            let frame = parse_frame(&bytes).unwrap().unwrap();
            assert!(frame.text);
            assert_eq!(&bytes[frame.payload.clone()], payload.as_slice());
            assert_eq!(frame.payload.end, bytes.len());
            assert!(parse_frame(&bytes[..bytes.len() - 1]).unwrap().is_none());
        }
        let mut ping = vec![];
        TFrame::ping(vec![]).format(&mut ping).unwrap();
        assert!(!parse_frame(&ping).unwrap().unwrap().text);
        let mut close = vec![];
        TFrame::close(None).format(&mut close).unwrap();
        assert!(parse_frame(&close).is_err());
        assert!(parse_frame(&[0x81, 0x81, 0, 0, 0, 0, b'x']).is_err());
    }
}
