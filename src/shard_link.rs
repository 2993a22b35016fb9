//! How a core reaches the shard that owns a service: typed calls, whichever core the shard is on.
//!
//! Every core owns one shard. A call names the shard and what to do there; the caller gets the
//! typed result. On this core's own shard that is a plain function call; on another's, the work
//! travels over the shard mesh as a boxed closure and its result comes back the same way, so the
//! messages never leave this module and a new kind of call needs no new message. Whatever a shard
//! changes is pushed from here to the cores with WebSocket subscribers (see `push`).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use artemis_shards::management::{ManagedService, ManagementView};
use artemis_shards::{
    shard_for, Change, ChangesGone, FailedInstance, Instance, InstancesJson, LeaseStatus, Merged,
    ServiceDigest, ServiceSnapshot, ServiceState, Shard, ShardStats,
};
use glommio::channels::channel_mesh::{Full, MeshBuilder, Senders};
use glommio::spawn_local;

use crate::clock::now_ms;
use crate::mesh;
use crate::push::{self, Fanout, PushBatch, Subscribers};

/// Work for another core's shard, given the owner's clock reading.
type Job = Box<dyn FnOnce(&mut Shard, u64) -> Reply + Send>;
/// A job's result on its way back.
type Reply = Box<dyn Any + Send>;

/// What travels between cores: a call for a shard, the answer to one, or changes to push.
enum Message {
    Call { id: u64, job: Job },
    Answer { id: u64, reply: Reply },
    Changes(PushBatch),
}

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

    fn apply(
        self,
        shard: &mut Shard,
        named: Named,
        batch: Vec<(u32, Instance)>,
        now: u64,
    ) -> Vec<FailedInstance> {
        match (self, named) {
            (WriteOp::Register, _) => shard.register(batch, now),
            (WriteOp::Heartbeat, Named::Instances) => shard.heartbeat(batch, now),
            (WriteOp::Heartbeat, Named::Keys) => shard.heartbeat_by_key(batch, now),
            (WriteOp::Unregister, Named::Instances) => shard.unregister(batch, now),
            (WriteOp::Unregister, Named::Keys) => shard.unregister_by_key(batch, now),
        }
    }

    /// The write as a peer replicates it: its region checked, not its zone, and a heartbeat
    /// without a live lease registers (Java's replication endpoints).
    fn apply_replicated(
        self,
        shard: &mut Shard,
        batch: Vec<(u32, Instance)>,
        now: u64,
    ) -> Vec<FailedInstance> {
        match self {
            WriteOp::Register => shard.register_replicated(batch, now),
            WriteOp::Heartbeat => shard.heartbeat_replicated(batch, now),
            WriteOp::Unregister => shard.unregister_replicated(batch, now),
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

enum Slot {
    Waiting(Option<Waker>),
    Answered(Reply),
}

/// This core's end of the mesh, the shard it owns, and its push subscribers.
pub(crate) struct ShardLink {
    me: usize,
    shards: usize,
    shard: RefCell<Shard>,
    subscribers: Subscribers,
    /// The other cores; `None` for a node of one shard built without a mesh.
    peers: Option<Rc<Senders<Message>>>,
    pending: RefCell<HashMap<u64, Slot>>,
    next_id: Cell<u64>,
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
            peers: Some(Rc::new(peers)),
            pending: RefCell::new(HashMap::new()),
            next_id: Cell::new(0),
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
            peers: None,
            pending: RefCell::new(HashMap::new()),
            next_id: Cell::new(0),
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
        let apply = move |shard: &mut Shard, batch, now| op.apply(shard, named, batch, now);
        self.write_with(batches, apply).await
    }

    /// [`ShardLink::write`] of a peer's replicated write (never replicated further).
    pub(crate) async fn write_replicated(
        &self,
        op: WriteOp,
        batches: Vec<Vec<(u32, Instance)>>,
    ) -> Vec<FailedInstance> {
        let apply = move |shard: &mut Shard, batch, now| op.apply_replicated(shard, batch, now);
        self.write_with(batches, apply).await
    }

    async fn write_with<F>(
        &self,
        batches: Vec<Vec<(u32, Instance)>>,
        apply: F,
    ) -> Vec<FailedInstance>
    where
        F: Fn(&mut Shard, Vec<(u32, Instance)>, u64) -> Vec<FailedInstance> + Copy + Send + 'static,
    {
        let failed = self.on_parts(batches, Vec::is_empty, apply).await;
        failed.into_iter().flatten().collect()
    }

    /// The service's current snapshot, from the shard that owns it.
    pub(crate) async fn service(&self, service_id: &str) -> Option<ServiceSnapshot> {
        let owner = artemis_shards::shard_for(service_id, self.shards);
        if self.is_local(owner) {
            // The most frequent read: no copy of the id when it need not travel.
            return self.with_local(|shard| shard.service(service_id));
        }
        let id = service_id.to_string();
        self.on(owner, move |shard: &mut Shard, _| shard.service(&id))
            .await
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
        match self.start(owner, job).await {
            Ok(local) => local,
            Err(answer) => answer.await,
        }
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
            .map(|(owner, part)| (owner, move |shard: &mut Shard, now| job(shard, part, now)))
            .collect();
        self.on_each(jobs).await
    }

    /// The job `make()` builds, on every shard; results in shard order.
    async fn on_all<T, F>(&self, make: impl Fn() -> F) -> Vec<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Shard, u64) -> T + Send + 'static,
    {
        self.on_each((0..self.shards).map(|shard| (shard, make())).collect())
            .await
    }

    /// Runs each job on its shard and returns the results in the same order. Remote jobs are all
    /// sent before any result is awaited, so the shards work in parallel.
    async fn on_each<T, F>(&self, jobs: Vec<(usize, F)>) -> Vec<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Shard, u64) -> T + Send + 'static,
    {
        let mut outcomes = Vec::with_capacity(jobs.len());
        for (owner, job) in jobs {
            outcomes.push(self.start(owner, job).await);
        }
        let mut results = Vec::with_capacity(outcomes.len());
        for outcome in outcomes {
            results.push(match outcome {
                Ok(local) => local,
                Err(answer) => answer.await,
            });
        }
        results
    }

    /// Runs `job` at once when `owner` is this core's shard; otherwise sends it, and its result
    /// is awaited from the answer returned.
    async fn start<T, F>(&self, owner: usize, job: F) -> Result<T, Answer<'_, T>>
    where
        T: Send + 'static,
        F: FnOnce(&mut Shard, u64) -> T + Send + 'static,
    {
        match &self.peers {
            Some(peers) if !self.is_local(owner) => Err(self.send(peers, owner, job).await),
            _ => Ok(self.with_local(|shard| job(shard, now_ms()))),
        }
    }

    /// Whether shard `owner` is this core's own (always, in a node of one shard without a mesh).
    fn is_local(&self, owner: usize) -> bool {
        self.peers.is_none() || owner == self.me
    }

    async fn send<T, F>(&self, peers: &Senders<Message>, owner: usize, job: F) -> Answer<'_, T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Shard, u64) -> T + Send + 'static,
    {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        self.pending.borrow_mut().insert(id, Slot::Waiting(None));
        let job: Job = Box::new(move |shard, now| Box::new(job(shard, now)));
        if peers
            .send_to(owner, Message::Call { id, job })
            .await
            .is_err()
        {
            panic!("shard {owner} stopped taking calls");
        }
        Answer {
            link: self,
            id,
            result: PhantomData,
        }
    }

    fn receive(&self, peer: usize, message: Message) {
        match message {
            Message::Call { id, job } => {
                let reply = self.with_local(|shard| job(shard, now_ms()));
                self.send_soon(peer, Message::Answer { id, reply });
            }
            Message::Answer { id, reply } => self.complete(id, reply),
            Message::Changes(batch) => self.subscribers.deliver(&batch),
        }
    }

    fn complete(&self, id: u64, reply: Reply) {
        let mut pending = self.pending.borrow_mut();
        if let Some(slot) = pending.get_mut(&id) {
            if let Slot::Waiting(Some(waker)) = std::mem::replace(slot, Slot::Answered(reply)) {
                waker.wake();
            }
        }
    }

    /// Hands the shard's new changes to this core's subscribers and to every core with push
    /// sessions.
    fn push(&self, shard: &mut Shard) {
        let changes = shard.take_unpushed();
        if changes.is_empty() {
            return;
        }
        let batch = push::serialize(changes);
        self.subscribers.deliver(&batch);
        for peer in (0..self.shards).filter(|&p| p != self.me && self.subscribers.wanted_by(p)) {
            self.send_soon(peer, Message::Changes(batch.clone()));
        }
    }

    fn send_soon(&self, peer: usize, message: Message) {
        if let Some(peers) = &self.peers {
            mesh::send_soon(peers, peer, message);
        }
    }
}

/// Resolves when the owner's result of call `id` arrives.
struct Answer<'a, T> {
    link: &'a ShardLink,
    id: u64,
    result: PhantomData<T>,
}

impl<T: 'static> Future for Answer<'_, T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut pending = self.link.pending.borrow_mut();
        match pending.remove(&self.id) {
            Some(Slot::Answered(reply)) => Poll::Ready(
                *reply
                    .downcast::<T>()
                    .expect("a call's reply has the type of its job's result"),
            ),
            _ => {
                pending.insert(self.id, Slot::Waiting(Some(cx.waker().clone())));
                Poll::Pending
            }
        }
    }
}

impl<T> Drop for Answer<'_, T> {
    fn drop(&mut self) {
        self.link.pending.borrow_mut().remove(&self.id);
    }
}
