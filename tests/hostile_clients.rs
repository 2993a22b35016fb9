//! Clients that try to take memory or sockets without bound, re-run against the real server over
//! loopback: pipelined large replies on connections that never read (held to about one reply
//! plus `--max-output` each), connections whose replies stall past the idle timeout (closed,
//! their descriptors and places given back), a second server on a port already served (refused),
//! and WebSocket sessions at shutdown (told 1001 before the socket closes). Each test also checks
//! that another client is served while the attack is on. Figures go to stderr
//! (`--nocapture`).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use common::artemis::{instance, instances, REGISTER, REGISTRY_SUCCESS};
use common::json::assert_body;
use common::{
    artemis, get_request, poll, post_request, wait_for_exit, Client, Server, TempDir, REGION, ZONE,
};

/// The service the large listings are of.
const BIG_SERVICE: &str = "hostile.big.listing";
/// Its instances: with ~200 bytes of metadata each, a `service.json` reply of about 2 MB.
const BIG_INSTANCES: usize = 4_000;
/// How many instances one register request carries.
const BATCH: usize = 1_000;

/// `GET service.json` for [`BIG_SERVICE`] from a client in the server's region and zone.
fn big_listing_path() -> String {
    format!("/api/discovery/service.json?serviceId={BIG_SERVICE}&regionId={REGION}&zoneId={ZONE}")
}

/// Instance `n` of [`BIG_SERVICE`], with about 200 bytes of metadata.
fn padded_instance(n: usize) -> String {
    let id = format!("10.{}.{}.{}:8080", n / 65_536 % 256, n / 256 % 256, n % 256);
    let metadata = format!(
        r#""metadata":{{"build":"{n:08}-{}","owner":"hostile-clients-test"}}"#,
        "b".repeat(150)
    );
    instance(BIG_SERVICE, &id).replace(r#""metadata":null"#, &metadata)
}

/// Registers [`BIG_SERVICE`], each batch on a connection of its own (so an idle timeout of a
/// second cannot close a shared one between batches); returns the size of its `service.json`
/// reply body, having checked that it lists every instance.
fn register_big_service(server: &Server) -> usize {
    let all: Vec<String> = (0..BIG_INSTANCES).map(padded_instance).collect();
    for batch in all.chunks(BATCH) {
        let mut client = server.connect();
        assert_body(&client.post(REGISTER, &instances(batch)), REGISTRY_SUCCESS);
    }
    let reply = server.get_once(&big_listing_path());
    assert_eq!(reply.status, 200, "{}", reply.text());
    let listed = reply.json()["service"]["instances"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(listed, BIG_INSTANCES);
    reply.body.len()
}

/// A connection that sends `wire` (pipelined requests) and never reads.
fn non_reader(server: &Server, wire: &[u8]) -> Client {
    let mut client = server.connect();
    client.send(wire);
    client
}

/// `count` pipelined `GET`s of the large listing.
fn listing_pipeline(count: usize) -> Vec<u8> {
    (0..count)
        .flat_map(|_| get_request(&big_listing_path()))
        .collect()
}

fn rejections(server: &Server, limit: &str) -> f64 {
    server
        .metric_once(&format!(
            "artemis_limit_rejections_total{{limit=\"{limit}\"}}"
        ))
        .unwrap_or(0.0)
}

/// The largest of `samples` readings of the server's RSS taken 100 ms apart, in KiB.
fn peak_rss_kib(server: &Server, samples: usize) -> u64 {
    (0..samples)
        .map(|n| {
            if n > 0 {
                thread::sleep(Duration::from_millis(100));
            }
            server.rss_kib()
        })
        .max()
        .unwrap_or(0)
}

/// What a loopback connection's socket buffers take while its client does not read: the
/// largest send buffer of the server's socket (`tcp_wmem`, grown by the kernel as it sends) and
/// the initial receive buffer of the client's (`tcp_rmem`: the kernel grows a receive buffer
/// only as its application reads), in bytes.
fn socket_buffers_max() -> usize {
    let field = |name: &str, n: usize| -> usize {
        let text = std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        text.split_whitespace()
            .nth(n)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{name}: {text:?}"))
    };
    field("tcp_wmem", 2) + field("tcp_rmem", 1)
}

/// The premise of an attack: what one connection asks for (`replies_len` bytes) is more than its
/// socket buffers can take, so the server's writes stall and the rest waits on it.
fn assert_stalls(replies_len: usize) {
    let buffers = socket_buffers_max();
    assert!(
        replies_len > 2 * buffers,
        "one connection's replies ({replies_len} B) would fit in its socket buffers ({buffers} \
         B): the attack would not stall"
    );
}

/// What the server held while `connections` connections sent `wire` and did not read.
struct Stalled {
    attackers: Vec<Client>,
    reply_len: usize,
    /// RSS before the attack and at its peak once the server stopped answering, in KiB.
    before: u64,
    during: u64,
    /// Discovery requests answered on the attackers' connections.
    answered: f64,
}

impl Stalled {
    fn grown(&self) -> u64 {
        self.during.saturating_sub(self.before)
    }

    /// The attack's premise held (`requests` replies stall each connection), and the server
    /// grew by less than `bound_kib`.
    fn assert_bounded(&self, requests: usize, bound_kib: u64) {
        assert_stalls(requests * self.reply_len);
        assert!(
            self.grown() < bound_kib,
            "RSS grew by {} KiB with {} non-reading connections; the bound is {bound_kib} KiB",
            self.grown(),
            self.attackers.len()
        );
    }
}

/// Starts a server with `--max-output 256KiB`, registers the large service, then opens
/// `connections` connections that each send `wire(its index)` and never read. Once the server
/// stopped answering them (its discovery count steady for a second), samples its RSS for a
/// second; `/health` and the full listing are answered to another client meanwhile.
fn stall_with(connections: usize, wire: impl Fn(usize) -> Vec<u8>) -> (Server, Stalled) {
    let server = Server::start(&["--max-output", "256KiB"]);
    let reply_len = register_big_service(&server);
    // Once more, so that the listing's bytes are built and cached before the baseline.
    assert_eq!(server.get(&big_listing_path()).status, 200);
    let answered_before = server.metric("artemis_discovery_requests_total");
    let before = peak_rss_kib(&server, 5);

    let attackers: Vec<Client> = (0..connections)
        .map(|n| non_reader(&server, &wire(n)))
        .collect();
    let mut last = (-1.0, Instant::now());
    let steady = poll(Duration::from_secs(20), || {
        let now = server.metric("artemis_discovery_requests_total");
        if now != last.0 {
            last = (now, Instant::now());
        }
        (last.1.elapsed() >= Duration::from_secs(1)).then_some(now)
    });
    let answered =
        steady.expect("the server never stopped answering the attackers") - answered_before;
    let health = server.get_once("/health");
    assert_eq!(health.status, 200, "{health:?}");
    let during = peak_rss_kib(&server, 10);
    let listing = server.get_once(&big_listing_path());
    assert_eq!(listing.status, 200);
    let listed = listing.json()["service"]["instances"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(listed, BIG_INSTANCES);
    let stalled = Stalled {
        attackers,
        reply_len,
        before,
        during,
        answered,
    };
    (server, stalled)
}

/// Drops the attackers and reports the RSS a second later.
fn release(server: &Server, stalled: Stalled) {
    drop(stalled.attackers);
    thread::sleep(Duration::from_secs(1));
    let after = peak_rss_kib(server, 5);
    eprintln!("RSS after the attackers left: {after} KiB");
    assert_eq!(server.get_once("/health").status, 200);
}

/// What `connections` connections may hold between them: one reply plus the output bound
/// each, and 64 MiB of slack, in KiB.
fn output_bound_kib(connections: usize, reply_len: usize) -> u64 {
    connections as u64 * ((reply_len / 1024) as u64 + 1 + 256) + 64 * 1024
}

/// Attack: 4 connections each pipeline 32 `GET`s of a ~2 MB `service.json` reply and never read.
/// Were each to hold all its replies, that is 4 × 32 × 2 MB ≈ 256 MB; with `--max-output 256KiB`
/// a connection answers no further request while its unsent replies reach the bound, so it
/// holds about one reply plus the bound. Asserted: what one connection asks for is far more than
/// its socket buffers take (so it stalls), the server's RSS grows by less than
/// 4 × (reply + 256 KiB) + 64 MiB, `/health` and the listing are answered to another client
/// meanwhile, and the cut turns are counted as `output_bound`.
#[test]
fn pipelined_large_replies_to_a_client_that_never_reads_stay_bounded() {
    const CONNECTIONS: usize = 4;
    const PIPELINED: usize = 32;
    let (server, stalled) = stall_with(CONNECTIONS, |_| listing_pipeline(PIPELINED));
    let reply_kib = (stalled.reply_len / 1024) as u64 + 1;
    let bound_kib = output_bound_kib(CONNECTIONS, stalled.reply_len);
    let all_kib = (CONNECTIONS * PIPELINED) as u64 * reply_kib;
    assert!(all_kib > 2 * bound_kib, "{all_kib} KiB vs {bound_kib} KiB");
    let cut_turns = rejections(&server, "output_bound");
    eprintln!(
        "reply {} B; RSS before {} KiB, during {} KiB (+{} KiB; bound {bound_kib} KiB, all \
         replies {all_kib} KiB); {} of {} requests answered; {cut_turns} turns cut at the \
         output bound",
        stalled.reply_len,
        stalled.before,
        stalled.during,
        stalled.grown(),
        stalled.answered,
        CONNECTIONS * PIPELINED
    );
    stalled.assert_bounded(PIPELINED, bound_kib);
    release(&server, stalled);
    assert!(cut_turns > 0.0, "no turn was cut at the output bound");
}

/// Attack: as above, but before each `GET` of the listing the connection re-registers one of its
/// instances with metadata no other request sends, so that every reply is a different version
/// of the listing: the server cannot make the replies waiting on a connection cheap by sharing
/// one copy of the bytes between them. 8 connections each pipeline 16 such pairs and never
/// read: holding every reply would take 8 × 16 × 2 MB ≈ 256 MB. Asserted: RSS grows by less
/// than 8 × (reply + 256 KiB) + 64 MiB, and `/health` and the listing are answered to another
/// client meanwhile.
#[test]
fn pipelined_replies_of_changing_listings_stay_bounded() {
    const CONNECTIONS: usize = 8;
    const PAIRS: usize = 16;
    // Every change is a new one: its metadata names the connection and the pair.
    let wire = |connection: usize| {
        let mut wire = Vec::new();
        for pair in 0..PAIRS {
            let changed = padded_instance(pair).replace(
                "hostile-clients-test",
                &format!("change-{connection:02}-{pair:04}"),
            );
            wire.extend(post_request(REGISTER, &instances(&[changed])));
            wire.extend(get_request(&big_listing_path()));
        }
        wire
    };
    let (server, stalled) = stall_with(CONNECTIONS, wire);
    let reply_kib = (stalled.reply_len / 1024) as u64 + 1;
    let bound_kib = output_bound_kib(CONNECTIONS, stalled.reply_len);
    let all_kib = (CONNECTIONS * PAIRS) as u64 * reply_kib;
    assert!(all_kib > 2 * bound_kib, "{all_kib} KiB vs {bound_kib} KiB");
    eprintln!(
        "reply {} B; RSS before {} KiB, during {} KiB (+{} KiB; bound {bound_kib} KiB, all \
         replies {all_kib} KiB); {} of {} listings answered; {} turns cut at the output bound",
        stalled.reply_len,
        stalled.before,
        stalled.during,
        stalled.grown(),
        stalled.answered,
        CONNECTIONS * PAIRS,
        rejections(&server, "output_bound")
    );
    stalled.assert_bounded(PAIRS, bound_kib);
    release(&server, stalled);
}

/// Attack: 10 connections (of `--max-connections 12`) each pipeline 64 `GET`s of a ~2 MB reply
/// and never read, so the server's writes stall once the socket buffers are full, holding a
/// descriptor and a connection place each. Asserted: within a few seconds after
/// `--idle-timeout 1s` the server has given up every one (`write_timeout`), its descriptor count
/// is back to its baseline (+2), each attacker reads to EOF or a reset, and 10 new clients are
/// then admitted and served (no 503); `/health` answers while the attack is on.
#[test]
fn connections_whose_replies_stall_are_closed_and_their_places_given_back() {
    const ATTACKERS: usize = 10;
    const PIPELINED: usize = 64;
    const FD_SLACK: usize = 2;
    let server = Server::start(&["--idle-timeout", "1s", "--max-connections", "12"]);
    let reply_len = register_big_service(&server);
    // The registering connections are gone once the count stops falling.
    let mut baseline = server.open_fds();
    let settled = poll(Duration::from_secs(5), || {
        thread::sleep(Duration::from_millis(200));
        let now = server.open_fds();
        let steady = now == baseline;
        baseline = baseline.min(now);
        steady.then_some(())
    });
    assert!(settled.is_some(), "the descriptor count never settled");

    let wire = listing_pipeline(PIPELINED);
    assert_stalls(PIPELINED * reply_len);
    let started = Instant::now();
    let mut attackers: Vec<Client> = (0..ATTACKERS).map(|_| non_reader(&server, &wire)).collect();
    let peak = poll(Duration::from_secs(5), || {
        let now = server.open_fds();
        (now >= baseline + ATTACKERS).then_some(now)
    })
    .unwrap_or_else(|| {
        panic!(
            "the attackers were not all admitted: {} descriptors, baseline {baseline}",
            server.open_fds()
        )
    });
    // The two places left serve others meanwhile.
    let health = server.get_once("/health");
    assert_eq!(health.status, 200, "{health:?}");

    let closed = poll(Duration::from_secs(15), || {
        (server.open_fds() <= baseline + FD_SLACK).then(|| started.elapsed())
    });
    let fds_now = server.open_fds();
    eprintln!(
        "reply {reply_len} B; descriptors: baseline {baseline}, with {ATTACKERS} attackers \
         {peak}, then {fds_now} after {closed:?}"
    );
    let closed_after = closed.unwrap_or_else(|| {
        panic!(
            "{fds_now} descriptors 15 s after the attack began (baseline {baseline}): the \
             stalled connections were not closed"
        )
    });
    assert!(
        closed_after < Duration::from_secs(10),
        "closed only after {closed_after:?}"
    );
    // Each attacker finds what the kernel had taken before the close, then the end.
    let mut taken = Vec::new();
    for (n, attacker) in attackers.iter_mut().enumerate() {
        let received = attacker.read_until_closed(Duration::from_secs(10));
        taken.push(received.len());
        assert!(
            received.starts_with(b"HTTP/1.1 200 "),
            "attacker {n}: {:?}",
            String::from_utf8_lossy(&received[..received.len().min(100)])
        );
        assert!(
            received.len() < PIPELINED * reply_len,
            "attacker {n} received every reply ({} B): nothing stalled",
            received.len()
        );
    }
    eprintln!("bytes each attacker could read after the close: {taken:?}");
    drop(attackers);

    // Every place was given back: 10 new clients at once are all admitted and served.
    let mut fresh: Vec<Client> = (0..ATTACKERS).map(|_| server.connect()).collect();
    for client in &mut fresh {
        client.send(&get_request("/health"));
    }
    for (n, client) in fresh.iter_mut().enumerate() {
        let reply = client.read_reply();
        assert_eq!(reply.status, 200, "new client {n}: {reply:?}");
    }
    let timeouts = rejections(&server, "write_timeout");
    eprintln!("write_timeout rejections: {timeouts}");
    assert!(timeouts > 0.0, "no write timeout was counted");
}

/// Attack: a second server started on the address a running one serves. With `SO_REUSEPORT`
/// alone it could share the port, and the kernel would split clients between two registries
/// that do not know each other. Asserted: the second exits with status 1 within 10 s saying
/// "address in use by another process", and the first keeps answering `/health` on every new
/// connection.
#[test]
fn a_second_server_on_a_served_port_is_refused() {
    let server = Server::start(&[]);
    let addr = server.addr.to_string();
    let dir = TempDir::new("second-server");
    let data_dir = dir.path().to_str().unwrap();
    let mut second = artemis(&[
        "server",
        "--addr",
        &addr,
        "--region",
        REGION,
        "--zone",
        ZONE,
        "--data-dir",
        data_dir,
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("the artemis binary starts");
    let status = wait_for_exit(&mut second, Duration::from_secs(10));
    if status.is_none() {
        let _ = second.kill();
        let _ = second.wait();
    }
    // The child has exited (or was killed): its pipes are at their end.
    let output = second.wait_with_output().expect("the output is read");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    let status = status.unwrap_or_else(|| {
        panic!("the second server on {addr} still ran after 10 s; its output:\n{output}")
    });
    assert_eq!(status.code(), Some(1), "{status:?}; output:\n{output}");
    assert!(
        output.contains("address in use by another process"),
        "output:\n{output}"
    );
    // Whichever core's listener the kernel picks, the first server answers.
    for n in 0..20 {
        let reply = server.get_once("/health");
        assert_eq!(reply.status, 200, "connection {n}: {reply:?}");
    }
}

/// How a raw WebSocket read ended.
#[derive(Debug)]
enum End {
    Eof,
    Reset,
}

/// The complete frames at the start of `bytes` from the server (which does not mask), as opcode
/// and payload, and how many bytes they take.
fn frames(bytes: &[u8]) -> (Vec<(u8, Vec<u8>)>, usize) {
    let mut parsed = Vec::new();
    let mut at = 0;
    while let Some(&[first, second]) = bytes.get(at..at + 2) {
        assert_eq!(second & 0x80, 0, "a masked server frame: {bytes:?}");
        let (len, head) = match second & 0x7f {
            126 => match bytes.get(at + 2..at + 4) {
                Some(b) => (u16::from_be_bytes([b[0], b[1]]) as usize, 4),
                None => break,
            },
            127 => match bytes.get(at + 2..at + 10) {
                Some(b) => (u64::from_be_bytes(b.try_into().unwrap()) as usize, 10),
                None => break,
            },
            n => (n as usize, 2),
        };
        let Some(payload) = bytes.get(at + head..at + head + len) else {
            break;
        };
        parsed.push((first & 0x0f, payload.to_vec()));
        at += head + len;
    }
    (parsed, at)
}

/// Attack re-run: a subscriber holds a `/ws/discovery/all-instance-change` session when the
/// server stops; dropping the socket without a word would leave the client unsure whether to
/// reconnect at once. Asserted: on SIGTERM the client reads a close frame with code 1001 (going
/// away), and nothing after it, before the end of the stream; the server exits with status 0
/// within 10 s; `/health` answered while the session was open.
#[test]
fn shutdown_closes_websocket_sessions_with_1001_before_the_socket() {
    let mut server = Server::start(&[]);
    let mut stream = TcpStream::connect(server.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    stream
        .write_all(
            b"GET /ws/discovery/all-instance-change HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
              Sec-WebSocket-Version: 13\r\n\r\n",
        )
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("the handshake reply");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101 "),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let open = poll(Duration::from_secs(10), || {
        (server.metric("artemis_websocket_sessions") >= 1.0).then_some(())
    });
    assert!(open.is_some(), "the session never opened");
    assert_eq!(server.get_once("/health").status, 200);

    // Reads everything until the end of the stream, answering the server's close as a client does.
    let mut writer = stream.try_clone().unwrap();
    let reader = thread::spawn(move || {
        let mut received = Vec::new();
        let mut answered = false;
        let mut chunk = [0u8; 4096];
        let end = loop {
            match stream.read(&mut chunk) {
                Ok(0) => break End::Eof,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break End::Reset,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => panic!("reading the session failed: {e}; received {received:?}"),
            }
            if !answered && frames(&received).0.iter().any(|(op, _)| *op == 8) {
                answered = true;
                // A masked close frame echoing 1001, mask 0 for simplicity.
                let _ = writer.write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe9]);
            }
        };
        (received, end)
    });
    let status = server.signal_and_wait("TERM", Duration::from_secs(10));
    let (received, end) = reader.join().expect("the reader finishes");
    let (parsed, used) = frames(&received);
    eprintln!("after SIGTERM: frames {parsed:?}, then {end:?}; server {status:?}");
    assert_eq!(used, received.len(), "a partial frame: {received:?}");
    let (opcode, payload) = parsed.last().expect("a frame before the end of the stream");
    assert_eq!(*opcode, 8, "the last frame is not a close: {parsed:?}");
    assert!(payload.len() >= 2, "a close frame without a code");
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1001);
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}; log:\n{}",
        server.log()
    );
}
