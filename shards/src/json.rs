//! Java-shaped JSON output.
//!
//! Java Artemis serializes with Jackson configured to sort properties alphabetically and to write
//! nulls, so every object this registry sends is written by hand, in that key order, through the
//! few helpers here. Nothing on the read path builds JSON: these run when an instance changes.

use std::io::Write as _;

/// Appends `s` as a JSON string literal (quotes included), escaping as Jackson does.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    // Most strings need no escape: one pass without branches (it vectorizes) finds out.
    let plain = !bytes.iter().fold(false, |any, &b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    if plain {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
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
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
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
