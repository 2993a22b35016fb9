//! The HTTP/1.1 layer as clients meet it: keep-alive, pipelining, chunked and gzip request bodies,
//! `Expect: 100-continue`, gzip replies, CORS (docs/api.md, "HTTP details"), and connection
//! handling.

mod common;

use std::io::{Read, Write};
use std::thread;
use std::time::Duration;

use common::artemis::{
    instance, instances, service_on_shard, service_request, HEARTBEAT, REGISTER, REGISTRY_SUCCESS,
    SERVICE, SERVICES,
};
use common::client::request;
use common::json::assert_body;
use common::{get_request, post_request, Client, Server};
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut plain = Vec::new();
    GzDecoder::new(bytes)
        .read_to_end(&mut plain)
        .expect("the body is gzip");
    plain
}

/// `body` as chunks of at most `size` bytes, the first with an extension, and a trailer.
fn chunked(body: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, chunk) in body.chunks(size).enumerate() {
        let extension = if i == 0 { ";note=first" } else { "" };
        out.extend_from_slice(format!("{:x}{extension}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\nX-Trailer: ignored\r\n\r\n");
    out
}

/// The next reply on `client` is a register's success, and `service` now lists `i1`.
fn assert_registered(server: &Server, client: &mut Client, service: &str) {
    assert_body(&client.read_reply(), REGISTRY_SUCCESS);
    assert_eq!(server.instance_ids(service), ["i1"]);
}

#[test]
fn many_requests_share_one_keep_alive_connection() {
    let server = Server::start(&[]);
    let mut client = server.connect();
    for n in 0..100 {
        let service = format!("keep.{n}");
        let reply = client.post(REGISTER, &instances(&[instance(&service, "i1")]));
        assert_body(&reply, REGISTRY_SUCCESS);
        assert!(!reply.closes());
        let seen = client.post(SERVICE, &service_request(&service)).json();
        assert_eq!(seen["service"]["instances"][0]["instanceId"], "i1");
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = Server::start(&[]);
    let registration = instances(&[instance("pipe.svc", "i1")]);
    let batch = [
        post_request(SERVICE, &service_request("pipe.svc")),
        post_request(REGISTER, &registration),
        post_request(SERVICE, &service_request("pipe.svc")),
        get_request("/health"),
        post_request("/api/registry/heartbeat.json", &registration),
        get_request("/api/discovery/service.json?serviceId=pipe.other&regionId=SHA"),
    ]
    .concat();
    let mut client = server.connect();
    client.send(&batch);
    let before = client.read_reply().json();
    assert_eq!(before["service"]["instances"], serde_json::Value::Null);
    assert_body(&client.read_reply(), REGISTRY_SUCCESS);
    let after = client.read_reply().json();
    assert_eq!(after["service"]["instances"][0]["instanceId"], "i1");
    assert_eq!(client.read_reply().status, 200);
    assert_body(&client.read_reply(), REGISTRY_SUCCESS);
    assert_eq!(
        client.read_reply().json()["service"]["serviceId"],
        "pipe.other"
    );
}

#[test]
fn a_long_pipeline_is_answered_in_order() {
    let server = Server::start(&[]);
    let batch: Vec<u8> = (0..200)
        .flat_map(|n| {
            get_request(&format!(
                "/api/discovery/service.json?serviceId=p{n}&regionId=SHA"
            ))
        })
        .collect();
    let mut client = server.connect();
    client.send(&batch);
    for n in 0..200 {
        let reply = client.read_reply().json();
        assert_eq!(reply["service"]["serviceId"], format!("p{n}"));
    }
}

#[test]
fn a_chunked_request_body_is_read() {
    let server = Server::start(&[]);
    let mut client = server.connect();
    for (service, size) in [("chunk.a", 7), ("chunk.b", 100)] {
        let body = instances(&[instance(service, "i1")]);
        let mut wire = request(
            "POST",
            REGISTER,
            &[
                ("Content-Type", "application/json"),
                ("Transfer-Encoding", "chunked"),
            ],
            b"",
        );
        wire.extend_from_slice(&chunked(body.as_bytes(), size));
        client.send(&wire);
        assert_body(&client.read_reply(), REGISTRY_SUCCESS);
    }
    assert_eq!(server.instance_ids("chunk.a"), ["i1"]);
    assert_eq!(server.instance_ids("chunk.b"), ["i1"]);
}

#[test]
fn expect_100_continue_gets_an_interim_reply_before_the_body() {
    let server = Server::start(&[]);
    let body = instances(&[instance("expect.svc", "i1")]);
    let mut client = server.connect();
    client.send(&request(
        "POST",
        REGISTER,
        &[
            ("Content-Type", "application/json"),
            ("Expect", "100-continue"),
            ("Content-Length", &body.len().to_string()),
        ],
        b"",
    ));
    let interim = client.read_reply();
    assert_eq!(interim.status, 100, "{interim:?}");
    assert!(interim.body.is_empty());
    client.send(body.as_bytes());
    assert_registered(&server, &mut client, "expect.svc");
}

#[test]
fn a_gzip_request_body_is_inflated() {
    let server = Server::start(&[]);
    let packed = gzip(instances(&[instance("gzip.in", "i1")]).as_bytes());
    let mut client = server.connect();
    client.send(&request(
        "POST",
        REGISTER,
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        &packed,
    ));
    assert_registered(&server, &mut client, "gzip.in");
}

#[test]
fn a_gzip_chunked_request_body_is_inflated() {
    let server = Server::start(&[]);
    let packed = gzip(instances(&[instance("gzip.chunked", "i1")]).as_bytes());
    let mut wire = request(
        "POST",
        REGISTER,
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
            ("Transfer-Encoding", "chunked"),
        ],
        b"",
    );
    wire.extend_from_slice(&chunked(&packed, 16));
    let mut client = server.connect();
    client.send(&wire);
    assert_registered(&server, &mut client, "gzip.chunked");
}

#[test]
fn large_replies_are_gzipped_when_the_client_accepts_gzip() {
    let server = Server::start(&[]);
    let list: Vec<String> = (0..30)
        .map(|n| instance("gzip.out", &format!("i{n}")))
        .collect();
    server.register_ok(&list);
    let mut client = server.connect();
    let plain = client.get(SERVICES);
    assert!(plain.body.len() >= 1024, "a body worth compressing");
    assert_eq!(plain.header("Content-Encoding"), None);
    client.send(&request(
        "GET",
        SERVICES,
        &[("Accept-Encoding", "deflate, gzip;q=0.8")],
        b"",
    ));
    let packed = client.read_reply();
    assert_eq!(packed.status, 200);
    assert_eq!(packed.header("Content-Encoding"), Some("gzip"));
    assert!(packed.body.len() < plain.body.len());
    assert_eq!(
        String::from_utf8(gunzip(&packed.body)).unwrap(),
        plain.text()
    );
}

#[test]
fn a_gzip_discovery_reply_follows_every_change_of_the_service() {
    let server = Server::start(&[]);
    let mut list: Vec<String> = (0..40)
        .map(|n| instance("gzip.kept", &format!("i{n}")))
        .collect();
    server.register_ok(&list);
    let mut client = server.connect();
    let path = "/api/discovery/service.json?serviceId=gzip.kept&regionId=SHA&zoneId=SHAJQ";
    let mut fetch = |gzip: bool| {
        let headers: &[(&str, &str)] = if gzip {
            &[("Accept-Encoding", "gzip")]
        } else {
            &[]
        };
        client.send(&request("GET", path, headers, b""));
        let reply = client.read_reply();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("Content-Encoding"), gzip.then_some("gzip"));
        if gzip {
            gunzip(&reply.body)
        } else {
            reply.body
        }
    };
    // The instances are deflated once per version and reused: the same bytes each time, and a
    // change is in the very next gzip reply.
    for round in 0..3 {
        let plain = fetch(false);
        assert_eq!(fetch(true), plain);
        assert_eq!(fetch(true), plain);
        let ids = serde_json::from_slice::<serde_json::Value>(&plain).unwrap()["service"]
            ["instances"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(ids, 40 + round);
        list.push(instance("gzip.kept", &format!("new{round}")));
        server.register_ok(&list);
    }
}

#[test]
fn small_replies_are_not_gzipped() {
    let server = Server::start(&[]);
    let mut client = server.connect();
    client.send(&request(
        "GET",
        "/health",
        &[("Accept-Encoding", "gzip")],
        b"",
    ));
    let reply = client.read_reply();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("Content-Encoding"), None);
}

#[test]
fn replies_carry_the_cors_headers() {
    let server = Server::start(&[]);
    for reply in [
        server.post(SERVICE, &service_request("cors.svc")),
        server.get("/api/no/such/path.json"),
    ] {
        assert_eq!(reply.header("Access-Control-Allow-Origin"), Some("*"));
        assert_eq!(reply.header("Access-Control-Expose-Headers"), Some("*"));
        assert_eq!(
            reply.header("Access-Control-Allow-Credentials"),
            None,
            "never paired with Allow-Origin: *"
        );
    }
}

#[test]
fn an_options_preflight_echoes_what_it_asks_for() {
    let server = Server::start(&[]);
    let mut client = server.connect();
    client.send(&request(
        "OPTIONS",
        REGISTER,
        &[
            ("Origin", "http://console.example"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type, x-trace-id"),
        ],
        b"",
    ));
    let reply = client.read_reply();
    assert_eq!(reply.status, 200);
    assert!(reply.body.is_empty());
    assert_eq!(reply.header("Access-Control-Allow-Methods"), Some("POST"));
    assert_eq!(
        reply.header("Access-Control-Allow-Headers"),
        Some("content-type, x-trace-id")
    );
    assert_eq!(reply.header("Access-Control-Max-Age"), Some("3600"));
    assert_eq!(reply.header("Access-Control-Allow-Origin"), Some("*"));
    assert_body(
        &client.post(REGISTER, &instances(&[instance("after.preflight", "i1")])),
        REGISTRY_SUCCESS,
    );
}

#[test]
fn a_client_asking_to_close_gets_its_reply_then_the_close() {
    let server = Server::start(&[]);
    let mut client = server.connect();
    client.send(&request("GET", "/health", &[("Connection", "close")], b""));
    let reply = client.read_reply();
    assert_eq!(reply.status, 200);
    assert!(reply.closes());
    client.assert_closed();
}

#[test]
fn http_1_0_closes_unless_asked_to_keep_alive() {
    let server = Server::start(&[]);
    let mut kept = server.connect();
    for _ in 0..2 {
        kept.send(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let reply = kept.read_reply();
        assert_eq!(reply.status, 200);
        assert!(!reply.closes());
    }
    let mut closed = server.connect();
    closed.send(b"GET /health HTTP/1.0\r\n\r\n");
    assert_eq!(closed.read_reply().status, 200);
    closed.assert_closed();
}

#[test]
fn a_request_split_over_many_writes_is_answered() {
    let server = Server::start(&[]);
    let wire = post_request(REGISTER, &instances(&[instance("split.svc", "i1")]));
    let mut client = server.connect();
    client.send_in_pieces(&wire, wire.len() / 5 + 1, Duration::from_millis(30));
    assert_registered(&server, &mut client, "split.svc");
}

/// Java's POST handlers consume only `application/json`: any other body is answered 415 and not
/// read. A web page can POST `text/plain` cross-site without a preflight; this is what stops it
/// from registering or unregistering instances from a victim's browser.
#[test]
fn a_post_body_must_be_json() {
    let server = Server::start(&[]);
    for (n, headers) in [
        vec![],
        vec![("Content-Type", "text/plain")],
        vec![("Content-Type", "application/x-www-form-urlencoded")],
        vec![
            ("Content-Type", "text/plain"),
            ("Origin", "http://evil.example"),
        ],
    ]
    .into_iter()
    .enumerate()
    {
        let service = format!("typed.{n}");
        let body = instances(&[instance(&service, "i1")]);
        let reply = server.exchange(&request("POST", REGISTER, &headers, body.as_bytes()));
        assert_eq!(reply.status, 415, "{headers:?}");
        assert!(reply.text().contains("application/json"), "{headers:?}");
        assert!(server.instance_ids(&service).is_empty(), "{headers:?}");
    }
    for (n, content_type) in ["application/json", "Application/JSON; charset=UTF-8"]
        .into_iter()
        .enumerate()
    {
        let service = format!("json.{n}");
        let body = instances(&[instance(&service, "i1")]);
        let headers = [("Content-Type", content_type)];
        let reply = server.exchange(&request("POST", REGISTER, &headers, body.as_bytes()));
        assert_body(&reply, REGISTRY_SUCCESS);
        assert_eq!(server.instance_ids(&service), ["i1"]);
    }
}

#[test]
fn nothing_after_a_closing_request_in_a_pipeline_is_answered() {
    let server = Server::start(&[]);
    let mut client = server.connect();
    client.send(
        &[
            get_request("/health"),
            request("GET", "/health", &[("Connection", "close")], b""),
            post_request(REGISTER, &instances(&[instance("after.close", "i1")])),
        ]
        .concat(),
    );
    assert!(!client.read_reply().closes());
    assert!(client.read_reply().closes());
    client.assert_closed();
    assert!(server.instance_ids("after.close").is_empty());
}

#[test]
fn a_pipeline_is_answered_up_to_a_malformed_request() {
    let server = Server::start(&[]);
    let mut client = server.connect();
    client.send(
        &[
            post_request(REGISTER, &instances(&[instance("before.bad", "i1")])),
            b"NOT HTTP AT ALL\r\n\r\n".to_vec(),
            get_request("/health"),
        ]
        .concat(),
    );
    assert_body(&client.read_reply(), REGISTRY_SUCCESS);
    let refusal = client.read_reply();
    assert_eq!(refusal.status, 400);
    assert!(refusal.closes());
    client.assert_closed();
}

#[test]
fn expect_100_continue_with_the_body_already_sent_gets_only_the_final_reply() {
    let server = Server::start(&[]);
    let body = instances(&[instance("eager.svc", "i1")]);
    let mut client = server.connect();
    let wire = request(
        "POST",
        REGISTER,
        &[
            ("Content-Type", "application/json"),
            ("Expect", "100-continue"),
        ],
        body.as_bytes(),
    );
    client.send(&[wire.clone(), get_request("/health")].concat());
    assert_body(&client.read_reply(), REGISTRY_SUCCESS);
    assert_eq!(client.read_reply().status, 200);
    assert_eq!(server.instance_ids("eager.svc"), ["i1"]);
}

#[test]
fn expect_100_continue_with_a_body_over_the_limit_is_refused_without_continue() {
    let server = Server::start(&["--max-body", "1KiB"]);
    let mut client = server.connect();
    client.send(&request(
        "POST",
        REGISTER,
        &[("Expect", "100-continue"), ("Content-Length", "4096")],
        b"",
    ));
    let reply = client.read_reply();
    assert_eq!(reply.status, 413, "{reply:?}");
    client.assert_closed();
}

#[test]
fn a_chunked_body_trickling_in_is_read() {
    let server = Server::start(&[]);
    let body = instances(&[instance("trickle.svc", "i1")]);
    let mut wire = request(
        "POST",
        REGISTER,
        &[
            ("Transfer-Encoding", "chunked"),
            ("Content-Type", "application/json"),
        ],
        b"",
    );
    wire.extend_from_slice(&chunked(body.as_bytes(), 10));
    let mut client = server.connect();
    client.send_in_pieces(&wire, 7, Duration::from_millis(2));
    assert_registered(&server, &mut client, "trickle.svc");
}

#[test]
fn a_large_batch_and_its_large_reply_travel_whole() {
    let server = Server::start(&[]);
    let list: Vec<String> = (0..3000)
        .map(|n| instance(&format!("bulk.{}", n % 50), &format!("host-{n}:8080")))
        .collect();
    let body = instances(&list);
    assert!(body.len() > 512 * 1024);
    server.register_ok(&list);
    let all = server.get(SERVICES).json();
    let count: usize = all["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["instances"].as_array().unwrap().len())
        .sum();
    assert_eq!(count, 3000);
    assert_eq!(server.instance_ids("bulk.7").len(), 60);
}

#[test]
fn concurrent_clients_all_see_each_others_registrations() {
    let server = Server::start(&[]);
    let addr = server.addr;
    let writers: Vec<_> = (0..8)
        .map(|t| {
            thread::spawn(move || {
                let mut client = Client::connect(addr);
                for n in 0..50 {
                    let reply = client.post(
                        REGISTER,
                        &instances(&[instance(&format!("conc.{t}.{n}"), "i1")]),
                    );
                    assert_body(&reply, REGISTRY_SUCCESS);
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("a writer thread");
    }
    let mut client = server.connect();
    for t in 0..8 {
        for n in 0..50 {
            let seen = client
                .post(SERVICE, &service_request(&format!("conc.{t}.{n}")))
                .json();
            assert_eq!(seen["service"]["instances"][0]["instanceId"], "i1");
        }
    }
}

const MOVES: &str = "artemis_connections_moved_total";

#[test]
fn a_keep_alive_connection_moves_once_to_the_core_that_owns_its_writes() {
    let server = Server::start(&[]);
    assert!(server.shards >= 2, "the suite runs on 2 cores");
    // The metrics connection itself counts: open it before taking the baseline.
    server.metric(MOVES);
    let before = server.open_per_core();
    let mut client = server.connect();
    let accepted = server.accepting_core(&before);
    let owner = (accepted + 1) % server.shards;
    let there = instance(&service_on_shard("http.moving", owner, server.shards), "i1");
    let here = instance(
        &service_on_shard("http.staying", accepted, server.shards),
        "i1",
    );
    let mut expected = before.clone();
    expected[accepted] += 1.0;

    // Writes owned here, and reads: it stays.
    assert_body(
        &client.post(REGISTER, &instances(&[&here])),
        REGISTRY_SUCCESS,
    );
    assert_eq!(
        client.post(SERVICE, &service_request("http.other")).status,
        200
    );
    server.assert_open_per_core(&expected);
    assert_eq!(server.metric(MOVES), 0.0);

    // A write owned by the other core, with two requests pipelined behind it: it is answered
    // here, the connection moves with the requests not yet answered, and the other core answers
    // them, in order.
    let pipelined = [
        post_request(REGISTER, &instances(&[&there])),
        post_request(HEARTBEAT, &instances(&[&there, &here])),
        get_request("/health"),
    ]
    .concat();
    client.send(&pipelined);
    assert_body(&client.read_reply(), REGISTRY_SUCCESS);
    assert_body(&client.read_reply(), REGISTRY_SUCCESS);
    assert_eq!(client.read_reply().status, 200);
    expected[accepted] -= 1.0;
    expected[owner] += 1.0;
    server.assert_open_per_core(&expected);
    assert_eq!(server.metric(MOVES), 1.0);

    // It is served there from now on, and moves no more, wherever its writes go.
    for list in [vec![&here], vec![&there], vec![&here]] {
        assert_body(&client.post(HEARTBEAT, &instances(&list)), REGISTRY_SUCCESS);
    }
    assert_eq!(server.metric(MOVES), 1.0);
    server.assert_open_per_core(&expected);

    // Closing it gives its place back on the core it moved to.
    drop(client);
    server.assert_open_per_core(&before);
}

#[test]
fn a_connection_does_not_move_to_a_core_that_serves_more_connections() {
    let server = Server::start(&[]);
    server.metric(MOVES);
    let before = server.open_per_core();
    let mut client = server.connect();
    let accepted = server.accepting_core(&before);
    let owner = (accepted + 1) % server.shards;
    let there = instance(
        &service_on_shard("http.crowded", owner, server.shards),
        "i1",
    );
    // More connections open on the owner's core than on this one (the kernel spreads new
    // connections over the cores: those that land elsewhere are closed).
    let mut others = Vec::new();
    for _ in 0..200 {
        let open = server.open_per_core();
        if open[owner] > open[accepted] {
            break;
        }
        let other = server.connect();
        if server.accepting_core(&open) == owner {
            others.push(other);
        } else {
            drop(other);
            server.assert_open_per_core(&open);
        }
    }
    assert_body(
        &client.post(REGISTER, &instances(&[&there])),
        REGISTRY_SUCCESS,
    );
    assert_eq!(server.metric(MOVES), 0.0);

    // Once they are gone, its next write owned there moves it.
    drop(others);
    let mut expected = before.clone();
    expected[accepted] += 1.0;
    server.assert_open_per_core(&expected);
    assert_body(
        &client.post(HEARTBEAT, &instances(&[&there])),
        REGISTRY_SUCCESS,
    );
    expected[accepted] -= 1.0;
    expected[owner] += 1.0;
    server.assert_open_per_core(&expected);
    assert_eq!(server.metric(MOVES), 1.0);
}
