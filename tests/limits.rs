//! Every limit bites with a clear answer and a metric, and costs the offender, not the others:
//! the rate limiter's `rate-limited` replies (registry operations over HTTP and WebSocket, the
//! status and cluster operations, one budget for the whole node whichever core serves), the
//! connection caps, the pipeline depth, the head and body sizes, the request and idle timeouts,
//! and a burst of malformed requests on many connections.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use serde_json::Value;
use tungstenite::Message;

use common::artemis::{
    instance, instances, service_request, HEARTBEAT, LEASES, LEGACY_LEASES, REGISTER,
    REGISTRY_SUCCESS, SERVICE, SERVICES,
};
use common::client::request;
use common::json::{assert_body, error_code};
use common::{get_request, poll, post_request, Client, Reply, Server};

/// Reference exchange 11 of docs/compatibility.md.
const RATE_LIMITED: &str =
    r#"{"errorCode":"rate-limited","message":"Request is rate limited.","status":"fail"}"#;

fn rate_limited_body(fields: &str) -> String {
    format!(r#"{{{fields}"responseStatus":{RATE_LIMITED}}}"#)
}

/// A registry reply the rate limiter refused: HTTP 200, Java's exact body.
fn assert_registry_rate_limited(reply: &Reply) {
    assert_body(reply, &rate_limited_body(r#""failedInstances":null,"#));
}

fn is_rate_limited(reply: &Reply) -> bool {
    reply.status == 200 && error_code(&reply.json()) == "rate-limited"
}

fn rejections(server: &Server, limit: &str) -> f64 {
    server.metric(&format!(
        "artemis_limit_rejections_total{{limit=\"{limit}\"}}"
    ))
}

fn rate_limited_count(server: &Server, limiter: &str, op: &str) -> f64 {
    server.metric(&format!(
        "artemis_rate_limited_total{{limiter=\"{limiter}\",op=\"{op}\"}}"
    ))
}

/// A heartbeat body for one instance (never registered: the reply is a `partial_fail`, and the
/// request counts against the limit all the same, as in Java).
fn heartbeat_body() -> String {
    instances(&[instance("limited.svc", "i1")])
}

#[test]
fn registry_operations_past_their_limit_get_javas_rate_limited_reply() {
    let server = Server::start(&[
        "--registry-rate-limit",
        "5",
        "--registry-rate-limit-map",
        "unregister:2",
    ]);
    // A body that is not JSON is refused by the framework first and does not count (as in Java).
    for _ in 0..3 {
        assert_eq!(server.post(HEARTBEAT, "{nope").status, 400);
    }
    for n in 0..5 {
        let reply = server.post(HEARTBEAT, &heartbeat_body());
        assert_eq!(error_code(&reply.json()), "partial_fail", "heartbeat {n}");
    }
    let refused = server.post(HEARTBEAT, &heartbeat_body());
    assert_eq!(refused.status, 200);
    assert_registry_rate_limited(&refused);
    // A bad request counts too, and is refused with rate-limited once over.
    assert_registry_rate_limited(&server.post(HEARTBEAT, r#"{"instances":[]}"#));

    // Each operation has its own count: register is untouched, unregister has its override.
    let list = [instance("limited.svc", "i1")];
    server.register_ok(&list);
    for _ in 0..2 {
        assert_body(&server.unregister(&list), REGISTRY_SUCCESS);
    }
    assert_registry_rate_limited(&server.unregister(&list));

    let registry = "artemis.service.registry";
    assert_eq!(rate_limited_count(&server, registry, "heartbeat"), 2.0);
    assert_eq!(rate_limited_count(&server, registry, "unregister"), 1.0);
    assert_eq!(rate_limited_count(&server, registry, "register"), 0.0);
    // Discovery is never rate-limited.
    for _ in 0..20 {
        let reply = server.post(SERVICE, &service_request("limited.svc"));
        assert_eq!(error_code(&reply.json()), "success");
    }
}

#[test]
fn websocket_heartbeats_share_the_heartbeat_limit() {
    let server = Server::start(&["--registry-rate-limit", "3"]);
    for _ in 0..2 {
        assert!(!is_rate_limited(&server.post(HEARTBEAT, &heartbeat_body())));
    }
    let (mut socket, _) =
        tungstenite::connect(format!("ws://{}/ws/registry/heartbeat", server.addr))
            .expect("the handshake succeeds");
    let mut reply = |payload: &str| -> Value {
        socket.send(Message::text(payload)).unwrap();
        loop {
            match socket.read().expect("a reply frame") {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    };
    assert_eq!(
        reply(&heartbeat_body())["responseStatus"]["status"],
        "partial_fail"
    );
    let refused = reply(&heartbeat_body());
    let expected: Value =
        serde_json::from_str(&rate_limited_body(r#""failedInstances":null,"#)).unwrap();
    assert_eq!(refused, expected);
    // A payload that is not a heartbeat still gets Java's canned success, uncounted.
    assert_eq!(reply("not json")["responseStatus"]["status"], "success");
    assert_registry_rate_limited(&server.post(HEARTBEAT, &heartbeat_body()));
    assert_eq!(
        rate_limited_count(&server, "artemis.service.registry", "heartbeat"),
        2.0
    );
}

#[test]
fn status_operations_keep_javas_limits_and_reply_shapes() {
    let server = Server::start(&[]);
    // Java's shipped limits: get-leases 10 per 10 s, the other status operations 30.
    for n in 0..10 {
        let reply = server.get(&format!("{LEASES}?appIds=a"));
        assert_eq!(error_code(&reply.json()), "success", "leases {n}");
    }
    assert_body(
        &server.post(LEASES, "{}"),
        &rate_limited_body(
            r#""isSafe":false,"isSafeCheckEnabled":false,"leaseCount":0,"leaseUpdateCountLastTimeWindow":0,"leaseUpdateMaxCount":0,"leaseUpdateMaxCountLastUpdateTime":0,"leases":null,"#,
        ),
    );
    // Legacy leases count apart.
    assert_eq!(error_code(&server.get(LEGACY_LEASES).json()), "success");
    for n in 0..30 {
        let reply = server.get("/api/status/cluster.json");
        assert_eq!(error_code(&reply.json()), "success", "cluster {n}");
    }
    assert_body(
        &server.post("/api/status/cluster.json", "{}"),
        &rate_limited_body(r#""nodeCount":0,"nodesStatus":null,"#),
    );
    // node.json is not rate-limited: peers poll it.
    for _ in 0..40 {
        assert_eq!(
            error_code(&server.get("/api/status/node.json").json()),
            "success"
        );
    }
    let status = "artemis.service.status";
    assert_eq!(rate_limited_count(&server, status, "get-leases"), 1.0);
    assert_eq!(rate_limited_count(&server, status, "get-cluster"), 1.0);
    assert_eq!(
        rate_limited_count(&server, status, "get-legacy-leases"),
        0.0
    );
}

#[test]
fn config_deployment_and_cluster_operations_reply_in_their_own_shape() {
    let server = Server::start(&["--status-rate-limit", "1", "--cluster-rate-limit", "1"]);
    for (path, empty) in [
        ("/api/status/config.json", r#""properties":null,"#),
        (
            "/api/status/deployment.json",
            r#""appId":null,"ip":null,"machineName":null,"path":null,"port":0,"properties":null,"protocol":null,"regionId":null,"#,
        ),
        ("/api/cluster/up-registry-nodes.json", r#""nodes":null,"#),
        ("/api/cluster/up-discovery-nodes.json", r#""nodes":null,"#),
    ] {
        assert_eq!(error_code(&server.get(path).json()), "success", "{path}");
        let refused = server.get(path);
        let mut expected = rate_limited_body(empty);
        // `sources` and `zoneId` sort after `responseStatus`.
        if path.ends_with("config.json") {
            expected = expected.replace("}}", r#"},"sources":null}"#);
        } else if path.ends_with("deployment.json") {
            expected = expected.replace("}}", r#"},"sources":null,"zoneId":null}"#);
        }
        assert_body(&refused, &expected);
    }
}

#[test]
fn rate_limits_can_be_turned_off() {
    let server = Server::start(&["--rate-limit", "false", "--registry-rate-limit", "1"]);
    for _ in 0..20 {
        assert!(!is_rate_limited(&server.post(HEARTBEAT, &heartbeat_body())));
    }
    assert_eq!(server.metric("artemis_rate_limited_total"), 0.0);
}

/// The limit is the node's: with both cores serving, the heartbeats admitted in one window stay
/// within `cores - 1` per second of the limit, never the limit per core. Every client keeps
/// sending until it has been refused 20 times, so no core keeps an unspent share.
#[test]
fn both_cores_spend_one_budget() {
    const LIMIT: usize = 600;
    let server = Server::start(&["--cores", "0-1", "--registry-rate-limit", "600"]);
    let mut clients: Vec<Client> = Vec::new();
    let per_core = |core: usize| {
        server.metric(&format!(
            "artemis_connections_accepted_total{{core=\"{core}\"}}"
        ))
    };
    // The kernel spreads connections over the cores' listeners; open them until both have some.
    while clients.len() < 64 && (clients.len() < 8 || per_core(0) < 2.0 || per_core(1) < 2.0) {
        let mut client = server.connect();
        assert_eq!(client.get("/health").status, 200);
        clients.push(client);
    }
    assert!(
        per_core(0) >= 2.0 && per_core(1) >= 2.0,
        "connections on one core only"
    );

    let admitted = AtomicUsize::new(0);
    let started = std::time::Instant::now();
    thread::scope(|s| {
        for mut client in clients {
            let admitted = &admitted;
            s.spawn(move || {
                let body = heartbeat_body();
                let mut refused = 0;
                while refused < 20 {
                    if is_rate_limited(&client.post(HEARTBEAT, &body)) {
                        refused += 1;
                    } else {
                        admitted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let admitted = admitted.into_inner();
    let seconds = started.elapsed().as_secs() as usize + 1;
    assert!(
        seconds < 10,
        "the run outlasted the 10 s window ({seconds} s); the count would include a new window"
    );
    assert!(
        (LIMIT..=LIMIT + seconds).contains(&admitted),
        "{admitted} heartbeats admitted against a node-wide limit of {LIMIT} over {seconds} s"
    );
}

#[test]
fn connections_beyond_the_node_limit_are_answered_503_and_closed() {
    let server = Server::start(&["--max-connections", "4"]);
    let mut open: Vec<Client> = (0..4).map(|_| server.connect()).collect();
    for client in &mut open {
        assert_eq!(client.get("/health").status, 200);
    }
    let mut extra = server.connect();
    let reply = extra.read_reply();
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(error_code(&reply.json()), "service-unavailable");
    assert_eq!(reply.json()["responseStatus"]["status"], "fail");
    extra.assert_closed();
    // The admitted ones are served as before; one leaving makes room for another.
    assert_eq!(open[0].get("/health").status, 200);
    drop(open.pop());
    let served = poll(Duration::from_secs(10), || {
        let mut client = server.connect();
        client.send(&get_request("/health"));
        (client.read_reply().status == 200).then_some(client)
    });
    let served = served.expect("a connection is admitted once one closes");
    drop(served);
    // `/metrics` needs a connection of its own: close one more.
    drop(open.pop());
    let refused = poll(Duration::from_secs(10), || {
        let mut client = server.connect();
        client.send(&get_request("/metrics"));
        let reply = client.read_reply();
        (reply.status == 200).then(|| reply.text().to_owned())
    })
    .expect("metrics answer");
    assert!(
        refused.lines().any(|l| l
            .starts_with("artemis_limit_rejections_total{limit=\"connections\"} ")
            && !l.ends_with(" 0")),
        "{refused}"
    );
}

#[test]
fn connections_beyond_the_core_limit_are_answered_503() {
    let server = Server::start(&["--cores", "0", "--max-connections-per-core", "2"]);
    let mut open: Vec<Client> = (0..2).map(|_| server.connect()).collect();
    for client in &mut open {
        assert_eq!(client.get("/health").status, 200);
    }
    let mut extra = server.connect();
    assert_eq!(extra.read_reply().status, 503);
    extra.assert_closed();
    let text = open[0].get("/metrics").text().to_owned();
    assert!(
        text.lines()
            .any(|l| l == "artemis_limit_rejections_total{limit=\"connections_per_core\"} 1"),
        "{text}"
    );
}

#[test]
fn a_deep_pipeline_is_answered_in_order_a_few_requests_per_turn() {
    let server = Server::start(&["--max-pipeline", "2"]);
    let mut client = server.connect();
    let mut wire = Vec::new();
    for n in 0..7 {
        wire.extend(post_request(
            REGISTER,
            &instances(&[instance("pipelined.svc", &format!("i{n}"))]),
        ));
    }
    wire.extend(get_request("/metrics"));
    client.send(&wire);
    for _ in 0..7 {
        assert_body(&client.read_reply(), REGISTRY_SUCCESS);
    }
    let metrics = client.read_reply();
    assert!(
        metrics.text().lines().any(|l| l
            .starts_with("artemis_limit_rejections_total{limit=\"pipeline_depth\"} ")
            && !l.ends_with(" 0")),
        "{}",
        metrics.text()
    );
    assert_eq!(server.instance_ids("pipelined.svc").len(), 7);
}

#[test]
fn head_and_body_limits_answer_431_and_413_and_are_counted() {
    let server = Server::start(&["--max-head", "1KiB", "--max-body", "1KiB"]);
    let mut client = server.connect();
    let long = "x".repeat(2048);
    client.send(&request("GET", "/health", &[("X-Long", &long)], b""));
    assert_eq!(client.read_reply().status, 431);
    client.assert_closed();
    let mut client = server.connect();
    let list: Vec<String> = (0..20)
        .map(|n| instance("big.svc", &format!("i{n}")))
        .collect();
    client.send(&post_request(REGISTER, &instances(&list)));
    assert_eq!(client.read_reply().status, 413);
    client.assert_closed();
    assert_eq!(rejections(&server, "head_size"), 1.0);
    assert_eq!(rejections(&server, "body_size"), 1.0);
    // A request within both limits is served.
    assert!(server.register(&list[..1]).status == 200);
}

#[test]
fn a_slowloris_is_cut_off_at_the_request_timeout_though_bytes_keep_coming() {
    let server = Server::start(&["--request-timeout", "1s", "--idle-timeout", "30s"]);
    let wire = post_request(REGISTER, &instances(&[instance("slow.svc", "i1")]));
    let mut reader = TcpStream::connect(server.addr).expect("connect");
    reader
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut writer = reader.try_clone().unwrap();
    // One byte every 100 ms: never idle, never done (the request would take a minute or more).
    let trickle = thread::spawn(move || {
        let mut sent = 0;
        while sent < wire.len() && writer.write_all(&wire[sent..sent + 1]).is_ok() {
            sent += 1;
            thread::sleep(Duration::from_millis(100));
        }
        (sent, wire.len())
    });
    let mut received = Vec::new();
    let _ = reader.read_to_end(&mut received);
    assert!(
        received.starts_with(b"HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&received)
    );
    let (sent, whole) = trickle.join().unwrap();
    assert!(
        sent < whole,
        "the whole request went out before the cut-off"
    );
    assert_eq!(rejections(&server, "request_timeout"), 1.0);
    assert!(server.instance_ids("slow.svc").is_empty());
}

#[test]
fn an_idle_connection_is_closed_quietly_and_counted() {
    let server = Server::start(&["--idle-timeout", "1s", "--request-timeout", "30s"]);
    let mut idle = server.connect();
    assert_eq!(idle.get("/health").status, 200);
    idle.assert_closed();
    let mut silent = server.connect();
    silent.assert_closed();
    assert_eq!(rejections(&server, "idle_timeout"), 2.0);
}

#[test]
fn a_client_that_never_reads_its_replies_is_cut_off_at_the_idle_timeout() {
    let server = Server::start(&["--idle-timeout", "1s", "--rate-limit", "false"]);
    let list: Vec<String> = (0..2_000)
        .map(|i| instance("big.svc", &format!("10.9.{}.{}:8080", i / 250, i % 250)))
        .collect();
    server.register_ok(&list);
    // Pipelined full listings (about 0.5 MB each) that the client never reads: once the
    // socket buffers are full, the server's write stalls until the idle timeout gives up.
    let mut stream = TcpStream::connect(server.addr).unwrap();
    let listing = format!("GET {SERVICES} HTTP/1.1\r\nHost: x\r\n\r\n");
    for _ in 0..200 {
        if stream.write_all(listing.as_bytes()).is_err() {
            break;
        }
    }
    let cut = poll(Duration::from_secs(20), || {
        (rejections(&server, "write_timeout") >= 1.0).then_some(())
    });
    assert!(cut.is_some(), "the stalled write was never given up");
    // The server let go of the connection: reading now drains what it sent, then hits the end.
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut sink = vec![0; 1 << 20];
    while let Ok(n) = stream.read(&mut sink) {
        if n == 0 {
            break;
        }
    }
    assert_eq!(server.get("/health").status, 200);
}

#[test]
fn a_burst_of_malformed_requests_on_many_connections_leaves_the_server_answering() {
    let server = Server::start(&[]);
    let garbage: [&[u8]; 6] = [
        b"\x00\x01\x02\x03\r\n\r\n",
        b"GET /health HTTP/1.1\r\n\xff\xfe: x\r\n\r\n",
        b"POST /api/registry/register.json HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"GET /health HTTP/7.0\r\n\r\n",
        b"POST /api/registry/register.json HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        b"POST /api/registry/register.json HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ];
    let refused = AtomicUsize::new(0);
    thread::scope(|s| {
        for t in 0..16 {
            let (refused, addr) = (&refused, server.addr);
            s.spawn(move || {
                for n in 0..10 {
                    let mut client = Client::connect(addr);
                    client.send(garbage[(t + n) % garbage.len()]);
                    let reply = client.read_reply();
                    assert_eq!(reply.status, 400, "{reply:?}");
                    client.assert_closed();
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    assert_eq!(refused.into_inner(), 160);
    assert_eq!(
        server.metric("artemis_http_errors_total{code=\"400\"}"),
        160.0
    );
    for n in 0..8 {
        let mut client = server.connect();
        let service = format!("after.burst.{n}");
        assert_body(
            &client.post(REGISTER, &instances(&[instance(&service, "i1")])),
            REGISTRY_SUCCESS,
        );
        let seen = client.post(SERVICE, &service_request(&service)).json();
        assert_eq!(seen["service"]["instances"][0]["instanceId"], "i1");
    }
}
