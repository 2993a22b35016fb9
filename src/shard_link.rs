//! How a core reaches the shard that owns a service: typed calls, whichever core the shard is on.
//!
//! Every core owns one shard. A call names the shard and what to do there; the caller gets the
//! typed result. On this core's own shard that is a plain function call; on another's, the work
//! travels over the shard mesh in a batch with the turn's other calls for that core (`hop`), so
//! the messages never leave this module. Writes and a service's snapshot travel as plain values;
//! a rarer call travels as a boxed closure, so a new kind of call needs no new message. Whatever a
//! shard changes is pushed from here to the cores with WebSocket subscribers (see `push`).

mod hop;

use std::cell::RefCell;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

use artemis_shards::management::{ManagedService, ManagementView};
use artemis_shards::{
    shard_for, Change, ChangesGone, FailedInstance, Instance, InstancesJson, LeaseStatus, Merged,
    ServiceDigest, ServiceSnapshot, ServiceState, Shard, ShardStats,
};
use glommio::channels::channel_mesh::{Full, MeshBuilder};
use glommio::spawn_local;

use crate::clock::now_ms;
use crate::mesh;
use crate::push::{self, Fanout, Subscribers};

use hop::{Answer, Closure, Hop, Message, ServiceOf, ShardWork, Write};

/// The shard mesh every core joins at start; a core's peer id in it is the shard it owns.
#[derive(Clone)]
pub(crate) struct ShardMesh(MeshBuilder<Message, Full>);

impl ShardMesh {
    pub(crate) fn new(cores: usize) -> ShardMesh {
        ShardMesh(mesh::full(cores))
    }
}

/// A registry write, applied by the shard that owns the instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriteOp {
    Register,
    Heartbeat,
    Unregister,
}

/// How a write names its instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Named {
    /// Whole instances, as Java's clients send them: checked as Java's executor checks them.
    Instances,
    /// Their keys alone (the older Rust API's `instance_keys`): only ids to check.
    Keys,
}

impl WriteOp {
    /// Every write, in the order per-kind arrays keep them.
    pub(crate) const ALL: [WriteOp; 3] =
        [WriteOp::Register, WriteOp::Heartbeat, WriteOp::Unregister];

    /// The write's place in per-kind arrays.
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The write's name: its path under `/api/registry/` and `/api/replication/registry/`, and
    /// its metric label.
    pub(crate) fn name(self) -> &'static str {
        match self {
            WriteOp::Register => "register",
            WriteOp::Heartbeat => "heartbeat",
            WriteOp::Unregister => "unregister",
        }
    }
}

/// Who a write comes from, which decides the rules it is checked by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// A client, naming its instances as `Named` says.
    Client(Named),
    /// A peer replicating a write: its region checked, not its zone, and a heartbeat without a
    /// live lease registers (Java's replication endpoints).
    Peer,
}

impl Source {
    fn apply(
        self,
        op: WriteOp,
        shard: &mut Shard,
        batch: &[(u32, Instance)],
        now: u64,
    ) -> Vec<FailedInstance> {
        match (self, op) {
            (Source::Client(_), WriteOp::Register) => shard.register(batch, now),
            (Source::Client(Named::Instances), WriteOp::Heartbeat) => shard.heartbeat(batch, now),
            (Source::Client(Named::Keys), WriteOp::Heartbeat) => shard.heartbeat_by_key(batch, now),
            (Source::Client(Named::Instances), WriteOp::Unregister) => shard.unregister(batch, now),
            (Source::Client(Named::Keys), WriteOp::Unregister) => {
                shard.unregister_by_key(batch, now)
            }
            (Source::Peer, WriteOp::Register) => shard.register_replicated(batch, now),
            (Source::Peer, WriteOp::Heartbeat) => shard.heartbeat_replicated(batch, now),
            (Source::Peer, WriteOp::Unregister) => shard.unregister_replicated(batch, now),
        }
    }
}

/// Every service of the node.
pub(crate) struct AllServices {
    /// The smallest of the shards' versions: the list holds every change up to it.
    pub version: u64,
    pub services: Vec<ServiceSnapshot>,
}

/// The latest change of each instance changed after a version, over all shards.
pub(crate) struct Delta {
    /// The smallest of the shards' versions: the changes are complete up to it.
    pub version: u64,
    pub changes: Vec<Change>,
}

/// What a peer told of the services one shard owns, for anti-entropy to merge.
pub(crate) enum PeerView {
    /// A node of ours: each instance with its lease's times, and the removals it remembers.
    State(ServiceState<Instance>),
    /// A Java node: its instances alone, which are only added where missing.
    Instances(Vec<Instance>),
}

impl PeerView {
    fn is_empty(&self) -> bool {
        match self {
            PeerView::State(state) => state.instances.is_empty() && state.removals.is_empty(),
            PeerView::Instances(instances) => instances.is_empty(),
        }
    }

    fn merge_into(self, shard: &mut Shard, now: u64) -> Merged {
        match self {
            PeerView::State(state) => shard.merge(state, now),
            PeerView::Instances(instances) => shard.add_missing(instances, now),
        }
    }
}

/// Leases of some services, with every shard's self-preservation figures.
pub(crate) struct Leases {
    pub leases: Vec<LeaseStatus>,
    pub stats: Vec<ShardStats>,
}

/// This core's end of the mesh, the shard it owns, and its push subscribers.
pub(crate) struct ShardLink {
    me: usize,
    shards: usize,
    shard: RefCell<Shard>,
    subscribers: Subscribers,
    /// The way to the other cores; `None` for a node of one shard built without a mesh.
    hop: Option<Hop>,
}

impl ShardLink {
    /// Joins the mesh (every core must) and starts serving other cores' calls.
    /// `make_shard` gets this core's shard index.
    pub(crate) async fn join(
        mesh: ShardMesh,
        fanout: Arc<Fanout>,
        make_shard: impl FnOnce(usize) -> Shard,
    ) -> Rc<ShardLink> {
        let (peers, mut inbox) = mesh::join(mesh.0).await;
        let me = peers.peer_id();
        let link = Rc::new(ShardLink {
            me,
            shards: peers.nr_consumers(),
            shard: RefCell::new(make_shard(me)),
            subscribers: Subscribers::new(fanout, me),
            hop: Some(Hop::new(peers)),
        });
        for (peer, receiver) in inbox.streams() {
            let link = link.clone();
            spawn_local(async move {
                while let Some(message) = receiver.recv().await {
                    link.receive(peer, message);
                }
            })
            .detach();
        }
        let flusher = link.clone();
        spawn_local(async move {
            if let Some(hop) = &flusher.hop {
                hop.flush_forever().await;
            }
        })
        .detach();
        link
    }

    /// A node of one shard and no mesh: every call is local. For tests of what sits above.
    #[cfg(test)]
    pub(crate) fn alone(shard: Shard) -> Rc<ShardLink> {
        Rc::new(ShardLink {
            me: 0,
            shards: 1,
            shard: RefCell::new(shard),
            subscribers: Subscribers::new(Fanout::new(1, usize::MAX), 0),
            hop: None,
        })
    }

    /// This core's shard index.
    pub(crate) fn me(&self) -> usize {
        self.me
    }

    /// The number of shards (cores) in the node.
    pub(crate) fn shards(&self) -> usize {
        self.shards
    }

    /// This core's push sessions.
    pub(crate) fn subscribers(&self) -> &Subscribers {
        &self.subscribers
    }

    /// Runs `f` on this core's own shard, then pushes the changes it made.
    pub(crate) fn with_local<R>(&self, f: impl FnOnce(&mut Shard) -> R) -> R {
        let mut shard = self.shard.borrow_mut();
        let result = f(&mut shard);
        self.push(&mut shard);
        result
    }

    /// The node's version clock now: every change up to it is in what any shard answers next.
    pub(crate) fn version(&self) -> u64 {
        self.shard.borrow().version()
    }

    // --- the typed calls ---

    /// Applies `op` to each shard's batch (`batches[shard]`, empty ones skipped), all shards at
    /// once; the failed entries of every shard, in shard order.
    pub(crate) async fn write(
        &self,
        op: WriteOp,
        named: Named,
        batches: Vec<Vec<(u32, Instance)>>,
    ) -> Vec<FailedInstance> {
        self.write_from(Source::Client(named), op, batches).await
    }

    /// [`ShardLink::write`] of a peer's replicated write (never replicated further).
    pub(crate) async fn write_replicated(
        &self,
        op: WriteOp,
        batches: Vec<Vec<(u32, Instance)>>,
    ) -> Vec<FailedInstance> {
        self.write_from(Source::Peer, op, batches).await
    }

    async fn write_from(
        &self,
        source: Source,
        op: WriteOp,
        batches: Vec<Vec<(u32, Instance)>>,
    ) -> Vec<FailedInstance> {
        let mut parts = batches
            .into_iter()
            .enumerate()
            .filter(|(_, batch)| !batch.is_empty())
            .map(|(owner, batch)| (owner, Write { op, source, batch }));
        match (parts.next(), parts.next()) {
            (None, _) => Vec::new(),
            // The usual write names one service's instances: one shard, no list of calls.
            (Some((owner, write)), None) => self.on_shard(owner, write).await,
            (Some(first), Some(second)) => {
                let writes = [first, second].into_iter().chain(parts).collect();
                let failed = self.on_each(writes).await;
                failed.into_iter().flatten().collect()
            }
        }
    }

    /// The service's current snapshot, from the shard that owns it.
    pub(crate) async fn service(&self, service_id: &str) -> Option<ServiceSnapshot> {
        let owner = artemis_shards::shard_for(service_id, self.shards);
        self.on_shard(owner, ServiceOf(service_id)).await
    }

    /// Every service with instances, from every shard.
    pub(crate) async fn services(&self) -> AllServices {
        let replies = self
            .on_all(|| |shard: &mut Shard, _| (shard.version(), shard.services()))
            .await;
        let mut all = AllServices {
            version: u64::MAX,
            services: Vec::new(),
        };
        for (version, services) in replies {
            all.version = all.version.min(version);
            all.services.extend(services);
        }
        all
    }

    /// The Prometheus `http_sd` target groups of the services named by `keys` (lowercased ids),
    /// each asked of its owner, or of every service when `keys` is empty: one part per service
    /// with targets, in no particular order.
    pub(crate) async fn targets(&self, keys: Vec<String>) -> Vec<Arc<InstancesJson>> {
        let parts = if keys.is_empty() {
            self.on_all(|| |shard: &mut Shard, _| shard.targets(&[]))
                .await
        } else {
            let mut by_owner = vec![Vec::new(); self.shards];
            for key in keys {
                by_owner[shard_for(&key, self.shards)].push(key);
            }
            let job = |shard: &mut Shard, keys: Vec<String>, _| shard.targets(&keys);
            self.on_parts(by_owner, Vec::is_empty, job).await
        };
        parts.into_iter().flatten().collect()
    }

    /// The latest change of each instance changed after version `since`, from every shard;
    /// `ChangesGone` when a shard no longer holds all of them.
    pub(crate) async fn delta(&self, since: u64) -> Result<Delta, ChangesGone> {
        let replies = self
            .on_all(|| move |shard: &mut Shard, _| (shard.version(), shard.changes_since(since)))
            .await;
        let mut delta = Delta {
            version: u64::MAX,
            changes: Vec::new(),
        };
        for (version, changes) in replies {
            delta.version = delta.version.min(version);
            delta.changes.extend(changes?);
        }
        Ok(delta)
    }

    /// The leases of `service_ids` (all services when empty), and every shard's figures.
    pub(crate) async fn leases(&self, service_ids: Vec<String>, legacy: bool) -> Leases {
        let replies = self
            .on_all(|| {
                let ids = service_ids.clone();
                move |shard: &mut Shard, _| (shard.leases(&ids, legacy), shard.stats())
            })
            .await;
        let mut all = Leases {
            leases: Vec::new(),
            stats: Vec::with_capacity(replies.len()),
        };
        for (leases, stats) in replies {
            all.leases.extend(leases);
            all.stats.push(stats);
        }
        all
    }

    /// The management state this core's shard applied last; every shard applies each state
    /// before a management write is answered, so all of them hold the same one.
    pub(crate) fn management_view(&self) -> Arc<ManagementView> {
        self.shard.borrow().management_view().clone()
    }

    /// Every leased instance of one service (or of all, from every shard), pulled out or not.
    pub(crate) async fn managed_services(&self, service_id: Option<String>) -> Vec<ManagedService> {
        match service_id {
            Some(id) => {
                let owner = artemis_shards::shard_for(&id, self.shards);
                self.on(owner, move |shard: &mut Shard, _| shard.managed(Some(&id)))
                    .await
            }
            None => {
                let all = self.on_all(|| |shard: &mut Shard, _| shard.managed(None));
                all.await.into_iter().flatten().collect()
            }
        }
    }

    /// Every service's digest, from every shard, by lowercased service id.
    pub(crate) async fn digest(&self) -> Vec<(Box<str>, ServiceDigest)> {
        let all = self.on_all(|| |shard: &mut Shard, _| shard.digest());
        all.await.into_iter().flatten().collect()
    }

    /// The state of each service named (by lowercased id), each from the shard that owns it.
    pub(crate) async fn service_states(
        &self,
        service_ids: Vec<String>,
    ) -> Vec<(String, ServiceState<Arc<[u8]>>)> {
        let mut owned = vec![Vec::new(); self.shards];
        for id in service_ids {
            owned[shard_for(&id, self.shards)].push(id);
        }
        let states = |shard: &mut Shard, ids: Vec<String>, _| shard.service_states(&ids);
        let states = self.on_parts(owned, Vec::is_empty, states).await;
        states.into_iter().flatten().collect()
    }

    /// Merges each shard's part of what a peer told (`views[shard]`), all shards at once.
    pub(crate) async fn merge(&self, views: Vec<PeerView>) -> Merged {
        let merge = |shard: &mut Shard, view: PeerView, now| view.merge_into(shard, now);
        let merged = self.on_parts(views, PeerView::is_empty, merge).await;
        merged
            .into_iter()
            .fold(Merged::default(), |all, one| all + one)
    }

    /// Every shard's figures, in shard order.
    pub(crate) async fn stats(&self) -> Vec<ShardStats> {
        self.on_all(|| |shard: &mut Shard, _| shard.stats()).await
    }

    // --- how a call reaches its shard ---

    /// Runs `job` on shard `owner`.
    async fn on<T, F>(&self, owner: usize, job: F) -> T
    where
        T: Send + 'static,
        F: FnOnce(&mut Shard, u64) -> T + Send + 'static,
    {
        self.on_shard(owner, Closure(job, PhantomData)).await
    }

    /// `job` on each shard with its part (`parts[shard]`), all shards at once, those whose part
    /// is `empty` skipped; results in shard order.
    async fn on_parts<P, T, F>(&self, parts: Vec<P>, empty: fn(&P) -> bool, job: F) -> Vec<T>
    where
        P: Send + 'static,
        T: Send + 'static,
        F: Fn(&mut Shard, P, u64) -> T + Copy + Send + 'static,
    {
        let jobs = parts
            .into_iter()
            .enumerate()
            .filter(|(_, part)| !empty(part))
            .map(|(owner, part)| {
                let job = move |shard: &mut Shard, now| job(shard, part, now);
                (owner, Closure(job, PhantomData))
            })
            .collect();
        self.on_each(jobs).await
    }

    /// The job `make()` builds, on every shard; results in shard order.
    async fn on_all<T, F>(&self, make: impl Fn() -> F) -> Vec<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Shard, u64) -> T + Send + 'static,
    {
        let jobs = (0..self.shards)
            .map(|shard| (shard, Closure(make(), PhantomData)))
            .collect();
        self.on_each(jobs).await
    }

    /// Runs `work` on shard `owner`.
    async fn on_shard<W: ShardWork>(&self, owner: usize, work: W) -> W::Output {
        match self.start(owner, work) {
            Ok(local) => local,
            Err(answer) => answer.await,
        }
    }

    /// Runs each work on its shard and returns the results in the same order. Remote work is all
    /// queued before any result is awaited, so the shards work in parallel.
    async fn on_each<W: ShardWork>(&self, works: Vec<(usize, W)>) -> Vec<W::Output> {
        let started: Vec<_> = works
            .into_iter()
            .map(|(owner, work)| self.start(owner, work))
            .collect();
        let mut results = Vec::with_capacity(started.len());
        for outcome in started {
            results.push(match outcome {
                Ok(local) => local,
                Err(answer) => answer.await,
            });
        }
        results
    }

    /// Runs `work` at once when `owner` is this core's shard; otherwise queues it for the owner,
    /// and its result is awaited from the answer returned.
    fn start<W: ShardWork>(&self, owner: usize, work: W) -> Result<W::Output, Answer<'_, W>> {
        match &self.hop {
            Some(hop) if owner != self.me => Err(hop.call(owner, work)),
            _ => Ok(self.with_local(|shard| work.run(shard, now_ms()))),
        }
    }

    fn receive(&self, peer: usize, message: Message) {
        let Some(hop) = &self.hop else {
            return;
        };
        match message {
            Message::Calls(mut batch) => {
                let mut shard = self.shard.borrow_mut();
                batch.run(&mut shard, now_ms());
                // The changes leave before the answers, as they do for a call on this core.
                self.push(&mut shard);
                drop(shard);
                hop.send_soon(peer, Message::Answers(batch));
            }
            Message::Answers(batch) => hop.complete(peer, batch),
            Message::Changes(batch) => self.subscribers.deliver(&batch),
        }
    }

    /// Hands the shard's new changes to this core's subscribers and to every core with push
    /// sessions.
    fn push(&self, shard: &mut Shard) {
        // Serialized only while some core has sessions to take them.
        let batch = self
            .subscribers
            .wanted()
            .then(|| push::serialize(shard.unpushed()));
        shard.mark_pushed();
        let Some(batch) = batch.filter(|batch| !batch.is_empty()) else {
            return;
        };
        self.subscribers.deliver(&batch);
        let Some(hop) = &self.hop else {
            return;
        };
        for peer in (0..self.shards).filter(|&p| p != self.me && self.subscribers.wanted_by(p)) {
            hop.send_soon(peer, Message::Changes(batch.clone()));
        }
    }
}
