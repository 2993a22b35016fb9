//! Request counters, latency histograms and connection gauges, per core, in Prometheus form.
//!
//! Each core writes only its own slots (relaxed atomics, never contended); `/metrics` reads every
//! core's slots and asks every shard for its registry figures, so the export is real and
//! complete whichever core serves it. Replication to each peer is counted the same way: one
//! [`PeerCounters`] per core and peer, summed by peer.
//!
//! A request is counted by endpoint and by its reply's [`Outcome`] in one array indexed by enum
//! values (endpoint, status, error code), so the hot path builds no label string; the labels are
//! written at scrape time, and failures only once they happened. The `process_*` families and
//! `artemis_build_info` come from [`process`].

mod process;

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use artemis_shards::{ErrorCode, Merged, ShardStats};

use crate::limits::Limit;
use crate::rate_limit::LimitedOp;

use crate::router::{Endpoint, WsEndpoint};
use crate::shard_link::WriteOp;
use crate::transport::uring::RECV_BUFFER_EXHAUSTED;

/// Upper bounds of the latency buckets, in microseconds: 1-2.5-5 steps, so that no bucket is
/// more than 2.5 times the one before it.
const BUCKETS_US: [u64; 14] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000,
];

/// HTTP statuses the server answers without reaching an endpoint.
pub(crate) const PROTOCOL_ERRORS: [u16; 8] = [400, 404, 405, 408, 413, 415, 431, 501];

const ENDPOINTS: usize = Endpoint::ALL.len();

#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    fn record(&self, took: Duration) {
        let us = took.as_micros() as u64;
        let bucket = BUCKETS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(BUCKETS_US.len());
        self.buckets[bucket].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }
}

/// What a reply's `responseStatus` said: Java's three statuses, a failure with its error code.
/// A `partial_fail` (a registry write with failed instances) carries the code of its first
/// failed instance, since its own `errorCode` is `partial_fail` too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    PartialFail(ErrorCode),
    Fail(ErrorCode),
}

impl Outcome {
    /// The `outcome` labels, in the order [`EndpointCounters::outcomes`] keeps them.
    const NAMES: [&'static str; 3] = ["success", "partial_fail", "fail"];

    /// The outcome's `[status][code]` place.
    fn slot(self) -> (usize, usize) {
        match self {
            Outcome::Success => (0, ErrorCode::Success as usize),
            Outcome::PartialFail(code) => (1, code as usize),
            Outcome::Fail(code) => (2, code as usize),
        }
    }
}

/// One endpoint's requests on one core: how many by outcome, and how long they took.
#[derive(Default)]
struct EndpointCounters {
    /// `[status][code]`, as [`Outcome::slot`] places them.
    outcomes: [[AtomicU64; ErrorCode::ALL.len()]; Outcome::NAMES.len()],
    latency: Histogram,
}

impl EndpointCounters {
    /// Requests of any outcome.
    fn requests(&self) -> u64 {
        self.outcomes
            .iter()
            .flatten()
            .map(|n| n.load(Relaxed))
            .sum()
    }
}

/// Every endpoint's counters, by [`Endpoint::index`]. Made with `from_fn`: `Default` of an array
/// stops at 32 elements, and there are more endpoints.
struct PerEndpoint([EndpointCounters; ENDPOINTS]);

impl Default for PerEndpoint {
    fn default() -> PerEndpoint {
        PerEndpoint(std::array::from_fn(|_| EndpointCounters::default()))
    }
}

/// One core's counters.
#[derive(Default)]
pub(crate) struct CoreMetrics {
    endpoints: PerEndpoint,
    protocol_errors: [AtomicU64; PROTOCOL_ERRORS.len()],
    connections_open: AtomicU64,
    connections_accepted: AtomicU64,
    websocket_sessions: [AtomicU64; WsEndpoint::ALL.len()],
    pushes: AtomicU64,
    push_overflows: AtomicU64,
    /// Heartbeat sessions this core moved to the core that owns their instances.
    websocket_moves: AtomicU64,
    /// Keep-alive HTTP connections this core moved to the core that owns their writes.
    connection_moves: AtomicU64,
    /// WebSocket sessions closed for a protocol violation, and for a frame or message too large.
    websocket_refusals: [AtomicU64; 2],
    rate_limited: [AtomicU64; LimitedOp::ALL.len()],
    limits_hit: [AtomicU64; Limit::ALL.len()],
}

impl CoreMetrics {
    /// A request answered with `outcome` after `took`.
    pub(crate) fn record_request(&self, endpoint: Endpoint, outcome: Outcome, took: Duration) {
        let counters = &self.endpoints.0[endpoint.index()];
        let (status, code) = outcome.slot();
        counters.outcomes[status][code].fetch_add(1, Relaxed);
        counters.latency.record(took);
    }

    pub(crate) fn record_protocol_error(&self, status: u16) {
        if let Some(i) = PROTOCOL_ERRORS.iter().position(|&s| s == status) {
            self.protocol_errors[i].fetch_add(1, Relaxed);
        }
    }

    /// A request its rate limiter refused.
    pub(crate) fn record_rate_limited(&self, op: LimitedOp) {
        self.rate_limited[op.index()].fetch_add(1, Relaxed);
    }

    /// A limit that bit a connection.
    pub(crate) fn record_limit(&self, limit: Limit) {
        self.limits_hit[limit.index()].fetch_add(1, Relaxed);
    }

    pub(crate) fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Relaxed);
        self.connections_accepted.fetch_add(1, Relaxed);
    }

    /// A connection another core moved here (it was counted as accepted there).
    pub(crate) fn connection_moved_in(&self) {
        self.connections_open.fetch_add(1, Relaxed);
    }

    /// A heartbeat session left for the core that owns its instances.
    pub(crate) fn websocket_moved(&self) {
        self.websocket_moves.fetch_add(1, Relaxed);
    }

    /// A keep-alive HTTP connection left for the core that owns its writes.
    pub(crate) fn connection_moved(&self) {
        self.connection_moves.fetch_add(1, Relaxed);
    }

    pub(crate) fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Relaxed);
    }

    /// Client connections open on this core now.
    pub(crate) fn connections_open(&self) -> u64 {
        self.connections_open.load(Relaxed)
    }

    pub(crate) fn websocket_opened(&self, endpoint: WsEndpoint) {
        self.websocket_sessions[endpoint.index()].fetch_add(1, Relaxed);
    }

    pub(crate) fn websocket_closed(&self, endpoint: WsEndpoint) {
        self.websocket_sessions[endpoint.index()].fetch_sub(1, Relaxed);
    }

    /// `n` changes written to a subscriber.
    pub(crate) fn pushed(&self, n: u64) {
        self.pushes.fetch_add(n, Relaxed);
    }

    /// A subscriber closed because its push inbox overflowed.
    pub(crate) fn push_overflowed(&self) {
        self.push_overflows.fetch_add(1, Relaxed);
    }

    /// A WebSocket session closed for what its client sent: too large, or against the protocol.
    pub(crate) fn websocket_refused(&self, too_big: bool) {
        self.websocket_refusals[usize::from(too_big)].fetch_add(1, Relaxed);
    }
}

/// Why replication work for a peer was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dropped {
    /// The outbox was full: the oldest work made room.
    Full,
    /// Not delivered within `--replication-task-ttl`.
    Expired,
    /// The peer refused it for good.
    Refused,
}

impl Dropped {
    const ALL: [Dropped; 3] = [Dropped::Full, Dropped::Expired, Dropped::Refused];

    fn name(self) -> &'static str {
        match self {
            Dropped::Full => "full",
            Dropped::Expired => "ttl",
            Dropped::Refused => "permanent",
        }
    }
}

/// One core's replication to one peer: its outbox as it is now, and what became of its work.
pub(crate) struct PeerCounters {
    /// The oldest pending task's submission is kept as nanoseconds since this instant.
    anchor: Instant,
    queued: AtomicU64,
    queued_bytes: AtomicU64,
    /// Nanoseconds from `anchor` to the oldest pending task's submission, plus one (0: none).
    oldest: AtomicU64,
    sent: [AtomicU64; WriteOp::ALL.len()],
    retried: [AtomicU64; WriteOp::ALL.len()],
    coalesced: [AtomicU64; WriteOp::ALL.len()],
    dropped: [[AtomicU64; WriteOp::ALL.len()]; Dropped::ALL.len()],
    failed_requests: AtomicU64,
    round_trip: Histogram,
}

impl PeerCounters {
    pub(crate) fn new(anchor: Instant) -> PeerCounters {
        PeerCounters {
            anchor,
            queued: AtomicU64::default(),
            queued_bytes: AtomicU64::default(),
            oldest: AtomicU64::default(),
            sent: Default::default(),
            retried: Default::default(),
            coalesced: Default::default(),
            dropped: Default::default(),
            failed_requests: AtomicU64::default(),
            round_trip: Histogram::default(),
        }
    }

    /// The outbox holds `instances` tasks counting `bytes`, the oldest submitted at `oldest`.
    pub(crate) fn set_queue(&self, instances: usize, bytes: usize, oldest: Option<Instant>) {
        self.queued.store(instances as u64, Relaxed);
        self.queued_bytes.store(bytes as u64, Relaxed);
        let at = oldest.map_or(0, |t| {
            t.saturating_duration_since(self.anchor).as_nanos() as u64 + 1
        });
        self.oldest.store(at, Relaxed);
    }

    /// Instances pending, and their bytes.
    pub(crate) fn queue(&self) -> (u64, u64) {
        (self.queued.load(Relaxed), self.queued_bytes.load(Relaxed))
    }

    /// When the oldest pending task was submitted.
    pub(crate) fn oldest(&self) -> Option<Instant> {
        match self.oldest.load(Relaxed) {
            0 => None,
            at => Some(self.anchor + Duration::from_nanos(at - 1)),
        }
    }

    /// A task of `kind` replaced or absorbed by another for its instance.
    pub(crate) fn record_coalesced(&self, kind: WriteOp) {
        self.coalesced[kind.index()].fetch_add(1, Relaxed);
    }

    pub(crate) fn coalesced(&self, kind: WriteOp) -> u64 {
        self.coalesced[kind.index()].load(Relaxed)
    }

    pub(crate) fn record_dropped(&self, why: Dropped, kind: WriteOp, n: u64) {
        self.dropped[why as usize][kind.index()].fetch_add(n, Relaxed);
    }

    pub(crate) fn dropped(&self, why: Dropped, kind: WriteOp) -> u64 {
        self.dropped[why as usize][kind.index()].load(Relaxed)
    }

    /// `n` instances of `kind` the peer took.
    pub(crate) fn record_sent(&self, kind: WriteOp, n: u64) {
        self.sent[kind.index()].fetch_add(n, Relaxed);
    }

    pub(crate) fn sent(&self, kind: WriteOp) -> u64 {
        self.sent[kind.index()].load(Relaxed)
    }

    /// `n` instances of `kind` put back to be sent again.
    pub(crate) fn record_retried(&self, kind: WriteOp, n: u64) {
        self.retried[kind.index()].fetch_add(n, Relaxed);
    }

    pub(crate) fn retried(&self, kind: WriteOp) -> u64 {
        self.retried[kind.index()].load(Relaxed)
    }

    /// A request that failed whole: no reply, not a 200, or a `fail` status.
    pub(crate) fn record_failed_request(&self) {
        self.failed_requests.fetch_add(1, Relaxed);
    }

    pub(crate) fn failed_requests(&self) -> u64 {
        self.failed_requests.load(Relaxed)
    }

    /// A request answered after `took`.
    pub(crate) fn record_round_trip(&self, took: Duration) {
        self.round_trip.record(took);
    }
}

/// Replication to every peer, from every core.
struct Replication {
    /// The peers' URLs, by peer index.
    peers: Vec<String>,
    /// `counters[core][peer index]`.
    counters: Vec<Vec<Arc<PeerCounters>>>,
}

/// What one anti-entropy comparison with a peer found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DigestResult {
    /// The digests were equal: nothing pulled.
    Equal,
    /// Some services differed and were pulled.
    Pulled,
    /// The peer could not be compared.
    Failed,
}

impl DigestResult {
    const ALL: [DigestResult; 3] = [
        DigestResult::Equal,
        DigestResult::Pulled,
        DigestResult::Failed,
    ];

    /// A series per result: its label, and `value` of it.
    fn series(value: impl Fn(DigestResult) -> u64) -> Vec<(String, f64)> {
        let each = |result: DigestResult| {
            let label = format!(",result=\"{}\"", result.name());
            (label, value(result) as f64)
        };
        DigestResult::ALL.map(each).to_vec()
    }

    fn name(self) -> &'static str {
        match self {
            DigestResult::Equal => "equal",
            DigestResult::Pulled => "pulled",
            DigestResult::Failed => "failed",
        }
    }
}

/// Anti-entropy with one peer.
#[derive(Default)]
pub(crate) struct DigestCounters {
    /// When the last comparison ended, in ms since the epoch (0: never).
    last_ms: AtomicU64,
    /// Its result's place in `DigestResult::ALL`.
    last_result: AtomicU64,
    comparisons: [AtomicU64; DigestResult::ALL.len()],
    services_pulled: AtomicU64,
    /// Instances the merges added, replaced and removed.
    merged: [AtomicU64; 3],
}

impl DigestCounters {
    /// A comparison that ended at `at_ms` with `result`, `services` pulled and `merged`.
    pub(crate) fn record(&self, at_ms: u64, result: DigestResult, services: u64, merged: Merged) {
        self.last_ms.store(at_ms, Relaxed);
        self.last_result.store(result as u64, Relaxed);
        self.comparisons[result as usize].fetch_add(1, Relaxed);
        self.services_pulled.fetch_add(services, Relaxed);
        for (n, counter) in [merged.added, merged.replaced, merged.removed]
            .into_iter()
            .zip(&self.merged)
        {
            counter.fetch_add(n, Relaxed);
        }
    }
}

/// Anti-entropy with every peer.
struct AntiEntropy {
    /// The peers' URLs, by peer index.
    urls: Vec<String>,
    /// By peer index.
    peers: Vec<Arc<DigestCounters>>,
}

/// Every core's counters, shared by all cores.
pub(crate) struct Metrics {
    cores: Vec<CoreMetrics>,
    /// Made by the first core to start, once the cluster is known.
    replication: OnceLock<Replication>,
    /// Made by the core that runs anti-entropy.
    anti_entropy: OnceLock<AntiEntropy>,
}

impl Metrics {
    pub(crate) fn new(cores: usize) -> Metrics {
        Metrics {
            cores: (0..cores).map(|_| CoreMetrics::default()).collect(),
            replication: OnceLock::new(),
            anti_entropy: OnceLock::new(),
        }
    }

    pub(crate) fn core(&self, index: usize) -> &CoreMetrics {
        &self.cores[index]
    }

    /// Core `core`'s counters of replication to each peer (`peers`: their URLs), by peer index.
    pub(crate) fn peer_counters(&self, peers: &[&str], core: usize) -> &[Arc<PeerCounters>] {
        let replication = self.replication.get_or_init(|| {
            let anchor = Instant::now();
            let counters = self.cores.iter().map(|_| {
                let peer = |_| Arc::new(PeerCounters::new(anchor));
                peers.iter().map(peer).collect()
            });
            Replication {
                peers: peers.iter().map(|url| url.to_string()).collect(),
                counters: counters.collect(),
            }
        });
        &replication.counters[core]
    }

    /// The anti-entropy counters of each peer (`peers`: their URLs), by peer index.
    pub(crate) fn digest_counters(&self, peers: &[&str]) -> &[Arc<DigestCounters>] {
        let anti_entropy = self.anti_entropy.get_or_init(|| AntiEntropy {
            urls: peers.iter().map(|url| url.to_string()).collect(),
            peers: peers.iter().map(|_| Arc::default()).collect(),
        });
        &anti_entropy.peers
    }

    /// Open sessions of a WebSocket endpoint, over all cores.
    pub(crate) fn websocket_sessions(&self, endpoint: WsEndpoint) -> u64 {
        self.cores
            .iter()
            .map(|c| c.websocket_sessions[endpoint.index()].load(Relaxed))
            .sum()
    }

    /// The Prometheus text exposition, with `shards[i]` the figures of shard `i` and
    /// `peers_up[i]` whether peer `i` said `up` when last asked.
    pub(crate) fn render(&self, shards: &[ShardStats], peers_up: &[bool]) -> String {
        let mut out = String::with_capacity(16 * 1024);
        process::render(&mut out);
        self.render_requests(&mut out);
        self.render_connections(&mut out);
        self.render_limits(&mut out);
        self.render_websocket(&mut out);
        render_shards(&mut out, shards);
        self.render_replication(&mut out, peers_up);
        self.render_anti_entropy(&mut out);
        out
    }

    /// A counter summed over every core.
    fn total(&self, f: impl Fn(&CoreMetrics) -> u64) -> u64 {
        self.cores.iter().map(f).sum()
    }

    /// Requests by endpoint and outcome (with the older Rust Artemis names), their latency, and
    /// refusals.
    fn render_requests(&self, out: &mut String) {
        family(
            out,
            "artemis_requests_total",
            "counter",
            "Requests answered, by endpoint and by the outcome their responseStatus says (success, partial_fail, fail), with the error code of a failure.",
        );
        for e in Endpoint::ALL {
            let name = e.name();
            let n = |outcome: Outcome| {
                let (status, code) = outcome.slot();
                self.total(|c| c.endpoints.0[e.index()].outcomes[status][code].load(Relaxed))
            };
            let success = n(Outcome::Success);
            let _ = writeln!(
                out,
                "artemis_requests_total{{endpoint=\"{name}\",outcome=\"success\"}} {success}"
            );
            for code in ErrorCode::ALL {
                for outcome in [Outcome::PartialFail(code), Outcome::Fail(code)] {
                    let count = n(outcome);
                    if count > 0 {
                        let (status, code) = (Outcome::NAMES[outcome.slot().0], code.as_str());
                        let _ = writeln!(
                            out,
                            "artemis_requests_total{{endpoint=\"{name}\",outcome=\"{status}\",code=\"{code}\"}} {count}"
                        );
                    }
                }
            }
        }
        for (name, endpoints) in [
            ("artemis_register_requests_total", &[Endpoint::Register][..]),
            (
                "artemis_heartbeat_requests_total",
                &[Endpoint::Heartbeat][..],
            ),
            (
                "artemis_discovery_requests_total",
                &[
                    Endpoint::Service,
                    Endpoint::Lookup,
                    Endpoint::Services,
                    Endpoint::ServicesDelta,
                ][..],
            ),
        ] {
            family(
                out,
                name,
                "counter",
                "Requests answered (older Rust Artemis name).",
            );
            let n: u64 = endpoints
                .iter()
                .map(|e| self.total(|c| c.endpoints.0[e.index()].requests()))
                .sum();
            let _ = writeln!(out, "{name} {n}");
        }

        family(
            out,
            "artemis_request_duration_seconds",
            "histogram",
            "Time from a request's last byte to its reply being queued, by endpoint.",
        );
        for e in Endpoint::ALL {
            histogram(
                out,
                "artemis_request_duration_seconds",
                &format!("endpoint=\"{}\"", e.name()),
                self.cores.iter().map(|c| &c.endpoints.0[e.index()].latency),
            );
        }

        family(
            out,
            "artemis_http_errors_total",
            "counter",
            "Requests refused before reaching an endpoint, by HTTP status.",
        );
        for (i, status) in PROTOCOL_ERRORS.iter().enumerate() {
            let n = self.total(|c| c.protocol_errors[i].load(Relaxed));
            let _ = writeln!(out, "artemis_http_errors_total{{code=\"{status}\"}} {n}");
        }
    }

    /// Connections by core, and the transport's receive buffers.
    fn render_connections(&self, out: &mut String) {
        let per_core = |f: fn(&CoreMetrics) -> u64| self.cores.iter().map(f).collect::<Vec<_>>();
        labelled(
            out,
            (
                "artemis_connections_open",
                "gauge",
                "Open client connections, by core.",
            ),
            "core",
            &per_core(|c| c.connections_open.load(Relaxed)),
        );
        labelled(
            out,
            (
                "artemis_connections_accepted_total",
                "counter",
                "Accepted connections, by core.",
            ),
            "core",
            &per_core(|c| c.connections_accepted.load(Relaxed)),
        );
        family(
            out,
            "artemis_recv_buffer_exhausted_total",
            "counter",
            "Receives re-armed because the io_uring transport's provided-buffer ring was empty.",
        );
        let exhausted = RECV_BUFFER_EXHAUSTED.load(Relaxed);
        let _ = writeln!(out, "artemis_recv_buffer_exhausted_total {exhausted}");
    }

    /// Requests the rate limiters refused, and limits that bit.
    fn render_limits(&self, out: &mut String) {
        family(
            out,
            "artemis_rate_limited_total",
            "counter",
            "Requests refused with rate-limited, by rate limiter and operation (Java's rate limiters; see `docs/limits.md`).",
        );
        for op in LimitedOp::ALL {
            let n = self.total(|c| c.rate_limited[op.index()].load(Relaxed));
            let _ = writeln!(
                out,
                "artemis_rate_limited_total{{limiter=\"{}\",op=\"{}\"}} {n}",
                op.limiter().id(),
                op.name()
            );
        }
        family(
            out,
            "artemis_limit_rejections_total",
            "counter",
            "Connections and requests a limit bit: refused, timed out, or made to wait their turn.",
        );
        for limit in Limit::ALL {
            let n = self.total(|c| c.limits_hit[limit.index()].load(Relaxed));
            let _ = writeln!(
                out,
                "artemis_limit_rejections_total{{limit=\"{}\"}} {n}",
                limit.name()
            );
        }
    }

    /// WebSocket sessions, pushes, moves and refusals.
    fn render_websocket(&self, out: &mut String) {
        family(
            out,
            "artemis_websocket_sessions",
            "gauge",
            "Open WebSocket sessions, by endpoint (Java handler name).",
        );
        for endpoint in WsEndpoint::ALL {
            let n = self.websocket_sessions(endpoint);
            let _ = writeln!(
                out,
                "artemis_websocket_sessions{{endpoint=\"{}\"}} {n}",
                endpoint.name()
            );
        }
        for (name, help, value) in [
            (
                "artemis_push_messages_total",
                "Changes written to WebSocket subscribers.",
                self.total(|c| c.pushes.load(Relaxed)),
            ),
            (
                "artemis_push_overflow_closes_total",
                "Subscribers closed because they fell a whole push queue behind.",
                self.total(|c| c.push_overflows.load(Relaxed)),
            ),
            (
                "artemis_websocket_moves_total",
                "Heartbeat sessions moved to the core that owns their instances.",
                self.total(|c| c.websocket_moves.load(Relaxed)),
            ),
            (
                "artemis_connections_moved_total",
                "Keep-alive HTTP connections moved to the core that owns their writes.",
                self.total(|c| c.connection_moves.load(Relaxed)),
            ),
        ] {
            family(out, name, "counter", help);
            let _ = writeln!(out, "{name} {value}");
        }
        family(
            out,
            "artemis_websocket_refusals_total",
            "counter",
            "WebSocket sessions closed for what the client sent: against the protocol (1002, 1003, 1007) or too large (1009).",
        );
        for (i, reason) in ["protocol", "too_large"].into_iter().enumerate() {
            let n = self.total(|c| c.websocket_refusals[i].load(Relaxed));
            let _ = writeln!(
                out,
                "artemis_websocket_refusals_total{{reason=\"{reason}\"}} {n}"
            );
        }
    }

    /// Replication by peer (its URL), summed over the cores, and the node's replication lag.
    fn render_replication(&self, out: &mut String, peers_up: &[bool]) {
        let Some(replication) = self.replication.get() else {
            return;
        };
        let peers = &replication.peers;
        let cores = |peer: usize| replication.counters.iter().map(move |c| &*c[peer]);
        let labels: Vec<String> = peers
            .iter()
            .map(|url| format!("peer=\"{}\"", label_value(url)))
            .collect();

        let figures: [(Family, PeerFigure); 9] = [
            (
                (
                    "artemis_replication_queue_instances",
                    "gauge",
                    "Instances waiting to be replicated to the peer.",
                ),
                PeerFigure::Peer(|c| c.queue().0),
            ),
            (
                (
                    "artemis_replication_queue_bytes",
                    "gauge",
                    "Bytes of the work waiting for the peer, as --replication-queue counts them.",
                ),
                PeerFigure::Peer(|c| c.queue().1),
            ),
            (
                (
                    "artemis_replication_failed_requests_total",
                    "counter",
                    "Replication requests to the peer that failed whole: no reply, not a 200, or a fail status.",
                ),
                PeerFigure::Peer(PeerCounters::failed_requests),
            ),
            (
                (
                    "artemis_replication_sent_total",
                    "counter",
                    "Instances the peer took, by kind.",
                ),
                PeerFigure::ByKind(PeerCounters::sent),
            ),
            (
                (
                    "artemis_replication_retried_total",
                    "counter",
                    "Instances put back to be sent to the peer again, by kind.",
                ),
                PeerFigure::ByKind(PeerCounters::retried),
            ),
            (
                (
                    "artemis_replication_coalesced_total",
                    "counter",
                    "Tasks replaced or absorbed by a newer one for the same instance before they were sent, by kind.",
                ),
                PeerFigure::ByKind(PeerCounters::coalesced),
            ),
            (
                (
                    "artemis_replication_dropped_total",
                    "counter",
                    "Instances never delivered to the peer, by kind and reason: the outbox was full (full), too old (ttl), or the peer refused them for good (permanent).",
                ),
                PeerFigure::Dropped,
            ),
            (
                (
                    "artemis_replication_round_trip_seconds",
                    "histogram",
                    "Time from sending a replication request to the peer to its whole reply.",
                ),
                PeerFigure::RoundTrip,
            ),
            (
                (
                    "artemis_peer_up",
                    "gauge",
                    "1 while the peer said `up` when last asked, 0 otherwise.",
                ),
                PeerFigure::Up,
            ),
        ];
        for ((name, kind, help), figure) in figures {
            family(out, name, kind, help);
            for (peer, labels) in labels.iter().enumerate() {
                let sum =
                    |value: &dyn Fn(&PeerCounters) -> u64| cores(peer).map(value).sum::<u64>();
                match figure {
                    PeerFigure::Peer(value) => {
                        let _ = writeln!(out, "{name}{{{labels}}} {}", sum(&value));
                    }
                    PeerFigure::ByKind(value) => {
                        for op in WriteOp::ALL {
                            let n = sum(&|c| value(c, op));
                            let op = op.name();
                            let _ = writeln!(out, "{name}{{{labels},kind=\"{op}\"}} {n}");
                        }
                    }
                    PeerFigure::Dropped => {
                        for (why, op) in Dropped::ALL
                            .into_iter()
                            .flat_map(|why| WriteOp::ALL.map(|op| (why, op)))
                        {
                            let n = sum(&|c| c.dropped(why, op));
                            let (op, why) = (op.name(), why.name());
                            let _ = writeln!(
                                out,
                                "{name}{{{labels},kind=\"{op}\",reason=\"{why}\"}} {n}"
                            );
                        }
                    }
                    PeerFigure::RoundTrip => {
                        histogram(out, name, labels, cores(peer).map(|c| &c.round_trip));
                    }
                    PeerFigure::Up => {
                        let up = u8::from(peers_up.get(peer).copied().unwrap_or(false));
                        let _ = writeln!(out, "{name}{{{labels}}} {up}");
                    }
                }
            }
        }

        let name = "artemis_replication_lag_seconds";
        family(
            out,
            name,
            "gauge",
            "How long the oldest replication task still pending, for any peer, has waited.",
        );
        let now = Instant::now();
        let lag = replication
            .counters
            .iter()
            .flatten()
            .filter_map(|c| c.oldest())
            .map(|oldest| now.saturating_duration_since(oldest))
            .max()
            .unwrap_or_default();
        let _ = writeln!(out, "{name} {}", lag.as_secs_f64());
    }

    /// Anti-entropy by peer: the last comparison, and what the comparisons pulled and merged.
    fn render_anti_entropy(&self, out: &mut String) {
        let Some(anti_entropy) = self.anti_entropy.get() else {
            return;
        };
        let peers: Vec<(String, &DigestCounters)> = anti_entropy
            .urls
            .iter()
            .zip(&anti_entropy.peers)
            .map(|(url, counters)| (format!("peer=\"{}\"", label_value(url)), &**counters))
            .collect();
        type DigestFigure = (Family, fn(&DigestCounters) -> Vec<(String, f64)>);
        let figures: [DigestFigure; 5] = [
            (
                (
                    "artemis_anti_entropy_last_seconds",
                    "gauge",
                    "When the last digest comparison with the peer ended (Unix time; 0: never).",
                ),
                |c| vec![(String::new(), c.last_ms.load(Relaxed) as f64 / 1e3)],
            ),
            (
                (
                    "artemis_anti_entropy_last_result",
                    "gauge",
                    "1 for the result of the last digest comparison with the peer: equal, pulled (some services differed) or failed.",
                ),
                |c| {
                    let done = c.last_ms.load(Relaxed) > 0;
                    let last = c.last_result.load(Relaxed);
                    DigestResult::series(|result| u64::from(done && last == result as u64))
                },
            ),
            (
                (
                    "artemis_anti_entropy_comparisons_total",
                    "counter",
                    "Digest comparisons with the peer, by result.",
                ),
                |c| DigestResult::series(|result| c.comparisons[result as usize].load(Relaxed)),
            ),
            (
                (
                    "artemis_anti_entropy_services_pulled_total",
                    "counter",
                    "Services pulled from the peer because their digests differed.",
                ),
                |c| vec![(String::new(), c.services_pulled.load(Relaxed) as f64)],
            ),
            (
                (
                    "artemis_anti_entropy_instances_total",
                    "counter",
                    "Instances the merges of what the peer told added, replaced or removed here.",
                ),
                |c| {
                    let changes = ["added", "replaced", "removed"].iter().zip(&c.merged);
                    let each = |(change, n): (&&str, &AtomicU64)| {
                        (format!(",change=\"{change}\""), n.load(Relaxed) as f64)
                    };
                    changes.map(each).collect()
                },
            ),
        ];
        for ((name, kind, help), series) in figures {
            family(out, name, kind, help);
            for (labels, counters) in &peers {
                for (more, value) in series(counters) {
                    let _ = writeln!(out, "{name}{{{labels}{more}}} {value}");
                }
            }
        }
    }
}

/// The series of a replication family, for each peer.
#[derive(Clone, Copy)]
enum PeerFigure {
    /// One, summed over the cores' counters.
    Peer(fn(&PeerCounters) -> u64),
    /// One per kind, summed over the cores' counters.
    ByKind(fn(&PeerCounters, WriteOp) -> u64),
    /// One per kind and reason work was dropped.
    Dropped,
    /// The round trips' histogram.
    RoundTrip,
    /// Whether the peer is up, as it said.
    Up,
}

/// `s` as a Prometheus label value: backslash, double quote and newline escaped.
fn label_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The registry's figures, node-wide and by shard.
fn render_shards(out: &mut String, shards: &[ShardStats]) {
    let instances: usize = shards.iter().map(|s| s.instances).sum();
    family(
        out,
        "artemis_active_instances",
        "gauge",
        "Registered instances in the node.",
    );
    let _ = writeln!(out, "artemis_active_instances {instances}");
    type ShardFigure = (Family, fn(&ShardStats) -> u64);
    let per_shard: [ShardFigure; 6] = [
        (
            (
                "artemis_shard_instances",
                "gauge",
                "Registered instances, by shard.",
            ),
            |s| s.instances as u64,
        ),
        (
            (
                "artemis_shard_services",
                "gauge",
                "Services with instances, by shard.",
            ),
            |s| s.services as u64,
        ),
        (
            (
                "artemis_leases_expired_total",
                "counter",
                "Leases removed because they expired, by shard.",
            ),
            |s| s.leases_expired_total,
        ),
        (
            (
                "artemis_self_preservation_safe",
                "gauge",
                "1 while the shard expires leases, 0 while self-preservation holds them.",
            ),
            |s| u64::from(s.safe),
        ),
        (
            (
                "artemis_delta_changes_retained",
                "gauge",
                "Changes kept for services-delta.json, by shard.",
            ),
            |s| s.changes_retained as u64,
        ),
        (
            (
                "artemis_delta_bytes_retained",
                "gauge",
                "Bytes of the changes kept for services-delta.json, by shard.",
            ),
            |s| s.changes_retained_bytes as u64,
        ),
    ];
    for (head, value) in per_shard {
        labelled(
            out,
            head,
            "shard",
            &shards.iter().map(value).collect::<Vec<_>>(),
        );
    }
}

/// The series of histogram `name{labels}`, its parts (one per core) summed.
fn histogram<'a>(
    out: &mut String,
    name: &str,
    labels: &str,
    parts: impl Iterator<Item = &'a Histogram> + Clone,
) {
    let total = |f: &dyn Fn(&Histogram) -> u64| parts.clone().map(f).sum::<u64>();
    let mut cumulative = 0;
    for (b, bound) in BUCKETS_US.iter().enumerate() {
        cumulative += total(&|h| h.buckets[b].load(Relaxed));
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels},le=\"{}\"}} {cumulative}",
            *bound as f64 / 1e6
        );
    }
    cumulative += total(&|h| h.buckets[BUCKETS_US.len()].load(Relaxed));
    let sum = total(&|h| h.sum_us.load(Relaxed)) as f64 / 1e6;
    let _ = writeln!(
        out,
        "{name}_bucket{{{labels},le=\"+Inf\"}} {cumulative}\n\
         {name}_sum{{{labels}}} {sum}\n\
         {name}_count{{{labels}}} {cumulative}"
    );
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A metric's name, type and help text.
type Family = (&'static str, &'static str, &'static str);

/// A family with one series per core or shard: `name{label="i"} values[i]`.
fn labelled(out: &mut String, (name, kind, help): Family, label: &str, values: &[u64]) {
    family(out, name, kind, help);
    for (i, value) in values.iter().enumerate() {
        let _ = writeln!(out, "{name}{{{label}=\"{i}\"}} {value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_recorded_values() {
        let metrics = Metrics::new(2);
        let core = |i| metrics.core(i);
        core(0).record_request(
            Endpoint::Register,
            Outcome::Success,
            Duration::from_micros(80),
        );
        core(1).record_request(
            Endpoint::Register,
            Outcome::Success,
            Duration::from_millis(2),
        );
        let not_found = Outcome::PartialFail(ErrorCode::DataNotFound);
        for took in [30, 60, 70] {
            core(1).record_request(Endpoint::Heartbeat, not_found, Duration::from_millis(took));
        }
        let limited = Outcome::Fail(ErrorCode::RateLimited);
        core(0).record_request(Endpoint::Heartbeat, limited, Duration::from_micros(10));
        metrics.core(1).record_protocol_error(404);
        metrics.core(1).record_rate_limited(LimitedOp::GetLeases);
        metrics.core(0).record_limit(Limit::RequestTimeout);
        metrics.core(0).connection_opened();
        let stats = ShardStats {
            instances: 3,
            services: 1,
            leases_expired_total: 7,
            renewals_in_window: 0,
            max_renewals: 0,
            max_renewals_updated_ms: 0,
            safe: true,
            changes_retained: 0,
            changes_retained_bytes: 0,
        };
        let text = metrics.render(&[stats.clone(), stats], &[false]);
        has_lines(&text, [
            "artemis_requests_total{endpoint=\"register\",outcome=\"success\"} 2",
            "artemis_register_requests_total 2",
            "artemis_requests_total{endpoint=\"heartbeat\",outcome=\"success\"} 0",
            "artemis_requests_total{endpoint=\"heartbeat\",outcome=\"partial_fail\",code=\"data-not-found\"} 3",
            "artemis_requests_total{endpoint=\"heartbeat\",outcome=\"fail\",code=\"rate-limited\"} 1",
            "artemis_heartbeat_requests_total 4",
            "artemis_request_duration_seconds_bucket{endpoint=\"heartbeat\",le=\"0.025\"} 1",
            "artemis_request_duration_seconds_bucket{endpoint=\"heartbeat\",le=\"0.05\"} 2",
            "artemis_request_duration_seconds_bucket{endpoint=\"heartbeat\",le=\"0.1\"} 4",
            "artemis_request_duration_seconds_bucket{endpoint=\"register\",le=\"0.0001\"} 1",
            "artemis_request_duration_seconds_bucket{endpoint=\"register\",le=\"0.0025\"} 2",
            "artemis_request_duration_seconds_count{endpoint=\"register\"} 2",
            "artemis_http_errors_total{code=\"404\"} 1",
            "artemis_connections_open{core=\"0\"} 1",
            "artemis_active_instances 6",
            "artemis_leases_expired_total{shard=\"1\"} 7",
            "artemis_rate_limited_total{limiter=\"artemis.service.status\",op=\"get-leases\"} 1",
            "artemis_rate_limited_total{limiter=\"artemis.service.registry\",op=\"heartbeat\"} 0",
            "artemis_limit_rejections_total{limit=\"request_timeout\"} 1",
        ]);
        assert!(text
            .lines()
            .any(|l| l.starts_with("artemis_recv_buffer_exhausted_total ")));
        let failures = text
            .lines()
            .filter(|l| l.contains("outcome=\"partial_fail\""));
        assert_eq!(failures.count(), 1, "a failure is shown once it happened");
    }

    #[test]
    fn renders_replication_by_peer_summed_over_cores() {
        let metrics = Metrics::new(2);
        let started = Instant::now();
        for core in 0..2 {
            let peer = &metrics.peer_counters(PEERS, core)[0];
            peer.record_sent(WriteOp::Heartbeat, 3);
            peer.record_dropped(Dropped::Expired, WriteOp::Register, 1);
            peer.record_round_trip(Duration::from_micros(200));
            peer.set_queue(2, 100, Some(started));
        }
        let text = metrics.render(&[], &[false]);
        let peer = "peer=\"http://127.0.0.1:2/\"";
        has_lines(
            &text,
            [
                format!("artemis_replication_queue_instances{{{peer}}} 4"),
                format!("artemis_replication_queue_bytes{{{peer}}} 200"),
                format!("artemis_replication_sent_total{{{peer},kind=\"heartbeat\"}} 6"),
                format!("artemis_replication_sent_total{{{peer},kind=\"register\"}} 0"),
                format!(
                "artemis_replication_dropped_total{{{peer},kind=\"register\",reason=\"ttl\"}} 2"
            ),
                format!("artemis_replication_round_trip_seconds_bucket{{{peer},le=\"0.00025\"}} 2"),
                format!("artemis_replication_failed_requests_total{{{peer}}} 0"),
                format!("artemis_peer_up{{{peer}}} 0"),
            ],
        );
        let lag = text
            .lines()
            .find_map(|l| l.strip_prefix("artemis_replication_lag_seconds "))
            .map(|v| v.parse::<f64>().unwrap());
        assert!(lag.is_some_and(|lag| (0.0..60.0).contains(&lag)), "{lag:?}");
    }

    /// The one peer of the tests' node.
    const PEERS: &[&str] = &["http://127.0.0.1:2/"];

    #[test]
    fn renders_anti_entropy_by_peer() {
        let metrics = Metrics::new(2);
        assert!(!metrics
            .render(&[], &[false])
            .contains("artemis_anti_entropy"));
        let peer = &metrics.digest_counters(PEERS)[0];
        let merged = Merged {
            added: 2,
            replaced: 1,
            removed: 3,
        };
        peer.record(1_500, DigestResult::Pulled, 4, merged);
        peer.record(2_500, DigestResult::Equal, 0, Merged::default());
        let text = metrics.render(&[], &[false]);
        let peer = "peer=\"http://127.0.0.1:2/\"";
        has_lines(
            &text,
            [
                format!("artemis_anti_entropy_last_seconds{{{peer}}} 2.5"),
                format!("artemis_anti_entropy_last_result{{{peer},result=\"equal\"}} 1"),
                format!("artemis_anti_entropy_last_result{{{peer},result=\"pulled\"}} 0"),
                format!("artemis_anti_entropy_comparisons_total{{{peer},result=\"pulled\"}} 1"),
                format!("artemis_anti_entropy_comparisons_total{{{peer},result=\"failed\"}} 0"),
                format!("artemis_anti_entropy_services_pulled_total{{{peer}}} 4"),
                format!("artemis_anti_entropy_instances_total{{{peer},change=\"added\"}} 2"),
                format!("artemis_anti_entropy_instances_total{{{peer},change=\"removed\"}} 3"),
            ],
        );
    }

    /// Asserts that `text` has each of `lines`.
    fn has_lines<S: AsRef<str>>(text: &str, lines: impl IntoIterator<Item = S>) {
        for line in lines {
            let line = line.as_ref();
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in\n{text}"
            );
        }
    }
}
