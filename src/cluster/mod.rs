//! The cluster this node belongs to: its peers, what each said of itself when last asked, and
//! whether this node has joined (copied the registry from a peer) yet.
//!
//! Membership is static, from `--cluster-nodes`; this node is the entry equal to its own URL.
//! Peers named by host name are looked up again every `--peer-resolve-interval` on a thread of
//! their own ([`spawn_resolver`]), since a lookup may block for seconds and no core may wait on
//! it; what connects to a peer and who may replicate to this node follow the new address.
//! Every core shares one [`Cluster`]: the peer poller writes each peer's status, the replication
//! senders and the status endpoints read it. A peer's status is one atomic for the hot checks and
//! its whole `ServiceNodeStatus` for `status/cluster.json`, behind a mutex that only the poller
//! and the status endpoints take. Which nodes `cluster/up-*-nodes.json` lists is Java's rule,
//! [`PeerStatus::lists`], applied alike to this node and its peers.

pub(crate) mod anti_entropy;
mod join;
mod poll;

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use artemis_shards::json::write_str;

use crate::config::ServerConfig;
use crate::http::client::Address;

pub(crate) use join::join_then_poll;

/// A node's status as Java's `ServiceNodeStatus.status` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum NodeState {
    /// Never answered, or its last poll failed.
    Unknown = 0,
    Starting = 1,
    Up = 2,
    Down = 3,
}

impl NodeState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            NodeState::Unknown => "unknown",
            NodeState::Starting => "starting",
            NodeState::Up => "up",
            NodeState::Down => "down",
        }
    }

    /// A `status` as a node sent it (any case); what Java does not name is `Unknown`.
    pub(crate) fn parse(status: &str) -> NodeState {
        [NodeState::Starting, NodeState::Up, NodeState::Down]
            .into_iter()
            .find(|state| status.eq_ignore_ascii_case(state.as_str()))
            .unwrap_or(NodeState::Unknown)
    }

    fn from_u8(n: u8) -> NodeState {
        match n {
            1 => NodeState::Starting,
            2 => NodeState::Up,
            3 => NodeState::Down,
            _ => NodeState::Unknown,
        }
    }
}

/// What a node says it does, as the flags of Java's `ServiceNodeStatus`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Flags {
    pub can_serve_registry: bool,
    pub can_serve_discovery: bool,
    pub allow_registry_from_other_zone: bool,
    pub allow_discovery_from_other_zone: bool,
}

/// What a node said of itself: a peer in its last `status/node.json`, or this node now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PeerStatus {
    pub state: NodeState,
    pub flags: Flags,
    /// Its `ServiceNodeStatus` object as it sent it, for `status/cluster.json`.
    pub json: Arc<[u8]>,
}

/// What a client asks of the nodes `cluster/up-*-nodes.json` lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Registry,
    Discovery,
}

impl PeerStatus {
    /// A node's status, with the JSON Java writes for it; `node` is the node's `ServiceNode`.
    pub(crate) fn new(state: NodeState, flags: Flags, node: &[u8]) -> PeerStatus {
        PeerStatus {
            state,
            flags,
            json: node_status_json(node, state, Some(flags)),
        }
    }

    /// Whether `up-*-nodes.json` lists the node (in `node_region`/`node_zone`) for `role` to a
    /// client in `region`/`zone` (Java's `ClusterController`): the node is up, serves `role`,
    /// and takes clients from other zones or the client's region and zone are exactly its own.
    pub(crate) fn lists(
        &self,
        role: Role,
        (node_region, node_zone): (&str, &str),
        region: Option<&str>,
        zone: Option<&str>,
    ) -> bool {
        let flags = &self.flags;
        let (serves, any_zone) = match role {
            Role::Registry => (
                flags.can_serve_registry,
                flags.allow_registry_from_other_zone,
            ),
            Role::Discovery => (
                flags.can_serve_discovery,
                flags.allow_discovery_from_other_zone,
            ),
        };
        self.state == NodeState::Up
            && serves
            && (any_zone || (region == Some(node_region) && zone == Some(node_zone)))
    }
}

/// Java's `ServiceNode`: `{"url":..,"zone":{"metadata":null,"regionId":..,"zoneId":..}}`.
pub(crate) fn service_node_json(url: &str, region: &str, zone: &str) -> Arc<[u8]> {
    let mut out = br#"{"url":"#.to_vec();
    write_str(&mut out, url);
    out.extend_from_slice(br#","zone":{"metadata":null,"regionId":"#);
    write_str(&mut out, region);
    out.extend_from_slice(br#","zoneId":"#);
    write_str(&mut out, zone);
    out.extend_from_slice(b"}}");
    out.into()
}

/// Java's `ServiceNodeStatus` of the node whose `ServiceNode` is `node`; unknown flags are
/// written `null`.
fn node_status_json(node: &[u8], state: NodeState, flags: Option<Flags>) -> Arc<[u8]> {
    let flag = |pick: fn(&Flags) -> bool| match flags {
        Some(flags) if pick(&flags) => "true",
        Some(_) => "false",
        None => "null",
    };
    let mut out = format!(
        r#"{{"allowDiscoveryFromOtherZone":{},"allowRegistryFromOtherZone":{},"canServiceDiscovery":{},"canServiceRegistry":{},"node":"#,
        flag(|f| f.allow_discovery_from_other_zone),
        flag(|f| f.allow_registry_from_other_zone),
        flag(|f| f.can_serve_discovery),
        flag(|f| f.can_serve_registry),
    )
    .into_bytes();
    out.extend_from_slice(node);
    out.extend_from_slice(br#","status":"#);
    write_str(&mut out, state.as_str());
    out.push(b'}');
    out.into()
}

/// Another node of the cluster.
#[derive(Debug)]
pub(crate) struct Peer {
    /// Its place in [`Cluster::peers`].
    pub index: usize,
    /// Its URL as configured (Java lists nodes by it).
    pub url: String,
    pub zone: String,
    /// Where to connect: the URL's host and port, as last resolved.
    pub address: Arc<Address>,
    /// The URL's `host[:port]`, for the `Host` header.
    pub authority: String,
    /// The URL's path without its trailing `/` (`""` for the root): requests go to
    /// `{base}/api/...`.
    pub base: String,
    /// Its `ServiceNode` JSON.
    pub service_node: Arc<[u8]>,
    /// Its `ServiceNodeStatus` while it has not answered: `unknown`, every flag `null`.
    unknown: Arc<[u8]>,
    state: AtomicU8,
    status: Mutex<Option<PeerStatus>>,
}

impl Peer {
    /// What it said last; `Unknown` when it has not answered.
    pub(crate) fn state(&self) -> NodeState {
        NodeState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Whether registry traffic (replication) may go to it now: it said it can take it.
    pub(crate) fn takes_registry(&self) -> bool {
        self.status()
            .is_some_and(|s| s.flags.can_serve_registry && s.state != NodeState::Down)
    }

    /// Its `ServiceNodeStatus` as it last sent it, or the `unknown` one.
    pub(crate) fn status_json(&self) -> Arc<[u8]> {
        self.status()
            .map_or_else(|| self.unknown.clone(), |s| s.json)
    }

    /// Its last status, if it answered.
    pub(crate) fn status(&self) -> Option<PeerStatus> {
        self.status.lock().expect("no holder panics").clone()
    }

    /// Records what it said (`None`: it did not answer).
    pub(crate) fn set_status(&self, status: Option<PeerStatus>) {
        let state = status.as_ref().map_or(NodeState::Unknown, |s| s.state);
        *self.status.lock().expect("no holder panics") = status;
        self.state.store(state as u8, Ordering::Release);
    }
}

/// This node's cluster.
#[derive(Debug)]
pub(crate) struct Cluster {
    /// This node's URL, as the cluster lists it.
    pub me: String,
    /// The region of every node (Java's nodes all belong to their server's region).
    pub region: String,
    pub zone: String,
    pub peers: Vec<Peer>,
    /// Sent to peers and required from them on the replication endpoints.
    pub token: Option<String>,
    joined: AtomicBool,
}

impl Cluster {
    /// The cluster of `--cluster-nodes`, this node being the entry equal to `me` (its URL). A
    /// node without `--cluster-nodes`, or alone in it, has no peers and has joined already.
    pub(crate) fn new(config: &ServerConfig, me: String) -> Cluster {
        let own = normalize(&me);
        let peers: Vec<Peer> = config
            .cluster_nodes
            .iter()
            .flat_map(|nodes| nodes.0.iter())
            .filter(|(_, url)| normalize(url) != own)
            .enumerate()
            .map(|(index, (zone, url))| {
                let (authority, base) = split_url(url);
                let zone = zone.clone().unwrap_or_else(|| config.zone.clone());
                let service_node = service_node_json(url, &config.region, &zone);
                Peer {
                    index,
                    url: url.clone(),
                    zone,
                    address: Arc::new(Address::new(resolve(&authority))),
                    authority,
                    base,
                    unknown: node_status_json(&service_node, NodeState::Unknown, None),
                    service_node,
                    state: AtomicU8::new(NodeState::Unknown as u8),
                    status: Mutex::new(None),
                }
            })
            .collect();
        Cluster {
            joined: AtomicBool::new(peers.is_empty()),
            me,
            region: config.region.clone(),
            zone: config.zone.clone(),
            peers,
            token: config.cluster_token.clone(),
        }
    }

    /// Whether this node has copied the registry from a peer (or had none to copy from).
    pub(crate) fn is_joined(&self) -> bool {
        self.joined.load(Ordering::Acquire)
    }

    pub(crate) fn set_joined(&self) {
        self.joined.store(true, Ordering::Release);
    }

    /// The peers' URLs, by peer index.
    pub(crate) fn peer_urls(&self) -> Vec<&str> {
        self.peers.iter().map(|p| p.url.as_str()).collect()
    }

    /// Whether each peer said `up` when last asked, by peer index.
    pub(crate) fn peers_up(&self) -> Vec<bool> {
        self.peers
            .iter()
            .map(|p| p.state() == NodeState::Up)
            .collect()
    }

    /// Whether `ip` is the address of a configured peer.
    pub(crate) fn is_peer_address(&self, ip: IpAddr) -> bool {
        self.peers
            .iter()
            .any(|p| p.address.get().is_some_and(|a| a.ip() == ip))
    }
}

/// Resolves the peers named by host name again every `every`, for the process's life, on a
/// thread of its own; nothing when every peer is named by IP.
pub(crate) fn spawn_resolver(cluster: &Arc<Cluster>, every: Duration) {
    let named = |peer: &&Peer| named_host(&peer.authority);
    if !cluster.peers.iter().any(|peer| named(&peer)) {
        return;
    }
    let cluster = cluster.clone();
    let resolving = move || loop {
        std::thread::sleep(every);
        for peer in cluster.peers.iter().filter(named) {
            let now = resolve(&peer.authority);
            if peer.address.set(now) {
                match now {
                    Some(addr) => log::info!("peer {} now resolves to {addr}", peer.url),
                    None => log::warn!("peer {} no longer resolves", peer.url),
                }
            }
        }
    };
    let spawned = std::thread::Builder::new()
        .name("artemis-resolver".into())
        .spawn(resolving);
    if let Err(e) = spawned {
        log::warn!("peers' host names will not be resolved again: {e}");
    }
}

/// Refuses a cluster this node is not in: with `--cluster-nodes`, its own URL (`--node-url`, or
/// `http://ADDR/` from a concrete `--addr`) must be one of the entries, or the node would poll
/// and replicate to itself and miss a peer.
pub(crate) fn check_membership(config: &ServerConfig) -> Result<(), String> {
    let Some(nodes) = &config.cluster_nodes else {
        return Ok(());
    };
    let me = match &config.node_url {
        Some(url) => url.clone(),
        None if config.addr.port() != 0 && !config.addr.ip().is_unspecified() => {
            config.node_url(config.addr)
        }
        None => {
            return Err(format!(
                "with --cluster-nodes, say which entry is this node with --node-url (--addr {} names no one address)",
                config.addr
            ))
        }
    };
    let own = normalize(&me);
    if nodes.0.iter().any(|(_, url)| normalize(url) == own) {
        Ok(())
    } else {
        Err(format!(
            "this node's URL {me} is not among --cluster-nodes; set --node-url to its entry"
        ))
    }
}

/// A URL compared as the cluster lists it: lowercase, `localhost` as `127.0.0.1`, with a
/// trailing `/`.
fn normalize(url: &str) -> String {
    let mut url = url
        .trim()
        .to_lowercase()
        .replace("://localhost", "://127.0.0.1");
    if !url.ends_with('/') {
        url.push('/');
    }
    url
}

/// `http://host:port/path/` into `("host:port", "/path")`.
fn split_url(url: &str) -> (String, String) {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let base = path.trim_end_matches('/');
    let base = if base.is_empty() {
        String::new()
    } else {
        format!("/{base}")
    };
    (authority.to_string(), base)
}

/// Whether `host[:port]` names its host rather than giving its IP (`[v6]` included).
fn named_host(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host),
    };
    host.parse::<IpAddr>().is_err()
}

/// The address of `host[:port]` (port 80 when none), if it resolves.
fn resolve(authority: &str) -> Option<SocketAddr> {
    let with_port = match authority.rsplit_once(':') {
        Some((_, port)) if port.parse::<u16>().is_ok() => authority.to_string(),
        _ => format!("{authority}:80"),
    };
    with_port.to_socket_addrs().ok()?.next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_authority_and_base() {
        assert_eq!(
            split_url("http://h1:8080/"),
            ("h1:8080".to_string(), String::new())
        );
        assert_eq!(
            split_url("http://h1:8080/artemis-service/"),
            ("h1:8080".to_string(), "/artemis-service".to_string())
        );
        assert_eq!(split_url("http://h1"), ("h1".to_string(), String::new()));
        assert_eq!(normalize("HTTP://localhost:8080"), "http://127.0.0.1:8080/");
        assert_eq!(resolve("127.0.0.1:9"), Some("127.0.0.1:9".parse().unwrap()));
        assert_eq!(resolve("127.0.0.1"), Some("127.0.0.1:80".parse().unwrap()));
        for (authority, named) in [
            ("h1:8080", true),
            ("localhost", true),
            ("10.0.0.1:8080", false),
            ("10.0.0.1", false),
            ("[::1]:8080", false),
            ("[::1]", false),
        ] {
            assert_eq!(named_host(authority), named, "{authority}");
        }
    }

    #[test]
    fn statuses_are_written_as_java_writes_them() {
        let node = service_node_json("http://h1:8080/ctx/", "SHA", "Z1");
        let node_text = r#"{"url":"http://h1:8080/ctx/","zone":{"metadata":null,"regionId":"SHA","zoneId":"Z1"}}"#;
        assert_eq!(&*node, node_text.as_bytes());
        let text = |json: &[u8]| String::from_utf8(json.to_vec()).unwrap();
        assert_eq!(
            text(&node_status_json(&node, NodeState::Unknown, None)),
            format!(
                r#"{{"allowDiscoveryFromOtherZone":null,"allowRegistryFromOtherZone":null,"canServiceDiscovery":null,"canServiceRegistry":null,"node":{node_text},"status":"unknown"}}"#
            )
        );
        let flags = Flags {
            can_serve_registry: true,
            allow_discovery_from_other_zone: true,
            ..Flags::default()
        };
        assert_eq!(
            text(&PeerStatus::new(NodeState::Starting, flags, &node).json),
            format!(
                r#"{{"allowDiscoveryFromOtherZone":true,"allowRegistryFromOtherZone":false,"canServiceDiscovery":false,"canServiceRegistry":true,"node":{node_text},"status":"starting"}}"#
            )
        );
        assert_eq!(NodeState::parse("UP"), NodeState::Up);
        assert_eq!(NodeState::parse("down"), NodeState::Down);
        assert_eq!(NodeState::parse("sleeping"), NodeState::Unknown);
    }

    #[test]
    fn up_nodes_are_listed_by_javas_zone_rule() {
        let node = service_node_json("http://h1:8080/", "SHA", "Z1");
        let zone = ("SHA", "Z1");
        let registry_here = Flags {
            can_serve_registry: true,
            allow_discovery_from_other_zone: true,
            ..Flags::default()
        };
        let up = PeerStatus::new(NodeState::Up, registry_here, &node);
        // Its own region and zone only, compared exactly.
        assert!(up.lists(Role::Registry, zone, Some("SHA"), Some("Z1")));
        assert!(!up.lists(Role::Registry, zone, Some("SHA"), Some("z1")));
        assert!(!up.lists(Role::Registry, zone, Some("sha"), Some("Z1")));
        assert!(!up.lists(Role::Registry, zone, None, None));
        // Other zones are welcome to its discovery, which it does not serve.
        assert!(!up.lists(Role::Discovery, zone, Some("SHA"), Some("Z1")));
        let both = Flags {
            can_serve_discovery: true,
            ..registry_here
        };
        let serving = PeerStatus::new(NodeState::Up, both, &node);
        assert!(serving.lists(Role::Discovery, zone, Some("SHA"), Some("Z9")));
        assert!(serving.lists(Role::Discovery, zone, None, None));
        for state in [NodeState::Starting, NodeState::Down, NodeState::Unknown] {
            let not_up = PeerStatus::new(state, both, &node);
            assert!(!not_up.lists(Role::Discovery, zone, None, None));
            assert!(!not_up.lists(Role::Registry, zone, Some("SHA"), Some("Z1")));
        }
    }
}
