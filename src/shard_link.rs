//! How a core reaches the shard that owns a service.
//!
//! Every core owns one shard. A request for a service goes to `shard_for(serviceId)`: a plain call
//! when that is this core's shard, otherwise a message over glommio's channel mesh. A core never
//! stops draining its inbox to wait for room in a peer's: an answer that does not fit at once is
//! handed to a task of its own, so two cores can never wait on each other. Whatever a shard
//! changes is pushed from here to the cores with WebSocket subscribers (see `push`). A WebSocket
//! heartbeat session travels the same way to the core that owns its instances.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::{poll_fn, Future};
use std::os::fd::OwnedFd;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use artemis_shards::{
    Change, ChangesGone, FailedInstance, Instance, LeaseStatus, ServiceSnapshot, Shard, ShardStats,
};
use futures_lite::future::or;
use glommio::channels::channel_mesh::{Full, MeshBuilder, Senders};
use glommio::timer::sleep;
use glommio::{spawn_local, GlommioError, ResourceType};

use crate::clock::now_ms;
use crate::push::{self, Presence, PushBatch, Subscribers};
use crate::transport::ReadBuffer;
use crate::websocket::Session;

/// Work for a shard. Instances carry their position in the client's request.
pub enum ShardRequest {
    Register(Vec<(u32, Instance)>),
    Heartbeat(Vec<(u32, Instance)>),
    Unregister(Vec<(u32, Instance)>),
    Service(String),
    Services,
    /// The latest change of each instance changed after a version.
    Delta(u64),
    Leases {
        service_ids: Vec<String>,
        legacy: bool,
    },
    Stats,
}

/// A shard's answer to one `ShardRequest`, variant for variant.
pub enum ShardReply {
    Failed(Vec<FailedInstance>),
    Service(Option<ServiceSnapshot>),
    /// Every service with instances, and the shard's version: the reply holds every change of
    /// this shard up to it.
    Services {
        version: u64,
        services: Vec<ServiceSnapshot>,
    },
    /// Changes after the asked version (or `ChangesGone`), and the shard's version.
    Delta {
        version: u64,
        changes: Result<Vec<Change>, ChangesGone>,
    },
    Leases(Vec<LeaseStatus>),
    Stats(ShardStats),
}

/// A WebSocket session on its way to the core that serves it from now on.
pub struct MovedSession {
    pub socket: OwnedFd,
    pub session: Session,
    /// Bytes received and not yet read.
    pub input: ReadBuffer,
}

/// What travels between cores: a call for a shard, the answer to one, changes to push, or a
/// session that moves.
pub enum Message {
    Call { id: u64, request: ShardRequest },
    Answer { id: u64, reply: ShardReply },
    Changes(PushBatch),
    Session(Box<MovedSession>),
}

/// The mesh every core joins at start; a core's peer id in it is the shard it owns.
pub type Mesh = MeshBuilder<Message, Full>;

impl ShardReply {
    /// The failed entries of a Register, Heartbeat or Unregister reply.
    pub fn into_failed(self) -> Vec<FailedInstance> {
        match self {
            ShardReply::Failed(failed) => failed,
            _ => unreachable!("registry requests get Failed replies"),
        }
    }
}

enum Slot {
    Waiting(Option<Waker>),
    Answered(ShardReply),
}

/// This core's end of the mesh, the shard it owns, and its push subscribers.
pub struct ShardLink {
    me: usize,
    shards: usize,
    shard: RefCell<Shard>,
    subscribers: Subscribers,
    peers: Rc<Senders<Message>>,
    pending: RefCell<HashMap<u64, Slot>>,
    next_id: Cell<u64>,
    /// Sessions other cores moved here, not yet taken, and who waits for them.
    moved_in: RefCell<VecDeque<MovedSession>>,
    moved_in_waiter: RefCell<Option<Waker>>,
}

impl ShardLink {
    /// Joins the mesh (every core must) and starts serving other cores' calls.
    /// `make_shard` gets this core's shard index.
    pub async fn join(
        mesh: Mesh,
        presence: Presence,
        make_shard: impl FnOnce(usize) -> Shard,
    ) -> Rc<ShardLink> {
        let (peers, mut inbox) = repolled(mesh.join()).await.expect("joining the shard mesh");
        let me = peers.peer_id();
        let link = Rc::new(ShardLink {
            me,
            shards: peers.nr_consumers(),
            shard: RefCell::new(make_shard(me)),
            subscribers: Subscribers::new(presence, me),
            peers: Rc::new(peers),
            pending: RefCell::new(HashMap::new()),
            next_id: Cell::new(0),
            moved_in: RefCell::new(VecDeque::new()),
            moved_in_waiter: RefCell::new(None),
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

    /// This core's shard index.
    pub fn me(&self) -> usize {
        self.me
    }

    /// The number of shards (cores) in the node.
    pub fn shards(&self) -> usize {
        self.shards
    }

    /// Runs `f` on this core's own shard, then pushes the changes it made.
    pub fn with_local<R>(&self, f: impl FnOnce(&mut Shard) -> R) -> R {
        let mut shard = self.shard.borrow_mut();
        let result = f(&mut shard);
        self.push(&mut shard);
        result
    }

    /// This core's push sessions.
    pub fn subscribers(&self) -> &Subscribers {
        &self.subscribers
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

    /// Sends `message` to `peer` now, or from a task of its own when the peer's inbox is full.
    fn send_soon(&self, peer: usize, message: Message) {
        if let Err(GlommioError::WouldBlock(ResourceType::Channel(message))) =
            self.peers.try_send_to(peer, message)
        {
            let peers = self.peers.clone();
            spawn_local(async move {
                // Fails only when the peer has stopped.
                let _ = peers.send_to(peer, message).await;
            })
            .detach();
        }
    }

    /// Hands `session` to core `to`. Its socket closes if that core has stopped.
    pub fn move_session(&self, to: usize, session: MovedSession) {
        self.send_soon(to, Message::Session(Box::new(session)));
    }

    /// The next session another core moved here.
    pub async fn moved_in(&self) -> MovedSession {
        poll_fn(|cx| match self.moved_in.borrow_mut().pop_front() {
            Some(session) => Poll::Ready(session),
            None => {
                *self.moved_in_waiter.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    /// Sends each request to its shard and returns the replies in the same order.
    /// Remote requests are all sent before any answer is awaited, so shards work in parallel.
    pub async fn call_many(&self, requests: Vec<(usize, ShardRequest)>) -> Vec<ShardReply> {
        let mut outcomes = Vec::with_capacity(requests.len());
        for (owner, request) in requests {
            if owner == self.me {
                outcomes.push(Err(self.apply(request)));
            } else {
                outcomes.push(Ok(self.send(owner, request).await));
            }
        }
        let mut replies = Vec::with_capacity(outcomes.len());
        for outcome in outcomes {
            replies.push(match outcome {
                Ok(waiting) => waiting.await,
                Err(local) => local,
            });
        }
        replies
    }

    /// One request to one shard.
    pub async fn call(&self, owner: usize, request: ShardRequest) -> ShardReply {
        if owner == self.me {
            self.apply(request)
        } else {
            self.send(owner, request).await.await
        }
    }

    /// The same request to every shard; replies in shard order.
    pub async fn call_all(&self, request: impl Fn() -> ShardRequest) -> Vec<ShardReply> {
        self.call_many((0..self.shards).map(|s| (s, request())).collect())
            .await
    }

    fn apply(&self, request: ShardRequest) -> ShardReply {
        self.with_local(|shard| Self::run(shard, request))
    }

    fn run(shard: &mut Shard, request: ShardRequest) -> ShardReply {
        let now = now_ms();
        match request {
            ShardRequest::Register(batch) => ShardReply::Failed(shard.register(batch, now)),
            ShardRequest::Heartbeat(batch) => ShardReply::Failed(shard.heartbeat(batch, now)),
            ShardRequest::Unregister(batch) => ShardReply::Failed(shard.unregister(batch, now)),
            ShardRequest::Service(id) => ShardReply::Service(shard.service(&id)),
            ShardRequest::Services => ShardReply::Services {
                version: shard.version(),
                services: shard.services(),
            },
            ShardRequest::Delta(since) => ShardReply::Delta {
                version: shard.version(),
                changes: shard.changes_since(since),
            },
            ShardRequest::Leases {
                service_ids,
                legacy,
            } => ShardReply::Leases(shard.leases(&service_ids, legacy)),
            ShardRequest::Stats => ShardReply::Stats(shard.stats()),
        }
    }

    async fn send(&self, owner: usize, request: ShardRequest) -> AnswerFuture<'_> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        self.pending.borrow_mut().insert(id, Slot::Waiting(None));
        if self
            .peers
            .send_to(owner, Message::Call { id, request })
            .await
            .is_err()
        {
            panic!("shard {owner} stopped taking calls");
        }
        AnswerFuture { link: self, id }
    }

    fn receive(&self, peer: usize, message: Message) {
        match message {
            Message::Call { id, request } => {
                let reply = self.apply(request);
                self.send_soon(peer, Message::Answer { id, reply });
            }
            Message::Answer { id, reply } => self.complete(id, reply),
            Message::Changes(batch) => self.subscribers.deliver(&batch),
            Message::Session(session) => {
                self.moved_in.borrow_mut().push_back(*session);
                if let Some(waiter) = self.moved_in_waiter.borrow_mut().take() {
                    waiter.wake();
                }
            }
        }
    }

    fn complete(&self, id: u64, reply: ShardReply) {
        let mut pending = self.pending.borrow_mut();
        if let Some(slot) = pending.get_mut(&id) {
            if let Slot::Waiting(Some(waker)) = std::mem::replace(slot, Slot::Answered(reply)) {
                waker.wake();
            }
        }
    }
}

/// How often a mesh join is polled again whether or not it was woken.
const JOIN_REPOLL: Duration = Duration::from_millis(10);

/// Runs `future`, polling it again every `JOIN_REPOLL` even when nothing woke it. On a loaded
/// machine a glommio 0.9 mesh join has been seen to sleep through the cross-core wake-up it waited
/// for (start-ups stalled for tens of seconds); polling again finds the message that arrived.
async fn repolled<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    loop {
        let ready = async { Some(future.as_mut().await) };
        let tick = async {
            sleep(JOIN_REPOLL).await;
            None
        };
        if let Some(output) = or(ready, tick).await {
            return output;
        }
    }
}

/// Resolves when the owner's answer to call `id` arrives.
struct AnswerFuture<'a> {
    link: &'a ShardLink,
    id: u64,
}

impl Future for AnswerFuture<'_> {
    type Output = ShardReply;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<ShardReply> {
        let mut pending = self.link.pending.borrow_mut();
        match pending.remove(&self.id) {
            Some(Slot::Answered(reply)) => Poll::Ready(reply),
            _ => {
                pending.insert(self.id, Slot::Waiting(Some(cx.waker().clone())));
                Poll::Pending
            }
        }
    }
}

impl Drop for AnswerFuture<'_> {
    fn drop(&mut self) {
        self.link.pending.borrow_mut().remove(&self.id);
    }
}
