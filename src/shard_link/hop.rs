//! The hop to another core's shard: calls leave in batches, one message per peer per executor
//! turn, and come back in the same batch.
//!
//! A call for another core is queued in that peer's outbox; the first call of a turn wakes this
//! core's flusher task, which glommio runs after every task already woken in that turn, so all
//! the turn's calls for a peer leave together in one message. The owner runs the batch under one
//! borrow of its shard and one clock reading, writes each result over its call in place and sends
//! the very same batch back: the batch's memory returns to the core that allocated it, which
//! reuses it, a write's decoded instances ride back in it to be freed where they were allocated
//! (the shard only borrows them, copying what it keeps), and a call costs no allocation of its
//! own on the way (the frequent ones, writes and a service's snapshot, travel as enum variants, a
//! service id in the batch's shared text; only the rare calls box a closure). A call's answer
//! lands in its slot of this core's slab of pending calls, which wakes the task awaiting it.
//!
//! Profiled before this existed (docs/benchmarks.md, "Where a cross-core write's time goes"):
//! each cross-core request boxed a job and its reply and sent a message each way, so a turn of
//! 16 requests paid 32 channel pushes and as many wake-ups of the peer's receiving task.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::marker::PhantomData;
use std::ops::Range;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use artemis_shards::{FailedInstance, Instance, ServiceSnapshot, Shard};
use glommio::channels::channel_mesh::Senders;
use slab::Slab;

use super::{Source, WriteOp};
use crate::mesh;
use crate::push::PushBatch;

/// A rare call's work for another core's shard, given the owner's clock reading.
type Job = Box<dyn FnOnce(&mut Shard, u64) -> Reply + Send>;
/// A rare call's result on its way back.
type Reply = Box<dyn Any + Send>;

/// Emptied batches kept for reuse, per peer.
const SPARE_BATCHES: usize = 4;

/// What travels between cores.
pub(super) enum Message {
    /// Calls for the receiver's shard.
    Calls(Batch),
    /// The same batch back, each call's result in its place.
    Answers(Batch),
    /// Changes for the receiver's push subscribers.
    Changes(PushBatch),
}

/// Calls for one peer, or their results.
#[derive(Default)]
pub(super) struct Batch {
    entries: Vec<Entry>,
    /// The service ids of the batch's `Call::Service` entries, one after another.
    text: String,
}

struct Entry {
    key: Key,
    work: Work,
}

enum Work {
    Call(Call),
    Done(Done),
}

/// A call as it travels.
pub(super) enum Call {
    Write {
        op: WriteOp,
        source: Source,
        batch: Vec<(u32, Instance)>,
    },
    /// The snapshot of the service whose id is `text[id]` in the batch.
    Service {
        id: Range<usize>,
    },
    Job(Job),
}

/// A call's result as it travels.
pub(super) enum Done {
    /// A write's failed entries, and its batch: the instances go back to be freed by the core
    /// that decoded them (the shard copies what it keeps).
    Written {
        failed: Vec<FailedInstance>,
        batch: Vec<(u32, Instance)>,
    },
    Service(Option<ServiceSnapshot>),
    Reply(Reply),
}

impl Batch {
    /// Runs a peer's calls on `shard` (at `now`), each result written over its call.
    pub(super) fn run(&mut self, shard: &mut Shard, now: u64) {
        for entry in self.entries.iter_mut() {
            let placeholder = Work::Done(Done::Service(None));
            if let Work::Call(call) = std::mem::replace(&mut entry.work, placeholder) {
                entry.work = Work::Done(call.run(shard, now, &self.text));
            }
        }
    }
}

impl Call {
    fn run(self, shard: &mut Shard, now: u64, text: &str) -> Done {
        match self {
            Call::Write { op, source, batch } => {
                let failed = source.apply(op, shard, &batch, now);
                Done::Written { failed, batch }
            }
            Call::Service { id } => Done::Service(shard.service(&text[id])),
            Call::Job(job) => Done::Reply(job(shard, now)),
        }
    }
}

/// Work for a shard: run at once on this core's own, or carried to its owner as a [`Call`].
pub(super) trait ShardWork {
    type Output;
    fn run(self, shard: &mut Shard, now: u64) -> Self::Output;
    /// The work as a call; a service id goes into `text`, the batch's shared text.
    fn pack(self, text: &mut String) -> Call;
    fn unpack(done: Done) -> Self::Output;
}

/// A registry write.
pub(super) struct Write {
    pub op: WriteOp,
    pub source: Source,
    pub batch: Vec<(u32, Instance)>,
}

impl ShardWork for Write {
    type Output = Vec<FailedInstance>;

    fn run(self, shard: &mut Shard, now: u64) -> Vec<FailedInstance> {
        self.source.apply(self.op, shard, &self.batch, now)
    }

    fn pack(self, _: &mut String) -> Call {
        let Write { op, source, batch } = self;
        Call::Write { op, source, batch }
    }

    fn unpack(done: Done) -> Vec<FailedInstance> {
        match done {
            Done::Written { failed, batch } => {
                // Freed here, on the core that decoded them.
                drop(batch);
                failed
            }
            _ => unreachable!("a write is answered with its failed entries"),
        }
    }
}

/// A service's snapshot, by the id the request named.
pub(super) struct ServiceOf<'a>(pub &'a str);

impl ShardWork for ServiceOf<'_> {
    type Output = Option<ServiceSnapshot>;

    fn run(self, shard: &mut Shard, _: u64) -> Option<ServiceSnapshot> {
        shard.service(self.0)
    }

    fn pack(self, text: &mut String) -> Call {
        let start = text.len();
        text.push_str(self.0);
        Call::Service {
            id: start..text.len(),
        }
    }

    fn unpack(done: Done) -> Option<ServiceSnapshot> {
        match done {
            Done::Service(snapshot) => snapshot,
            _ => unreachable!("a service call is answered with its snapshot"),
        }
    }
}

/// Any other call: a closure, boxed when it travels.
pub(super) struct Closure<F, T>(pub F, pub PhantomData<fn() -> T>);

impl<F, T> ShardWork for Closure<F, T>
where
    T: Send + 'static,
    F: FnOnce(&mut Shard, u64) -> T + Send + 'static,
{
    type Output = T;

    fn run(self, shard: &mut Shard, now: u64) -> T {
        (self.0)(shard, now)
    }

    fn pack(self, _: &mut String) -> Call {
        let job = self.0;
        Call::Job(Box::new(move |shard, now| Box::new(job(shard, now))))
    }

    fn unpack(done: Done) -> T {
        match done {
            Done::Reply(reply) => *reply
                .downcast::<T>()
                .expect("a call's reply has the type of its job's result"),
            _ => unreachable!("a closure is answered with its boxed result"),
        }
    }
}

/// Where a call's answer goes: its slot in the pending slab, and the call's number, so an answer
/// whose caller has gone (and whose slot was reused) is dropped.
#[derive(Clone, Copy)]
struct Key {
    slot: usize,
    call: u64,
}

struct Pending {
    call: u64,
    state: State,
}

enum State {
    Waiting(Option<Waker>),
    Answered(Done),
}

/// This core's side of the hop: the peers, the calls queued for each, the calls awaiting answers.
pub(super) struct Hop {
    peers: Rc<Senders<Message>>,
    /// The calls of this turn, by peer.
    outbox: RefCell<Vec<Batch>>,
    /// Emptied batches back from each peer, for the next ones.
    spare: RefCell<Vec<Vec<Batch>>>,
    /// The flusher, while it waits for calls.
    flusher: RefCell<Option<Waker>>,
    pending: RefCell<Slab<Pending>>,
    next_call: Cell<u64>,
}

impl Hop {
    pub(super) fn new(peers: Senders<Message>) -> Hop {
        let cores = peers.nr_consumers();
        Hop {
            peers: Rc::new(peers),
            outbox: RefCell::new((0..cores).map(|_| Batch::default()).collect()),
            spare: RefCell::new((0..cores).map(|_| Vec::new()).collect()),
            flusher: RefCell::new(None),
            pending: RefCell::new(Slab::new()),
            next_call: Cell::new(0),
        }
    }

    /// Queues `work` for `owner`'s shard; its result is awaited from the answer returned.
    pub(super) fn call<W: ShardWork>(&self, owner: usize, work: W) -> Answer<'_, W> {
        let call = self.next_call.get();
        self.next_call.set(call + 1);
        let slot = self.pending.borrow_mut().insert(Pending {
            call,
            state: State::Waiting(None),
        });
        let key = Key { slot, call };
        let mut outbox = self.outbox.borrow_mut();
        let batch = &mut outbox[owner];
        let work = Work::Call(work.pack(&mut batch.text));
        batch.entries.push(Entry { key, work });
        if let Some(flusher) = self.flusher.borrow_mut().take() {
            flusher.wake();
        }
        Answer {
            hop: self,
            key,
            answered: false,
            work: PhantomData,
        }
    }

    /// Sends each peer its queued calls as one message, every time calls were queued (the
    /// flusher task's life: woken by the first call of a turn, it runs after the turn's other
    /// woken tasks have queued theirs).
    pub(super) async fn flush_forever(&self) {
        loop {
            poll_fn(|cx| {
                if self.outbox.borrow().iter().any(|b| !b.entries.is_empty()) {
                    return Poll::Ready(());
                }
                *self.flusher.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            })
            .await;
            let mut outbox = self.outbox.borrow_mut();
            for (peer, queued) in outbox.iter_mut().enumerate() {
                if queued.entries.is_empty() {
                    continue;
                }
                let next = self.spare.borrow_mut()[peer].pop().unwrap_or_default();
                let batch = std::mem::replace(queued, next);
                mesh::send_soon(&self.peers, peer, Message::Calls(batch));
            }
        }
    }

    /// Hands each result of a batch of answers to its caller, and keeps the batch for reuse.
    pub(super) fn complete(&self, peer: usize, mut batch: Batch) {
        let mut pending = self.pending.borrow_mut();
        for entry in batch.entries.drain(..) {
            let Work::Done(done) = entry.work else {
                continue;
            };
            // A caller that has gone (its task dropped) left no slot, or a reused one.
            match pending.get_mut(entry.key.slot) {
                Some(slot) if slot.call == entry.key.call => {
                    if let State::Waiting(Some(waiter)) =
                        std::mem::replace(&mut slot.state, State::Answered(done))
                    {
                        waiter.wake();
                    }
                }
                _ => {}
            }
        }
        drop(pending);
        batch.text.clear();
        let mut spare = self.spare.borrow_mut();
        if spare[peer].len() < SPARE_BATCHES {
            spare[peer].push(batch);
        }
    }

    /// Sends `message` to `peer` without waiting for room (see `mesh`).
    pub(super) fn send_soon(&self, peer: usize, message: Message) {
        mesh::send_soon(&self.peers, peer, message);
    }
}

/// Resolves with the owner's result of a call.
pub(super) struct Answer<'a, W> {
    hop: &'a Hop,
    key: Key,
    answered: bool,
    work: PhantomData<fn() -> W>,
}

impl<W: ShardWork> Future for Answer<'_, W> {
    type Output = W::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<W::Output> {
        let mut pending = self.hop.pending.borrow_mut();
        let slot = &mut pending[self.key.slot];
        match &mut slot.state {
            State::Waiting(waiter) => {
                if !waiter.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *waiter = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            State::Answered(_) => {
                let State::Answered(done) = pending.remove(self.key.slot).state else {
                    unreachable!()
                };
                drop(pending);
                self.answered = true;
                Poll::Ready(W::unpack(done))
            }
        }
    }
}

impl<W> Drop for Answer<'_, W> {
    fn drop(&mut self) {
        if !self.answered {
            self.hop.pending.borrow_mut().remove(self.key.slot);
        }
    }
}
