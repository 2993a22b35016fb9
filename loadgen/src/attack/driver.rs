//! The attack thread: opens every attacker's connections (a bounded number connecting at a
//! time, so ten thousand do not overflow the server's accept backlog), sends on each kind's
//! pace, reopens what the server closes, and counts how each connection ended.
//!
//! Time is kept in one heap of `(due, connection)`: when a connection is due it sends its next
//! bytes, or reconnects if the server closed it. A connection is due once at a time (an entry
//! that is not its latest is skipped), and an idle one is never due while open.

use super::hostile::Hostile;
use super::outcome::{AttackerReport, Outcome};
use super::payload::{self, EndlessHead, SLOWLORIS_BYTES};
use super::{Attacker, Hostility};
use crate::clock::{self, Nanos};
use crate::error::Error;
use mio::{Events, Poll, Token};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Connection attempts in progress at once.
const CONNECTING_AT_ONCE: usize = 256;
/// Wait before trying again after a failed attempt, and before an idle connection reopens.
const RETRY: Nanos = 100_000_000;
/// The longest the thread sleeps before it looks at the stop flag.
const STOP_CHECK: Nanos = 50_000_000;

/// The running attack; [`Siege::stop`] ends it and reports.
pub struct Siege {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<Vec<AttackerReport>, Error>>,
}

impl Siege {
    /// Closes every hostile connection and says how each kind fared.
    pub fn stop(self) -> Result<Vec<AttackerReport>, Error> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the attack thread panicked")
    }
}

/// Starts `attackers` against `addr` (`host` is what a slowloris puts in its `Host` header) and
/// returns once every connection has been tried once, so the attack is in place before the
/// measured load begins.
pub fn start(
    attackers: &[Attacker],
    addr: SocketAddr,
    host: &str,
    seed: u64,
) -> Result<Siege, Error> {
    let mut driver = Driver::new(attackers, addr, host, seed)?;
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready) = mpsc::channel();
    let flag = stop.clone();
    let thread = thread::Builder::new()
        .name("loadgen-attack".into())
        .spawn(move || driver.run(&flag, ready_tx))?;
    // The thread drops the sender once every connection was tried, or when it failed.
    let _ = ready.recv();
    if thread.is_finished() {
        return Err(thread
            .join()
            .expect("the attack thread panicked")
            .err()
            .unwrap_or_else(|| {
                Error::Setup(std::io::Error::other("the attack thread stopped early"))
            }));
    }
    Ok(Siege { stop, thread })
}

struct Slot {
    /// Index into `Driver::attackers`.
    attacker: usize,
    conn: Option<Hostile>,
    /// Whether the first connection attempt has ended, either way.
    tried: bool,
    /// When the connection is next due; entries of the heap for other times are stale.
    due: Option<Nanos>,
}

struct Driver {
    poll: Poll,
    addr: SocketAddr,
    attackers: Vec<Attacker>,
    outcomes: Vec<Outcome>,
    slots: Vec<Slot>,
    due: BinaryHeap<Reverse<(Nanos, usize)>>,
    /// Connections waiting for their turn to connect.
    waiting: VecDeque<usize>,
    connecting: usize,
    untried: usize,
    head: EndlessHead,
    rng: fastrand::Rng,
    scratch: Vec<u8>,
    out: Vec<u8>,
}

impl Driver {
    fn new(
        attackers: &[Attacker],
        addr: SocketAddr,
        host: &str,
        seed: u64,
    ) -> Result<Driver, Error> {
        let slots: Vec<Slot> = attackers
            .iter()
            .enumerate()
            .flat_map(|(a, attacker)| {
                (0..attacker.connections).map(move |_| Slot {
                    attacker: a,
                    conn: None,
                    tried: false,
                    due: None,
                })
            })
            .collect();
        Ok(Driver {
            poll: Poll::new()?,
            addr,
            attackers: attackers.to_vec(),
            outcomes: attackers.iter().map(|_| Outcome::new()).collect(),
            waiting: (0..slots.len()).collect(),
            untried: slots.len(),
            slots,
            due: BinaryHeap::new(),
            connecting: 0,
            head: EndlessHead::new(host),
            rng: fastrand::Rng::with_seed(seed),
            scratch: vec![0; 64 * 1024],
            out: Vec::with_capacity(1024),
        })
    }

    fn run(
        &mut self,
        stop: &AtomicBool,
        ready: mpsc::Sender<()>,
    ) -> Result<Vec<AttackerReport>, Error> {
        let mut ready = Some(ready);
        let mut events = Events::with_capacity(1024);
        while !stop.load(Ordering::Relaxed) {
            let now = clock::now();
            while let Some(&Reverse((at, s))) = self.due.peek() {
                if at > now {
                    break;
                }
                self.due.pop();
                if self.slots[s].due == Some(at) {
                    self.slots[s].due = None;
                    self.on_due(s, now);
                }
            }
            while self.connecting < CONNECTING_AT_ONCE {
                let Some(s) = self.waiting.pop_front() else {
                    break;
                };
                self.connect(s, now);
            }
            if self.untried == 0 {
                ready.take();
            }
            let wake = self.due.peek().map_or(STOP_CHECK, |Reverse((at, _))| {
                at.saturating_sub(now).min(STOP_CHECK)
            });
            match self
                .poll
                .poll(&mut events, Some(Duration::from_nanos(wake)))
            {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                result => result?,
            }
            let now = clock::now();
            for event in events.iter() {
                self.on_ready(event.token().0, now);
            }
        }
        Ok(self.report())
    }

    /// The connection's pace came up: it sends, or reconnects if the server closed it.
    fn on_due(&mut self, s: usize, now: Nanos) {
        match &self.slots[s].conn {
            None => self.waiting.push_back(s),
            Some(conn) if conn.is_open() => self.send(s, now),
            // Still connecting: it sends once established.
            Some(_) => {}
        }
    }

    fn connect(&mut self, s: usize, now: Nanos) {
        match Hostile::connect(self.addr, self.poll.registry(), Token(s)) {
            Ok(conn) => {
                self.slots[s].conn = Some(conn);
                self.connecting += 1;
            }
            Err(_) => self.failed_attempt(s, now),
        }
    }

    fn failed_attempt(&mut self, s: usize, now: Nanos) {
        let a = self.slots[s].attacker;
        self.outcomes[a].connect_failed();
        self.tried(s);
        let wait = clock::nanos(self.attackers[a].every).max(RETRY);
        self.schedule(s, now + wait);
    }

    /// Makes `at` the one time connection `s` is next due.
    fn schedule(&mut self, s: usize, at: Nanos) {
        self.slots[s].due = Some(at);
        self.due.push(Reverse((at, s)));
    }

    fn tried(&mut self, s: usize) {
        if !std::mem::replace(&mut self.slots[s].tried, true) {
            self.untried -= 1;
        }
    }

    fn on_ready(&mut self, s: usize, now: Nanos) {
        let Some(conn) = self.slots[s].conn.as_mut() else {
            return;
        };
        if !conn.is_open() {
            match conn.established(now) {
                Ok(false) => return,
                Ok(true) => {
                    self.connecting -= 1;
                    self.outcomes[self.slots[s].attacker].opened();
                    self.tried(s);
                    self.send(s, now);
                }
                Err(_) => {
                    self.connecting -= 1;
                    if let Some(conn) = self.slots[s].conn.take() {
                        conn.close(self.poll.registry());
                    }
                    return self.failed_attempt(s, now);
                }
            }
        }
        let Some(conn) = self.slots[s].conn.as_mut() else {
            return;
        };
        let drained = conn.drain(&mut self.scratch);
        let a = self.slots[s].attacker;
        if let Some(status) = drained.reply {
            self.outcomes[a].reply(status);
        }
        if drained.closed {
            self.closed_by_server(s, now);
        }
    }

    /// Sends the connection's next bytes and schedules the ones after.
    fn send(&mut self, s: usize, now: Nanos) {
        let attacker = self.attackers[self.slots[s].attacker];
        let Some(conn) = self.slots[s].conn.as_mut() else {
            return;
        };
        self.out.clear();
        match attacker.kind {
            Hostility::Idle => return,
            Hostility::Slowloris => self.head.bytes(conn.sent, SLOWLORIS_BYTES, &mut self.out),
            Hostility::Garbage => payload::garbage(&mut self.rng, &mut self.out),
        }
        match conn.send(&self.out) {
            Ok(n) => self.outcomes[self.slots[s].attacker].sent(n),
            Err(_) => return self.closed_by_server(s, now),
        }
        self.schedule(s, now + clock::nanos(attacker.every));
    }

    fn closed_by_server(&mut self, s: usize, now: Nanos) {
        let Some(conn) = self.slots[s].conn.take() else {
            return;
        };
        let a = self.slots[s].attacker;
        self.outcomes[a].closed_by_server(conn.lifetime(now));
        conn.close(self.poll.registry());
        let wait = match clock::nanos(self.attackers[a].every) {
            0 => RETRY,
            every => every,
        };
        self.schedule(s, now + wait);
    }

    /// Every kind's outcome; the connections still open are closed as the driver drops.
    fn report(&self) -> Vec<AttackerReport> {
        self.attackers
            .iter()
            .enumerate()
            .map(|(a, attacker)| {
                let open = self
                    .slots
                    .iter()
                    .filter(|s| s.attacker == a && s.conn.as_ref().is_some_and(Hostile::is_open))
                    .count();
                self.outcomes[a].report(attacker, open as u64)
            })
            .collect()
    }
}
