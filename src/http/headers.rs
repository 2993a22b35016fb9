//! The little grammar of header values the parser cares about: comma-separated token
//! lists, `;`-parameters, q-values and Content-Length digits. Everything works on the
//! raw bytes in the connection buffer and compares case-insensitively without allocating.

/// The non-empty, trimmed items of a comma-separated header value.
pub(super) fn items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|item| !item.is_empty())
}

/// Whether a comma-separated list such as `Connection: keep-alive, Upgrade` holds `token`.
pub(super) fn has_item(value: &[u8], token: &str) -> bool {
    items(value).any(|item| item.eq_ignore_ascii_case(token.as_bytes()))
}

/// Whether `Accept-Encoding` admits gzip: listed as `gzip` or `x-gzip` without `q=0`.
pub(super) fn accepts_gzip(value: &[u8]) -> bool {
    items(value).any(|item| {
        let mut parts = item.split(|&b| b == b';');
        let coding = parts.next().unwrap_or_default().trim_ascii();
        is_gzip(coding) && !parts.any(is_q_zero)
    })
}

/// Whether a content coding names gzip (`x-gzip` is its registered alias).
pub(super) fn is_gzip(coding: &[u8]) -> bool {
    coding.eq_ignore_ascii_case(b"gzip") || coding.eq_ignore_ascii_case(b"x-gzip")
}

fn is_q_zero(param: &[u8]) -> bool {
    let Some(eq) = param.iter().position(|&b| b == b'=') else {
        return false;
    };
    let (name, value) = (param[..eq].trim_ascii(), param[eq + 1..].trim_ascii());
    match value.split_first() {
        Some((b'0', rest)) if name.eq_ignore_ascii_case(b"q") => {
            let fraction = rest.strip_prefix(b".").unwrap_or(rest);
            fraction.iter().all(|&b| b == b'0')
        }
        _ => false,
    }
}

/// The media type of a `Content-Type` value, without parameters such as `charset`.
pub(super) fn media_type(value: &[u8]) -> &[u8] {
    let end = value.iter().position(|&b| b == b';').unwrap_or(value.len());
    value[..end].trim_ascii()
}

/// A Content-Length value: `None` when it is not a plain decimal number,
/// `u64::MAX` when it is one too big for any limit.
pub(super) fn content_length(value: &[u8]) -> Option<u64> {
    let digits = value.trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let exact = digits.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    });
    Some(exact.unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_items_are_trimmed_and_case_insensitive() {
        let all: Vec<&[u8]> = items(b" a , ,B,\tc ").collect();
        assert_eq!(all, [&b"a"[..], b"B", b"c"]);
        assert!(has_item(b"Keep-Alive, Upgrade", "upgrade"));
        assert!(!has_item(b"keep-alive-ish", "keep-alive"));
    }

    #[test]
    fn gzip_acceptance_honours_q_zero() {
        assert!(accepts_gzip(b"gzip"));
        assert!(accepts_gzip(b"deflate, GZIP;q=0.5"));
        assert!(accepts_gzip(b"x-gzip"));
        assert!(accepts_gzip(b"gzip; q=1.0"));
        assert!(!accepts_gzip(b"gzip;q=0"));
        assert!(!accepts_gzip(b"gzip ; Q = 0.000"));
        assert!(!accepts_gzip(b"deflate, br"));
        assert!(!accepts_gzip(b"gzipped"));
        assert!(!accepts_gzip(b""));
    }

    #[test]
    fn media_type_drops_parameters() {
        assert_eq!(
            media_type(b" application/json ; charset=UTF-8"),
            b"application/json"
        );
        assert_eq!(media_type(b"text/plain"), b"text/plain");
        assert_eq!(media_type(b""), b"");
    }

    #[test]
    fn content_length_digits() {
        assert_eq!(content_length(b"0"), Some(0));
        assert_eq!(content_length(b" 42 "), Some(42));
        assert_eq!(content_length(b"99999999999999999999999"), Some(u64::MAX));
        assert_eq!(content_length(b""), None);
        assert_eq!(content_length(b"-1"), None);
        assert_eq!(content_length(b"1,1"), None);
        assert_eq!(content_length(b"0x10"), None);
    }
}
