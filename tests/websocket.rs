//! The WebSocket endpoints with a real WebSocket client over TCP: pushes of `new` and `delete`
//! changes, all-instance-change, heartbeats over WebSocket, a stalled subscriber closed while
//! another keeps receiving, the node-wide queue bound and the subscription cap, the session
//! counts, a heartbeat session moving to the core that owns its instances (or staying when that
//! core is busier), and what the server does with frames that break the protocol or its size
//! limits.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use common::artemis::{
    instance, instances, service_ids, service_on_shard, I1, I1_SERVICE, SHORT_LEASES,
};
use common::{poll, Server};

type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(10);

fn connect(server: &Server, path: &str) -> Socket {
    let (socket, response) = tungstenite::connect(format!("ws://{}{path}", server.addr))
        .expect("the handshake succeeds");
    assert_eq!(response.status(), 101);
    read_timeout(&socket, WAIT);
    socket
}

fn read_timeout(socket: &Socket, timeout: Duration) {
    if let MaybeTlsStream::Plain(stream) = socket.get_ref() {
        stream.set_read_timeout(Some(timeout)).unwrap();
    }
}

fn subscribe(socket: &mut Socket, service_id: &str) {
    let config = format!(
        r#"{{"discoveryData":null,"regionId":null,"serviceId":"{service_id}","zoneId":null}}"#
    );
    socket.send(Message::text(config)).unwrap();
}

/// The next text frame, as JSON.
fn next_change(socket: &mut Socket) -> Value {
    loop {
        match socket.read().expect("a frame within the read timeout") {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Subscribes, then waits until the subscription is in place. The server sends nothing back for
/// a subscription, so a probe instance is registered until its `new` arrives; it is then
/// unregistered and every frame up to its `delete` is read, leaving nothing of the probe behind.
fn subscribed(server: &Server, path: &str, service_id: &str) -> Socket {
    let mut socket = connect(server, path);
    subscribe(&mut socket, service_id);
    await_subscription(server, &mut socket, service_id);
    socket
}

/// Waits until `socket` receives the changes of `service_id`, as [`subscribed`] describes.
fn await_subscription(server: &Server, socket: &mut Socket, service_id: &str) {
    let probe = instance(service_id, "probe");
    read_timeout(socket, Duration::from_millis(200));
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < WAIT, "pushes never started");
        server.register_ok(&[&probe]);
        match socket.read() {
            Ok(Message::Text(_)) => break,
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
    }
    read_timeout(socket, WAIT);
    server.unregister(&[&probe]);
    while next_change(socket)["changeType"] != "delete" {}
}

#[test]
fn register_then_unregister_pushes_new_then_delete() {
    let server = Server::start(&[]);
    let mut socket = subscribed(&server, "/ws/discovery/instance-change", I1_SERVICE);
    server.register_ok(&[I1]);
    let new = next_change(&mut socket);
    assert_eq!(new["changeType"], "new");
    assert_eq!(new["instance"], serde_json::from_str::<Value>(I1).unwrap());
    assert!(new["changeTime"].as_u64().unwrap() > 1_600_000_000_000);
    server.unregister(&[I1]);
    let delete = next_change(&mut socket);
    assert_eq!(delete["changeType"], "delete");
    assert_eq!(delete["instance"]["instanceId"], "10.2.3.4:8080");
}

#[test]
fn push_frames_are_java_instance_changes_byte_for_byte() {
    let server = Server::start(&[]);
    let mut socket = subscribed(&server, "/ws/discovery/instance-change", I1_SERVICE);
    server.register_ok(&[I1]);
    let Message::Text(text) = socket.read().unwrap() else {
        panic!("a text frame")
    };
    let time = text.split(',').next().unwrap();
    assert!(time.starts_with(r#"{"changeTime":"#));
    assert_eq!(
        &text[time.len()..],
        format!(r#","changeType":"new","instance":{I1}}}"#)
    );
}

#[test]
fn lease_expiry_pushes_delete() {
    let server = Server::start(SHORT_LEASES);
    let mut socket = subscribed(&server, "/ws/discovery/instance-change", "expiring.svc");
    server.register_ok(&[instance("expiring.svc", "i1")]);
    assert_eq!(next_change(&mut socket)["changeType"], "new");
    let delete = next_change(&mut socket);
    assert_eq!(delete["changeType"], "delete");
    assert_eq!(delete["instance"]["instanceId"], "i1");
}

#[test]
fn subscribers_get_only_their_services() {
    let server = Server::start(&[]);
    let mut socket = subscribed(&server, "/ws/discovery/instance-change", "wanted.svc");
    server.register_ok(&[instance("other.svc", "x"), instance("WANTED.svc", "y")]);
    let change = next_change(&mut socket);
    assert_eq!(change["instance"]["instanceId"], "y");
}

#[test]
fn all_instance_change_sees_every_service_on_every_shard() {
    let server = Server::start(&[]);
    let mut socket = subscribed(
        &server,
        "/ws/discovery/all-instance-change",
        "ignored.probe",
    );
    let ids = service_ids("everywhere", 10, server.shards);
    let list: Vec<String> = ids.iter().map(|s| instance(s, &format!("{s}-i"))).collect();
    server.register_ok(&list);
    let mut seen: Vec<String> = (0..ids.len())
        .map(|_| {
            next_change(&mut socket)["instance"]["serviceId"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    seen.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(seen, expected);
}

#[test]
fn heartbeats_over_websocket_keep_a_lease_alive() {
    let server = Server::start(SHORT_LEASES);
    let alive = instance("ws.heartbeat.svc", "i1");
    server.register_ok(&[&alive]);
    let mut socket = connect(&server, "/ws/registry/heartbeat");
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(3_500) {
        socket.send(Message::text(instances(&[&alive]))).unwrap();
        let reply = next_change(&mut socket);
        assert_eq!(reply["responseStatus"]["status"], "success", "{reply}");
        thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(server.instance_ids("ws.heartbeat.svc"), ["i1"]);
}

#[test]
fn websocket_heartbeat_replies_like_heartbeat_json() {
    let server = Server::start(&[]);
    let mut socket = connect(&server, "/ws/registry/heartbeat");
    socket.send(Message::text(instances(&[I1]))).unwrap();
    let over_ws = next_change(&mut socket);
    let over_http = server.heartbeat(&[I1]).json();
    assert_eq!(over_ws, over_http);
    assert_eq!(over_ws["failedInstances"][0]["errorCode"], "data-not-found");
    // Java answers a payload it cannot parse with a canned success.
    socket.send(Message::text("not json")).unwrap();
    assert_eq!(
        next_change(&mut socket),
        serde_json::json!({"failedInstances":null,"responseStatus":{"errorCode":"success","message":"","status":"success"}})
    );
}

/// Registers instances of `service` in batches until a subscriber has been closed for falling
/// behind, while `reader` reads on a thread of its own; asserts that the reader was never closed
/// and got every change. Returns the reading thread, to join once the server is gone.
fn flood_until_one_falls_behind(
    server: &Server,
    service: &str,
    mut reader: Socket,
) -> thread::JoinHandle<()> {
    let (counted, count) = mpsc::channel();
    let fast = thread::spawn(move || {
        let mut n = 0u64;
        loop {
            match reader.read() {
                Ok(Message::Text(_)) => n += 1,
                Ok(Message::Close(frame)) => panic!("the reading subscriber was closed: {frame:?}"),
                Ok(_) => {}
                Err(_) => break,
            }
            let _ = counted.send(n);
        }
    });
    let mut sent = 0u64;
    for batch in 0..2_000 {
        let list: Vec<String> = (0..50)
            .map(|i| instance(service, &format!("b{batch}-{i}")))
            .collect();
        server.register_ok(&list);
        sent += 50;
        if batch % 20 == 19 && server.metric("artemis_push_overflow_closes_total") >= 1.0 {
            break;
        }
    }
    assert!(
        server.metric("artemis_push_overflow_closes_total") >= 1.0,
        "no subscriber was closed after {sent} changes"
    );
    let received = poll(WAIT, || count.try_iter().last().filter(|&n| n >= sent))
        .expect("the reader got every change");
    assert_eq!(received, sent);
    fast
}

#[test]
fn a_stalled_subscriber_is_closed_while_another_keeps_receiving() {
    let server = Server::start(&["--ws-queue", "256KiB"]);
    let mut stalled = subscribed(&server, "/ws/discovery/instance-change", "busy.svc");
    let reader = subscribed(&server, "/ws/discovery/instance-change", "busy.svc");
    // Push until the stalled subscriber's socket buffers and inbox are full.
    let fast = flood_until_one_falls_behind(&server, "busy.svc", reader);

    // The stalled one finds its queued frames, then a close with code 1013 (try again later).
    let close = loop {
        match stalled.read() {
            Ok(Message::Close(frame)) => break frame,
            Ok(_) => continue,
            Err(e) => panic!("no close frame: {e}"),
        }
    };
    assert_eq!(close.expect("a close frame").code, CloseCode::Again);
    drop(server);
    let _ = fast.join();
}

/// Subscribers that do not read hold at most `--ws-queue-total` of changes together (an even
/// share per core), however large each one's own queue may be (64 MiB here, never reached): past
/// it the slowest is closed (1013), and a subscriber that reads keeps receiving every change.
#[test]
fn the_node_wide_queue_bound_closes_the_slowest_subscriber_first() {
    let server = Server::start(&["--ws-queue", "64MiB", "--ws-queue-total", "2MiB"]);
    let stalled: Vec<Socket> = (0..2)
        .map(|_| subscribed(&server, "/ws/discovery/instance-change", "node.busy"))
        .collect();
    let reader = subscribed(&server, "/ws/discovery/instance-change", "node.busy");
    let fast = flood_until_one_falls_behind(&server, "node.busy", reader);
    let closed = stalled
        .into_iter()
        .filter_map(|mut socket| {
            read_timeout(&socket, Duration::from_secs(2));
            loop {
                match socket.read() {
                    Ok(Message::Close(frame)) => return frame.map(|f| f.code),
                    Ok(_) => continue,
                    Err(_) => return None,
                }
            }
        })
        .collect::<Vec<_>>();
    assert!(closed.contains(&CloseCode::Again), "{closed:?}");
    drop(server);
    let _ = fast.join();
}

#[test]
fn a_session_following_too_many_services_is_closed_with_1008() {
    let server = Server::start(&["--ws-max-subscriptions", "3"]);
    let mut socket = subscribed(&server, "/ws/discovery/instance-change", "cap.a");
    // Following a service again takes no new place.
    for service in ["cap.a", "cap.a", "cap.b", "cap.c", "cap.a"] {
        subscribe(&mut socket, service);
    }
    await_subscription(&server, &mut socket, "cap.c");
    subscribe(&mut socket, "cap.d");
    assert_eq!(close_code(&mut socket), CloseCode::Policy);
    assert_eq!(server.get("/health").status, 200);
}

#[test]
fn connections_json_counts_registry_and_discovery_sessions() {
    let server = Server::start(&[]);
    let _heartbeat = connect(&server, "/ws/registry/heartbeat");
    let _a = connect(&server, "/ws/discovery/instance-change");
    let _b = connect(&server, "/ws/discovery/instance-change");
    let _all = connect(&server, "/ws/discovery/all-instance-change");
    let counts = poll(WAIT, || {
        let body = server
            .get("/api/status/message/connections.json")
            .text()
            .to_string();
        (body == r#"{"discovery":"2","registry":"1"}"#).then_some(body)
    });
    assert!(
        counts.is_some(),
        "{}",
        server.get("/api/status/message/connections.json").text()
    );
    drop(_a);
    let after = poll(WAIT, || {
        let body = server
            .get("/api/status/message/connections.json")
            .text()
            .to_string();
        (body == r#"{"discovery":"1","registry":"1"}"#).then_some(body)
    });
    assert!(after.is_some());
}

#[test]
fn a_plain_get_on_a_websocket_path_is_refused() {
    let server = Server::start(&[]);
    let reply = server.get("/ws/discovery/instance-change");
    assert_eq!(reply.status, 400);
    assert!(server.get("/health").status == 200);
}

/// The close frame the server ends the session with, skipping anything before it.
fn close_code(socket: &mut Socket) -> CloseCode {
    loop {
        match socket.read() {
            Ok(Message::Close(frame)) => return frame.expect("a close frame with a code").code,
            Ok(_) => continue,
            Err(e) => panic!("no close frame: {e}"),
        }
    }
}

#[test]
fn fragmented_heartbeats_are_assembled_and_pings_answered() {
    let server = Server::start(SHORT_LEASES);
    server.register_ok(&[I1]);
    let mut socket = connect(&server, "/ws/registry/heartbeat");
    let body = instances(&[I1]);
    let (head, tail) = body.split_at(body.len() / 2);
    let text = OpCode::Data(Data::Text);
    socket
        .send(Message::Frame(Frame::message(
            head.to_string(),
            text,
            false,
        )))
        .unwrap();
    // A control frame may come between the fragments of a message.
    socket.send(Message::Ping("probe".into())).unwrap();
    socket
        .send(Message::Frame(Frame::message(
            tail.to_string(),
            OpCode::Data(Data::Continue),
            true,
        )))
        .unwrap();
    let pong = loop {
        match socket.read().unwrap() {
            Message::Pong(payload) => break payload,
            Message::Ping(_) => continue,
            other => panic!("expected the pong first, got {other:?}"),
        }
    };
    assert_eq!(&pong[..], b"probe");
    let reply = next_change(&mut socket);
    assert_eq!(reply["responseStatus"]["errorCode"], "success", "{reply}");
}

#[test]
fn a_frame_over_the_size_limit_closes_only_its_session_with_1009() {
    let server = Server::start(&["--ws-max-frame", "4KiB"]);
    server.register_ok(&[I1]);
    let mut bystander = connect(&server, "/ws/registry/heartbeat");
    let mut offender = connect(&server, "/ws/registry/heartbeat");
    offender.send(Message::text("x".repeat(8 << 10))).unwrap();
    assert_eq!(close_code(&mut offender), CloseCode::Size);
    assert_eq!(
        server.metric(r#"artemis_websocket_refusals_total{reason="too_large"}"#),
        1.0
    );
    assert_eq!(
        server.metric(r#"artemis_limit_rejections_total{limit="websocket_size"}"#),
        1.0
    );
    bystander.send(Message::text(instances(&[I1]))).unwrap();
    assert_eq!(
        next_change(&mut bystander)["responseStatus"]["errorCode"],
        "success"
    );
}

#[test]
fn binary_messages_are_refused_with_1003() {
    let server = Server::start(&[]);
    let mut socket = connect(&server, "/ws/discovery/instance-change");
    socket.send(Message::binary(vec![1, 2, 3])).unwrap();
    assert_eq!(close_code(&mut socket), CloseCode::Unsupported);
    assert_eq!(
        server.metric(r#"artemis_websocket_refusals_total{reason="protocol"}"#),
        1.0
    );
}

#[test]
fn an_unmasked_client_frame_is_a_protocol_error() {
    let server = Server::start(&[]);
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
        .write_all(
            b"GET /ws/registry/heartbeat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
              Sec-WebSocket-Version: 13\r\n\r\n",
        )
        .unwrap();
    let mut seen = Vec::new();
    let mut byte = [0];
    while !seen.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        seen.push(byte[0]);
    }
    assert!(seen.starts_with(b"HTTP/1.1 101 "));
    // A text frame "hi" without the mask every client frame must carry.
    stream.write_all(&[0x81, 0x02, b'h', b'i']).unwrap();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert_eq!(rest[0], 0x88, "a close frame: {rest:?}");
    assert_eq!(u16::from_be_bytes([rest[2], rest[3]]), 1002);
    assert_eq!(
        server.metric(r#"artemis_websocket_refusals_total{reason="protocol"}"#),
        1.0
    );
}

/// A heartbeat session on a new connection, with the open connections per core before it and
/// the core that accepted it.
fn heartbeat_session(server: &Server) -> (Socket, Vec<f64>, usize) {
    // The metrics connection itself counts: open it before taking the baseline.
    server.metric("artemis_connections_open");
    let before = server.open_per_core();
    let socket = connect(server, "/ws/registry/heartbeat");
    let accepted = server.accepting_core(&before);
    (socket, before, accepted)
}

/// Sends the same heartbeat of `list` twice in one write, and checks that both are answered.
fn heartbeat_twice_in_one_write<S: AsRef<str>>(socket: &mut Socket, list: &[S]) {
    let heartbeat = instances(list);
    socket.write(Message::text(heartbeat.clone())).unwrap();
    socket.write(Message::text(heartbeat)).unwrap();
    socket.flush().unwrap();
    for _ in 0..2 {
        assert_eq!(next_change(socket)["responseStatus"]["status"], "success");
    }
}

#[test]
fn a_heartbeat_session_moves_to_the_core_that_owns_its_instances() {
    let server = Server::start(SHORT_LEASES);
    assert!(
        server.shards >= 2,
        "the suite runs on 2 cores, so a session can move"
    );
    let (mut socket, before, accepted) = heartbeat_session(&server);
    let owner = (accepted + 1) % server.shards;
    let moving_service = service_on_shard("ws.moving", owner, server.shards);
    let moving = instance(&moving_service, "i1");
    let moving_too = instance(&moving_service, "i2");
    let staying = instance(
        &service_on_shard("ws.staying", accepted, server.shards),
        "i1",
    );
    server.register_apart(&[&moving, &moving_too, &staying]);
    // A core serving more connections than the session's takes no moves: wait until the
    // register's own connection is closed wherever it went, so that only the session counts.
    let mut with_session = before.clone();
    with_session[accepted] += 1.0;
    server.assert_open_per_core(&with_session);

    // Two heartbeats in one write, two of whose three instances live on the other core: the
    // second is still unread when the session moves after the first, and is answered there.
    heartbeat_twice_in_one_write(&mut socket, &[&moving, &staying, &moving_too]);
    let mut expected = before.clone();
    expected[owner] += 1.0;
    server.assert_open_per_core(&expected);
    assert_eq!(server.metric("artemis_websocket_moves_total"), 1.0);
    assert_eq!(server.metric("artemis_websocket_sessions"), 1.0);

    // The moved session keeps the lease alive, answers like heartbeat.json for an instance on
    // any shard, and does not move again.
    let unknown = instance(&service_on_shard("ws.moving", accepted, server.shards), "x");
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(3_500) {
        socket
            .send(Message::text(instances(&[&moving, &moving_too, &staying])))
            .unwrap();
        assert_eq!(
            next_change(&mut socket)["responseStatus"]["status"],
            "success"
        );
        socket.send(Message::text(instances(&[&staying]))).unwrap();
        next_change(&mut socket);
        thread::sleep(Duration::from_millis(250));
    }
    socket.send(Message::text(instances(&[&unknown]))).unwrap();
    assert_eq!(
        next_change(&mut socket)["failedInstances"][0]["errorCode"],
        "data-not-found"
    );
    assert_eq!(server.metric("artemis_websocket_moves_total"), 1.0);
    server.assert_open_per_core(&expected);
    assert_eq!(server.instance_ids(&moving_service), ["i1", "i2"]);

    // Closing it gives its place back on the core it moved to.
    socket.close(None).unwrap();
    while socket.read().is_ok() {}
    server.assert_open_per_core(&before);
    assert_eq!(server.metric("artemis_websocket_sessions"), 0.0);
}

#[test]
fn a_heartbeat_session_on_a_core_owning_as_many_of_its_instances_stays() {
    let server = Server::start(&[]);
    let (mut socket, before, accepted) = heartbeat_session(&server);
    let local = instance(&service_on_shard("ws.local", accepted, server.shards), "i1");
    let other = (accepted + 1) % server.shards;
    let remote = instance(&service_on_shard("ws.remote", other, server.shards), "i1");
    server.register_apart(&[&local, &remote]);
    // All its instances here, or as many here as on the other core: it stays.
    for list in [vec![&local], vec![&remote, &local], vec![&local]] {
        socket.send(Message::text(instances(&list))).unwrap();
        next_change(&mut socket);
    }
    assert_eq!(server.metric("artemis_websocket_moves_total"), 0.0);
    let mut expected = before.clone();
    expected[accepted] += 1.0;
    server.assert_open_per_core(&expected);
}

/// Opens plain connections, keeping those the kernel gives to `core`, until `core` serves more
/// connections than `than`; returns them, to be held open.
fn crowd(server: &Server, core: usize, than: usize) -> Vec<TcpStream> {
    let mut held = Vec::new();
    loop {
        let now = server.open_per_core();
        if now[core] > now[than] {
            return held;
        }
        let conn = TcpStream::connect(server.addr).unwrap();
        if server.accepting_core(&now) == core {
            held.push(conn);
        } else {
            drop(conn);
            server.assert_open_per_core(&now);
        }
    }
}

#[test]
fn a_heartbeat_session_kept_from_a_busier_core_answers_what_followed_the_heartbeat() {
    let server = Server::start(&[]);
    let (mut socket, _, accepted) = heartbeat_session(&server);
    let owner = (accepted + 1) % server.shards;
    let _held = crowd(&server, owner, accepted);
    let crowded = server.open_per_core();
    let service = service_on_shard("ws.crowded", owner, server.shards);
    let (there, there_too) = (instance(&service, "i1"), instance(&service, "i2"));
    server.register_apart(&[&there, &there_too]);
    server.assert_open_per_core(&crowded);

    // The first heartbeat names the busier core, which takes no move: the second, read with it,
    // is answered here all the same.
    heartbeat_twice_in_one_write(&mut socket, &[&there, &there_too]);
    assert_eq!(server.metric("artemis_websocket_moves_total"), 0.0);
    assert_eq!(server.open_per_core(), crowded);
}
