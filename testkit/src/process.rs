//! The server as a child process: its command line, its start, its log and its end.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long a server may take to report that it serves. It normally takes milliseconds and, on a
/// machine saturated by other work, up to ~10 s; a start that has not finished after 30 s is hung
/// (seen intermittently under load: both cores stuck joining the shard mesh).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// What a server logs once its management state is loaded and it serves discovery.
const MANAGEMENT_LOADED: &str = "management state loaded";

/// `binary ARGS` with a clean environment: no `ARTEMIS_*` variable of the caller leaks in, and
/// the log level is the one that prints the `serving on` line.
pub fn command(binary: impl AsRef<OsStr>, args: &[&str]) -> Command {
    let mut command = Command::new(binary);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ARTEMIS_") {
            command.env_remove(name);
        }
    }
    command.env("RUST_LOG", "info").args(args);
    command
}

/// Starts `command` with nothing on stdin or stdout and its log (stderr) piped to the caller.
pub fn spawn_logging(mut command: Command) -> Child {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the artemis binary starts")
}

/// A running `artemis server`, killed on drop.
pub struct ServerProcess {
    child: Child,
    /// Where it serves, from its `serving on` line.
    pub addr: SocketAddr,
    /// Registry shards, one per serving core.
    pub shards: usize,
    log: Arc<Mutex<String>>,
}

impl ServerProcess {
    /// Starts `command` and waits until the server has logged both that it serves and that its
    /// management state is loaded (until then it refuses discovery), in whichever order; panics
    /// with its log if that does not happen within [`STARTUP_TIMEOUT`].
    pub fn spawn(command: Command) -> ServerProcess {
        let mut child = spawn_logging(command);
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (serving, started) = mpsc::channel();
        let sink = log.clone();
        // Keeps draining stderr for the server's whole life, so its logging never blocks.
        thread::spawn(move || {
            let (mut bound, mut loaded) = (None, false);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                {
                    let mut log = sink.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
                bound = bound.or_else(|| serving_line(&line));
                loaded |= line.contains(MANAGEMENT_LOADED);
                if let Some(started) = bound.take_if(|_| loaded) {
                    let _ = serving.send(started);
                }
            }
        });
        match started.recv_timeout(STARTUP_TIMEOUT) {
            Ok((addr, shards)) => ServerProcess {
                child,
                addr,
                shards,
                log,
            },
            Err(why) => {
                let _ = child.kill();
                let status = child.wait();
                thread::sleep(Duration::from_millis(100));
                panic!(
                    "the server did not report `serving on` and `{MANAGEMENT_LOADED}` ({why:?}, {status:?}); its log:\n{}",
                    log.lock().unwrap()
                );
            }
        }
    }

    /// Everything the server has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The server's process id, for `/proc/PID/...` and signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child, to wait for it.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Kills the server (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The address and shard count from `... serving on 127.0.0.1:PORT: N shards on cores [...]`.
fn serving_line(line: &str) -> Option<(SocketAddr, usize)> {
    let (addr, rest) = line.split_once("serving on ")?.1.split_once(": ")?;
    let shards = rest.split_once(" shards")?.0.trim().parse().ok()?;
    Some((addr.parse().ok()?, shards))
}

/// Numbers the directories this process makes.
static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// A directory of its own under the system's temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new empty directory named after `prefix`, this process and a counter.
    pub fn new(prefix: &str) -> TempDir {
        let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("a temporary directory is created");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free loopback port (bound once and released): for a server that must know its own address
/// before it starts (a restart on the same port, a cluster whose nodes list each other).
pub fn free_port() -> u16 {
    free_ports(1)
}

/// The first of `count` consecutive free loopback ports, as [`free_port`] finds one.
///
/// Taken below Linux's range of ephemeral ports (32768 and up), not from it: a port the kernel
/// hands out can go to a test's client connection or to a server bound to port 0 before the
/// server it was meant for binds it, which then fails to start. Never the same port twice in
/// one process; test binaries start at different places.
pub fn free_ports(count: u32) -> u16 {
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static TAKEN: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id() % COUNT;
    loop {
        let n = TAKEN.fetch_add(count, Ordering::Relaxed);
        assert!(n + count <= COUNT, "every port from {FIRST} was taken");
        let first = (start + n) % COUNT;
        if first + count > COUNT {
            continue;
        }
        let base = u16::try_from(FIRST + first).expect("below 32000");
        let free = |port| TcpListener::bind(("127.0.0.1", port)).is_ok();
        if (base..base + count as u16).all(free) {
            return base;
        }
    }
}

/// Calls `probe` every 100 ms until it returns `Some`, for at most `within` (blocking: for
/// probes that talk to the server).
pub fn poll<T>(within: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = probe() {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_serving_line_gives_address_and_shards() {
        let line = "[...] serving on 127.0.0.1:8080: 2 shards on cores [0, 1], region SHA";
        let (addr, shards) = serving_line(line).unwrap();
        assert_eq!((addr.port(), shards), (8080, 2));
        assert!(serving_line("management state loaded").is_none());
    }
}
