//! This node: its identity (region, zone, URL), its settings, and the status documents built from
//! them once at start.
//!
//! A single node is `up` once its management state is loaded (until then it is `starting`: it
//! serves the registry but not discovery, as Java's `ManagementInitializer` has it); the cluster
//! and status endpoints describe it from the bytes prepared here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use artemis_shards::json::write_str;
use artemis_shards::{InstanceLimits, NodeRules, SafetyConfig, ShardConfig};

use crate::cluster::Cluster;
use crate::config::ServerConfig;
use crate::rate_limit::Limiter;

pub(crate) struct Node {
    pub config: ServerConfig,
    /// The cluster, shared by every core of the node.
    pub cluster: Arc<Cluster>,
    /// Region and zone checks for registry operations.
    pub registry_rules: NodeRules,
    /// The same checks for discovery, with the discovery cross-zone setting.
    pub discovery_rules: NodeRules,
    /// Whole reply bodies that never change while the node runs.
    pub documents: Documents,
}

/// The reply bodies of the status and cluster endpoints, built once.
pub(crate) struct Documents {
    /// `status/node.json` and `status/cluster.json`, up and starting.
    pub up: StatusDocuments,
    pub starting: StatusDocuments,
    /// `status/config.json`.
    pub config: Arc<[u8]>,
    /// `status/deployment.json`.
    pub deployment: Arc<[u8]>,
    /// `cluster/up-*-nodes.json` when this node qualifies.
    pub up_nodes: Arc<[u8]>,
}

/// The bodies that tell this node's status.
pub(crate) struct StatusDocuments {
    /// `status/node.json`.
    pub node_status: Arc<[u8]>,
    /// `status/cluster.json`.
    pub cluster_status: Arc<[u8]>,
    /// `service-unavailable`'s message for discovery: Java's text, typo included.
    pub discovery_refusal: String,
}

/// Config sources as `status/config.json` reports them (Java: source id → priority).
const SOURCES_JSON: &str = r#"{"command-line":1,"environment":2}"#;
const SUCCESS: &str = r#"{"errorCode":"success","message":"","status":"success"}"#;

impl Node {
    pub(crate) fn new(config: ServerConfig, bound: SocketAddr, cluster: Arc<Cluster>) -> Node {
        let url = config.node_url(bound);
        let rules = |allow_other_zone| NodeRules {
            region_id: config.region.clone(),
            zone_id: config.zone.clone(),
            allow_registry_from_other_zone: allow_other_zone,
        };
        let registry_rules = rules(config.allow_registry_from_other_zone);
        let discovery_rules = rules(config.allow_discovery_from_other_zone);

        let mut service_node_json = br#"{"url":"#.to_vec();
        write_str(&mut service_node_json, &url);
        service_node_json.extend_from_slice(br#","zone":{"metadata":null,"regionId":"#);
        write_str(&mut service_node_json, &config.region);
        service_node_json.extend_from_slice(br#","zoneId":"#);
        write_str(&mut service_node_json, &config.zone);
        service_node_json.extend_from_slice(b"}}");

        let service_node = String::from_utf8(service_node_json).expect("JSON is UTF-8");
        let flag = |b: bool| if b { "true" } else { "false" };
        let doc = |s: String| Arc::<[u8]>::from(s.into_bytes());
        let status_documents = |up: bool| {
            let state = if up { "up" } else { "starting" };
            let status = format!(
                r#"{{"allowDiscoveryFromOtherZone":{},"allowRegistryFromOtherZone":{},"canServiceDiscovery":{},"canServiceRegistry":true,"node":{service_node},"status":"{state}"}}"#,
                flag(config.allow_discovery_from_other_zone),
                flag(config.allow_registry_from_other_zone),
                flag(up),
            );
            StatusDocuments {
                node_status: doc(format!(
                    r#"{{"nodeStatus":{status},"responseStatus":{SUCCESS}}}"#
                )),
                cluster_status: doc(format!(
                    r#"{{"nodeCount":1,"nodesStatus":[{status}],"responseStatus":{SUCCESS}}}"#
                )),
                discovery_refusal: format!(
                    "Serivce discovery is not in up state. Current status: {{ node: {url}, status: {state}, canServiceRegistry: true, canServiceDiscovery: {up} }}"
                ),
            }
        };
        let properties = properties(&config, &url);
        let text = |s: &str| {
            let mut out = Vec::new();
            write_str(&mut out, s);
            String::from_utf8(out).expect("JSON is UTF-8")
        };
        let documents = Documents {
            up: status_documents(true),
            starting: status_documents(false),
            config: doc(format!(
                r#"{{"properties":{properties},"responseStatus":{SUCCESS},"sources":{SOURCES_JSON}}}"#
            )),
            deployment: doc(format!(
                r#"{{"appId":"artemis","ip":{},"machineName":{},"path":"/","port":{},"properties":{properties},"protocol":"http","regionId":{},"responseStatus":{SUCCESS},"sources":{SOURCES_JSON},"zoneId":{}}}"#,
                text(&bound.ip().to_string()),
                text(&machine_name()),
                bound.port(),
                text(&config.region),
                text(&config.zone),
            )),
            up_nodes: doc(format!(
                r#"{{"nodes":[{service_node}],"responseStatus":{SUCCESS}}}"#
            )),
        };
        Node {
            cluster,
            config,
            registry_rules,
            discovery_rules,
            documents,
        }
    }

    /// Settings of this core's shard, one of `shards`: node-wide budgets are split evenly.
    pub(crate) fn shard_config(&self, shards: usize) -> ShardConfig {
        let c = &self.config;
        ShardConfig {
            rules: self.registry_rules.clone(),
            lease_ttl_ms: millis(c.lease_ttl),
            legacy_lease_ttl_ms: millis(c.legacy_lease_ttl),
            self_preservation: c.self_preservation.then(|| SafetyConfig {
                window_ms: millis(c.self_preservation_window),
                ..SafetyConfig::default()
            }),
            eviction_batch: c.eviction_batch,
            delta_retention: c.delta_retention,
            delta_retention_bytes: (c.delta_retention_bytes / shards.max(1)).max(1),
            limits: InstanceLimits {
                max_id_bytes: c.max_id_bytes,
                max_metadata_bytes: c.max_metadata_bytes,
            },
        }
    }

    /// Whether a client in `region`/`zone` may be sent to this node (Java's `ClusterController`; see `docs/api.md`): the node
    /// allows other zones, or the zone is exactly this node's.
    pub(crate) fn serves_zone(
        &self,
        allow_other_zone: bool,
        region: Option<&str>,
        zone: Option<&str>,
    ) -> bool {
        allow_other_zone
            || (region == Some(self.config.region.as_str())
                && zone == Some(self.config.zone.as_str()))
    }
}

fn millis(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// The effective settings under the Java configuration keys they stand for, sorted by key.
fn properties(c: &ServerConfig, url: &str) -> String {
    let lease = "artemis.service.registry.instance.lease-manager";
    let legacy = "artemis.service.registry.legacy-instance.lease-manager";
    let mut entries: Vec<(String, String)> = vec![
        ("region.id".into(), c.region.clone()),
        ("zone.id".into(), c.zone.clone()),
        (
            "artemis.service.cluster.nodes".into(),
            format!("{}:{url}", c.zone),
        ),
        (
            "artemis.service.registry.allow-from-other-zone".into(),
            c.allow_registry_from_other_zone.to_string(),
        ),
        (
            "artemis.service.discovery.allow-from-other-zone".into(),
            c.allow_discovery_from_other_zone.to_string(),
        ),
        (
            format!("{lease}.lease.ttl"),
            millis(c.lease_ttl).to_string(),
        ),
        (
            format!("{legacy}.lease.ttl"),
            millis(c.legacy_lease_ttl).to_string(),
        ),
        (
            format!("{lease}.clean-task.run-interval"),
            millis(c.clean_interval).to_string(),
        ),
        (
            format!("{lease}.lease-update-safe-checker.enabled"),
            c.self_preservation.to_string(),
        ),
        (
            format!("{lease}.lease-update-safe-checker.time-window"),
            millis(c.self_preservation_window).to_string(),
        ),
    ];
    for limiter in Limiter::ALL {
        let id = limiter.id();
        let config = c.limiter(limiter);
        entries.extend([
            (
                format!("{id}.rate-limiter.enabled"),
                c.rate_limit.to_string(),
            ),
            (
                format!("{id}.rate-limiter.default-rate-limit"),
                config.default_limit.to_string(),
            ),
            (
                format!("{id}.rate-limiter.rate-limit-map"),
                config.map_text(),
            ),
        ]);
    }
    entries.sort();
    let mut out = vec![b'{'];
    for (i, (k, v)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(&mut out, k);
        out.push(b':');
        write_str(&mut out, v);
    }
    out.push(b'}');
    String::from_utf8(out).expect("JSON is UTF-8")
}

/// The host name, as Java's `machineName` reports it.
fn machine_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}
