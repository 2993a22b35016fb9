//! What a peer's answer to a replication request means for each instance it carried, by
//! the table of docs/cluster.md (Java's `RegistryReplicationTool`, whose dispatcher is Eureka's):
//! `bad-request`, `no-permission`, `internal-service-error` and `service-unavailable` are final,
//! so the instance is dropped; `rate-limited`, `unknown`, any other code, a transport error, a
//! status other than 200 and a body that cannot be read are worth a retry. A whole-request `fail`
//! gives every instance its code.
//!
//! The answer is Java's `{"failedInstances":[{"errorCode","errorMessage","instance"}]|null,
//! "responseStatus":{"errorCode","message","status"}}`; property names match in any case, as
//! Jackson reads them.

use simd_json::prelude::*;
use simd_json::tape::{Object, Value};

use super::update::write_key;

/// What becomes of an instance a request carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The peer took it.
    Delivered,
    /// The peer refused it for good.
    Dropped,
    /// Send it again (at the front of its line, after the back-off).
    Retried,
}

/// What the peer said of a request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// One verdict for every instance.
    All(Verdict),
    /// The instances that failed, by key ([`write_key`]), each with its verdict; every other
    /// instance was delivered.
    Failed(Vec<(Vec<u8>, Verdict)>),
}

/// The verdict for an instance that failed with `code`.
pub(crate) fn verdict(code: &str) -> Verdict {
    match code {
        "bad-request" | "no-permission" | "internal-service-error" | "service-unavailable" => {
            Verdict::Dropped
        }
        _ => Verdict::Retried,
    }
}

/// Reads a reply with HTTP `status` and `body` (parsed in place).
pub(crate) fn read(status: u16, body: &mut [u8]) -> Answer {
    let retry = Answer::All(Verdict::Retried);
    if status != 200 {
        return retry;
    }
    let Ok(tape) = simd_json::to_tape(body) else {
        return retry;
    };
    let Some(reply) = tape.as_value().as_object() else {
        return retry;
    };
    let Some(response) = field(&reply, "responseStatus").and_then(|v| v.as_object()) else {
        return retry;
    };
    let text = |name| field(&response, name).and_then(ValueIntoString::into_string);
    match text("status") {
        Some("success") => Answer::All(Verdict::Delivered),
        Some("fail") => Answer::All(verdict(text("errorCode").unwrap_or_default())),
        Some("partial_fail") => {
            let failed = field(&reply, "failedInstances")
                .and_then(|v| v.as_array())
                .map(|list| {
                    list.iter()
                        .filter_map(|f| failure(f.as_object()?))
                        .collect()
                })
                .unwrap_or_default();
            Answer::Failed(failed)
        }
        _ => retry,
    }
}

/// A failed instance's key and verdict.
fn failure(failed: Object) -> Option<(Vec<u8>, Verdict)> {
    let code = field(&failed, "errorCode")?.into_string()?;
    let instance = field(&failed, "instance")?.as_object()?;
    let id = |name| field(&instance, name).and_then(ValueIntoString::into_string);
    let mut key = Vec::new();
    write_key(&mut key, id("regionId"), id("serviceId"), id("instanceId"));
    Some((key, verdict(code)))
}

/// The property `name` of `object`, in any case.
fn field<'a, 't>(object: &Object<'a, 't>, name: &str) -> Option<Value<'a, 't>> {
    object
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        read(status, &mut body.as_bytes().to_vec())
    }

    fn key(region: &str, service: &str, instance: &str) -> Vec<u8> {
        let mut out = Vec::new();
        write_key(&mut out, Some(region), Some(service), Some(instance));
        out
    }

    #[test]
    fn codes_are_final_or_worth_a_retry_as_javas_table_says() {
        for code in [
            "bad-request",
            "no-permission",
            "internal-service-error",
            "service-unavailable",
        ] {
            assert_eq!(verdict(code), Verdict::Dropped, "{code}");
        }
        for code in ["rate-limited", "unknown", "data-not-found", "whatever", ""] {
            assert_eq!(verdict(code), Verdict::Retried, "{code}");
        }
    }

    #[test]
    fn a_whole_reply_gives_every_instance_one_verdict() {
        let success = r#"{"failedInstances":null,"responseStatus":{"errorCode":"success","message":"","status":"success"}}"#;
        assert_eq!(answer(200, success), Answer::All(Verdict::Delivered));
        let limited = r#"{"failedInstances":null,"responseStatus":{"errorCode":"rate-limited","message":"Request is rate limited.","status":"fail"}}"#;
        assert_eq!(answer(200, limited), Answer::All(Verdict::Retried));
        let refused = r#"{"failedInstances":null,"responseStatus":{"errorCode":"no-permission","message":"","status":"fail"}}"#;
        assert_eq!(answer(200, refused), Answer::All(Verdict::Dropped));
        // Jackson reads property names in any case.
        let shouted = r#"{"RESPONSESTATUS":{"ERRORCODE":"bad-request","STATUS":"fail"}}"#;
        assert_eq!(answer(200, shouted), Answer::All(Verdict::Dropped));
    }

    #[test]
    fn no_usable_reply_is_worth_a_retry() {
        assert_eq!(answer(404, "{}"), Answer::All(Verdict::Retried));
        assert_eq!(answer(200, "<html>"), Answer::All(Verdict::Retried));
        assert_eq!(answer(200, "{}"), Answer::All(Verdict::Retried));
        let odd = r#"{"responseStatus":{"status":"unknown"}}"#;
        assert_eq!(answer(200, odd), Answer::All(Verdict::Retried));
    }

    #[test]
    fn a_partial_failure_names_each_failed_instance_by_key() {
        let body = r#"{"failedInstances":[
            {"errorCode":"no-permission","errorMessage":"x","instance":{"regionId":"FRA","serviceId":"S","instanceId":"a"}},
            {"errorCode":"rate-limited","errorMessage":"y","instance":{"regionId":"SHA","serviceId":"S","instanceId":"B"}},
            {"errorCode":"unknown","errorMessage":"no instance"}
        ],"responseStatus":{"errorCode":"partial_fail","message":"","status":"partial_fail"}}"#;
        assert_eq!(
            answer(200, body),
            Answer::Failed(vec![
                (key("fra", "s", "a"), Verdict::Dropped),
                (key("sha", "s", "b"), Verdict::Retried),
            ])
        );
    }
}
