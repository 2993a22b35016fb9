//! Which node a client talks to, as Java's SDK chooses: one node picked at random and kept while
//! it works; a node that fails or answers `service-unavailable` is left for
//! `node_down_time` and another picked; the list comes from the seeds, then from the cluster's
//! own list of up nodes, refreshed periodically (an empty or failed refresh keeps the old list).
//! This module only keeps the list; [`crate::failover`] asks for it.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

pub(crate) struct Nodes {
    seeds: Vec<String>,
    down_time: Duration,
    refresh_interval: Duration,
    state: Mutex<State>,
}

struct State {
    nodes: Vec<Node>,
    /// The node in use while it works.
    current: Option<String>,
    next_refresh: Instant,
}

struct Node {
    url: String,
    down_until: Option<Instant>,
}

impl Node {
    fn is_up(&self, now: Instant) -> bool {
        self.down_until.is_none_or(|until| until <= now)
    }
}

/// `http://host:port/` as the client joins paths to it: trimmed, without the trailing `/`.
pub(crate) fn normalize(url: &str) -> String {
    url.trim().trim_end_matches('/').to_string()
}

impl Nodes {
    pub(crate) fn new(seeds: &[String], down_time: Duration, refresh_interval: Duration) -> Nodes {
        let seeds: Vec<String> = seeds.iter().map(|s| normalize(s)).collect();
        Nodes {
            state: Mutex::new(State {
                nodes: seeds
                    .iter()
                    .map(|url| Node {
                        url: url.clone(),
                        down_until: None,
                    })
                    .collect(),
                current: None,
                next_refresh: Instant::now(),
            }),
            seeds,
            down_time,
            refresh_interval,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The node to use now: the current one while it is up, else a random up one, else (all
    /// down) the one whose time out ends first, so that calls keep trying.
    pub(crate) fn pick(&self) -> String {
        let now = Instant::now();
        let mut state = self.state();
        if let Some(current) = &state.current {
            if state
                .nodes
                .iter()
                .any(|n| &n.url == current && n.is_up(now))
            {
                return current.clone();
            }
        }
        let up: Vec<&Node> = state.nodes.iter().filter(|n| n.is_up(now)).collect();
        if !up.is_empty() {
            let url = up[random_below(up.len())].url.clone();
            state.current = Some(url.clone());
            return url;
        }
        state.current = None;
        state.nodes.iter().min_by_key(|n| n.down_until).map_or_else(
            || self.seeds.first().cloned().unwrap_or_default(),
            |n| n.url.clone(),
        )
    }

    /// Leaves `url` for the others for a while; when none is left, the list is asked for again.
    pub(crate) fn mark_down(&self, url: &str) {
        let now = Instant::now();
        let mut state = self.state();
        if let Some(node) = state.nodes.iter_mut().find(|n| n.url == url) {
            node.down_until = Some(now + self.down_time);
        }
        if state.current.as_deref() == Some(url) {
            state.current = None;
        }
        if !state.nodes.iter().any(|n| n.is_up(now)) {
            state.next_refresh = now;
        }
    }

    pub(crate) fn refresh_due(&self) -> bool {
        Instant::now() >= self.state().next_refresh
    }

    /// Where to ask for the list: the up nodes, then the seeds.
    pub(crate) fn refresh_sources(&self) -> Vec<String> {
        let now = Instant::now();
        let state = self.state();
        let mut sources: Vec<String> = state
            .nodes
            .iter()
            .filter(|n| n.is_up(now))
            .map(|n| n.url.clone())
            .collect();
        for seed in &self.seeds {
            if !sources.contains(seed) {
                sources.push(seed.clone());
            }
        }
        sources
    }

    /// A refreshed list: nodes still listed keep their time out; an empty list changes nothing.
    pub(crate) fn replace(&self, urls: Vec<String>) {
        let mut state = self.state();
        let now = Instant::now();
        state.next_refresh = now + self.refresh_interval;
        if urls.is_empty() {
            return;
        }
        let mut nodes: Vec<Node> = Vec::with_capacity(urls.len());
        for url in urls {
            if nodes.iter().any(|n| n.url == url) {
                continue;
            }
            let down_until = state
                .nodes
                .iter()
                .find(|n| n.url == url)
                .and_then(|n| n.down_until);
            nodes.push(Node { url, down_until });
        }
        if let Some(current) = &state.current {
            if !nodes.iter().any(|n| &n.url == current) {
                state.current = None;
            }
        }
        state.nodes = nodes;
    }

    /// No source answered: try again after a node's time out, not at once.
    pub(crate) fn refresh_failed(&self) {
        let next = Instant::now() + self.down_time.min(self.refresh_interval);
        self.state().next_refresh = next;
    }
}

/// A random index below `n` (> 0), from the standard library's randomly keyed hasher: the pick
/// needs to spread clients over nodes, not to be unpredictable.
fn random_below(n: usize) -> usize {
    let mut hasher = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    hasher.write_u64(nanos);
    (hasher.finish() % n as u64) as usize
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Nodes;

    fn nodes(urls: &[&str]) -> Nodes {
        let urls: Vec<String> = urls.iter().map(|s| s.to_string()).collect();
        Nodes::new(&urls, Duration::from_secs(10), Duration::from_secs(300))
    }

    #[tokio::test]
    async fn keeps_a_working_node_and_leaves_a_failed_one() {
        let nodes = nodes(&["http://a/", "http://b"]);
        let first = nodes.pick();
        assert_eq!(nodes.pick(), first, "a working node is kept");
        nodes.mark_down(&first);
        std::thread::sleep(Duration::from_millis(2));
        let second = nodes.pick();
        assert_ne!(second, first);
        nodes.mark_down(&second);
        // All down: the one whose time out ends first, and a refresh is due.
        assert_eq!(nodes.pick(), first);
        assert!(nodes.refresh_due());
    }

    #[tokio::test]
    async fn a_refresh_replaces_the_list_unless_empty() {
        let nodes = nodes(&["http://seed"]);
        nodes.replace(vec!["http://a".into(), "http://a".into()]);
        assert_eq!(nodes.pick(), "http://a");
        assert!(!nodes.refresh_due());
        nodes.replace(Vec::new());
        assert_eq!(nodes.pick(), "http://a");
        assert_eq!(nodes.refresh_sources(), ["http://a", "http://seed"]);
    }
}
