//! The registry's data as the load generator invents it, and the JSON bodies that carry it.
//!
//! Instance `i` is a realistic instance in the shape of `I1` (docs/compatibility.md, "Reference
//! exchanges"), with its own ip, instance id and machine name, living in service `i % services`.
//! Bodies are written with `write!` into reused buffers, so the hot loop allocates nothing.

use std::io::Write;

/// The instances and services a run works on, and the bodies of the requests about them (public
/// so that a benchmark can decode the very bodies the load generator sends).
#[derive(Clone, Debug)]
pub struct Population {
    region: String,
    zone: String,
    services: u64,
}

impl Population {
    /// `region` and `zone` must be plain identifiers (checked by `Config::validate`), so they
    /// go into JSON and query strings as they are.
    pub fn new(region: &str, zone: &str, services: u64) -> Population {
        Population {
            region: region.to_owned(),
            zone: zone.to_owned(),
            services,
        }
    }

    pub(crate) fn services(&self) -> u64 {
        self.services
    }

    pub(crate) fn service_of(&self, instance: u64) -> u64 {
        instance % self.services
    }

    /// `{"instances":[...]}` for a register, heartbeat or unregister request.
    pub fn write_instances(&self, ids: impl IntoIterator<Item = u64>, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"instances\":[");
        for (n, i) in ids.into_iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            self.write_instance(i, out);
        }
        out.extend_from_slice(b"]}");
    }

    /// Instance `i`, keys in Java's alphabetical order.
    pub(crate) fn write_instance(&self, i: u64, out: &mut Vec<u8>) {
        let s = self.service_of(i);
        let ip = Ip(i);
        let port = 8080 + (i >> 24);
        write!(
            out,
            "{{\"groupId\":null,\"healthCheckUrl\":\"http://{ip}:{port}/health\",\
             \"instanceId\":\"{ip}:{port}\",\"ip\":\"{ip}\",\"machineName\":\"loadgen-host{i}\",\
             \"metadata\":{{\"k\":\"v\"}},\"port\":{port},\"protocol\":\"http\",\
             \"regionId\":\"{region}\",\"serviceId\":\"",
            region = self.region,
        )
        .expect("writing to a Vec cannot fail");
        self.write_service_id(s, out);
        write!(
            out,
            "\",\"status\":\"up\",\"url\":\"http://{ip}:{port}/service{s}/\",\"zoneId\":\"{zone}\"}}",
            zone = self.zone,
        )
        .expect("writing to a Vec cannot fail");
    }

    pub(crate) fn write_service_id(&self, service: u64, out: &mut Vec<u8>) {
        write!(out, "framework.soa.loadgen.v1.service{service}").expect("writing to a Vec");
    }

    /// The `service.json` POST body.
    pub fn write_get_service(&self, service: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"discoveryConfig\":{\"serviceId\":\"");
        self.write_service_id(service, out);
        out.extend_from_slice(b"\"},");
        self.write_region_zone(out);
    }

    /// The `lookup.json` body for several services.
    pub(crate) fn write_lookup(&self, services: impl Iterator<Item = u64>, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"discoveryConfigs\":[");
        for (n, s) in services.enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"serviceId\":\"");
            self.write_service_id(s, out);
            out.extend_from_slice(b"\"}");
        }
        out.extend_from_slice(b"],");
        self.write_region_zone(out);
    }

    /// `{"serviceId":".."}`: a subscription on `/ws/discovery/instance-change`.
    pub(crate) fn write_subscription(&self, service: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"serviceId\":\"");
        self.write_service_id(service, out);
        out.extend_from_slice(b"\"}");
    }

    /// The query string of a `service.json` GET.
    pub(crate) fn write_service_query(&self, service: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(b"serviceId=");
        self.write_service_id(service, out);
        write!(out, "&regionId={}&zoneId={}", self.region, self.zone).expect("writing to a Vec");
    }

    fn write_region_zone(&self, out: &mut Vec<u8>) {
        write!(
            out,
            "\"regionId\":\"{}\",\"zoneId\":\"{}\"}}",
            self.region, self.zone
        )
        .expect("writing to a Vec cannot fail");
    }
}

/// The ip of instance `i`: `10.x.y.z` from its low 24 bits (the port takes the rest).
struct Ip(u64);

impl std::fmt::Display for Ip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let i = self.0;
        write!(
            f,
            "10.{}.{}.{}",
            (i >> 16) & 0xff,
            (i >> 8) & 0xff,
            i & 0xff
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn pop() -> Population {
        Population::new("SHA", "SHAJQ", 10)
    }

    fn parse(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).expect("valid JSON")
    }

    #[test]
    fn instance_has_the_contract_shape_in_key_order() {
        let mut out = vec![];
        pop().write_instance(0x0102_0304, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "{\"groupId\":null,\"healthCheckUrl\":\"http://10.2.3.4:8081/health\",\
             \"instanceId\":\"10.2.3.4:8081\",\"ip\":\"10.2.3.4\",\"machineName\":\"loadgen-host16909060\",\
             \"metadata\":{\"k\":\"v\"},\"port\":8081,\"protocol\":\"http\",\"regionId\":\"SHA\",\
             \"serviceId\":\"framework.soa.loadgen.v1.service0\",\"status\":\"up\",\
             \"url\":\"http://10.2.3.4:8081/service0/\",\"zoneId\":\"SHAJQ\"}"
        );
    }

    #[test]
    fn batches_hold_distinct_instances_over_the_services() {
        let mut out = vec![];
        pop().write_instances(5..25, &mut out);
        let v = parse(&out);
        let instances = v["instances"].as_array().unwrap();
        assert_eq!(instances.len(), 20);
        let ids: std::collections::HashSet<_> = instances
            .iter()
            .map(|i| i["instanceId"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), 20);
        let services: std::collections::HashSet<_> = instances
            .iter()
            .map(|i| i["serviceId"].as_str().unwrap())
            .collect();
        assert_eq!(services.len(), 10);
        assert_eq!(
            instances[0]["serviceId"],
            "framework.soa.loadgen.v1.service5"
        );
    }

    #[test]
    fn discovery_bodies_match_the_contract() {
        let mut out = vec![];
        pop().write_get_service(3, &mut out);
        assert_eq!(
            parse(&out),
            json!({"discoveryConfig":{"serviceId":"framework.soa.loadgen.v1.service3"},
                   "regionId":"SHA","zoneId":"SHAJQ"})
        );
        out.clear();
        pop().write_lookup([1, 2].into_iter(), &mut out);
        assert_eq!(
            parse(&out),
            json!({"discoveryConfigs":[{"serviceId":"framework.soa.loadgen.v1.service1"},
                                       {"serviceId":"framework.soa.loadgen.v1.service2"}],
                   "regionId":"SHA","zoneId":"SHAJQ"})
        );
        out.clear();
        pop().write_service_query(7, &mut out);
        assert_eq!(
            out,
            b"serviceId=framework.soa.loadgen.v1.service7&regionId=SHA&zoneId=SHAJQ"
        );
    }
}
