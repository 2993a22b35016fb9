//! Query-string parameters read the way Spring MVC reads them: pairs split on `&`,
//! `+` is a space, `%xx` is decoded, names match exactly (case-sensitive), and a name
//! may repeat (`?appIds=a&appIds=b`), so every value is returned in order.

use std::borrow::Cow;

/// All values of the parameter `name` in a raw query string (the part after `?`).
/// A name without `=` has the empty value; invalid UTF-8 is replaced, not refused.
pub(crate) fn query_values<'a>(
    query: &'a [u8],
    name: &'a str,
) -> impl Iterator<Item = String> + 'a {
    query.split(|&b| b == b'&').filter_map(move |pair| {
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &[][..]),
        };
        (!pair.is_empty() && *decode(key) == *name.as_bytes())
            .then(|| String::from_utf8_lossy(&decode(value)).into_owned())
    })
}

/// Percent-decodes `raw` with `+` as space; a `%` not followed by two hex digits stays.
fn decode(raw: &[u8]) -> Cow<'_, [u8]> {
    if !raw.iter().any(|&b| b == b'%' || b == b'+') {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let escaped = match raw.get(i + 1..i + 3) {
            Some(&[hi, lo]) => hex(hi).zip(hex(lo)).map(|(hi, lo)| hi << 4 | lo),
            _ => None,
        };
        match (raw[i], escaped) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (byte, _) => out.push(byte),
        }
        i += 1;
    }
    Cow::Owned(out)
}

fn hex(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|value| value as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(query: &str, name: &str) -> Vec<String> {
        query_values(query.as_bytes(), name).collect()
    }

    #[test]
    fn repeated_names_give_every_value() {
        assert_eq!(values("appIds=a&appIds=b&x=1", "appIds"), ["a", "b"]);
        assert_eq!(values("serviceId=s1&regionId=SHA", "regionId"), ["SHA"]);
        assert!(values("serviceId=s1", "zoneId").is_empty());
    }

    #[test]
    fn names_are_case_sensitive() {
        assert!(values("ServiceId=s1", "serviceId").is_empty());
    }

    #[test]
    fn values_are_decoded() {
        assert_eq!(values("q=a+b%20c%2Fd%e4%B8%AD", "q"), ["a b c/d中"]);
        assert_eq!(values("q=100%&q=%zz&q=%4", "q"), ["100%", "%zz", "%4"]);
        assert_eq!(values("q=%ff", "q"), ["\u{fffd}"]);
        assert_eq!(values("q=%+1", "q"), ["% 1"]);
    }

    #[test]
    fn names_are_decoded_too() {
        assert_eq!(values("app%49ds=x&a+b=y", "appIds"), ["x"]);
        assert_eq!(values("a+b=y", "a b"), ["y"]);
    }

    #[test]
    fn bare_names_and_empty_pairs() {
        assert_eq!(values("flag&&flag=&x", "flag"), ["", ""]);
        assert_eq!(values("a=b=c", "a"), ["b=c"]);
        assert!(values("", "").is_empty());
        assert_eq!(values("=v", ""), ["v"]);
    }
}
