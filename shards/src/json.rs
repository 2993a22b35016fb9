//! Java-shaped JSON output.
//!
//! Java Artemis serializes with Jackson configured to sort properties alphabetically and to write
//! nulls, so every object this registry sends is written by hand, in that key order, through the
//! few helpers here. Nothing on the read path builds JSON: these run when an instance changes.
//! One of them, [`string_stop`], also finds where the strings of a request end for the plain
//! reader, since the bytes that end a string being read are the ones escaped in one written.

use std::io::Write as _;

/// Appends `s` as a JSON string literal (quotes included), escaping as Jackson does.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    // Most strings need no escape; the bytes before the first that does are copied as they are.
    if let Some(first) = string_stop(bytes) {
        for (i, &b) in bytes.iter().enumerate().skip(first) {
            let escape: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0x08 => b"\\b",
                0x0c => b"\\f",
                0x00..=0x1f => {
                    out.extend_from_slice(&bytes[start..i]);
                    out.extend_from_slice(format!("\\u{b:04X}").as_bytes());
                    start = i + 1;
                    continue;
                }
                _ => continue,
            };
            out.extend_from_slice(&bytes[start..i]);
            out.extend_from_slice(escape);
            start = i + 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Where the first byte that a JSON string cannot hold as it is (`"`, `\` or a control
/// character) lies in `bytes`: the end of a string being read plainly, or the first escape of one
/// being written. Looked for eight bytes at a time: ids and urls are too short for a vector
/// search's set-up to pay, and a byte at a time was most of the plain reader's time.
#[inline]
pub fn string_stop(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    // Per byte, its high bit when the byte is below `n`; a byte above a flagged one may be
    // flagged wrongly (a borrow), so only the lowest flag counts.
    let below = |word: u64, n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word & HIGHS;
    let mut chunks = bytes.chunks_exact(8);
    for (n, chunk) in chunks.by_ref().enumerate() {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let quote = word ^ (ONES * u64::from(b'"'));
        let backslash = word ^ (ONES * u64::from(b'\\'));
        let stops = below(quote, 1) | below(backslash, 1) | below(word, b' ');
        if stops != 0 {
            return Some(n * 8 + stops.trailing_zeros() as usize / 8);
        }
    }
    let rest = chunks.remainder();
    let at = rest
        .iter()
        .position(|&b| matches!(b, b'"' | b'\\' | ..b' '))?;
    Some(bytes.len() - rest.len() + at)
}

/// Appends a string literal, or `null` for `None`.
pub fn write_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => write_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// Appends `"key":` (the key is trusted to need no escaping).
pub fn write_key(out: &mut Vec<u8>, key: &str) {
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Appends an integer (formatted in place, with no `String` in between).
pub fn write_int(out: &mut Vec<u8>, n: i64) {
    write!(out, "{n}").expect("writing to a Vec cannot fail");
}

/// Appends Java's `ResponseStatus` object: `{"errorCode":..,"message":..,"status":..}`.
pub fn write_response_status(
    out: &mut Vec<u8>,
    error_code: &str,
    message: Option<&str>,
    status: &str,
) {
    out.extend_from_slice(b"{\"errorCode\":");
    write_str(out, error_code);
    out.extend_from_slice(b",\"message\":");
    write_opt_str(out, message);
    out.extend_from_slice(b",\"status\":");
    write_str(out, status);
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_string_stops_at_its_first_quote_backslash_or_control_character() {
        // Every stop at every place of the first three words, behind bytes that look like stops
        // to a careless word-wise test: a space, `!` and `#` around the stops' values, and bytes
        // with their high bit set.
        let fillers = [b' ', b'!', b'#', b'[', b']', 0x7f, 0x80, 0xa2, 0xdc, 0xff];
        for len in 0..24 {
            for filler in fillers {
                let mut bytes = vec![filler; len];
                assert_eq!(string_stop(&bytes), None, "{bytes:?}");
                for at in 0..len {
                    for stop in [b'"', b'\\', 0x00, 0x01, 0x1f] {
                        bytes[at] = stop;
                        assert_eq!(string_stop(&bytes), Some(at), "{bytes:?}");
                        if at + 1 < len {
                            bytes[at + 1] = b'"';
                            assert_eq!(string_stop(&bytes), Some(at), "{bytes:?}");
                            bytes[at + 1] = filler;
                        }
                        bytes[at] = filler;
                    }
                }
            }
        }
    }

    #[test]
    fn escapes_like_jackson() {
        assert_eq!(s("plain"), "\"plain\"");
        assert_eq!(s("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(s("l1\nl2\tx"), "\"l1\\nl2\\tx\"");
        assert_eq!(s("\u{1}"), "\"\\u0001\"");
        assert_eq!(s("ünï/code"), "\"ünï/code\"");
    }

    #[test]
    fn integers() {
        for n in [0, 7, -7, 8080, i64::MIN, i64::MAX] {
            let mut out = b"x".to_vec();
            write_int(&mut out, n);
            assert_eq!(out, format!("x{n}").as_bytes());
        }
    }

    #[test]
    fn response_status_shape() {
        let mut out = Vec::new();
        write_response_status(&mut out, "success", Some(""), "success");
        assert_eq!(
            out,
            br#"{"errorCode":"success","message":"","status":"success"}"#
        );
    }
}
