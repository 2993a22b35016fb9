//! A cluster's membership: nodes on loopback that poll
//! each other's status, describe the whole cluster in `status/cluster.json` and
//! `cluster/up-*-nodes.json` with Java's zone rule, join by copying the registry from an up
//! peer (or come up together from a cold start, or after `--join-timeout`), refuse clients
//! while `starting`, and take replication only from their peers, with the cluster token when
//! there is one, in the exact bytes a Java node sends.

mod common;

use std::io::{Read, Write};
use std::thread;
use std::time::Duration;

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::Value;
use tungstenite::Message;

use common::artemis::{
    instance, instances, service_request, HEARTBEAT, I1, I1_SERVICE, LEASES, REGISTER,
    REGISTRY_SUCCESS, SERVICE, UNREGISTER,
};
use common::json::{assert_body, fail_status, SUCCESS};
use common::{free_port, poll, Reply, Server};

const REPLICATE_REGISTER: &str = "/api/replication/registry/register.json";
const REPLICATE_HEARTBEAT: &str = "/api/replication/registry/heartbeat.json";
const REPLICATE_UNREGISTER: &str = "/api/replication/registry/unregister.json";
const REPLICATED_SERVICES: &str = "/api/replication/registry/services.json";

/// How long a node may take to join, or a status to reach a peer (polled every 200 ms).
const WAIT: Duration = Duration::from_secs(30);

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/")
}

/// This node's `ServiceNode` in `zone`.
fn service_node(port: u16, zone: &str) -> String {
    format!(
        r#"{{"url":"{}","zone":{{"metadata":null,"regionId":"SHA","zoneId":"{zone}"}}}}"#,
        url(port)
    )
}

/// A node on `port` of the cluster `nodes` (its `--cluster-nodes`), polling its peers every
/// 200 ms, with `extra` flags; `status/cluster.json` is not rate-limited, for tests to poll it.
fn node(port: u16, nodes: &str, extra: &[&str]) -> Server {
    let (addr, me) = (format!("127.0.0.1:{port}"), url(port));
    let mut args = vec![
        "--addr",
        &addr,
        "--node-url",
        &me,
        "--cluster-nodes",
        nodes,
        "--peer-status-interval",
        "200ms",
        "--status-rate-limit",
        "1000000",
    ];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// Waits until `server` says `up`.
fn await_up(server: &Server) {
    let up = poll(WAIT, || {
        let reply = server.post("/api/status/node.json", "{}");
        (reply.json()["nodeStatus"]["status"] == "up").then_some(())
    });
    assert!(up.is_some(), "not up in time; its log:\n{}", server.log());
}

/// The `nodeStatus` object of `server`'s `status/node.json`, as sent.
fn own_status(server: &Server) -> String {
    let reply = server.post("/api/status/node.json", "{}");
    let text = reply.text();
    let object = text
        .strip_prefix(r#"{"nodeStatus":"#)
        .expect("nodeStatus first");
    object[..object.find(r#","responseStatus""#).unwrap()].to_string()
}

/// `{"nodes":[..],"responseStatus":SUCCESS}` of `nodes`.
fn nodes_reply(nodes: &[String]) -> String {
    format!(
        r#"{{"nodes":[{}],"responseStatus":{SUCCESS}}}"#,
        nodes.join(",")
    )
}

const NO_NODES: &str = r#"{"nodes":null,"responseStatus":{"errorCode":"data-not-found","message":"No available service nodes.","status":"fail"}}"#;

#[test]
fn every_node_is_listed_with_the_status_it_sent() {
    let (a_port, b_port) = (free_port(), free_port());
    let nodes = format!("{},{}", url(a_port), url(b_port));
    let a = node(a_port, &nodes, &["--join-timeout", "30s"]);
    let b = node(b_port, &nodes, &["--join-timeout", "30s"]);
    await_up(&a);
    await_up(&b);
    let expected = format!(
        r#"{{"nodeCount":2,"nodesStatus":[{},{}],"responseStatus":{SUCCESS}}}"#,
        own_status(&a),
        own_status(&b)
    );
    let listed = poll(WAIT, || {
        let reply = a.post("/api/status/cluster.json", "{}");
        (reply.text() == expected).then_some(())
    });
    assert!(
        listed.is_some(),
        "{}",
        a.post("/api/status/cluster.json", "{}").text()
    );
    let both = nodes_reply(&[service_node(a_port, "SHAJQ"), service_node(b_port, "SHAJQ")]);
    for path in [
        "/api/cluster/up-registry-nodes.json",
        "/api/cluster/up-discovery-nodes.json",
    ] {
        assert_body(
            &a.post(path, r#"{"regionId":"SHA","zoneId":"SHAJQ"}"#),
            &both,
        );
    }
}

#[test]
fn a_peer_that_never_answered_is_unknown_and_its_node_joins_after_the_join_timeout() {
    let (port, silent) = (free_port(), free_port());
    let nodes = format!("{},{}", url(port), url(silent));
    let server = node(port, &nodes, &["--join-timeout", "1s"]);
    let unknown = format!(
        r#"{{"allowDiscoveryFromOtherZone":null,"allowRegistryFromOtherZone":null,"canServiceDiscovery":null,"canServiceRegistry":null,"node":{},"status":"unknown"}}"#,
        service_node(silent, "SHAJQ")
    );
    let cluster = server.post("/api/status/cluster.json", "{}");
    assert!(cluster
        .text()
        .ends_with(&format!(r#",{unknown}],"responseStatus":{SUCCESS}}}"#)));
    assert_eq!(cluster.json()["nodeCount"], 2);
    await_up(&server);
    let log = server.log();
    let why = format!(
        "joined the cluster without a copy of the registry after --join-timeout 1s: no peer is up and not every peer answered: {} did not answer (cannot connect",
        url(silent)
    );
    assert!(log.contains(&why), "{log}");
    assert_body(
        &server.get("/api/cluster/up-registry-nodes.json?regionId=SHA&zoneId=SHAJQ"),
        &nodes_reply(&[service_node(port, "SHAJQ")]),
    );
}

#[test]
fn up_nodes_follow_each_nodes_zone_rule() {
    let (a_port, b_port) = (free_port(), free_port());
    let nodes = format!("zoneA:{};zoneB:{}", url(a_port), url(b_port));
    let strict = ["--allow-discovery-from-other-zone", "false"];
    let start = |port, zone| {
        let flags = [&strict[..], &["--zone", zone, "--join-timeout", "30s"]].concat();
        node(port, &nodes, &flags)
    };
    let (a, b) = (start(a_port, "zoneA"), start(b_port, "zoneB"));
    await_up(&a);
    await_up(&b);
    let (node_a, node_b) = (service_node(a_port, "zoneA"), service_node(b_port, "zoneB"));
    let both = nodes_reply(&[node_a.clone(), node_b.clone()]);
    let registry = "/api/cluster/up-registry-nodes.json";
    let b_seen = poll(WAIT, || {
        (a.get(&format!("{registry}?regionId=SHA&zoneId=elsewhere"))
            .text()
            == both)
            .then_some(())
    });
    assert!(b_seen.is_some(), "node b never listed by node a");
    let discovery = |zone: &str| {
        a.post(
            "/api/cluster/up-discovery-nodes.json",
            &format!(r#"{{"regionId":"SHA","zoneId":"{zone}"}}"#),
        )
    };
    assert_body(&discovery("zoneA"), &nodes_reply(&[node_a]));
    assert_body(&discovery("zoneB"), &nodes_reply(&[node_b]));
    // Java compares the zone exactly, case included.
    assert_body(&discovery("zonea"), NO_NODES);
    assert_body(&discovery("elsewhere"), NO_NODES);
}

/// The reply to a client's registry write while the node on `port` is `starting`.
fn registry_refusal(port: u16) -> String {
    format!(
        r#"{{"failedInstances":null,"responseStatus":{}}}"#,
        fail_status(
            "service-unavailable",
            &format!("Serivce registry is not in up state. Current status: {{ node: {}, status: starting, canServiceRegistry: false, canServiceDiscovery: false }}", url(port))
        )
    )
}

#[test]
fn a_starting_node_refuses_clients_and_is_left_out_but_takes_replication() {
    let (port, silent) = (free_port(), free_port());
    let nodes = format!("{},{}", url(port), url(silent));
    let server = node(port, &nodes, &["--join-timeout", "10m"]);
    assert_body(
        &server.get("/api/status/node.json"),
        &format!(
            r#"{{"nodeStatus":{{"allowDiscoveryFromOtherZone":true,"allowRegistryFromOtherZone":true,"canServiceDiscovery":false,"canServiceRegistry":false,"node":{},"status":"starting"}},"responseStatus":{SUCCESS}}}"#,
            service_node(port, "SHAJQ")
        ),
    );
    for path in [REGISTER, HEARTBEAT, UNREGISTER] {
        assert_body(
            &server.post(path, &instances(&[I1])),
            &registry_refusal(port),
        );
    }
    let (mut socket, _) =
        tungstenite::connect(format!("ws://{}/ws/registry/heartbeat", server.addr))
            .expect("the handshake succeeds");
    socket.send(Message::text(instances(&[I1]))).unwrap();
    let over_ws = loop {
        if let Message::Text(text) = socket.read().expect("a reply") {
            break text.to_string();
        }
    };
    assert_eq!(over_ws, registry_refusal(port));
    assert_body(
        &server.post(SERVICE, &service_request(I1_SERVICE)),
        &format!(
            r#"{{"responseStatus":{},"service":null}}"#,
            fail_status(
                "service-unavailable",
                &format!("Serivce discovery is not in up state. Current status: {{ node: {}, status: starting, canServiceRegistry: false, canServiceDiscovery: false }}", url(port))
            )
        ),
    );
    for path in [
        "/api/cluster/up-registry-nodes.json",
        "/api/cluster/up-discovery-nodes.json",
    ] {
        assert_body(
            &server.post(path, r#"{"regionId":"SHA","zoneId":"SHAJQ"}"#),
            NO_NODES,
        );
    }
    // A peer's replication is no client call: taken whatever the node's status.
    assert_body(
        &server.post(REPLICATE_REGISTER, &instances(&[I1])),
        REGISTRY_SUCCESS,
    );
    let services = server.get(&format!("{REPLICATED_SERVICES}?regionId=SHA"));
    assert!(services.text().contains(I1), "{}", services.text());
}

#[test]
fn a_joining_node_copies_the_registry_of_an_up_peer_before_it_serves() {
    let (a_port, b_port) = (free_port(), free_port());
    let nodes = format!("{},{}", url(a_port), url(b_port));
    let token = ["--cluster-token", "s3cret"];
    // Node b comes up alone: node a does not answer within b's join timeout.
    let b = node(
        b_port,
        &nodes,
        &[&token[..], &["--join-timeout", "1s"]].concat(),
    );
    await_up(&b);
    let registered = [
        instance("join.copy.a", "a:1"),
        instance("join.copy.a", "a:2"),
        instance("join.copy.b", "b:1"),
    ];
    b.register_ok(&registered);
    let a = node(
        a_port,
        &nodes,
        &[&token[..], &["--join-timeout", "30s"]].concat(),
    );
    await_up(&a);
    assert_eq!(a.instance_ids("join.copy.a"), ["a:1", "a:2"]);
    assert_eq!(a.instance_ids("join.copy.b"), ["b:1"]);
    let log = a.log();
    let copied = format!(
        "{} joined the cluster: copied 2 services, 3 instances from {}",
        url(a_port),
        url(b_port)
    );
    assert!(log.contains(&copied), "{log}");
}

#[test]
fn a_cold_start_brings_every_node_up_with_nothing_to_copy() {
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let nodes: Vec<String> = ports.iter().map(|&p| url(p)).collect();
    let nodes = nodes.join(",");
    let servers: Vec<Server> = ports
        .iter()
        .map(|&port| node(port, &nodes, &["--join-timeout", "10m"]))
        .collect();
    for server in &servers {
        await_up(server);
    }
    let logs: Vec<String> = servers.iter().map(Server::log).collect();
    assert!(
        logs.iter().any(|log| log.contains(
            "joined the cluster with nothing to copy: every peer answered and none is up (a cold start)"
        )),
        "{logs:#?}"
    );
    assert!(
        logs.iter().all(|log| !log.contains("--join-timeout")),
        "{logs:#?}"
    );
}

/// The `no-permission` reply of a replication write refused with `why`.
fn refused_write(why: &str) -> String {
    format!(
        r#"{{"failedInstances":null,"responseStatus":{}}}"#,
        fail_status("no-permission", why)
    )
}

const STRANGER: &str = "replication is accepted from the cluster's nodes only";

#[test]
fn replication_is_refused_to_addresses_that_are_not_peers() {
    // The only peer is at 127.0.0.2; this test's client connects from 127.0.0.1.
    let port = free_port();
    let nodes = format!("{},http://127.0.0.2:{}/", url(port), free_port());
    let server = node(port, &nodes, &["--join-timeout", "1s"]);
    for path in [
        REPLICATE_REGISTER,
        REPLICATE_HEARTBEAT,
        REPLICATE_UNREGISTER,
    ] {
        assert_body(
            &server.post(path, &instances(&[I1])),
            &refused_write(STRANGER),
        );
    }
    let no_services = format!(
        r#"{{"responseStatus":{},"services":null}}"#,
        fail_status("no-permission", STRANGER)
    );
    assert_body(
        &server.post(REPLICATED_SERVICES, r#"{"regionId":"SHA"}"#),
        &no_services,
    );
    assert_body(
        &server.get(&format!("{REPLICATED_SERVICES}?regionId=SHA")),
        &no_services,
    );
}

#[test]
fn a_node_alone_takes_replication_from_loopback_and_with_a_token_only_with_it() {
    let alone = Server::start(&[]);
    assert_body(
        &alone.post(REPLICATE_REGISTER, &instances(&[I1])),
        REGISTRY_SUCCESS,
    );
    assert_eq!(alone.instance_ids(I1_SERVICE), ["10.2.3.4:8080"]);

    let secured = Server::start(&["--cluster-token", "s3cret"]);
    let post = |authorization: Option<&str>| {
        let mut headers = vec![("Content-Type", "application/json")];
        headers.extend(authorization.map(|value| ("Authorization", value)));
        let body = instances(&[I1]);
        secured.exchange(&common::client::request(
            "POST",
            REPLICATE_REGISTER,
            &headers,
            body.as_bytes(),
        ))
    };
    let no_token = refused_write("replication needs the cluster token (Authorization: Bearer)");
    assert_body(&post(None), &no_token);
    assert_body(&post(Some("Bearer wrong")), &no_token);
    assert_body(&post(Some("Bearer s3cret")), REGISTRY_SUCCESS);
}

#[test]
fn a_replicated_heartbeat_for_an_unknown_lease_registers_and_no_zone_is_checked() {
    let server = Server::start(&["--allow-registry-from-other-zone", "false"]);
    let elsewhere = instance("replicated.heartbeat", "x:1").replace("SHAJQ", "OTHERZONE");
    let first_error = |reply: Reply| reply.json()["failedInstances"][0]["errorCode"].clone();
    assert_eq!(first_error(server.register(&[&elsewhere])), "no-permission");
    let heartbeat = || server.post(REPLICATE_HEARTBEAT, &instances(&[&elsewhere]));
    assert_body(&heartbeat(), REGISTRY_SUCCESS);
    assert_eq!(server.instance_ids("replicated.heartbeat"), ["x:1"]);
    // A second one renews the lease the first made.
    let lease = || {
        let leases = server.post(LEASES, r#"{"serviceIds":["replicated.heartbeat"]}"#);
        leases.json()["leases"]["replicated.heartbeat"][0].clone()
    };
    let made = lease();
    thread::sleep(Duration::from_millis(20));
    assert_body(&heartbeat(), REGISTRY_SUCCESS);
    let renewed = lease();
    assert_eq!(renewed["creationTime"], made["creationTime"]);
    assert_ne!(renewed["renewalTime"], made["renewalTime"]);
    let other_region = elsewhere.replace("\"SHA\"", "\"FRA\"");
    let refused = server.post(REPLICATE_REGISTER, &instances(&[&other_region]));
    assert_eq!(first_error(refused), "no-permission");
    assert_body(
        &server.post(REPLICATE_UNREGISTER, &instances(&[&elsewhere])),
        REGISTRY_SUCCESS,
    );
    assert!(server.instance_ids("replicated.heartbeat").is_empty());
}

#[test]
fn replicated_services_are_the_raw_registry_pulled_out_instances_included() {
    let server = Server::start(&[]);
    server.register_ok(&[I1]);
    let pull_out = format!(
        r#"{{"instanceKey":{{"regionId":"SHA","serviceId":"{I1_SERVICE}","instanceId":"10.2.3.4:8080"}},"operation":"pullout","operationComplete":false,"operatorId":"ops","token":"t"}}"#
    );
    let written = server.post("/api/management/operate-instance.json", &pull_out);
    assert_body(&written, &format!(r#"{{"responseStatus":{SUCCESS}}}"#));
    assert!(server.instance_ids(I1_SERVICE).is_empty(), "pulled out");
    let raw = format!(
        r#"{{"responseStatus":{SUCCESS},"services":[{{"instances":[{I1}],"logicInstances":null,"metadata":null,"routeRules":null,"serviceId":"{I1_SERVICE}"}}]}}"#
    );
    assert_body(
        &server.post(REPLICATED_SERVICES, r#"{"regionId":"sha","zoneId":"any"}"#),
        &raw,
    );
    assert_body(
        &server.get(&format!("{REPLICATED_SERVICES}?regionId=SHA")),
        &raw,
    );
    let wrong_region = format!(
        r#"{{"responseStatus":{},"services":null}}"#,
        fail_status(
            "no-permission",
            "regionId is not the same as the registry node. regionId: FRA, registry node.regionId: SHA"
        )
    );
    assert_body(
        &server.post(REPLICATED_SERVICES, r#"{"regionId":"FRA"}"#),
        &wrong_region,
    );
    let no_region = server.get(REPLICATED_SERVICES);
    assert_eq!(
        no_region.json()["responseStatus"]["errorCode"],
        "no-permission"
    );
}

/// `POST path` as Java's replication client sends it: `Content-Type` and `Accept` twice, a
/// gzipped body in two chunks, `Connection: Keep-Alive`.
fn java_replication_request(port: u16, path: &str, json: &str) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(json.as_bytes()).unwrap();
    let packed = gz.finish().unwrap();
    let mut out = format!(
        "POST {path} HTTP/1.1\r\n\
         Content-Type: application/json\r\n\
         Accept: application/json\r\n\
         Content-Encoding: gzip\r\n\
         Content-Type: application/json\r\n\
         Accept: application/json\r\n\
         Transfer-Encoding: chunked\r\n\
         Host: 127.0.0.1:{port}\r\n\
         Connection: Keep-Alive\r\n\
         User-Agent: Apache-HttpClient/4.5.2 (Java/1.8.0_152)\r\n\
         Accept-Encoding: gzip,deflate\r\n\r\n"
    )
    .into_bytes();
    let (first, second) = packed.split_at(packed.len() / 2);
    for chunk in [first, second] {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// The body of `reply`, inflated when it came gzipped.
fn inflated(reply: &Reply) -> String {
    if reply.header("Content-Encoding") != Some("gzip") {
        return reply.text().to_string();
    }
    let mut text = String::new();
    GzDecoder::new(&reply.body[..])
        .read_to_string(&mut text)
        .unwrap();
    text
}

#[test]
fn the_bytes_a_java_node_replicates_with_are_accepted() {
    let server = Server::start(&[]);
    let port = server.addr.port();
    let mut connection = server.connect();
    let body = instances(&[I1]);
    for path in [REPLICATE_REGISTER, REPLICATE_HEARTBEAT] {
        connection.send(&java_replication_request(port, path, &body));
        let reply = connection.read_reply();
        assert_eq!(reply.status, 200);
        assert!(!reply.closes(), "the connection is kept alive");
        assert_eq!(inflated(&reply), REGISTRY_SUCCESS);
    }
    let json: Value = serde_json::from_str(I1).unwrap();
    assert_eq!(server.service(I1_SERVICE)["instances"][0], json);
}
