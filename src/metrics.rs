//! Request counters, latency histograms and connection gauges, per core, in Prometheus form.
//!
//! Each core writes only its own slots (relaxed atomics, never contended); `/metrics` reads every
//! core's slots and asks every shard for its registry figures, so the export is real and
//! complete whichever core serves it.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use artemis_shards::ShardStats;

use crate::limits::Limit;
use crate::rate_limit::LimitedOp;
use crate::router::{Endpoint, WsEndpoint};
use crate::transport::uring::RECV_BUFFER_EXHAUSTED;

/// Upper bounds of the latency buckets, in microseconds.
const BUCKETS_US: [u64; 12] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 500_000, 1_000_000,
];

/// HTTP statuses the server answers without reaching an endpoint.
pub(crate) const PROTOCOL_ERRORS: [u16; 8] = [400, 404, 405, 408, 413, 415, 431, 501];

const ENDPOINTS: usize = Endpoint::ALL.len();

#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
}

/// One core's counters.
#[derive(Default)]
pub(crate) struct CoreMetrics {
    requests: [AtomicU64; ENDPOINTS],
    latency: [Histogram; ENDPOINTS],
    protocol_errors: [AtomicU64; PROTOCOL_ERRORS.len()],
    connections_open: AtomicU64,
    connections_accepted: AtomicU64,
    websocket_sessions: [AtomicU64; WsEndpoint::ALL.len()],
    pushes: AtomicU64,
    push_overflows: AtomicU64,
    /// Heartbeat sessions this core moved to the core that owns their instances.
    websocket_moves: AtomicU64,
    /// WebSocket sessions closed for a protocol violation, and for a frame or message too large.
    websocket_refusals: [AtomicU64; 2],
    rate_limited: [AtomicU64; LimitedOp::ALL.len()],
    limits_hit: [AtomicU64; Limit::ALL.len()],
}

impl CoreMetrics {
    pub(crate) fn record_request(&self, endpoint: Endpoint, took: Duration) {
        let i = endpoint.index();
        self.requests[i].fetch_add(1, Relaxed);
        let us = took.as_micros() as u64;
        let bucket = BUCKETS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(BUCKETS_US.len());
        self.latency[i].buckets[bucket].fetch_add(1, Relaxed);
        self.latency[i].sum_us.fetch_add(us, Relaxed);
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

    pub(crate) fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Relaxed);
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

/// Every core's counters, shared by all cores.
pub(crate) struct Metrics {
    cores: Vec<CoreMetrics>,
}

impl Metrics {
    pub(crate) fn new(cores: usize) -> Metrics {
        Metrics {
            cores: (0..cores).map(|_| CoreMetrics::default()).collect(),
        }
    }

    pub(crate) fn core(&self, index: usize) -> &CoreMetrics {
        &self.cores[index]
    }

    /// Open sessions of a WebSocket endpoint, over all cores.
    pub(crate) fn websocket_sessions(&self, endpoint: WsEndpoint) -> u64 {
        self.cores
            .iter()
            .map(|c| c.websocket_sessions[endpoint.index()].load(Relaxed))
            .sum()
    }

    /// The Prometheus text exposition, with `shards[i]` the figures of shard `i`.
    pub(crate) fn render(&self, shards: &[ShardStats]) -> String {
        let mut out = String::with_capacity(16 * 1024);
        self.render_requests(&mut out);
        self.render_connections(&mut out);
        self.render_limits(&mut out);
        self.render_websocket(&mut out);
        render_shards(&mut out, shards);
        out
    }

    /// A counter summed over every core.
    fn total(&self, f: impl Fn(&CoreMetrics) -> u64) -> u64 {
        self.cores.iter().map(f).sum()
    }

    /// Requests by endpoint (with the older Rust Artemis names), their latency, and refusals.
    fn render_requests(&self, out: &mut String) {
        family(
            out,
            "artemis_requests_total",
            "counter",
            "Requests answered, by endpoint.",
        );
        for e in Endpoint::ALL {
            let n = self.total(|c| c.requests[e.index()].load(Relaxed));
            let _ = writeln!(
                out,
                "artemis_requests_total{{endpoint=\"{}\"}} {n}",
                e.name()
            );
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
                .map(|e| self.total(|c| c.requests[e.index()].load(Relaxed)))
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
            fn h(c: &CoreMetrics, e: Endpoint) -> &Histogram {
                &c.latency[e.index()]
            }
            let mut cumulative = 0;
            for (b, bound) in BUCKETS_US.iter().enumerate() {
                cumulative += self.total(|c| h(c, e).buckets[b].load(Relaxed));
                let _ = writeln!(
                    out,
                    "artemis_request_duration_seconds_bucket{{endpoint=\"{}\",le=\"{}\"}} {cumulative}",
                    e.name(),
                    *bound as f64 / 1e6
                );
            }
            cumulative += self.total(|c| h(c, e).buckets[BUCKETS_US.len()].load(Relaxed));
            let sum = self.total(|c| h(c, e).sum_us.load(Relaxed)) as f64 / 1e6;
            let name = e.name();
            let _ = writeln!(
                out,
                "artemis_request_duration_seconds_bucket{{endpoint=\"{name}\",le=\"+Inf\"}} {cumulative}\n\
                 artemis_request_duration_seconds_sum{{endpoint=\"{name}\"}} {sum}\n\
                 artemis_request_duration_seconds_count{{endpoint=\"{name}\"}} {cumulative}"
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
        metrics
            .core(0)
            .record_request(Endpoint::Register, Duration::from_micros(80));
        metrics
            .core(1)
            .record_request(Endpoint::Register, Duration::from_millis(2));
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
        let text = metrics.render(&[stats.clone(), stats]);
        for line in [
            "artemis_requests_total{endpoint=\"register\"} 2",
            "artemis_register_requests_total 2",
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
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in\n{text}"
            );
        }
        assert!(text
            .lines()
            .any(|l| l.starts_with("artemis_recv_buffer_exhausted_total ")));
    }
}
