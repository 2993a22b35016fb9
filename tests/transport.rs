//! The whole server at the transport's limits: ten thousand connections, a client that does not
//! read its replies, one that vanishes mid-reply. It runs over whichever `--io` the suite runs
//! with (`ARTEMIS_TEST_IO`; CI runs both); the transport's own edge cases are tested below HTTP in
//! `src/transport/uring/tests.rs`.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use common::{get_request, poll, Client, Server};

/// These tests push a server to its limits on a 2-core machine; run one at a time so that each
/// server gets the cores its deadlines assume.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn alone() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Open client connections, as the server counts them.
fn open(server: &Server) -> f64 {
    server.metric("artemis_connections_open")
}

/// Waits until only the harness's own connection (behind `metric`) is open.
fn all_others_closed(server: &Server, what: &str) {
    let closed = poll(Duration::from_secs(20), || {
        (open(server) == 1.0).then_some(())
    });
    assert!(
        closed.is_some(),
        "{what}: {} still open",
        open(server) - 1.0
    );
}

#[test]
fn ten_thousand_connections_are_served_at_once() {
    let _alone = alone();
    let server = Server::start(&[]);
    let mut clients: Vec<Client> = (0..10_000).map(|_| server.connect()).collect();
    let request = get_request("/health");
    for client in &mut clients {
        client.send(&request);
    }
    for client in &mut clients {
        assert_eq!(client.read_reply().status, 200);
    }
    assert_eq!(open(&server), 10_001.0);
    // A burst this size may empty a core's receive buffers: it is counted, never fatal.
    let exhausted = server.metric("artemis_recv_buffer_exhausted_total");
    eprintln!("10 000 connections: {exhausted} receives re-armed for want of a buffer");
    drop(clients);
    all_others_closed(&server, "after 10 000 clients left");
}

/// A connection that asks for `/metrics` (several KiB each) `count` times in one write.
fn pipelined_metrics(server: &Server, count: usize) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr).unwrap();
    let requests = get_request("/metrics").repeat(count);
    stream.write_all(&requests).unwrap();
    stream
}

#[test]
fn a_client_that_does_not_read_its_replies_holds_up_no_one_else() {
    let _alone = alone();
    let server = Server::start(&[]);
    let mut slow = pipelined_metrics(&server, 2000);
    slow.set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    // Keep asking without reading: the server stops reading this connection, so the writes
    // block once the socket buffers are full.
    let more = get_request("/metrics").repeat(100);
    let mut stalled = false;
    for _ in 0..10_000 {
        match slow.write(&more) {
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                stalled = true;
                break;
            }
            Err(e) => panic!("write failed: {e}"),
        }
    }
    assert!(
        stalled,
        "the server went on reading a client that never reads"
    );
    assert_eq!(server.get("/health").status, 200);
    drop(slow);
    all_others_closed(&server, "after the slow reader left");
}

#[test]
fn a_client_that_vanishes_mid_reply_is_forgotten() {
    let _alone = alone();
    let server = Server::start(&[]);
    let mut gone = pipelined_metrics(&server, 500);
    let mut some = [0u8; 4096];
    gone.read_exact(&mut some).unwrap();
    // A reset, not a close: the server's send in flight fails.
    socket2::SockRef::from(&gone)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(gone);
    all_others_closed(&server, "after the client vanished");
    assert_eq!(server.get("/health").status, 200);
}
