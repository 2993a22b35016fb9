//! The registry as the tests speak to it: endpoint paths, the reference instance `I1`,
//! instance builders, and one-call helpers (register, discover, read a metric) on [`Server`].

use serde_json::Value;

use super::json::{assert_body, error_code};
use super::{poll, Reply, Server, REGION, ZONE};

/// How long a test waits for what the server does in the background.
const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

pub(crate) const REGISTER: &str = "/api/registry/register.json";
pub(crate) const HEARTBEAT: &str = "/api/registry/heartbeat.json";
pub(crate) const UNREGISTER: &str = "/api/registry/unregister.json";
pub(crate) const SERVICE: &str = "/api/discovery/service.json";
pub(crate) const LOOKUP: &str = "/api/discovery/lookup.json";
pub(crate) const SERVICES: &str = "/api/discovery/services.json";
pub(crate) const LEASES: &str = "/api/status/leases.json";
pub(crate) const LEGACY_LEASES: &str = "/api/status/legacy-leases.json";

#[allow(unused_imports)] // each test binary uses its own part
pub(crate) use artemis_testkit::SHORT_LEASES;

/// The service of `I1`.
pub(crate) const I1_SERVICE: &str = "framework.soa.testservice.v2.testservice";

/// The reference instance `I1` (docs/compatibility.md, "Reference exchanges"), in Java's key
/// order: the server echoes it byte for byte.
pub(crate) const I1: &str = r#"{"groupId":null,"healthCheckUrl":"http://10.2.3.4:8080/health","instanceId":"10.2.3.4:8080","ip":"10.2.3.4","machineName":"host1","metadata":{"k":"v"},"port":8080,"protocol":"http","regionId":"SHA","serviceId":"framework.soa.testservice.v2.testservice","status":"up","url":"http://10.2.3.4:8080/testservice/","zoneId":"SHAJQ"}"#;

/// A register/heartbeat/unregister reply where nothing failed.
pub(crate) const REGISTRY_SUCCESS: &str = r#"{"failedInstances":null,"responseStatus":{"errorCode":"success","message":"","status":"success"}}"#;

/// `partial_fail`, always with an empty message.
pub(crate) const PARTIAL_FAIL: &str =
    r#"{"errorCode":"partial_fail","message":"","status":"partial_fail"}"#;

/// A valid instance of `service_id` in region SHA, zone SHAJQ, every field in Java's key order
/// (so the server's echo of it is the same text). Ids must not need JSON escaping.
pub(crate) fn instance(service_id: &str, instance_id: &str) -> String {
    format!(
        r#"{{"groupId":null,"healthCheckUrl":"http://{instance_id}/health","instanceId":"{instance_id}","ip":"10.0.0.1","machineName":"test-host","metadata":null,"port":8080,"protocol":"http","regionId":"{REGION}","serviceId":"{service_id}","status":"up","url":"http://{instance_id}/","zoneId":"{ZONE}"}}"#
    )
}

/// `instance` with `field` set to `value`.
pub(crate) fn with(instance: &str, field: &str, value: Value) -> String {
    let mut object: Value = serde_json::from_str(instance).expect("an instance is JSON");
    object[field] = value;
    object.to_string()
}

/// `instance` without `field`.
pub(crate) fn without(instance: &str, field: &str) -> String {
    let mut object: Value = serde_json::from_str(instance).expect("an instance is JSON");
    object
        .as_object_mut()
        .expect("an instance is an object")
        .remove(field);
    object.to_string()
}

/// `{"instances":[...]}`.
pub(crate) fn instances<S: AsRef<str>>(list: &[S]) -> String {
    let items: Vec<&str> = list.iter().map(AsRef::as_ref).collect();
    format!(r#"{{"instances":[{}]}}"#, items.join(","))
}

/// The shard that owns `service_id` on a server with `shards` shards.
pub(crate) fn shard_of(service_id: &str, shards: usize) -> usize {
    artemis_shards::shard_for(service_id, shards)
}

/// `count` service ids `PREFIX.N`; asserts that they land on every one of `shards` shards, so a
/// test using them exercises every core's shard.
pub(crate) fn service_ids(prefix: &str, count: usize, shards: usize) -> Vec<String> {
    let ids: Vec<String> = (0..count).map(|n| format!("{prefix}.{n}")).collect();
    for shard in 0..shards {
        assert!(
            ids.iter().any(|id| shard_of(id, shards) == shard),
            "no service of {prefix}.0..{count} on shard {shard}"
        );
    }
    ids
}

/// The first id `PREFIX.N` owned by `shard`.
pub(crate) fn service_on_shard(prefix: &str, shard: usize, shards: usize) -> String {
    (0..)
        .map(|n| format!("{prefix}.{n}"))
        .find(|id| shard_of(id, shards) == shard)
        .expect("some id lands on every shard")
}

/// The body of a `service.json` POST from a client in SHA/SHAJQ.
pub(crate) fn service_request(service_id: &str) -> String {
    format!(
        r#"{{"discoveryConfig":{{"serviceId":"{service_id}"}},"regionId":"{REGION}","zoneId":"{ZONE}"}}"#
    )
}

impl Server {
    pub(crate) fn register<S: AsRef<str>>(&self, list: &[S]) -> Reply {
        self.post(REGISTER, &instances(list))
    }

    pub(crate) fn heartbeat<S: AsRef<str>>(&self, list: &[S]) -> Reply {
        self.post(HEARTBEAT, &instances(list))
    }

    pub(crate) fn unregister<S: AsRef<str>>(&self, list: &[S]) -> Reply {
        self.post(UNREGISTER, &instances(list))
    }

    /// Registers and asserts that nothing failed.
    pub(crate) fn register_ok<S: AsRef<str>>(&self, list: &[S]) {
        assert_body(&self.register(list), REGISTRY_SUCCESS);
    }

    /// [`Server::register_ok`] on a connection of its own, closed after: a keep-alive connection
    /// moves to the core that owns its writes, and the kept one then stays where it is.
    pub(crate) fn register_apart<S: AsRef<str>>(&self, list: &[S]) {
        assert_body(
            &self.connect().post(REGISTER, &instances(list)),
            REGISTRY_SUCCESS,
        );
    }

    /// Open connections on each shard's core.
    pub(crate) fn open_per_core(&self) -> Vec<f64> {
        (0..self.shards)
            .map(|shard| self.metric(&format!("artemis_connections_open{{core=\"{shard}\"}}")))
            .collect()
    }

    /// Waits until the open connections per core are `expected`.
    pub(crate) fn assert_open_per_core(&self, expected: &[f64]) {
        let reached = poll(WAIT, || (self.open_per_core() == expected).then_some(()));
        assert!(
            reached.is_some(),
            "{:?} != {expected:?}",
            self.open_per_core()
        );
    }

    /// The core a new connection shows on, against the open connections `before` it.
    pub(crate) fn accepting_core(&self, before: &[f64]) -> usize {
        poll(WAIT, || {
            let now = self.open_per_core();
            (0..self.shards).find(|&s| now[s] == before[s] + 1.0)
        })
        .expect("the connection shows on the core that accepted it")
    }

    /// The `service` object `service.json` returns, asserting success.
    pub(crate) fn service(&self, service_id: &str) -> Value {
        let reply = self.post(SERVICE, &service_request(service_id));
        assert_eq!(reply.status, 200, "{}", reply.text());
        let body = reply.json();
        assert_eq!(error_code(&body), "success", "{body}");
        body["service"].clone()
    }

    /// The instance ids `service.json` lists for `service_id`, sorted (none for `null`).
    pub(crate) fn instance_ids(&self, service_id: &str) -> Vec<String> {
        let service = self.service(service_id);
        let mut ids: Vec<String> = service["instances"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|i| i["instanceId"].as_str().expect("an instanceId").to_owned())
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// A sample from `/metrics`: `name{labels}` exactly, or for a bare `name` the sum of all
    /// its samples (every label set). Panics when the metric is absent.
    pub(crate) fn metric(&self, series: &str) -> f64 {
        let reply = self.get("/metrics");
        assert_eq!(reply.status, 200);
        sample(reply.text(), series)
            .unwrap_or_else(|| panic!("no metric {series} in:\n{}", reply.text()))
    }

    /// [`Server::metric`] read on a connection of its own ([`Server::get_once`]); `None` when
    /// the metric is absent.
    pub(crate) fn metric_once(&self, series: &str) -> Option<f64> {
        let reply = self.get_once("/metrics");
        assert_eq!(reply.status, 200, "{reply:?}");
        sample(reply.text(), series)
    }
}

/// `name{labels}` exactly in a `/metrics` text, or for a bare `name` the sum of all its samples;
/// `None` when there is no such sample.
pub(crate) fn sample(metrics: &str, series: &str) -> Option<f64> {
    let samples: Vec<f64> = metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(name, _)| {
            *name == series
                || (!series.contains('{')
                    && name
                        .strip_prefix(series)
                        .is_some_and(|l| l.starts_with('{')))
        })
        .map(|(_, value)| value.parse().expect("a sample value is a number"))
        .collect();
    (!samples.is_empty()).then(|| samples.iter().sum())
}
