//! Push: which WebSocket sessions on this core want which changes, and how a change reaches them.
//!
//! The shard that makes a change serializes it once, as Java's `InstanceChange` JSON, and hands
//! the batch to every core that has push sessions (its own by a call, the others over the mesh).
//! Each core puts it in the inbox of every session subscribed to that service, or to all
//! services. An inbox is bounded in bytes (a whole register batch must fit): a session that falls
//! that far behind is marked overflowed and closed by its own task, so a slow subscriber never
//! slows the registry or other subscribers.

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
pub(crate) fn serialize(changes: Vec<Change>) -> PushBatch {
    changes
        .into_iter()
        .map(|change| {
            let mut json = Vec::with_capacity(change.instance_json.len() + 64);
            change.write_json(&mut json);
            Pushed {
                service_key: change.key.service_id,
                json: json.into(),
            }
        })
        .collect()
}

/// How many push sessions each core holds, so a core sends changes only to cores that want
/// them.
pub(crate) type Presence = Arc<[AtomicUsize]>;

/// One session's bounded queue of changes to send.
pub(crate) struct Inbox {
    queue: RefCell<VecDeque<Arc<[u8]>>>,
    /// Bytes queued, and the most there may be.
    queued: Cell<usize>,
    capacity: usize,
    overflowed: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Inbox {
    /// An inbox holding at most `capacity` bytes of changes.
    pub(crate) fn new(capacity: usize) -> Rc<Inbox> {
        Rc::new(Inbox {
            queue: RefCell::new(VecDeque::new()),
            queued: Cell::new(0),
            capacity,
            overflowed: Cell::new(false),
            waker: RefCell::new(None),
        })
    }

    fn offer(&self, json: &Arc<[u8]>) {
        let queued = self.queued.get() + json.len();
        if queued <= self.capacity {
            self.queue.borrow_mut().push_back(json.clone());
            self.queued.set(queued);
        } else {
            self.overflowed.set(true);
        }
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    /// The next queued change, if any.
    pub(crate) fn pop(&self) -> Option<Arc<[u8]>> {
        let json = self.queue.borrow_mut().pop_front()?;
        self.queued.set(self.queued.get() - json.len());
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

/// This core's push sessions, by subscribed service and for all services.
pub(crate) struct Subscribers {
    by_service: RefCell<HashMap<Box<str>, Vec<Rc<Inbox>>>>,
    everything: RefCell<Vec<Rc<Inbox>>>,
    presence: Presence,
    me: usize,
}

impl Subscribers {
    pub(crate) fn new(presence: Presence, me: usize) -> Subscribers {
        Subscribers {
            by_service: RefCell::new(HashMap::new()),
            everything: RefCell::new(Vec::new()),
            presence,
            me,
        }
    }

    /// `inbox` gets the changes of the service with lowercased id `service_key`.
    pub(crate) fn subscribe(&self, service_key: &str, inbox: &Rc<Inbox>) {
        let mut by_service = self.by_service.borrow_mut();
        let inboxes = by_service.entry(service_key.into()).or_default();
        if !inboxes.iter().any(|i| Rc::ptr_eq(i, inbox)) {
            inboxes.push(inbox.clone());
        }
    }

    /// `inbox` gets every change.
    pub(crate) fn subscribe_all(&self, inbox: &Rc<Inbox>) {
        self.everything.borrow_mut().push(inbox.clone());
    }

    /// Counts a session that may subscribe; other cores send changes here while any is open.
    pub(crate) fn session_opened(&self) {
        self.presence[self.me].fetch_add(1, Ordering::Relaxed);
    }

    /// Forgets `inbox` everywhere; `services` are the keys it subscribed to.
    pub(crate) fn session_closed(&self, inbox: &Rc<Inbox>, services: &[Box<str>]) {
        self.presence[self.me].fetch_sub(1, Ordering::Relaxed);
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
        self.presence[core].load(Ordering::Relaxed) > 0
    }

    /// Queues each change for the sessions that want it.
    pub(crate) fn deliver(&self, batch: &[Pushed]) {
        let by_service = self.by_service.borrow();
        let everything = self.everything.borrow();
        for change in batch {
            let subscribed = by_service.get(&change.service_key).into_iter().flatten();
            for inbox in subscribed.chain(everything.iter()) {
                inbox.offer(&change.json);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence(cores: usize) -> Presence {
        (0..cores).map(|_| AtomicUsize::new(0)).collect()
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
        let subscribers = Subscribers::new(presence(2), 1);
        let (a, all) = (Inbox::new(64), Inbox::new(64));
        subscribers.session_opened();
        subscribers.session_opened();
        subscribers.subscribe("svc.a", &a);
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
        let subscribers = Subscribers::new(presence(1), 0);
        let (slow, fast) = (Inbox::new(2), Inbox::new(64));
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
        let batch = serialize(vec![change]);
        assert_eq!(&*batch[0].service_key, "svc");
        assert_eq!(
            &*batch[0].json,
            br#"{"changeTime":5,"changeType":"new","instance":{}}"#
        );
    }
}
