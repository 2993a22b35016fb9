//! What can go wrong, as one typed enum: the caller tells a refusal it must act on (a rejected
//! instance, a bad configuration) from a registry it cannot reach, without reading messages.
//! The server's `errorCode`s keep their meaning ([`ErrorCode`]); failover decides on them, so an
//! [`Error::Unavailable`] carries the last reason that made it give up.

use std::fmt;
use std::time::Duration;

use crate::model::FailedInstance;

/// Every failure of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The [`ClientConfig`](crate::ClientConfig) cannot work (no seed, an `https` seed, a zero
    /// interval).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// An instance lacks what the registry requires (`serviceId`, `instanceId`, `url`).
    #[error("invalid instance: {0}")]
    InvalidInstance(String),
    /// A client was created outside a tokio runtime.
    #[error("no tokio runtime: create the client inside one")]
    NoRuntime,
    /// A node could not be reached, or broke the connection, or answered outside HTTP 200
    /// without a status to read.
    #[error("{node}: {reason}")]
    Transport { node: String, reason: String },
    /// A node took longer than the configured timeout.
    #[error("{node}: no answer within {after:?}")]
    Timeout { node: String, after: Duration },
    /// A node answered something this client cannot read.
    #[error("{node}: malformed reply: {reason}")]
    Malformed { node: String, reason: String },
    /// The server refused the whole request (`status: fail`).
    #[error("the server answered {code}: {message}")]
    Server { code: ErrorCode, message: String },
    /// Some instances of a registry request failed; the others succeeded.
    #[error("{} instance(s) refused, the first: {}", .0.len(), first_reason(.0))]
    Rejected(Vec<FailedInstance>),
    /// Every attempt failed: nodes down, unreachable, or rate limiting that outlasted the
    /// retries. `last` is the reason of the last attempt.
    #[error("no node answered after {attempts} attempt(s); the last: {last}")]
    Unavailable { attempts: u32, last: Box<Error> },
}

fn first_reason(failed: &[FailedInstance]) -> String {
    failed.first().map_or_else(String::new, |f| {
        format!(
            "{} ({})",
            f.error_message.as_deref().unwrap_or(""),
            f.error_code.as_deref().unwrap_or("")
        )
    })
}

/// The server's `errorCode`, Java's set plus anything else it may send.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    BadRequest,
    RateLimited,
    NoPermission,
    DataNotFound,
    InternalServiceError,
    ServiceUnavailable,
    Unknown,
    /// A code this client does not know, as sent.
    Other(String),
}

impl ErrorCode {
    /// The code as the wire spells it (`data-not-found`).
    pub fn parse(code: &str) -> ErrorCode {
        match code {
            "bad-request" => ErrorCode::BadRequest,
            "rate-limited" => ErrorCode::RateLimited,
            "no-permission" => ErrorCode::NoPermission,
            "data-not-found" => ErrorCode::DataNotFound,
            "internal-service-error" => ErrorCode::InternalServiceError,
            "service-unavailable" => ErrorCode::ServiceUnavailable,
            "unknown" => ErrorCode::Unknown,
            other => ErrorCode::Other(other.to_string()),
        }
    }

    /// Java's `isServiceDown`: the node cannot serve; another one may.
    pub(crate) fn is_service_down(&self) -> bool {
        matches!(
            self,
            ErrorCode::InternalServiceError | ErrorCode::ServiceUnavailable
        )
    }

    /// Java's `isRerunnable`: the same request may succeed later.
    pub(crate) fn is_rerunnable(&self) -> bool {
        matches!(self, ErrorCode::RateLimited | ErrorCode::Unknown)
    }

    fn as_str(&self) -> &str {
        match self {
            ErrorCode::BadRequest => "bad-request",
            ErrorCode::RateLimited => "rate-limited",
            ErrorCode::NoPermission => "no-permission",
            ErrorCode::DataNotFound => "data-not-found",
            ErrorCode::InternalServiceError => "internal-service-error",
            ErrorCode::ServiceUnavailable => "service-unavailable",
            ErrorCode::Unknown => "unknown",
            ErrorCode::Other(code) => code,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn codes_round_trip_and_keep_javas_sets() {
        for code in [
            "bad-request",
            "rate-limited",
            "no-permission",
            "data-not-found",
            "internal-service-error",
            "service-unavailable",
            "unknown",
            "something-new",
        ] {
            assert_eq!(ErrorCode::parse(code).to_string(), code);
        }
        assert!(ErrorCode::ServiceUnavailable.is_service_down());
        assert!(ErrorCode::InternalServiceError.is_service_down());
        assert!(!ErrorCode::DataNotFound.is_service_down());
        assert!(ErrorCode::RateLimited.is_rerunnable());
        assert!(ErrorCode::Unknown.is_rerunnable());
        assert!(!ErrorCode::BadRequest.is_rerunnable());
    }
}
