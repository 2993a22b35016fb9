//! The `responseStatus` every Java reply carries, and the objects around it.
//!
//! Java writes properties in alphabetical order, so each reply type is assembled from its fields
//! in that order; `responseStatus` sits wherever the alphabet puts it.

use std::collections::BTreeMap;

use artemis_shards::json::{write_key, write_response_status, write_str};
use artemis_shards::ErrorCode;

use super::decode::DecodeError;
use super::{Part, Response};

/// `ResponseStatusUtil.SUCCESS_STATUS`.
pub const SUCCESS: &[u8] = br#"{"errorCode":"success","message":"","status":"success"}"#;

/// A `fail` status with `code` and `message` (`None` writes `null`, as Java does for an
/// exception without a message).
pub fn fail_status(code: ErrorCode, message: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(96);
    write_response_status(&mut out, code.as_str(), message, "fail");
    out
}

/// `{"k1":v1,"k2":v2}` from fields already in alphabetical order.
pub fn object(fields: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        fields
            .iter()
            .map(|(k, v)| k.len() + v.len() + 4)
            .sum::<usize>()
            + 2,
    );
    out.push(b'{');
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_key(&mut out, key);
        out.extend_from_slice(value);
    }
    out.push(b'}');
    out
}

/// Appends `{"<service id>":[item,...],...}`, each item written by `item`: the shape of Java's
/// `Map<String, List<...>>` replies (leases and deltas by service).
pub fn write_by_service<K: AsRef<str>, T>(
    out: &mut Vec<u8>,
    groups: &BTreeMap<K, Vec<T>>,
    item: impl Fn(&mut Vec<u8>, &T),
) {
    out.push(b'{');
    for (i, (service_id, items)) in groups.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, service_id.as_ref());
        out.extend_from_slice(b":[");
        for (j, one) in items.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            item(out, one);
        }
        out.push(b']');
    }
    out.push(b'}');
}

/// A failed reply: `responseStatus` with `code`/`message`, and each of `null_fields` as `null`.
pub fn failure(code: ErrorCode, message: Option<&str>, null_fields: &[&str]) -> Response {
    let status = fail_status(code, message);
    let mut fields: Vec<(&str, &[u8])> = null_fields.iter().map(|f| (*f, &b"null"[..])).collect();
    fields.push(("responseStatus", &status));
    fields.sort_by_key(|(k, _)| *k);
    Response::json(vec![Part::Owned(object(&fields))])
}

/// The body of a protocol-level refusal.
pub fn refusal(message: &str) -> Vec<u8> {
    object(&[(
        "responseStatus",
        &fail_status(ErrorCode::BadRequest, Some(message)),
    )])
}

/// A 400 for a body that is not JSON or not of the request's shape.
pub fn malformed(error: DecodeError) -> Response {
    Response::refusal(http::StatusCode::BAD_REQUEST, &error.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_puts_fields_in_alphabetical_order() {
        let r = failure(ErrorCode::BadRequest, Some("request is null"), &["service"]);
        assert_eq!(
            r.parts[0].as_ref(),
            br#"{"responseStatus":{"errorCode":"bad-request","message":"request is null","status":"fail"},"service":null}"#
        );
        let r = failure(ErrorCode::InternalServiceError, None, &["services"]);
        assert_eq!(
            r.parts[0].as_ref(),
            br#"{"responseStatus":{"errorCode":"internal-service-error","message":null,"status":"fail"},"services":null}"#
        );
        let r = failure(ErrorCode::BadRequest, Some("x"), &["failedInstances"]);
        assert!(r.parts[0]
            .as_ref()
            .starts_with(br#"{"failedInstances":null,"responseStatus""#));
    }
}
