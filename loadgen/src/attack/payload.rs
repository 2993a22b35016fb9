//! What hostile connections send: the request head a slowloris drips a few bytes at a time and
//! never finishes, and the bursts of random bytes a garbage connection sends.

/// Bytes of the endless head a slowloris connection sends each time it is due.
pub(super) const SLOWLORIS_BYTES: usize = 2;

/// Longest garbage burst; each burst is 1 to this many random bytes.
const GARBAGE_BURST: usize = 512;

/// A header line repeated after the real head, one more each time the last one is out: the
/// head never ends (its blank line never comes).
const FILLER: &[u8] = b"X-Slow: 1\r\n";

/// The head a slowloris sends: a real request line and headers, then filler lines forever.
pub(super) struct EndlessHead {
    start: Vec<u8>,
}

impl EndlessHead {
    pub(super) fn new(host: &str) -> EndlessHead {
        EndlessHead {
            start: format!(
                "POST /api/discovery/service.json HTTP/1.1\r\nHost: {host}\r\n\
                 Content-Type: application/json\r\n"
            )
            .into_bytes(),
        }
    }

    /// Appends `len` bytes of the head from `offset` on to `out`.
    pub(super) fn bytes(&self, offset: u64, len: usize, out: &mut Vec<u8>) {
        for at in offset..offset + len as u64 {
            let byte = match usize::try_from(at) {
                Ok(i) if i < self.start.len() => self.start[i],
                _ => FILLER[((at - self.start.len() as u64) % FILLER.len() as u64) as usize],
            };
            out.push(byte);
        }
    }
}

/// Appends a burst of 1 to `GARBAGE_BURST` random bytes to `out`.
pub(super) fn garbage(rng: &mut fastrand::Rng, out: &mut Vec<u8>) {
    let len = rng.usize(1..=GARBAGE_BURST);
    out.extend((0..len).map(|_| rng.u8(..)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_goes_on_with_filler_lines() {
        let head = EndlessHead::new("h:1");
        let mut all = Vec::new();
        let mut offset = 0;
        while all.len() < head.start.len() + 3 * FILLER.len() {
            head.bytes(offset, SLOWLORIS_BYTES, &mut all);
            offset += SLOWLORIS_BYTES as u64;
        }
        let text = String::from_utf8(all).unwrap();
        assert!(text.starts_with("POST /api/discovery/service.json HTTP/1.1\r\nHost: h:1\r\n"));
        assert!(text.contains("application/json\r\nX-Slow: 1\r\nX-Slow: 1\r\nX-Slow: 1\r\n"));
        assert!(!text.contains("\r\n\r\n"), "the head never ends");
    }

    #[test]
    fn bursts_are_bounded() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..100 {
            let mut out = Vec::new();
            garbage(&mut rng, &mut out);
            assert!((1..=GARBAGE_BURST).contains(&out.len()));
        }
    }
}
