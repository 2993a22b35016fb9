//! A registration's lease: how long an instance stays without a heartbeat.
//!
//! Every register starts a new lease; every heartbeat renews it. It is expired once
//! `now > renewal + ttl`, as in Java's lease manager (docs/compatibility.md, "Leases and
//! self-preservation"). Instances registered through the legacy Java path (metadata
//! `java_registry` non-blank) run under a separate, longer TTL and are listed apart.

use crate::instance::Instance;

/// The metadata key that marks a legacy instance.
pub const LEGACY_METADATA_KEY: &str = "java_registry";

/// The lease of one registered instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Lease {
    pub creation_ms: u64,
    pub renewal_ms: u64,
    pub ttl_ms: u64,
    pub legacy: bool,
}

impl Lease {
    /// A fresh lease: created and renewed at `now_ms`.
    pub(crate) fn new(now_ms: u64, ttl_ms: u64, legacy: bool) -> Lease {
        Lease {
            creation_ms: now_ms,
            renewal_ms: now_ms,
            ttl_ms,
            legacy,
        }
    }

    /// The last moment the lease is still alive.
    pub(crate) fn expires_at_ms(&self) -> u64 {
        self.renewal_ms.saturating_add(self.ttl_ms)
    }

    pub(crate) fn is_expired(&self, now_ms: u64) -> bool {
        now_ms > self.expires_at_ms()
    }

    pub(crate) fn renew(&mut self, now_ms: u64) {
        self.renewal_ms = now_ms;
    }
}

/// Whether `instance` registered through the legacy Java path.
pub(crate) fn is_legacy(instance: &Instance) -> bool {
    instance
        .metadata_value(LEGACY_METADATA_KEY)
        .is_some_and(|v| !v.trim().is_empty())
}

/// One lease as `leases.json` reports it. There is no eviction time: unregister removes a
/// lease at once, so Java's `evitionTime` is always 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseStatus {
    /// The service id as the instance sent it.
    pub service_id: String,
    /// `Instance::display_name()`.
    pub instance: String,
    pub creation_ms: u64,
    pub renewal_ms: u64,
    pub ttl_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::tests::i1;

    #[test]
    fn expires_strictly_after_ttl() {
        let mut lease = Lease::new(1_000, 20_000, false);
        assert_eq!((lease.creation_ms, lease.renewal_ms), (1_000, 1_000));
        assert!(!lease.is_expired(21_000));
        assert!(lease.is_expired(21_001));
        lease.renew(5_000);
        assert_eq!((lease.creation_ms, lease.renewal_ms), (1_000, 5_000));
        assert!(!lease.is_expired(25_000));
        assert!(lease.is_expired(25_001));
    }

    #[test]
    fn legacy_needs_non_blank_marker() {
        let with = |value: Option<&str>| {
            let mut instance = i1();
            instance
                .metadata
                .get_or_insert_with(Vec::new)
                .push((LEGACY_METADATA_KEY.into(), value.map(String::from)));
            is_legacy(&instance)
        };
        assert!(!is_legacy(&i1()));
        assert!(!with(None));
        assert!(!with(Some(" ")));
        assert!(with(Some("true")));
    }
}
