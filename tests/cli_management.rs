//! The management commands of the `artemis` binary, run against a real server: what they print,
//! what they change, and their exit codes (0 success, 1 refused, 2 usage or unreachable).

mod common;

use std::process::Output;

use common::artemis::instance;
use common::{artemis, Server};

/// `artemis ARGS --server <server>` with the operator `alice`.
fn cli(server: &Server, args: &[&str]) -> Output {
    let url = format!("http://{}", server.addr);
    let mut all = args.to_vec();
    all.extend(["--server", &url, "--operator", "alice"]);
    artemis(&all).output().expect("the artemis binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_ok(output: &Output) {
    assert_eq!(output.status.code(), Some(0), "{}", stderr(output));
}

/// The line of the `services`/`service` table that names `instance_id`.
fn row_of(table: &str, instance_id: &str) -> String {
    table
        .lines()
        .find(|line| line.split_whitespace().nth(1) == Some(instance_id))
        .unwrap_or_else(|| panic!("no row for {instance_id} in {table:?}"))
        .to_string()
}

#[test]
fn pull_out_then_pull_in_an_instance_shows_in_discovery_and_the_tables() {
    let server = Server::start(&[]);
    server.register_ok(&[instance("cli.svc", "i-1"), instance("cli.svc", "i-2")]);

    let listed = cli(&server, &["services"]);
    assert_ok(&listed);
    let row = row_of(&stdout(&listed), "i-1");
    assert!(row.starts_with("cli.svc") && row.ends_with("up"), "{row}");

    let out = cli(
        &server,
        &[
            "pull-out",
            "instance",
            "--service",
            "cli.svc",
            "--instance",
            "i-1",
        ],
    );
    assert_ok(&out);
    assert!(stdout(&out).contains("pulled out"), "{}", stdout(&out));
    assert_eq!(server.instance_ids("cli.svc"), ["i-2"]);

    let shown = cli(&server, &["service", "cli.svc"]);
    assert_ok(&shown);
    assert!(
        row_of(&stdout(&shown), "i-1").ends_with("down"),
        "{}",
        stdout(&shown)
    );
    assert!(
        row_of(&stdout(&shown), "i-2").ends_with("up"),
        "{}",
        stdout(&shown)
    );

    let logs = cli(&server, &["logs", "instance", "--service", "cli.svc"]);
    assert_ok(&logs);
    assert!(stdout(&logs).contains("alice"), "{}", stdout(&logs));

    let back = cli(
        &server,
        &[
            "pull-in",
            "instance",
            "--service",
            "cli.svc",
            "--instance",
            "i-1",
        ],
    );
    assert_ok(&back);
    assert_eq!(server.instance_ids("cli.svc"), ["i-1", "i-2"]);
    let shown = cli(&server, &["service", "cli.svc"]);
    assert!(
        row_of(&stdout(&shown), "i-1").ends_with("up"),
        "{}",
        stdout(&shown)
    );
}

#[test]
fn a_server_pull_out_hides_its_instances() {
    let server = Server::start(&[]);
    server.register_ok(&[instance("cli.ip", "i-1")]);
    assert_ok(&cli(&server, &["pull-out", "server", "--ip", "10.0.0.1"]));
    assert!(server.instance_ids("cli.ip").is_empty());
    assert_ok(&cli(&server, &["pull-in", "server", "--ip", "10.0.0.1"]));
    assert_eq!(server.instance_ids("cli.ip"), ["i-1"]);
}

#[test]
fn json_prints_the_servers_reply() {
    let server = Server::start(&[]);
    server.register_ok(&[instance("cli.json", "i-1")]);
    let out = cli(&server, &["service", "cli.json", "--json"]);
    assert_ok(&out);
    let reply: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(reply["service"]["instances"][0]["instanceId"], "i-1");
    assert_eq!(reply["responseStatus"]["status"], "success");
}

#[test]
fn cluster_lists_the_node() {
    let server = Server::start(&[]);
    let out = cli(&server, &["cluster"]);
    assert_ok(&out);
    let text = stdout(&out);
    let row = text.lines().nth(1).expect("a node row");
    assert!(row.contains(&server.addr.port().to_string()), "{text}");
    assert!(row.contains("SHAJQ") && row.contains(" up "), "{text}");
}

#[test]
fn a_wrong_token_is_refused_with_exit_code_1_and_the_message() {
    let server = Server::start(&["--management-token", "right"]);
    let mut args = vec!["pull-out", "server", "--ip", "10.0.0.9", "--token", "wrong"];
    let out = cli(&server, &args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no-permission"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("management token missing or wrong"),
        "{}",
        stderr(&out)
    );
    args[5] = "right";
    assert_ok(&cli(&server, &args));
}

#[test]
fn an_unreachable_server_exits_2() {
    let out = artemis(&["services", "--server", "http://127.0.0.1:1"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot reach"), "{}", stderr(&out));
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    for args in [
        &["pull-out", "instance", "--service", "s"][..],
        &["pull-out"][..],
        &["services", "--server", "https://example.org"][..],
        &["logs", "nothing"][..],
    ] {
        let out = artemis(args).output().expect("runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert_eq!(
            stderr(&out).trim_end().lines().count(),
            1,
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn canary_set_makes_the_canary_group() {
    let server = Server::start(&[]);
    server.register_ok(&[instance("cli.canary", "i-1")]);
    let args = [
        "canary",
        "set",
        "--service",
        "cli.canary",
        "--app",
        "app1",
        "--ips",
        "10.0.0.1,10.0.0.2",
    ];
    assert_ok(&cli(&server, &args));
    let groups = cli(&server, &["group", "list"]);
    assert_ok(&groups);
    assert!(stdout(&groups).contains("canary"), "{}", stdout(&groups));
    let rules = cli(&server, &["route-rule", "list"]);
    assert!(
        stdout(&rules).contains("canary-route-rule"),
        "{}",
        stdout(&rules)
    );
}
