//! Anti-entropy: the nodes converge by themselves, whatever replication lost (a dropped batch, a
//! partition, a restart with work queued).
//!
//! Every `--digest-interval`, once this node has joined, each peer is asked for its digest
//! (`replication/registry/digest.json`: per service, its instance count and hash). The services
//! whose digests differ from this node's, and only those, are pulled
//! (`service-states.json`: their instances with their leases' times, and the removals the peer
//! remembers), and each owning shard merges its part by the rule written in `artemis-shards`
//! (`shard/anti_entropy.rs`): the later registration wins, a remembered removal keeps a stale
//! copy out, and absence is never a deletion. A peer without the digest endpoint (HTTP 404 or
//! 405, or a reply that is not JSON: a Java node) gives its whole registry (`services.json`)
//! instead; its services whose digest differs from ours have their missing instances added, and
//! nothing replaced or removed, since Java tells no times, and an instance this node remembers
//! removing is not brought back. What a merge changes is pushed to subscribers here and never
//! replicated: every node pulls for itself.
//!
//! Each peer has a task and a keep-alive connection of its own on the first core, so a slow peer
//! delays no other. A comparison that fails (the peer is down, or a partition swallows the
//! request until its timeout) is tried again every [`RETRY`] rather than a whole interval later, so
//! a partition that heals converges within one interval of the heal, whatever its phase.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use artemis_shards::json::write_str;
use artemis_shards::{shard_for, Instance, Merged, ServiceDigest, ServiceState};
use glommio::spawn_local;
use glommio::timer::sleep;

use super::{join, Cluster, Peer};
use crate::clock::now_ms;
use crate::decode;
use crate::http::client::{ClientReply, HttpClient};
use crate::metrics::{DigestCounters, DigestResult, Metrics};
use crate::shard_link::{PeerView, ShardLink};

/// How long a peer may take to accept a connection, and again to answer one request (a Java
/// peer's whole registry among them). Also how long a request lost on a path that swallows
/// traffic holds the comparisons up after the path heals, before the next try [`RETRY`] later.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The pause before comparing again after a comparison failed (at most the interval).
const RETRY: Duration = Duration::from_secs(1);
/// Largest reply taken.
const MAX_REPLY: usize = 1 << 30;
/// Services whose state one request asks for, so that no reply grows with the registry.
const SERVICES_PER_REQUEST: usize = 256;

/// Compares this node with each peer every `every`, on this core, for the node's life.
pub(crate) fn spawn(
    cluster: &Arc<Cluster>,
    link: &Rc<ShardLink>,
    every: Duration,
    metrics: &Metrics,
) {
    let counters = metrics.digest_counters(&cluster.peer_urls());
    for (peer, counters) in cluster.peers.iter().zip(counters) {
        let (address, authority) = (peer.address.clone(), peer.authority.clone());
        let bearer = cluster.token.clone();
        let client = HttpClient::new(address, authority, TIMEOUT, MAX_REPLY, bearer);
        let comparing = Comparing {
            cluster: cluster.clone(),
            index: peer.index,
            link: link.clone(),
            client,
            counters: counters.clone(),
        };
        spawn_local(comparing.every(every)).detach();
    }
}

/// This node compared with one peer.
struct Comparing {
    cluster: Arc<Cluster>,
    index: usize,
    link: Rc<ShardLink>,
    client: HttpClient,
    counters: Arc<DigestCounters>,
}

/// What one comparison found: the services pulled (none when the digests were equal) and what
/// merging them changed.
struct Pulled {
    services: usize,
    merged: Merged,
}

impl Comparing {
    async fn every(mut self, every: Duration) {
        let mut failing = false;
        loop {
            sleep(if failing { RETRY.min(every) } else { every }).await;
            // Whatever the last status poll said: after a partition heals, the first comparison
            // is the next interval's, not the one after the poll that sees the peer up again.
            if !self.cluster.is_joined() {
                continue;
            }
            let outcome = self.compare().await;
            let peer = &self.cluster.peers[self.index];
            match outcome {
                Ok(pulled) => {
                    if failing {
                        log::info!("anti-entropy: {} answers again", peer.url);
                    }
                    failing = false;
                    self.record(&pulled);
                }
                Err(why) => {
                    if !failing {
                        log::warn!("anti-entropy: cannot compare with {}: {why}", peer.url);
                    }
                    failing = true;
                    let nothing = Merged::default();
                    self.counters
                        .record(now_ms(), DigestResult::Failed, 0, nothing);
                }
            }
        }
    }

    fn record(&self, pulled: &Pulled) {
        let result = match pulled.services {
            0 => DigestResult::Equal,
            _ => DigestResult::Pulled,
        };
        let merged = pulled.merged;
        let services = pulled.services as u64;
        self.counters.record(now_ms(), result, services, merged);
        if merged != Merged::default() {
            log::info!(
                "anti-entropy: {} services differed from {}: {} instances added, {} replaced, {} removed",
                pulled.services,
                self.cluster.peers[self.index].url,
                merged.added,
                merged.replaced,
                merged.removed
            );
        }
    }

    /// Compares this node with the peer by digest, or by its whole registry when it has no
    /// digest endpoint (a Java node), and merges what differs.
    async fn compare(&mut self) -> Result<Pulled, String> {
        let ours = self.link.digest().await;
        let mut reply = self.post("digest.json", b"{}".to_vec()).await?;
        let theirs = match reply.status {
            200 => decode::digest_reply(&mut reply.body).ok().flatten(),
            404 | 405 => None,
            other => return Err(format!("HTTP {other} from digest.json")),
        };
        match theirs {
            Some(theirs) => {
                succeeded(theirs.error_code)?;
                self.pull_states(differing(&ours, &theirs.services)).await
            }
            None => self.pull_registry(ours).await,
        }
    }

    /// Pulls and merges the state of the services named.
    async fn pull_states(&mut self, service_ids: Vec<String>) -> Result<Pulled, String> {
        let mut pulled = Pulled {
            services: service_ids.len(),
            merged: Merged::default(),
        };
        for chunk in service_ids.chunks(SERVICES_PER_REQUEST) {
            let mut body = self
                .fetch("service-states.json", ids_request(chunk))
                .await?;
            let states = decode::service_states_reply(&mut body)
                .map_err(|e| e.0)?
                .ok_or("service-states.json answered null")?;
            succeeded(states.error_code)?;
            let views = by_owner(states.services, self.link.shards());
            pulled.merged = pulled.merged + self.link.merge(views).await;
        }
        Ok(pulled)
    }

    /// A Java peer's whole registry: the missing instances of each service whose digest
    /// differs from `ours` are added.
    async fn pull_registry(
        &mut self,
        ours: Vec<(Box<str>, ServiceDigest)>,
    ) -> Result<Pulled, String> {
        let peer = &self.cluster.peers[self.index];
        let registry = join::registry_of(&self.cluster, peer, &mut self.client).await?;
        let ours: HashMap<Box<str>, ServiceDigest> = ours.into_iter().collect();
        let mut theirs: HashMap<String, (ServiceDigest, Vec<Instance>)> = HashMap::new();
        for instance in registry.into_iter().flatten() {
            let (digest, instances) = theirs.entry(instance.service_key()).or_default();
            digest.add(&instance.key(), &instance.to_json());
            instances.push(instance);
        }
        theirs.retain(|id, (digest, _)| ours.get(id.as_str()) != Some(digest));
        let shards = self.link.shards();
        let mut owned: Vec<Vec<Instance>> = vec![Vec::new(); shards];
        let services = theirs.len();
        for (id, (_, instances)) in theirs {
            owned[shard_for(&id, shards)].extend(instances);
        }
        let views = owned.into_iter().map(PeerView::Instances).collect();
        let merged = self.link.merge(views).await;
        Ok(Pulled { services, merged })
    }

    /// POSTs `json` to the peer's `replication/registry/<name>`.
    async fn post(&mut self, name: &str, json: Vec<u8>) -> Result<ClientReply, String> {
        let peer: &Peer = &self.cluster.peers[self.index];
        let path = format!("{}/api/replication/registry/{name}", peer.base);
        let reply = self.client.post_json(&path, &json).await;
        reply.map_err(|e| format!("{name}: {e}"))
    }

    /// [`Comparing::post`], whose reply must be a 200: its body.
    async fn fetch(&mut self, name: &str, json: Vec<u8>) -> Result<Vec<u8>, String> {
        match self.post(name, json).await? {
            reply if reply.status == 200 => Ok(reply.body),
            reply => Err(format!("HTTP {} from {name}", reply.status)),
        }
    }
}

/// A reply's status must be `success`.
fn succeeded(error_code: Option<String>) -> Result<(), String> {
    match error_code.as_deref() {
        Some("success") => Ok(()),
        other => Err(format!(
            "the peer answered {}",
            other.unwrap_or("no status")
        )),
    }
}

/// The services, by lowercased id, whose digests differ: those either side lacks, and those
/// both have with another count or hash.
fn differing(
    ours: &[(Box<str>, ServiceDigest)],
    theirs: &[(String, ServiceDigest)],
) -> Vec<String> {
    let mine: HashMap<&str, &ServiceDigest> = ours.iter().map(|(id, d)| (&**id, d)).collect();
    let known: HashMap<&str, &ServiceDigest> =
        theirs.iter().map(|(id, d)| (id.as_str(), d)).collect();
    let mut ids: Vec<String> = theirs
        .iter()
        .filter(|(id, digest)| mine.get(id.as_str()) != Some(&digest))
        .map(|(id, _)| id.clone())
        .chain(
            ours.iter()
                .filter(|(id, _)| !known.contains_key(&**id))
                .map(|(id, _)| id.to_string()),
        )
        .collect();
    ids.sort_unstable();
    ids
}

/// `{"serviceIds":[..]}`.
fn ids_request(service_ids: &[String]) -> Vec<u8> {
    let mut out = br#"{"serviceIds":["#.to_vec();
    for (i, id) in service_ids.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(&mut out, id);
    }
    out.extend_from_slice(b"]}");
    out
}

/// A peer's states split by owning shard, each instance and removal by its own service id, so
/// that whatever a peer sends, a shard is only given what it owns.
fn by_owner(states: Vec<(String, ServiceState<Instance>)>, shards: usize) -> Vec<PeerView> {
    let mut owned: Vec<ServiceState<Instance>> = (0..shards)
        .map(|_| ServiceState {
            instances: Vec::new(),
            removals: Vec::new(),
        })
        .collect();
    for (_, state) in states {
        for held in state.instances {
            let owner = shard_for(held.instance.service_id.as_deref().unwrap_or(""), shards);
            owned[owner].instances.push(held);
        }
        for (key, removal) in state.removals {
            owned[shard_for(&key.service_id, shards)]
                .removals
                .push((key, removal));
        }
    }
    owned.into_iter().map(PeerView::State).collect()
}

#[cfg(test)]
mod tests {
    use artemis_shards::{Held, InstanceKey, Removal};

    use super::*;

    fn digest(count: u64, hash: u64) -> ServiceDigest {
        ServiceDigest { count, hash }
    }

    #[test]
    fn only_the_services_whose_digests_differ_are_pulled() {
        let ours: Vec<(Box<str>, ServiceDigest)> = vec![
            ("same".into(), digest(2, 7)),
            ("other-hash".into(), digest(2, 7)),
            ("only-ours".into(), digest(1, 1)),
        ];
        let theirs = vec![
            ("same".to_string(), digest(2, 7)),
            ("other-hash".to_string(), digest(2, 8)),
            ("only-theirs".to_string(), digest(3, 3)),
        ];
        assert_eq!(
            differing(&ours, &theirs),
            ["only-ours", "only-theirs", "other-hash"]
        );
        assert!(differing(&ours[..1], &theirs[..1]).is_empty());
    }

    #[test]
    fn a_states_request_names_the_services() {
        let ids = ["a".to_string(), "b\"c".to_string()];
        assert_eq!(ids_request(&ids), br#"{"serviceIds":["a","b\"c"]}"#);
    }

    #[test]
    fn each_shard_is_given_only_what_it_owns() {
        let instance = |service: &str| Instance {
            service_id: Some(service.into()),
            ..Instance::default()
        };
        let held = |service: &str| Held {
            instance: instance(service),
            registration_ms: 1,
            renewal_ms: 2,
        };
        let removed = |service: &str| (instance(service).key(), Removal::unregistered(3));
        // A peer filing another service's instance and removal under "a" changes nothing.
        let state = ServiceState {
            instances: vec![held("a"), held("B")],
            removals: vec![removed("a"), removed("b")],
        };
        let shards = 4;
        let views = by_owner(vec![("a".into(), state)], shards);
        assert_eq!(views.len(), shards);
        for (shard, view) in views.into_iter().enumerate() {
            let PeerView::State(state) = view else {
                panic!("a state");
            };
            for held in &state.instances {
                let id = held.instance.service_id.as_deref().unwrap();
                assert_eq!(shard_for(id, shards), shard);
            }
            for (key, _) in &state.removals {
                let key: &InstanceKey = key;
                assert_eq!(shard_for(&key.service_id, shards), shard);
            }
        }
    }
}
