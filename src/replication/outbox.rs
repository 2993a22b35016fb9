//! The replication work waiting for one peer on one core: plain data, no I/O, no clock of its own
//! (every call is given `now`), so each rule below is unit-tested without a socket.
//!
//! **Coalescing.** At most one task is pending per instance, so a burst of writes to one instance
//! costs one slot and reaches the peer as its latest state:
//! - a task of the kind already pending replaces it (its newer JSON) and keeps the older submit
//!   time and place in line, as Java's dispatcher does for a task id;
//! - a register or unregister replaces a pending task of another kind (the newer state wins) and
//!   takes the back of its own line; in particular it drops a pending heartbeat, which could
//!   otherwise reach the peer after an unregister and bring the instance back (a replicated
//!   heartbeat registers what it does not know; docs/cluster.md);
//! - a heartbeat for an instance whose register is pending is absorbed by it (the register
//!   renews the lease on the peer and carries the instance whole).
//!
//! **Batching.** Each kind waits in a line of its own, ordered by submit time. A batch of a kind is
//! due once `batch` are pending or its oldest has waited `delay`.
//!
//! **Bounds.** What is pending is bounded in bytes (each task's key and JSON plus
//! [`ENTRY_BYTES`]); past the bound the oldest tasks, of whatever kind, are dropped. Tasks older
//! than the TTL are dropped. Tasks taken for a request that failed come back at the front of their
//! line with their submit time, unless a newer task for the instance came meanwhile (it wins).
//! Every drop and every coalescing is counted in the peer's [`PeerCounters`].

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;
use std::time::{Duration, Instant};

use artemis_shards::Prehashed;
use slab::Slab;

use super::update::Update;

use crate::metrics::{Dropped, PeerCounters};
use crate::shard_link::WriteOp;

/// What a pending task costs beyond its key and JSON: its slot, its index entry and the header of
/// its shared allocation.
pub(crate) const ENTRY_BYTES: usize = 96;

/// No neighbour in a line.
const NIL: usize = usize::MAX;

/// When batches are due and how much may wait.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// A kind's batch is due once this many are pending, and a request carries at most this many.
    pub batch: usize,
    /// ... or once its oldest has waited this long.
    pub delay: Duration,
    /// A task not delivered within this long of its submission is dropped.
    pub ttl: Duration,
    /// Bytes that may wait ([`Outbox::bytes`]).
    pub max_bytes: usize,
}

/// An instance's update on its way to the peer, with when it was first submitted.
#[derive(Debug)]
pub(crate) struct Task {
    pub update: Update,
    pub since: Instant,
}

/// A pending task in its kind's line.
struct Entry {
    task: Task,
    kind: WriteOp,
    prev: usize,
    next: usize,
}

/// One kind's line: a doubly linked list through the entries, oldest first.
#[derive(Clone, Copy)]
struct Line {
    head: usize,
    tail: usize,
    len: usize,
}

/// The work pending for one peer.
pub(crate) struct Outbox {
    limits: Limits,
    entries: Slab<Entry>,
    /// Each pending update's slot, by its instance key.
    by_key: HashMap<Update, usize, BuildHasherDefault<Prehashed>>,
    lines: [Line; WriteOp::ALL.len()],
    bytes: usize,
    counters: Arc<PeerCounters>,
}

impl Outbox {
    pub(crate) fn new(limits: Limits, counters: Arc<PeerCounters>) -> Outbox {
        let empty = Line {
            head: NIL,
            tail: NIL,
            len: 0,
        };
        Outbox {
            limits,
            entries: Slab::new(),
            by_key: HashMap::default(),
            lines: [empty; WriteOp::ALL.len()],
            bytes: 0,
            counters,
        }
    }

    /// Tasks pending, of every kind.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Tasks of `kind` pending.
    pub(crate) fn queued(&self, kind: WriteOp) -> usize {
        self.lines[kind.index()].len
    }

    /// What the pending tasks count against the bound.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Submits `update` as a task of `kind` at `now`, coalescing it with the instance's pending
    /// task (see the module's rules), then keeps to the byte bound.
    pub(crate) fn push(&mut self, kind: WriteOp, update: Update, now: Instant) {
        match self.by_key.get(&update).copied() {
            None => self.insert(kind, Task { update, since: now }, false),
            Some(at) => {
                let pending = self.entries[at].kind;
                if pending == kind {
                    self.counters.record_coalesced(kind);
                    self.replace(at, update);
                } else if kind == WriteOp::Heartbeat && pending == WriteOp::Register {
                    self.counters.record_coalesced(kind);
                } else {
                    self.counters.record_coalesced(pending);
                    self.remove(at);
                    self.insert(kind, Task { update, since: now }, false);
                }
            }
        }
        self.keep_bound();
        self.publish();
    }

    /// Puts back `tasks` (taken for a request of `kind` that failed, in the order taken) at the
    /// front of their line, skipping each whose instance has a newer task pending.
    pub(crate) fn requeue(&mut self, kind: WriteOp, tasks: Vec<Task>) {
        for task in tasks.into_iter().rev() {
            if self.by_key.contains_key(&task.update) {
                self.counters.record_coalesced(kind);
            } else {
                self.insert(kind, task, true);
            }
        }
        self.keep_bound();
        self.publish();
    }

    /// Drops the tasks submitted a TTL or more before `now`.
    pub(crate) fn expire(&mut self, now: Instant) {
        for kind in WriteOp::ALL {
            while let Some(at) = self.front(kind) {
                if now.saturating_duration_since(self.entries[at].task.since) < self.limits.ttl {
                    break;
                }
                self.counters.record_dropped(Dropped::Expired, kind, 1);
                self.remove(at);
            }
        }
        self.publish();
    }

    /// When `kind`'s next batch is due (maybe already), if any of it is pending.
    fn due_at(&self, kind: WriteOp) -> Option<Instant> {
        let since = self.entries[self.front(kind)?].task.since;
        Some(match self.queued(kind) >= self.limits.batch {
            true => since,
            false => since + self.limits.delay,
        })
    }

    /// Whether a batch of `kind` is due at `now`.
    pub(crate) fn is_due(&self, kind: WriteOp, now: Instant) -> bool {
        self.due_at(kind).is_some_and(|at| at <= now)
    }

    /// When the next batch of any kind is due (maybe already); `None` when nothing is pending.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        WriteOp::ALL
            .into_iter()
            .filter_map(|kind| self.due_at(kind))
            .min()
    }

    /// Takes the oldest tasks of `kind` for one request: at most `batch` of them and, past the
    /// first, at most `max_json` bytes of JSON.
    pub(crate) fn take(&mut self, kind: WriteOp, max_json: usize) -> Vec<Task> {
        let mut tasks = Vec::with_capacity(self.queued(kind).min(self.limits.batch));
        let mut json = 0;
        while let Some(at) = self.front(kind) {
            let size = self.entries[at].task.update.json().len();
            if tasks.len() == self.limits.batch || (!tasks.is_empty() && json + size > max_json) {
                break;
            }
            json += size;
            tasks.push(self.remove(at));
        }
        self.publish();
        tasks
    }

    fn front(&self, kind: WriteOp) -> Option<usize> {
        let head = self.lines[kind.index()].head;
        (head != NIL).then_some(head)
    }

    /// Adds a task of `kind` at the back of its line, or at the front.
    fn insert(&mut self, kind: WriteOp, task: Task, front: bool) {
        let line = &mut self.lines[kind.index()];
        self.bytes += task.update.size() + ENTRY_BYTES;
        let key = task.update.clone();
        let (prev, next) = match front {
            true => (NIL, line.head),
            false => (line.tail, NIL),
        };
        let at = self.entries.insert(Entry {
            task,
            kind,
            prev,
            next,
        });
        match (prev, next) {
            (NIL, NIL) => (line.head, line.tail) = (at, at),
            (NIL, next) => {
                self.entries[next].prev = at;
                line.head = at;
            }
            (prev, _) => {
                self.entries[prev].next = at;
                line.tail = at;
            }
        }
        line.len += 1;
        self.by_key.insert(key, at);
    }

    /// Gives the task at `at` a newer update of its instance, in its place.
    fn replace(&mut self, at: usize, update: Update) {
        let task = &mut self.entries[at].task;
        self.bytes = self.bytes + update.size() - task.update.size();
        // The index holds the update too: re-key it so the old JSON is freed.
        self.by_key.remove(&update);
        self.by_key.insert(update.clone(), at);
        task.update = update;
    }

    /// Takes the task at `at` out of its line and the index.
    fn remove(&mut self, at: usize) -> Task {
        let Entry {
            task,
            kind,
            prev,
            next,
        } = self.entries.remove(at);
        let line = &mut self.lines[kind.index()];
        match prev {
            NIL => line.head = next,
            prev => self.entries[prev].next = next,
        }
        match next {
            NIL => line.tail = prev,
            next => self.entries[next].prev = prev,
        }
        line.len -= 1;
        self.bytes -= task.update.size() + ENTRY_BYTES;
        self.by_key.remove(&task.update);
        task
    }

    /// Drops the oldest tasks, of whatever kind, while more than the bound waits.
    fn keep_bound(&mut self) {
        while self.bytes > self.limits.max_bytes {
            let oldest = WriteOp::ALL
                .into_iter()
                .filter_map(|kind| self.front(kind))
                .min_by_key(|&at| self.entries[at].task.since)
                .expect("bytes are pending, so tasks are");
            self.counters
                .record_dropped(Dropped::Full, self.entries[oldest].kind, 1);
            self.remove(oldest);
        }
    }

    /// Shows the outbox as it is now to the metrics.
    fn publish(&self) {
        let oldest = WriteOp::ALL
            .into_iter()
            .filter_map(|kind| self.front(kind))
            .map(|at| self.entries[at].task.since)
            .min();
        self.counters.set_queue(self.len(), self.bytes(), oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::super::update::tests::update;
    use super::*;
    use WriteOp::{Heartbeat, Register, Unregister};

    const MS: Duration = Duration::from_millis(1);

    fn outbox(batch: usize, max_bytes: usize) -> (Outbox, Arc<PeerCounters>) {
        let counters = Arc::new(PeerCounters::new(Instant::now()));
        let limits = Limits {
            batch,
            delay: 5 * MS,
            ttl: 5000 * MS,
            max_bytes,
        };
        (Outbox::new(limits, counters.clone()), counters)
    }

    /// The instance ids and url tags of `tasks`, in order.
    fn ids(tasks: &[Task]) -> Vec<String> {
        tasks
            .iter()
            .map(|t| {
                let json = std::str::from_utf8(t.update.json()).unwrap();
                let url = json.split(r#""url":"http://"#).nth(1).unwrap();
                url.split('"').next().unwrap().to_string()
            })
            .collect()
    }

    #[test]
    fn a_newer_task_of_the_same_kind_replaces_the_pending_one_in_its_place() {
        let (mut out, counters) = outbox(100, usize::MAX);
        let t0 = Instant::now();
        out.push(Heartbeat, update("s", "a", "1"), t0);
        out.push(Heartbeat, update("s", "b", "1"), t0 + MS);
        out.push(Heartbeat, update("S", "A", "2"), t0 + 2 * MS);
        assert_eq!(out.len(), 1 + 1);
        assert_eq!(counters.coalesced(Heartbeat), 1);
        // The older submit time is kept: the batch is due 5 ms after the first push.
        assert!(!out.is_due(Heartbeat, t0 + 4 * MS));
        assert!(out.is_due(Heartbeat, t0 + 5 * MS));
        let tasks = out.take(Heartbeat, usize::MAX);
        assert_eq!(ids(&tasks), ["A/2", "b/1"]);
        assert_eq!(tasks[0].since, t0);
        assert!(out.is_empty() && out.bytes() == 0);
    }

    #[test]
    fn a_register_or_unregister_drops_the_pending_heartbeat_and_absorbs_later_ones() {
        let (mut out, counters) = outbox(100, usize::MAX);
        let t0 = Instant::now();
        out.push(Heartbeat, update("s", "a", "hb"), t0);
        out.push(Register, update("s", "a", "reg"), t0 + MS);
        assert_eq!((out.queued(Heartbeat), out.queued(Register)), (0, 1));
        out.push(Heartbeat, update("s", "a", "hb2"), t0 + 2 * MS);
        assert_eq!((out.queued(Heartbeat), out.queued(Register)), (0, 1));
        assert_eq!(counters.coalesced(Heartbeat), 2);

        out.push(Unregister, update("s", "a", "unreg"), t0 + 3 * MS);
        assert_eq!((out.queued(Register), out.queued(Unregister)), (0, 1));
        assert_eq!(counters.coalesced(Register), 1);
        // The kind changed, so the submit time is the unregister's own.
        assert!(!out.is_due(Unregister, t0 + 7 * MS));
        assert!(out.is_due(Unregister, t0 + 8 * MS));

        out.push(Register, update("s", "a", "again"), t0 + 4 * MS);
        assert_eq!(ids(&out.take(Register, usize::MAX)), ["a/again"]);
        assert!(out.is_empty());
    }

    #[test]
    fn a_batch_is_due_when_full_or_when_its_oldest_has_waited() {
        let (mut out, _) = outbox(3, usize::MAX);
        let t0 = Instant::now();
        assert_eq!(out.next_due(), None);
        out.push(Register, update("s", "a", "1"), t0);
        out.push(Heartbeat, update("s", "b", "1"), t0 + 2 * MS);
        assert_eq!(out.next_due(), Some(t0 + 5 * MS));
        assert!(!out.is_due(Register, t0 + 4 * MS));
        for id in ["c", "d"] {
            out.push(Heartbeat, update("s", id, "1"), t0 + 3 * MS);
        }
        // Three heartbeats: due at once, however young.
        assert!(out.is_due(Heartbeat, t0 + 3 * MS));
        assert_eq!(out.next_due(), Some(t0 + 2 * MS));
        out.push(Heartbeat, update("s", "e", "1"), t0 + 3 * MS);
        // A request carries one batch at most, oldest first.
        assert_eq!(ids(&out.take(Heartbeat, usize::MAX)), ["b/1", "c/1", "d/1"]);
        assert!(!out.is_due(Heartbeat, t0 + 6 * MS));
        assert!(out.is_due(Heartbeat, t0 + 8 * MS));
    }

    #[test]
    fn a_request_is_bounded_in_bytes_but_carries_at_least_one_task() {
        let (mut out, _) = outbox(100, usize::MAX);
        let t0 = Instant::now();
        for id in ["a", "b", "c"] {
            out.push(Register, update("s", id, "1"), t0);
        }
        let one = update("s", "a", "1").json().len();
        assert_eq!(out.take(Register, one / 2).len(), 1);
        assert_eq!(out.take(Register, 2 * one).len(), 2);
    }

    #[test]
    fn past_the_byte_bound_the_oldest_tasks_are_dropped_and_counted() {
        let each = update("s", "a", "1").size() + ENTRY_BYTES;
        let (mut out, counters) = outbox(100, 3 * each);
        let t0 = Instant::now();
        out.push(Heartbeat, update("s", "a", "1"), t0);
        out.push(Register, update("s", "b", "1"), t0 + MS);
        out.push(Heartbeat, update("s", "c", "1"), t0 + 2 * MS);
        out.push(Unregister, update("s", "d", "1"), t0 + 3 * MS);
        out.push(Register, update("s", "e", "1"), t0 + 4 * MS);
        assert_eq!(out.len(), 3);
        assert!(out.bytes() <= 3 * each);
        assert_eq!(counters.dropped(Dropped::Full, Heartbeat), 1);
        assert_eq!(counters.dropped(Dropped::Full, Register), 1);
        assert_eq!(ids(&out.take(Heartbeat, usize::MAX)), ["c/1"]);
        assert_eq!(ids(&out.take(Register, usize::MAX)), ["e/1"]);
        assert_eq!(ids(&out.take(Unregister, usize::MAX)), ["d/1"]);
        assert_eq!(counters.queue(), (0, 0));
    }

    #[test]
    fn tasks_past_their_ttl_are_dropped_and_counted() {
        let (mut out, counters) = outbox(100, usize::MAX);
        let t0 = Instant::now();
        out.push(Register, update("s", "a", "1"), t0);
        out.push(Register, update("s", "b", "1"), t0 + 10 * MS);
        out.push(Heartbeat, update("s", "c", "1"), t0 + 20 * MS);
        out.expire(t0 + 5000 * MS);
        assert_eq!(counters.dropped(Dropped::Expired, Register), 1);
        assert_eq!(out.len(), 2);
        out.expire(t0 + 5020 * MS);
        assert!(out.is_empty());
        assert_eq!(counters.dropped(Dropped::Expired, Heartbeat), 1);
        assert_eq!(counters.queue(), (0, 0));
    }

    #[test]
    fn a_failed_batch_goes_back_to_the_front_unless_newer_work_came() {
        let (mut out, counters) = outbox(2, usize::MAX);
        let t0 = Instant::now();
        for id in ["a", "b", "c"] {
            out.push(Heartbeat, update("s", id, "1"), t0);
        }
        let taken = out.take(Heartbeat, usize::MAX);
        assert_eq!(ids(&taken), ["a/1", "b/1"]);
        // While the request was out: a newer heartbeat for `b`, and a new instance `d`.
        out.push(Heartbeat, update("s", "b", "2"), t0 + MS);
        out.push(Heartbeat, update("s", "d", "1"), t0 + MS);
        out.requeue(Heartbeat, taken);
        assert_eq!(counters.coalesced(Heartbeat), 1);
        let again = out.take(Heartbeat, usize::MAX);
        assert_eq!(ids(&again), ["a/1", "c/1"]);
        assert_eq!(again[0].since, t0);
        assert_eq!(ids(&out.take(Heartbeat, usize::MAX)), ["b/2", "d/1"]);
    }

    #[test]
    fn the_metrics_see_the_queue_and_its_oldest_task() {
        let (mut out, counters) = outbox(100, usize::MAX);
        let t0 = Instant::now();
        out.push(Register, update("s", "a", "1"), t0);
        out.push(Heartbeat, update("s", "b", "1"), t0 + MS);
        assert_eq!(counters.queue(), (2, out.bytes() as u64));
        assert_eq!(counters.oldest(), Some(t0));
        out.take(Register, usize::MAX);
        assert_eq!(counters.oldest(), Some(t0 + MS));
    }
}
