//! State a client can grow stays bounded (issue "Bounded under hostile clients"): the changes
//! kept for `services-delta.json` are bounded in bytes, an instance's fields in size, its port
//! to 0..65535, and a registry request's instance list in length. Each refusal names what bit,
//! and the server goes on serving everyone else.

mod common;

use std::fs;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use common::artemis::{instance, instances, with, HEARTBEAT, PARTIAL_FAIL, REGISTER, SERVICES};
use common::json::error_code;
use common::{Reply, Server};

const DELTA: &str = "/api/discovery/services-delta.json";

/// The server's resident set, in KiB (`VmRSS` of `/proc/PID/status`).
fn rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("the server runs");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

/// A `--node-url` no other server of any test run has: it finds the process in `/proc`.
fn unique_node_url(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("http://{name}-{}-{nanos}.invalid/", std::process::id())
}

/// The pid of the one process whose command line holds `marker`.
fn pid_with(marker: &str) -> u32 {
    let found: Vec<u32> = fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|pid: &u32| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|line| line.split(|&b| b == 0).any(|arg| arg == marker.as_bytes()))
        })
        .collect();
    assert_eq!(found.len(), 1, "processes with {marker}: {found:?}");
    found[0]
}

fn services_version(server: &Server) -> u64 {
    server.get(SERVICES).json()["version"].as_u64().unwrap()
}

fn delta(server: &Server, version: u64) -> Value {
    server
        .post(DELTA, &json!({ "version": version }).to_string())
        .json()
}

/// A registry reply with `partial_fail` listing `failed` (index → error code, message suffix).
fn assert_partial_fail(reply: &Reply, failed: &[(&str, &str)]) {
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    assert_eq!(
        body["responseStatus"],
        serde_json::from_str::<Value>(PARTIAL_FAIL).unwrap(),
        "{body}"
    );
    let entries = body["failedInstances"]
        .as_array()
        .expect("failed instances");
    assert_eq!(entries.len(), failed.len(), "{body}");
    for (entry, (code, reason)) in entries.iter().zip(failed) {
        assert_eq!(entry["errorCode"], *code, "{entry}");
        let message = entry["errorMessage"].as_str().unwrap();
        assert!(message.ends_with(&format!(": {reason}")), "{message}");
    }
}

fn assert_success(reply: &Reply) {
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(error_code(&reply.json()), "success", "{}", reply.text());
}

/// ~60 KiB of metadata (under the 64 KiB default), in values under the 8 KiB each may have;
/// each value starts with `round`. Written by hand: the loop sends 2 000 of them.
fn big_instance(round: usize) -> String {
    let pad = "m".repeat(6_000);
    let entries: Vec<String> = (0..10)
        .map(|n| format!(r#""blob{n}":"{round:06}{pad}""#))
        .collect();
    let metadata = format!(r#""metadata":{{{}}}"#, entries.join(","));
    instance("big.meta", "i1").replace(r#""metadata":null"#, &metadata)
}

/// Re-registering one instance with 60 KiB of metadata 2 000 times would keep 2 000 copies
/// (~117 MiB) for deltas under the count retention alone; the byte bound keeps ~4 MiB of them,
/// so the server's RSS grows by far less than what the copies would take. A delta from before
/// the oldest change kept is gone (`data-not-found`); a recent one is served.
#[test]
fn re_registering_a_large_instance_keeps_delta_memory_bounded() {
    let url = unique_node_url("bounded-rss");
    let server = Server::start(&["--delta-retention-bytes", "4MiB", "--node-url", &url]);
    let pid = pid_with(&url);

    assert_success(&server.register(&[big_instance(0)]));
    let first = services_version(&server);
    let before = rss_kib(pid);
    let started = Instant::now();
    for round in 1..2_000 {
        assert_success(&server.register(&[big_instance(round)]));
    }
    let recent = services_version(&server);
    assert_success(&server.register(&[big_instance(2_000)]));
    let after = rss_kib(pid);
    let copies_kib = (2_000 * big_instance(0).len() / 1024) as u64;
    assert!(
        after.saturating_sub(before) < copies_kib / 4,
        "RSS grew from {before} KiB to {after} KiB over {:?}; 2 000 copies are {copies_kib} KiB",
        started.elapsed()
    );

    let gone = delta(&server, first);
    assert_eq!(error_code(&gone), "data-not-found", "{gone}");
    let served = delta(&server, recent);
    assert_eq!(error_code(&served), "success", "{served}");
    let changes = served["delta"]["big.meta"].as_array().expect("a delta");
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["changeType"], "new");
    assert!(changes[0]["instance"]["metadata"]["blob0"]
        .as_str()
        .unwrap()
        .starts_with("002000"));
}

/// An instance id over 256 bytes and a metadata value over 8 KiB fail alone, as `bad-request`
/// naming the field, on register (and the id on heartbeat); the rest of the batch and other
/// clients are served.
#[test]
fn oversized_fields_are_refused_per_instance() {
    let server = Server::start(&[]);
    let long_id = instance("sized.svc", &"i".repeat(64 << 10));
    let big_value = with(
        &instance("sized.svc", "i2"),
        "metadata",
        json!({ "blob": "v".repeat(1 << 20) }),
    );
    let fine = instance("sized.svc", "i3");
    let reply = server.register(&[long_id.clone(), fine.clone(), big_value]);
    assert_partial_fail(
        &reply,
        &[
            (
                "bad-request",
                "instance.instanceId is longer than 256 bytes",
            ),
            (
                "bad-request",
                "instance.metadata.blob is longer than 8192 bytes",
            ),
        ],
    );
    let echoed = &reply.json()["failedInstances"][0]["instance"];
    assert_eq!(echoed["instanceId"].as_str().unwrap().len(), 64 << 10);
    assert_eq!(server.instance_ids("sized.svc"), ["i3"]);

    assert_partial_fail(
        &server.heartbeat(&[long_id]),
        &[(
            "bad-request",
            "instance.instanceId is longer than 256 bytes",
        )],
    );
    // Exactly at the limits is fine.
    let at_limits = with(
        &instance("sized.svc", &"i".repeat(256)),
        "metadata",
        json!({ "blob": "v".repeat(8 << 10) }),
    );
    assert_success(&server.register(&[at_limits]));

    // Another client, on a connection of its own, is served.
    let mut client = server.connect();
    let reply = client.post(REGISTER, &instances(&[instance("other.client", "o1")]));
    assert_success(&reply);
    assert_success(&client.post(HEARTBEAT, &instances(&[fine])));
    assert_eq!(server.instance_ids("other.client"), ["o1"]);
}

/// A port is an integer in 0..65535: -1 and 99999 fail their instance (`bad-request` naming
/// `instance.port`); 80.5 is not an integer, and the request is refused whole (400), as a
/// value of the wrong type is; 8080, as a number or a numeric string, is accepted.
#[test]
fn ports_outside_0_to_65535_or_not_integers_are_refused() {
    let server = Server::start(&[]);
    let port = |id: &str, value: Value| with(&instance("ports.svc", id), "port", value);
    let reply = server.register(&[
        port("minus", json!(-1)),
        port("ok", json!(8080)),
        port("huge", json!(99_999)),
        port("text", json!("8080")),
    ]);
    assert_partial_fail(
        &reply,
        &[
            ("bad-request", "instance.port -1 is not a port (0 to 65535)"),
            (
                "bad-request",
                "instance.port 99999 is not a port (0 to 65535)",
            ),
        ],
    );
    assert_eq!(server.instance_ids("ports.svc"), ["ok", "text"]);
    let ports: Vec<i64> = server.service("ports.svc")["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["port"].as_i64().unwrap())
        .collect();
    assert_eq!(ports, [8080, 8080]);

    let fraction = server.register(&[port("half", json!(80.5))]);
    assert_eq!(fraction.status, 400, "{}", fraction.text());
    assert_eq!(error_code(&fraction.json()), "bad-request");
    assert!(fraction.text().contains("port"), "{}", fraction.text());
    assert_eq!(server.instance_ids("ports.svc"), ["ok", "text"]);
}

/// A registry request listing more instances than `--max-instances-per-request` is refused
/// whole, as one listing none is (`bad-request`, `failedInstances` null), before any shard sees
/// it: no failed entry echoes any of them.
#[test]
fn a_request_with_too_many_instances_is_refused_whole() {
    let server = Server::start(&["--max-instances-per-request", "100"]);
    let list: Vec<String> = (0..101)
        .map(|n| instance("many.svc", &format!("i{n}")))
        .collect();
    for path in [REGISTER, HEARTBEAT] {
        let reply = server.post(path, &instances(&list));
        assert_eq!(reply.status, 200, "{}", reply.text());
        let body = reply.json();
        assert_eq!(body["failedInstances"], Value::Null, "{body}");
        assert_eq!(body["responseStatus"]["errorCode"], "bad-request", "{body}");
        assert_eq!(body["responseStatus"]["status"], "fail", "{body}");
        let message = body["responseStatus"]["message"].as_str().unwrap();
        assert!(
            message.contains("request.instances") && message.contains("100"),
            "{message}"
        );
    }
    assert!(server.instance_ids("many.svc").is_empty());
    assert_success(&server.register(&list[..100]));
    assert_eq!(server.instance_ids("many.svc").len(), 100);
}
