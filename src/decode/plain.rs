//! Request bodies in the plain shape Java's clients send, read in one pass.
//!
//! A register, heartbeat or unregister body is `{"instances":[{...}]}` whose instances hold
//! strings without escapes, an integer port and a flat metadata map; a discovery body is
//! `{"discoveryConfig":{"serviceId":..},"regionId":..,"zoneId":..}` of such strings (or
//! `discoveryConfigs`, a list of such configs, for a lookup). Read straight into the request,
//! without simd-json's tape in between, such a body takes about two thirds of the time the full
//! decoder takes (when the reader came, the load generator's heartbeat: 640 against 980 ns; its
//! service request: 190 against 285 ns). The reader gives up at the first thing outside that
//! shape (an escape, a number where a string is expected, an unknown property holding an object,
//! a byte-order mark, anything after the body, malformed JSON) and the full decoder reads the
//! body instead: so a body read here reads exactly as it would there, and every error comes from
//! there.

use artemis_shards::json::string_stop;
use artemis_shards::{Instance, Metadata};

use super::{
    field, names, put, zone_slot, DiscoveryConfig, Field, InstancesRequest, LookupRequest,
    ServiceRequest, ZoneRequest,
};

/// Gives up: the body is not plain.
type Plain<T> = Option<T>;

/// The plain body's instances request, or `None` when the body is not plain.
pub(super) fn instances_request(body: &[u8]) -> Plain<InstancesRequest> {
    let mut request = InstancesRequest {
        instances: None,
        by_key: false,
    };
    whole(body, |reader| {
        reader.members(|reader, key| {
            let by_key = names(key, "instancekeys");
            if by_key || names(key, "instances") {
                request.instances = reader.list(|reader| reader.object(instance))?;
                request.by_key = by_key;
                Some(())
            } else {
                reader.scalar()
            }
        })
    })?;
    Some(request)
}

/// The plain body's service request, or `None` when the body is not plain.
pub(super) fn service_request(body: &[u8]) -> Plain<ServiceRequest> {
    let mut config = None;
    let zone = zone_and(body, "discoveryconfig", |reader| {
        // A null config leaves the one read before, as the full decoder does.
        if let Some(read) = reader.object(discovery_config)? {
            config = Some(read);
        }
        Some(())
    })?;
    Some(ServiceRequest {
        discovery_config: config,
        region_id: zone.region_id,
        zone_id: zone.zone_id,
    })
}

/// The plain body's lookup request, or `None` when the body is not plain.
pub(super) fn lookup_request(body: &[u8]) -> Plain<LookupRequest> {
    let mut configs = None;
    let zone = zone_and(body, "discoveryconfigs", |reader| {
        configs = reader.list(|reader| reader.object(discovery_config))?;
        Some(())
    })?;
    Some(LookupRequest {
        discovery_configs: configs,
        region_id: zone.region_id,
        zone_id: zone.zone_id,
    })
}

/// A discovery body: its region and zone, with its property `field` (folded) read by `read`.
fn zone_and(
    body: &[u8],
    field: &str,
    mut read: impl FnMut(&mut Reader) -> Plain<()>,
) -> Plain<ZoneRequest> {
    let mut zone = ZoneRequest::default();
    whole(body, |reader| {
        reader.members(|reader, key| {
            if zone_field(reader, key, &mut zone)? {
                Some(())
            } else if names(key, field) {
                read(reader)
            } else {
                reader.scalar()
            }
        })
    })?;
    Some(zone)
}

/// Reads `regionId` or `zoneId` into `zone`; false when `key` is neither.
fn zone_field(reader: &mut Reader, key: &str, zone: &mut ZoneRequest) -> Plain<bool> {
    let Some(slot) = zone_slot(zone, key) else {
        return Some(false);
    };
    *slot = reader.text()?;
    Some(true)
}

/// A plain bare `DiscoveryConfig`, as WebSocket subscribers send it.
pub(super) fn discovery_config_request(body: &[u8]) -> Plain<DiscoveryConfig> {
    whole(body, discovery_config)
}

/// The body read by `read`, from its first byte, with nothing but whitespace after it.
fn whole<T>(body: &[u8], read: impl FnOnce(&mut Reader) -> Plain<T>) -> Plain<T> {
    let mut reader = Reader {
        json: std::str::from_utf8(body).ok()?,
        at: 0,
    };
    let read = read(&mut reader)?;
    reader.skip_space();
    (reader.at == body.len()).then_some(read)
}

/// The service id of a discovery config; its `discoveryData`, a map of strings, is read and
/// left, as the full decoder checks and leaves it.
fn discovery_config(reader: &mut Reader) -> Plain<DiscoveryConfig> {
    let mut config = DiscoveryConfig { service_id: None };
    reader.members(|reader, key| {
        if names(key, "serviceid") {
            config.service_id = reader.text()?;
        } else if names(key, "discoverydata") {
            reader.object(metadata)?;
        } else {
            reader.scalar()?;
        }
        Some(())
    })?;
    Some(config)
}

fn instance(reader: &mut Reader) -> Plain<Instance> {
    let mut i = Instance::default();
    reader.members(|reader, key| {
        match field(&mut i, key) {
            Field::Text(slot) => *slot = reader.text()?,
            Field::Port => i.port = reader.port()?,
            Field::Metadata => i.metadata = reader.object(metadata)?,
            Field::Ignored => reader.scalar()?,
        }
        Some(())
    })?;
    Some(i)
}

fn metadata(reader: &mut Reader) -> Plain<Metadata> {
    let mut entries = Metadata::new();
    reader.members(|reader, key| {
        put(&mut entries, key, reader.text()?);
        Some(())
    })?;
    Some(entries)
}

/// A position in a body (valid UTF-8, as JSON must be).
struct Reader<'a> {
    json: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    fn skip_space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.json.as_bytes().get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte after any whitespace, not consumed.
    fn peek(&mut self) -> Plain<u8> {
        self.skip_space();
        self.json.as_bytes().get(self.at).copied()
    }

    fn expect(&mut self, byte: u8) -> Plain<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// Consumes `word` (`null`, `true`, `false`) if it comes next.
    fn word(&mut self, word: &[u8]) -> bool {
        let found = self.json.as_bytes()[self.at..].starts_with(word);
        if found {
            self.at += word.len();
        }
        found
    }

    /// `null` (`None`) or an object read by `read`.
    fn object<T>(&mut self, read: impl FnOnce(&mut Self) -> Plain<T>) -> Plain<Option<T>> {
        match self.peek()? {
            b'{' => read(self).map(Some),
            _ => self.word(b"null").then_some(None),
        }
    }

    /// The members of an object, each key given to `member` to read its value.
    fn members(&mut self, mut member: impl FnMut(&mut Self, &str) -> Plain<()>) -> Plain<()> {
        self.expect(b'{')?;
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            self.skip_space();
            let key = self.string()?;
            self.expect(b':')?;
            member(self, key)?;
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// `null` (`None`) or an array whose items are `null` or read by `item`.
    fn list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Plain<Option<T>>,
    ) -> Plain<Option<Vec<Option<T>>>> {
        if self.peek()? != b'[' {
            return self.word(b"null").then_some(None);
        }
        self.at += 1;
        // Sized for one: most lists carry one item (a client's one instance, say).
        let mut items = Vec::with_capacity(1);
        if self.peek()? == b']' {
            self.at += 1;
            return Some(Some(items));
        }
        loop {
            items.push(item(self)?);
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(Some(items));
                }
                _ => return None,
            }
        }
    }

    /// A string without escapes or control characters, whose opening quote comes next.
    fn string(&mut self) -> Plain<&'a str> {
        let json = self.json.as_bytes();
        if json.get(self.at) != Some(&b'"') {
            return None;
        }
        let start = self.at + 1;
        let end = start + string_stop(&json[start..])?;
        if json[end] != b'"' {
            return None;
        }
        self.at = end + 1;
        Some(&self.json[start..end])
    }

    /// A string property: `null` or a plain string.
    fn text(&mut self) -> Plain<Option<String>> {
        if self.peek()? == b'"' {
            return self.string().map(|s| Some(s.to_owned()));
        }
        self.word(b"null").then_some(None)
    }

    /// A port: `null` (0), or an integer that fits Java's `int`.
    fn port(&mut self) -> Plain<i32> {
        if self.peek()? == b'n' {
            return self.word(b"null").then_some(0);
        }
        self.integer()?.parse().ok()
    }

    /// An integer in JSON's grammar, of at most 18 digits; its text.
    fn integer(&mut self) -> Plain<&'a str> {
        let (json, start) = (self.json.as_bytes(), self.at);
        let sign = usize::from(json.get(start) == Some(&b'-'));
        let digits = json[start + sign..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let leading_zero = digits > 1 && json[start + sign] == b'0';
        if digits == 0 || digits > 18 || leading_zero {
            return None;
        }
        self.at = start + sign + digits;
        match json.get(self.at) {
            Some(b'.' | b'e' | b'E') => None,
            _ => Some(&self.json[start..self.at]),
        }
    }

    /// An ignored value: a plain string, an integer, `true`, `false` or `null`.
    fn scalar(&mut self) -> Plain<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'-' | b'0'..=b'9' => self.integer().map(drop),
            _ => [&b"null"[..], b"true", b"false"]
                .into_iter()
                .any(|word| self.word(word))
                .then_some(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Debug;

    use super::super::instances_request as decoded;
    use super::*;
    use crate::decode::{decode, discovery_config as config_object, instances_object};
    use crate::decode::{lookup_object, service_object};
    use crate::noise::Rng;

    /// A body read one way: what it reads as, where it is read.
    type Reading<T> = fn(&[u8]) -> Option<T>;

    type Instances = (Option<Vec<Option<Instance>>>, bool);
    type Service = (Option<Option<String>>, Option<String>, Option<String>);

    fn instances_plainly(body: &[u8]) -> Option<Instances> {
        instances_request(body).map(|r| (r.instances, r.by_key))
    }

    fn instances_fully(body: &[u8]) -> Option<Instances> {
        let read = decode(&mut body.to_vec(), instances_object);
        read.ok().flatten().map(|r| (r.instances, r.by_key))
    }

    fn service(r: ServiceRequest) -> Service {
        (
            r.discovery_config.map(|c| c.service_id),
            r.region_id,
            r.zone_id,
        )
    }

    fn service_plainly(body: &[u8]) -> Option<Service> {
        service_request(body).map(service)
    }

    fn service_fully(body: &[u8]) -> Option<Service> {
        let read = decode(&mut body.to_vec(), service_object);
        read.ok().flatten().map(service)
    }

    type Lookup = (
        Option<Vec<Option<Option<String>>>>,
        Option<String>,
        Option<String>,
    );

    fn lookup(r: LookupRequest) -> Lookup {
        let services = |list: Vec<Option<DiscoveryConfig>>| {
            list.into_iter().map(|c| c.map(|c| c.service_id)).collect()
        };
        (r.discovery_configs.map(services), r.region_id, r.zone_id)
    }

    fn lookup_plainly(body: &[u8]) -> Option<Lookup> {
        lookup_request(body).map(lookup)
    }

    fn lookup_fully(body: &[u8]) -> Option<Lookup> {
        let read = decode(&mut body.to_vec(), lookup_object);
        read.ok().flatten().map(lookup)
    }

    fn config_plainly(body: &[u8]) -> Option<Option<String>> {
        discovery_config_request(body).map(|c| c.service_id)
    }

    fn config_fully(body: &[u8]) -> Option<Option<String>> {
        let read = decode(&mut body.to_vec(), config_object);
        read.ok().flatten().map(|c| c.service_id)
    }

    /// Each body is read plainly, and as the full decoder reads it.
    fn read_alike<T: PartialEq + Debug>(plainly: Reading<T>, fully: Reading<T>, bodies: &[&str]) {
        for body in bodies {
            let read = plainly(body.as_bytes());
            assert!(read.is_some(), "not read plainly: {body}");
            assert_eq!(read, fully(body.as_bytes()), "{body}");
        }
    }

    /// No body is read plainly: each is left to the full decoder, which reads it as Jackson
    /// does or refuses it.
    fn left<T: Debug>(plainly: Reading<T>, bodies: &[&str]) {
        for body in bodies {
            assert!(plainly(body.as_bytes()).is_none(), "read plainly: {body}");
        }
    }

    /// `base` damaged at random, a byte at a time, 20,000 times: whichever body the plain
    /// reader reads, it reads as the full decoder does.
    fn damaged<T: PartialEq + Debug>(base: &str, plainly: Reading<T>, fully: Reading<T>) {
        let alphabet = b"{}[],:\" 0-19.eEnultrfas\\\x01\xC3\xA9\xFF_I";
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut next = |below: usize| rng.below(below);
        let (mut read, tried) = (0, 20_000);
        for _ in 0..tried {
            let mut body = base.as_bytes().to_vec();
            for _ in 0..=next(3) {
                let at = next(body.len() + 1);
                match next(3) {
                    0 if at < body.len() => drop(body.remove(at)),
                    1 if at < body.len() => body[at] = alphabet[next(alphabet.len())],
                    _ => body.insert(at, alphabet[next(alphabet.len())]),
                }
            }
            if let Some(plain) = plainly(&body) {
                read += 1;
                let text = String::from_utf8_lossy(&body);
                assert_eq!(Some(plain), fully(&body), "{text}");
            }
        }
        assert!(read > tried / 10, "only {read} of {tried} read plainly");
    }

    const SDK_BODY: &str = r#"{"instances":[{"groupId":null,"healthCheckUrl":"http://10.0.0.1:8080/health","instanceId":"10.0.0.1:8080","ip":"10.0.0.1","machineName":"host1","metadata":{"k":"v","java_registry":null},"port":8080,"protocol":"http","regionId":"SHA","serviceId":"framework.soa.v1.service1","status":"up","url":"http://10.0.0.1:8080/service1/","zoneId":"SHAJQ"}]}"#;

    const SERVICE_BODY: &str = r#"{"discoveryConfig":{"discoveryData":null,"serviceId":"framework.soa.v1.service1"},"regionId":"SHA","zoneId":"SHAJQ"}"#;

    const LOOKUP_BODY: &str = r#"{"discoveryConfigs":[{"serviceId":"framework.soa.v1.service1"},null,{"discoveryData":{"k":"v"},"serviceId":"s2"}],"regionId":"SHA","zoneId":"SHAJQ"}"#;

    #[test]
    fn the_bodies_java_clients_send_are_read_plainly_and_as_the_full_decoder_reads_them() {
        let instance = &SDK_BODY["{\"instances\":[".len()..SDK_BODY.len() - 2];
        let (two, keys) = (
            format!("{{\"instances\":[{instance},null,{instance}]}}"),
            format!(" {{ \"instance_keys\" : [ {instance} ] }}\r\n"),
        );
        read_alike(
            instances_plainly,
            instances_fully,
            &[
                SDK_BODY,
                &two,
                &keys,
                r#"{"INSTANCES":[{"region_id":"r","PORT":-1,"port":2147483647,"port":0}]}"#,
                r#"{"instances":[{"metadata":{"b":"1","a":null,"b":"2"},"metadata":null}]}"#,
                r#"{"instances":[{"extra":12,"more":true,"less":false,"none":null,"s":"x"}]}"#,
                r#"{"instances":[{"ip":"é"}],"instances":[],"other":"x"}"#,
                r#"{"instances":null}"#,
                r#"{}"#,
            ],
        );
        read_alike(
            service_plainly,
            service_fully,
            &[
                SERVICE_BODY,
                r#"{"region_id":"r","ZONEID":null,"discoveryConfig":null}"#,
                r#"{"discoveryConfig":{"serviceId":"a"},"discoveryConfig":null,"x":1}"#,
                r#"{"discoveryConfig":{"serviceId":"a"},"discoveryConfig":{"other":"b"}}"#,
                r#"{"discoveryConfig":{"discoveryData":{"k":"v","n":null},"serviceId":"s"}}"#,
                r#"{}"#,
            ],
        );
        read_alike(
            lookup_plainly,
            lookup_fully,
            &[
                LOOKUP_BODY,
                r#"{"discoveryConfigs":[{"serviceId":"a"}],"discovery_configs":null}"#,
                r#"{"discoveryConfigs":[],"regionId":null,"other":false}"#,
            ],
        );
        read_alike(
            config_plainly,
            config_fully,
            &[
                r#"{"serviceId":"s","discoveryData":null,"regionId":"r"}"#,
                "{}",
            ],
        );
    }

    #[test]
    fn anything_else_is_left_to_the_full_decoder() {
        left(
            instances_plainly,
            &[
                r#"{"instances":[{"instanceId":"a\"b"}]}"#,
                "{\"instances\":[{\"instanceId\":\"a\u{1}b\"}]}",
                r#"{"instances":[{"instanceId":7}]}"#,
                r#"{"instances":[{"port":"80"}]}"#,
                r#"{"instances":[{"port":80.0}]}"#,
                r#"{"instances":[{"port":8e1}]}"#,
                r#"{"instances":[{"port":2147483648}]}"#,
                r#"{"instances":[{"port":0123}]}"#,
                r#"{"instances":[{"port":-}]}"#,
                r#"{"instances":[{"unknown":{"x":1}}]}"#,
                r#"{"instances":[{"unknown":[1]}]}"#,
                r#"{"instances":[{"unknown":1.5}]}"#,
                r#"{"instances":[{"metadata":{"k":1}}]}"#,
                r#"{"instances":[{"metadata":[]}]}"#,
                r#"{"instances":[7]}"#,
                r#"{"instances":{}}"#,
                r#"{"instances":[]} trailing"#,
                "\u{FEFF}{\"instances\":[]}",
                r#"{"instances":[],}"#,
                r#"{"instances":[{},]}"#,
                r#"{"instances":[{"a":nul}]}"#,
                r#"{"instances":[{"a" "b"}]}"#,
                r#"{"instances":["#,
                r#"{"instances""#,
                "null",
                "[]",
                "",
            ],
        );
        assert_eq!(
            instances_plainly(b"{\"instances\":[{\"ip\":\"\xFF\"}]}"),
            None
        );
        left(
            service_plainly,
            &[
                r#"{"regionId":1}"#,
                r#"{"discoveryConfig":"s"}"#,
                r#"{"discoveryConfig":{"serviceId":true}}"#,
                r#"{"discoveryConfig":{"discoveryData":{"k":1}}}"#,
                r#"{"discoveryConfig":{"discoveryData":"x"}}"#,
                r#"{"discoveryConfig":{"serviceId":"s\u0041"}}"#,
                r#"{"zoneId":"z"} {}"#,
                "null",
            ],
        );
        left(
            lookup_plainly,
            &[
                r#"{"discoveryConfigs":{"serviceId":"a"}}"#,
                r#"{"discoveryConfigs":["a"]}"#,
                r#"{"discoveryConfigs":[{"serviceId":1}]}"#,
                r#"{"zoneId":"z","zoneId":2}"#,
            ],
        );
        left(config_plainly, &[r#"{"serviceId":["s"]}"#, "null", ""]);
    }

    #[test]
    fn damaged_bodies_read_plainly_read_as_the_full_decoder_reads_them() {
        damaged(SDK_BODY, instances_plainly, instances_fully);
        damaged(SERVICE_BODY, service_plainly, service_fully);
        damaged(LOOKUP_BODY, lookup_plainly, lookup_fully);
    }

    #[test]
    fn a_plain_body_decodes_through_the_public_decoder_too() {
        let request = decoded(&mut SDK_BODY.as_bytes().to_vec()).unwrap().unwrap();
        let instances = request.instances.unwrap();
        let instance = instances[0].as_ref().unwrap();
        assert_eq!(instance.port, 8080);
        assert_eq!(
            instance.metadata,
            Some(vec![
                ("k".into(), Some("v".into())),
                ("java_registry".into(), None)
            ])
        );
        let mut body = SERVICE_BODY.as_bytes().to_vec();
        let request = crate::decode::service_request(&mut body).unwrap().unwrap();
        let config = request.discovery_config.unwrap();
        assert_eq!(
            config.service_id.as_deref(),
            Some("framework.soa.v1.service1")
        );
        assert_eq!(request.zone_id.as_deref(), Some("SHAJQ"));
    }
}
