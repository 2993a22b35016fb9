//! One pinned worker thread: its share of the connections on its own mio `Poll`, sending when
//! the pacer says a request is due and recording each reply's verdict. Each connection goes to
//! one of the run's targets (see `scenario::route`), whose headers its requests carry.
//!
//! A request goes to the connection that has been idle longest, so the load spreads evenly over
//! the connections; the connection writes it from the worker's workload, or from its own (see
//! `Workloads`). When none is idle the due requests wait, and keep their intended send times
//! (see `pacing`). A broken connection is reopened when it is next needed.
//!
//! The push and replication scenarios add subscriber connections that send nothing: each `new`
//! change they receive ends the wait of the register request that caused it (see `push`), and
//! counts as a `push` timed from that request's intended send time. A broken subscriber is not
//! reopened; the pushes it would have carried time out.

use crate::clock::{self, Nanos};
use crate::conn::Connection;
use crate::error::Error;
use crate::failure::Failure;
use crate::op::Op;
use crate::pacing::{latency, Pacer};
use crate::progress::{Interval, Snapshot};
use crate::push::Pending;
use crate::reply;
use crate::request::Headers;
use crate::scenario::Workloads;
use crate::tally::Tally;
use crate::websocket::Upgrade;
use crossbeam_channel::Sender;
use mio::{Events, Poll, Token};
use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::{Arc, Barrier};
use std::time::Duration;

const TIMER: Token = Token(usize::MAX);
/// How often timeouts and the progress second are looked at.
const HOUSEKEEPING: Nanos = 10_000_000;
/// A deadline closer than this is polled for without sleeping: arming and reading the timer
/// costs more than the wait, and at high rates requests are due every few microseconds.
const SPIN: Nanos = 20_000;

/// One of the run's targets, as the connections to it need it.
#[derive(Clone)]
pub(crate) struct Destination {
    pub addr: SocketAddr,
    /// The headers of its HTTP requests (its `Host`).
    pub headers: Headers,
    /// Where the connections upgrade to WebSocket; `None` for plain HTTP.
    pub upgrade: Option<Upgrade>,
    /// Where the subscribers connect (subscribed to every service); `None` when the phase has
    /// none.
    pub subscription: Option<Upgrade>,
}

/// What one worker does in one phase.
pub(crate) struct Plan {
    pub core: usize,
    /// The run's targets.
    pub destinations: Vec<Destination>,
    /// The destination of each connection that sends.
    pub connections: Vec<usize>,
    /// The destination of each subscriber (none when the phase has no subscription).
    pub subscribers: Vec<usize>,
    /// This worker's requests per second; `None` for closed loop.
    pub rate: Option<f64>,
    /// Offset of this worker's schedule, as a fraction of its interval.
    pub phase: f64,
    pub workloads: Workloads,
    pub warmup: Duration,
    /// How long to send after the warm-up; `None` to send until the workload runs out.
    pub duration: Option<Duration>,
    pub timeout: Duration,
    /// Where the periods of the measured phase go (progress lines and the per-second series);
    /// `None` in the prefill.
    pub seconds: Option<Sender<Snapshot>>,
    /// Every worker connects first, then all start together.
    pub ready: Arc<Barrier>,
    /// Never sleep in `poll` (`Config::busy_poll`).
    pub busy_poll: bool,
}

struct Slot {
    conn: Option<Connection>,
    /// Its index in `Worker::destinations`.
    to: usize,
    /// A push subscriber: it only receives.
    subscriber: bool,
    request: Vec<u8>,
    in_flight: Option<InFlight>,
}

#[derive(Clone, Copy)]
struct InFlight {
    op: Op,
    /// The intended send time (open loop) or the send time (closed loop).
    counted_from: Nanos,
    sent: Nanos,
    written: bool,
}

/// Where verdicts go: the tally (measured requests only) and the current second (see
/// `progress`).
struct Recorder {
    tally: Tally,
    interval: Option<Interval>,
    measure_from: Nanos,
}

struct Worker {
    poll: Poll,
    destinations: Vec<Destination>,
    timeout: Duration,
    slots: Vec<Slot>,
    idle: VecDeque<usize>,
    /// Connections that could not be opened, back to `idle` after the next wait.
    retry: Vec<usize>,
    in_flight: usize,
    /// Register requests whose push is awaited, when there are subscribers.
    pending: Option<Pending>,
    recorder: Recorder,
}

/// Runs `plan` on the calling thread, pinned to its core.
pub(crate) fn run(mut plan: Plan) -> Result<Tally, Error> {
    core_affinity::set_for_current(core_affinity::CoreId { id: plan.core });
    let worker = Worker::connect(&plan);
    plan.ready.wait();
    worker?.drive(&mut plan)
}

impl Worker {
    fn connect(plan: &Plan) -> Result<Worker, Error> {
        let poll = Poll::new()?;
        let senders = plan.connections.iter().map(|&to| (to, false));
        let subscribers = plan.subscribers.iter().map(|&to| (to, true));
        let slots = senders
            .chain(subscribers)
            .enumerate()
            .map(|(c, (to, subscriber))| {
                let destination = &plan.destinations[to];
                let upgrade = match subscriber {
                    true => destination.subscription.as_ref(),
                    false => destination.upgrade.as_ref(),
                };
                let conn = Connection::open(
                    destination.addr,
                    plan.timeout,
                    upgrade,
                    poll.registry(),
                    Token(c),
                )
                .map_err(|e| Error::Unreachable {
                    target: destination.addr.to_string(),
                    reason: e.to_string(),
                })?;
                Ok(Slot {
                    conn: Some(conn),
                    to,
                    subscriber,
                    request: Vec::with_capacity(1024),
                    in_flight: None,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Worker {
            poll,
            destinations: plan.destinations.clone(),
            timeout: plan.timeout,
            idle: (0..plan.connections.len()).collect(),
            slots,
            retry: Vec::new(),
            in_flight: 0,
            pending: (!plan.subscribers.is_empty()).then(Pending::default),
            recorder: Recorder {
                tally: Tally::default(),
                interval: None,
                measure_from: 0,
            },
        })
    }

    fn drive(mut self, plan: &mut Plan) -> Result<Tally, Error> {
        let start = clock::now();
        let measure_from = start + clock::nanos(plan.warmup);
        let stop_at = plan.duration.map(|d| measure_from + clock::nanos(d));
        self.recorder.measure_from = measure_from;
        self.recorder.interval = match (plan.seconds.take(), stop_at) {
            (Some(tx), Some(stop_at)) => Some(Interval::new(tx, start, measure_from, stop_at)),
            _ => None,
        };
        let mut pacer = match plan.rate {
            Some(rate) => Pacer::open_loop(start, rate, plan.phase),
            None => Pacer::closed_loop(),
        };
        let mut timer = crate::timer::Timer::new(self.poll.registry(), TIMER)?;
        let mut events = Events::with_capacity(1024);
        let mut exhausted = false;
        let mut housekeeping_at = start + HOUSEKEEPING;
        loop {
            let now = clock::now();
            let sending = !exhausted && stop_at.is_none_or(|stop| now < stop);
            if sending {
                exhausted = self.send_due(&mut pacer, &mut plan.workloads, now);
            }
            self.idle.extend(self.retry.drain(..));
            let awaited = self.pending.as_ref().is_some_and(|p| !p.is_empty());
            if !sending && self.in_flight == 0 && !awaited {
                break;
            }
            if now >= housekeeping_at {
                self.expire(now);
                if let Some(interval) = &mut self.recorder.interval {
                    interval.tick(now);
                }
                housekeeping_at = now + HOUSEKEEPING;
            }
            let mut wake = housekeeping_at;
            if sending && !self.idle.is_empty() {
                wake = wake.min(pacer.next_due().unwrap_or(housekeeping_at));
            }
            let wait = if !plan.busy_poll && wake > now + SPIN {
                timer.wake_by(wake, now)?;
                None
            } else {
                Some(Duration::ZERO)
            };
            match self.poll.poll(&mut events, wait) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                result => result?,
            }
            let done = clock::now();
            for event in events.iter() {
                match event.token() {
                    TIMER => timer.expired(),
                    Token(c) => self.on_ready(c, done),
                }
            }
        }
        if let Some(interval) = self.recorder.interval.take() {
            interval.finish();
        }
        Ok(self.recorder.tally)
    }

    /// Sends every request that is due while a connection is idle; `true` once the idle
    /// connection's workload has run out.
    fn send_due(&mut self, pacer: &mut Pacer, workloads: &mut Workloads, now: Nanos) -> bool {
        while let Some(&c) = self.idle.front() {
            let Some(counted_from) = pacer.take(now) else {
                return false;
            };
            let slot = &mut self.slots[c];
            let destination = &self.destinations[slot.to];
            slot.request.clear();
            let Some(op) = workloads
                .of(c)
                .next(&destination.headers, &mut slot.request)
            else {
                return true;
            };
            self.idle.pop_front();
            if let (Some(pending), Op::Register) = (&mut self.pending, op) {
                pending.watch(&slot.request, counted_from);
            }
            if slot.conn.is_none() {
                let registry = self.poll.registry();
                match Connection::open(
                    destination.addr,
                    self.timeout,
                    destination.upgrade.as_ref(),
                    registry,
                    Token(c),
                ) {
                    Ok(conn) => slot.conn = Some(conn),
                    Err(_) => {
                        self.recorder
                            .record(op, counted_from, now, now, Err(Failure::Connect));
                        self.retry.push(c);
                        continue;
                    }
                }
            }
            slot.in_flight = Some(InFlight {
                op,
                counted_from,
                sent: now,
                written: false,
            });
            self.in_flight += 1;
            self.on_ready(c, now);
        }
        false
    }

    /// Moves connection `c` along: finishes writing its request, reads its reply.
    fn on_ready(&mut self, c: usize, now: Nanos) {
        if self.slots[c].subscriber {
            return self.on_push(c, now);
        }
        let slot = &mut self.slots[c];
        let Some(conn) = slot.conn.as_mut() else {
            return;
        };
        let Some(flight) = slot.in_flight.as_mut() else {
            // An idle connection became readable: the server closed it (or sent what nobody
            // asked for). Drop it; it is reopened when next needed.
            if !matches!(conn.read_reply(), Ok(None)) {
                self.close(c);
            }
            return;
        };
        if !flight.written {
            match conn.write(&slot.request) {
                Ok(true) => flight.written = true,
                Ok(false) => return,
                Err(_) => return self.finish(c, now, Err(Failure::Io)),
            }
        }
        match conn.read_reply() {
            Ok(None) => {}
            Ok(Some(reply)) => {
                let verdict = reply::judge(reply.status, reply.body);
                // A reply read in the same pass that sent its request (a server on the same
                // core may answer before the write returns) came after `now`, which was read
                // before the send: time it afresh instead of counting zero.
                let done = if now <= flight.sent {
                    clock::now()
                } else {
                    now
                };
                self.finish(c, done, verdict);
            }
            Err(e) => self.finish(c, now, Err(Failure::of_read(&e))),
        }
    }

    /// Reads the changes subscriber `c` has received and counts those awaited.
    fn on_push(&mut self, c: usize, now: Nanos) {
        let Some(conn) = self.slots[c].conn.as_mut() else {
            return;
        };
        let pending = self.pending.as_mut().expect("subscribers await pushes");
        loop {
            match conn.read_reply() {
                Ok(None) => return,
                Ok(Some(push)) => self.recorder.pushed(pending, push.body, now),
                Err(_) => return self.close(c),
            }
        }
    }

    /// Records the verdict on `c`'s request and makes `c` idle again. A connection whose
    /// request failed is closed: whatever it still holds would be taken for the next reply.
    fn finish(&mut self, c: usize, now: Nanos, verdict: Result<(), Failure>) {
        let Some(flight) = self.slots[c].in_flight.take() else {
            return;
        };
        self.in_flight -= 1;
        let failed = verdict.is_err();
        self.recorder
            .record(flight.op, flight.counted_from, flight.sent, now, verdict);
        if failed {
            self.close(c);
        }
        self.idle.push_back(c);
    }

    fn close(&mut self, c: usize) {
        if let Some(conn) = self.slots[c].conn.take() {
            conn.close(self.poll.registry());
        }
    }

    /// Fails the requests and pushes that have waited longer than the timeout.
    fn expire(&mut self, now: Nanos) {
        let timeout = clock::nanos(self.timeout);
        if let Some(pending) = &mut self.pending {
            self.recorder
                .missing(pending, now.saturating_sub(timeout), now);
        }
        for c in 0..self.slots.len() {
            if matches!(self.slots[c].in_flight, Some(f) if now.saturating_sub(f.sent) > timeout) {
                self.finish(c, now, Err(Failure::Timeout));
            }
        }
    }
}

impl Recorder {
    /// Counts `push` if it is a change `pending` awaits: a `push` timed from its register.
    fn pushed(&mut self, pending: &mut Pending, push: &[u8], now: Nanos) {
        if let Some(since) = pending.arrived(push) {
            self.record(Op::Push, since, since, now, Ok(()));
        }
    }

    /// Fails the pushes `pending` has awaited since before `deadline`: missing, as timeouts.
    fn missing(&mut self, pending: &mut Pending, deadline: Nanos, now: Nanos) {
        for since in pending.expire(deadline) {
            self.record(Op::Push, since, since, now, Err(Failure::Timeout));
        }
    }

    /// Records a verdict; the latency counts from `counted_from` (the intended send time in
    /// open loop), the response time from `sent`.
    fn record(
        &mut self,
        op: Op,
        counted_from: Nanos,
        sent: Nanos,
        done: Nanos,
        verdict: Result<(), Failure>,
    ) {
        let measured = counted_from >= self.measure_from;
        // Pushes are not requests: the progress and the per-second series leave them out.
        let interval = self.interval.as_mut().filter(|_| op != Op::Push);
        match verdict {
            Ok(()) => {
                let waited = latency(counted_from, done);
                if measured {
                    self.tally.success(op, waited, latency(sent, done));
                }
                if let Some(i) = interval {
                    i.success(done, waited, measured);
                }
            }
            Err(failure) => {
                if measured {
                    self.tally.failure(op, failure);
                }
                if let Some(i) = interval {
                    i.failure(done, measured);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::report::Report;
    use crate::scenario::{self, Kind, Part, Share};

    /// The replication scenario's bookkeeping without sockets: every register is awaited from
    /// its intended send time; the `new` change the other node pushes ends the wait and is a
    /// `push` sample of the time between; other changes, and a second push of one register,
    /// count for nothing; a push that never comes is a `timeout` failure of the `push` row.
    #[test]
    fn replication_pushes_are_timed_from_their_register_and_missing_ones_counted() {
        let config = Config {
            scenario: Share::alone(Kind::Replication),
            more_targets: vec!["http://127.0.0.1:8081".into()],
            instances: 1000,
            ..Config::default()
        };
        config.validate().unwrap();
        let targets = config.resolve_targets().unwrap();
        let headers = scenario::headers(&config, &targets[0]);
        let mut workloads = scenario::measurement(&config, Part { index: 0, count: 1 }, 1);
        let mut pending = Pending::default();
        let mut recorder = Recorder {
            tally: Tally::default(),
            interval: None,
            measure_from: 0,
        };
        const MS: Nanos = 1_000_000;
        let mut registered = vec![];
        for i in 0..1000 {
            let mut request = vec![];
            let op = workloads.of(0).next(&headers, &mut request);
            assert_eq!(op, Some(Op::Register));
            let text = String::from_utf8(request.clone()).unwrap();
            assert!(text.starts_with(
                "POST /api/registry/register.json HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
            ));
            let body: serde_json::Value =
                serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
            let id = body["instances"][0]["instanceId"]
                .as_str()
                .unwrap()
                .to_owned();
            let sent = i * MS;
            pending.watch(&request, sent);
            registered.push((id, sent));
        }
        let change = |kind: &str, id: &str| {
            format!(
                r#"{{"changeTime":1,"changeType":"{kind}","instance":{{"instanceId":"{id}","ip":"x"}}}}"#
            )
        };
        // Instance i is pushed (i + 1) × 10 µs after its register, but every hundredth never.
        for (i, (id, sent)) in registered.iter().enumerate() {
            if i % 100 == 99 {
                continue;
            }
            let arrived = sent + (i as Nanos + 1) * 10_000;
            recorder.pushed(&mut pending, change("new", id).as_bytes(), arrived);
        }
        let (first, sent) = &registered[0];
        recorder.pushed(&mut pending, change("new", first).as_bytes(), sent + 5 * MS);
        recorder.pushed(
            &mut pending,
            change("delete", first).as_bytes(),
            sent + 5 * MS,
        );
        recorder.pushed(&mut pending, change("new", "10.9.9.9:1").as_bytes(), 0);
        let timeout = 2_000 * MS;
        let end = 1000 * MS;
        recorder.missing(&mut pending, end.saturating_sub(timeout), end);
        assert_eq!(recorder.tally.ops().count(), 1, "not yet missing");
        let end = 3000 * MS;
        recorder.missing(&mut pending, end - timeout, end);
        assert!(pending.is_empty());

        let report = Report::new(config, None, &recorder.tally);
        let push = report.op("push").unwrap();
        assert_eq!((push.ok, push.failed), (990, 10));
        assert_eq!(push.failures["timeout"], 10);
        let latency = push.latency_us.as_ref().unwrap();
        let near = |got: f64, want: f64| (got - want).abs() <= want * 0.01;
        assert!(near(latency.min, 10.0), "{latency:?}");
        assert!(near(latency.p50, 5_000.0), "{latency:?}");
        assert!(near(latency.p99, 9_900.0), "{latency:?}");
        assert!(near(latency.p999, 9_990.0), "{latency:?}");
        assert!(report.table().contains("push failed: timeout x10"));
    }
}
