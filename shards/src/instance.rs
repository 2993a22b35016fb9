//! An instance as clients send it, its identity, and its JSON fragment.
//!
//! The registry stores what the client registered and serves it back unchanged, so `Instance`
//! mirrors Java's DTO field by field (every field optional, as Jackson allows). Identity is the
//! case-insensitive `InstanceKey` (region, service, instance). The fragment is the instance's
//! Java-shaped JSON, written once per registration and concatenated into discovery responses.

use crate::json::{write_int, write_key, write_opt_str, write_str};

/// Java's `Map<String,String>` metadata: insertion order kept, values may be null.
pub type Metadata = Vec<(String, Option<String>)>;

/// One instance of a service, exactly as registered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Instance {
    pub region_id: Option<String>,
    pub zone_id: Option<String>,
    pub group_id: Option<String>,
    pub service_id: Option<String>,
    pub instance_id: Option<String>,
    pub machine_name: Option<String>,
    pub ip: Option<String>,
    pub port: i32,
    pub protocol: Option<String>,
    pub url: Option<String>,
    pub health_check_url: Option<String>,
    pub status: Option<String>,
    /// Java's `Map<String,String>`: insertion order kept, `None` for an absent map.
    pub metadata: Option<Metadata>,
}

/// Case-insensitive identity of an instance: `lower(region.service.instance)` in Java.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
///
/// Boxed strings rather than `String`s: a key is never grown, and the registry keeps a few of them
/// per instance (its slot, its index entry, its changes), so the spare capacity word adds up.
pub struct InstanceKey {
    pub region_id: Box<str>,
    pub service_id: Box<str>,
    pub instance_id: Box<str>,
}

impl Instance {
    /// The instance's identity; missing parts count as empty.
    pub fn key(&self) -> InstanceKey {
        let lower = |s: &Option<String>| s.as_deref().unwrap_or("").to_lowercase().into();
        InstanceKey {
            region_id: lower(&self.region_id),
            service_id: self.service_key().into(),
            instance_id: lower(&self.instance_id),
        }
    }

    /// The lowercased service id the shard files the instance under; missing counts as empty.
    pub fn service_key(&self) -> String {
        self.service_id.as_deref().unwrap_or("").to_lowercase()
    }

    /// A metadata value, by exact key.
    pub fn metadata_value(&self, key: &str) -> Option<&str> {
        self.metadata
            .as_ref()?
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Java's `Instance.toString()`: `lower(region/zone/service[/group]/instance)`, nulls as `null`.
    /// It prefixes every per-instance error message and names leases in `leases.json`.
    pub fn display_name(&self) -> String {
        fn named(s: &Option<String>) -> Option<&str> {
            Some(s.as_deref().unwrap_or("null"))
        }
        let group = self.group_id.as_deref().filter(|g| !g.trim().is_empty());
        let parts = [
            named(&self.region_id),
            named(&self.zone_id),
            named(&self.service_id),
            group,
            named(&self.instance_id),
        ];
        let mut name = String::with_capacity(64);
        for (i, part) in parts.into_iter().flatten().enumerate() {
            if i > 0 {
                name.push('/');
            }
            name.push_str(part);
        }
        if name.is_ascii() {
            name.make_ascii_lowercase();
            return name;
        }
        name.to_lowercase()
    }

    /// Appends the instance's Java-shaped JSON object (keys alphabetical, nulls written).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let field = |out: &mut Vec<u8>, first: bool, key: &str, value: &Option<String>| {
            if !first {
                out.push(b',');
            }
            write_key(out, key);
            write_opt_str(out, value.as_deref());
        };
        out.push(b'{');
        field(out, true, "groupId", &self.group_id);
        field(out, false, "healthCheckUrl", &self.health_check_url);
        field(out, false, "instanceId", &self.instance_id);
        field(out, false, "ip", &self.ip);
        field(out, false, "machineName", &self.machine_name);
        out.push(b',');
        write_key(out, "metadata");
        match &self.metadata {
            None => out.extend_from_slice(b"null"),
            Some(entries) => {
                out.push(b'{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_str(out, k);
                    out.push(b':');
                    write_opt_str(out, v.as_deref());
                }
                out.push(b'}');
            }
        }
        out.push(b',');
        write_key(out, "port");
        write_int(out, i64::from(self.port));
        field(out, false, "protocol", &self.protocol);
        field(out, false, "regionId", &self.region_id);
        field(out, false, "serviceId", &self.service_id);
        field(out, false, "status", &self.status);
        field(out, false, "url", &self.url);
        field(out, false, "zoneId", &self.zone_id);
        out.push(b'}');
    }

    /// The instance's JSON as a fresh buffer.
    pub fn to_json(&self) -> Vec<u8> {
        // Room for an instance as clients send it (about 450 bytes), so that it is not grown.
        let mut out = Vec::with_capacity(512);
        self.write_json(&mut out);
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Instance `I1` of the reference exchanges in docs/compatibility.md.
    pub(crate) fn i1() -> Instance {
        Instance {
            region_id: Some("SHA".into()),
            zone_id: Some("SHAJQ".into()),
            group_id: None,
            service_id: Some("framework.soa.testservice.v2.testservice".into()),
            instance_id: Some("10.2.3.4:8080".into()),
            machine_name: Some("host1".into()),
            ip: Some("10.2.3.4".into()),
            port: 8080,
            protocol: Some("http".into()),
            url: Some("http://10.2.3.4:8080/testservice/".into()),
            health_check_url: Some("http://10.2.3.4:8080/health".into()),
            status: Some("up".into()),
            metadata: Some(vec![("k".into(), Some("v".into()))]),
        }
    }

    /// The key of instance `id` of `service` in region `sha`.
    pub(crate) fn key(service: &str, id: &str) -> InstanceKey {
        InstanceKey {
            region_id: "sha".into(),
            service_id: service.into(),
            instance_id: id.into(),
        }
    }

    #[test]
    fn json_matches_java_shape() {
        let expected = r#"{"groupId":null,"healthCheckUrl":"http://10.2.3.4:8080/health","instanceId":"10.2.3.4:8080","ip":"10.2.3.4","machineName":"host1","metadata":{"k":"v"},"port":8080,"protocol":"http","regionId":"SHA","serviceId":"framework.soa.testservice.v2.testservice","status":"up","url":"http://10.2.3.4:8080/testservice/","zoneId":"SHAJQ"}"#;
        assert_eq!(String::from_utf8(i1().to_json()).unwrap(), expected);
    }

    #[test]
    fn empty_instance_writes_nulls() {
        let json = String::from_utf8(Instance::default().to_json()).unwrap();
        assert_eq!(
            json,
            r#"{"groupId":null,"healthCheckUrl":null,"instanceId":null,"ip":null,"machineName":null,"metadata":null,"port":0,"protocol":null,"regionId":null,"serviceId":null,"status":null,"url":null,"zoneId":null}"#
        );
    }

    #[test]
    fn display_name_is_lowercase_path() {
        assert_eq!(
            i1().display_name(),
            "sha/shajq/framework.soa.testservice.v2.testservice/10.2.3.4:8080"
        );
        let mut grouped = i1();
        grouped.group_id = Some("G1".into());
        assert_eq!(
            grouped.display_name(),
            "sha/shajq/framework.soa.testservice.v2.testservice/g1/10.2.3.4:8080"
        );
        let mut blank_group = i1();
        blank_group.group_id = Some("  ".into());
        assert_eq!(blank_group.display_name(), i1().display_name());
        assert_eq!(Instance::default().display_name(), "null/null/null/null");
    }

    #[test]
    fn key_ignores_case() {
        let mut other = i1();
        other.service_id = Some("FRAMEWORK.soa.TestService.v2.testservice".into());
        other.region_id = Some("sha".into());
        assert_eq!(other.key(), i1().key());
    }
}
