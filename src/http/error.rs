//! Why a request could not be read. Each error maps to the status the server answers
//! with before it closes the connection: after one of these the byte stream can no
//! longer be trusted to find where the next request starts.

use http::StatusCode;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    /// 400: malformed request line, headers, Content-Length, chunk framing or gzip body.
    BadRequest(&'static str),
    /// 431: the head is longer than `Limits::max_head` or has too many headers.
    HeadTooLarge,
    /// 413: the body (declared, de-chunked or gunzipped) is longer than `Limits::max_body`.
    BodyTooLarge,
    /// 501: a Transfer-Encoding other than `chunked`.
    UnsupportedTransferEncoding,
    /// 415: a Content-Encoding other than `gzip` or `identity`.
    UnsupportedContentEncoding,
}

impl HttpError {
    pub fn status(&self) -> StatusCode {
        match self {
            HttpError::BadRequest(_) => StatusCode::BAD_REQUEST,
            HttpError::HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            HttpError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            HttpError::UnsupportedTransferEncoding => StatusCode::NOT_IMPLEMENTED,
            HttpError::UnsupportedContentEncoding => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    pub fn message(&self) -> &'static str {
        match self {
            HttpError::BadRequest(why) => why,
            HttpError::HeadTooLarge => "request head too large",
            HttpError::BodyTooLarge => "request body too large",
            HttpError::UnsupportedTransferEncoding => "unsupported Transfer-Encoding",
            HttpError::UnsupportedContentEncoding => "unsupported Content-Encoding",
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status().as_u16(), self.message())
    }
}

impl std::error::Error for HttpError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(HttpError::BadRequest("x").status(), 400);
        assert_eq!(HttpError::HeadTooLarge.status(), 431);
        assert_eq!(HttpError::BodyTooLarge.status(), 413);
        assert_eq!(HttpError::UnsupportedTransferEncoding.status(), 501);
        assert_eq!(HttpError::UnsupportedContentEncoding.status(), 415);
    }

    #[test]
    fn message_and_display() {
        assert_eq!(HttpError::BadRequest("bad chunk").message(), "bad chunk");
        assert_eq!(
            HttpError::BodyTooLarge.to_string(),
            "413 request body too large"
        );
    }
}
