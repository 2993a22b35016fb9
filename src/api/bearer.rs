//! The secrets some endpoints require (the management token, the cluster token): read from an
//! `Authorization: Bearer <token>` header and compared in time that does not tell how much of a
//! guess was right.

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case).
pub(super) fn bearer_token(header: &[u8]) -> Option<&[u8]> {
    let (scheme, token) = header.trim_ascii().split_at_checked(6)?;
    match scheme.eq_ignore_ascii_case(b"bearer") && token.first()?.is_ascii_whitespace() {
        true => Some(token.trim_ascii()),
        false => None,
    }
}

/// Compares a token with the secret in time that depends on their lengths only.
pub(super) fn same_secret(token: &[u8], secret: &[u8]) -> bool {
    let differ = token
        .iter()
        .zip(secret)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    token.len() == secret.len() && std::hint::black_box(differ) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer_token(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"  bearer   abc  "), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"Basic abc"), None);
        assert_eq!(bearer_token(b"Bearerabc"), None);
        assert_eq!(bearer_token(b"Bearer"), None);
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(!same_secret(b"s3cre", b"s3cret"));
        assert!(!same_secret(b"s3cret!", b"s3cret"));
        assert!(!same_secret(b"S3cret", b"s3cret"));
        assert!(!same_secret(b"", b"s3cret"));
    }
}
