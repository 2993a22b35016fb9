//! Replication out: every successful client-facing register, heartbeat and unregister goes to
//! every peer that takes registry traffic (or is starting: see [`PeerLink::replicates`]), over
//! Java's `/api/replication/registry/*.json` (docs/cluster.md), so that our nodes and Java's
//! replicate to each other alike.
//!
//! Each core replicates what its own clients wrote. Its [`Replicator`] keeps, per peer, an
//! [`outbox`] (coalescing per instance, batches per kind, bounded in bytes and by a TTL) and a
//! [`sender`] task that owns the core's keep-alive connection to that peer. Nothing is shared
//! between cores and no lock is taken on the client's path; a node without peers does no work at
//! all. Only `api::registry` enqueues: writes that arrive by replication are never sent on.
//!
//! Two writes to one instance that reach two different cores go out on two connections, in no
//! set order between them (Java's 20 sender threads give no order either); the anti-entropy
//! digests repair what that, or any lost batch, leaves different.

mod outbox;
mod packed;
mod reply;
mod sender;
mod update;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use artemis_shards::{FailedInstance, Instance};

use self::outbox::{Limits, Outbox};
use self::packed::Packer;
use self::sender::Doorbell;
use self::update::Update;
use crate::cluster::{Cluster, NodeState, Peer};
use crate::config::ServerConfig;
use crate::http::client::HttpClient;
use crate::metrics::{Metrics, PeerCounters};
use crate::shard_link::WriteOp;

/// How long a peer may take to accept a connection, and again to answer a request.
const PEER_TIMEOUT: Duration = Duration::from_secs(1);

/// One peer as this core replicates to it.
struct PeerLink {
    cluster: Arc<Cluster>,
    /// The peer's place in `cluster.peers`.
    index: usize,
    outbox: RefCell<Outbox>,
    doorbell: Doorbell,
    counters: Arc<PeerCounters>,
    /// Whether client writes went to the peer when last read, and its state then.
    takes: Cell<(NodeState, bool)>,
}

impl PeerLink {
    fn peer(&self) -> &Peer {
        &self.cluster.peers[self.index]
    }

    /// Whether client writes go to the peer now: it said it takes registry traffic, or it is
    /// `starting`. A starting peer may be copying the registry this very moment: a write that
    /// reaches it before its copy merges with it, while one it missed after the copy would stay
    /// missing until anti-entropy (replication endpoints take writes whatever the node's status,
    /// docs/cluster.md). The peer's status, behind its lock, is read again only when its
    /// state changed since the last read, so the client's path reads one atomic.
    fn replicates(&self) -> bool {
        let state = self.peer().state();
        let (seen, takes) = self.takes.get();
        if state == seen {
            return takes;
        }
        let takes = state == NodeState::Starting || self.peer().takes_registry();
        self.takes.set((state, takes));
        takes
    }
}

/// The instances of one client write, on their way to the peers (none by default).
#[derive(Default)]
pub(crate) struct Updates(Option<Vec<(u32, Update)>>);

/// This core's replication to every peer.
#[derive(Default)]
pub(crate) struct Replicator {
    links: Vec<Rc<PeerLink>>,
    /// `--replication-batch`.
    batch: usize,
    /// The largest reply a sender reads.
    max_reply: usize,
    /// Where updates are built, reused.
    scratch: RefCell<Vec<u8>>,
    /// Packs the senders' bodies, each batch once for every peer that takes it.
    packer: Rc<Packer>,
}

impl Replicator {
    /// Core `core`'s (of `cores`) replication to the peers of `cluster` that resolve.
    pub(crate) fn new(
        cluster: &Arc<Cluster>,
        config: &ServerConfig,
        cores: usize,
        core: usize,
        metrics: &Metrics,
    ) -> Replicator {
        let limits = Limits {
            batch: config.replication_batch as usize,
            delay: config.replication_delay,
            ttl: config.replication_task_ttl,
            max_bytes: (config.replication_queue / cores).max(1),
        };
        let counters = metrics.peer_counters(&cluster.peer_urls(), core);
        let links = cluster.peers.iter().map(|peer| {
            let counters = counters[peer.index].clone();
            Rc::new(PeerLink {
                cluster: cluster.clone(),
                index: peer.index,
                outbox: RefCell::new(Outbox::new(limits, counters.clone())),
                doorbell: Doorbell::default(),
                counters,
                takes: Cell::new((NodeState::Unknown, false)),
            })
        });
        Replicator {
            links: links.collect(),
            batch: limits.batch,
            max_reply: config.max_body,
            scratch: RefCell::default(),
            packer: Rc::default(),
        }
    }

    /// The sender of each peer, to run on this core for as long as it serves.
    pub(crate) fn senders(&self) -> impl Iterator<Item = impl Future<Output = ()> + 'static> + '_ {
        self.links.iter().map(|link| {
            let peer = link.peer();
            let client = HttpClient::new(
                peer.address.clone(),
                peer.authority.clone(),
                PEER_TIMEOUT,
                self.max_reply,
                link.cluster.token.clone(),
            );
            sender::run(link.clone(), client, self.packer.clone())
        })
    }

    /// A client write of up to `instances` instances, to be filled with [`Replicator::add`]: it
    /// holds (and allocates) nothing when no peer is replicated to now.
    pub(crate) fn updates(&self, instances: usize) -> Updates {
        let replicating = self.links.iter().any(|link| link.replicates());
        Updates(replicating.then(|| Vec::with_capacity(instances)))
    }

    /// Adds the client's `index`th instance to `updates`, if they are replicated.
    pub(crate) fn add(&self, updates: &mut Updates, index: usize, instance: &Instance) {
        if let Some(list) = &mut updates.0 {
            let update = Update::new(instance, &mut self.scratch.borrow_mut());
            list.push((index as u32, update));
        }
    }

    /// Hands the instances of a `kind` write that did not fail (`failed`, sorted by index) to
    /// the outbox of every peer replicated to now, and wakes the senders that have work.
    pub(crate) fn enqueue(&self, kind: WriteOp, updates: Updates, failed: &[FailedInstance]) {
        let Some(mut list) = updates.0 else {
            return;
        };
        let mut failed = failed.iter().map(|f| f.index).peekable();
        list.retain(|(index, _)| {
            while failed.next_if(|&f| f < *index).is_some() {}
            failed.peek() != Some(index)
        });
        if list.is_empty() {
            return;
        }
        let now = Instant::now();
        for link in self.links.iter().filter(|link| link.replicates()) {
            let mut outbox = link.outbox.borrow_mut();
            let was_empty = outbox.is_empty();
            for (_, update) in &list {
                outbox.push(kind, update.clone(), now);
            }
            if was_empty || outbox.queued(kind) >= self.batch {
                link.doorbell.ring();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use artemis_shards::{ErrorCode, Rejection};
    use clap::Parser;

    use super::*;
    use crate::cluster::{Flags, PeerStatus};
    use crate::config::{Cli, Command};

    /// Core 0 of a node (of 2 cores) in a cluster of itself and two peers, `peers[i]` in
    /// `states[i]` (`None`: it never answered).
    fn replicator(states: [Option<(NodeState, bool)>; 2]) -> Replicator {
        let me = "http://127.0.0.1:1/";
        let nodes = format!("{me},http://127.0.0.1:2/,http://127.0.0.1:3/");
        let args = ["artemis", "server", "--cluster-nodes", &nodes];
        let Command::Server(config) = Cli::parse_from(args).command;
        let cluster = Arc::new(Cluster::new(&config, me.into()));
        for (peer, state) in cluster.peers.iter().zip(states) {
            peer.set_status(state.map(|(state, can_serve_registry)| {
                let flags = Flags {
                    can_serve_registry,
                    ..Flags::default()
                };
                PeerStatus::new(state, flags, b"{}")
            }));
        }
        Replicator::new(&cluster, &config, 2, 0, &Metrics::new(2))
    }

    fn instance(id: &str) -> Instance {
        Instance {
            region_id: Some("SHA".into()),
            service_id: Some("svc".into()),
            instance_id: Some(id.into()),
            ..Instance::default()
        }
    }

    /// Replicates a client's `kind` write of `ids`, the `failed`th of them failing.
    fn write(replicator: &Replicator, kind: WriteOp, ids: &[&str], failed: &[u32]) {
        let mut updates = replicator.updates(ids.len());
        for (index, id) in ids.iter().enumerate() {
            replicator.add(&mut updates, index, &instance(id));
        }
        let failed: Vec<FailedInstance> = failed
            .iter()
            .map(|&index| {
                let rejection = Rejection {
                    code: ErrorCode::NoPermission,
                    reason: String::new(),
                };
                FailedInstance::new(index, rejection, instance(ids[index as usize]))
            })
            .collect();
        replicator.enqueue(kind, updates, &failed);
    }

    fn queued(replicator: &Replicator, peer: usize, kind: WriteOp) -> usize {
        replicator.links[peer].outbox.borrow().queued(kind)
    }

    #[test]
    fn what_did_not_fail_goes_to_every_peer_that_takes_it() {
        let r = replicator([Some((NodeState::Up, true)), None]);
        write(&r, WriteOp::Register, &["a", "b", "c", "d"], &[1, 3]);
        assert_eq!(queued(&r, 0, WriteOp::Register), 2);
        assert_eq!(queued(&r, 1, WriteOp::Register), 0);
        let tasks = r.links[0]
            .outbox
            .borrow_mut()
            .take(WriteOp::Register, usize::MAX);
        let mut key = Vec::new();
        update::write_key(&mut key, Some("sha"), Some("svc"), Some("c"));
        assert_eq!(tasks[1].update.key(), key);
    }

    #[test]
    fn a_starting_peer_is_replicated_to_and_one_that_refuses_the_registry_is_not() {
        let r = replicator([
            Some((NodeState::Starting, false)),
            Some((NodeState::Up, false)),
        ]);
        write(&r, WriteOp::Heartbeat, &["a"], &[]);
        assert_eq!(queued(&r, 0, WriteOp::Heartbeat), 1);
        assert_eq!(queued(&r, 1, WriteOp::Heartbeat), 0);

        // The peer's word is read again once its state changes.
        let peer = r.links[1].peer();
        let flags = Flags {
            can_serve_registry: true,
            ..Flags::default()
        };
        peer.set_status(Some(PeerStatus::new(NodeState::Down, flags, b"{}")));
        write(&r, WriteOp::Heartbeat, &["a"], &[]);
        assert_eq!(queued(&r, 1, WriteOp::Heartbeat), 0);
        peer.set_status(Some(PeerStatus::new(NodeState::Up, flags, b"{}")));
        write(&r, WriteOp::Heartbeat, &["a"], &[]);
        assert_eq!(queued(&r, 1, WriteOp::Heartbeat), 1);
    }

    #[test]
    fn with_no_peer_to_replicate_to_a_write_holds_nothing() {
        let r = replicator([None, Some((NodeState::Down, true))]);
        let mut updates = r.updates(1);
        r.add(&mut updates, 0, &instance("a"));
        assert!(updates.0.is_none());
        assert!(Replicator::default().updates(1).0.is_none());
    }
}
