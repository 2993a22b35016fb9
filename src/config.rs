//! The server's command line: every flag, its `ARTEMIS_*` variable and its default.
//!
//! Durations are written the human way (`20s`, `500ms`) and sizes too (`8MiB`); a core list takes
//! ranges (`0-3,6`). Parsing stops at the first bad flag with a one-line error and exit code 2.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use artemis_shards::{
    InstanceLimits, NodeRules, RemovalMemory, Retention, SafetyConfig, ShardConfig,
    REMOVALS_PER_SHARD,
};
use clap::{Args, Parser, Subcommand};

use crate::limits::ConnectionLimits;
use crate::management::store::StoreLocation;
use crate::management::ManagementSettings;
use crate::rate_limit::{parse_overrides, Limiter, LimiterConfig, Overrides, RateLimits};
use crate::transport::Io;

#[derive(Parser, Debug)]
#[command(
    name = "artemis",
    version,
    about = "Thread-per-core service registry, wire-compatible with Ctrip Artemis"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the registry server.
    Server(ServerConfig),
}

#[derive(Args, Debug, Clone)]
pub struct ServerConfig {
    /// Address every core listens on (each core has its own SO_REUSEPORT listener); port 0 picks a free port.
    #[arg(long, env = "ARTEMIS_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// Cores to serve on, one pinned executor and one registry shard each, e.g. `0-3,6` [default: every online core the process may run on: its affinity, a container's cpuset].
    #[arg(long, env = "ARTEMIS_CORES", value_parser = parse_core_list)]
    pub cores: Option<CoreList>,

    /// Region of this node; registrations from other regions are refused.
    #[arg(long, env = "ARTEMIS_REGION", default_value = "default")]
    pub region: String,

    /// Zone of this node.
    #[arg(long, env = "ARTEMIS_ZONE", default_value = "default")]
    pub zone: String,

    /// Accept registrations whose zone differs from this node's (Java's shipped setting).
    #[arg(long, env = "ARTEMIS_ALLOW_REGISTRY_FROM_OTHER_ZONE", default_value_t = true, action = clap::ArgAction::Set)]
    pub allow_registry_from_other_zone: bool,

    /// Serve discovery to clients whose zone differs from this node's (Java's shipped setting).
    #[arg(long, env = "ARTEMIS_ALLOW_DISCOVERY_FROM_OTHER_ZONE", default_value_t = true, action = clap::ArgAction::Set)]
    pub allow_discovery_from_other_zone: bool,

    /// Lease time to live: an instance without a heartbeat for this long expires.
    #[arg(long, env = "ARTEMIS_LEASE_TTL", default_value = "20s", value_parser = parse_duration)]
    pub lease_ttl: Duration,

    /// Lease time to live of legacy instances (metadata `java_registry` set).
    #[arg(long, env = "ARTEMIS_LEGACY_LEASE_TTL", default_value = "90s", value_parser = parse_duration)]
    pub legacy_lease_ttl: Duration,

    /// How often each shard removes expired leases.
    #[arg(long, env = "ARTEMIS_CLEAN_INTERVAL", default_value = "100ms", value_parser = parse_duration)]
    pub clean_interval: Duration,

    /// At most this many leases are removed per shard per clean interval, so a mass expiry cannot stall a core.
    #[arg(long, env = "ARTEMIS_EVICTION_BATCH", default_value_t = 5000)]
    pub eviction_batch: usize,

    /// Eureka-style self-preservation: stop expiring leases while renewals drop below 85 % of their recent maximum.
    #[arg(long, env = "ARTEMIS_SELF_PRESERVATION", default_value_t = true, action = clap::ArgAction::Set)]
    pub self_preservation: bool,

    /// The window over which self-preservation counts renewals.
    #[arg(long, env = "ARTEMIS_SELF_PRESERVATION_WINDOW", default_value = "12s", value_parser = parse_duration)]
    pub self_preservation_window: Duration,

    /// How long `services-delta.json` can reach back: a number of changes kept per shard (`100000`) or an age (`5m`).
    #[arg(long, env = "ARTEMIS_DELTA_RETENTION", default_value = "100000", value_parser = parse_retention)]
    pub delta_retention: Retention,

    /// Bytes of changes `services-delta.json` keeps on the node, whatever --delta-retention says, split evenly across the shards; the oldest go first (each counts its instance's JSON and a small overhead).
    #[arg(long, env = "ARTEMIS_DELTA_RETENTION_BYTES", default_value = "32MiB", value_parser = parse_nonzero_size)]
    pub delta_retention_bytes: usize,

    /// Largest id of an instance (regionId, zoneId, groupId, serviceId, instanceId), in bytes; a registry request's instance with a longer one fails alone with `bad-request`. Other strings are held to 2 KiB, each metadata key to 256 bytes and value to 8 KiB.
    #[arg(long, env = "ARTEMIS_MAX_ID_BYTES", default_value = "256", value_parser = parse_nonzero_size)]
    pub max_id_bytes: usize,

    /// Largest metadata of an instance, every key and value together, in bytes; a registered instance with more fails alone with `bad-request`.
    #[arg(long, env = "ARTEMIS_MAX_METADATA_BYTES", default_value = "64KiB", value_parser = parse_size)]
    pub max_metadata_bytes: usize,

    /// Most instances one register, heartbeat or unregister request may list; a request with more is refused whole with `bad-request`.
    #[arg(long, env = "ARTEMIS_MAX_INSTANCES_PER_REQUEST", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_instances_per_request: u32,

    /// Largest accepted request body (after gzip decoding).
    #[arg(long, env = "ARTEMIS_MAX_BODY", default_value = "8MiB", value_parser = parse_size)]
    pub max_body: usize,

    /// Largest accepted request head: request line and headers (431 beyond).
    #[arg(long, env = "ARTEMIS_MAX_HEAD", default_value = "16KiB", value_parser = parse_size)]
    pub max_head: usize,

    /// A connection with no request in progress is closed after this long without a byte.
    #[arg(long, env = "ARTEMIS_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// A request not complete this long after its first byte is answered 408 and its connection closed (slow clients, slowloris).
    #[arg(long, env = "ARTEMIS_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// Requests answered per read of one connection; pipelined requests beyond wait for the connection's next turn, so one connection cannot hold a core.
    #[arg(long, env = "ARTEMIS_MAX_PIPELINE", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_pipeline: u32,

    /// Unsent reply bytes a connection may have before its further pipelined requests wait for the client to read (a service's instances are sent from the shared snapshot, not copied).
    #[arg(long, env = "ARTEMIS_MAX_OUTPUT", default_value = "256KiB", value_parser = parse_size)]
    pub max_output: usize,

    /// Open connections on the node; a connection beyond is answered 503 (`service-unavailable`) and closed.
    #[arg(long, env = "ARTEMIS_MAX_CONNECTIONS", default_value_t = 65536)]
    pub max_connections: usize,

    /// Open connections on one core; beyond, as for --max-connections [default: no limit of its own].
    #[arg(long, env = "ARTEMIS_MAX_CONNECTIONS_PER_CORE")]
    pub max_connections_per_core: Option<usize>,

    /// Rate limiting (Java's `artemis.service.*` rate limiters; see `docs/limits.md`): each limited operation is refused with `rate-limited` once the node served its limit in the last 10 s.
    #[arg(long, env = "ARTEMIS_RATE_LIMIT", default_value_t = true, action = clap::ArgAction::Set)]
    pub rate_limit: bool,

    /// Requests per 10 s of each `artemis.service.registry` operation: register, heartbeat (HTTP and WebSocket), unregister.
    #[arg(long, env = "ARTEMIS_REGISTRY_RATE_LIMIT", default_value_t = 100_000)]
    pub registry_rate_limit: u64,

    /// Per-operation overrides of --registry-rate-limit, as Java's rate-limit-map: `heartbeat:200000,register:50000`.
    #[arg(long, env = "ARTEMIS_REGISTRY_RATE_LIMIT_MAP", default_value = "", value_parser = registry_overrides)]
    pub registry_rate_limit_map: Overrides,

    /// Requests per 10 s of each `artemis.service.registry.replication` operation (peers' replication): register, heartbeat, unregister, get-services.
    #[arg(
        long,
        env = "ARTEMIS_REPLICATION_RATE_LIMIT",
        default_value_t = 1_000_000
    )]
    pub replication_rate_limit: u64,

    /// Per-operation overrides of --replication-rate-limit (`op:limit,...`).
    #[arg(long, env = "ARTEMIS_REPLICATION_RATE_LIMIT_MAP", default_value = "", value_parser = replication_overrides)]
    pub replication_rate_limit_map: Overrides,

    /// Requests per 10 s of each `artemis.service.cluster` operation: up-registry-nodes, up-discovery-nodes.
    #[arg(long, env = "ARTEMIS_CLUSTER_RATE_LIMIT", default_value_t = 10_000)]
    pub cluster_rate_limit: u64,

    /// Per-operation overrides of --cluster-rate-limit (`op:limit,...`).
    #[arg(long, env = "ARTEMIS_CLUSTER_RATE_LIMIT_MAP", default_value = "", value_parser = cluster_overrides)]
    pub cluster_rate_limit_map: Overrides,

    /// Requests per 10 s of each `artemis.service.status` operation: get-cluster, get-leases, get-legacy-leases, get-config, get-deployment.
    #[arg(long, env = "ARTEMIS_STATUS_RATE_LIMIT", default_value_t = 30)]
    pub status_rate_limit: u64,

    /// Per-operation overrides of --status-rate-limit (`op:limit,...`; Java ships `get-leases:10`).
    #[arg(long, env = "ARTEMIS_STATUS_RATE_LIMIT_MAP", default_value = "get-leases:10", value_parser = status_overrides)]
    pub status_rate_limit_map: Overrides,

    /// Requests per 10 s of each `artemis.service.management.group` operation: get.route-rules, get.route-rule-groups, get.groups.
    #[arg(
        long,
        env = "ARTEMIS_MANAGEMENT_GROUP_RATE_LIMIT",
        default_value_t = 30
    )]
    pub management_group_rate_limit: u64,

    /// Per-operation overrides of --management-group-rate-limit (`op:limit,...`).
    #[arg(long, env = "ARTEMIS_MANAGEMENT_GROUP_RATE_LIMIT_MAP", default_value = "", value_parser = management_group_overrides)]
    pub management_group_rate_limit_map: Overrides,

    /// Bytes of changes a WebSocket subscriber may have waiting; one that falls further behind is closed (code 1013) and resubscribes.
    #[arg(long, env = "ARTEMIS_WS_QUEUE", default_value = "4MiB", value_parser = parse_size)]
    pub ws_queue: usize,

    /// Bytes of changes all WebSocket subscribers of the node may have waiting together; past it the slowest subscribers are closed first (code 1013).
    #[arg(long, env = "ARTEMIS_WS_QUEUE_TOTAL", default_value = "256MiB", value_parser = parse_size)]
    pub ws_queue_total: usize,

    /// Services one `/ws/discovery/instance-change` session may follow; a subscription beyond closes the session (code 1008).
    #[arg(long, env = "ARTEMIS_WS_MAX_SUBSCRIPTIONS", default_value_t = 10_000)]
    pub ws_max_subscriptions: usize,

    /// Largest WebSocket frame a client may send; a session sending a larger one is closed (code 1009).
    #[arg(long, env = "ARTEMIS_WS_MAX_FRAME", default_value = "1MiB", value_parser = parse_size)]
    pub ws_max_frame: usize,

    /// Largest WebSocket message a client may send, fragments together; a session sending a larger one is closed (code 1009).
    #[arg(long, env = "ARTEMIS_WS_MAX_MESSAGE", default_value = "8MiB", value_parser = parse_size)]
    pub ws_max_message: usize,

    /// WebSocket sessions are closed this long after they opened, as Java does (clients reconnect).
    #[arg(long, env = "ARTEMIS_WS_SESSION_TTL", default_value = "6m", value_parser = parse_duration)]
    pub ws_session_ttl: Duration,

    /// Busy-wait this long before an idle core sleeps (glommio's spin_before_park); trades CPU for latency [default: off].
    #[arg(long, env = "ARTEMIS_SPIN_BEFORE_PARK", value_parser = parse_duration)]
    pub spin_before_park: Option<Duration>,

    /// Transport: `uring` (an io_uring ring of our own per core) or `glommio` (glommio's TcpStream); a core whose ring cannot be created falls back to glommio.
    #[arg(long, env = "ARTEMIS_IO", value_enum, default_value = "uring")]
    pub io: Io,

    /// URL peers and clients use to reach this node, as listed by the cluster endpoints [default: http://ADDR/].
    #[arg(long, env = "ARTEMIS_NODE_URL")]
    pub node_url: Option<String>,

    /// The cluster, in Java's format (`zoneA:http://h1:8080/,http://h2:8080/;zoneB:http://h3:8080/`) or as a plain comma list of URLs (all in this node's zone); this node is the entry equal to --node-url. Without it the node is alone, as before.
    #[arg(long, env = "ARTEMIS_CLUSTER_NODES", value_parser = parse_cluster_nodes)]
    pub cluster_nodes: Option<ClusterNodes>,

    /// Peers must send this as `Authorization: Bearer TOKEN` on the replication endpoints, and this node sends it to its peers. Leave it unset while Java nodes are peers: they cannot send it.
    #[arg(long, env = "ARTEMIS_CLUSTER_TOKEN", hide_env_values = true)]
    pub cluster_token: Option<String>,

    /// How often each peer's `status/node.json` is polled (Java: 5 s).
    #[arg(long, env = "ARTEMIS_PEER_STATUS_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub peer_status_interval: Duration,

    /// How often the host names of `--cluster-nodes` are resolved again (peers given by IP are never looked up), so a peer that moves keeps being reached and let in.
    #[arg(long, env = "ARTEMIS_PEER_RESOLVE_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub peer_resolve_interval: Duration,

    /// A node starting into a cluster serves once it has copied the registry from an `up` peer, once every peer answered and none is up, or after this long (and says why).
    #[arg(long, env = "ARTEMIS_JOIN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub join_timeout: Duration,

    /// Replication to a peer sends a batch once this many instances of one kind are pending (Java: 250).
    #[arg(long, env = "ARTEMIS_REPLICATION_BATCH", default_value_t = 250, value_parser = clap::value_parser!(u32).range(1..))]
    pub replication_batch: u32,

    /// ... or once the oldest pending one has waited this long (Java: 2 s).
    #[arg(long, env = "ARTEMIS_REPLICATION_DELAY", default_value = "5ms", value_parser = parse_duration)]
    pub replication_delay: Duration,

    /// Replication work waiting for one peer on the node, in bytes of instance JSON; past it the oldest is dropped and counted.
    #[arg(long, env = "ARTEMIS_REPLICATION_QUEUE", default_value = "16MiB", value_parser = parse_nonzero_size)]
    pub replication_queue: usize,

    /// A replication task not delivered within this long is dropped (Java: 5 s).
    #[arg(long, env = "ARTEMIS_REPLICATION_TASK_TTL", default_value = "5s", value_parser = parse_duration)]
    pub replication_task_ttl: Duration,

    /// How often each node compares a digest of its registry with each peer's and pulls the services that differ.
    #[arg(long, env = "ARTEMIS_DIGEST_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub digest_interval: Duration,

    /// How long a removed instance is remembered, so that no peer's stale copy brings it back.
    #[arg(long, env = "ARTEMIS_REMOVAL_MEMORY", default_value = "10m", value_parser = parse_duration)]
    pub removal_memory: Duration,

    /// Directory of the embedded management database (`management.db`, SQLite), created if missing; unused with --management-db.
    #[arg(long, env = "ARTEMIS_DATA_DIR", default_value = "artemis-data")]
    pub data_dir: PathBuf,

    /// A PostgreSQL database for management data instead of the embedded one, shared by the nodes of a cluster: `postgres://user:password@host:5432/db`.
    #[arg(long, env = "ARTEMIS_MANAGEMENT_DB", value_parser = parse_management_db)]
    pub management_db: Option<String>,

    /// Management writes must carry this token (`Authorization: Bearer TOKEN` or the request's `token` field); without one, they are accepted from loopback clients only.
    #[arg(long, env = "ARTEMIS_MANAGEMENT_TOKEN", hide_env_values = true)]
    pub management_token: Option<String>,

    /// How often management data is reloaded in full from the store, the safety net for a missed change notice from another node.
    #[arg(long, env = "ARTEMIS_MANAGEMENT_RELOAD", default_value = "30s", value_parser = parse_duration)]
    pub management_reload: Duration,
}

/// The nodes of a cluster: each URL with its zone (`None`: this node's zone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterNodes(pub Vec<(Option<String>, String)>);

/// Parses Java's `zoneA:url,url;zoneB:url` or a plain `url,url` (every node in this node's
/// zone). A zone's name and its URLs split at the first `:` that is not a URL's own.
fn parse_cluster_nodes(s: &str) -> Result<ClusterNodes, String> {
    let mut nodes = Vec::new();
    for group in s.split(';').map(str::trim).filter(|g| !g.is_empty()) {
        let is_url = |part: &str| part.starts_with("http://") || part.starts_with("https://");
        let (zone, urls) = match group.split_once(':') {
            Some((zone, urls)) if !is_url(group) => (Some(zone.trim().to_string()), urls),
            _ => (None, group),
        };
        for url in urls.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            if !is_url(url) {
                return Err(format!("`{url}` in --cluster-nodes is not an http:// URL"));
            }
            nodes.push((zone.clone(), url.to_string()));
        }
    }
    if nodes.is_empty() {
        return Err("--cluster-nodes names no node".into());
    }
    Ok(ClusterNodes(nodes))
}

/// Accepts only PostgreSQL URLs (the embedded store needs no flag).
fn parse_management_db(s: &str) -> Result<String, String> {
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{s}` is not a postgres:// URL (the embedded store is the default; see --data-dir)"
        ))
    }
}

/// A set of CPU ids in the order given, without duplicates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreList(pub Vec<usize>);

/// Parses `0-3,6` into `[0, 1, 2, 3, 6]`.
pub fn parse_core_list(s: &str) -> Result<CoreList, String> {
    let mut cores = Vec::new();
    for part in s.split(',').map(str::trim) {
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo.trim(), hi.trim()),
            None => (part, part),
        };
        let parse = |n: &str| {
            n.parse::<usize>()
                .map_err(|_| format!("`{part}` is not a core number or range like 0-3"))
        };
        let (lo, hi) = (parse(lo)?, parse(hi)?);
        if lo > hi {
            return Err(format!("range `{part}` runs backwards"));
        }
        for core in lo..=hi {
            if !cores.contains(&core) {
                cores.push(core);
            }
        }
    }
    Ok(CoreList(cores))
}

/// Parses `20s`, `500ms`, `1m 30s` (humantime); a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration like 20s or 500ms ({e})"))
}

/// Parses a delta retention: a bare number counts changes, anything else is an age (`5m`).
pub(crate) fn parse_retention(s: &str) -> Result<Retention, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("a delta retention of 0 changes keeps nothing".into()),
        Ok(count) => Ok(Retention::Count(count)),
        Err(_) => parse_duration(s).map(|age| Retention::AgeMs(age.as_millis() as u64)),
    }
}

/// Parses `8MiB`, `512KiB`, `1MB`, `4096`: binary (`KiB`, `MiB`, `GiB`) and decimal (`KB`, `MB`, `GB`) units.
pub(crate) fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: usize = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a size like 8MiB"))?;
    let factor: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{s}` (use KiB, MiB, GiB, KB, MB, GB)"
            ))
        }
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// [`parse_size`], refusing 0.
fn parse_nonzero_size(s: &str) -> Result<usize, String> {
    match parse_size(s)? {
        0 => Err("a size of 0 allows nothing".into()),
        n => Ok(n),
    }
}

fn registry_overrides(s: &str) -> Result<Overrides, String> {
    parse_overrides(s, Limiter::Registry)
}

fn replication_overrides(s: &str) -> Result<Overrides, String> {
    parse_overrides(s, Limiter::Replication)
}

fn cluster_overrides(s: &str) -> Result<Overrides, String> {
    parse_overrides(s, Limiter::Cluster)
}

fn status_overrides(s: &str) -> Result<Overrides, String> {
    parse_overrides(s, Limiter::Status)
}

fn management_group_overrides(s: &str) -> Result<Overrides, String> {
    parse_overrides(s, Limiter::ManagementGroup)
}

/// A duration in whole milliseconds, as the shards and Java's properties count time.
pub(crate) fn millis(d: Duration) -> u64 {
    d.as_millis() as u64
}

impl ServerConfig {
    /// This node's region and zone checks, taking instances of other zones or not.
    pub(crate) fn rules(&self, allow_other_zone: bool) -> NodeRules {
        NodeRules {
            region_id: self.region.clone(),
            zone_id: self.zone.clone(),
            allow_registry_from_other_zone: allow_other_zone,
        }
    }

    /// The region and zone checks of registry operations.
    pub(crate) fn registry_rules(&self) -> NodeRules {
        self.rules(self.allow_registry_from_other_zone)
    }

    /// Settings of one core's shard, one of `shards`: node-wide budgets are split evenly.
    pub fn shard_config(&self, shards: usize) -> ShardConfig {
        ShardConfig {
            rules: self.registry_rules(),
            lease_ttl_ms: millis(self.lease_ttl),
            legacy_lease_ttl_ms: millis(self.legacy_lease_ttl),
            self_preservation: self.self_preservation.then(|| SafetyConfig {
                window_ms: millis(self.self_preservation_window),
                ..SafetyConfig::default()
            }),
            eviction_batch: self.eviction_batch,
            delta_retention: self.delta_retention,
            delta_retention_bytes: (self.delta_retention_bytes / shards.max(1)).max(1),
            limits: InstanceLimits {
                max_id_bytes: self.max_id_bytes,
                max_metadata_bytes: self.max_metadata_bytes,
            },
            removal_memory: RemovalMemory {
                memory_ms: millis(self.removal_memory),
                max_entries: REMOVALS_PER_SHARD,
            },
        }
    }

    /// The settings of one of Java's rate limiters.
    pub fn limiter(&self, limiter: Limiter) -> LimiterConfig {
        let (default_limit, overrides) = match limiter {
            Limiter::Registry => (self.registry_rate_limit, &self.registry_rate_limit_map),
            Limiter::Replication => (
                self.replication_rate_limit,
                &self.replication_rate_limit_map,
            ),
            Limiter::Cluster => (self.cluster_rate_limit, &self.cluster_rate_limit_map),
            Limiter::Status => (self.status_rate_limit, &self.status_rate_limit_map),
            Limiter::ManagementGroup => (
                self.management_group_rate_limit,
                &self.management_group_rate_limit_map,
            ),
        };
        LimiterConfig {
            default_limit,
            overrides: overrides.clone(),
        }
    }

    /// Java's rate limiters as configured, for a node of `cores` cores.
    pub(crate) fn rate_limits(&self, cores: usize) -> RateLimits {
        let limiters: Vec<_> = Limiter::ALL
            .iter()
            .map(|&limiter| (limiter, self.limiter(limiter)))
            .collect();
        let limiters: Vec<_> = limiters.iter().map(|(l, c)| (*l, c)).collect();
        RateLimits::new(self.rate_limit, &limiters, cores)
    }

    /// Where management data is kept, and how often it is reloaded.
    pub(crate) fn management(&self) -> ManagementSettings {
        let location = match &self.management_db {
            Some(url) => StoreLocation::Postgres(url.clone()),
            None => StoreLocation::Sqlite(self.data_dir.clone()),
        };
        ManagementSettings {
            location,
            reload_every: self.management_reload,
        }
    }

    /// The time and turn limits of every connection.
    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            idle_timeout: self.idle_timeout,
            request_timeout: self.request_timeout,
            pipeline_depth: self.max_pipeline as usize,
            output_bound: self.max_output,
        }
    }

    /// The URL the cluster endpoints publish for this node.
    pub fn node_url(&self, bound: SocketAddr) -> String {
        self.node_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate_limit::LimitedOp;

    #[test]
    fn core_lists() {
        assert_eq!(parse_core_list("0-3,6").unwrap().0, vec![0, 1, 2, 3, 6]);
        assert_eq!(parse_core_list("1").unwrap().0, vec![1]);
        assert_eq!(parse_core_list("2,1,2").unwrap().0, vec![2, 1]);
        assert!(parse_core_list("3-1").is_err());
        assert!(parse_core_list("a").is_err());
        assert!(parse_core_list("").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("20s").unwrap(), Duration::from_secs(20));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn retentions() {
        assert_eq!(
            parse_retention("100000").unwrap(),
            Retention::Count(100_000)
        );
        assert_eq!(parse_retention("5m").unwrap(), Retention::AgeMs(300_000));
        assert!(parse_retention("0").is_err());
        assert!(parse_retention("soon").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("8MiB").unwrap(), 8 << 20);
        assert_eq!(parse_size("512KiB").unwrap(), 512 << 10);
        assert_eq!(parse_size("1MB").unwrap(), 1_000_000);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("8XB").is_err());
        assert!(parse_size("MiB").is_err());
    }

    #[test]
    fn defaults_match_the_issue() {
        let cli = Cli::try_parse_from(["artemis", "server"]).unwrap();
        let Command::Server(c) = cli.command;
        assert_eq!(c.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(c.lease_ttl, Duration::from_secs(20));
        assert_eq!(c.clean_interval, Duration::from_millis(100));
        assert_eq!(c.max_body, 8 << 20);
        assert!(c.allow_registry_from_other_zone);
        assert!(c.self_preservation);
        assert!(c.spin_before_park.is_none());
        assert_eq!(c.io, Io::Uring);
        assert!(c.cores.is_none());
        assert_eq!(c.max_head, crate::http::Limits::default().max_head);
        assert_eq!(c.connection_limits(), ConnectionLimits::default());
        assert_eq!(c.max_connections, 65536);
        assert_eq!(c.delta_retention_bytes, 32 << 20);
        assert_eq!(c.max_id_bytes, 256);
        assert_eq!(c.max_metadata_bytes, 64 << 10);
        assert_eq!(c.max_instances_per_request, 10_000);
        assert!(c.max_connections_per_core.is_none());
        assert!(c.rate_limit);
        let registry = c.limiter(Limiter::Registry);
        assert_eq!(registry.limit(LimitedOp::Heartbeat), 100_000);
        assert_eq!(c.limiter(Limiter::Cluster).default_limit, 10_000);
        let replication = c.limiter(Limiter::Replication);
        assert_eq!(replication.limit(LimitedOp::GetServices), 1_000_000);
        let status = c.limiter(Limiter::Status);
        assert_eq!(status.limit(LimitedOp::GetLeases), 10);
        assert_eq!(status.limit(LimitedOp::GetConfig), 30);
        let management = c.limiter(Limiter::ManagementGroup);
        assert_eq!(management.limit(LimitedOp::GetGroups), 30);
    }

    #[test]
    fn rate_limit_maps_name_their_limiters_operations() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from([&["artemis", "server"][..], args].concat()).map(|cli| {
                let Command::Server(c) = cli.command;
                c
            })
        };
        let c = parse(&["--registry-rate-limit-map", "heartbeat:5"]).unwrap();
        assert_eq!(c.limiter(Limiter::Registry).limit(LimitedOp::Heartbeat), 5);
        assert_eq!(
            c.limiter(Limiter::Registry).limit(LimitedOp::Register),
            100_000
        );
        assert!(parse(&["--registry-rate-limit-map", "get-leases:5"]).is_err());
        assert!(parse(&["--max-pipeline", "0"]).is_err());
    }

    #[test]
    fn state_bounds_take_sizes() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from([&["artemis", "server"][..], args].concat()).map(|cli| {
                let Command::Server(c) = cli.command;
                c
            })
        };
        let c = parse(&[
            "--delta-retention-bytes",
            "4MiB",
            "--max-id-bytes",
            "1KiB",
            "--max-metadata-bytes",
            "0",
            "--max-instances-per-request",
            "5",
        ])
        .unwrap();
        assert_eq!(c.delta_retention_bytes, 4 << 20);
        assert_eq!(c.max_id_bytes, 1024);
        assert_eq!(c.max_metadata_bytes, 0);
        assert_eq!(c.max_instances_per_request, 5);
        assert!(parse(&["--delta-retention-bytes", "0"]).is_err());
        assert!(parse(&["--max-id-bytes", "0"]).is_err());
        assert!(parse(&["--max-instances-per-request", "0"]).is_err());
        assert!(parse(&["--max-metadata-bytes", "lots"]).is_err());
    }
}
