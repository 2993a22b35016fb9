//! The human output, printed as the run goes: what is measured and how, then per population a
//! line on its memory and a row per scenario, and at the end the targets.

use crate::display;
use crate::machine::LoadAverage;
use crate::results::{HeartbeatCost, Point, Population, Settings};
use crate::server::Server;
use crate::targets::Check;

const HEADER: [&str; 13] = [
    "scenario",
    "no-op",
    "registry",
    "ratio",
    "sat p99",
    "sat p99.9",
    "half rate",
    "p99",
    "p99.9",
    "sent p99",
    "no-op p99",
    "no-op p99.9",
    "failed",
];
const WIDTHS: [usize; HEADER.len()] = [10, 9, 9, 5, 8, 9, 9, 8, 8, 8, 9, 11, 6];

pub(crate) fn preamble(settings: &Settings, online_cores: usize, load: LoadAverage) {
    let shared = if settings.loadgen_cores == settings.cores {
        "the load generator runs on the same cores, so it shares them with the server it drives"
            .to_owned()
    } else {
        format!("the load generator on cores {:?}", settings.loadgen_cores)
    };
    println!(
        "artemis-bench: artemis-noop and artemis server on cores {:?} ({online_cores} online); {shared}",
        settings.cores
    );
    println!(
        "both run on each of --io {} in turn; the registry with --lease-ttl {}, so no prefilled instance expires during the benchmark, \
         and --rate-limit false, so the load measures the server and not Java's rate limits",
        settings.io.join(","),
        settings.lease_ttl
    );
    println!(
        "each scenario: {} closed-loop saturation runs per server ({} after {} warm-up, \
         {} connections), alternating no-op and registry; then as many open-loop runs at half the \
         registry's saturation, alternating; their median tails (from the intended send; \
         \"sent p99\" from the actual send) against {} and against the no-op's",
        settings.rounds, settings.duration, settings.warmup, settings.connections, settings.slo
    );
    println!("load average before: {load}");
}

/// The heading of one transport's runs.
pub(crate) fn transport(io: &str) {
    println!("\n=== --io {io} ===");
}

/// The heading of the heartbeat-cost runs.
pub(crate) fn cost_heading(rate: f64) {
    println!(
        "\nheartbeat cost at {} (server CPU per heartbeated instance, HTTP then WebSocket, alternating):",
        display::rate(rate)
    );
}

/// One batch size's heartbeat cost.
pub(crate) fn cost(c: &HeartbeatCost) {
    let us = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.2}"))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    println!(
        "  batch {:>3}: HTTP {} µs, WebSocket {} µs; WebSocket/HTTP {}",
        c.batch,
        us(&c.http_us),
        us(&c.websocket_us),
        display::ratio(c.ratio)
    );
}

/// Which transport each core of a server got, as its start-up log says.
pub(crate) fn started(server: &Server) {
    println!(
        "{} on {}: {}",
        server.name,
        server.addr,
        server.transport.join("; ")
    );
}

/// The population's heading, once it is registered.
pub(crate) fn population(p: &Population) {
    println!(
        "\n{} instances over {} services (fresh registry): prefilled in {:.2}s; RSS {} -> {} = {:.0} B/instance; load {}",
        display::count(p.instances),
        p.services,
        p.prefill_seconds,
        display::bytes(p.rss_before_bytes),
        display::bytes(p.rss_after_bytes),
        p.rss_per_instance_bytes,
        p.load_average,
    );
    println!("{}", line(HEADER.map(str::to_owned)));
}

pub(crate) fn row(point: &Point) {
    let (registry, noop) = (&point.slo.registry, &point.slo.noop);
    println!(
        "{}",
        line([
            point.scenario.name().to_owned(),
            display::rate(point.noop.rate),
            display::rate(point.registry.rate),
            display::ratio(point.ratio),
            display::latency(point.registry.p99_us),
            display::latency(point.registry.p999_us),
            display::rate(point.slo.rate),
            display::latency(registry.p99_us),
            display::latency(registry.p999_us),
            display::latency(registry.response_p99_us),
            display::latency(noop.p99_us),
            display::latency(noop.p999_us),
            (point.registry.failed + registry.failed).to_string(),
        ])
    );
    let runs = point.registry.runs.iter().chain(&registry.runs);
    for (kind, n) in runs.flat_map(|r| &r.failures) {
        println!("    registry failed: {kind} x{n}");
    }
}

pub(crate) fn targets(io: &str, checks: &[Check]) {
    println!("\ntargets on --io {io} (reported, not enforced):");
    for c in checks {
        let verdict = match c.met {
            Some(true) => "met   ",
            Some(false) => "MISSED",
            None => "n/a   ",
        };
        println!("  {verdict} {}: {}", c.target, c.measured);
    }
}

pub(crate) fn load_after(load: LoadAverage) {
    println!("\nload average after: {load}");
}

fn line(cells: [String; HEADER.len()]) -> String {
    let mut out = String::new();
    for (i, (cell, width)) in cells.iter().zip(WIDTHS).enumerate() {
        if i == 0 {
            out.push_str(&format!("{cell:<width$}"));
        } else {
            out.push_str(&format!(" {cell:>width$}"));
        }
    }
    out
}
