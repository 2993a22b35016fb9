//! The bookkeeping of the push and replication scenarios in one worker: which registered
//! instances still wait for their `new` change on a subscriber, and since when. Whether the
//! subscriber is on the node that took the register (push) or on another one (replication) makes
//! no difference here.
//!
//! Instances are matched by `instanceId`, which the register request carries once per instance
//! and the pushed change carries in its instance. Each worker subscribes to every service and
//! registers only its own instances, so a change of another worker's instance is simply not
//! found here; a second push of an instance registered once is not counted either.

use crate::clock::Nanos;
use crate::reply::string_after;
use std::collections::HashMap;

const INSTANCE_ID: &[u8] = b"\"instanceId\":\"";
const NEW: &[u8] = b"\"changeType\":\"new\"";

#[derive(Default)]
pub(crate) struct Pending {
    since: HashMap<Vec<u8>, Nanos>,
}

impl Pending {
    /// Waits for the push of every instance in register `request`, timed from `counted_from`.
    /// A newer register of the same instance replaces the older one's wait.
    pub(crate) fn watch(&mut self, request: &[u8], counted_from: Nanos) {
        for at in memchr::memmem::find_iter(request, INSTANCE_ID) {
            if let Some(id) = string_after(&request[at..], INSTANCE_ID) {
                self.since.insert(id.to_vec(), counted_from);
            }
        }
    }

    /// The time `push` was waited for since, if it is a `new` change someone waits for.
    pub(crate) fn arrived(&mut self, push: &[u8]) -> Option<Nanos> {
        memchr::memmem::find(push, NEW)?;
        self.since.remove(string_after(push, INSTANCE_ID)?)
    }

    /// Stops waiting for pushes waited for since before `deadline`; returns those times.
    pub(crate) fn expire(&mut self, deadline: Nanos) -> Vec<Nanos> {
        let mut expired = vec![];
        self.since.retain(|_, &mut since| {
            let keep = since >= deadline;
            if !keep {
                expired.push(since);
            }
            keep
        });
        expired
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.since.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_change_ends_the_wait_for_its_instance() {
        let mut p = Pending::default();
        p.watch(
            br#"POST / HTTP/1.1\r\n\r\n{"instances":[{"instanceId":"10.0.0.1:8080","ip":"x"}]}"#,
            5,
        );
        p.watch(
            br#"{"instances":[{"instanceId":"10.0.0.2:8080"},{"instanceId":"10.0.0.3:8080"}]}"#,
            7,
        );
        let push = |kind: &str, id: &str| {
            format!(
                r#"{{"changeTime":1,"changeType":"{kind}","instance":{{"instanceId":"{id}"}}}}"#
            )
        };
        assert_eq!(p.arrived(push("delete", "10.0.0.1:8080").as_bytes()), None);
        assert_eq!(p.arrived(push("new", "10.9.9.9:8080").as_bytes()), None);
        assert_eq!(p.arrived(push("new", "10.0.0.1:8080").as_bytes()), Some(5));
        assert_eq!(p.arrived(push("new", "10.0.0.1:8080").as_bytes()), None);
        assert_eq!(p.arrived(push("new", "10.0.0.3:8080").as_bytes()), Some(7));
        assert_eq!(p.expire(7), Vec::<Nanos>::new());
        assert_eq!(p.expire(8), vec![7]);
        assert!(p.is_empty());
    }
}
