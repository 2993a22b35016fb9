//! Both transports over real loopback sockets, below HTTP: a glommio executor serves an echo
//! (or an amplifying echo) on the transport under test, plain `std` sockets are the peers, and a
//! probe reports what the server holds. The HTTP endpoints run over both transports in the
//! integration suite; these tests go after the transport's own edge cases.

use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use glommio::timer::sleep;
use glommio::{spawn_local, LocalExecutorBuilder, Placement};

use super::conn::{INPUT_LIMIT, READ_LIMIT};
use super::ring::RING_BYTES;
use super::{Ring, UringListener, RECV_BUFFER_EXHAUSTED};
use crate::transport::glommio_tcp::GlommioListener;
use crate::transport::{Connection, Io, Listener, Output, ReadBuffer};

const LONG: Duration = Duration::from_secs(60);

/// What the server writes back for each read.
type Reply = fn(&[u8]) -> Vec<u8>;

fn echo(input: &[u8]) -> Vec<u8> {
    input.to_vec()
}

/// 16 bytes out for every byte in: a peer that does not read falls behind fast.
fn amplify(input: &[u8]) -> Vec<u8> {
    input.repeat(16)
}

/// 32 MiB out for any input.
fn flood(_: &[u8]) -> Vec<u8> {
    vec![b'x'; 32 << 20]
}

/// What the server holds, as its probe last saw it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Held {
    /// Connections whose task is still running.
    open: usize,
    /// Connections the ring still keeps state for (0 on the glommio transport).
    ring_conns: usize,
    /// Input and output bytes the ring keeps for them.
    ring_bytes: usize,
}

struct TestServer {
    addr: SocketAddr,
    held: Arc<Mutex<Held>>,
    stall: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    fn start(io: Io, reply: Reply, idle: Duration) -> TestServer {
        let held = Arc::new(Mutex::new(Held::default()));
        let (stall, stop) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let (tx, rx) = mpsc::channel();
        let shared = (Arc::clone(&held), Arc::clone(&stall), Arc::clone(&stop));
        let thread = thread::spawn(move || {
            let (held, stall, stop) = shared;
            LocalExecutorBuilder::new(Placement::Unbound)
                .spawn(move || async move {
                    let open = Rc::new(Cell::new(0));
                    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
                    let ring = match io {
                        Io::Uring => {
                            let ring = Ring::start().expect("an io_uring ring");
                            let listener = UringListener::bind(ring.clone(), addr).unwrap();
                            tx.send(listener.local_addr().unwrap()).unwrap();
                            spawn_local(accept(listener, reply, idle, open.clone())).detach();
                            Some(ring)
                        }
                        Io::Glommio => {
                            let listener = GlommioListener::bind(addr).unwrap();
                            tx.send(listener.local_addr().unwrap()).unwrap();
                            spawn_local(accept(listener, reply, idle, open.clone())).detach();
                            None
                        }
                    };
                    while !stop.load(Ordering::Relaxed) {
                        sleep(Duration::from_millis(5)).await;
                        if stall.swap(false, Ordering::Relaxed) {
                            // Blocks the whole executor: completions pile up meanwhile.
                            thread::sleep(Duration::from_millis(500));
                        }
                        let (ring_conns, ring_bytes) = ring.as_ref().map_or((0, 0), |r| r.held());
                        *held.lock().unwrap() = Held {
                            open: open.get(),
                            ring_conns,
                            ring_bytes,
                        };
                    }
                })
                .unwrap()
                .join()
                .unwrap();
        });
        TestServer {
            addr: rx.recv_timeout(LONG).expect("the test server listens"),
            held,
            stall,
            stop,
            thread: Some(thread),
        }
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).unwrap();
        stream.set_read_timeout(Some(LONG)).unwrap();
        stream
    }

    fn held(&self) -> Held {
        *self.held.lock().unwrap()
    }

    /// Waits until the probe reports what `wanted` accepts.
    fn wait_until(&self, what: &str, wanted: impl Fn(Held) -> bool) -> Held {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let held = self.held();
            if wanted(held) {
                return held;
            }
            assert!(Instant::now() < deadline, "{what}: still {held:?}");
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs `test` against a fresh server on each transport; the server must end up holding nothing
/// once the test's connections are gone.
fn on_both(reply: Reply, idle: Duration, test: impl Fn(Io, &TestServer)) {
    for io in [Io::Uring, Io::Glommio] {
        let server = TestServer::start(io, reply, idle);
        test(io, &server);
        server.wait_until("every connection closed and freed", |h| {
            h == Held::default()
        });
    }
}

async fn accept<L: Listener>(listener: L, reply: Reply, idle: Duration, open: Rc<Cell<usize>>) {
    while let Ok(conn) = listener.accept().await {
        let open = open.clone();
        spawn_local(async move {
            open.set(open.get() + 1);
            serve(conn, reply, idle).await;
            open.set(open.get() - 1);
        })
        .detach();
    }
}

/// Reads, answers with `reply`, until the peer closes, an error, or `idle` passes without input.
async fn serve<C: Connection>(mut conn: C, reply: Reply, idle: Duration) {
    let mut input = ReadBuffer::default();
    loop {
        match conn.read_into(&mut input, idle).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut output = Output::from(reply(input.filled_mut()));
        input.consume(input.len());
        if conn.write_all(&mut output, idle).await.is_err() {
            return;
        }
    }
}

/// `len` bytes that do not repeat with any short period.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn read_exactly(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut got = vec![0; len];
    stream.read_exact(&mut got).unwrap();
    got
}

/// Writes a greeting on every connection, then reads every echo back.
fn greet_each(streams: &mut [TcpStream]) {
    let greeting = |i: usize| format!("hello {i:05}").into_bytes();
    for (i, stream) in streams.iter_mut().enumerate() {
        stream.write_all(&greeting(i)).unwrap();
    }
    for (i, stream) in streams.iter_mut().enumerate() {
        assert_eq!(read_exactly(stream, 11), greeting(i));
    }
}

#[test]
fn data_larger_than_many_receive_buffers_comes_back_whole() {
    on_both(echo, LONG, |io, server| {
        let mut stream = server.connect();
        let sent = pattern(3 << 20);
        let mut writer = stream.try_clone().unwrap();
        let to_send = sent.clone();
        let writing = thread::spawn(move || writer.write_all(&to_send).unwrap());
        let got = read_exactly(&mut stream, sent.len());
        writing.join().unwrap();
        assert!(got == sent, "{io:?}: the echo differs");
    });
}

#[test]
fn pipelined_writes_come_back_in_order() {
    on_both(echo, LONG, |io, server| {
        let mut stream = server.connect();
        let mut sent = Vec::new();
        for i in 0..2000 {
            let message = format!("request {i};");
            stream.write_all(message.as_bytes()).unwrap();
            sent.extend_from_slice(message.as_bytes());
        }
        assert_eq!(read_exactly(&mut stream, sent.len()), sent, "{io:?}");
    });
}

#[test]
fn many_connections_are_served_at_once() {
    on_both(echo, LONG, |_, server| {
        let mut streams: Vec<TcpStream> = (0..2000).map(|_| server.connect()).collect();
        greet_each(&mut streams);
        server.wait_until("all connections open", |h| h.open == 2000);
    });
}

#[test]
fn an_idle_connection_is_closed_after_the_timeout() {
    on_both(echo, Duration::from_millis(200), |io, server| {
        let mut stream = server.connect();
        stream.write_all(b"ping").unwrap();
        assert_eq!(read_exactly(&mut stream, 4), b"ping");
        let started = Instant::now();
        let mut rest = Vec::new();
        assert_eq!(stream.read_to_end(&mut rest).unwrap(), 0, "{io:?}: closed");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(150),
            "{io:?}: closed after {waited:?}"
        );
    });
}

#[test]
fn a_slow_reader_never_makes_the_server_buffer_without_bound() {
    on_both(amplify, LONG, |io, server| {
        let mut stream = server.connect();
        stream
            .set_write_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        // Write and never read, until the writes block: the server must stop reading.
        let chunk = [b'r'; 16 * 1024];
        let mut written = 0usize;
        while written < 512 << 20 {
            match stream.write(&chunk) {
                Ok(n) => written += n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                Err(e) => panic!("{io:?}: write failed: {e}"),
            }
        }
        // Bounded by the socket buffers on both sides plus the server's own limits; without
        // back-pressure the server would have taken everything (512 MiB).
        assert!(
            written < 96 << 20,
            "{io:?}: the server took {written} bytes"
        );
        let held = server.held();
        // At most the input that waits, with what the receive took before its cancel took
        // effect: the buffers it filled before the cancel was submitted, given back as they were
        // read, and those it filled again in the enter that submits the cancel (the kernel runs
        // the receive's pending work first). Plus one batch of output (16x one read), in a
        // vector at most twice as large.
        let bound = INPUT_LIMIT + 2 * RING_BYTES + 2 * 16 * (READ_LIMIT + 4096);
        assert!(held.ring_bytes <= bound, "{io:?}: the ring holds {held:?}");
        // The peer then goes away with everything unread: the server frees the connection.
    });
}

#[test]
fn a_peer_that_vanishes_mid_send_frees_its_buffers() {
    on_both(flood, LONG, |io, server| {
        let mut stream = server.connect();
        stream.write_all(b"go").unwrap();
        read_exactly(&mut stream, 64 * 1024);
        // The ring keeps the reply it sends (glommio sends from the task's own buffer).
        let in_flight = if io == Io::Uring { 32 << 20 } else { 0 };
        server.wait_until("the reply in flight", |h| {
            h.open == 1 && h.ring_bytes >= in_flight
        });
        // Reset rather than close: the send in flight fails at once.
        socket2::SockRef::from(&stream)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    });
}

#[test]
fn an_empty_buffer_ring_is_survived_and_counted() {
    let server = TestServer::start(Io::Uring, echo, LONG);
    // More connections than the ring has buffers, all armed.
    let mut streams: Vec<TcpStream> = (0..3000).map(|_| server.connect()).collect();
    server.wait_until("all connections accepted", |h| h.open == 3000);
    let exhausted = RECV_BUFFER_EXHAUSTED.load(Ordering::Relaxed);
    // While the executor is blocked, every connection's receive completes and takes a buffer.
    server.stall.store(true, Ordering::Relaxed);
    thread::sleep(Duration::from_millis(50));
    greet_each(&mut streams);
    assert!(
        RECV_BUFFER_EXHAUSTED.load(Ordering::Relaxed) > exhausted,
        "the ring ran dry, and it was counted"
    );
    drop(streams);
    server.wait_until("every connection freed", |h| h == Held::default());
}
