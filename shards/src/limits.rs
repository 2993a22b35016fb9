//! How large a client may make one instance.
//!
//! Every string of an instance is the client's to choose, and the registry keeps it: in the
//! registration, in the service's discovery bytes, in every change kept for deltas. Java accepts
//! any size; here an instance with a field over its limit is refused, as one failed entry of the
//! batch (`bad-request`, naming the field), before any other check reads it. The limits are
//! generous for real fleets: ids of a few dozen bytes, metadata of a few hundred.
//!
//! Register checks every field. Heartbeat and unregister read only the instance's identity
//! (its ids), so only the ids are checked there: a client keeps heartbeating the instance it
//! registered, whatever else it sends.

use std::ops::RangeInclusive;

use crate::error_code::ErrorCode;
use crate::instance::Instance;
use crate::rules::Rejection;

/// The size limits of one instance. Two of them are settings (`--max-id-bytes`,
/// `--max-metadata-bytes`); the others are fixed:
///
/// - each other string (`ip`, `machineName`, `url`, `healthCheckUrl`, `protocol`, `status`):
///   [`InstanceLimits::MAX_STRING_BYTES`] (2 KiB);
/// - each metadata key: [`InstanceLimits::MAX_METADATA_KEY_BYTES`] (256 bytes);
/// - each metadata value: [`InstanceLimits::MAX_METADATA_VALUE_BYTES`] (8 KiB);
/// - the port: [`InstanceLimits::PORTS`] (0 to 65535).
///
/// Sizes are UTF-8 bytes as decoded, before any JSON escaping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstanceLimits {
    /// Bytes of each id: `regionId`, `zoneId`, `groupId`, `serviceId`, `instanceId`.
    pub max_id_bytes: usize,
    /// Bytes of the metadata, every key and value together.
    pub max_metadata_bytes: usize,
}

impl InstanceLimits {
    /// Default of `max_id_bytes`.
    pub const DEFAULT_ID_BYTES: usize = 256;
    /// Default of `max_metadata_bytes`.
    pub const DEFAULT_METADATA_BYTES: usize = 64 << 10;
    /// Bytes of each string that is not an id: `ip`, `machineName`, `url`, `healthCheckUrl`,
    /// `protocol`, `status`.
    pub const MAX_STRING_BYTES: usize = 2 << 10;
    /// Bytes of each metadata key.
    pub const MAX_METADATA_KEY_BYTES: usize = 256;
    /// Bytes of each metadata value.
    pub const MAX_METADATA_VALUE_BYTES: usize = 8 << 10;
    /// The ports an instance may have.
    pub const PORTS: RangeInclusive<i32> = 0..=65535;

    /// The ids only: what heartbeat and unregister read.
    pub fn check_ids(&self, instance: &Instance) -> Result<(), Rejection> {
        let ids = [
            ("regionId", &instance.region_id),
            ("zoneId", &instance.zone_id),
            ("groupId", &instance.group_id),
            ("serviceId", &instance.service_id),
            ("instanceId", &instance.instance_id),
        ];
        for (field, value) in ids {
            at_most(field, value.as_deref(), self.max_id_bytes)?;
        }
        Ok(())
    }

    /// Every field: what register stores. Ids first, then the other strings, the port and the
    /// metadata, each in Java's key order.
    pub fn check(&self, instance: &Instance) -> Result<(), Rejection> {
        self.check_ids(instance)?;
        let strings = [
            ("healthCheckUrl", &instance.health_check_url),
            ("ip", &instance.ip),
            ("machineName", &instance.machine_name),
            ("protocol", &instance.protocol),
            ("status", &instance.status),
            ("url", &instance.url),
        ];
        for (field, value) in strings {
            at_most(field, value.as_deref(), Self::MAX_STRING_BYTES)?;
        }
        if !Self::PORTS.contains(&instance.port) {
            return Err(bad_request(format!(
                "instance.port {} is not a port (0 to 65535)",
                instance.port
            )));
        }
        let Some(metadata) = &instance.metadata else {
            return Ok(());
        };
        let mut total = 0usize;
        for (key, value) in metadata {
            if key.len() > Self::MAX_METADATA_KEY_BYTES {
                return Err(bad_request(format!(
                    "instance.metadata has a key longer than {} bytes",
                    Self::MAX_METADATA_KEY_BYTES
                )));
            }
            let value = value.as_deref().unwrap_or("");
            if value.len() > Self::MAX_METADATA_VALUE_BYTES {
                return Err(bad_request(format!(
                    "instance.metadata.{key} is longer than {} bytes",
                    Self::MAX_METADATA_VALUE_BYTES
                )));
            }
            total += key.len() + value.len();
        }
        if total > self.max_metadata_bytes {
            return Err(bad_request(format!(
                "instance.metadata is longer than {} bytes (keys and values together)",
                self.max_metadata_bytes
            )));
        }
        Ok(())
    }
}

impl Default for InstanceLimits {
    fn default() -> InstanceLimits {
        InstanceLimits {
            max_id_bytes: Self::DEFAULT_ID_BYTES,
            max_metadata_bytes: Self::DEFAULT_METADATA_BYTES,
        }
    }
}

fn at_most(field: &str, value: Option<&str>, max: usize) -> Result<(), Rejection> {
    match value {
        Some(value) if value.len() > max => Err(bad_request(format!(
            "instance.{field} is longer than {max} bytes"
        ))),
        _ => Ok(()),
    }
}

fn bad_request(reason: String) -> Rejection {
    Rejection {
        code: ErrorCode::BadRequest,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::tests::i1;

    fn reason(result: Result<(), Rejection>) -> String {
        let rejection = result.unwrap_err();
        assert_eq!(rejection.code, ErrorCode::BadRequest);
        rejection.reason
    }

    /// `i1()` with `set` applied.
    fn with(set: impl FnOnce(&mut Instance)) -> Instance {
        let mut instance = i1();
        set(&mut instance);
        instance
    }

    #[test]
    fn i1_and_an_empty_instance_pass() {
        let limits = InstanceLimits::default();
        assert_eq!(limits.check(&i1()), Ok(()));
        assert_eq!(limits.check(&Instance::default()), Ok(()));
    }

    #[test]
    fn each_id_is_refused_one_byte_over_its_limit() {
        let limits = InstanceLimits::default();
        type Field = fn(&mut Instance) -> &mut Option<String>;
        let ids: [(&str, Field); 5] = [
            ("regionId", |i| &mut i.region_id),
            ("zoneId", |i| &mut i.zone_id),
            ("groupId", |i| &mut i.group_id),
            ("serviceId", |i| &mut i.service_id),
            ("instanceId", |i| &mut i.instance_id),
        ];
        for (name, field) in ids {
            let at = with(|i| *field(i) = Some("x".repeat(256)));
            assert_eq!(limits.check_ids(&at), Ok(()), "{name}");
            assert_eq!(limits.check(&at), Ok(()), "{name}");
            let over = with(|i| *field(i) = Some("x".repeat(257)));
            let expected = format!("instance.{name} is longer than 256 bytes");
            assert_eq!(reason(limits.check_ids(&over)), expected);
            assert_eq!(reason(limits.check(&over)), expected);
        }
    }

    #[test]
    fn the_id_limit_is_a_setting_in_bytes() {
        let limits = InstanceLimits {
            max_id_bytes: 8,
            ..InstanceLimits::default()
        };
        // Eight bytes in four characters, then nine in five.
        let id = |id: &str| Instance {
            instance_id: Some(id.into()),
            ..Instance::default()
        };
        assert_eq!(limits.check_ids(&id("éééé")), Ok(()));
        let over = id("éééée");
        assert_eq!(
            reason(limits.check_ids(&over)),
            "instance.instanceId is longer than 8 bytes"
        );
    }

    #[test]
    fn each_other_string_is_refused_over_2_kib_but_only_on_register() {
        let limits = InstanceLimits::default();
        type Field = fn(&mut Instance) -> &mut Option<String>;
        let strings: [(&str, Field); 6] = [
            ("healthCheckUrl", |i| &mut i.health_check_url),
            ("ip", |i| &mut i.ip),
            ("machineName", |i| &mut i.machine_name),
            ("protocol", |i| &mut i.protocol),
            ("status", |i| &mut i.status),
            ("url", |i| &mut i.url),
        ];
        for (name, field) in strings {
            let at = with(|i| *field(i) = Some("x".repeat(2048)));
            assert_eq!(limits.check(&at), Ok(()), "{name}");
            let over = with(|i| *field(i) = Some("x".repeat(2049)));
            assert_eq!(
                reason(limits.check(&over)),
                format!("instance.{name} is longer than 2048 bytes")
            );
            assert_eq!(limits.check_ids(&over), Ok(()), "{name}");
        }
    }

    #[test]
    fn ports_outside_0_to_65535_are_refused() {
        let limits = InstanceLimits::default();
        for port in [0, 1, 8080, 65535] {
            assert_eq!(limits.check(&with(|i| i.port = port)), Ok(()), "{port}");
        }
        for port in [-1, 65536, 99999, i32::MIN, i32::MAX] {
            let bad = with(|i| i.port = port);
            assert_eq!(
                reason(limits.check(&bad)),
                format!("instance.port {port} is not a port (0 to 65535)")
            );
            assert_eq!(limits.check_ids(&bad), Ok(()));
        }
    }

    #[test]
    fn metadata_keys_values_and_total() {
        let limits = InstanceLimits::default();
        let metadata =
            |entries: Vec<(String, Option<String>)>| with(|i| i.metadata = Some(entries));

        let key_at = metadata(vec![("k".repeat(256), Some("v".into()))]);
        assert_eq!(limits.check(&key_at), Ok(()));
        let key_over = metadata(vec![("k".repeat(257), Some("v".into()))]);
        assert_eq!(
            reason(limits.check(&key_over)),
            "instance.metadata has a key longer than 256 bytes"
        );

        let value_at = metadata(vec![("big".into(), Some("v".repeat(8192)))]);
        assert_eq!(limits.check(&value_at), Ok(()));
        let value_over = metadata(vec![("big".into(), Some("v".repeat(8193)))]);
        assert_eq!(
            reason(limits.check(&value_over)),
            "instance.metadata.big is longer than 8192 bytes"
        );

        // 8 entries of a 4-byte key and an 8188-byte value: 65536 bytes exactly, then one more.
        let entries = |last_value: usize| {
            (0..8)
                .map(|n| {
                    let value = if n == 7 { last_value } else { 8188 };
                    (format!("key{n}"), Some("v".repeat(value)))
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(limits.check(&metadata(entries(8188))), Ok(()));
        assert_eq!(
            reason(limits.check(&metadata(entries(8189)))),
            "instance.metadata is longer than 65536 bytes (keys and values together)"
        );
        // Heartbeat and unregister do not look at metadata.
        assert_eq!(limits.check_ids(&metadata(entries(8189))), Ok(()));
        // Null values count as empty.
        let nulls = metadata((0..100).map(|n| (format!("k{n}"), None)).collect());
        assert_eq!(limits.check(&nulls), Ok(()));
    }

    #[test]
    fn the_metadata_total_is_a_setting() {
        let limits = InstanceLimits {
            max_metadata_bytes: 10,
            ..InstanceLimits::default()
        };
        let entries =
            |value: &str| with(|i| i.metadata = Some(vec![("key".into(), Some(value.into()))]));
        assert_eq!(limits.check(&entries("1234567")), Ok(()));
        assert_eq!(
            reason(limits.check(&entries("12345678"))),
            "instance.metadata is longer than 10 bytes (keys and values together)"
        );
    }

    #[test]
    fn ids_are_checked_before_the_rest() {
        let limits = InstanceLimits::default();
        let both = with(|i| {
            i.url = Some("u".repeat(4096));
            i.service_id = Some("s".repeat(300));
        });
        assert_eq!(
            reason(limits.check(&both)),
            "instance.serviceId is longer than 256 bytes"
        );
    }
}
