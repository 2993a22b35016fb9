//! Management data when things go wrong: a node killed right after a pull-out was acknowledged,
//! two nodes sharing one PostgreSQL, and a PostgreSQL that goes away mid-run and comes back.

mod common;

use std::time::{Duration, Instant};

use common::artemis::{I1, I1_SERVICE};
use common::postgres::{TestDatabase, ACROSS_NODES};
use common::Proxy;
use common::{poll, Server, TempDir};
use serde_json::Value;

const OPERATE_INSTANCE: &str = "/api/management/operate-instance.json";
const INSTANCE_DOWN: &str = "/api/management/instance-down.json";
const GROUPS: &str = "/api/management/group/get-all-groups.json";

/// The body of a pull-out (`complete == false`) or pull-in of I1.
fn operate_i1(complete: bool) -> String {
    format!(
        r#"{{"instanceKey":{{"regionId":"SHA","serviceId":"{I1_SERVICE}","instanceId":"10.2.3.4:8080"}},"operation":"pullout","operationComplete":{complete},"operatorId":"ops","token":"t"}}"#
    )
}

fn status_of(reply: &Value) -> (&str, &str) {
    let status = &reply["responseStatus"];
    (
        status["errorCode"].as_str().unwrap_or_default(),
        status["message"].as_str().unwrap_or_default(),
    )
}

fn post_json(server: &Server, path: &str, body: &str) -> Value {
    let reply = server.post(path, body);
    assert_eq!(reply.status, 200, "{path}: {}", reply.text());
    reply.json()
}

fn i1_is_discovered(server: &Server) -> bool {
    server
        .instance_ids(I1_SERVICE)
        .contains(&"10.2.3.4:8080".to_string())
}

fn i1_is_down(server: &Server) -> bool {
    let reply = post_json(server, INSTANCE_DOWN, &format!(r#"{{"instance":{I1}}}"#));
    reply["down"] == Value::Bool(true)
}

fn start_on(store: &[&str]) -> Server {
    let mut args = vec!["--management-reload", "1h"];
    args.extend_from_slice(store);
    Server::start(&args)
}

#[test]
fn an_acknowledged_pull_out_survives_kill_9() {
    let dir = TempDir::new("kill9");
    let data_dir = dir.path().to_str().unwrap();
    let server = start_on(&["--data-dir", data_dir]);
    server.register_ok(&[I1]);
    let reply = post_json(&server, OPERATE_INSTANCE, &operate_i1(false));
    assert_eq!(status_of(&reply).0, "success", "{reply}");
    assert!(!i1_is_discovered(&server));
    drop(server); // SIGKILL: no shutdown path runs.

    let again = start_on(&["--data-dir", data_dir]);
    again.register_ok(&[I1]);
    assert!(i1_is_down(&again));
    assert!(
        !i1_is_discovered(&again),
        "the pull-out came back with the restart"
    );
    let reply = post_json(&again, OPERATE_INSTANCE, &operate_i1(true));
    assert_eq!(status_of(&reply).0, "success", "{reply}");
    assert!(i1_is_discovered(&again));
}

#[test]
fn a_pull_out_on_one_node_leaves_the_other_nodes_discovery() {
    let Some(db) = TestDatabase::create("a_pull_out_on_one_node_leaves_the_other_nodes_discovery")
    else {
        return;
    };
    let url = db.url();
    let (a, b) = (
        start_on(&["--management-db", &url]),
        start_on(&["--management-db", &url]),
    );
    for node in [&a, &b] {
        node.register_ok(&[I1]);
        assert!(i1_is_discovered(node));
    }
    let reply = post_json(&a, OPERATE_INSTANCE, &operate_i1(false));
    assert_eq!(status_of(&reply).0, "success", "{reply}");
    assert!(!i1_is_discovered(&a));
    // The periodic reload is an hour away: only the change notice can bring it this soon.
    let started = Instant::now();
    let seen = poll(ACROSS_NODES, || (!i1_is_discovered(&b)).then_some(()));
    assert!(
        seen.is_some(),
        "node B still serves I1 after {ACROSS_NODES:?}"
    );
    eprintln!("pull-out reached the other node in {:?}", started.elapsed());
    assert!(i1_is_down(&b));

    post_json(&b, OPERATE_INSTANCE, &operate_i1(true));
    let back = poll(ACROSS_NODES, || i1_is_discovered(&a).then_some(()));
    assert!(back.is_some(), "the pull-in on B did not reach A");
}

#[test]
fn a_database_that_goes_away_refuses_writes_keeps_discovery_and_comes_back() {
    let Some(db) = TestDatabase::create("a_database_that_goes_away") else {
        return;
    };
    let proxy = Proxy::start(db.server());
    let server = start_on(&["--management-db", &db.url_via(Some(proxy.addr))]);
    server.register_ok(&[I1]);
    let reply = post_json(&server, OPERATE_INSTANCE, &operate_i1(false));
    assert_eq!(status_of(&reply).0, "success", "{reply}");

    proxy.cut();
    // A write while the database is away is refused, and says why.
    let reply = post_json(&server, OPERATE_INSTANCE, &operate_i1(true));
    let (code, message) = status_of(&reply);
    assert_eq!(code, "internal-service-error", "{reply}");
    assert!(message.contains("unavailable"), "{reply}");
    // Reads of management data say the same.
    let reply = post_json(&server, GROUPS, r#"{"regionId":"SHA"}"#);
    let (code, message) = status_of(&reply);
    assert_eq!(code, "internal-service-error", "{reply}");
    assert!(message.contains("unavailable"), "{reply}");
    // Discovery keeps the last state: the refused pull-in did not half-happen.
    assert!(!i1_is_discovered(&server));
    assert!(i1_is_down(&server));
    let other = common::artemis::instance("other.service", "o-1");
    server.register_ok(&[&other]);
    assert_eq!(server.instance_ids("other.service"), ["o-1"]);

    proxy.restore();
    let within = Duration::from_secs(15);
    let done = poll(within, || {
        let reply = post_json(&server, OPERATE_INSTANCE, &operate_i1(true));
        (status_of(&reply).0 == "success").then_some(())
    });
    assert!(
        done.is_some(),
        "writes still refused {within:?} after the database came back"
    );
    assert!(i1_is_discovered(&server));
}
