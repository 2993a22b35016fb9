//! A TCP proxy on a loopback port, for the tests that play a peer, a network path or a database
//! going bad: `cut` drops every connection through it and refuses new ones, `delay` holds every
//! chunk of bytes for a while, `black_hole` swallows them with the connections left open (a
//! path that drops traffic), and `restore` lets everything through again.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How bytes go through, shared by every connection of a proxy: `PASS`, `SWALLOW`, or a delay
/// in milliseconds.
struct Path(AtomicU64);

const PASS: u64 = 0;
const SWALLOW: u64 = u64::MAX;

/// A TCP proxy on a loopback port; `cut` drops every connection and refuses new ones until
/// `restore`.
pub struct Proxy {
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    path: Arc<Path>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    pub fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let streams: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let path = Arc::new(Path(AtomicU64::new(PASS)));
        let (gate, held, way) = (open.clone(), streams.clone(), path.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !gate.load(Ordering::Acquire) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                let mut held = held.lock().unwrap();
                for stream in [&client, &server] {
                    held.push(stream.try_clone().unwrap());
                }
                pipe(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    &way,
                );
                pipe(server, client, &way);
            }
        });
        Proxy {
            addr,
            open,
            path,
            streams,
        }
    }

    /// `http://ADDR`, for a client to reach what is behind through the proxy.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Holds every chunk of bytes, both ways, for `delay` before passing it on.
    pub fn delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(SWALLOW - 1);
        self.path
            .0
            .store(ms.clamp(1, SWALLOW - 1), Ordering::Release);
    }

    /// Swallows every byte both ways, with the connections left open.
    pub fn black_hole(&self) {
        self.path.0.store(SWALLOW, Ordering::Release);
    }

    /// Closes every proxied connection and refuses new ones: what is behind went away.
    pub fn cut(&self) {
        self.open.store(false, Ordering::Release);
        for stream in self.streams.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Lets connections and bytes through again, at once.
    pub fn restore(&self) {
        self.path.0.store(PASS, Ordering::Release);
        self.open.store(true, Ordering::Release);
    }
}

/// Copies `from` to `to` on a thread, as `path` says, until either side closes.
fn pipe(mut from: TcpStream, mut to: TcpStream, path: &Arc<Path>) {
    let path = path.clone();
    thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            match path.0.load(Ordering::Acquire) {
                PASS => {}
                SWALLOW => continue,
                ms => thread::sleep(Duration::from_millis(ms)),
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}
