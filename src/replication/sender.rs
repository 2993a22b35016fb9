//! One core's sender to one peer: it waits until a batch is due, posts it over the core's
//! keep-alive connection to the peer, and settles each instance by the peer's answer.
//!
//! While the outbox is empty the sender waits on its doorbell alone, so an idle core stays idle;
//! otherwise also on a timer set to when the next batch comes due, and the doorbell rings early
//! when a kind fills a batch. A round sends at most one batch of each due kind, so no kind starves
//! another. A round in which anything must go again is followed by a back-off (10 ms, doubling
//! to 1 s, reset by a round that went through): a dead or refusing peer costs about a request a
//! second, and what waits for it stays within the outbox's bounds.

use std::cell::Cell;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use futures_lite::future;
use glommio::timer::sleep;

use super::outbox::{Outbox, Task};
use super::packed::Packer;
use super::reply::{self, Answer, Verdict};
use super::PeerLink;
use crate::http::client::HttpClient;
use crate::metrics::{Dropped, PeerCounters};
use crate::shard_link::WriteOp;

/// The first pause after a round that must be retried, and the longest.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));

/// JSON one request carries at most (past its first instance), well under any peer's body limit.
const MAX_REQUEST_JSON: usize = 1 << 20;

/// Wakes a sender waiting for work.
#[derive(Default)]
pub(super) struct Doorbell {
    rung: Cell<bool>,
    waiter: Cell<Option<Waker>>,
}

impl Doorbell {
    pub(super) fn ring(&self) {
        self.rung.set(true);
        if let Some(waiter) = self.waiter.take() {
            waiter.wake();
        }
    }

    /// Until the bell rings (at once if it rang since the last wait).
    async fn wait(&self) {
        poll_fn(|cx| {
            if self.rung.replace(false) {
                return Poll::Ready(());
            }
            self.waiter.set(Some(cx.waker().clone()));
            Poll::Pending
        })
        .await;
    }
}

/// Sends `link`'s work to its peer over `client`, for as long as the core runs; bodies are
/// packed by the core's `packer`.
pub(super) async fn run(link: Rc<PeerLink>, mut client: HttpClient, packer: Rc<Packer>) {
    let peer = link.peer();
    let paths = WriteOp::ALL.map(|kind| {
        let name = kind.name();
        format!("{}/api/replication/registry/{name}.json", peer.base)
    });
    let mut backoff: Option<Duration> = None;
    let mut failing = false;
    loop {
        until_due(&link).await;
        let mut again = false;
        for kind in WriteOp::ALL {
            if !link.outbox.borrow().is_due(kind, Instant::now()) {
                continue;
            }
            let tasks = link.outbox.borrow_mut().take(kind, MAX_REQUEST_JSON);
            let body = packer.body(kind, &tasks);
            let started = Instant::now();
            let answer = match client.post_packed(&paths[kind.index()], &body).await {
                Ok(mut reply) => {
                    link.counters.record_round_trip(started.elapsed());
                    if failing {
                        log::info!("replication to {} goes through again", peer.url);
                        failing = false;
                    }
                    reply::read(reply.status, &mut reply.body)
                }
                Err(e) => {
                    if !failing {
                        log::warn!("replication to {}: {e}; retrying with back-off", peer.url);
                        failing = true;
                    }
                    Answer::All(Verdict::Retried)
                }
            };
            if matches!(answer, Answer::All(v) if v != Verdict::Delivered) {
                link.counters.record_failed_request();
            }
            let mut outbox = link.outbox.borrow_mut();
            again |= settle(&mut outbox, &link.counters, kind, tasks, &answer);
        }
        backoff = match again {
            false => None,
            true => {
                let pause = backoff.map_or(BACKOFF.0, |b| (b * 2).min(BACKOFF.1));
                sleep(pause).await;
                Some(pause)
            }
        };
    }
}

/// Until a batch of `link`'s outbox is due, dropping what outlived its TTL meanwhile.
async fn until_due(link: &PeerLink) {
    loop {
        let now = Instant::now();
        let due = {
            let mut outbox = link.outbox.borrow_mut();
            outbox.expire(now);
            outbox.next_due()
        };
        match due {
            None => link.doorbell.wait().await,
            Some(at) if at <= now => return,
            Some(at) => future::or(link.doorbell.wait(), sleep(at - now)).await,
        }
    }
}

/// Counts what the peer took or refused of `tasks` (sent as `kind`) and puts back in `outbox`
/// what must go again; whether anything did.
fn settle(
    outbox: &mut Outbox,
    counters: &PeerCounters,
    kind: WriteOp,
    tasks: Vec<Task>,
    answer: &Answer,
) -> bool {
    let verdict = |task: &Task| match answer {
        Answer::All(verdict) => *verdict,
        Answer::Failed(failed) => failed
            .iter()
            .find(|(key, _)| key[..] == *task.update.key())
            .map_or(Verdict::Delivered, |(_, verdict)| *verdict),
    };
    let (mut sent, mut dropped, mut again) = (0, 0, Vec::new());
    for task in tasks {
        match verdict(&task) {
            Verdict::Delivered => sent += 1,
            Verdict::Dropped => dropped += 1,
            Verdict::Retried => again.push(task),
        }
    }
    counters.record_sent(kind, sent);
    counters.record_dropped(Dropped::Refused, kind, dropped);
    if again.is_empty() {
        return false;
    }
    counters.record_retried(kind, again.len() as u64);
    outbox.requeue(kind, again);
    true
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::outbox::Limits;
    use super::super::update::tests::update;
    use super::*;

    fn outbox() -> (Outbox, Arc<PeerCounters>) {
        let counters = Arc::new(PeerCounters::new(Instant::now()));
        let limits = Limits {
            batch: 10,
            delay: Duration::from_millis(5),
            ttl: Duration::from_secs(5),
            max_bytes: usize::MAX,
        };
        (Outbox::new(limits, counters.clone()), counters)
    }

    #[test]
    fn each_instance_is_settled_by_its_own_code() {
        let (mut out, counters) = outbox();
        let now = Instant::now();
        for id in ["a", "b", "c", "d"] {
            out.push(WriteOp::Register, update("s", id, "1"), now);
        }
        let tasks = out.take(WriteOp::Register, usize::MAX);
        let key = |id| update("s", id, "1").key().to_vec();
        let answer = Answer::Failed(vec![
            (key("b"), Verdict::Retried),
            (key("c"), Verdict::Dropped),
            (key("d"), Verdict::Retried),
        ]);
        assert!(settle(
            &mut out,
            &counters,
            WriteOp::Register,
            tasks,
            &answer
        ));
        assert_eq!(counters.sent(WriteOp::Register), 1);
        assert_eq!(counters.dropped(Dropped::Refused, WriteOp::Register), 1);
        assert_eq!(counters.retried(WriteOp::Register), 2);
        let again = out.take(WriteOp::Register, usize::MAX);
        let keys: Vec<&[u8]> = again.iter().map(|t| t.update.key()).collect();
        assert_eq!(keys, [&key("b")[..], &key("d")[..]]);
    }

    #[test]
    fn a_whole_answer_settles_every_instance_alike() {
        let (mut out, counters) = outbox();
        let now = Instant::now();
        let hb = WriteOp::Heartbeat;
        // Settles every pending heartbeat with `verdict`; whether any must go again.
        let answer = |out: &mut Outbox, verdict| {
            let tasks = out.take(hb, usize::MAX);
            settle(out, &counters, hb, tasks, &Answer::All(verdict))
        };
        for id in ["a", "b"] {
            out.push(hb, update("s", id, "1"), now);
        }
        assert!(!answer(&mut out, Verdict::Dropped));
        assert!(out.is_empty());
        out.push(hb, update("s", "c", "1"), now);
        assert!(answer(&mut out, Verdict::Retried));
        assert_eq!(out.queued(hb), 1);
        assert!(!answer(&mut out, Verdict::Delivered));
        assert_eq!(counters.dropped(Dropped::Refused, hb), 2);
        assert_eq!((counters.retried(hb), counters.sent(hb)), (1, 1));
    }
}
