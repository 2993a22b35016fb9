//! Three nodes on loopback, as an operator runs them: a write to any node reaches every node's
//! discovery and subscribers, heartbeats to one node keep an instance alive everywhere, a
//! node killed with SIGKILL comes back `starting`, copies the registry, and serves nothing less
//! than its peers when it answers discovery again (the load generator heartbeating the survivors
//! meanwhile), and a slow or black-holed path to one node
//! leaves the others serving with bounded queues until the cluster converges after the heal.

mod common;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

use artemis_loadgen::{run, Config, Kind, Pacing, Share};
use common::artemis::{instance, instances, SHORT_LEASES};
use common::cluster::{TestCluster, TO_SPREAD};
use common::Proxy;
use common::{poll, Server};
use serde_json::Value;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// Whether `server` discovers exactly `ids` (in any order) for `service`.
fn discovers(server: &Server, service: &str, ids: &[&str]) -> bool {
    let found: BTreeSet<String> = server.instance_ids(service).into_iter().collect();
    found == ids.iter().map(|s| s.to_string()).collect()
}

/// Waits until every running node of `cluster` discovers exactly `ids` for `service`.
fn await_everywhere(cluster: &TestCluster, nodes: &[usize], service: &str, ids: &[&str]) {
    for &i in nodes {
        let seen = poll(TO_SPREAD, || {
            discovers(cluster.node(i), service, ids).then_some(())
        });
        if seen.is_none() {
            let log = cluster.node(i).log();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            panic!(
                "node {i} discovers {} instances of {service}, not the {} expected; its log ends:\n{}",
                cluster.node(i).instance_ids(service).len(),
                ids.len(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
}

#[test]
fn a_write_to_any_node_reaches_every_node() {
    let cluster = TestCluster::start(3, &[]);
    cluster.await_all_up();
    let service = "cluster.spread";
    cluster.node(0).register_ok(&[instance(service, "a:1")]);
    await_everywhere(&cluster, &[0, 1, 2], service, &["a:1"]);
    cluster.node(2).register_ok(&[instance(service, "b:1")]);
    await_everywhere(&cluster, &[0, 1, 2], service, &["a:1", "b:1"]);
    cluster.node(1).unregister(&[instance(service, "a:1")]);
    await_everywhere(&cluster, &[0, 1, 2], service, &["b:1"]);
}

#[test]
fn heartbeats_to_one_node_keep_an_instance_alive_on_all_and_expiry_spreads() {
    let cluster = TestCluster::start(3, SHORT_LEASES);
    cluster.await_all_up();
    let service = "cluster.leases";
    let (kept, left) = (instance(service, "kept:1"), instance(service, "left:1"));
    cluster.node(0).register_ok(&[&kept, &left]);
    await_everywhere(&cluster, &[0, 1, 2], service, &["kept:1", "left:1"]);
    // Three lease lifetimes of heartbeats to node 0 for one of the two.
    for _ in 0..12 {
        thread::sleep(Duration::from_millis(500));
        let reply = cluster.node(0).heartbeat(&[&kept]);
        assert_eq!(reply.json()["responseStatus"]["status"], "success");
    }
    await_everywhere(&cluster, &[0, 1, 2], service, &["kept:1"]);
}

type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

/// A subscriber on `server` to `service`.
fn subscriber(server: &Server, service: &str) -> Socket {
    let url = format!("ws://{}/ws/discovery/instance-change", server.addr);
    let (mut socket, _) = tungstenite::connect(url).expect("the handshake succeeds");
    if let MaybeTlsStream::Plain(stream) = socket.get_ref() {
        stream.set_read_timeout(Some(TO_SPREAD)).unwrap();
    }
    let config = format!(r#"{{"serviceId":"{service}"}}"#);
    socket.send(Message::text(config)).unwrap();
    socket
}

/// The next change frame's type and instance id.
fn next_change(socket: &mut Socket) -> (String, String) {
    loop {
        if let Message::Text(text) = socket.read().expect("a change in time") {
            let change: Value = serde_json::from_str(&text).unwrap();
            let id = change["instance"]["instanceId"]
                .as_str()
                .unwrap_or_default();
            return (
                change["changeType"].as_str().unwrap().to_string(),
                id.to_string(),
            );
        }
    }
}

#[test]
fn a_subscriber_on_one_node_is_pushed_a_register_on_another() {
    let cluster = TestCluster::start(3, &[]);
    cluster.await_all_up();
    let service = "cluster.push";
    let mut socket = subscriber(cluster.node(1), service);
    // The subscription is in place once a register on the subscriber's own node is pushed.
    let probe = instance(service, "probe:1");
    let mut first = None;
    for _ in 0..50 {
        cluster.node(1).register_ok(&[&probe]);
        if let MaybeTlsStream::Plain(stream) = socket.get_ref() {
            stream
                .set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
        }
        if let Ok(Message::Text(text)) = socket.read() {
            first = Some(text);
            break;
        }
    }
    assert!(first.is_some(), "the subscription never took");
    if let MaybeTlsStream::Plain(stream) = socket.get_ref() {
        stream.set_read_timeout(Some(TO_SPREAD)).unwrap();
    }
    cluster
        .node(0)
        .register_ok(&[instance(service, "remote:1")]);
    loop {
        let (kind, id) = next_change(&mut socket);
        if id == "remote:1" {
            assert_eq!(kind, "new");
            break;
        }
    }
}

/// Instances `from..to` of `service`, registered in batches of 100 on `server`.
fn register_range(server: &Server, service: &str, from: usize, to: usize) {
    let all: Vec<String> = (from..to)
        .map(|n| instance(service, &format!("i-{n}:1")))
        .collect();
    for batch in all.chunks(100) {
        let reply = server.post("/api/registry/register.json", &instances(batch));
        assert_eq!(reply.json()["responseStatus"]["status"], "success");
    }
}

#[test]
fn a_killed_node_comes_back_starting_and_then_misses_nothing() {
    let mut cluster = TestCluster::start(3, &[]);
    cluster.await_all_up();
    let service = "cluster.rejoin";
    register_range(cluster.node(0), service, 0, 300);
    // The load generator heartbeats a population of its own on the survivors the whole time.
    let load = {
        let (first, second) = (cluster.node(0).addr, cluster.node(1).addr);
        thread::spawn(move || {
            run(Config {
                target: format!("http://{first}"),
                more_targets: vec![format!("http://{second}")],
                scenario: vec![Share {
                    kind: Kind::Heartbeat,
                    weight: 1,
                }],
                region: common::REGION.to_owned(),
                zone: common::ZONE.to_owned(),
                prefill: 500,
                services: 50,
                pacing: Pacing::Rate(500.0),
                duration: Duration::from_secs(6),
                warmup: Duration::ZERO,
                connections: 4,
                cores: vec![0],
                quiet: true,
                ..Config::default()
            })
        })
    };
    cluster.kill(2);
    register_range(cluster.node(1), service, 300, 600);
    cluster.restart(2);
    // Until it has copied the registry it refuses discovery, as Java's SDK expects of a
    // starting node; once it answers, it has everything.
    let answered = poll(common::cluster::TO_JOIN, || {
        let reply = cluster.node(2).post(
            "/api/discovery/service.json",
            &format!(
                r#"{{"discoveryConfig":{{"serviceId":"{service}"}},"regionId":"{}","zoneId":"{}"}}"#,
                common::REGION,
                common::ZONE
            ),
        );
        let json = reply.json();
        match json["responseStatus"]["errorCode"].as_str() {
            Some("service-unavailable") => None,
            Some("success") => Some(json),
            other => panic!("unexpected answer {other:?}: {json}"),
        }
    });
    let json = answered.expect("the restarted node answers discovery");
    let count = json["service"]["instances"].as_array().map_or(0, Vec::len);
    assert_eq!(
        count, 600,
        "the restarted node's first answer misses instances"
    );
    let report = load.join().unwrap().expect("the load generator ran");
    let heartbeats = report.op("heartbeat").expect("a heartbeat row");
    assert!(heartbeats.ok > 0, "no heartbeat of the load went through");
}

/// The cluster of three whose every link to and from node 2 goes through a proxy of its own, and
/// those proxies.
fn cluster_with_node_2_behind_proxies(extra: &[&str]) -> (TestCluster, Vec<Proxy>) {
    let proxies = RefCell::new(Vec::new());
    let cluster = TestCluster::start_with(3, extra, |i, j, port| {
        if i == 2 || j == 2 {
            let proxy = Proxy::start(SocketAddr::from(([127, 0, 0, 1], port)));
            let url = format!("http://{}/", proxy.addr);
            proxies.borrow_mut().push(proxy);
            url
        } else {
            format!("http://127.0.0.1:{port}/")
        }
    });
    (cluster, proxies.into_inner())
}

#[test]
fn a_faulty_path_leaves_the_others_serving_with_bounded_queues_and_the_cluster_converges() {
    let queue_bound = 64 * 1024;
    let bound = format!("{queue_bound}");
    let (cluster, proxies) = cluster_with_node_2_behind_proxies(&[
        "--replication-queue",
        &bound,
        "--digest-interval",
        "1s",
    ]);
    cluster.await_all_up();
    let service = "cluster.faults";

    // A slow path: replication still gets through.
    proxies
        .iter()
        .for_each(|p| p.delay(Duration::from_millis(50)));
    cluster.node(0).register_ok(&[instance(service, "slow:1")]);
    await_everywhere(&cluster, &[0, 1, 2], service, &["slow:1"]);

    // A path that swallows everything: nodes 0 and 1 go on serving each other, and what waits
    // for node 2 stays within its bound, however much is written.
    proxies.iter().for_each(Proxy::black_hole);
    register_range(cluster.node(0), service, 0, 2000);
    let mut expected: Vec<String> = (0..2000).map(|n| format!("i-{n}:1")).collect();
    expected.push("slow:1".into());
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    await_everywhere(&cluster, &[0, 1], service, &expected);
    // The bound is split across a node's cores; one core here.
    let to_2 = format!(
        "artemis_replication_queue_bytes{{peer=\"http://{}/\"}}",
        proxies[0].addr
    );
    let queued = cluster.node(0).metric_once(&to_2).unwrap_or(0.0);
    assert!(
        queued <= queue_bound as f64,
        "{queued} bytes queued for node 2"
    );
    assert!(!discovers(cluster.node(2), service, &expected));

    // Healed: node 2 converges (replication retries within their TTL, then the digest pulls
    // what was dropped).
    proxies.iter().for_each(Proxy::restore);
    await_everywhere(&cluster, &[0, 1, 2], service, &expected);
}
