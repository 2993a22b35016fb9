//! Where a request body ends. A Content-Length body is a range of the connection buffer
//! and copies nothing; a chunked body is checked for complete framing first and copied
//! out only once all of it is here (a single chunk stays a range), so re-parsing after
//! every read costs a walk over the chunk lines, not over the data.

use super::{HttpError, Limits};
use std::ops::Range;

/// A request body: nothing, a range of the connection buffer, or bytes of its own
/// (after de-chunking several chunks, or gunzip).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Empty,
    InBuffer(Range<usize>),
    Owned(Vec<u8>),
}

impl Body {
    /// The body bytes; `buf` is the buffer the request was parsed from.
    pub fn bytes<'a>(&'a self, buf: &'a [u8]) -> &'a [u8] {
        match self {
            Body::Empty => &[],
            Body::InBuffer(range) => &buf[range.clone()],
            Body::Owned(bytes) => bytes,
        }
    }
}

/// How the head says the body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    Length(u64),
    Chunked,
}

const BAD_CHUNK: HttpError = HttpError::BadRequest("malformed chunked body");

/// Trailer fields are read and ignored; more than this many is an error.
const MAX_TRAILERS: usize = 16;

/// Finds the body that starts at `buf[start..]`: `Ok(Some((body, end)))` with `end` just
/// past it, or `Ok(None)` while bytes are still missing.
pub(super) fn frame(
    buf: &[u8],
    start: usize,
    framing: Framing,
    limits: &Limits,
) -> Result<Option<(Body, usize)>, HttpError> {
    match framing {
        Framing::Length(declared) => {
            let len = usize::try_from(declared)
                .ok()
                .filter(|&len| len <= limits.max_body)
                .ok_or(HttpError::BodyTooLarge)?;
            if buf.len() - start < len {
                return Ok(None);
            }
            Ok(Some((in_buffer(start..start + len), start + len)))
        }
        Framing::Chunked => dechunk(buf, start, limits),
    }
}

fn in_buffer(range: Range<usize>) -> Body {
    if range.is_empty() {
        Body::Empty
    } else {
        Body::InBuffer(range)
    }
}

fn dechunk(buf: &[u8], start: usize, limits: &Limits) -> Result<Option<(Body, usize)>, HttpError> {
    let (mut first, mut pieces, mut total) = (0..0, 0, 0);
    let walked = walk_chunks(buf, start, limits, |data| {
        if pieces == 0 {
            first = data.clone();
        }
        pieces += 1;
        total += data.len();
    })?;
    let Some(end) = walked else {
        return Ok(None);
    };
    if pieces <= 1 {
        return Ok(Some((in_buffer(first), end)));
    }
    let mut owned = Vec::with_capacity(total);
    walk_chunks(buf, start, limits, |data| {
        owned.extend_from_slice(&buf[data])
    })?;
    Ok(Some((Body::Owned(owned), end)))
}

/// Checks the chunked framing at `buf[start..]` and hands each chunk's data range to
/// `on_data`; returns the end of the body, or `None` while bytes are missing.
///
/// Data over `max_body` is refused as soon as a chunk size declares it. Framing (size
/// lines, extensions, trailers) is bounded too: the whole body on the wire may take at
/// most `2 * max_body + max_head` bytes, so a stream of tiny chunks or an endless
/// extension cannot grow the connection buffer without limit. Bytes past that bound are
/// not read, so the answer does not depend on how the bytes were cut into reads.
fn walk_chunks(
    full: &[u8],
    start: usize,
    limits: &Limits,
    mut on_data: impl FnMut(Range<usize>),
) -> Result<Option<usize>, HttpError> {
    let wire_limit = limits
        .max_body
        .saturating_mul(2)
        .saturating_add(limits.max_head);
    let buf = &full[..full.len().min(start.saturating_add(wire_limit))];
    let missing = || {
        if full.len() - start > wire_limit {
            Err(HttpError::BodyTooLarge)
        } else {
            Ok(None)
        }
    };
    let mut pos = start;
    let mut total = 0usize;
    loop {
        let Some((line_len, size)) = chunk_size_line(&buf[pos..])? else {
            return missing();
        };
        pos += line_len;
        if size == 0 {
            break;
        }
        total = total
            .checked_add(size)
            .filter(|&total| total <= limits.max_body)
            .ok_or(HttpError::BodyTooLarge)?;
        if buf.len() - pos < size.saturating_add(2) {
            return missing();
        }
        let data = pos..pos + size;
        pos = data.end + 2;
        if buf[data.end..pos] != *b"\r\n" {
            return Err(BAD_CHUNK);
        }
        on_data(data);
    }
    let mut trailers = [httparse::EMPTY_HEADER; MAX_TRAILERS];
    match httparse::parse_headers(&buf[pos..], &mut trailers) {
        Ok(httparse::Status::Complete((len, _))) => pos += len,
        Ok(httparse::Status::Partial) => return missing(),
        Err(_) => return Err(HttpError::BadRequest("malformed chunked trailer")),
    }
    Ok(Some(pos))
}

/// Reads `chunk-size [ ; extensions ] CRLF` at the start of `line`: `Some((line length,
/// size))`, or `None` while the line is incomplete. Extensions are skipped unread.
fn chunk_size_line(line: &[u8]) -> Result<Option<(usize, usize)>, HttpError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let rest = &line[digits..];
    let ext_len = rest
        .iter()
        .position(|&b| b != b'\t' && (b < b' ' || b == 0x7f))
        .unwrap_or(rest.len());
    let ext = rest[..ext_len].trim_ascii_start();
    if (digits == 0 && !line.is_empty()) || !(ext.is_empty() || ext[0] == b';') {
        return Err(BAD_CHUNK);
    }
    match &rest[ext_len..] {
        [] | [b'\r'] => Ok(None),
        [b'\r', b'\n', ..] => {
            let size = line[..digits].iter().try_fold(0usize, |size, &d| {
                let digit = (d as char).to_digit(16).unwrap_or_default() as usize;
                size.checked_mul(16)?.checked_add(digit)
            });
            let size = size.ok_or(HttpError::BodyTooLarge)?;
            Ok(Some((digits + ext_len + 2, size)))
        }
        _ => Err(BAD_CHUNK),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_head: 64,
        max_body: 32,
    };

    fn chunked(wire: &[u8]) -> Result<Option<(Vec<u8>, usize)>, HttpError> {
        Ok(frame(wire, 0, Framing::Chunked, &LIMITS)?
            .map(|(body, end)| (body.bytes(wire).to_vec(), end)))
    }

    #[test]
    fn content_length_is_a_range_of_the_buffer() {
        let buf = b"HEADhello!";
        let framed = frame(buf, 4, Framing::Length(5), &LIMITS).unwrap();
        assert_eq!(framed, Some((Body::InBuffer(4..9), 9)));
        assert_eq!(
            frame(buf, 4, Framing::Length(0), &LIMITS).unwrap(),
            Some((Body::Empty, 4))
        );
        assert_eq!(frame(buf, 4, Framing::Length(7), &LIMITS).unwrap(), None);
        assert_eq!(
            frame(buf, 4, Framing::Length(33), &LIMITS),
            Err(HttpError::BodyTooLarge)
        );
        assert_eq!(
            frame(buf, 4, Framing::Length(u64::MAX), &LIMITS),
            Err(HttpError::BodyTooLarge)
        );
    }

    #[test]
    fn chunks_are_joined() {
        let wire = b"5\r\nhello\r\n1;ext=\"x\"\r\n \r\nA \r\n0123456789\r\n0\r\n\r\nNEXT";
        let (body, end) = chunked(wire).unwrap().unwrap();
        assert_eq!(body, b"hello 0123456789");
        assert_eq!(&wire[end..], b"NEXT");
    }

    #[test]
    fn single_chunk_stays_in_the_buffer() {
        let wire = b"3\r\nabc\r\n0\r\n\r\n";
        let framed = frame(wire, 0, Framing::Chunked, &LIMITS).unwrap();
        assert_eq!(framed, Some((Body::InBuffer(3..6), wire.len())));
        let empty = frame(b"0\r\n\r\n", 0, Framing::Chunked, &LIMITS).unwrap();
        assert_eq!(empty, Some((Body::Empty, 5)));
    }

    #[test]
    fn trailers_are_skipped() {
        let wire = b"2\r\nhi\r\n0;last\r\nX-Checksum: 1\r\nY: 2\r\n\r\n";
        assert_eq!(chunked(wire).unwrap(), Some((b"hi".to_vec(), wire.len())));
    }

    #[test]
    fn every_prefix_is_incomplete() {
        let wire = b"2;a=b\r\nhi\r\n3\r\nyou\r\n0\r\nT: v\r\n\r\n";
        for cut in 0..wire.len() {
            assert_eq!(chunked(&wire[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert_eq!(
            chunked(wire).unwrap(),
            Some((b"hiyou".to_vec(), wire.len()))
        );
    }

    #[test]
    fn malformed_framing_is_rejected() {
        for wire in [
            &b"\r\n"[..],
            b"x\r\n",
            b"-1\r\n",
            b"5 x\r\n",
            b"5\n",
            b"5\rx",
            b"2\r\nhiX\r\n",
            b"2\r\nhi\r\n0\r\nbad trailer\r\n\r\n",
        ] {
            assert!(
                matches!(chunked(wire), Err(HttpError::BadRequest(_))),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
    }

    #[test]
    fn oversized_chunks_are_refused_before_their_data() {
        assert_eq!(chunked(b"21\r\n"), Err(HttpError::BodyTooLarge));
        assert_eq!(
            chunked(b"10\r\n0123456789abcdef\r\n11\r\n"),
            Err(HttpError::BodyTooLarge)
        );
        assert_eq!(
            chunked(b"fffffffffffffffffffff\r\n"),
            Err(HttpError::BodyTooLarge)
        );
    }

    #[test]
    fn unbounded_limits_do_not_overflow() {
        let limits = Limits {
            max_head: usize::MAX,
            max_body: usize::MAX,
        };
        let huge = b"ffffffffffffffff\r\nabc";
        assert_eq!(frame(huge, 0, Framing::Chunked, &limits), Ok(None));
        let declared = Framing::Length(u64::MAX);
        assert_eq!(frame(b"HEADabc", 4, declared, &limits), Ok(None));
    }

    #[test]
    fn endless_framing_is_bounded() {
        let mut wire = b"1;".to_vec();
        wire.resize(2 * 32 + 64 + 1, b'x');
        assert_eq!(chunked(&wire), Err(HttpError::BodyTooLarge));
        let tiny = b"1\r\nx\r\n".repeat(30);
        let tiny = [&tiny[..], b"0\r\n\r\n"].concat();
        assert_eq!(chunked(&tiny), Err(HttpError::BodyTooLarge));
    }

    /// Found with the `http_split` fuzz property: a framing error past the bound was a 400
    /// when the bytes came in one read, and a 413 when a read ended within the bound.
    #[test]
    fn bytes_past_the_framing_bound_are_not_read() {
        let mut wire = b"0;".to_vec();
        wire.resize(2 * 32 + 64 + 8, b'x');
        wire.extend_from_slice(b"\x01\r\n\r\n");
        assert_eq!(chunked(&wire), Err(HttpError::BodyTooLarge), "at once");
        assert_eq!(chunked(&wire[..100]), Ok(None));
    }
}
