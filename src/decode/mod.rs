//! Request bodies, and the replies of peer nodes, decoded the way Java's Jackson mapper reads
//! them.
//!
//! Property names match case-insensitively, and the snake_case spellings of the older Rust
//! README (`region_id`, `discovery_config`, `instance_keys`) match too: a name is compared with
//! its underscores dropped. Unknown properties are ignored; scalars are coerced as Jackson does
//! (a number where a string is expected, a numeric string where a number is). Anything else of the
//! wrong shape is an error that becomes a 400 reply.

use artemis_shards::{Held, Instance, InstanceKey, Metadata, Removal, ServiceDigest, ServiceState};
use simd_json::prelude::*;
use simd_json::tape::{Object, Tape, Value};
use simd_json::{Buffers, ValueType};
use std::cell::Cell;
use std::cmp::Ordering;

mod plain;

/// Why a body could not be read; the text goes into the 400 reply.
#[derive(Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

/// `RegisterRequest` / `HeartbeatRequest` / `UnregisterRequest`: `{"instances":[Instance]}`.
pub struct InstancesRequest {
    pub instances: Option<Vec<Option<Instance>>>,
    /// The list came as `instance_keys` (the older Rust API's spelling): the instances are
    /// named by their keys alone.
    pub by_key: bool,
}

/// `DiscoveryConfig`, of which the server uses the service id.
pub struct DiscoveryConfig {
    pub service_id: Option<String>,
}

/// `GetServiceRequest`: `{"discoveryConfig":{...},"regionId":..,"zoneId":..}`.
pub struct ServiceRequest {
    pub discovery_config: Option<DiscoveryConfig>,
    pub region_id: Option<String>,
    pub zone_id: Option<String>,
}

/// `LookupRequest`: `{"discoveryConfigs":[...],"regionId":..,"zoneId":..}`.
pub struct LookupRequest {
    pub discovery_configs: Option<Vec<Option<DiscoveryConfig>>>,
    pub region_id: Option<String>,
    pub zone_id: Option<String>,
}

/// The `{"regionId":..,"zoneId":..}` requests of the cluster and services endpoints.
#[derive(Default)]
pub struct ZoneRequest {
    pub region_id: Option<String>,
    pub zone_id: Option<String>,
}

/// `GetServicesDeltaRequest`: `{"version":long}` (region and zone are ignored).
pub struct DeltaRequest {
    pub version: i64,
}

/// `GetLeasesRequest`: `{"serviceIds":[...]}`.
#[derive(Default)]
pub struct LeasesRequest {
    pub service_ids: Option<Vec<Option<String>>>,
}

/// A peer's reply about its services: its status's error code and what it says of them.
pub struct PeerReply<S> {
    pub error_code: Option<String>,
    pub services: S,
}

/// A peer's `replication/registry/services.json` reply: the instances of each of its services
/// (null services and instances left out).
pub type ServicesReply = PeerReply<Vec<Vec<Instance>>>;

/// One of our own replies by service: an item per service, by the lowercased service id.
pub type ByService<T> = PeerReply<Vec<(String, T)>>;

/// simd-json's working memory (the aligned copy of the body, the offsets of its structural
/// characters, the unescaped strings) and the tape it builds, kept by each thread from one body
/// to the next: made afresh and freed for every request, they were a fifth of the time a
/// heartbeat's body took to decode.
struct Scratch {
    buffers: Buffers,
    tape: Tape<'static>,
}

thread_local! {
    /// Empty while a body is being parsed (taken, then put back), so a parse within a parse
    /// would only make scratch of its own.
    static SCRATCH: Cell<Option<Scratch>> = const { Cell::new(None) };
}

/// A body longer than this leaves its scratch to be freed rather than kept: the scratch grows to
/// the largest body parsed, and one large request (a peer's batch, an attacker's) must not pin
/// that much memory on its core.
const KEEP_SCRATCH_UP_TO: usize = 64 * 1024;

/// Parses `body` (in place, as simd-json does) and decodes its top-level object with `read`.
/// A JSON `null` body decodes to `None`, which Java reports as "request is null".
fn decode<T>(
    body: &mut [u8],
    read: impl FnOnce(Object) -> Result<T, DecodeError>,
) -> Result<Option<T>, DecodeError> {
    let keep = body.len() <= KEEP_SCRATCH_UP_TO;
    let Scratch { mut buffers, tape } = SCRATCH.take().unwrap_or_else(|| Scratch {
        buffers: Buffers::default(),
        tape: Tape::null(),
    });
    // Almost every body is one JSON value and nothing more, which parses whole without
    // `first_value`'s scan for where the value ends (a tenth of decoding a heartbeat). A failed
    // parse may have rewritten escaped strings in place, so only a body without a backslash is
    // tried whole; any other, or one that fails whole, is parsed as Jackson reads it.
    let whole = match memchr::memchr(b'\\', body) {
        None => fill(body, &mut buffers, tape).map_err(|(_, tape)| tape),
        Some(_) => Err(tape),
    };
    let filled = match whole {
        Ok(tape) => Ok(tape),
        Err(tape) => {
            let body = first_value(body);
            if body.iter().all(u8::is_ascii_whitespace) {
                let missing = DecodeError("Required request body is missing".into());
                Err((missing, tape))
            } else {
                fill(body, &mut buffers, tape)
                    .map_err(|(e, tape)| (DecodeError(format!("Malformed JSON: {e}")), tape))
            }
        }
    };
    let (decoded, tape) = match filled {
        Err((e, tape)) => (Err(e), tape),
        Ok(tape) => {
            let value = tape.as_value();
            let decoded = match value.value_type() {
                ValueType::Null => Ok(None),
                ValueType::Object => read(value.as_object().expect("an object")).map(Some),
                other => Err(DecodeError(format!(
                    "Expected a JSON object, found {}",
                    type_name(other)
                ))),
            };
            (decoded, tape.reset())
        }
    };
    if keep {
        SCRATCH.set(Some(Scratch { buffers, tape }));
    }
    decoded
}

/// Reads `body` with the plain reader `plain` (see `plain.rs`) if it can, else decodes it whole,
/// its top-level object read by `read`.
fn plain_first<T>(
    body: &mut [u8],
    plain: fn(&[u8]) -> Option<T>,
    read: fn(Object) -> Result<T, DecodeError>,
) -> Result<Option<T>, DecodeError> {
    match plain(body) {
        Some(request) => Ok(Some(request)),
        None => decode(body, read),
    }
}

/// Parses `body` onto `tape`; on failure, the error and the tape emptied again.
fn fill<'b>(
    body: &'b mut [u8],
    buffers: &mut Buffers,
    tape: Tape<'static>,
) -> Result<Tape<'b>, (simd_json::Error, Tape<'static>)> {
    let mut tape = tape.reset();
    match simd_json::fill_tape(body, buffers, &mut tape) {
        Ok(()) => Ok(tape),
        Err(e) => Err((e, tape.reset())),
    }
}

/// The first JSON value of `body`, read as Jackson reads a request body: a leading UTF-8
/// byte-order mark is skipped, and whatever follows a complete object or array is ignored.
pub fn first_value(body: &mut [u8]) -> &mut [u8] {
    let body = match body {
        [0xEF, 0xBB, 0xBF, rest @ ..] => rest,
        all => all,
    };
    let Some(start) = body.iter().position(|b| !b.is_ascii_whitespace()) else {
        return body;
    };
    if !matches!(body[start], b'{' | b'[') {
        return body;
    }
    match value_end(body, start) {
        Some(end) => &mut body[..end],
        None => body,
    }
}

/// Where the JSON value at `json[start..]` ends (one past its last byte): a string, object or
/// array at its closing byte, anything else at the first delimiter after it; `None` while a
/// string, object or array is not closed.
pub(crate) fn value_end(json: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = start;
    while i < json.len() {
        match json[i] {
            b'"' => {
                let closing = string_end(json, i + 1)?;
                if depth == 0 {
                    return Some(closing + 1);
                }
                i = closing;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth == 0 => return Some(i),
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            b',' if depth == 0 => return Some(i),
            b if depth == 0 && b.is_ascii_whitespace() => return Some(i),
            _ => {}
        }
        i += 1;
    }
    (depth == 0).then_some(json.len())
}

/// Where the string whose contents start at `json[from..]` closes (its unescaped `"`), found a
/// vector at a time since strings are most of a request's bytes; `None` when it does not.
fn string_end(json: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let at = from + memchr::memchr2(b'"', b'\\', json.get(from..)?)?;
        if json[at] == b'"' {
            return Some(at);
        }
        from = at + 2;
    }
}

/// Whether the property `key` names `field` (given in lowercase without underscores).
fn names(key: &str, field: &str) -> bool {
    // Folding only drops underscores: a key shorter than the field never names it, and one of
    // its length is compared as it is.
    match key.len().cmp(&field.len()) {
        Ordering::Less => false,
        Ordering::Equal => spells(key.as_bytes(), field.as_bytes()),
        Ordering::Greater => spells(folded(key, &mut [0; FOLDED]), field.as_bytes()),
    }
}

/// Whether `name` spells `ours` (lowercase ASCII letters, as all our names are) in any case. An
/// ASCII letter lowercases by setting its 0x20 bit, and setting it makes no other byte a
/// lowercase letter; a byte at a time with both sides lowercased was a third of reading a
/// discovery request's body.
fn spells(name: &[u8], ours: &[u8]) -> bool {
    debug_assert!(ours.iter().all(u8::is_ascii_lowercase), "{ours:?}");
    name.len() == ours.len() && name.iter().zip(ours).all(|(n, o)| n | 0x20 == *o)
}

/// The longest property name [`folded`] keeps.
const FOLDED: usize = 24;

/// `key` as it is compared with our property names (Jackson's case-insensitive matching, with
/// underscores left out; [`spells`] ignores the case). None of our names has an underscore, so
/// most keys are compared as they are, and only one with underscores is copied into `buf`
/// without them; one longer than the buffer, which none of ours is, folds to the empty name.
fn folded<'k>(key: &'k str, buf: &'k mut [u8; FOLDED]) -> &'k [u8] {
    if !key.bytes().any(|b| b == b'_') {
        return key.as_bytes();
    }
    let mut len = 0;
    for b in key.bytes().filter(|&b| b != b'_') {
        let Some(slot) = buf.get_mut(len) else {
            return &[];
        };
        *slot = b;
        len += 1;
    }
    &buf[..len]
}

fn type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Null => "null",
        ValueType::Bool => "a boolean",
        ValueType::String => "a string",
        ValueType::Array => "an array",
        ValueType::Object => "an object",
        _ => "a number",
    }
}

fn mismatch(field: &str, expected: &str, found: ValueType) -> DecodeError {
    DecodeError(format!(
        "Property {field}: expected {expected}, found {}",
        type_name(found)
    ))
}

/// A string property; numbers and booleans are taken as their text, as Jackson does.
fn string(field: &str, v: Value) -> Result<Option<String>, DecodeError> {
    match v.value_type() {
        ValueType::Null => Ok(None),
        ValueType::String => Ok(v.as_str().map(str::to_owned)),
        ValueType::Bool => Ok(v.as_bool().map(|b| b.to_string())),
        ValueType::I64 | ValueType::U64 | ValueType::F64 => Ok(Some(number_text(&v))),
        other => Err(mismatch(field, "a string", other)),
    }
}

fn number_text(v: &Value) -> String {
    if let Some(i) = v.as_i64() {
        i.to_string()
    } else if let Some(u) = v.as_u64() {
        u.to_string()
    } else {
        v.as_f64().unwrap_or_default().to_string()
    }
}

/// An integer property: missing or null is 0; a fraction is truncated and a numeric string
/// parsed, as Jackson does; anything out of range is an error.
fn integer(field: &str, v: Value, min: i64, max: i64) -> Result<i64, DecodeError> {
    let out_of_range = || DecodeError(format!("Property {field}: number out of range"));
    let n = match v.value_type() {
        ValueType::Null => 0,
        ValueType::I64 => v.as_i64().unwrap_or_default(),
        ValueType::U64 => {
            i64::try_from(v.as_u64().unwrap_or_default()).map_err(|_| out_of_range())?
        }
        ValueType::F64 => {
            let f = v.as_f64().unwrap_or_default().trunc();
            if !(min as f64..=max as f64).contains(&f) {
                return Err(out_of_range());
            }
            f as i64
        }
        ValueType::String => {
            let s = v.as_str().unwrap_or_default().trim();
            if s.is_empty() {
                0
            } else {
                s.parse()
                    .map_err(|_| DecodeError(format!("Property {field}: `{s}` is not a number")))?
            }
        }
        other => return Err(mismatch(field, "a number", other)),
    };
    if (min..=max).contains(&n) {
        Ok(n)
    } else {
        Err(out_of_range())
    }
}

/// An instance's port: missing or null is 0, an integer (or a string of one, as Jackson coerces)
/// is taken as is, and anything else is an error: a fraction (Jackson would truncate `80.9` to
/// 80; it is refused here), or a number beyond Java's `int`. The shard refuses, per instance, a
/// port outside 0 to 65535 (`InstanceLimits::PORTS`).
fn port(field: &str, v: Value) -> Result<i32, DecodeError> {
    let refuse = |found: String| {
        DecodeError(format!(
            "Property {field}: expected an integer port, found {found}"
        ))
    };
    let port = match v.value_type() {
        ValueType::Null => 0,
        ValueType::I64 | ValueType::U64 => v
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| refuse(number_text(&v)))?,
        ValueType::F64 => {
            let f = v.as_f64().unwrap_or_default();
            if f.fract() != 0.0 || !(f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(&f) {
                return Err(refuse(number_text(&v)));
            }
            f as i32
        }
        ValueType::String => {
            let s = v.as_str().unwrap_or_default().trim();
            if s.is_empty() {
                0
            } else {
                s.parse().map_err(|_| refuse(format!("`{s}`")))?
            }
        }
        other => return Err(mismatch(field, "an integer port", other)),
    };
    Ok(port)
}

/// An array property whose items are read by `item`; null items stay `None`.
fn array<T>(
    field: &str,
    v: Value,
    item: impl Fn(Value) -> Result<T, DecodeError>,
) -> Result<Option<Vec<Option<T>>>, DecodeError> {
    match v.value_type() {
        ValueType::Null => Ok(None),
        ValueType::Array => v
            .as_array()
            .expect("an array")
            .iter()
            .map(|x| match x.value_type() {
                ValueType::Null => Ok(None),
                _ => item(x).map(Some),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        other => Err(mismatch(field, "an array", other)),
    }
}

/// An object property read by `read`.
fn object<T>(
    field: &str,
    v: Value,
    read: impl FnOnce(Object) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    match v.as_object() {
        Some(o) => read(o),
        None => Err(mismatch(field, "an object", v.value_type())),
    }
}

/// Where a property of an instance goes.
enum Field<'i> {
    Text(&'i mut Option<String>),
    Port,
    Metadata,
    Ignored,
}

/// The field of `i` that the property `key` names.
fn field<'i>(i: &'i mut Instance, key: &str) -> Field<'i> {
    // Compared only with those of our names that have its length.
    let mut buf = [0; FOLDED];
    let name = folded(key, &mut buf);
    let is = |ours: &[u8]| spells(name, ours);
    Field::Text(match name.len() {
        2 if is(b"ip") => &mut i.ip,
        3 if is(b"url") => &mut i.url,
        4 if is(b"port") => return Field::Port,
        6 if is(b"zoneid") => &mut i.zone_id,
        6 if is(b"status") => &mut i.status,
        7 if is(b"groupid") => &mut i.group_id,
        8 if is(b"regionid") => &mut i.region_id,
        8 if is(b"protocol") => &mut i.protocol,
        8 if is(b"metadata") => return Field::Metadata,
        9 if is(b"serviceid") => &mut i.service_id,
        10 if is(b"instanceid") => &mut i.instance_id,
        11 if is(b"machinename") => &mut i.machine_name,
        14 if is(b"healthcheckurl") => &mut i.health_check_url,
        _ => return Field::Ignored,
    })
}

fn instance(o: Object) -> Result<Instance, DecodeError> {
    let mut i = Instance::default();
    for (key, v) in o.iter() {
        match field(&mut i, key) {
            Field::Text(slot) => *slot = string(key, v)?,
            Field::Port => i.port = port(key, v)?,
            Field::Metadata => i.metadata = metadata(key, v)?,
            Field::Ignored => {}
        }
    }
    Ok(i)
}

/// Java's `Map<String,String>`: entries in the order sent, a repeated key keeping its last value.
fn metadata(field: &str, v: Value) -> Result<Option<Metadata>, DecodeError> {
    if v.value_type() == ValueType::Null {
        return Ok(None);
    }
    object(field, v, |o| {
        let mut entries: Metadata = Vec::with_capacity(o.len());
        for (key, value) in o.iter() {
            put(&mut entries, key, string(key, value)?);
        }
        Ok(entries)
    })
    .map(Some)
}

/// Puts an entry in a metadata map: in place of the entry with its key, else last.
fn put(entries: &mut Metadata, key: &str, value: Option<String>) {
    match entries.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => entry.1 = value,
        None => entries.push((key.to_owned(), value)),
    }
}

fn discovery_config(o: Object) -> Result<DiscoveryConfig, DecodeError> {
    let mut config = DiscoveryConfig { service_id: None };
    for (key, v) in o.iter() {
        if names(key, "serviceid") {
            config.service_id = string(key, v)?;
        } else if names(key, "discoverydata") && v.value_type() != ValueType::Null {
            metadata(key, v)?;
        }
    }
    Ok(config)
}

/// Reads `regionId`/`zoneId` into `zone`; true when `key` was one of them.
fn zone_field(zone: &mut ZoneRequest, key: &str, v: Value) -> Result<bool, DecodeError> {
    let Some(slot) = zone_slot(zone, key) else {
        return Ok(false);
    };
    *slot = string(key, v)?;
    Ok(true)
}

/// A body's region and zone, each of its other properties given to `other`.
fn zone_and<'t, 'i>(
    o: Object<'t, 'i>,
    mut other: impl FnMut(&'i str, Value<'t, 'i>) -> Result<(), DecodeError>,
) -> Result<ZoneRequest, DecodeError> {
    let mut zone = ZoneRequest::default();
    for (key, v) in o.iter() {
        if !zone_field(&mut zone, key, v)? {
            other(key, v)?;
        }
    }
    Ok(zone)
}

/// The field of `zone` that the property `key` names: `regionId` or `zoneId`.
fn zone_slot<'z>(zone: &'z mut ZoneRequest, key: &str) -> Option<&'z mut Option<String>> {
    if names(key, "regionid") {
        Some(&mut zone.region_id)
    } else if names(key, "zoneid") {
        Some(&mut zone.zone_id)
    } else {
        None
    }
}

pub fn instances_request(body: &mut [u8]) -> Result<Option<InstancesRequest>, DecodeError> {
    plain_first(body, plain::instances_request, instances_object)
}

/// The top-level object of an instances request, as the full decoder reads it.
fn instances_object(o: Object) -> Result<InstancesRequest, DecodeError> {
    let mut request = InstancesRequest {
        instances: None,
        by_key: false,
    };
    for (key, v) in o.iter() {
        let by_key = names(key, "instancekeys");
        if by_key || names(key, "instances") {
            request.instances = array(key, v, |x| object(key, x, instance))?;
            request.by_key = by_key;
        }
    }
    Ok(request)
}

pub fn service_request(body: &mut [u8]) -> Result<Option<ServiceRequest>, DecodeError> {
    plain_first(body, plain::service_request, service_object)
}

/// The top-level object of a service request, as the full decoder reads it.
fn service_object(o: Object) -> Result<ServiceRequest, DecodeError> {
    let mut discovery = None;
    let zone = zone_and(o, |key, v| {
        if names(key, "discoveryconfig") && v.value_type() != ValueType::Null {
            discovery = Some(object(key, v, discovery_config)?);
        }
        Ok(())
    })?;
    Ok(ServiceRequest {
        discovery_config: discovery,
        region_id: zone.region_id,
        zone_id: zone.zone_id,
    })
}

/// A bare `DiscoveryConfig`, as WebSocket subscribers send it.
pub fn discovery_config_request(body: &mut [u8]) -> Result<Option<DiscoveryConfig>, DecodeError> {
    plain_first(body, plain::discovery_config_request, discovery_config)
}

pub fn lookup_request(body: &mut [u8]) -> Result<Option<LookupRequest>, DecodeError> {
    plain_first(body, plain::lookup_request, lookup_object)
}

/// The top-level object of a lookup request, as the full decoder reads it.
fn lookup_object(o: Object) -> Result<LookupRequest, DecodeError> {
    let mut configs = None;
    let zone = zone_and(o, |key, v| {
        if names(key, "discoveryconfigs") {
            configs = array(key, v, |x| object(key, x, discovery_config))?;
        }
        Ok(())
    })?;
    Ok(LookupRequest {
        discovery_configs: configs,
        region_id: zone.region_id,
        zone_id: zone.zone_id,
    })
}

pub fn zone_request(body: &mut [u8]) -> Result<Option<ZoneRequest>, DecodeError> {
    decode(body, |o| zone_and(o, |_, _| Ok(())))
}

pub fn delta_request(body: &mut [u8]) -> Result<Option<DeltaRequest>, DecodeError> {
    decode(body, |o| {
        let mut request = DeltaRequest { version: 0 };
        for (key, v) in o.iter() {
            if names(key, "version") {
                request.version = integer(key, v, i64::MIN, i64::MAX)?;
            }
        }
        Ok(request)
    })
}

pub fn leases_request(body: &mut [u8]) -> Result<Option<LeasesRequest>, DecodeError> {
    decode(body, |o| {
        let mut request = LeasesRequest::default();
        for (key, v) in o.iter() {
            if names(key, "serviceids") {
                request.service_ids =
                    array(key, v, |x| string(key, x).map(Option::unwrap_or_default))?;
            }
        }
        Ok(request)
    })
}

pub fn services_reply(body: &mut [u8]) -> Result<Option<ServicesReply>, DecodeError> {
    peer_reply(body, |key, v| {
        let services = array(key, v, |x| object(key, x, service_instances))?;
        Ok(services.into_iter().flatten().flatten().collect())
    })
}

/// A peer's reply, its `services` read by `services` (left empty when missing).
fn peer_reply<S: Default>(
    body: &mut [u8],
    services: impl Fn(&str, Value) -> Result<S, DecodeError>,
) -> Result<Option<PeerReply<S>>, DecodeError> {
    decode(body, |o| {
        let mut reply = PeerReply {
            error_code: None,
            services: S::default(),
        };
        for (key, v) in o.iter() {
            if names(key, "responsestatus") {
                reply.error_code = error_code(key, v)?;
            } else if names(key, "services") {
                reply.services = services(key, v)?;
            }
        }
        Ok(reply)
    })
}

/// The `errorCode` of a reply's `responseStatus` (`None` when either is null or missing).
fn error_code(field: &str, v: Value) -> Result<Option<String>, DecodeError> {
    if v.value_type() == ValueType::Null {
        return Ok(None);
    }
    object(field, v, |status| {
        let code = status.iter().find(|(k, _)| names(k, "errorcode"));
        code.map_or(Ok(None), |(k, v)| string(k, v))
    })
}

/// Our own `replication/registry/digest.json` reply: each service's digest.
pub fn digest_reply(body: &mut [u8]) -> Result<Option<ByService<ServiceDigest>>, DecodeError> {
    by_service_reply(body, service_digest)
}

/// Our own `replication/registry/service-states.json` reply: each service's state.
pub fn service_states_reply(
    body: &mut [u8],
) -> Result<Option<ByService<ServiceState<Instance>>>, DecodeError> {
    by_service_reply(body, service_state)
}

/// A reply whose `services` is an object of items by service id, each read by `item`.
fn by_service_reply<T>(
    body: &mut [u8],
    item: fn(Object) -> Result<T, DecodeError>,
) -> Result<Option<ByService<T>>, DecodeError> {
    peer_reply(body, |key, v| {
        if v.value_type() == ValueType::Null {
            return Ok(Vec::new());
        }
        object(key, v, |services| {
            let each = |(id, x): (&str, Value)| Ok((id.to_owned(), object(id, x, item)?));
            services.iter().map(each).collect()
        })
    })
}

/// `{"count":N,"hash":"<hex>"}`.
fn service_digest(o: Object) -> Result<ServiceDigest, DecodeError> {
    let mut digest = ServiceDigest::default();
    for (key, v) in o.iter() {
        if names(key, "count") {
            digest.count = integer(key, v, 0, i64::MAX)? as u64;
        } else if names(key, "hash") {
            let hex = string(key, v)?.unwrap_or_default();
            digest.hash = u64::from_str_radix(&hex, 16)
                .map_err(|_| DecodeError(format!("Property {key}: `{hex}` is not a hex hash")))?;
        }
    }
    Ok(digest)
}

/// `{"instances":[{"instance":{..},"registrationTime":ms,"renewalTime":ms}],
/// "removals":[{"expired":bool,"instanceId":..,"regionId":..,"serviceId":..,"time":ms}]}`.
fn service_state(o: Object) -> Result<ServiceState<Instance>, DecodeError> {
    let mut state = ServiceState {
        instances: Vec::new(),
        removals: Vec::new(),
    };
    for (key, v) in o.iter() {
        if names(key, "instances") {
            let held = array(key, v, |x| object(key, x, held_instance))?;
            state.instances = held.into_iter().flatten().flatten().flatten().collect();
        } else if names(key, "removals") {
            let removals = array(key, v, |x| object(key, x, removal))?;
            state.removals = removals.into_iter().flatten().flatten().collect();
        }
    }
    Ok(state)
}

/// One held instance; one without its `instance` is left out.
fn held_instance(o: Object) -> Result<Option<Held<Instance>>, DecodeError> {
    let (mut found, mut registration_ms, mut renewal_ms) = (None, 0, 0);
    for (key, v) in o.iter() {
        if names(key, "instance") && v.value_type() != ValueType::Null {
            found = Some(object(key, v, instance)?);
        } else if names(key, "registrationtime") {
            registration_ms = integer(key, v, 0, i64::MAX)? as u64;
        } else if names(key, "renewaltime") {
            renewal_ms = integer(key, v, 0, i64::MAX)? as u64;
        }
    }
    Ok(found.map(|instance| Held {
        instance,
        registration_ms,
        renewal_ms,
    }))
}

/// A remembered removal: the instance's key (lowercased as keys are) and how it left.
fn removal(o: Object) -> Result<(InstanceKey, Removal), DecodeError> {
    let (mut named, mut time_ms, mut expired) = (Instance::default(), 0, false);
    for (key, v) in o.iter() {
        match () {
            _ if names(key, "regionid") => named.region_id = string(key, v)?,
            _ if names(key, "serviceid") => named.service_id = string(key, v)?,
            _ if names(key, "instanceid") => named.instance_id = string(key, v)?,
            _ if names(key, "time") => time_ms = integer(key, v, 0, i64::MAX)? as u64,
            _ if names(key, "expired") => {
                expired = match v.value_type() {
                    ValueType::Null => false,
                    ValueType::Bool => v.as_bool().unwrap_or_default(),
                    other => return Err(mismatch(key, "a boolean", other)),
                }
            }
            _ => {}
        }
    }
    let removal = match expired {
        false => Removal::unregistered(time_ms),
        true => Removal::expired(time_ms),
    };
    Ok((named.key(), removal))
}

/// The `instances` of a Java `Service`.
fn service_instances(o: Object) -> Result<Vec<Instance>, DecodeError> {
    let mut instances = Vec::new();
    for (key, v) in o.iter() {
        if names(key, "instances") {
            let list = array(key, v, |x| object(key, x, instance))?;
            instances = list.into_iter().flatten().flatten().collect();
        }
    }
    Ok(instances)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    #[test]
    fn a_byte_order_mark_and_what_follows_the_first_value_are_ignored() {
        let first = |s: &[u8]| String::from_utf8(first_value(&mut s.to_vec()).to_vec()).unwrap();
        assert_eq!(first(b"\xEF\xBB\xBF{\"a\":1}"), r#"{"a":1}"#);
        assert_eq!(first(br#"{"instances":[]} xyz"#), r#"{"instances":[]}"#);
        assert_eq!(first(br#" {"s":"}]\"{"} {}"#), r#" {"s":"}]\"{"}"#);
        assert_eq!(first(br#"[{"a":[1,{}]}],"#), r#"[{"a":[1,{}]}]"#);
        assert_eq!(
            first(br#"{"b":"\\"}x"#),
            r#"{"b":"\\"}"#,
            "an escaped backslash"
        );
        assert_eq!(first(br#"{"q":"a\"}\""} x"#), r#"{"q":"a\"}\""}"#);
        for open in [&br#"{"s":"abc"#[..], br#"{"s":"abc\"#, br#"{"s":"\""#] {
            assert_eq!(first(open).as_bytes(), open, "a string left open");
        }
        assert_eq!(
            first(b"null junk"),
            "null junk",
            "not an object: left to the parser"
        );
        assert_eq!(
            first(br#"{"open":"#),
            r#"{"open":"#,
            "incomplete: left to the parser"
        );
        let mut b = body("\u{FEFF}{\"instances\":[]} trailing");
        let request = instances_request(&mut b).unwrap().unwrap();
        assert_eq!(request.instances.map(|list| list.len()), Some(0));
    }

    #[test]
    fn names_ignore_case_and_underscores() {
        assert!(names("regionId", "regionid"));
        assert!(names("REGIONID", "regionid"));
        assert!(names("region_id", "regionid"));
        assert!(!names("region", "regionid"));
        assert!(!names("regionIdx", "regionid"));
        assert!(names("Registration_Time", "registrationtime"));
        assert!(names(&format!("region{}id", "_".repeat(20)), "regionid"));
        assert!(
            !names(&format!("{}_", "ab".repeat(13)), &"ab".repeat(13)),
            "folds past the buffer: longer than any of ours"
        );
    }

    /// Each of an instance's properties, as Java spells it, in capitals and in snake_case, read
    /// plainly and (behind an escaped value) by the full decoder.
    #[test]
    fn every_instance_property_in_any_spelling() {
        type Get = fn(&Instance) -> Option<&str>;
        let texts: [(&str, Get); 11] = [
            ("regionId", |i| i.region_id.as_deref()),
            ("zoneId", |i| i.zone_id.as_deref()),
            ("groupId", |i| i.group_id.as_deref()),
            ("serviceId", |i| i.service_id.as_deref()),
            ("instanceId", |i| i.instance_id.as_deref()),
            ("machineName", |i| i.machine_name.as_deref()),
            ("ip", |i| i.ip.as_deref()),
            ("protocol", |i| i.protocol.as_deref()),
            ("url", |i| i.url.as_deref()),
            ("healthCheckUrl", |i| i.health_check_url.as_deref()),
            ("status", |i| i.status.as_deref()),
        ];
        let snake = |name: &str| {
            let mut out = String::new();
            for c in name.chars() {
                if c.is_ascii_uppercase() {
                    out.push('_');
                }
                out.push(c.to_ascii_lowercase());
            }
            out
        };
        let spellings = |name: &str| [name.to_owned(), name.to_uppercase(), snake(name)];
        let read = |members: &str, escaped: bool| {
            let other = if escaped { r#","x":"\/""# } else { "" };
            let mut b = body(&format!(r#"{{"instances":[{{{members}{other}}}]}}"#));
            let request = instances_request(&mut b).unwrap().unwrap();
            request.instances.unwrap().remove(0).unwrap()
        };
        for escaped in [false, true] {
            for (name, get) in texts {
                for spelling in spellings(name) {
                    let instance = read(&format!(r#""{spelling}":"v""#), escaped);
                    assert_eq!(get(&instance), Some("v"), "{spelling}");
                    let others = texts.iter().filter(|(other, _)| *other != name);
                    assert!(others.map(|(_, get)| get(&instance)).all(|v| v.is_none()));
                }
            }
            for spelling in spellings("port") {
                assert_eq!(read(&format!(r#""{spelling}":81"#), escaped).port, 81);
            }
            for spelling in spellings("metadata") {
                let instance = read(&format!(r#""{spelling}":{{"k":"v"}}"#), escaped);
                assert_eq!(
                    instance.metadata,
                    Some(vec![("k".into(), Some("v".into()))])
                );
            }
            for unknown in ["ipx", "urls", "zone", "statusid", "region_id_x"] {
                let instance = read(&format!(r#""{unknown}":"v""#), escaped);
                assert!(
                    texts.iter().all(|(_, get)| get(&instance).is_none()),
                    "{unknown}"
                );
            }
        }
    }

    #[test]
    fn instance_fields_and_coercions() {
        let mut b = body(
            r#"{"Instances":[{"region_id":"SHA","SERVICEID":"s","instanceId":"i","port":"8080","url":"u",
                "metadata":{"b":"1","a":null,"b":"2"},"unknown":{"x":1}},null,{"ip":7,"port":80.0}]}"#,
        );
        let request = instances_request(&mut b).unwrap().unwrap();
        let instances = request.instances.unwrap();
        assert_eq!(instances.len(), 3);
        let first = instances[0].as_ref().unwrap();
        assert_eq!(first.region_id.as_deref(), Some("SHA"));
        assert_eq!(first.service_id.as_deref(), Some("s"));
        assert_eq!(first.port, 8080);
        assert_eq!(
            first.metadata,
            Some(vec![("b".into(), Some("2".into())), ("a".into(), None)])
        );
        assert!(instances[1].is_none());
        let third = instances[2].as_ref().unwrap();
        assert_eq!(third.ip.as_deref(), Some("7"));
        assert_eq!(third.port, 80);
    }

    /// A port is an integer: a fraction is refused for the whole request (Jackson would
    /// truncate it); an integer outside 0 to 65535 decodes, for the shard to refuse that
    /// instance alone (`InstanceLimits::PORTS`).
    #[test]
    fn ports_must_be_integers() {
        let port = |json: &str| {
            let mut b = body(&format!(r#"{{"instances":[{{"port":{json}}}]}}"#));
            instances_request(&mut b)
                .map(|r| r.unwrap().instances.unwrap()[0].as_ref().unwrap().port)
        };
        for (json, expected) in [
            ("8080", 8080),
            ("\"8080\"", 8080),
            ("\" 443 \"", 443),
            ("80.0", 80),
            ("8e1", 80),
            ("null", 0),
            ("\"\"", 0),
            ("0", 0),
            ("65535", 65535),
            ("-1", -1),
            ("99999", 99_999),
        ] {
            assert_eq!(port(json), Ok(expected), "{json}");
        }
        assert_eq!(
            port("80.5"),
            Err(DecodeError(
                "Property port: expected an integer port, found 80.5".into()
            ))
        );
        assert_eq!(
            port("\"80.9\""),
            Err(DecodeError(
                "Property port: expected an integer port, found `80.9`".into()
            ))
        );
        for bad in [
            "80.9",
            "-0.5",
            "1e300",
            "2147483648",
            "-2147483649",
            "18446744073709551615",
            "\"x\"",
            "\"99999999999\"",
            "true",
            "[80]",
            "{}",
        ] {
            assert!(port(bad).is_err(), "accepted port {bad}");
        }
    }

    #[test]
    fn instance_keys_spelling() {
        let mut b =
            body(r#"{"instance_keys":[{"regionId":"r","serviceId":"s","instanceId":"i"}]}"#);
        let instances = instances_request(&mut b)
            .unwrap()
            .unwrap()
            .instances
            .unwrap();
        assert_eq!(
            instances[0].as_ref().unwrap().instance_id.as_deref(),
            Some("i")
        );
    }

    /// The instance ids of an instances request.
    fn ids(json: impl AsRef<[u8]>) -> Result<Vec<String>, DecodeError> {
        let request = instances_request(&mut json.as_ref().to_vec())?.unwrap();
        Ok(request
            .instances
            .unwrap()
            .into_iter()
            .map(|i| i.unwrap().instance_id.unwrap())
            .collect())
    }

    #[test]
    fn the_scratch_kept_between_bodies_carries_nothing_from_one_to_the_next() {
        let many: Vec<String> = (0..3000)
            .map(|n| format!(r#"{{"instanceId":"long-{n}\n{}"}}"#, "x".repeat(20)))
            .collect();
        let large = format!(r#"{{"instances":[{}]}}"#, many.join(","));
        assert!(large.len() > KEEP_SCRATCH_UP_TO);
        for _ in 0..2 {
            assert_eq!(
                ids(r#"{"instances":[{"instanceId":"a\"b"},{"instanceId":"c"}]}"#).unwrap(),
                ["a\"b", "c"]
            );
            assert_eq!(ids(&large).unwrap().len(), 3000);
            assert_eq!(
                ids(&large).unwrap()[2999],
                format!("long-2999\n{}", "x".repeat(20))
            );
            assert!(ids(r#"{"instances":[{"instanceId":"d"}"#).is_err());
            assert_eq!(ids(r#"{"instances":[{"instanceId":"e"}]}"#).unwrap(), ["e"]);
        }
    }

    #[test]
    fn a_body_parsed_whole_or_by_its_first_value_reads_the_same() {
        for body in [
            &br#" {"instances":[{"instanceId":"a"}]}
"#[..],
            br#"{"instances":[{"instanceId":"a"}]} {"instances":[]}"#,
            br#"{"instances":[{"instanceId":"a"}]} tail"#,
            b"\xEF\xBB\xBF{\"instances\":[{\"instanceId\":\"a\"}]}",
        ] {
            assert_eq!(
                ids(body).unwrap(),
                ["a"],
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let escaped = br#"{"instances":[{"instanceId":"a\u0062\"c"}]} {"x":"\n"}"#;
        assert_eq!(ids(escaped).unwrap(), ["ab\"c"]);
        for bad in [
            &b""[..],
            b"  ",
            b"{\"instances\":[",
            b"{\"instances\":[\"\\n\"",
            b"nul",
        ] {
            assert!(ids(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(
            ids(b" \n").err(),
            Some(DecodeError("Required request body is missing".into()))
        );
    }

    #[test]
    fn null_body_and_missing_list() {
        assert!(instances_request(&mut body("null")).unwrap().is_none());
        assert!(instances_request(&mut body("{}"))
            .unwrap()
            .unwrap()
            .instances
            .is_none());
    }

    #[test]
    fn wrong_shapes_are_errors() {
        for bad in [
            "",
            "{",
            "[]",
            "42",
            r#"{"instances":{}}"#,
            r#"{"instances":[1]}"#,
            r#"{"instances":[{"port":"x"}]}"#,
            r#"{"instances":[{"port":99999999999}]}"#,
            r#"{"instances":[{"port":80.5}]}"#,
            r#"{"instances":[{"serviceId":{"a":1}}]}"#,
            r#"{"instances":[{"metadata":[1]}]}"#,
        ] {
            assert!(instances_request(&mut body(bad)).is_err(), "accepted {bad}");
        }
    }

    #[test]
    fn discovery_requests() {
        let mut b =
            body(r#"{"discovery_config":{"serviceId":"svc"},"regionId":"SHA","zone_id":"Z"}"#);
        let r = service_request(&mut b).unwrap().unwrap();
        assert_eq!(
            r.discovery_config.unwrap().service_id.as_deref(),
            Some("svc")
        );
        assert_eq!(
            (r.region_id.as_deref(), r.zone_id.as_deref()),
            (Some("SHA"), Some("Z"))
        );

        let mut b = body(
            r#"{"discoveryConfigs":[{"serviceId":"a"},null,{"serviceId":"b"}],"regionId":"SHA"}"#,
        );
        let r = lookup_request(&mut b).unwrap().unwrap();
        let ids: Vec<_> = r
            .discovery_configs
            .unwrap()
            .into_iter()
            .map(|c| c.and_then(|c| c.service_id))
            .collect();
        assert_eq!(ids, vec![Some("a".into()), None, Some("b".into())]);
        assert!(service_request(&mut body(r#"{"discoveryConfig":"svc"}"#)).is_err());
    }

    /// Found by the `json_decode` fuzz target: simd-json 0.14 skipped the check after a number
    /// of 19 or more digits and an exponent, so `{"x":77777777777777777777777E0x}` was read as
    /// valid JSON (at some buffer offsets), where Jackson answers 400.
    #[test]
    fn a_long_number_followed_by_garbage_is_malformed() {
        for pad in 0..64 {
            let mut b = body(&format!(
                "{}{{\"x\":77777777777777777777777E0x}}",
                " ".repeat(pad)
            ));
            assert!(zone_request(&mut b).is_err(), "accepted at offset {pad}");
        }
    }

    #[test]
    fn delta_request_reads_the_version() {
        let mut b = body(r#"{"regionId":"SHA","version":1795874217686000}"#);
        assert_eq!(
            delta_request(&mut b).unwrap().unwrap().version,
            1_795_874_217_686_000
        );
        assert_eq!(delta_request(&mut body("{}")).unwrap().unwrap().version, 0);
        assert!(delta_request(&mut body(r#"{"version":[1]}"#)).is_err());
    }

    #[test]
    fn bare_discovery_config() {
        let mut b =
            body(r#"{"discoveryData":null,"regionId":null,"serviceId":"svc","zoneId":null}"#);
        let config = discovery_config_request(&mut b).unwrap().unwrap();
        assert_eq!(config.service_id.as_deref(), Some("svc"));
    }

    #[test]
    fn digest_and_service_states_replies() {
        let mut b = body(
            r#"{"responseStatus":{"errorCode":"success","message":"","status":"success"},
                "services":{"a":{"count":2,"hash":"00000000000000ff"},"b":{"count":1,"hash":"ffffffffffffffff"}}}"#,
        );
        let digest = digest_reply(&mut b).unwrap().unwrap();
        assert_eq!(digest.error_code.as_deref(), Some("success"));
        let each = |(id, d): &(String, ServiceDigest)| (id.clone(), d.count, d.hash);
        let services: Vec<_> = digest.services.iter().map(each).collect();
        assert_eq!(services, [("a".into(), 2, 255), ("b".into(), 1, u64::MAX)]);
        assert!(digest_reply(&mut body(r#"{"services":{"a":{"hash":"xyz"}}}"#)).is_err());
        assert!(digest_reply(&mut body("<html>Not Found</html>")).is_err());

        let mut b = body(
            r#"{"responseStatus":{"errorCode":"success"},"services":{"a":{
                "instances":[{"instance":{"serviceId":"A","instanceId":"1"},"registrationTime":5,"renewalTime":"6"},null,{"registrationTime":1}],
                "removals":[{"expired":true,"instanceId":"X","regionId":"SHA","serviceId":"A","time":7},{"instanceId":"y","time":8}]}}}"#,
        );
        let states = service_states_reply(&mut b).unwrap().unwrap();
        let (id, state) = &states.services[0];
        assert_eq!(id, "a");
        let held = &state.instances;
        assert_eq!(held.len(), 1, "entries without an instance are left out");
        assert_eq!(held[0].instance.instance_id.as_deref(), Some("1"));
        assert_eq!((held[0].registration_ms, held[0].renewal_ms), (5, 6));
        let key = |region: &str, service: &str, instance: &str| InstanceKey {
            region_id: region.into(),
            service_id: service.into(),
            instance_id: instance.into(),
        };
        assert_eq!(
            state.removals,
            [
                (key("sha", "a", "x"), Removal::expired(7)),
                (key("", "", "y"), Removal::unregistered(8)),
            ]
        );
        let wrong = r#"{"services":{"a":{"removals":[{"expired":"yes"}]}}}"#;
        assert!(service_states_reply(&mut body(wrong)).is_err());
    }

    #[test]
    fn a_services_reply_gives_each_services_instances() {
        let mut b = body(
            r#"{"responseStatus":{"errorCode":"success","message":"","status":"success"},
                "services":[{"instances":[{"serviceId":"a","instanceId":"1"},null],"logicInstances":null,"serviceId":"a"},
                null,{"instances":null,"serviceId":"b"},{"instances":[{"serviceId":"c","instanceId":"2"}]}]}"#,
        );
        let reply = services_reply(&mut b).unwrap().unwrap();
        assert_eq!(reply.error_code.as_deref(), Some("success"));
        let ids: Vec<Vec<_>> = reply
            .services
            .iter()
            .map(|s| s.iter().map(|i| i.instance_id.clone().unwrap()).collect())
            .collect();
        assert_eq!(
            ids,
            vec![vec!["1".to_string()], vec![], vec!["2".to_string()]]
        );
        let mut failed = body(
            r#"{"responseStatus":{"errorCode":"no-permission","status":"fail"},"services":null}"#,
        );
        let reply = services_reply(&mut failed).unwrap().unwrap();
        assert_eq!(reply.error_code.as_deref(), Some("no-permission"));
        assert!(reply.services.is_empty());
        assert!(services_reply(&mut body(r#"{"services":{}}"#)).is_err());
    }

    #[test]
    fn leases_and_zone_requests() {
        let mut b = body(r#"{"serviceIds":["a","b"]}"#);
        let ids = leases_request(&mut b)
            .unwrap()
            .unwrap()
            .service_ids
            .unwrap();
        assert_eq!(ids, vec![Some("a".to_string()), Some("b".to_string())]);
        let mut b = body(r#"{"regionId":"SHA","zoneId":"Z","extra":[1,2]}"#);
        let z = zone_request(&mut b).unwrap().unwrap();
        assert_eq!(
            (z.region_id.as_deref(), z.zone_id.as_deref()),
            (Some("SHA"), Some("Z"))
        );
    }
}
