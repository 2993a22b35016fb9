//! How a client is set up: where the registry is and how patient to be. The defaults are Java
//! SDK's where Java has one (5 s heartbeats, 5 attempts 100 ms apart, the node list refreshed
//! every 5 minutes), and a few seconds where Java's 100 ms socket timeout would fail a loaded
//! node rather than wait for it.

use std::time::Duration;

use crate::error::Error;

/// No setting waits longer (a longer one is a mistake, and would overflow a deadline).
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// A watch stream's buffer is allocated whole; past this, a mistake.
const MAX_WATCH_CAPACITY: usize = 1 << 16;

/// Settings shared by [`RegistryClient`](crate::RegistryClient) and
/// [`DiscoveryClient`](crate::DiscoveryClient). Made by [`ClientConfig::new`], then changed
/// field by field.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Where the client first asks for the registry's nodes (`http://host:port`). After that it
    /// uses the nodes the cluster lists (`cluster/up-registry-nodes.json`,
    /// `up-discovery-nodes.json`) and comes back to these when none of those answers.
    pub seeds: Vec<String>,
    /// The region of this application: the registry refuses instances and discovery from
    /// another region. Instances registered without a region get this one.
    pub region_id: String,
    /// The zone of this application; instances registered without a zone get this one.
    pub zone_id: String,
    /// How often registered instances are heartbeated: well inside the server's lease TTL
    /// (20 s by default).
    pub heartbeat_interval: Duration,
    /// The longest any one request (HTTP call, WebSocket reply or pong) may take.
    pub request_timeout: Duration,
    /// The longest a TCP or WebSocket connect may take.
    pub connect_timeout: Duration,
    /// Attempts per call, each on the next node when one fails or answers `service-unavailable`.
    pub attempts: u32,
    /// The pause between attempts; doubled after each `rate-limited` answer.
    pub retry_interval: Duration,
    /// Whether the node lists the cluster gives replace the seeds (true by default). False keeps
    /// the client on its seeds: an operator's tool asks the node it was told to.
    pub follow_cluster: bool,
    /// How often the node lists are asked for again.
    pub node_refresh_interval: Duration,
    /// How long a node that failed is left for the others.
    pub node_down_time: Duration,
    /// How often an idle WebSocket is pinged to find out it is dead.
    pub ping_interval: Duration,
    /// Changes a [`watch`](crate::DiscoveryClient::watch) stream holds for a slow reader before
    /// it drops the oldest and says how many it dropped.
    pub watch_capacity: usize,
    /// The largest reply (or WebSocket message) accepted, decompressed.
    pub max_reply_bytes: usize,
}

impl ClientConfig {
    /// A configuration for the registry at `seeds` (`http://127.0.0.1:8080`), in region and
    /// zone `default` (the server's own defaults).
    pub fn new<S: Into<String>>(seeds: impl IntoIterator<Item = S>) -> ClientConfig {
        ClientConfig {
            seeds: seeds.into_iter().map(Into::into).collect(),
            region_id: "default".to_string(),
            zone_id: "default".to_string(),
            heartbeat_interval: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            attempts: 5,
            retry_interval: Duration::from_millis(100),
            follow_cluster: true,
            node_refresh_interval: Duration::from_secs(300),
            node_down_time: Duration::from_secs(10),
            ping_interval: Duration::from_secs(5),
            watch_capacity: 64,
            max_reply_bytes: 64 << 20,
        }
    }

    /// Refuses what cannot work, before any task starts.
    pub(crate) fn check(&self) -> Result<(), Error> {
        let bad = |why: &str| Err(Error::Config(why.to_string()));
        if self.seeds.is_empty() {
            return bad("no seed URL");
        }
        if let Some(seed) = self.seeds.iter().find(|s| !s.starts_with("http://")) {
            return bad(&format!(
                "seed {seed:?}: only http:// URLs are supported (no TLS)"
            ));
        }
        if self.region_id.trim().is_empty() {
            return bad("region_id is blank");
        }
        let positive = [
            ("heartbeat_interval", self.heartbeat_interval),
            ("request_timeout", self.request_timeout),
            ("connect_timeout", self.connect_timeout),
            ("node_refresh_interval", self.node_refresh_interval),
            ("ping_interval", self.ping_interval),
        ];
        let any = [
            ("retry_interval", self.retry_interval),
            ("node_down_time", self.node_down_time),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, d)| d.is_zero()) {
            return bad(&format!("{name} is zero"));
        }
        if let Some((name, _)) = positive.iter().chain(&any).find(|(_, d)| *d > MAX_DURATION) {
            return bad(&format!("{name} is over a day"));
        }
        if self.attempts == 0 || self.max_reply_bytes == 0 {
            return bad("attempts and max_reply_bytes must be above zero");
        }
        if !(1..=MAX_WATCH_CAPACITY).contains(&self.watch_capacity) {
            return bad(&format!(
                "watch_capacity must be from 1 to {MAX_WATCH_CAPACITY}"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::ClientConfig;

    #[test]
    fn refuses_what_cannot_work() {
        assert!(ClientConfig::new(["http://127.0.0.1:8080"]).check().is_ok());
        assert!(ClientConfig::new(Vec::<String>::new()).check().is_err());
        assert!(ClientConfig::new(["https://registry"]).check().is_err());
        let mut config = ClientConfig::new(["http://127.0.0.1:8080"]);
        config.heartbeat_interval = std::time::Duration::ZERO;
        assert!(config.check().is_err());
        let mut config = ClientConfig::new(["http://127.0.0.1:8080"]);
        config.node_down_time = std::time::Duration::MAX;
        assert!(config.check().is_err());
        let mut config = ClientConfig::new(["http://127.0.0.1:8080"]);
        config.watch_capacity = usize::MAX;
        assert!(config.check().is_err());
    }
}
