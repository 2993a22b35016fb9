//! Stopping the server without losing a reply: one handle that the runtime, every core and every
//! connection share, instead of process-wide statics.
//!
//! On SIGINT or SIGTERM the runtime calls [`Shutdown::begin`]: cores stop accepting, connections
//! close after the batch they are answering, and each core raises its [`StopSignal`], on which
//! its WebSocket sessions wake to close with 1001. The runtime then waits (a bounded time) until
//! no batch is being answered on any core.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use slab::Slab;

/// Whether the server is stopping, and how many reply batches are being answered right now.
#[derive(Clone, Default)]
pub struct Shutdown {
    state: Arc<State>,
}

#[derive(Default)]
struct State {
    stopping: AtomicBool,
    answering: AtomicUsize,
}

impl Shutdown {
    /// Stop taking work: cores stop accepting, connections close after their current batch.
    pub fn begin(&self) {
        self.state.stopping.store(true, Ordering::SeqCst);
    }

    pub fn is_stopping(&self) -> bool {
        self.state.stopping.load(Ordering::Relaxed)
    }

    /// Counts one batch of replies as in flight until the guard drops.
    pub fn answering(&self) -> Answering<'_> {
        self.state.answering.fetch_add(1, Ordering::SeqCst);
        Answering(self)
    }

    /// No batch is being answered on any core.
    pub fn is_drained(&self) -> bool {
        self.state.answering.load(Ordering::SeqCst) == 0
    }
}

/// A batch of replies being answered; see [`Shutdown::answering`].
pub struct Answering<'a>(&'a Shutdown);

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        self.0.state.answering.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One core's word to its long-lived tasks that the server stops: they wait on
/// [`StopSignal::raised`] beside their own work.
#[derive(Default)]
pub(crate) struct StopSignal {
    raised: Cell<bool>,
    waiters: RefCell<Slab<Waker>>,
}

impl StopSignal {
    /// Wakes every waiter, now and later.
    pub(crate) fn raise(&self) {
        self.raised.set(true);
        for waker in self.waiters.borrow_mut().drain() {
            waker.wake();
        }
    }

    /// Resolves once the signal is raised.
    pub(crate) fn raised(&self) -> Raised<'_> {
        Raised {
            signal: self,
            waiting: None,
        }
    }
}

/// See [`StopSignal::raised`]; a dropped wait leaves nothing behind.
pub(crate) struct Raised<'a> {
    signal: &'a StopSignal,
    waiting: Option<usize>,
}

impl Future for Raised<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.signal.raised.get() {
            return Poll::Ready(());
        }
        let mut waiters = self.signal.waiters.borrow_mut();
        match self.waiting.and_then(|key| waiters.get_mut(key)) {
            Some(waker) => waker.clone_from(cx.waker()),
            None => {
                let key = waiters.insert(cx.waker().clone());
                drop(waiters);
                self.waiting = Some(key);
            }
        }
        Poll::Pending
    }
}

impl Drop for Raised<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.waiting {
            self.signal.waiters.borrow_mut().try_remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raised_signal_wakes_waiters_and_forgets_dropped_ones() {
        let signal = StopSignal::default();
        let cx = &mut Context::from_waker(Waker::noop());
        let mut kept = Box::pin(signal.raised());
        let mut dropped = Box::pin(signal.raised());
        assert!(kept.as_mut().poll(cx).is_pending());
        assert!(dropped.as_mut().poll(cx).is_pending());
        assert!(kept.as_mut().poll(cx).is_pending());
        drop(dropped);
        assert_eq!(signal.waiters.borrow().len(), 1);
        signal.raise();
        assert!(kept.as_mut().poll(cx).is_ready());
        assert!(Box::pin(signal.raised()).as_mut().poll(cx).is_ready());
    }

    #[test]
    fn drained_once_every_batch_is_answered() {
        let shutdown = Shutdown::default();
        let other_core = shutdown.clone();
        assert!(!other_core.is_stopping());
        let batch = other_core.answering();
        shutdown.begin();
        assert!(other_core.is_stopping());
        assert!(!shutdown.is_drained());
        drop(batch);
        assert!(shutdown.is_drained());
    }
}
