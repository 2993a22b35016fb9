//! What an SRE scrapes besides the registry's own figures (docs/metrics.md): the standard
//! `process_*` families, `artemis_build_info`, request counters by outcome and error code, so
//! that a storm of `data-not-found` heartbeats (clients whose leases this node lost) can be
//! alerted on, and latency buckets without a gap between 25 ms and 100 ms.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use tungstenite::Message;

use common::artemis::{instance, instances, sample, HEARTBEAT, REGISTRY_SUCCESS};
use common::json::error_code;
use common::Server;

/// The `/metrics` text of `server`.
fn scrape(server: &Server) -> String {
    let reply = server.get("/metrics");
    assert_eq!(reply.status, 200);
    reply.text().to_string()
}

/// The sample `series` of `text`, which must be there.
fn value(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

/// `artemis_requests_total` of the heartbeat endpoint with `labels` after the endpoint's.
fn heartbeats(text: &str, labels: &str) -> f64 {
    let series = format!("artemis_requests_total{{endpoint=\"heartbeat\",{labels}}}");
    sample(text, &series).unwrap_or(0.0)
}

#[test]
fn the_process_families_and_build_info_are_exported() {
    let server = Server::start(&[]);
    let text = scrape(&server);
    for (name, kind) in [
        ("process_cpu_seconds_total", "counter"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_virtual_memory_bytes", "gauge"),
        ("process_open_fds", "gauge"),
        ("process_max_fds", "gauge"),
        ("process_start_time_seconds", "gauge"),
        ("artemis_build_info", "gauge"),
    ] {
        let declared = format!("# TYPE {name} {kind}");
        assert!(
            text.lines().any(|l| l == declared),
            "{declared} in:\n{text}"
        );
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let started = value(&text, "process_start_time_seconds");
    assert!(
        (now.as_secs_f64() - 120.0..=now.as_secs_f64() + 1.0).contains(&started),
        "started at {started}, now {now:?}"
    );
    let rss = value(&text, "process_resident_memory_bytes");
    assert!(rss > 1e6 && (rss as u64) < 1 << 40, "{rss}");
    assert!(value(&text, "process_cpu_seconds_total") >= 0.0);
    let (open, max) = (
        value(&text, "process_open_fds"),
        value(&text, "process_max_fds"),
    );
    assert!(open >= 3.0 && open <= max, "{open} of {max}");
    // The figures are the server's, not the test's.
    assert!((open - server.open_fds() as f64).abs() <= 8.0, "{open}");
    let info = text
        .lines()
        .find(|l| l.starts_with("artemis_build_info{"))
        .expect("artemis_build_info");
    let version = format!("version=\"{}\"", env!("CARGO_PKG_VERSION"));
    assert!(info.contains(&version) && info.ends_with("} 1"), "{info}");
}

#[test]
fn a_storm_of_data_not_found_heartbeats_shows_by_outcome_and_code() {
    const STORM: usize = 200;
    const OVER_WEBSOCKET: usize = 20;
    let server = Server::start(&[]);
    let known = instance("sre.storm.known", "i1");
    let lost = instance("sre.storm.lost", "never-registered");
    server.register_ok(&[&known]);
    for _ in 0..3 {
        assert_eq!(server.heartbeat(&[&known]).text(), REGISTRY_SUCCESS);
    }
    for n in 0..STORM {
        let batch: &[&str] = if n % 2 == 0 {
            &[&lost]
        } else {
            &[&known, &lost]
        };
        let reply = server.heartbeat(batch).json();
        assert_eq!(reply["failedInstances"][0]["errorCode"], "data-not-found");
        assert_eq!(error_code(&reply), "partial_fail");
    }
    let (mut socket, _) =
        tungstenite::connect(format!("ws://{}/ws/registry/heartbeat", server.addr))
            .expect("the handshake succeeds");
    for _ in 0..OVER_WEBSOCKET {
        socket.send(Message::text(instances(&[&lost]))).unwrap();
        let reply = socket.read().unwrap().into_text().unwrap();
        assert!(reply.contains("data-not-found"), "{reply}");
    }
    // A request Java refuses whole: `fail`, by its code.
    let refused = server.post(HEARTBEAT, r#"{"instances":[]}"#);
    assert_eq!(error_code(&refused.json()), "bad-request");

    let text = scrape(&server);
    let storm = (STORM + OVER_WEBSOCKET) as f64;
    assert_eq!(
        heartbeats(&text, "outcome=\"partial_fail\",code=\"data-not-found\""),
        storm
    );
    assert_eq!(heartbeats(&text, "outcome=\"success\""), 3.0);
    assert_eq!(
        heartbeats(&text, "outcome=\"fail\",code=\"bad-request\""),
        1.0
    );
    // The older Rust Artemis name counts every outcome.
    assert_eq!(
        value(&text, "artemis_heartbeat_requests_total"),
        storm + 4.0
    );
    // Failures of other kinds are not listed until they happen.
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("artemis_requests_total{endpoint=\"heartbeat\""))
            .count(),
        3,
        "{text}"
    );
    let register = "artemis_requests_total{endpoint=\"register\",outcome=\"success\"}";
    assert_eq!(value(&text, register), 1.0);
}

#[test]
fn rate_limited_requests_are_failures_by_their_code() {
    let server = Server::start(&["--registry-rate-limit", "2"]);
    let known = instance("sre.limited", "i1");
    let mut limited = 0;
    for _ in 0..10 {
        let reply = server.heartbeat(&[&known]).json();
        limited += usize::from(error_code(&reply) == "rate-limited");
    }
    assert!(limited > 0);
    let text = scrape(&server);
    assert_eq!(
        heartbeats(&text, "outcome=\"fail\",code=\"rate-limited\""),
        limited as f64
    );
}

#[test]
fn latency_buckets_step_through_50ms_and_250ms() {
    let server = Server::start(&[]);
    server.get("/health");
    let text = scrape(&server);
    let bounds: Vec<f64> = text
        .lines()
        .filter_map(|l| {
            l.strip_prefix("artemis_request_duration_seconds_bucket{endpoint=\"health\",le=\"")
        })
        .filter_map(|rest| rest.split('"').next())
        .filter_map(|le| le.parse().ok())
        .filter(|bound: &f64| bound.is_finite())
        .collect();
    assert!(
        bounds.contains(&0.05) && bounds.contains(&0.25),
        "{bounds:?}"
    );
    for pair in bounds.windows(2) {
        assert!(
            pair[1] / pair[0] <= 2.5 + 1e-9,
            "a gap from {} to {}",
            pair[0],
            pair[1]
        );
    }
}
