//! gzip both ways, as Java's ziplet `CompressingFilter` does. Java clients and peers send
//! every body with `Content-Encoding: gzip`; it is inflated with a bounded output so a
//! small bomb cannot take the memory. Large replies are deflated for clients that accept it,
//! and what many replies carry is deflated once.

use super::HttpError;
use crate::transport::Shareable;
use flate2::read::MultiGzDecoder;
use flate2::{Compress, Compression, FlushCompress, Status};
use std::cell::RefCell;
use std::io::Read;

/// Inflates a gzip body (one or more members); more than `max_body` bytes of output is
/// refused without inflating the rest.
pub(super) fn gunzip(packed: &[u8], max_body: usize) -> Result<Vec<u8>, HttpError> {
    let cap = u64::try_from(max_body)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut plain = Vec::with_capacity(packed.len().saturating_mul(4).min(max_body));
    MultiGzDecoder::new(packed)
        .take(cap)
        .read_to_end(&mut plain)
        .map_err(|_| HttpError::BadRequest("malformed gzip body"))?;
    if plain.len() > max_body {
        return Err(HttpError::BodyTooLarge);
    }
    Ok(plain)
}

/// One slice of a reply body; for a slice that many replies carry (a service's instances at one
/// version), the bytes to send from where they are and where their deflated form is kept.
#[derive(Clone, Copy)]
pub struct BodyPart<'a> {
    pub bytes: &'a [u8],
    pub shared: Option<&'a dyn Shareable>,
    pub deflated: Option<&'a dyn DeflateCache>,
}

/// A part deflated on its own: raw deflate blocks that end on a byte boundary without a final
/// block, and the CRC-32 of the plain bytes.
pub(super) type Deflated = (Box<[u8]>, u32);

/// Where whoever owns a body part keeps its deflated form: made by this layer the first time a
/// gzip reply carries the part, reused by every later one.
pub trait DeflateCache: Sync {
    /// The kept blocks and CRC-32, made by `deflate` if none are kept yet.
    fn get_or_deflate(&self, deflate: &dyn Fn() -> Deflated) -> (&[u8], u32);
}

impl<'a> From<&'a [u8]> for BodyPart<'a> {
    fn from(bytes: &'a [u8]) -> BodyPart<'a> {
        BodyPart {
            bytes,
            shared: None,
            deflated: None,
        }
    }
}

/// gzip's member header: deflate, no name or time, unknown OS.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// One gzip member of `parts`, written back to back, at the fast level.
///
/// A body with no kept part is deflated in one go. Otherwise the kept parts go in as their
/// deflated blocks, made the first time and reused by every later reply (a discovery reply is
/// then compressed once per service version, not once per request), and the parts between them,
/// a few bytes of JSON, as stored blocks: each piece ends on a byte boundary and none is final,
/// so they follow one another as one deflate stream, closed by an empty final block.
pub(super) fn gzip(parts: &[BodyPart]) -> Vec<u8> {
    let len: usize = parts.iter().map(|part| part.bytes.len()).sum();
    let mut out = Vec::with_capacity(len / 4 + 64);
    out.extend_from_slice(&HEADER);
    let mut crc = crc32fast::Hasher::new();
    if parts.iter().all(|part| part.deflated.is_none()) {
        with_deflate(|deflate| {
            for part in parts {
                deflate_into(deflate, part.bytes, FlushCompress::None, &mut out);
                crc.update(part.bytes);
            }
            deflate_into(deflate, &[], FlushCompress::Finish, &mut out);
        });
    } else {
        for part in parts {
            match part.deflated {
                Some(kept) => {
                    let (blocks, crc32) = kept.get_or_deflate(&|| deflate_apart(part.bytes));
                    out.extend_from_slice(blocks);
                    let len = part.bytes.len() as u64;
                    crc.combine(&crc32fast::Hasher::new_with_initial_len(crc32, len));
                }
                None => {
                    stored_blocks(part.bytes, &mut out);
                    crc.update(part.bytes);
                }
            }
        }
        out.extend_from_slice(&FINAL_EMPTY_BLOCK);
    }
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out
}

/// A final deflate block with no data (fixed Huffman codes: the header bits and end-of-block).
const FINAL_EMPTY_BLOCK: [u8; 2] = [0x03, 0x00];

/// `bytes` deflated on their own, ending on a byte boundary without a final block.
fn deflate_apart(bytes: &[u8]) -> Deflated {
    let mut blocks = Vec::with_capacity(bytes.len() / 4 + 64);
    with_deflate(|deflate| deflate_into(deflate, bytes, FlushCompress::Sync, &mut blocks));
    (blocks.into(), crc32fast::hash(bytes))
}

thread_local! {
    /// This thread's deflate state, reset for each body. Making one allocates some 300 KB and
    /// clears its tables, which cost as much as deflating a replication batch of a few dozen
    /// instances; resetting clears the tables only.
    static DEFLATE: RefCell<Option<Compress>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's deflate state at the fast level, as new.
fn with_deflate<R>(f: impl FnOnce(&mut Compress) -> R) -> R {
    DEFLATE.with(|slot| {
        let mut slot = slot.borrow_mut();
        let deflate = match slot.as_mut() {
            Some(deflate) => {
                deflate.reset();
                deflate
            }
            None => slot.insert(Compress::new(Compression::fast(), false)),
        };
        f(deflate)
    })
}

/// `bytes` as non-final stored blocks (at most 65 535 bytes each), from a byte boundary.
fn stored_blocks(bytes: &[u8], out: &mut Vec<u8>) {
    for chunk in bytes.chunks(u16::MAX as usize) {
        let len = chunk.len() as u16;
        out.push(0); // not final, stored; the rest of the byte is padding
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
}

/// Feeds `input` to `deflate` and appends what it writes; `Sync` and `Finish` also flush all of
/// it out.
fn deflate_into(deflate: &mut Compress, mut input: &[u8], flush: FlushCompress, out: &mut Vec<u8>) {
    loop {
        out.reserve(input.len() / 2 + 128);
        let taken = deflate.total_in();
        let status = deflate
            .compress_vec(input, out, flush)
            .expect("deflating into memory cannot fail");
        input = &input[(deflate.total_in() - taken) as usize..];
        let flushed = match flush {
            FlushCompress::Finish => status == Status::StreamEnd,
            FlushCompress::None => true,
            _ => out.len() < out.capacity(),
        };
        if input.is_empty() && flushed {
            return;
        }
    }
}

/// `parts` gzipped with none of them kept, for tests.
#[cfg(test)]
pub(super) fn gzip_plain(parts: &[&[u8]]) -> Vec<u8> {
    let parts: Vec<BodyPart> = parts.iter().map(|&bytes| bytes.into()).collect();
    gzip(&parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use std::sync::OnceLock;

    impl DeflateCache for OnceLock<Deflated> {
        fn get_or_deflate(&self, deflate: &dyn Fn() -> Deflated) -> (&[u8], u32) {
            let (blocks, crc32) = self.get_or_init(deflate);
            (blocks, *crc32)
        }
    }

    /// What a single-member gzip decoder reads from `packed`.
    fn inflate(packed: &[u8]) -> Vec<u8> {
        let mut plain = Vec::new();
        GzDecoder::new(packed).read_to_end(&mut plain).unwrap();
        plain
    }

    #[test]
    fn each_body_is_deflated_from_a_fresh_state() {
        let first: &[u8] = b"one body, deflated first, and again last";
        let packed = gzip_plain(&[first]);
        assert_eq!(inflate(&gzip_plain(&[b"another body"])), b"another body");
        assert_eq!(
            gzip_plain(&[first]),
            packed,
            "the same bytes as the first time"
        );
    }

    #[test]
    fn round_trip() {
        let packed = gzip_plain(&[b"{\"instances\":", b"[]}"]);
        assert_eq!(&packed[..2], [0x1f, 0x8b]);
        assert_eq!(gunzip(&packed, 100).unwrap(), b"{\"instances\":[]}");
    }

    #[test]
    fn kept_parts_are_deflated_once_and_read_back_in_one_member() {
        let instances: Vec<u8> = (0..3000)
            .flat_map(|i| {
                format!(r#"{{"instanceId":"10.0.{i}.1:8080","status":"up"}},"#).into_bytes()
            })
            .collect();
        let kept = OnceLock::<Deflated>::new();
        let stored = vec![b'x'; 150_000]; // more than one stored block
        let parts = [
            BodyPart::from(&b"{\"a\":"[..]),
            BodyPart {
                bytes: &instances,
                shared: None,
                deflated: Some(&kept),
            },
            BodyPart::from(&stored[..]),
            BodyPart {
                bytes: &instances,
                shared: None,
                deflated: Some(&kept),
            },
            BodyPart::from(&b"}"[..]),
        ];
        let expected = [&b"{\"a\":"[..], &instances, &stored, &instances, b"}"].concat();
        let first = gzip(&parts);
        let blocks = kept.get().expect("made by the first reply").0.as_ptr();
        assert_eq!(inflate(&first), expected);
        assert_eq!(gunzip(&first, 1 << 20).unwrap(), expected);
        let again = gzip(&parts);
        assert_eq!(again, first);
        assert_eq!(kept.get().unwrap().0.as_ptr(), blocks, "not deflated again");
        assert!(kept.get().unwrap().0.len() < instances.len() / 4);
    }

    #[test]
    fn kept_parts_at_either_end_and_empty_ones_read_back() {
        let (a, b) = (OnceLock::<Deflated>::new(), OnceLock::<Deflated>::new());
        let parts = [
            BodyPart {
                bytes: b"[first]",
                shared: None,
                deflated: Some(&a),
            },
            BodyPart::from(&b""[..]),
            BodyPart {
                bytes: b"",
                shared: None,
                deflated: Some(&b),
            },
        ];
        assert_eq!(inflate(&gzip(&parts)), b"[first]");
    }

    #[test]
    fn any_mix_of_kept_and_plain_parts_reads_back() {
        let mut rng = crate::noise::Rng(0x9e37_79b9_7f4a_7c15);
        let mut next = |below: usize| rng.below(below);
        for _ in 0..60 {
            let bodies: Vec<Vec<u8>> = (0..1 + next(6))
                .map(|_| {
                    let len = if next(8) == 0 {
                        66_000 + next(10_000)
                    } else {
                        next(3000)
                    };
                    let alphabet = 1 + next(60) as u8;
                    (0..len)
                        .map(|_| b' ' + next(alphabet as usize) as u8)
                        .collect()
                })
                .collect();
            let cells: Vec<OnceLock<Deflated>> = bodies.iter().map(|_| OnceLock::new()).collect();
            let parts: Vec<BodyPart> = bodies
                .iter()
                .zip(&cells)
                .map(|(bytes, cell)| BodyPart {
                    bytes,
                    shared: None,
                    deflated: (next(2) == 0).then_some(cell as &dyn DeflateCache),
                })
                .collect();
            let packed = gzip(&parts);
            assert_eq!(inflate(&packed), bodies.concat());
            assert_eq!(
                gzip(&parts),
                packed,
                "kept parts give the same member again"
            );
        }
    }

    #[test]
    fn concatenated_members_are_joined() {
        let packed = [gzip_plain(&[b"ab"]), gzip_plain(&[b"cd"])].concat();
        assert_eq!(gunzip(&packed, 100).unwrap(), b"abcd");
    }

    #[test]
    fn bombs_stop_at_the_limit() {
        let plain = vec![b'a'; 10 << 20];
        let bomb = gzip_plain(&[&plain]);
        assert!(bomb.len() < 100 << 10);
        assert_eq!(gunzip(&bomb, 1 << 20), Err(HttpError::BodyTooLarge));
        assert_eq!(gunzip(&bomb, 10 << 20).unwrap().len(), 10 << 20);
    }

    #[test]
    fn garbage_is_a_bad_request() {
        assert!(matches!(
            gunzip(b"not gzip", 100),
            Err(HttpError::BadRequest(_))
        ));
        let packed = gzip_plain(&[b"truncated body"]);
        let cut = &packed[..packed.len() - 4];
        assert!(matches!(gunzip(cut, 100), Err(HttpError::BadRequest(_))));
    }
}
