//! The command line: flag errors (one line, exit code 2), `--help` with defaults, environment
//! variables, the start-up log, core selection, and stopping on SIGTERM/SIGINT.

mod common;

use std::process::Output;
use std::time::Duration;

use common::artemis::instance;
use common::{artemis, Server};

fn run(args: &[&str]) -> Output {
    artemis(args).output().expect("the artemis binary runs")
}

/// Exit code 2 and exactly one line on stderr that contains `mentions`.
fn assert_usage_error(args: &[&str], mentions: &str) {
    let output = run(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr:?}");
    assert!(stderr.contains(mentions), "{args:?}: {stderr:?}");
}

#[test]
fn an_unknown_flag_is_a_one_line_error_with_exit_code_2() {
    assert_usage_error(&["server", "--bogus"], "--bogus");
}

#[test]
fn cores_that_are_not_online_are_a_one_line_error_with_exit_code_2() {
    assert_usage_error(&["server", "--addr", "127.0.0.1:0", "--cores", "99"], "99");
    assert_usage_error(&["server", "--cores", "1-0"], "--cores");
}

#[test]
fn a_bad_duration_is_a_one_line_error_with_exit_code_2() {
    assert_usage_error(&["server", "--lease-ttl", "abc"], "abc");
    assert_usage_error(&["server", "--idle-timeout", "soon"], "soon");
}

#[test]
fn a_bad_limit_is_a_one_line_error_with_exit_code_2() {
    assert_usage_error(
        &["server", "--registry-rate-limit-map", "get-leases:10"],
        "not an operation of artemis.service.registry",
    );
    assert_usage_error(
        &["server", "--status-rate-limit-map", "get-leases:lots"],
        "lots",
    );
    assert_usage_error(&["server", "--max-pipeline", "0"], "--max-pipeline");
    assert_usage_error(&["server", "--request-timeout", "soon"], "soon");
}

#[test]
fn a_bad_size_or_address_is_a_one_line_error_with_exit_code_2() {
    assert_usage_error(&["server", "--max-body", "8XB"], "8XB");
    assert_usage_error(&["server", "--addr", "nowhere"], "nowhere");
    assert_usage_error(&["server", "--self-preservation", "maybe"], "maybe");
}

#[test]
fn help_lists_every_flag_with_its_default() {
    let output = run(&["server", "--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "--addr",
        "[default: 127.0.0.1:8080]",
        "--cores",
        "--region",
        "--zone",
        "--lease-ttl",
        "[default: 20s]",
        "--clean-interval",
        "[default: 100ms]",
        "--max-body",
        "[default: 8MiB]",
        "--idle-timeout",
        "--spin-before-park",
        "--allow-registry-from-other-zone",
        "--self-preservation",
        "ARTEMIS_ADDR",
        "ARTEMIS_LEASE_TTL",
    ] {
        assert!(
            help.contains(expected),
            "`{expected}` missing from:\n{help}"
        );
    }
}

#[test]
fn flags_can_be_set_from_the_environment() {
    let server = Server::start_with_env(&[], &[("ARTEMIS_LEASE_TTL", "7s")]);
    let config = server.get("/api/status/config.json").json();
    assert_eq!(
        config["properties"]["artemis.service.registry.instance.lease-manager.lease.ttl"],
        "7000"
    );
}

#[test]
fn the_start_log_names_the_address_shards_and_cores() {
    let server = Server::start(&["--cores", "0"]);
    let log = server.log();
    assert!(
        log.contains(&format!("serving on {}", server.addr)),
        "{log}"
    );
    assert!(log.contains("1 shards") && log.contains("[0]"), "{log}");
    assert_eq!(server.shards, 1);
}

#[test]
fn a_single_core_server_serves() {
    let server = Server::start(&["--cores", "0"]);
    server.register_ok(&[instance("one.core", "i1")]);
    assert_eq!(server.instance_ids("one.core"), ["i1"]);
}

#[test]
fn sigterm_stops_the_server_with_status_0_within_5_seconds() {
    let mut server = Server::start(&[]);
    server.register_ok(&[instance("term.svc", "i1")]);
    let status = server.signal_and_wait("TERM", Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}; log:\n{}",
        server.log()
    );
}

#[test]
fn sigint_stops_the_server_with_status_0_within_5_seconds() {
    let mut server = Server::start(&[]);
    let _idle_client = server.connect();
    let status = server.signal_and_wait("INT", Duration::from_secs(5));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

#[test]
fn a_node_missing_from_its_own_cluster_is_a_one_line_error_with_exit_code_2() {
    let nodes = "http://127.0.0.1:7001/,http://127.0.0.1:7002/";
    assert_usage_error(
        &[
            "server",
            "--cluster-nodes",
            nodes,
            "--node-url",
            "http://127.0.0.1:7003/",
        ],
        "not among --cluster-nodes",
    );
    assert_usage_error(
        &["server", "--addr", "0.0.0.0:7001", "--cluster-nodes", nodes],
        "--node-url",
    );
    assert_usage_error(
        &["server", "--cluster-nodes", "zoneA:ftp://h/"],
        "not an http:// URL",
    );
}
