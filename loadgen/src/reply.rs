//! Judges a reply: HTTP 200 and a Java `responseStatus` whose `status` is `success`.
//!
//! The hot path only searches for `"responseStatus":{` and its `"status":"` value, no JSON
//! parse. Quotes inside JSON strings are escaped, so the pattern cannot match inside a message.

use crate::failure::Failure;
use memchr::memmem;

const RESPONSE_STATUS: &[u8] = b"\"responseStatus\":{";
const STATUS: &[u8] = b"\"status\":\"";
const ERROR_CODE: &[u8] = b"\"errorCode\":\"";

pub(crate) fn judge(http_status: u16, body: &[u8]) -> Result<(), Failure> {
    if http_status != 200 {
        return Err(Failure::Http(http_status));
    }
    let response_status = memmem::find(body, RESPONSE_STATUS)
        .map(|at| &body[at + RESPONSE_STATUS.len()..])
        .ok_or(Failure::Malformed)?;
    let status = string_after(response_status, STATUS).ok_or(Failure::Malformed)?;
    if status == b"success" {
        return Ok(());
    }
    // Keys are in alphabetical order, so the first error code in the body is the first failed
    // instance's for `partial_fail`, and the response status's own otherwise.
    let code = string_after(body, ERROR_CODE).unwrap_or_default();
    Err(Failure::Status {
        status: String::from_utf8_lossy(status).into_owned(),
        code: String::from_utf8_lossy(code).into_owned(),
    })
}

/// The string value that follows the first `key` (which ends with the opening quote).
pub(crate) fn string_after<'a>(json: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let start = memmem::find(json, key)? + key.len();
    let len = memchr::memchr(b'"', &json[start..])?;
    Some(&json[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUCCESS: &[u8] = br#"{"failedInstances":null,"responseStatus":{"errorCode":"success","message":"","status":"success"}}"#;

    #[test]
    fn success_replies_pass() {
        assert_eq!(judge(200, SUCCESS), Ok(()));
        let discovery = br#"{"responseStatus":{"errorCode":"success","message":"","status":"success"},"service":{"instances":[{"status":"up"}]}}"#;
        assert_eq!(judge(200, discovery), Ok(()));
    }

    #[test]
    fn http_errors_come_first() {
        assert_eq!(judge(415, SUCCESS), Err(Failure::Http(415)));
    }

    #[test]
    fn partial_fail_reports_the_instance_error() {
        let body = br#"{"failedInstances":[{"errorCode":"data-not-found","errorMessage":"x: Instance is not exising! Need re-register.","instance":{}}],"responseStatus":{"errorCode":"partial_fail","message":"","status":"partial_fail"}}"#;
        assert_eq!(
            judge(200, body),
            Err(Failure::Status {
                status: "partial_fail".into(),
                code: "data-not-found".into()
            })
        );
    }

    #[test]
    fn fail_reports_its_code_despite_braces_in_the_message() {
        let body = br#"{"responseStatus":{"errorCode":"service-unavailable","message":"Current status: { node: a, \"status\":\"up\" }","status":"fail"},"service":null}"#;
        assert_eq!(
            judge(200, body),
            Err(Failure::Status {
                status: "fail".into(),
                code: "service-unavailable".into()
            })
        );
    }

    #[test]
    fn missing_response_status_is_malformed() {
        assert_eq!(judge(200, b"{}"), Err(Failure::Malformed));
    }
}
