//! The WebSocket frame reader's properties, on arbitrary bytes: a session's client bytes are read
//! frame by frame as `src/websocket/session.rs` reads them (read the frame at the front, consume
//! what it took, go on), and, beyond "no panic", every frame must lie within the bytes it took,
//! text must be UTF-8, pings short, and the bytes cut into reads anywhere must give the same
//! messages and the same end as the bytes read at once.

use artemis::websocket_frame::{Message, Reader, Violation};

/// What the reader made of one frame, with its payload copied out.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    Text(Vec<u8>),
    Fragment,
    Binary,
    Ping(Vec<u8>),
    Pong,
    Close(Option<u16>),
}

/// How a byte stream ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// Every byte was taken by complete frames.
    Drained,
    /// The last frame still waits for bytes.
    Incomplete,
    /// The session is closed with this code.
    Closed(u16),
}

/// Feeds `wire` to a reader with the given limits, in reads of the sizes `reads` yields (the rest
/// in one read when it runs out), checking every frame on the way.
pub fn feed(
    wire: &[u8],
    mut reads: impl Iterator<Item = usize>,
    max_frame: usize,
    max_message: usize,
) -> (Vec<Read>, End) {
    let mut reader = Reader::new(max_frame, max_message);
    let mut input: Vec<u8> = Vec::with_capacity(wire.len());
    let mut messages = Vec::new();
    let mut rest = wire;
    while !rest.is_empty() {
        let n = reads.next().unwrap_or(rest.len()).clamp(1, rest.len());
        input.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            match reader.next(&mut input) {
                Ok(None) => break,
                Ok(Some((taken, message))) => {
                    assert!(
                        taken > 0 && taken <= input.len(),
                        "took {taken} of {}",
                        input.len()
                    );
                    messages.push(read(&mut reader, &input[..taken], message, max_message));
                    input.drain(..taken);
                }
                Err(Violation { code, .. }) => return (messages, End::Closed(code.into())),
            }
        }
    }
    let end = if input.is_empty() {
        End::Drained
    } else {
        End::Incomplete
    };
    (messages, end)
}

/// One message, checked against the frame it came from.
fn read(reader: &mut Reader, frame: &[u8], message: Message, max_message: usize) -> Read {
    let payload = |range: std::ops::Range<usize>| {
        assert!(range.end <= frame.len(), "payload {range:?} past the frame");
        frame[range].to_vec()
    };
    match message {
        Message::Text(range) => {
            let text = payload(range);
            assert!(std::str::from_utf8(&text).is_ok());
            Read::Text(text)
        }
        Message::AssembledText => {
            let text = reader.assembled().to_vec();
            assert!(std::str::from_utf8(&text).is_ok());
            assert!(text.len() <= max_message);
            Read::Text(text)
        }
        Message::Fragment => Read::Fragment,
        Message::Binary => Read::Binary,
        Message::Ping(range) => {
            let data = payload(range);
            assert!(data.len() <= 125);
            Read::Ping(data)
        }
        Message::Pong => Read::Pong,
        Message::Close(code) => Read::Close(code.map(u16::from)),
    }
}

/// `[frame limit, message limit, n, n read sizes, bytes...]`: the bytes read at once and in the
/// given reads must agree.
pub fn split_reads(data: &[u8]) {
    let [frame_limit, message_limit, n, rest @ ..] = data else {
        return;
    };
    let (max_frame, max_message) = (
        usize::from(*frame_limit) * 4,
        usize::from(*message_limit) * 16,
    );
    let n = usize::from(*n).min(rest.len());
    let (reads, wire) = rest.split_at(n);
    let whole = feed(wire, std::iter::empty(), max_frame, max_message);
    let split = feed(
        wire,
        reads.iter().map(|&r| usize::from(r)),
        max_frame,
        max_message,
    );
    assert_eq!(whole, split, "reads {reads:?} changed what was read");
}
