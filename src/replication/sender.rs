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

use super::outbox::Task;
use super::reply::{self, Answer, Verdict};
use super::{kind_index, kind_name, PeerLink, KINDS};
use crate::http::client::HttpClient;
use crate::metrics::Dropped;
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

/// Sends `link`'s work to its peer over `client`, for as long as the core runs.
pub(super) async fn run(link: Rc<PeerLink>, mut client: HttpClient) {
    let peer = link.peer();
    let paths = KINDS.map(|kind| {
        let name = kind_name(kind);
        format!("{}/api/replication/registry/{name}.json", peer.base)
    });
    let mut body = Vec::new();
    let mut backoff: Option<Duration> = None;
    let mut failing = false;
    loop {
        until_due(&link).await;
        let mut again = false;
        for kind in KINDS {
            if !link.outbox.borrow().is_due(kind, Instant::now()) {
                continue;
            }
            let tasks = link.outbox.borrow_mut().take(kind, MAX_REQUEST_JSON);
            write_body(&mut body, &tasks);
            let started = Instant::now();
            let answer = match client.post_json(&paths[kind_index(kind)], &body).await {
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
            again |= settle(&link, kind, tasks, &answer);
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

/// `{"instances":[...]}` of `tasks`, in `body` (emptied first).
fn write_body(body: &mut Vec<u8>, tasks: &[Task]) {
    body.clear();
    body.extend_from_slice(br#"{"instances":["#);
    for (i, task) in tasks.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(task.update.json());
    }
    body.extend_from_slice(b"]}");
}

/// Counts what the peer took or refused of `tasks` (sent as `kind`) and puts back what must go
/// again; whether anything did.
fn settle(link: &PeerLink, kind: WriteOp, tasks: Vec<Task>, answer: &Answer) -> bool {
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
    let counters = &link.counters;
    counters.record_sent(kind, sent);
    counters.record_dropped(Dropped::Refused, kind, dropped);
    if again.is_empty() {
        return false;
    }
    counters.record_retried(kind, again.len() as u64);
    link.outbox.borrow_mut().requeue(kind, again);
    true
}
