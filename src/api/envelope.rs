//! The `responseStatus` every Java reply carries, and the objects around it.
//!
//! Java writes properties in alphabetical order, so each reply type is assembled from its fields
//! in that order; `responseStatus` sits wherever the alphabet puts it.

use std::collections::BTreeMap;

use artemis_shards::json::{write_key, write_response_status, write_str};
use artemis_shards::ErrorCode;

use super::{Part, Response};
use crate::decode::DecodeError;
use crate::metrics::Outcome;
use crate::rate_limit::LimitedOp;

/// `ResponseStatusUtil.SUCCESS_STATUS`.
pub(super) const SUCCESS: &[u8] = br#"{"errorCode":"success","message":"","status":"success"}"#;

/// A `fail` status with `code` and `message` (`None` writes `null`, as Java does for an
/// exception without a message).
pub(super) fn fail_status(code: ErrorCode, message: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(96);
    write_response_status(&mut out, code.as_str(), message, "fail");
    out
}

/// `{"k1":v1,"k2":v2}` from fields already in alphabetical order.
pub(super) fn object(fields: &[(&str, &[u8])]) -> Vec<u8> {
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
pub(super) fn write_by_service<K: AsRef<str>, T>(
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
pub(super) fn failure(code: ErrorCode, message: Option<&str>, null_fields: &[&str]) -> Response {
    let status = fail_status(code, message);
    let mut fields: Vec<(&str, &[u8])> = null_fields.iter().map(|f| (*f, &b"null"[..])).collect();
    fields.push(("responseStatus", &status));
    fields.sort_by_key(|(k, _)| *k);
    Response::json_with(Outcome::Fail(code), vec![Part::Owned(object(&fields))])
}

/// The reply to a request its rate limiter refused: the endpoint's own reply with the values
/// Java leaves in it (`null`, `0`, `false`) and the `rate-limited` status, HTTP 200.
pub(super) fn rate_limited(op: LimitedOp) -> Response {
    let status = fail_status(ErrorCode::RateLimited, Some("Request is rate limited."));
    let empty: &[(&str, &[u8])] = match op {
        LimitedOp::Register
        | LimitedOp::Heartbeat
        | LimitedOp::Unregister
        | LimitedOp::ReplicationRegister
        | LimitedOp::ReplicationHeartbeat
        | LimitedOp::ReplicationUnregister => &[("failedInstances", b"null")],
        LimitedOp::GetServices => &[("services", b"null")],
        LimitedOp::UpRegistryNodes | LimitedOp::UpDiscoveryNodes => &[("nodes", b"null")],
        LimitedOp::GetCluster => &[("nodeCount", b"0"), ("nodesStatus", b"null")],
        LimitedOp::GetLeases | LimitedOp::GetLegacyLeases => &[
            ("isSafe", b"false"),
            ("isSafeCheckEnabled", b"false"),
            ("leaseCount", b"0"),
            ("leaseUpdateCountLastTimeWindow", b"0"),
            ("leaseUpdateMaxCount", b"0"),
            ("leaseUpdateMaxCountLastUpdateTime", b"0"),
            ("leases", b"null"),
        ],
        LimitedOp::GetConfig => &[("properties", b"null"), ("sources", b"null")],
        LimitedOp::GetRouteRules => &[("routeRules", b"null")],
        LimitedOp::GetRouteRuleGroups => &[("routeRuleGroups", b"null")],
        LimitedOp::GetGroups => &[("groups", b"null")],
        LimitedOp::GetDeployment => &[
            ("appId", b"null"),
            ("ip", b"null"),
            ("machineName", b"null"),
            ("path", b"null"),
            ("port", b"0"),
            ("properties", b"null"),
            ("protocol", b"null"),
            ("regionId", b"null"),
            ("sources", b"null"),
            ("zoneId", b"null"),
        ],
    };
    let mut fields = empty.to_vec();
    fields.push(("responseStatus", &status));
    fields.sort_by_key(|(k, _)| *k);
    let outcome = Outcome::Fail(ErrorCode::RateLimited);
    Response::json_with(outcome, vec![Part::Owned(object(&fields))])
}

/// A 503 whose body is a `service-unavailable` failure saying why.
pub(super) fn unavailable(message: &str) -> Vec<u8> {
    object(&[(
        "responseStatus",
        &fail_status(ErrorCode::ServiceUnavailable, Some(message)),
    )])
}

/// The body of a protocol-level refusal.
pub(super) fn refusal(message: &str) -> Vec<u8> {
    object(&[(
        "responseStatus",
        &fail_status(ErrorCode::BadRequest, Some(message)),
    )])
}

/// A 400 for a body that is not JSON or not of the request's shape.
pub(super) fn malformed(error: DecodeError) -> Response {
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
        let r = rate_limited(LimitedOp::Heartbeat);
        assert_eq!(
            r.parts[0].as_ref(),
            br#"{"failedInstances":null,"responseStatus":{"errorCode":"rate-limited","message":"Request is rate limited.","status":"fail"}}"#
        );
        let r = rate_limited(LimitedOp::GetCluster);
        assert_eq!(
            r.parts[0].as_ref(),
            br#"{"nodeCount":0,"nodesStatus":null,"responseStatus":{"errorCode":"rate-limited","message":"Request is rate limited.","status":"fail"}}"#
        );
        let r = rate_limited(LimitedOp::GetGroups);
        assert_eq!(
            r.parts[0].as_ref(),
            br#"{"groups":null,"responseStatus":{"errorCode":"rate-limited","message":"Request is rate limited.","status":"fail"}}"#
        );
        let r = rate_limited(LimitedOp::GetRouteRules);
        assert!(r.parts[0]
            .as_ref()
            .starts_with(br#"{"responseStatus":{"errorCode":"rate-limited""#));
        assert!(r.parts[0].as_ref().ends_with(br#","routeRules":null}"#));
        let r = failure(ErrorCode::BadRequest, Some("x"), &["failedInstances"]);
        assert!(r.parts[0]
            .as_ref()
            .starts_with(br#"{"failedInstances":null,"responseStatus""#));
    }
}
