//! Join sync: a node starting into a cluster copies the registry from a peer before it serves,
//! so that it never answers discovery with a half-empty registry (Java's
//! `RegistryReplicationInitializer`), then keeps polling its peers.
//!
//! Every second (Java's 1000 ms) it asks every peer for its status. Every `up` peer, own zone
//! first, is asked for its whole registry (`replication/registry/services.json`), which is
//! registered here through the replication path, each owner shard in turn; once one copy
//! succeeded the node has joined. Java copies from the first up peer only; the union of all of
//! them also holds a write one survivor acknowledged and had not yet passed to another. When every peer answered and none is up, the whole cluster is starting (a cold start)
//! and there is nothing to copy; when peers cannot be reached, the node joins after
//! `--join-timeout`. Each way says so in the log.
//!
//! Joining only adds: nothing here removes an instance, so a starting node never pushes a
//! deletion it did not observe. A copied instance gets a fresh lease, as Java's replicated
//! register gives it: the peers replicate its heartbeats here once they see this node up.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use artemis_shards::json::write_str;
use artemis_shards::{shard_for, Instance};
use glommio::timer::sleep;

use super::poll::{Answer, Poller};
use super::{Cluster, NodeState, Peer};
use crate::decode;
use crate::http::client::HttpClient;
use crate::shard_link::{ShardLink, WriteOp};

/// How often a starting node asks again (Java's `node.init.sync-interval`).
const ROUND: Duration = Duration::from_secs(1);
/// Largest registry copied, and how long its copy may take.
const COPY_MAX_BODY: usize = 1 << 30;
const COPY_TIMEOUT: Duration = Duration::from_secs(30);
/// Instances registered per call to the shards, so that a large copy leaves the cores free
/// between calls.
const COPY_CHUNK: usize = 10_000;

/// What a starting node does after a round of status polls.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    /// Copy from each of these peers (by index), in this order.
    CopyFrom(Vec<usize>),
    /// Every peer answered and none is up: nothing to copy.
    ColdStart,
    /// Some peer did not answer: ask again.
    Wait,
}

/// The decision for the peers' zones and what each answered (`None`: nothing): the up peers,
/// those of `own_zone` first, each in configuration order.
fn decide(own_zone: &str, peers: &[(&str, Option<NodeState>)]) -> Decision {
    let up = |same_zone: bool| {
        peers
            .iter()
            .enumerate()
            .filter_map(move |(i, (zone, state))| {
                (*state == Some(NodeState::Up) && (*zone == own_zone) == same_zone).then_some(i)
            })
    };
    let order: Vec<usize> = up(true).chain(up(false)).collect();
    if !order.is_empty() {
        Decision::CopyFrom(order)
    } else if peers.iter().all(|(_, state)| state.is_some()) {
        Decision::ColdStart
    } else {
        Decision::Wait
    }
}

/// Joins the cluster (see the module comment), then polls the peers every `poll_every`, for
/// the node's life. Runs on one core.
pub(crate) async fn join_then_poll(
    cluster: Arc<Cluster>,
    link: Rc<ShardLink>,
    poll_every: Duration,
    join_timeout: Duration,
) {
    let mut poller = Poller::new(&cluster);
    join(&cluster, &link, &mut poller, join_timeout).await;
    cluster.set_joined();
    loop {
        sleep(poll_every).await;
        poller.round(&cluster).await;
    }
}

async fn join(cluster: &Arc<Cluster>, link: &ShardLink, poller: &mut Poller, timeout: Duration) {
    let started = Instant::now();
    loop {
        let answers = poller.round(cluster).await;
        let states: Vec<_> = cluster
            .peers
            .iter()
            .zip(&answers)
            .map(|(peer, answer)| (peer.zone.as_str(), answer.as_ref().ok().copied()))
            .collect();
        let mut failed = Vec::new();
        match decide(&cluster.zone, &states) {
            Decision::CopyFrom(order) => {
                // Every up peer, not just the first: a write one survivor acknowledged may not
                // have reached another yet, and the union is what the cluster holds.
                let mut copied = Vec::new();
                for peer in order.into_iter().map(|i| &cluster.peers[i]) {
                    match copy(cluster, peer, link).await {
                        Ok(from) => copied.push(format!(
                            "{} services, {} instances from {} in {} ms{}",
                            from.services,
                            from.instances,
                            peer.url,
                            from.took.as_millis(),
                            match from.refused {
                                0 => String::new(),
                                n => format!(" ({n} instances refused)"),
                            }
                        )),
                        Err(why) => failed.push(format!("{}: {why}", peer.url)),
                    }
                }
                if !copied.is_empty() {
                    log::info!(
                        "{} joined the cluster: copied {}",
                        cluster.me,
                        copied.join("; ")
                    );
                    return;
                }
                log::warn!("cannot copy the registry yet: {}", failed.join("; "));
            }
            Decision::ColdStart => {
                log::info!(
                    "{} joined the cluster with nothing to copy: every peer answered and none is up (a cold start)",
                    cluster.me
                );
                return;
            }
            Decision::Wait => {}
        }
        if started.elapsed() >= timeout {
            log::warn!(
                "{} joined the cluster without a copy of the registry after --join-timeout {}: {}",
                cluster.me,
                humantime::format_duration(timeout),
                why_not(cluster, &answers, &failed)
            );
            return;
        }
        sleep(ROUND).await;
    }
}

/// Why the last round gave nothing to copy: each peer's answer, or the failed copies.
fn why_not(cluster: &Cluster, answers: &[Answer], failed: &[String]) -> String {
    if !failed.is_empty() {
        return format!("no up peer gave its registry ({})", failed.join("; "));
    }
    let each: Vec<String> = cluster
        .peers
        .iter()
        .zip(answers)
        .map(|(peer, answer)| match answer {
            Ok(state) => format!("{} is {}", peer.url, state.as_str()),
            Err(why) => format!("{} did not answer ({why})", peer.url),
        })
        .collect();
    format!(
        "no peer is up and not every peer answered: {}",
        each.join("; ")
    )
}

/// What a copy brought.
struct Copied {
    services: usize,
    instances: usize,
    /// Instances this node's shards refused (another region, say).
    refused: usize,
    took: Duration,
}

/// Copies `peer`'s registry into this node's shards, through the replication path.
async fn copy(cluster: &Cluster, peer: &Peer, link: &ShardLink) -> Result<Copied, String> {
    let started = Instant::now();
    let token = cluster.token.clone();
    let mut client = HttpClient::new(
        peer.address.clone(),
        peer.authority.clone(),
        COPY_TIMEOUT,
        COPY_MAX_BODY,
        token,
    );
    let services = registry_of(cluster, peer, &mut client).await?;
    let count = services.len();
    let instances: Vec<Instance> = services.into_iter().flatten().collect();
    let total = instances.len();
    let refused = register(link, instances).await;
    Ok(Copied {
        services: count,
        instances: total - refused,
        refused,
        took: started.elapsed(),
    })
}

/// `peer`'s whole registry, as `replication/registry/services.json` gives it for this node's
/// region and zone: the instances of each of its services. Anti-entropy asks a Java peer, which
/// has no digest, for it too.
pub(super) async fn registry_of(
    cluster: &Cluster,
    peer: &Peer,
    client: &mut HttpClient,
) -> Result<Vec<Vec<Instance>>, String> {
    let mut request = br#"{"regionId":"#.to_vec();
    write_str(&mut request, &cluster.region);
    request.extend_from_slice(br#","zoneId":"#);
    write_str(&mut request, &cluster.zone);
    request.push(b'}');
    let path = format!("{}/api/replication/registry/services.json", peer.base);
    let reply = client
        .post_json(&path, &request)
        .await
        .map_err(|e| e.to_string())?;
    if reply.status != 200 {
        return Err(format!("HTTP {} from services.json", reply.status));
    }
    let mut body = reply.body;
    let services = match decode::services_reply(&mut body) {
        Ok(Some(services)) => services,
        Ok(None) => return Err("services.json answered null".into()),
        Err(e) => return Err(format!("services.json unreadable: {}", e.0)),
    };
    match services.error_code.as_deref() {
        Some("success") => Ok(services.services),
        code => Err(format!(
            "services.json answered {}",
            code.unwrap_or("no status")
        )),
    }
}

/// Registers `instances` as a peer's replicated registers, a chunk at a time, each instance on
/// the shard that owns it; how many were refused.
async fn register(link: &ShardLink, instances: Vec<Instance>) -> usize {
    let shards = link.shards();
    let mut refused = 0;
    let mut all = instances.into_iter().enumerate();
    loop {
        let mut batches = vec![Vec::new(); shards];
        for (i, instance) in all.by_ref().take(COPY_CHUNK) {
            let owner = shard_for(instance.service_id.as_deref().unwrap_or(""), shards);
            batches[owner].push((i as u32, instance));
        }
        if batches.iter().all(Vec::is_empty) {
            return refused;
        }
        refused += link
            .write_replicated(WriteOp::Register, batches)
            .await
            .len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UP: Option<NodeState> = Some(NodeState::Up);
    const STARTING: Option<NodeState> = Some(NodeState::Starting);

    #[test]
    fn the_up_peers_are_copied_from_own_zone_first() {
        let peers = [
            ("b", UP),
            ("a", STARTING),
            ("a", UP),
            ("c", None),
            ("a", UP),
        ];
        assert_eq!(decide("a", &peers), Decision::CopyFrom(vec![2, 4, 0]));
        assert_eq!(decide("z", &peers), Decision::CopyFrom(vec![0, 2, 4]));
    }

    #[test]
    fn without_an_up_peer_a_node_waits_until_every_peer_answered() {
        let down = Some(NodeState::Down);
        assert_eq!(
            decide("a", &[("a", STARTING), ("b", down)]),
            Decision::ColdStart
        );
        assert_eq!(decide("a", &[("a", STARTING), ("b", None)]), Decision::Wait);
        assert_eq!(decide("a", &[("a", None)]), Decision::Wait);
        let unknown = Some(NodeState::Unknown);
        assert_eq!(decide("a", &[("a", unknown)]), Decision::ColdStart);
    }
}
