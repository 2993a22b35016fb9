//! Anti-entropy between two nodes on loopback: whatever replication did not deliver (writes one
//! node took alone, a partition), the nodes converge by comparing digests, within a few digest
//! intervals of 500 ms; and an instance one node saw unregistered is not brought back by the
//! other's stale copy. Replication work is dropped after 100 ms here, so what a partition held
//! back is not delivered late: only anti-entropy can repair it. A peer without the digest
//! endpoint (a stand-in for a Java node) gives its whole registry, whose missing instances are
//! added and nothing else.

mod common;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::artemis::{instance, instances};
use common::cluster::TestCluster;
use common::free_port;
use common::Proxy;
use common::{poll, Server};

/// Flags of every node: digests compared every 500 ms, replication work dropped after 100 ms,
/// leases long enough to outlive the test without heartbeats.
const FLAGS: &[&str] = &[
    "--digest-interval",
    "500ms",
    "--replication-task-ttl",
    "100ms",
    "--lease-ttl",
    "120s",
];

/// How long the nodes may take to converge: many digest intervals (this only bounds a failing
/// test; the nodes normally converge within one or two).
const TO_CONVERGE: Duration = Duration::from_secs(20);

fn discovered(server: &Server, service: &str) -> BTreeSet<String> {
    server.instance_ids(service).into_iter().collect()
}

fn ids(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Waits until every node discovers exactly `expected` for `service`.
fn await_on_both(cluster: &TestCluster, service: &str, expected: &[&str]) {
    for i in 0..cluster.len() {
        let seen = poll(TO_CONVERGE, || {
            (discovered(cluster.node(i), service) == ids(expected)).then_some(())
        });
        assert!(
            seen.is_some(),
            "node {i} discovers {:?} for {service}, not {expected:?}",
            discovered(cluster.node(i), service)
        );
    }
}

/// Several digest intervals pass with every node discovering exactly `expected`.
fn stays_on_both(cluster: &TestCluster, service: &str, expected: &[&str]) {
    for _ in 0..6 {
        thread::sleep(Duration::from_millis(250));
        for i in 0..cluster.len() {
            assert_eq!(
                discovered(cluster.node(i), service),
                ids(expected),
                "node {i}"
            );
        }
    }
}

/// A write `server` takes alone: through its replication endpoint, from which nothing is
/// replicated further (the test runs on the peers' address, loopback).
fn alone(server: &Server, op: &str, list: &[&str]) {
    let path = format!("/api/replication/registry/{op}.json");
    let reply = server.post(&path, &instances(list));
    assert_eq!(
        reply.json()["responseStatus"]["status"],
        "success",
        "{reply:?}"
    );
}

/// Whether `server` says its peer is up.
fn sees_peer_up(server: &Server) -> bool {
    let reply = server.post("/api/status/cluster.json", "{}");
    reply.json()["nodesStatus"][1]["status"] == "up"
}

/// `{peer="<url>"}` of node `j` as the other node lists it.
fn peer_label(url: &str) -> String {
    format!("peer=\"{url}\"")
}

#[test]
fn writes_one_node_took_alone_reach_the_other_and_its_removal_is_not_undone() {
    let cluster = TestCluster::start(2, FLAGS);
    cluster.await_all_up();
    let service = "anti.entropy.alone";
    let (kept, gone) = (instance(service, "kept:1"), instance(service, "gone:1"));
    let (on_a, on_b) = (instance(service, "a:1"), instance(service, "b:1"));
    cluster.node(0).register_ok(&[&kept, &gone]);
    await_on_both(&cluster, service, &["gone:1", "kept:1"]);

    alone(cluster.node(0), "register", &[&on_a]);
    alone(cluster.node(1), "register", &[&on_b]);
    alone(cluster.node(1), "unregister", &[&gone]);
    await_on_both(&cluster, service, &["a:1", "b:1", "kept:1"]);
    stays_on_both(&cluster, service, &["a:1", "b:1", "kept:1"]);

    // A merged B's register and removal; B merged A's register, and kept A's stale copy out.
    let a_from_b = peer_label(&format!("http://127.0.0.1:{}/", cluster.port(1)));
    let b_from_a = peer_label(&format!("http://127.0.0.1:{}/", cluster.port(0)));
    let merged = |node: usize, labels: &str, change: &str| {
        let series =
            format!("artemis_anti_entropy_instances_total{{{labels},change=\"{change}\"}}");
        cluster.node(node).metric(&series)
    };
    assert_eq!(merged(0, &a_from_b, "added"), 1.0);
    assert_eq!(merged(0, &a_from_b, "removed"), 1.0);
    assert_eq!(merged(1, &b_from_a, "added"), 1.0);
    assert_eq!(merged(1, &b_from_a, "removed"), 0.0);
    for (node, labels) in [(0, &a_from_b), (1, &b_from_a)] {
        let equal = format!("artemis_anti_entropy_last_result{{{labels},result=\"equal\"}}");
        let settled = poll(TO_CONVERGE, || {
            (cluster.node(node).metric(&equal) == 1.0).then_some(())
        });
        assert!(
            settled.is_some(),
            "node {node}'s digest never equals its peer's"
        );
    }
}

#[test]
fn a_healed_partition_converges_and_what_one_side_unregistered_stays_unregistered() {
    // Each node reaches the other through a proxy of its own, which the test cuts.
    let proxies = RefCell::new(Vec::new());
    let cluster = TestCluster::start_with(2, FLAGS, |_, _, port| {
        let proxy = Proxy::start(SocketAddr::from(([127, 0, 0, 1], port)));
        let url = format!("http://{}/", proxy.addr);
        proxies.borrow_mut().push(proxy);
        url
    });
    let proxies = proxies.into_inner();
    cluster.await_all_up();
    let service = "anti.entropy.partition";
    let stale = instance(service, "stale:1");
    cluster.node(0).register_ok(&[&stale]);
    await_on_both(&cluster, service, &["stale:1"]);

    for proxy in &proxies {
        proxy.cut();
    }
    for i in 0..2 {
        let apart = poll(TO_CONVERGE, || {
            (!sees_peer_up(cluster.node(i))).then_some(())
        });
        assert!(apart.is_some(), "node {i} still sees its peer up");
    }
    cluster.node(0).register_ok(&[instance(service, "a:1")]);
    cluster.node(1).register_ok(&[instance(service, "b:1")]);
    cluster.node(1).unregister(&[&stale]);
    assert_eq!(
        discovered(cluster.node(0), service),
        ids(&["a:1", "stale:1"])
    );
    assert_eq!(discovered(cluster.node(1), service), ids(&["b:1"]));
    // Longer than the replication task TTL: what replication held back is gone.
    thread::sleep(Duration::from_millis(500));

    for proxy in &proxies {
        proxy.restore();
    }
    await_on_both(&cluster, service, &["a:1", "b:1"]);
    stays_on_both(&cluster, service, &["a:1", "b:1"]);
}

/// A stand-in for a Java Artemis node: `up`, no digest endpoint (404), `services.json` with the
/// instances the test gives it, and every replicated write taken.
struct JavaPeer {
    port: u16,
    /// The JSON instances its `services.json` lists, all of one service.
    instances: Arc<Mutex<Vec<String>>>,
}

const SUCCESS: &str = r#"{"errorCode":"success","message":"","status":"success"}"#;

impl JavaPeer {
    fn start() -> JavaPeer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().unwrap().port();
        let instances: Arc<Mutex<Vec<String>>> = Arc::default();
        let listed = instances.clone();
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let listed = listed.clone();
                thread::spawn(move || JavaPeer::serve(conn, port, &listed));
            }
        });
        JavaPeer { port, instances }
    }

    /// Answers the requests of one keep-alive connection.
    fn serve(conn: TcpStream, port: u16, listed: &Mutex<Vec<String>>) {
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut conn = conn;
        loop {
            let mut head = String::new();
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                head.push_str(&line);
                line.clear();
            }
            let Some(path) = head.split(' ').nth(1) else {
                return;
            };
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(str::to_owned)
                })
                .map_or(0, |n| n.trim().parse().unwrap());
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            let (status, reply) = match path {
                "/api/status/node.json" => (
                    "200 OK",
                    format!(
                        r#"{{"nodeStatus":{{"allowDiscoveryFromOtherZone":true,"allowRegistryFromOtherZone":true,"canServiceDiscovery":true,"canServiceRegistry":true,"node":{{"url":"http://127.0.0.1:{port}/","zone":{{"metadata":null,"regionId":"SHA","zoneId":"SHAJQ"}}}},"status":"up"}},"responseStatus":{SUCCESS}}}"#
                    ),
                ),
                "/api/replication/registry/services.json" => {
                    let listed = listed.lock().unwrap().join(",");
                    let services = match listed.is_empty() {
                        true => String::new(),
                        false => {
                            format!(r#"{{"instances":[{listed}],"serviceId":"anti.entropy.java"}}"#)
                        }
                    };
                    (
                        "200 OK",
                        format!(r#"{{"responseStatus":{SUCCESS},"services":[{services}]}}"#),
                    )
                }
                "/api/replication/registry/digest.json" => ("404 Not Found", String::new()),
                _ => ("200 OK", format!(r#"{{"responseStatus":{SUCCESS}}}"#)),
            };
            let reply = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{reply}",
                reply.len()
            );
            if conn.write_all(reply.as_bytes()).is_err() {
                return;
            }
        }
    }
}

#[test]
fn a_java_peers_missing_instances_are_added_and_nothing_else() {
    let java = JavaPeer::start();
    let port = free_port();
    let (addr, me) = (
        format!("127.0.0.1:{port}"),
        format!("http://127.0.0.1:{port}/"),
    );
    let nodes = format!("{me},http://127.0.0.1:{}/", java.port);
    let mut args = vec![
        "--addr",
        &addr,
        "--node-url",
        &me,
        "--cluster-nodes",
        &nodes,
    ];
    args.extend_from_slice(&["--peer-status-interval", "200ms"]);
    args.extend_from_slice(FLAGS);
    let node = Server::start(&args);
    let up = poll(TO_CONVERGE, || {
        let reply = node.post("/api/status/node.json", "{}");
        (reply.json()["nodeStatus"]["status"] == "up").then_some(())
    });
    assert!(up.is_some(), "not up; its log:\n{}", node.log());
    let service = "anti.entropy.java";
    let (gone, ours) = (instance(service, "gone:1"), instance(service, "ours:1"));
    node.register_ok(&[&gone, &ours]);
    node.unregister(&[&gone]);

    let (java_only, changed) = (instance(service, "java:1"), instance(service, "ours:1"));
    let changed = changed.replace("http://ours:1/", "http://elsewhere/");
    *java.instances.lock().unwrap() = vec![java_only, gone, changed];
    let added = poll(TO_CONVERGE, || {
        (discovered(&node, service) == ids(&["java:1", "ours:1"])).then_some(())
    });
    assert!(
        added.is_some(),
        "discovers {:?}",
        discovered(&node, service)
    );
    // Nothing replaced (Java tells no times), and what this node unregistered stays out.
    thread::sleep(Duration::from_millis(1_500));
    assert_eq!(discovered(&node, service), ids(&["java:1", "ours:1"]));
    let url = node.service(service)["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["instanceId"] == "ours:1")
        .map(|i| i["url"].clone());
    assert_eq!(url, Some("http://ours:1/".into()));
    let pulled = format!(
        "artemis_anti_entropy_instances_total{{peer=\"http://127.0.0.1:{}/\",change=\"added\"}}",
        java.port
    );
    assert_eq!(node.metric(&pulled), 1.0);
}
