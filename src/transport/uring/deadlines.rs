//! The deadlines of a ring's connections: one timer per core rather than one per read and write.
//!
//! Every read waits for input against the idle or request timeout, and every write against the
//! idle timeout. A glommio timer per wait cost a clock reading, two inserts into its timer map and
//! a removal each time, and dropping the wait cost another: with the registry's own core at
//! saturation, taking them out served 9–11 % more requests (docs/benchmarks.md). Here a wait
//! only notes its deadline against the connection's key. One sweeper task per ring sleeps until
//! the earliest noted deadline, wakes the waits whose deadline has passed, and plans its next
//! wake-up; a deadline earlier than the one planned wakes it to plan again. Connections that keep
//! talking keep moving their deadlines later than the planned wake-up, so a busy core sweeps
//! about once per idle timeout, and a core with no waits has no timer at all.

use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// One connection's wait.
enum Wait {
    Until(Instant, Waker),
    /// The deadline passed; the wait resolves at its next poll.
    Expired,
}

#[derive(Default)]
pub(super) struct Deadlines {
    /// By connection key (the ring's slab keys are small and dense).
    waits: Vec<Option<Wait>>,
    /// When the sweeper will look next; `None` while it waits for a first deadline.
    planned: Option<Instant>,
    /// A deadline earlier than `planned` was noted since the sweeper last planned.
    replan: bool,
    sweeper: Option<Waker>,
}

impl Deadlines {
    /// Ready once `at` has passed for `key`'s wait, which is noted on the first poll.
    pub(super) fn poll(&mut self, key: usize, at: Instant, cx: &Context<'_>) -> Poll<()> {
        if key >= self.waits.len() {
            self.waits.resize_with(key + 1, || None);
        }
        match &mut self.waits[key] {
            Some(Wait::Expired) => {
                self.waits[key] = None;
                return Poll::Ready(());
            }
            Some(Wait::Until(_, waker)) => {
                if !waker.will_wake(cx.waker()) {
                    *waker = cx.waker().clone();
                }
                return Poll::Pending;
            }
            None => self.waits[key] = Some(Wait::Until(at, cx.waker().clone())),
        }
        if self.planned.is_none_or(|planned| at < planned) {
            self.planned = Some(at);
            self.replan = true;
            if let Some(sweeper) = self.sweeper.take() {
                sweeper.wake();
            }
        }
        Poll::Pending
    }

    /// `key`'s wait ended (or was given up) before its deadline.
    pub(super) fn clear(&mut self, key: usize) {
        if let Some(wait) = self.waits.get_mut(key) {
            *wait = None;
        }
    }

    /// Wakes the waits whose deadline is not after `now`, and plans the next sweep for the
    /// earliest one left.
    pub(super) fn sweep(&mut self, now: Instant) -> Option<Instant> {
        let mut earliest: Option<Instant> = None;
        for wait in self.waits.iter_mut() {
            match wait {
                Some(Wait::Until(at, _)) if *at <= now => {
                    if let Some(Wait::Until(_, waker)) = wait.replace(Wait::Expired) {
                        waker.wake();
                    }
                }
                Some(Wait::Until(at, _)) => {
                    earliest = Some(earliest.map_or(*at, |e| e.min(*at)));
                }
                _ => {}
            }
        }
        self.planned = earliest;
        self.replan = false;
        earliest
    }

    /// Ready when a deadline earlier than the planned sweep was noted.
    pub(super) fn poll_replan(&mut self, cx: &Context<'_>) -> Poll<()> {
        if std::mem::take(&mut self.replan) {
            return Poll::Ready(());
        }
        self.sweeper = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;
    use std::time::Duration;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn waker() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        (count.clone(), Waker::from(count))
    }

    #[test]
    fn a_wait_resolves_only_once_its_deadline_is_swept() {
        let mut d = Deadlines::default();
        let (woken, w) = waker();
        let cx = Context::from_waker(&w);
        let t0 = Instant::now();
        let at = t0 + Duration::from_secs(5);
        assert!(d.poll(3, at, &cx).is_pending());
        assert_eq!(d.sweep(t0), Some(at));
        assert!(d.poll(3, at, &cx).is_pending());
        assert_eq!(woken.0.load(Ordering::Relaxed), 0);
        assert_eq!(d.sweep(at), None);
        assert_eq!(woken.0.load(Ordering::Relaxed), 1);
        assert!(d.poll(3, at, &cx).is_ready());
        // The key is free for the connection's next wait.
        assert!(d.poll(3, at + Duration::from_secs(1), &cx).is_pending());
    }

    #[test]
    fn the_sweeper_replans_only_for_an_earlier_deadline() {
        let mut d = Deadlines::default();
        let (_, w) = waker();
        let cx = Context::from_waker(&w);
        let (swept, sweeper) = waker();
        let sweeper_cx = Context::from_waker(&sweeper);
        let t0 = Instant::now();
        assert!(d.poll_replan(&sweeper_cx).is_pending());
        // The first deadline wakes the idle sweeper.
        assert!(d.poll(0, t0 + Duration::from_secs(60), &cx).is_pending());
        assert_eq!(swept.0.load(Ordering::Relaxed), 1);
        assert!(d.poll_replan(&sweeper_cx).is_ready());
        assert_eq!(d.sweep(t0), Some(t0 + Duration::from_secs(60)));
        assert!(d.poll_replan(&sweeper_cx).is_pending());
        // A later one does not; an earlier one does.
        assert!(d.poll(1, t0 + Duration::from_secs(61), &cx).is_pending());
        assert_eq!(swept.0.load(Ordering::Relaxed), 1);
        assert!(d.poll(2, t0 + Duration::from_secs(10), &cx).is_pending());
        assert_eq!(swept.0.load(Ordering::Relaxed), 2);
        assert!(d.poll_replan(&sweeper_cx).is_ready());
        assert_eq!(d.sweep(t0), Some(t0 + Duration::from_secs(10)));
    }

    #[test]
    fn a_cleared_wait_is_neither_woken_nor_planned_for() {
        let mut d = Deadlines::default();
        let (woken, w) = waker();
        let cx = Context::from_waker(&w);
        let t0 = Instant::now();
        assert!(d.poll(7, t0 + Duration::from_secs(1), &cx).is_pending());
        d.clear(7);
        assert_eq!(d.sweep(t0 + Duration::from_secs(2)), None);
        assert_eq!(woken.0.load(Ordering::Relaxed), 0);
        // Clearing a key never seen is fine.
        d.clear(100);
    }
}
