//! gzip both ways, as Java's ziplet `CompressingFilter` does. Java clients and peers send
//! every body with `Content-Encoding: gzip`; it is inflated with a bounded output so a
//! small bomb cannot take the memory. Large replies are deflated for clients that accept it.

use super::HttpError;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::{Read, Write};

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

/// Deflates `parts`, written back to back, at the fast level.
pub(super) fn gzip(parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = parts.iter().map(|part| part.len()).sum();
    let mut encoder = GzEncoder::new(Vec::with_capacity(len / 4 + 64), Compression::fast());
    for part in parts {
        encoder
            .write_all(part)
            .expect("writing to a Vec cannot fail");
    }
    encoder.finish().expect("writing to a Vec cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let packed = gzip(&[b"{\"instances\":", b"[]}"]);
        assert_eq!(&packed[..2], [0x1f, 0x8b]);
        assert_eq!(gunzip(&packed, 100).unwrap(), b"{\"instances\":[]}");
    }

    #[test]
    fn concatenated_members_are_joined() {
        let packed = [gzip(&[b"ab"]), gzip(&[b"cd"])].concat();
        assert_eq!(gunzip(&packed, 100).unwrap(), b"abcd");
    }

    #[test]
    fn bombs_stop_at_the_limit() {
        let plain = vec![b'a'; 10 << 20];
        let bomb = gzip(&[&plain]);
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
        let packed = gzip(&[b"truncated body"]);
        let cut = &packed[..packed.len() - 4];
        assert!(matches!(gunzip(cut, 100), Err(HttpError::BadRequest(_))));
    }
}
