//! One refused instance of a register, heartbeat or unregister batch.
//!
//! Java answers a batch with `partial_fail` and lists each refused instance, as sent, with its
//! error code and `Instance.toString() + ": " + reason` (Java's `FailedInstance`; docs/api.md, "The
//! instance"). The shard reports the instance's position in the client's request so the server can
//! merge per-shard replies back into request order.

use crate::error_code::ErrorCode;
use crate::instance::Instance;
use crate::json::{write_key, write_str};
use crate::rules::Rejection;

/// A failed entry of a registry reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedInstance {
    /// The instance's position in the client's request.
    pub index: u32,
    pub error_code: ErrorCode,
    pub error_message: String,
    /// The instance as the client sent it.
    pub instance: Instance,
}

impl FailedInstance {
    /// The entry for `instance`, refused for `rejection`.
    pub fn new(index: u32, rejection: Rejection, instance: Instance) -> FailedInstance {
        FailedInstance {
            index,
            error_code: rejection.code,
            error_message: format!("{}: {}", instance.display_name(), rejection.reason),
            instance,
        }
    }

    /// Appends `{"errorCode":..,"errorMessage":..,"instance":{..}}`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        write_key(out, "errorCode");
        write_str(out, self.error_code.as_str());
        out.push(b',');
        write_key(out, "errorMessage");
        write_str(out, &self.error_message);
        out.push(b',');
        write_key(out, "instance");
        self.instance.write_json(out);
        out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::tests::i1;

    #[test]
    fn json_is_java_shaped() {
        let failed = FailedInstance::new(
            3,
            Rejection {
                code: ErrorCode::DataNotFound,
                reason: "Instance is not exising! Need re-register.".into(),
            },
            i1(),
        );
        assert_eq!(failed.index, 3);
        let mut out = Vec::new();
        failed.write_json(&mut out);
        let expected = format!(
            r#"{{"errorCode":"data-not-found","errorMessage":"sha/shajq/framework.soa.testservice.v2.testservice/10.2.3.4:8080: Instance is not exising! Need re-register.","instance":{}}}"#,
            String::from_utf8(i1().to_json()).unwrap()
        );
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }
}
