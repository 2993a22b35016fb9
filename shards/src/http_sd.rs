//! Prometheus `http_sd` target groups, derived from the instances' discovery fragments.
//!
//! One group per instance, since each instance's labels are its own:
//! `{"targets":["ip:port"],"labels":{"__meta_artemis_region":..,...}}`. The groups are derived
//! from the fragments the shard already keeps rather than written at registration, so a registry
//! nobody scrapes for targets keeps no second copy of each instance, and one that is scraped
//! derives a service's groups once per version (`Service::targets`).
//!
//! The fragments are this crate's own output (`Instance::write_json`): one object of known keys
//! whose values are `null`, a string, an integer or (the metadata) an object of strings and
//! nulls, strings escaped as `json::write_str` escapes them. The reader here is that layout's,
//! not a general JSON parser: string values are copied as they are, still escaped, and so still
//! valid JSON strings.

/// Each instance field shown as a label, by its key in the fragment. A `null` field shows no
/// label (Prometheus reads an empty label as an absent one).
const LABELS: [(&[u8], &[u8]); 10] = [
    (b"regionId", b"__meta_artemis_region"),
    (b"zoneId", b"__meta_artemis_zone"),
    (b"groupId", b"__meta_artemis_group"),
    (b"serviceId", b"__meta_artemis_service"),
    (b"instanceId", b"__meta_artemis_instance_id"),
    (b"machineName", b"__meta_artemis_machine_name"),
    (b"protocol", b"__meta_artemis_protocol"),
    (b"status", b"__meta_artemis_status"),
    (b"url", b"__meta_artemis_url"),
    (b"healthCheckUrl", b"__meta_artemis_health_check_url"),
];

/// The prefix of a metadata entry's label; the entry's key follows, sanitized.
const METADATA: &[u8] = b"__meta_artemis_metadata_";

/// A value of a fragment; strings as their raw (escaped) bytes between the quotes.
enum Value<'a> {
    Null,
    Str(&'a [u8]),
    Int(&'a [u8]),
    Map(Vec<(&'a [u8], Option<&'a [u8]>)>),
}

/// Reads a fragment from its start.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// Steps over `b` if it comes next.
    fn eat(&mut self, b: u8) -> bool {
        let next = self.bytes.get(self.at) == Some(&b);
        self.at += usize::from(next);
        next
    }

    /// A string's raw bytes, quotes stepped over.
    fn string(&mut self) -> Option<&'a [u8]> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.at;
        loop {
            match *self.bytes.get(self.at)? {
                b'"' => break,
                // An escape is at least two bytes; what follows the backslash is never the end.
                b'\\' => self.at += 2,
                _ => self.at += 1,
            }
        }
        self.at += 1;
        Some(&self.bytes[start..self.at - 1])
    }

    fn null(&mut self) -> Option<()> {
        let rest = self.bytes.get(self.at..)?;
        rest.starts_with(b"null").then(|| self.at += 4)
    }

    fn value(&mut self) -> Option<Value<'a>> {
        match *self.bytes.get(self.at)? {
            b'n' => self.null().map(|()| Value::Null),
            b'"' => self.string().map(Value::Str),
            b'{' => {
                self.at += 1;
                let mut entries = Vec::new();
                while !self.eat(b'}') {
                    let key = self.string()?;
                    if !self.eat(b':') {
                        return None;
                    }
                    let value = match self.null() {
                        Some(()) => None,
                        None => Some(self.string()?),
                    };
                    entries.push((key, value));
                    self.eat(b',');
                }
                Some(Value::Map(entries))
            }
            _ => {
                let start = self.at;
                while matches!(self.bytes.get(self.at), Some(b'-' | b'0'..=b'9')) {
                    self.at += 1;
                }
                (self.at > start).then(|| Value::Int(&self.bytes[start..self.at]))
            }
        }
    }

    /// The fragment's fields, in its order.
    fn fields(mut self) -> Option<Vec<(&'a [u8], Value<'a>)>> {
        if !self.eat(b'{') {
            return None;
        }
        let mut fields = Vec::with_capacity(13);
        while !self.eat(b'}') {
            let key = self.string()?;
            if !self.eat(b':') {
                return None;
            }
            fields.push((key, self.value()?));
            self.eat(b',');
        }
        Some(fields)
    }
}

/// Appends the target group of the instance whose discovery fragment is `fragment`, preceded by
/// a `,` when `out` is not empty. An instance without an IP is no target: nothing is appended.
pub(crate) fn write_target_group(out: &mut Vec<u8>, fragment: &[u8]) {
    let Some(fields) = (Reader {
        bytes: fragment,
        at: 0,
    })
    .fields() else {
        return;
    };
    let field = |name: &[u8]| fields.iter().find(|(key, _)| *key == name).map(|f| &f.1);
    let (Some(Value::Str(ip)), Some(Value::Int(port))) = (field(b"ip"), field(b"port")) else {
        return;
    };
    if ip.is_empty() {
        return;
    }
    if !out.is_empty() {
        out.push(b',');
    }
    out.extend_from_slice(br#"{"targets":[""#);
    // An IPv6 address is bracketed before its port.
    let v6 = ip.contains(&b':') && !ip.starts_with(b"[");
    if v6 {
        out.push(b'[');
    }
    out.extend_from_slice(ip);
    if v6 {
        out.push(b']');
    }
    out.push(b':');
    out.extend_from_slice(port);
    out.extend_from_slice(br#""],"labels":{"#);
    let mut first = true;
    let mut label = |out: &mut Vec<u8>, name: &[u8], value: &[u8]| {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(name);
        out.extend_from_slice(b"\":\"");
        out.extend_from_slice(value);
        out.push(b'"');
    };
    for (key, name) in LABELS {
        if let Some(Value::Str(value)) = field(key) {
            label(out, name, value);
        }
    }
    if let Some(Value::Map(entries)) = field(b"metadata") {
        let mut named: Vec<(Vec<u8>, &[u8])> = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let Some(value) = value else { continue };
            let mut name = METADATA.to_vec();
            write_label_name(&mut name, key);
            // Keys that sanitize alike: the later entry wins, as a later put in Java's map.
            named.retain(|(earlier, _)| *earlier != name);
            named.push((name, value));
        }
        for (name, value) in named {
            label(out, &name, value);
        }
    }
    out.extend_from_slice(b"}}");
}

/// Appends `raw`, a JSON string's escaped contents, as label-name characters: letters, digits
/// and `_` kept, every other character (an escape is one, never a label character) as `_`.
fn write_label_name(out: &mut Vec<u8>, raw: &[u8]) {
    let text = String::from_utf8_lossy(raw);
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if chars.next() == Some('u') {
                    chars.nth(3);
                }
                out.push(b'_');
            }
            c if c.is_ascii_alphanumeric() || c == '_' => out.push(c as u8),
            _ => out.push(b'_'),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::tests::i1;
    use crate::instance::Instance;

    fn group(instance: &Instance) -> String {
        let mut out = Vec::new();
        write_target_group(&mut out, &instance.to_json());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn an_instance_is_a_target_with_its_fields_as_labels() {
        assert_eq!(
            group(&i1()),
            concat!(
                r#"{"targets":["10.2.3.4:8080"],"labels":{"#,
                r#""__meta_artemis_region":"SHA","__meta_artemis_zone":"SHAJQ","#,
                r#""__meta_artemis_service":"framework.soa.testservice.v2.testservice","#,
                r#""__meta_artemis_instance_id":"10.2.3.4:8080","#,
                r#""__meta_artemis_machine_name":"host1","__meta_artemis_protocol":"http","#,
                r#""__meta_artemis_status":"up","#,
                r#""__meta_artemis_url":"http://10.2.3.4:8080/testservice/","#,
                r#""__meta_artemis_health_check_url":"http://10.2.3.4:8080/health","#,
                r#""__meta_artemis_metadata_k":"v"}}"#
            )
        );
    }

    #[test]
    fn label_names_are_sanitized_and_values_stay_escaped() {
        let mut instance = i1();
        instance.metadata = Some(vec![
            ("team.name".into(), Some("a \"quoted\" \\ value\n".into())),
            ("é-x\"y".into(), Some("1".into())),
            ("gone".into(), None),
            ("team-name".into(), Some("later".into())),
        ]);
        instance.group_id = Some("G1".into());
        let json = group(&instance);
        let parsed: serde_json::Value = serde_json::from_str(&json).expect(&json);
        let labels = parsed["labels"].as_object().unwrap();
        assert_eq!(labels["__meta_artemis_metadata_team_name"], "later");
        assert_eq!(labels["__meta_artemis_metadata___x_y"], "1");
        assert_eq!(labels["__meta_artemis_group"], "G1");
        assert!(!labels.contains_key("__meta_artemis_metadata_gone"));
        for name in labels.keys() {
            assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        }
        instance.metadata = Some(vec![("k".into(), Some("a \"q\" \\ v\n".into()))]);
        let parsed: serde_json::Value = serde_json::from_str(&group(&instance)).unwrap();
        assert_eq!(
            parsed["labels"]["__meta_artemis_metadata_k"],
            "a \"q\" \\ v\n"
        );
    }

    #[test]
    fn ipv6_is_bracketed_and_an_instance_without_ip_is_no_target() {
        let mut instance = i1();
        instance.ip = Some("fe80::1".into());
        assert!(group(&instance).starts_with(r#"{"targets":["[fe80::1]:8080"]"#));
        instance.ip = None;
        assert_eq!(group(&instance), "");
        instance.ip = Some(String::new());
        assert_eq!(group(&instance), "");
        let mut out = b"{}".to_vec();
        write_target_group(&mut out, &i1().to_json());
        assert!(out.starts_with(b"{},{\"targets\""));
        let bare = Instance {
            ip: Some("10.0.0.9".into()),
            port: -1,
            ..Instance::default()
        };
        assert_eq!(group(&bare), r#"{"targets":["10.0.0.9:-1"],"labels":{}}"#);
    }
}
