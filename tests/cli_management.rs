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

/// `artemis ARGS --json`, exit code 0, and the reply.
fn cli_json(server: &Server, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = cli(server, &all);
    assert_ok(&out);
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
}

/// The number in `line` after `prefix` ("group 3: ..." → 3).
fn id_after(line: &str, prefix: &str) -> String {
    let rest = line
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{line:?} does not start with {prefix:?}"));
    let id: String = rest.chars().take_while(char::is_ascii_digit).collect();
    assert!(!id.is_empty(), "no id in {line:?}");
    id
}

#[test]
fn groups_are_created_updated_filled_tagged_pulled_out_and_deleted() {
    let server = Server::start(&[]);
    server.register_ok(&[instance("cli.grp", "i-1"), instance("cli.grp", "i-2")]);

    // The default group of the zone: every instance registered without a group.
    let args = [
        "group",
        "create",
        "--service",
        "cli.grp",
        "--zone",
        "SHAJQ",
        "--name",
        "default",
        "--app",
        "app1",
    ];
    let out = cli(&server, &args);
    assert_ok(&out);
    let id = id_after(&stdout(&out), "group ");
    assert!(
        stdout(&out).contains("cli.grp/SHA/SHAJQ/default"),
        "{}",
        stdout(&out)
    );
    let listed = cli(&server, &["group", "list", "--service", "cli.grp"]);
    assert_ok(&listed);
    let row = stdout(&listed)
        .lines()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    assert!(
        row.starts_with(&id) && row.contains("app1") && row.ends_with("active"),
        "{row}"
    );
    assert_eq!(
        cli_json(&server, &["group", "list", "--service", "nothing"])["groups"],
        serde_json::json!([])
    );

    let updated = [
        "group",
        "update",
        &id,
        "--status",
        "inactive",
        "--description",
        "d1",
    ];
    assert_ok(&cli(&server, &updated));
    let shown = cli_json(&server, &["group", "show", &id]);
    assert_eq!(shown["group"]["status"], "inactive");
    assert_eq!(shown["group"]["description"], "d1");
    assert_eq!(
        shown["group"]["appId"], "app1",
        "an update keeps what it does not name"
    );

    // Instances named into the group, and taken out by their row id.
    let add = [
        "group-instance",
        "add",
        "--group",
        &id,
        "--instance",
        "i-1,i-9",
    ];
    assert_ok(&cli(&server, &add));
    let rows = cli_json(&server, &["group-instance", "list", "--group", &id]);
    let rows = rows["groupInstances"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let nine = rows.iter().find(|r| r["instanceId"] == "i-9").unwrap();
    let nine_id = nine["id"].to_string();
    assert_ok(&cli(&server, &["group-instance", "remove", &nine_id]));
    let listed = cli(&server, &["group-instance", "list", "--group", &id]);
    assert_ok(&listed);
    assert!(stdout(&listed).contains("i-1") && !stdout(&listed).contains("i-9"));

    // Tags: set, listed, one deleted.
    assert_ok(&cli(
        &server,
        &["tag", "set", "--group", &id, "color=blue", "size=L"],
    ));
    let tags = cli(&server, &["tag", "list", "--group", &id]);
    assert_ok(&tags);
    assert!(stdout(&tags).contains("color") && stdout(&tags).contains("blue"));
    assert_ok(&cli(
        &server,
        &["tag", "delete", "--group", &id, "--tag", "size"],
    ));
    let tags = cli_json(&server, &["tag", "list", "--group", &id]);
    assert_eq!(
        tags["groupTags"]["tags"],
        serde_json::json!({"color": "blue"})
    );
    let all = cli_json(&server, &["tag", "list"]);
    assert_eq!(
        all["allGroupTags"].as_array().map(Vec::len),
        Some(1),
        "{all}"
    );

    // A group pull-out takes its instances out of discovery; a pull-in puts them back.
    let out = cli(&server, &["pull-out", "group", "--group", &id]);
    assert_ok(&out);
    assert!(stdout(&out).contains(&format!("pulled out: group {id}")));
    assert!(server.instance_ids("cli.grp").is_empty());
    let ops = cli(&server, &["operations", "group"]);
    assert_ok(&ops);
    assert!(stdout(&ops).contains("pullout"), "{}", stdout(&ops));
    assert_ok(&cli(&server, &["pull-in", "group", "--group", &id]));
    assert_eq!(server.instance_ids("cli.grp"), ["i-1", "i-2"]);
    let logs = cli_json(&server, &["logs", "group", "--group", &id]);
    let logs = logs["logs"].as_array().unwrap().clone();
    assert_eq!(logs.len(), 2, "a pull-out and a pull-in: {logs:?}");
    assert!(logs.iter().all(|row| row["operatorId"] == "alice"));
    let pulled_in = cli_json(
        &server,
        &["logs", "group", "--group", &id, "--complete", "true"],
    );
    assert_eq!(pulled_in["logs"].as_array().map(Vec::len), Some(1));
    let changes = cli_json(&server, &["logs", "group-change", "--name", "default"]);
    assert!(!changes["logs"].as_array().unwrap().is_empty(), "{changes}");

    assert_ok(&cli(&server, &["group", "delete", &id]));
    let gone = cli(&server, &["group", "show", &id]);
    assert_eq!(gone.status.code(), Some(1), "{}", stderr(&gone));
    assert!(stderr(&gone).contains(&format!("no group {id}")));
    let gone = cli(&server, &["group", "update", &id, "--status", "active"]);
    assert_eq!(gone.status.code(), Some(1), "{}", stderr(&gone));
}

#[test]
fn route_rules_and_their_groups_weights_reach_discovery_once_released() {
    let server = Server::start(&[]);
    server.register_ok(&[instance("cli.route", "i-1")]);
    let group = cli(
        &server,
        &[
            "group",
            "create",
            "--service",
            "cli.route",
            "--zone",
            "SHAJQ",
            "--name",
            "blue",
        ],
    );
    assert_ok(&group);
    let group = id_after(&stdout(&group), "group ");

    let out = cli(
        &server,
        &[
            "route-rule",
            "create",
            "--service",
            "cli.route",
            "--name",
            "r1",
        ],
    );
    assert_ok(&out);
    let rule = id_after(&stdout(&out), "route rule ");
    let listed = cli(&server, &["route-rule", "list", "--service", "cli.route"]);
    assert_ok(&listed);
    assert!(
        stdout(&listed).contains("weighted-round-robin"),
        "{}",
        stdout(&listed)
    );
    let changed = [
        "route-rule",
        "update",
        &rule,
        "--strategy",
        "close-by-visit",
    ];
    assert_ok(&cli(&server, &changed));

    let add = [
        "route-rule-group",
        "add",
        "--route-rule",
        &rule,
        "--group",
        &group,
        "--weight",
        "30",
    ];
    let out = cli(&server, &add);
    assert_ok(&out);
    let row = id_after(&stdout(&out), "route-rule group ");
    let rows = cli_json(
        &server,
        &["route-rule-group", "list", "--route-rule", &rule],
    );
    assert_eq!(rows["routeRuleGroups"][0]["unreleasedWeight"], 30, "{rows}");
    assert_eq!(
        rows["routeRuleGroups"][0]["weight"],
        serde_json::Value::Null
    );
    // Not released: discovery shows Java's default weight.
    let routes = &server.service("cli.route")["routeRules"];
    assert_eq!(routes[0]["routeId"], "r1", "{routes}");
    assert_eq!(routes[0]["strategy"], "close-by-visit", "{routes}");
    assert_eq!(routes[0]["groups"][0]["weight"], 5, "{routes}");

    assert_ok(&cli(
        &server,
        &["route-rule-group", "update", &row, "--weight", "40"],
    ));
    assert_ok(&cli(&server, &["route-rule-group", "release", &row]));
    let routes = &server.service("cli.route")["routeRules"];
    assert_eq!(routes[0]["groups"][0]["weight"], 40, "{routes}");
    let shown = cli(&server, &["route-rule", "show", &rule]);
    assert_ok(&shown);
    let text = stdout(&shown);
    assert!(text.contains("strategy: close-by-visit"), "{text}");
    let weights = text.lines().last().unwrap_or_default();
    assert!(
        weights.starts_with(&row) && weights.ends_with("40      40"),
        "{text}"
    );

    let logs = cli_json(
        &server,
        &["logs", "route-rule-group", "--route-rule", &rule],
    );
    assert!(logs["logs"].as_array().unwrap().len() >= 3, "{logs}");
    let logs = cli_json(&server, &["logs", "route-rule", "--name", "r1"]);
    assert!(!logs["logs"].as_array().unwrap().is_empty(), "{logs}");

    assert_ok(&cli(&server, &["route-rule-group", "delete", &row]));
    assert_ok(&cli(&server, &["route-rule", "delete", &rule]));
    assert_eq!(
        server.service("cli.route")["routeRules"],
        serde_json::json!([])
    );
    let gone = cli(&server, &["route-rule", "show", &rule]);
    assert_eq!(gone.status.code(), Some(1), "{}", stderr(&gone));
    let gone = cli(&server, &["route-rule-group", "release", &row]);
    assert_eq!(gone.status.code(), Some(1), "{}", stderr(&gone));
}

#[test]
fn canary_show_lists_what_canary_set_wrote() {
    let server = Server::start(&[]);
    let set = [
        "canary",
        "set",
        "--service",
        "cli.canary2",
        "--app",
        "app1",
        "--ips",
        "10.0.0.1,10.0.0.2",
    ];
    assert_ok(&cli(&server, &set));
    let shown = cli(&server, &["canary", "show", "--service", "cli.canary2"]);
    assert_ok(&shown);
    let row = stdout(&shown)
        .lines()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    assert!(
        row.starts_with("app1") && row.ends_with("10.0.0.1,10.0.0.2"),
        "{row}"
    );
    let clear = [
        "canary",
        "set",
        "--service",
        "cli.canary2",
        "--app",
        "app1",
        "--ips",
        "",
    ];
    assert_ok(&cli(&server, &clear));
    let shown = cli_json(&server, &["canary", "show", "--service", "cli.canary2"]);
    assert_eq!(
        shown["canaries"][0]["ips"],
        serde_json::json!([]),
        "{shown}"
    );
    let none = cli_json(&server, &["canary", "show", "--service", "cli.none"]);
    assert_eq!(none["canaries"], serde_json::json!([]));
}

#[test]
fn every_log_kind_answers_with_its_rows() {
    let server = Server::start(&[]);
    for kind in [
        "instance",
        "server",
        "zone",
        "group",
        "group-operation",
        "group-change",
        "group-instance",
        "route-rule",
        "route-rule-group",
        "service-instance",
    ] {
        let reply = cli_json(&server, &["logs", kind]);
        assert_eq!(reply["logs"], serde_json::json!([]), "{kind}: {reply}");
        let out = cli(&server, &["logs", kind]);
        assert_ok(&out);
        assert_eq!(stdout(&out).trim(), "(no log rows)", "{kind}");
    }
    assert_ok(&cli(
        &server,
        &["pull-out", "zone", "--service", "s", "--zone", "z"],
    ));
    let zone = cli(
        &server,
        &["logs", "zone", "--service", "s", "--complete", "false"],
    );
    assert_ok(&zone);
    let text = stdout(&zone);
    assert!(
        text.starts_with("COMPLETE") && text.contains("alice"),
        "{text}"
    );
    let none = cli_json(&server, &["logs", "zone", "--operation", "other"]);
    assert_eq!(none["logs"], serde_json::json!([]));
}

#[test]
fn new_commands_exit_1_when_refused_and_2_on_usage_errors() {
    let server = Server::start(&["--management-token", "right"]);
    let create = [
        "group",
        "create",
        "--service",
        "s",
        "--zone",
        "z",
        "--name",
        "n",
        "--region",
        "SHA",
    ];
    let refused = cli(&server, &create);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("no-permission"),
        "{}",
        stderr(&refused)
    );
    let mut with_token = create.to_vec();
    with_token.extend(["--token", "right"]);
    assert_ok(&cli(&server, &with_token));
    // --json: the refusal's status on stdout as well.
    let out = cli(&server, &["tag", "set", "--group", "1", "k=v", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let status: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(status["responseStatus"]["errorCode"], "no-permission");

    for args in [
        &["tag", "set", "--group", "1", "novalue"][..],
        &["group", "delete"][..],
        &["group", "create", "--service", "s"][..],
        &["route-rule-group", "add", "--route-rule", "x"][..],
        &["logs", "group-change", "--group", "x"][..],
        &["group"][..],
        &["pull-out", "group"][..],
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
    let out = artemis(&["route-rule", "list", "--server", "http://127.0.0.1:1"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot reach"), "{}", stderr(&out));
    let out = artemis(&[
        "group",
        "create",
        "--service",
        "s",
        "--zone",
        "z",
        "--name",
        "n",
        "--operator",
        " ",
    ])
    .args([
        "--server",
        &format!("http://{}", server.addr),
        "--region",
        "SHA",
    ])
    .output()
    .expect("runs");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no operator"), "{}", stderr(&out));
}
