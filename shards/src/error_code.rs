//! Java's `ErrorCodes`: the `errorCode` strings a client branches on.
//!
//! The SDK decides whether to retry, re-register or mark a node down from these exact strings
//! (docs/api.md, "Error codes"), so they live in one enum and are spelled once, here.

/// One of Java's `ErrorCodes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    Success,
    PartialFail,
    BadRequest,
    RateLimited,
    NoPermission,
    DataNotFound,
    InternalServiceError,
    ServiceUnavailable,
}

impl ErrorCode {
    /// Every code, in declaration order: a code's place here is `code as usize`, which arrays
    /// counted by code (the server's request metrics) are indexed by.
    pub const ALL: [ErrorCode; 8] = [
        ErrorCode::Success,
        ErrorCode::PartialFail,
        ErrorCode::BadRequest,
        ErrorCode::RateLimited,
        ErrorCode::NoPermission,
        ErrorCode::DataNotFound,
        ErrorCode::InternalServiceError,
        ErrorCode::ServiceUnavailable,
    ];

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Success => "success",
            ErrorCode::PartialFail => "partial_fail",
            ErrorCode::BadRequest => "bad-request",
            ErrorCode::RateLimited => "rate-limited",
            ErrorCode::NoPermission => "no-permission",
            ErrorCode::DataNotFound => "data-not-found",
            ErrorCode::InternalServiceError => "internal-service-error",
            ErrorCode::ServiceUnavailable => "service-unavailable",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spelled_as_java() {
        let all = [
            (ErrorCode::Success, "success"),
            (ErrorCode::PartialFail, "partial_fail"),
            (ErrorCode::BadRequest, "bad-request"),
            (ErrorCode::RateLimited, "rate-limited"),
            (ErrorCode::NoPermission, "no-permission"),
            (ErrorCode::DataNotFound, "data-not-found"),
            (ErrorCode::InternalServiceError, "internal-service-error"),
            (ErrorCode::ServiceUnavailable, "service-unavailable"),
        ];
        for (i, (code, text)) in all.into_iter().enumerate() {
            assert_eq!(code.as_str(), text);
            assert_eq!((ErrorCode::ALL[i], code as usize), (code, i));
        }
    }
}
