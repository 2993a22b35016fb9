//! Push: which WebSocket sessions on this core want which changes, and how a change reaches them.
//!
//! The shard that makes a change serializes it once, as Java's `InstanceChange` JSON, and hands
//! the batch to every core that has push sessions (its own by a call, the others over the mesh);
//! while no core has any, changes are not serialized at all.
//! Each core puts it in the inbox of every session subscribed to that service, or to all
//! services. An inbox is bounded in bytes (a whole register batch must fit): a session that falls
//! that far behind is marked overflowed and closed by its own task, so a slow subscriber never
//! slows the registry or other subscribers. What all inboxes of the node hold together is bounded
//! too (`--ws-queue-total`, an even share on each core): when a change would pass its core's
//! share, that core's slowest subscriber (the one with the most bytes waiting) is dropped first,
//! so many slow subscribers cannot take the node's memory one session queue at a time.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};

use artemis_shards::Change;

/// One change, ready for the wire.
pub(crate) struct Pushed {
    /// The lowercased service id subscriptions are keyed by.
    pub service_key: Box<str>,
    /// `{"changeTime":..,"changeType":..,"instance":{..}}`.
    pub json: Arc<[u8]>,
}

/// Changes of one shard operation, shared by every core that delivers them.
pub(crate) type PushBatch = Arc<[Pushed]>;

/// Serializes each change once.
pub(crate) fn serialize<'c>(changes: impl Iterator<Item = &'c Change>) -> PushBatch {
    changes
        .map(|change| {
            let mut json = Vec::with_capacity(change.instance_json.len() + 64);
            change.write_json(&mut json);
            Pushed {
                service_key: change.key.service_id.clone(),
                json: json.into(),
            }
        })
        .collect()
}

/// What every core shares about push: which cores hold push sessions (a core sends changes only
/// to cores that want them), and how many bytes the node's inboxes may hold together.
pub(crate) struct Fanout {
    sessions: Box<[AtomicUsize]>,
    queued_most: usize,
}

impl Fanout {
    /// For a node of `cores` cores whose inboxes may hold `queued_most` bytes together, an even
    /// share of it on each core.
    pub(crate) fn new(cores: usize, queued_most: usize) -> Arc<Fanout> {
        Arc::new(Fanout {
            sessions: (0..cores).map(|_| AtomicUsize::new(0)).collect(),
            queued_most,
        })
    }

    /// What one core's inboxes may hold together. Each core bounds its own share, so a core
    /// only ever closes its own slowest subscribers, never a reader for another core's laggard.
    fn share(&self) -> usize {
        (self.queued_most / self.sessions.len().max(1)).max(1)
    }
}

/// The bytes this core's inboxes hold together, and the most they may.
struct Budget {
    queued: Cell<usize>,
    most: usize,
}

impl Budget {
    /// Takes room for `n` more queued bytes, if there is any.
    fn take(&self, n: usize) -> bool {
        let queued = self.queued.get().saturating_add(n);
        let room = queued <= self.most;
        if room {
            self.queued.set(queued);
        }
        room
    }

    fn give_back(&self, n: usize) {
        self.queued.set(self.queued.get() - n);
    }
}

/// One session's bounded queue of changes to send.
pub(crate) struct Inbox {
    queue: RefCell<VecDeque<Arc<[u8]>>>,
    /// Bytes queued, and the most there may be.
    queued: Cell<usize>,
    capacity: usize,
    overflowed: Cell<bool>,
    waker: RefCell<Option<Waker>>,
    /// Where this core counts every inbox's bytes.
    budget: Rc<Budget>,
}

impl Inbox {
    /// Queues `json` if this inbox and its core have room for it; overflows this inbox when it
    /// has none itself (what it holds is still sent, then its session closes). False when the
    /// core has no room: the caller makes some.
    fn offer(&self, json: &Arc<[u8]>) -> bool {
        if self.overflowed() {
            return true;
        }
        let queued = self.queued.get() + json.len();
        if queued > self.capacity {
            self.overflowed.set(true);
        } else if self.budget.take(json.len()) {
            self.queue.borrow_mut().push_back(json.clone());
            self.queued.set(queued);
        } else {
            return false;
        }
        self.wake();
        true
    }

    /// Drops what is queued, giving its bytes back to its core, and marks the inbox overflowed:
    /// its session closes with 1013.
    fn evict(&self) {
        self.overflowed.set(true);
        self.queue.borrow_mut().clear();
        self.budget.give_back(self.queued.replace(0));
        self.wake();
    }

    fn wake(&self) {
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    /// The next queued change, if any.
    pub(crate) fn pop(&self) -> Option<Arc<[u8]>> {
        let json = self.queue.borrow_mut().pop_front()?;
        self.queued.set(self.queued.get() - json.len());
        self.budget.give_back(json.len());
        Some(json)
    }

    /// True once a change arrived while the queue was full.
    pub(crate) fn overflowed(&self) -> bool {
        self.overflowed.get()
    }

    /// Waits until something is queued or the queue overflowed.
    pub(crate) async fn ready(&self) {
        self.wait_for(|| !self.queue.borrow().is_empty()).await
    }

    /// Waits until the queue overflowed (while the session is busy writing).
    pub(crate) async fn overflow(&self) {
        self.wait_for(|| false).await
    }

    async fn wait_for(&self, ready: impl Fn() -> bool) {
        poll_fn(|cx| {
            if self.overflowed() || ready() {
                Poll::Ready(())
            } else {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        self.budget.give_back(self.queued.get());
    }
}

/// This core's push sessions, by subscribed service and for all services.
pub(crate) struct Subscribers {
    by_service: RefCell<HashMap<Box<str>, Vec<Rc<Inbox>>>>,
    everything: RefCell<Vec<Rc<Inbox>>>,
    fanout: Arc<Fanout>,
    budget: Rc<Budget>,
    me: usize,
}

impl Subscribers {
    pub(crate) fn new(fanout: Arc<Fanout>, me: usize) -> Subscribers {
        Subscribers {
            by_service: RefCell::new(HashMap::new()),
            everything: RefCell::new(Vec::new()),
            budget: Rc::new(Budget {
                queued: Cell::new(0),
                most: fanout.share(),
            }),
            fanout,
            me,
        }
    }

    /// A new session's inbox, holding at most `capacity` bytes of changes.
    pub(crate) fn inbox(&self, capacity: usize) -> Rc<Inbox> {
        Rc::new(Inbox {
            queue: RefCell::new(VecDeque::new()),
            queued: Cell::new(0),
            capacity,
            overflowed: Cell::new(false),
            waker: RefCell::new(None),
            budget: self.budget.clone(),
        })
    }

    /// `inbox` gets the changes of the service with lowercased id `service_key`; the caller
    /// subscribes an inbox to a service once.
    pub(crate) fn subscribe(&self, service_key: &str, inbox: &Rc<Inbox>) {
        let mut by_service = self.by_service.borrow_mut();
        by_service
            .entry(service_key.into())
            .or_default()
            .push(inbox.clone());
    }

    /// `inbox` gets every change.
    pub(crate) fn subscribe_all(&self, inbox: &Rc<Inbox>) {
        self.everything.borrow_mut().push(inbox.clone());
    }

    /// Counts a session that may subscribe; other cores send changes here while any is open.
    pub(crate) fn session_opened(&self) {
        self.fanout.sessions[self.me].fetch_add(1, Ordering::Relaxed);
    }

    /// Forgets `inbox` everywhere; `services` are the keys it subscribed to.
    pub(crate) fn session_closed(&self, inbox: &Rc<Inbox>, services: &[Box<str>]) {
        self.fanout.sessions[self.me].fetch_sub(1, Ordering::Relaxed);
        let mut by_service = self.by_service.borrow_mut();
        for key in services {
            if let Some(inboxes) = by_service.get_mut(key) {
                inboxes.retain(|i| !Rc::ptr_eq(i, inbox));
                if inboxes.is_empty() {
                    by_service.remove(key);
                }
            }
        }
        self.everything
            .borrow_mut()
            .retain(|i| !Rc::ptr_eq(i, inbox));
    }

    /// Whether core `core` has push sessions.
    pub(crate) fn wanted_by(&self, core: usize) -> bool {
        self.fanout.sessions[core].load(Ordering::Relaxed) > 0
    }

    /// Whether any core has push sessions.
    pub(crate) fn wanted(&self) -> bool {
        (0..self.fanout.sessions.len()).any(|core| self.wanted_by(core))
    }

    /// Queues each change for the sessions that want it.
    pub(crate) fn deliver(&self, batch: &[Pushed]) {
        let by_service = self.by_service.borrow();
        let everything = self.everything.borrow();
        for change in batch {
            let subscribed = by_service.get(&change.service_key).into_iter().flatten();
            for inbox in subscribed.chain(everything.iter()) {
                while !inbox.offer(&change.json) {
                    // The core's share is full: its slowest subscriber goes first (perhaps this one).
                    let inboxes = by_service.values().flatten().chain(everything.iter());
                    let slowest = inboxes.max_by_key(|i| i.queued.get());
                    slowest
                        .filter(|i| i.queued.get() > 0)
                        .unwrap_or(inbox)
                        .evict();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node of `cores` cores whose inboxes have no bound together.
    fn fanout(cores: usize) -> Arc<Fanout> {
        Fanout::new(cores, usize::MAX)
    }

    fn pushed(service: &str, json: &str) -> Pushed {
        Pushed {
            service_key: service.into(),
            json: Arc::from(json.as_bytes()),
        }
    }

    fn drain(inbox: &Inbox) -> Vec<String> {
        std::iter::from_fn(|| inbox.pop())
            .map(|j| String::from_utf8(j.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn changes_reach_service_and_all_subscribers() {
        let subscribers = Subscribers::new(fanout(2), 1);
        let (a, all) = (subscribers.inbox(64), subscribers.inbox(64));
        subscribers.session_opened();
        subscribers.session_opened();
        subscribers.subscribe("svc.a", &a);
        subscribers.subscribe_all(&all);
        assert!(subscribers.wanted_by(1) && !subscribers.wanted_by(0));
        subscribers.deliver(&[pushed("svc.a", "1"), pushed("svc.b", "2")]);
        assert_eq!(drain(&a), ["1"]);
        assert_eq!(drain(&all), ["1", "2"]);

        subscribers.session_closed(&a, &["svc.a".into()]);
        subscribers.session_closed(&all, &[]);
        subscribers.deliver(&[pushed("svc.a", "3")]);
        assert!(drain(&a).is_empty() && drain(&all).is_empty());
        assert!(!subscribers.wanted_by(1));
    }

    #[test]
    fn a_full_inbox_overflows_without_growing() {
        let subscribers = Subscribers::new(fanout(1), 0);
        let (slow, fast) = (subscribers.inbox(2), subscribers.inbox(64));
        subscribers.subscribe_all(&slow);
        subscribers.subscribe_all(&fast);
        let batch: Vec<Pushed> = (0..3).map(|i| pushed("s", &i.to_string())).collect();
        subscribers.deliver(&batch);
        assert!(slow.overflowed());
        assert_eq!(drain(&slow), ["0", "1"]);
        assert!(!fast.overflowed());
        assert_eq!(drain(&fast), ["0", "1", "2"]);
    }

    #[test]
    fn a_full_core_drops_its_slowest_subscriber_first() {
        let subscribers = Subscribers::new(Fanout::new(1, 6), 0);
        let (slow, fast) = (subscribers.inbox(64), subscribers.inbox(64));
        subscribers.subscribe("a", &slow);
        subscribers.subscribe_all(&fast);
        subscribers.deliver(&[pushed("a", "12"), pushed("a", "3")]);
        assert_eq!(drain(&fast), ["12", "3"], "the fast one reads");
        assert_eq!(subscribers.budget.queued.get(), 3, "the slow one holds 3");
        subscribers.deliver(&[pushed("b", "4567")]);
        assert!(slow.overflowed(), "the slowest gives way");
        assert!(drain(&slow).is_empty(), "and its bytes go back");
        assert!(!fast.overflowed());
        assert_eq!(drain(&fast), ["4567"]);
        assert_eq!(subscribers.budget.queued.get(), 0);

        let alone = subscribers.inbox(64);
        subscribers.subscribe_all(&alone);
        subscribers.deliver(&[pushed("c", "too large")]);
        assert!(
            alone.overflowed(),
            "a change the core cannot hold closes who cannot take it"
        );
        assert_eq!(subscribers.budget.queued.get(), 0);
    }

    #[test]
    fn serialized_once_as_instance_change() {
        use artemis_shards::{ChangeKind, InstanceKey};
        let change = Change {
            version: 1,
            kind: ChangeKind::New,
            time_ms: 5,
            service_id: Arc::from("Svc"),
            key: InstanceKey {
                region_id: "r".into(),
                service_id: "svc".into(),
                instance_id: "i".into(),
            },
            instance_json: Arc::from(&b"{}"[..]),
        };
        let batch = serialize([&change].into_iter());
        assert_eq!(&*batch[0].service_key, "svc");
        assert_eq!(
            &*batch[0].json,
            br#"{"changeTime":5,"changeType":"new","instance":{}}"#
        );
    }
}
