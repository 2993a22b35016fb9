//! Client frames read where they lie in the connection's buffer.
//!
//! A heartbeat frame is unmasked in place and its JSON decoded in place, so a WebSocket
//! heartbeat costs no copy before the registry sees it. tungstenite parses and formats the frame
//! headers; this module applies RFC 6455's rules to them (client frames masked, no reserved bits,
//! control frames short and whole, continuations only inside a message), assembles the rare
//! fragmented message, and enforces the frame and message size limits before a byte of an
//! oversized payload is buffered.

use std::io::Cursor;
use std::ops::Range;

use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// Largest payload of a control frame (RFC 6455 §5.5).
const MAX_CONTROL_PAYLOAD: u64 = 125;

/// What one complete frame at the front of the buffer amounts to.
#[derive(Debug, PartialEq, Eq)]
pub enum Message {
    /// A whole text message; its payload, unmasked and valid UTF-8, lies at this range of the
    /// buffer the frame was read from.
    Text(Range<usize>),
    /// The last fragment of a fragmented text message: the whole text is in `Reader::assembled`.
    AssembledText,
    /// A fragment of a message not yet complete.
    Fragment,
    /// A binary message, which the endpoints do not take (Java's text handlers refuse them).
    Binary,
    /// A ping carrying the payload at this range, to be echoed in a pong.
    Ping(Range<usize>),
    Pong,
    /// The peer closes; its status code, if it gave one (one a peer may send).
    Close(Option<CloseCode>),
}

/// Why a session must be closed: the close code and the reason sent with it.
#[derive(Debug, PartialEq, Eq)]
pub struct Violation {
    pub code: CloseCode,
    pub reason: &'static str,
    /// The frame or message was over a size limit (counted apart from protocol errors).
    pub too_big: bool,
}

impl Violation {
    fn protocol(reason: &'static str) -> Violation {
        Violation {
            code: CloseCode::Protocol,
            reason,
            too_big: false,
        }
    }

    fn too_big(reason: &'static str) -> Violation {
        Violation {
            code: CloseCode::Size,
            reason,
            too_big: true,
        }
    }

    fn not_utf8() -> Violation {
        Violation {
            code: CloseCode::Invalid,
            reason: "text frame is not valid UTF-8",
            too_big: false,
        }
    }
}

/// Reads a session's client frames one at a time.
pub struct Reader {
    max_frame: usize,
    max_message: usize,
    /// The fragments so far of a message in progress, and whether it is text.
    partial: Option<(bool, Vec<u8>)>,
    assembled: Vec<u8>,
}

impl Reader {
    pub fn new(max_frame: usize, max_message: usize) -> Reader {
        Reader {
            max_frame,
            max_message,
            partial: None,
            assembled: Vec::new(),
        }
    }

    /// Reads the frame at the front of `buf`, unmasking its payload in place: `None` until the
    /// whole frame has arrived, else the bytes it took and what it means.
    pub fn next(&mut self, buf: &mut [u8]) -> Result<Option<(usize, Message)>, Violation> {
        let mut cursor = Cursor::new(&*buf);
        let (header, length) = match FrameHeader::parse(&mut cursor) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => return Ok(None),
            Err(_) => return Err(Violation::protocol("reserved opcode")),
        };
        let start = cursor.position() as usize;
        if header.rsv1 || header.rsv2 || header.rsv3 {
            return Err(Violation::protocol("reserved bits set"));
        }
        let Some(mask) = header.mask else {
            return Err(Violation::protocol("client frames must be masked"));
        };
        if length > self.max_frame as u64 {
            return Err(Violation::too_big("frame too large"));
        }
        if matches!(header.opcode, OpCode::Control(_))
            && (length > MAX_CONTROL_PAYLOAD || !header.is_final)
        {
            return Err(Violation::protocol("control frame too long or fragmented"));
        }
        let end = start + length as usize;
        if buf.len() < end {
            return Ok(None);
        }
        let payload = &mut buf[start..end];
        unmask(payload, mask);
        let message = match header.opcode {
            OpCode::Control(Control::Ping) => Message::Ping(start..end),
            OpCode::Control(Control::Pong) => Message::Pong,
            OpCode::Control(_) => Message::Close(close_code(payload)?),
            OpCode::Data(Data::Continue) => self.continuation(payload, header.is_final)?,
            OpCode::Data(data) => {
                if self.partial.is_some() {
                    return Err(Violation::protocol("new message inside a fragmented one"));
                }
                let text = data == Data::Text;
                if !header.is_final {
                    self.partial = Some((text, payload.to_vec()));
                    Message::Fragment
                } else if !text {
                    Message::Binary
                } else if std::str::from_utf8(payload).is_err() {
                    return Err(Violation::not_utf8());
                } else {
                    Message::Text(start..end)
                }
            }
        };
        Ok(Some((end, message)))
    }

    /// The text of the fragmented message `next` last answered `AssembledText` for.
    pub fn assembled(&mut self) -> &mut [u8] {
        &mut self.assembled
    }

    fn continuation(&mut self, payload: &[u8], last: bool) -> Result<Message, Violation> {
        let Some((text, bytes)) = self.partial.as_mut() else {
            return Err(Violation::protocol("continuation outside a message"));
        };
        if bytes.len() + payload.len() > self.max_message {
            return Err(Violation::too_big("message too large"));
        }
        bytes.extend_from_slice(payload);
        if !last {
            return Ok(Message::Fragment);
        }
        let text = *text;
        self.assembled = self.partial.take().map(|(_, b)| b).unwrap_or_default();
        if !text {
            return Ok(Message::Binary);
        }
        if std::str::from_utf8(&self.assembled).is_err() {
            return Err(Violation::not_utf8());
        }
        Ok(Message::AssembledText)
    }
}

/// A close frame's status code: none when the payload is empty, else its first two bytes, which
/// must be a code a peer may send (not 1005, 1006, 1015, nor an unassigned one).
fn close_code(payload: &[u8]) -> Result<Option<CloseCode>, Violation> {
    match payload {
        [] => Ok(None),
        [hi, lo, reason @ ..] if std::str::from_utf8(reason).is_ok() => {
            let code = CloseCode::from(u16::from_be_bytes([*hi, *lo]));
            if code.is_allowed() {
                Ok(Some(code))
            } else {
                Err(Violation::protocol("close code not allowed"))
            }
        }
        _ => Err(Violation::protocol("malformed close frame")),
    }
}

/// XORs `payload` with the frame's mask, eight bytes at a time.
fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut words = payload.chunks_exact_mut(8);
    for word in &mut words {
        let value = u64::from_ne_bytes((&*word).try_into().expect("8 bytes")) ^ wide;
        word.copy_from_slice(&value.to_ne_bytes());
    }
    // The tail starts at a multiple of 8, so the mask starts over at its first byte.
    for (byte, m) in words.into_remainder().iter_mut().zip(mask.iter().cycle()) {
        *byte ^= m;
    }
}

/// Appends an unmasked, final frame: its header, then `parts` back to back as the payload.
pub fn write(out: &mut Vec<u8>, opcode: OpCode, parts: &[impl AsRef<[u8]>]) {
    let length: usize = parts.iter().map(|p| p.as_ref().len()).sum();
    let header = FrameHeader {
        opcode,
        ..FrameHeader::default()
    };
    header
        .format(length as u64, out)
        .expect("writing to a Vec cannot fail");
    out.reserve(length);
    for part in parts {
        out.extend_from_slice(part.as_ref());
    }
}

/// Appends a text frame carrying `parts` (valid UTF-8 JSON).
pub fn write_text(out: &mut Vec<u8>, parts: &[impl AsRef<[u8]>]) {
    write(out, OpCode::Data(Data::Text), parts);
}

/// Appends a close frame with `code` and `reason`.
pub fn write_close(out: &mut Vec<u8>, code: CloseCode, reason: &str) {
    let code = u16::from(code).to_be_bytes();
    write(
        out,
        OpCode::Control(Control::Close),
        &[&code[..], reason.as_bytes()],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame as a browser would send it: masked with `mask`.
    fn client_frame(opcode: OpCode, last: bool, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let header = FrameHeader {
            is_final: last,
            opcode,
            mask: Some(mask),
            ..FrameHeader::default()
        };
        let mut out = Vec::new();
        header.format(payload.len() as u64, &mut out).unwrap();
        out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
        out
    }

    const TEXT: OpCode = OpCode::Data(Data::Text);
    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    fn reader() -> Reader {
        Reader::new(1024, 4096)
    }

    #[test]
    fn a_text_frame_is_unmasked_where_it_lies() {
        for len in [0, 1, 7, 8, 9, 125, 126, 300, 1000] {
            let text: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let mut buf = client_frame(TEXT, true, &text, MASK);
            let total = buf.len();
            buf.extend_from_slice(b"next");
            let (taken, message) = reader().next(&mut buf).unwrap().unwrap();
            assert_eq!(taken, total);
            let Message::Text(range) = message else {
                panic!("{message:?}")
            };
            assert_eq!(&buf[range], &text[..], "length {len}");
        }
    }

    #[test]
    fn waits_for_the_whole_frame() {
        let whole = client_frame(TEXT, true, &[b'x'; 200], MASK);
        for cut in 0..whole.len() {
            let mut part = whole[..cut].to_vec();
            assert_eq!(reader().next(&mut part), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn fragments_are_assembled() {
        let mut r = reader();
        let mut first = client_frame(TEXT, false, b"{\"inst", MASK);
        assert_eq!(r.next(&mut first).unwrap().unwrap().1, Message::Fragment);
        // A ping may come between fragments.
        let mut ping = client_frame(OpCode::Control(Control::Ping), true, b"p", MASK);
        assert!(matches!(
            r.next(&mut ping).unwrap().unwrap().1,
            Message::Ping(_)
        ));
        let mut last = client_frame(OpCode::Data(Data::Continue), true, b"ances\":[]}", MASK);
        assert_eq!(
            r.next(&mut last).unwrap().unwrap().1,
            Message::AssembledText
        );
        assert_eq!(r.assembled(), b"{\"instances\":[]}");
    }

    #[test]
    fn protocol_violations_close_the_session() {
        let mut unmasked = Vec::new();
        FrameHeader {
            opcode: TEXT,
            ..FrameHeader::default()
        }
        .format(2, &mut unmasked)
        .unwrap();
        unmasked.extend_from_slice(b"hi");
        let mut long_ping = client_frame(OpCode::Control(Control::Ping), true, &[0; 126], MASK);
        let mut stray = client_frame(OpCode::Data(Data::Continue), true, b"x", MASK);
        let mut reserved = client_frame(TEXT, true, b"x", MASK);
        reserved[0] |= 0x40;
        let mut bad_opcode = client_frame(TEXT, true, b"x", MASK);
        bad_opcode[0] = 0x83;
        for buf in [
            &mut unmasked,
            &mut long_ping,
            &mut stray,
            &mut reserved,
            &mut bad_opcode,
        ] {
            assert_eq!(reader().next(buf).unwrap_err().code, CloseCode::Protocol);
        }
        let mut latin1 = client_frame(TEXT, true, &[0xe9], MASK);
        assert_eq!(
            reader().next(&mut latin1).unwrap_err().code,
            CloseCode::Invalid
        );
    }

    #[test]
    fn size_limits_bite_before_the_payload_arrives() {
        let whole = client_frame(TEXT, true, &[b'x'; 2000], MASK);
        // Only the header has arrived: the declared length alone is refused.
        let mut head = whole[..8].to_vec();
        let violation = reader().next(&mut head).unwrap_err();
        assert_eq!(violation.code, CloseCode::Size);
        assert!(violation.too_big);
        // Fragments each under the frame limit, together over the message limit.
        let mut r = reader();
        let mut first = client_frame(TEXT, false, &[b'x'; 1000], MASK);
        r.next(&mut first).unwrap();
        let mut more = client_frame(OpCode::Data(Data::Continue), false, &[b'x'; 1000], MASK);
        for _ in 0..3 {
            r.next(&mut more.clone()).unwrap();
        }
        assert!(r.next(&mut more).unwrap_err().too_big);
    }

    #[test]
    fn binary_and_close_frames_are_reported() {
        let mut binary = client_frame(OpCode::Data(Data::Binary), true, b"\x00\x01", MASK);
        assert_eq!(
            reader().next(&mut binary).unwrap().unwrap().1,
            Message::Binary
        );
        let mut close = client_frame(OpCode::Control(Control::Close), true, b"\x03\xe8bye", MASK);
        assert_eq!(
            reader().next(&mut close).unwrap().unwrap().1,
            Message::Close(Some(CloseCode::Normal))
        );
        let mut reserved = client_frame(OpCode::Control(Control::Close), true, b"\x03\xed", MASK);
        assert_eq!(
            reader().next(&mut reserved).unwrap_err().code,
            CloseCode::Protocol
        );
        let mut bare = client_frame(OpCode::Control(Control::Close), true, b"", MASK);
        assert_eq!(
            reader().next(&mut bare).unwrap().unwrap().1,
            Message::Close(None)
        );
    }

    #[test]
    fn server_frames_are_framed_by_length() {
        let mut out = Vec::new();
        write_text(&mut out, &[b"h", b"i"]);
        assert_eq!(out, [0x81, 2, b'h', b'i']);
        out.clear();
        write_text(&mut out, &[&[b'x'; 300]]);
        assert_eq!(&out[..4], [0x81, 126, 1, 44]);
        assert_eq!(out.len(), 304);
        out.clear();
        write_close(&mut out, CloseCode::Again, "full");
        assert_eq!(out, [0x88, 6, 0x03, 0xf5, b'f', b'u', b'l', b'l']);
    }
}
