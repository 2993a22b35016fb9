//! A call to "the registry" rather than to one node, as Java's SDK makes it: up to `attempts`
//! tries `retry_interval` apart; a node that cannot be reached, times out, answers garbage or
//! answers `service-unavailable` / `internal-service-error` is left for another
//! ([`crate::nodes`]); `rate-limited` (and Java's `unknown`) is tried again on the same node
//! after a pause that doubles each time; any other answer is the caller's. Before a call, the
//! node list is refreshed from `cluster/up-*-nodes.json` when it is due (unless the client keeps
//! to its seeds). The management client leaves a node only on `service-unavailable`: its
//! `internal-service-error` is the store's verdict on the request, which another node would
//! repeat.

use std::time::Duration;

use bytes::Bytes;

use crate::config::ClientConfig;
use crate::error::{Error, ErrorCode};
use crate::http::Http;
use crate::nodes::{normalize, Nodes};
use crate::wire::{NodesReply, Outcome, Reply, ZoneRequest};

/// The longest pause between two attempts after `rate-limited`.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

pub(crate) struct Failover {
    http: Http,
    nodes: Nodes,
    /// `cluster/up-registry-nodes.json` or `up-discovery-nodes.json`.
    list_path: &'static str,
    /// The node list request, `{"regionId":..,"zoneId":..}`.
    list_request: Bytes,
    /// Whether the cluster's node list replaces the seeds.
    follow_cluster: bool,
    /// Which `fail` answers leave the node for another.
    leaves_node: fn(&ErrorCode) -> bool,
    attempts: u32,
    retry_interval: Duration,
    refreshing: tokio::sync::Mutex<()>,
}

/// Why one attempt failed, and what the next one does about it.
enum Attempt {
    /// The node is left for another.
    NodeDown(Error),
    /// The same request may succeed later (`rate-limited`).
    Later(Error),
    /// The answer stands; no other node would answer otherwise.
    Final(Error),
}

impl Failover {
    pub(crate) fn new(config: &ClientConfig, list_path: &'static str) -> Failover {
        let list_request = serde_json::to_vec(&ZoneRequest {
            region_id: &config.region_id,
            zone_id: &config.zone_id,
        })
        .unwrap_or_default();
        Failover {
            http: Http::new(config),
            nodes: Nodes::new(
                &config.seeds,
                config.node_down_time,
                config.node_refresh_interval,
            ),
            list_path,
            list_request: Bytes::from(list_request),
            follow_cluster: config.follow_cluster,
            leaves_node: ErrorCode::is_service_down,
            attempts: config.attempts,
            retry_interval: config.retry_interval,
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// Management's policy: sends `token` as `Authorization: Bearer`, and leaves a node only
    /// when it answers `service-unavailable`.
    pub(crate) fn for_management(mut self, token: Option<&str>) -> Result<Failover, Error> {
        if let Some(token) = token {
            self.http.set_bearer(token)?;
        }
        self.leaves_node = |code| *code == ErrorCode::ServiceUnavailable;
        Ok(self)
    }

    pub(crate) fn nodes(&self) -> &Nodes {
        &self.nodes
    }

    /// `POST path` with the JSON `body` to whichever node answers; `partial_fail` is a reply,
    /// a `fail` the caller has to know about is [`Error::Server`].
    pub(crate) async fn call<R: Reply>(&self, path: &str, body: Bytes) -> Result<R, Error> {
        self.refresh_if_due().await;
        let mut pause = self.retry_interval;
        let mut last = None;
        for attempt in 0..self.attempts {
            if attempt > 0 {
                tokio::time::sleep(pause).await;
            }
            let node = self.nodes.pick();
            match self.once::<R>(&node, path, body.clone()).await {
                Ok(reply) => return Ok(reply),
                Err(Attempt::Final(e)) => return Err(e),
                Err(Attempt::NodeDown(e)) => {
                    log::debug!("artemis-client: leaving {node}: {e}");
                    self.nodes.mark_down(&node);
                    pause = self.retry_interval;
                    last = Some(e);
                }
                Err(Attempt::Later(e)) => {
                    pause = (pause * 2).min(MAX_BACKOFF);
                    last = Some(e);
                }
            }
        }
        Err(Error::Unavailable {
            attempts: self.attempts,
            last: Box::new(last.unwrap_or(Error::Config("no attempt was made".into()))),
        })
    }

    /// One attempt on one node.
    async fn once<R: Reply>(&self, node: &str, path: &str, body: Bytes) -> Result<R, Attempt> {
        let reply = self
            .http
            .post(node, path, body)
            .await
            .map_err(Attempt::NodeDown)?;
        let (reply, why) = match serde_json::from_slice::<R>(&reply.body) {
            Ok(parsed) => match parsed.response_status().map(|s| s.outcome()) {
                Some(Outcome::Done) => return Ok(parsed),
                Some(Outcome::Failed(code, message)) => {
                    let error = Error::Server {
                        code: code.clone(),
                        message,
                    };
                    return Err(if (self.leaves_node)(&code) {
                        Attempt::NodeDown(error)
                    } else if code.is_rerunnable() {
                        Attempt::Later(error)
                    } else {
                        Attempt::Final(error)
                    });
                }
                None => (reply, "no responseStatus".to_string()),
            },
            Err(e) => (reply, e.to_string()),
        };
        // A reply without a status: the HTTP status says what went wrong, or the body is not
        // what this endpoint answers.
        let node = node.to_string();
        Err(match reply.status {
            200 => Attempt::NodeDown(Error::Malformed { node, reason: why }),
            status => {
                let error = Error::Transport {
                    node,
                    reason: format!("HTTP {status}"),
                };
                if status >= 500 {
                    Attempt::NodeDown(error)
                } else {
                    Attempt::Final(error)
                }
            }
        })
    }

    /// Asks the up nodes, then the seeds, for the cluster's list of nodes, when it is due
    /// (calls do before they pick a node; so do WebSocket sessions before they connect).
    pub(crate) async fn refresh_if_due(&self) {
        if !self.follow_cluster || !self.nodes.refresh_due() {
            return;
        }
        // One refresh at a time; calls meanwhile use the list as it is.
        let Ok(_refreshing) = self.refreshing.try_lock() else {
            return;
        };
        for source in self.nodes.refresh_sources() {
            match self
                .once::<NodesReply>(&source, self.list_path, self.list_request.clone())
                .await
            {
                Ok(reply) => {
                    let urls: Vec<String> = reply
                        .nodes
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|n| n.url)
                        .filter(|url| url.starts_with("http://"))
                        .map(|url| normalize(&url))
                        .collect();
                    if !urls.is_empty() {
                        self.nodes.replace(urls);
                        return;
                    }
                }
                Err(Attempt::NodeDown(e)) => {
                    log::debug!("artemis-client: no node list from {source}: {e}");
                    self.nodes.mark_down(&source);
                }
                Err(Attempt::Later(e) | Attempt::Final(e)) => {
                    log::debug!("artemis-client: no node list from {source}: {e}");
                }
            }
        }
        self.nodes.refresh_failed();
    }
}
