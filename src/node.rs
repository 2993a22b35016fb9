//! This node: its identity (region, zone, URL), its settings, and the status documents built from
//! them once at start.
//!
//! A node is `up` once it has joined its cluster (copied the registry from a peer, or had none
//! to copy from) and its management state is loaded. Until it has joined it is `starting` and
//! serves neither the registry nor discovery; joined, but with management still loading, it
//! serves the registry but not discovery, as Java's `ManagementInitializer` has it. The cluster
//! and status endpoints describe it from the bytes prepared here.

use std::net::SocketAddr;
use std::sync::Arc;

use artemis_shards::json::write_str;
use artemis_shards::NodeRules;

use crate::cluster::{service_node_json, Cluster, Flags, NodeState, PeerStatus};
use crate::config::{millis, ServerConfig};
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
    /// This node's status: up; joined but loading its management state; not joined yet.
    pub up: StatusDocuments,
    pub starting: StatusDocuments,
    pub joining: StatusDocuments,
    /// `status/config.json`.
    pub config: Arc<[u8]>,
    /// `status/deployment.json`.
    pub deployment: Arc<[u8]>,
    /// This node's `ServiceNode`, as `cluster/up-*-nodes.json` lists it.
    pub service_node: Arc<[u8]>,
}

/// What tells one status of this node.
pub(crate) struct StatusDocuments {
    /// The status, with its `ServiceNodeStatus` JSON.
    pub status: PeerStatus,
    /// `status/node.json`.
    pub node_status: Arc<[u8]>,
    /// `service-unavailable`'s messages for the registry and discovery: Java's text, typo
    /// included.
    pub registry_refusal: String,
    pub discovery_refusal: String,
}

/// Config sources as `status/config.json` reports them (Java: source id → priority).
const SOURCES_JSON: &str = r#"{"command-line":1,"environment":2}"#;
const SUCCESS: &str = r#"{"errorCode":"success","message":"","status":"success"}"#;

impl Node {
    pub(crate) fn new(config: ServerConfig, bound: SocketAddr, cluster: Arc<Cluster>) -> Node {
        let url = config.node_url(bound);
        let registry_rules = config.registry_rules();
        let discovery_rules = config.rules(config.allow_discovery_from_other_zone);

        let service_node = service_node_json(&url, &config.region, &config.zone);
        let doc = |s: String| Arc::<[u8]>::from(s.into_bytes());
        let status_documents = |state: NodeState, registry: bool, discovery: bool| {
            let flags = Flags {
                can_serve_registry: registry,
                can_serve_discovery: discovery,
                allow_registry_from_other_zone: config.allow_registry_from_other_zone,
                allow_discovery_from_other_zone: config.allow_discovery_from_other_zone,
            };
            let status = PeerStatus::new(state, flags, &service_node);
            let json = String::from_utf8_lossy(&status.json);
            let refusal = |what: &str| {
                format!(
                    "Serivce {what} is not in up state. Current status: {{ node: {url}, status: {}, canServiceRegistry: {registry}, canServiceDiscovery: {discovery} }}",
                    state.as_str()
                )
            };
            StatusDocuments {
                node_status: doc(format!(
                    r#"{{"nodeStatus":{json},"responseStatus":{SUCCESS}}}"#
                )),
                registry_refusal: refusal("registry"),
                discovery_refusal: refusal("discovery"),
                status,
            }
        };
        let properties = properties(&config, &url);
        let text = |s: &str| {
            let mut out = Vec::new();
            write_str(&mut out, s);
            String::from_utf8(out).expect("JSON is UTF-8")
        };
        let documents = Documents {
            up: status_documents(NodeState::Up, true, true),
            starting: status_documents(NodeState::Starting, true, false),
            joining: status_documents(NodeState::Starting, false, false),
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
            service_node,
        };
        Node {
            cluster,
            config,
            registry_rules,
            discovery_rules,
            documents,
        }
    }
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
            cluster_nodes_text(c, url),
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

/// The cluster's nodes as Java writes `artemis.service.cluster.nodes` (`zone:url,url;zone:url`):
/// this node alone without `--cluster-nodes`.
fn cluster_nodes_text(c: &ServerConfig, url: &str) -> String {
    let alone = [(None, url.to_string())];
    let nodes = c
        .cluster_nodes
        .as_ref()
        .map_or(&alone[..], |nodes| &nodes.0);
    let mut zones: Vec<(&str, Vec<&str>)> = Vec::new();
    for (zone, url) in nodes {
        let zone = zone.as_deref().unwrap_or(&c.zone);
        match zones.iter_mut().find(|(z, _)| *z == zone) {
            Some((_, urls)) => urls.push(url),
            None => zones.push((zone, vec![url])),
        }
    }
    let zones: Vec<String> = zones
        .iter()
        .map(|(zone, urls)| format!("{zone}:{}", urls.join(",")))
        .collect();
    zones.join(";")
}

/// The host name, as Java's `machineName` reports it.
fn machine_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}
