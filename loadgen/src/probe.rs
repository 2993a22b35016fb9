//! The monitoring probe (`--probe 250ms`): while the load and any attack run, one thread fetches
//! `/health` and `/metrics` every interval on a keep-alive connection of its own, as a
//! monitoring system would, and times each reply. It shows whether the registry stays
//! observable when it is overloaded or attacked.

use crate::clock::{self, Nanos};
use crate::config::Target;
use crate::conn::Connection;
use crate::failure::Failure;
use crate::report::Percentiles;
use crate::tally::histogram;
use hdrhistogram::Histogram;
use mio::{Events, Poll, Token};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// What the probe fetches, in this order, every interval.
const PATHS: [&str; 2] = ["/health", "/metrics"];
/// The longest the thread sleeps before it looks at the stop flag.
const STOP_CHECK: Nanos = 50_000_000;

/// The running probe; [`Probe::stop`] ends it and reports.
pub(crate) struct Probe {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<ProbeReport>>,
}

/// One probed path: its replies over the whole run, warm-up included.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeReport {
    pub path: &'static str,
    /// Replies with HTTP 200.
    pub ok: u64,
    pub failed: u64,
    pub failures: BTreeMap<String, u64>,
    /// From sending the request to the whole reply, of the successful ones.
    pub latency_us: Option<Percentiles>,
}

struct Tally {
    latency: Histogram<u64>,
    failures: BTreeMap<Failure, u64>,
}

impl Probe {
    /// Starts probing `target` every `every`; a reply later than `timeout` fails.
    pub(crate) fn start(every: Duration, target: &Target, timeout: Duration) -> io::Result<Probe> {
        let prober = Prober {
            poll: Poll::new()?,
            addr: target.addr,
            timeout,
            conn: None,
        };
        let requests: Vec<Vec<u8>> = PATHS
            .iter()
            .map(|p| format!("GET {p} HTTP/1.1\r\nHost: {}\r\n\r\n", target.host).into_bytes())
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::Builder::new()
            .name("loadgen-probe".into())
            .spawn(move || prober.run(&requests, clock::nanos(every).max(1), &flag))?;
        Ok(Probe { stop, thread })
    }

    pub(crate) fn stop(self) -> Vec<ProbeReport> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the probe thread panicked")
    }
}

struct Prober {
    poll: Poll,
    addr: std::net::SocketAddr,
    timeout: Duration,
    conn: Option<Connection>,
}

impl Prober {
    /// Fetches every path once per `every` nanoseconds (skipping turns it was too slow for)
    /// until `stop` is set.
    fn run(mut self, requests: &[Vec<u8>], every: Nanos, stop: &AtomicBool) -> Vec<ProbeReport> {
        let mut tallies: Vec<Tally> = PATHS
            .iter()
            .map(|_| Tally {
                latency: histogram(),
                failures: BTreeMap::new(),
            })
            .collect();
        let mut next = clock::now();
        while !stop.load(Ordering::Relaxed) {
            let now = clock::now();
            if now < next {
                thread::sleep(Duration::from_nanos((next - now).min(STOP_CHECK)));
                continue;
            }
            for (request, tally) in requests.iter().zip(&mut tallies) {
                let sent = clock::now();
                match self.fetch(request) {
                    Ok(()) => tally
                        .latency
                        .saturating_record((clock::now() - sent).max(1)),
                    Err(f) => *tally.failures.entry(f).or_insert(0) += 1,
                }
            }
            next += (clock::now().saturating_sub(next) / every + 1) * every;
        }
        PATHS
            .iter()
            .zip(&tallies)
            .map(|(path, t)| ProbeReport {
                path,
                ok: t.latency.len(),
                failed: t.failures.values().sum(),
                failures: t
                    .failures
                    .iter()
                    .map(|(f, n)| (f.to_string(), *n))
                    .collect(),
                latency_us: (!t.latency.is_empty()).then(|| Percentiles::of(&t.latency)),
            })
            .collect()
    }

    /// One request and its reply; any failure closes the connection (the next fetch reopens it).
    fn fetch(&mut self, request: &[u8]) -> Result<(), Failure> {
        let result = self.exchange(request);
        if result.is_err() {
            if let Some(conn) = self.conn.take() {
                conn.close(self.poll.registry());
            }
        }
        result
    }

    fn exchange(&mut self, request: &[u8]) -> Result<(), Failure> {
        let deadline = clock::now() + clock::nanos(self.timeout);
        if self.conn.is_none() {
            let conn = Connection::open(
                self.addr,
                self.timeout,
                None,
                self.poll.registry(),
                Token(0),
            )
            .map_err(|_| Failure::Connect)?;
            self.conn = Some(conn);
        }
        let mut events = Events::with_capacity(8);
        let mut written = false;
        loop {
            let conn = self.conn.as_mut().expect("opened above");
            if !written {
                written = conn.write(request).map_err(|_| Failure::Io)?;
            }
            if written {
                match conn.read_reply() {
                    Ok(Some(reply)) if reply.status == 200 => return Ok(()),
                    Ok(Some(reply)) => return Err(Failure::Http(reply.status)),
                    Ok(None) => {}
                    Err(e) => return Err(Failure::of_read(&e)),
                }
            }
            let now = clock::now();
            if now >= deadline {
                return Err(Failure::Timeout);
            }
            match self
                .poll
                .poll(&mut events, Some(Duration::from_nanos(deadline - now)))
            {
                Err(e) if e.kind() != io::ErrorKind::Interrupted => return Err(Failure::Io),
                _ => {}
            }
        }
    }
}
