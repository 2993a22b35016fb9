//! What a connection sends: bytes written for it, and large bytes many replies share (a service's
//! instances at one version), referenced where they go instead of copied.
//!
//! A connection answering the same 13 MB service to a client that pipelines requests would
//! otherwise copy it once per request; with the bytes shared, N replies cost N references.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

/// Bytes that outlive any one reply and may be sent from where they are.
pub trait SharedBytes: Send + Sync {
    fn bytes(&self) -> &[u8];
}

/// What hands out a reference to shared bytes: an `Arc` of them. Taken only for a piece large
/// enough to be sent from where it is, so a small reply touches no reference count.
pub trait Shareable: Sync {
    fn handle(&self) -> Arc<dyn SharedBytes>;
}

impl<T: SharedBytes + 'static> Shareable for Arc<T> {
    fn handle(&self) -> Arc<dyn SharedBytes> {
        self.clone()
    }
}

/// Shared bytes shorter than this are copied: a reference costs a separate piece to send.
pub(super) const SHARE_MIN: usize = 16 * 1024;

/// A connection's outgoing bytes, in order. Derefs to the written bytes, so replies are written
/// into it as into a `Vec<u8>`.
#[derive(Default)]
pub struct Output {
    written: Vec<u8>,
    /// Shared pieces, each sent after the written bytes before its offset.
    shared: Vec<(usize, Arc<dyn SharedBytes>)>,
}

impl Output {
    pub fn with_capacity(capacity: usize) -> Output {
        Output {
            written: Vec::with_capacity(capacity),
            shared: Vec::new(),
        }
    }

    /// Appends `bytes`, which `from` shares: as a reference when they are large, else copied.
    pub fn share(&mut self, bytes: &[u8], from: &dyn Shareable) {
        if bytes.len() < SHARE_MIN {
            self.written.extend_from_slice(bytes);
        } else {
            self.shared.push((self.written.len(), from.handle()));
        }
    }

    /// Every byte to send, written and shared.
    pub fn len(&self) -> usize {
        let shared: usize = self.shared.iter().map(|(_, part)| part.bytes().len()).sum();
        self.written.len() + shared
    }

    pub fn is_empty(&self) -> bool {
        self.written.is_empty() && self.shared.is_empty()
    }

    /// Whether every byte is in the written buffer (one plain send takes it all).
    pub fn is_contiguous(&self) -> bool {
        self.shared.is_empty()
    }

    /// The pieces to send, in order, skipping the first `skip` bytes.
    pub fn pieces(&self, mut skip: usize) -> impl Iterator<Item = &[u8]> {
        let mut from = 0;
        let shared = self.shared.iter().map(|(at, part)| (*at, part.bytes()));
        let ends = shared.chain(std::iter::once((self.written.len(), &[][..])));
        ends.flat_map(move |(at, part)| {
            let written = &self.written[from..at];
            from = at;
            [written, part]
        })
        .filter_map(move |piece| {
            if skip >= piece.len() {
                skip -= piece.len();
                return None;
            }
            let piece = &piece[skip..];
            skip = 0;
            Some(piece)
        })
    }

    /// Empties the output, giving back the memory of a large written buffer (more than `kept`
    /// bytes) and every reference.
    pub fn recycle(&mut self, kept: usize) {
        self.written.clear();
        self.shared.clear();
        if self.written.capacity() > kept {
            self.written = Vec::new();
        }
    }

    /// Empties the output, keeping its memory.
    pub fn clear(&mut self) {
        self.written.clear();
        self.shared.clear();
    }
}

impl Deref for Output {
    type Target = Vec<u8>;

    fn deref(&self) -> &Vec<u8> {
        &self.written
    }
}

impl DerefMut for Output {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.written
    }
}

impl From<Vec<u8>> for Output {
    fn from(written: Vec<u8>) -> Output {
        Output {
            written,
            shared: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl SharedBytes for Vec<u8> {
        fn bytes(&self) -> &[u8] {
            self
        }
    }

    fn share(output: &mut Output, part: Vec<u8>) {
        let part = Arc::new(part);
        output.share(part.bytes(), &part);
    }

    fn big(byte: u8) -> Vec<u8> {
        vec![byte; SHARE_MIN]
    }

    fn sent(output: &Output, skip: usize) -> Vec<u8> {
        output.pieces(skip).flatten().copied().collect()
    }

    #[test]
    fn shared_pieces_go_where_they_were_put() {
        let mut output = Output::default();
        output.extend_from_slice(b"head1");
        share(&mut output, big(b'a'));
        output.extend_from_slice(b"tail1head2");
        share(&mut output, big(b'b'));
        share(&mut output, b"small".to_vec());
        let expected = [
            &b"head1"[..],
            &vec![b'a'; SHARE_MIN],
            b"tail1head2",
            &vec![b'b'; SHARE_MIN],
            b"small",
        ]
        .concat();
        assert_eq!(output.len(), expected.len());
        assert_eq!(
            output.written.len(),
            20,
            "the small part was copied, the large ones not"
        );
        assert!(!output.is_contiguous());
        for skip in [
            0,
            3,
            5,
            6,
            SHARE_MIN + 5,
            SHARE_MIN + 15,
            expected.len() - 1,
        ] {
            assert_eq!(sent(&output, skip), expected[skip..], "skip {skip}");
        }
        assert!(output.pieces(expected.len()).next().is_none());
        output.recycle(4096);
        assert!(output.is_empty());
    }
}
