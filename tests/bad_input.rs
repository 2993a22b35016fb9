//! Bad input gets a clear answer and costs nothing else: every refusal is checked, and then a
//! new client is served correctly; a bad or stalled connection never disturbs another one.

mod common;

use std::thread;
use std::time::Duration;

use common::artemis::{instance, instances, service_request, REGISTER, REGISTRY_SUCCESS, SERVICE};
use common::client::request;
use common::json::{assert_body, error_code};
use common::{post_request, Client, Reply, Server};
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;

/// A refusal: `status`, a JSON body whose `responseStatus` is a `bad-request` failure.
fn assert_refusal(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{reply:?}");
    let body = reply.json();
    assert_eq!(error_code(&body), "bad-request", "{body}");
    assert_eq!(body["responseStatus"]["status"], "fail");
}

/// New clients on fresh connections (spread over the cores) register and discover correctly.
fn assert_still_serves(server: &Server) {
    for n in 0..8 {
        let mut client = server.connect();
        let service = format!("alive.{n}");
        let reply = client.post(REGISTER, &instances(&[instance(&service, "i1")]));
        assert_body(&reply, REGISTRY_SUCCESS);
        let seen = client.post(SERVICE, &service_request(&service)).json();
        assert_eq!(seen["service"]["instances"][0]["instanceId"], "i1");
    }
}

/// Sends `bytes` on a new connection and reads the one reply, after which the server closes.
fn refused_and_closed(server: &Server, bytes: &[u8], status: u16) {
    let mut client = server.connect();
    client.send(bytes);
    let reply = client.read_reply();
    assert_refusal(&reply, status);
    assert!(reply.closes(), "{reply:?}");
    client.assert_closed();
}

#[test]
fn a_malformed_request_line_is_400_and_closes() {
    let server = Server::start(&[]);
    refused_and_closed(&server, b"this is not http\r\n\r\n", 400);
    refused_and_closed(&server, b"GET /health HTTP/1.1 extra\r\n\r\n", 400);
    assert_still_serves(&server);
}

#[test]
fn a_malformed_header_is_400_and_closes() {
    let server = Server::start(&[]);
    refused_and_closed(
        &server,
        b"GET /health HTTP/1.1\r\nno colon here\r\n\r\n",
        400,
    );
    refused_and_closed(
        &server,
        b"POST /api/registry/register.json HTTP/1.1\r\nContent-Length: ten\r\n\r\n",
        400,
    );
    refused_and_closed(
        &server,
        b"POST /api/registry/register.json HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        400,
    );
    // Both framings at once is how requests are smuggled past proxies.
    refused_and_closed(
        &server,
        b"POST /api/registry/register.json HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    );
    assert_still_serves(&server);
}

#[test]
fn a_head_over_16_kib_is_431() {
    let server = Server::start(&[]);
    // Exactly 16 KiB of head without its end: whatever follows makes it longer than the limit.
    let mut head = b"GET /health HTTP/1.1\r\nX-Padding: ".to_vec();
    head.resize(16 * 1024, b'a');
    refused_and_closed(&server, &head, 431);
    assert_still_serves(&server);
}

#[test]
fn too_many_headers_is_431() {
    let server = Server::start(&[]);
    let headers: Vec<(String, String)> =
        (0..100).map(|n| (format!("X-H{n}"), "v".into())).collect();
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    refused_and_closed(&server, &request("GET", "/health", &headers, b""), 431);
    assert_still_serves(&server);
}

#[test]
fn a_declared_body_over_max_body_is_413() {
    let server = Server::start(&["--max-body", "1KiB"]);
    refused_and_closed(
        &server,
        b"POST /api/registry/register.json HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 1025\r\n\r\n",
        413,
    );
    assert_still_serves(&server);
}

#[test]
fn a_chunk_over_max_body_is_413() {
    let server = Server::start(&["--max-body", "1KiB"]);
    refused_and_closed(
        &server,
        b"POST /api/registry/register.json HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n401\r\n",
        413,
    );
    assert_still_serves(&server);
}

#[test]
fn a_gzip_body_inflating_over_max_body_is_413() {
    let server = Server::start(&["--max-body", "1KiB"]);
    let mut plain = instances(&[instance("big.svc", "i1")]).into_bytes();
    plain.resize(4096, b' ');
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(&plain).unwrap();
    let packed = encoder.finish().unwrap();
    assert!(packed.len() < 1024);
    let wire = request(
        "POST",
        REGISTER,
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        &packed,
    );
    refused_and_closed(&server, &wire, 413);
    assert_still_serves(&server);
}

#[test]
fn a_body_of_exactly_max_body_is_accepted() {
    let server = Server::start(&["--max-body", "1KiB"]);
    let mut body = instances(&[instance("edge.svc", "i1")]).into_bytes();
    body.resize(1024, b' ');
    let reply = server.exchange(&request(
        "POST",
        REGISTER,
        &[("Content-Type", "application/json")],
        &body,
    ));
    assert_body(&reply, REGISTRY_SUCCESS);
}

#[test]
fn an_unknown_path_is_404_and_the_connection_stays_usable() {
    let server = Server::start(&[]);
    let mut client = server.connect();
    assert_refusal(&client.get("/api/registry/nothing.json"), 404);
    assert_refusal(&client.post("/api/registry/register", "{}"), 404);
    assert_refusal(&client.get("/"), 404);
    let reply = client.post(REGISTER, &instances(&[instance("after.404", "i1")]));
    assert_body(&reply, REGISTRY_SUCCESS);
}

#[test]
fn a_wrong_method_is_405() {
    let server = Server::start(&[]);
    let mut client = server.connect();
    assert_refusal(&client.get(REGISTER), 405);
    assert_refusal(&client.post("/health", "{}"), 405);
    client.send(&request("PUT", SERVICE, &[], b"{}"));
    assert_refusal(&client.read_reply(), 405);
    client.send(&request("DELETE", "/api/discovery/lookup.json", &[], b""));
    assert_refusal(&client.read_reply(), 405);
    assert_still_serves(&server);
}

#[test]
fn a_body_that_is_not_json_is_400_with_a_json_reply() {
    let server = Server::start(&[]);
    for path in [
        REGISTER,
        SERVICE,
        "/api/discovery/lookup.json",
        "/api/status/leases.json",
    ] {
        for body in ["not json", "{\"instances\":[", "{'a':1}", ""] {
            let reply = server.post(path, body);
            assert_refusal(&reply, 400);
            assert!(reply.text().contains("\"responseStatus\""));
        }
    }
    assert_still_serves(&server);
}

#[test]
fn json_of_the_wrong_shape_is_400_with_a_json_reply() {
    let server = Server::start(&[]);
    for (path, body) in [
        (REGISTER, r#"{"instances":{}}"#),
        (REGISTER, r#"{"instances":[1,2]}"#),
        (REGISTER, r#"{"instances":[{"metadata":[1]}]}"#),
        (REGISTER, r#"{"instances":[{"port":{}}]}"#),
        (REGISTER, r#"[]"#),
        (REGISTER, r#""instances""#),
        (SERVICE, r#"{"discoveryConfig":"svc","regionId":"SHA"}"#),
        ("/api/discovery/lookup.json", r#"{"discoveryConfigs":{}}"#),
    ] {
        let reply = server.post(path, body);
        assert_refusal(&reply, 400);
    }
    assert_still_serves(&server);
}

#[test]
fn unsupported_codings_are_refused() {
    let server = Server::start(&[]);
    let body = instances(&[instance("coding.svc", "i1")]);
    for (header, status) in [
        (("Content-Encoding", "br"), 415),
        (("Transfer-Encoding", "gzip"), 501),
    ] {
        let mut client = server.connect();
        client.send(&request("POST", REGISTER, &[header], body.as_bytes()));
        let reply = client.read_reply();
        assert_eq!(reply.status, status, "{reply:?}");
    }
    assert_still_serves(&server);
}

#[test]
fn a_client_that_stalls_mid_request_is_cut_off_after_the_request_timeout() {
    let server = Server::start(&["--request-timeout", "1s"]);
    let wire = post_request(REGISTER, &instances(&[instance("stall.svc", "i1")]));
    let mut client = server.connect();
    client.send(&wire[..wire.len() / 2]);
    assert_refusal(&client.read_reply(), 408);
    client.assert_closed();
    assert!(server.instance_ids("stall.svc").is_empty());
    assert_still_serves(&server);
}

#[test]
fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let server = Server::start(&["--idle-timeout", "1s"]);
    let mut client = server.connect();
    assert_eq!(client.get("/health").status, 200);
    client.assert_closed();
}

#[test]
fn stalled_connections_do_not_hold_up_other_clients() {
    let server = Server::start(&[]);
    let wire = post_request(REGISTER, &instances(&[instance("stalled.svc", "i1")]));
    let mut stalled: Vec<Client> = (0..8).map(|_| server.connect()).collect();
    for client in &mut stalled {
        client.send(&wire[..wire.len() - 3]);
    }
    assert_still_serves(&server);
    for client in &mut stalled {
        client.send(&wire[wire.len() - 3..]);
        assert_body(&client.read_reply(), REGISTRY_SUCCESS);
    }
}

#[test]
fn garbage_on_one_connection_does_not_disturb_a_concurrent_one() {
    let server = Server::start(&[]);
    let mut good = server.connect();
    let garbage: [&[u8]; 5] = [
        b"\x00\x01\x02\x03\r\n\r\n",
        b"GET /health HTTP/1.1\r\n\xff\xfe: x\r\n\r\n",
        b"POST /api/registry/register.json HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"GET /health HTTP/7.0\r\n\r\n",
        b"POST /api/registry/register.json HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope",
    ];
    for (n, bytes) in garbage.iter().enumerate() {
        let wire = post_request(
            REGISTER,
            &instances(&[instance(&format!("good.{n}"), "i1")]),
        );
        let (first, rest) = wire.split_at(wire.len() / 2);
        good.send(first);
        let mut bad = server.connect();
        bad.send(bytes);
        assert_eq!(bad.read_reply().status, 400);
        bad.assert_closed();
        good.send(rest);
        assert_body(&good.read_reply(), REGISTRY_SUCCESS);
        let seen = good
            .post(SERVICE, &service_request(&format!("good.{n}")))
            .json();
        assert_eq!(seen["service"]["instances"][0]["instanceId"], "i1");
    }
}

/// xorshift64: deterministic noise without another crate.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_bytes_never_take_a_core_down() {
    let server = Server::start(&["--idle-timeout", "2s"]);
    let mut noise = Noise(0x2545_f491_4f6c_dd1d);
    let valid = post_request(REGISTER, &instances(&[instance("noise.svc", "i1")]));
    for _ in 0..40 {
        // Half the time a valid request with a few bytes overwritten, else plain noise.
        let mut bytes = if noise.next().is_multiple_of(2) {
            valid.clone()
        } else {
            (0..noise.next() % 300)
                .map(|_| noise.next() as u8)
                .collect()
        };
        for _ in 0..noise.next() % 4 {
            if !bytes.is_empty() {
                let at = (noise.next() as usize) % bytes.len();
                bytes[at] = noise.next() as u8;
            }
        }
        let mut client = server.connect();
        client.send(&bytes);
        client.shutdown_write();
        client.read_until_closed(Duration::from_secs(10));
    }
    thread::sleep(Duration::from_millis(50));
    assert_still_serves(&server);
}
