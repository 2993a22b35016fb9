//! The integration-test harness: the real `artemis` binary on a free loopback port, spoken to
//! over plain `TcpStream`s.
//!
//! Every test starts its own [`Server`] (`--addr 127.0.0.1:0`, region `SHA`, zone `SHAJQ`, the
//! set-up of docs/compatibility.md's reference exchanges, and a management store in a fresh
//! temporary `--data-dir`), learns the bound address from the `serving on` log line, waits for
//! its management state to load (until then a node refuses discovery), and kills the child (and
//! removes its directory) when the `Server` drops; tests therefore run in parallel without
//! sharing state. Requests are written by hand ([`client`]) so that pipelining,
//! chunked bodies and malformed input go out byte for byte; [`json`] compares replies, [`artemis`]
//! knows the registry's endpoints and instances.

// Each test binary uses its own part of the harness.
#![allow(dead_code)]

pub(crate) mod artemis;
pub(crate) mod client;
pub(crate) mod cluster;
pub(crate) mod json;
pub(crate) mod postgres;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use artemis_testkit::ServerProcess;
#[allow(unused_imports)] // each test binary uses its own part
pub(crate) use artemis_testkit::{free_port, poll, Proxy, TempDir};
pub(crate) use client::{get_request, post_request, Client, Reply};

/// The region and zone every test server runs in (docs/compatibility.md, "Reference exchanges").
pub(crate) const REGION: &str = "SHA";
pub(crate) const ZONE: &str = "SHAJQ";

/// A running `artemis server`, killed on drop.
pub(crate) struct Server {
    process: ServerProcess,
    pub addr: SocketAddr,
    /// Registry shards, one per serving core.
    pub shards: usize,
    /// The keep-alive connection behind [`Server::post`] and [`Server::get`].
    conn: RefCell<Option<Client>>,
    /// The server's own `--data-dir`, removed after the server is killed (none when the test
    /// named the store itself).
    data_dir: Option<TempDir>,
}

/// Numbers the scratch directories of servers started with no [`Server`] around them.
static NEXT_SCRATCH: AtomicU64 = AtomicU64::new(0);

/// `artemis ARGS` with a clean environment: no `ARTEMIS_*` variable of the caller leaks in, and
/// the log level is the one that prints the `serving on` line. `ARTEMIS_TEST_IO` (`uring` or
/// `glommio`) names the transport the suite runs over; the server's default otherwise. A server
/// started this way, with no [`Server`] to clean up after it, keeps its management store in a
/// directory of its own under Cargo's scratch directory for tests, never in the working tree.
pub(crate) fn artemis(args: &[&str]) -> Command {
    let mut command = artemis_testkit::command(env!("CARGO_BIN_EXE_artemis"), args);
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "artemis-data-{}-{}",
        std::process::id(),
        NEXT_SCRATCH.fetch_add(1, Ordering::Relaxed)
    ));
    command.env("ARTEMIS_DATA_DIR", scratch);
    if let Some(io) = std::env::var_os("ARTEMIS_TEST_IO") {
        command.env("ARTEMIS_IO", io);
    }
    command
}

/// Both cores of the 2-core machines the suite runs on; core 0 alone elsewhere.
fn default_cores() -> &'static str {
    match thread::available_parallelism() {
        Ok(n) if n.get() >= 2 => "0-1",
        _ => "0",
    }
}

impl Server {
    /// Starts `artemis server --addr 127.0.0.1:0 --cores 0-1 --region SHA --zone SHAJQ
    /// --data-dir <fresh temporary directory> EXTRA`; `--addr`, `--cores`, `--region` and `--zone`
    /// in `extra` replace the defaults, and `--data-dir` or `--management-db` the directory.
    pub(crate) fn start(extra: &[&str]) -> Server {
        Server::start_with_env(extra, &[])
    }

    /// [`Server::start`] with environment variables set for the child.
    pub(crate) fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut args = vec!["server"];
        for (flag, value) in [
            ("--addr", "127.0.0.1:0"),
            ("--cores", default_cores()),
            ("--region", REGION),
            ("--zone", ZONE),
        ] {
            if !extra.contains(&flag) {
                args.extend([flag, value]);
            }
        }
        let names_store = extra
            .iter()
            .any(|a| a.starts_with("--data-dir") || a.starts_with("--management-db"));
        let data_dir = (!names_store).then(|| TempDir::new("artemis-test-data"));
        let dir = data_dir
            .as_ref()
            .map(|d| d.path().to_string_lossy().into_owned());
        if let Some(dir) = &dir {
            args.extend(["--data-dir", dir]);
        }
        args.extend_from_slice(extra);
        let mut command = artemis(&args);
        command.envs(env.iter().copied());
        Server::spawn(command, data_dir)
    }

    fn spawn(command: Command, data_dir: Option<TempDir>) -> Server {
        let process = ServerProcess::spawn(command);
        Server {
            addr: process.addr,
            shards: process.shards,
            process,
            conn: RefCell::new(None),
            data_dir,
        }
    }

    /// Everything the server has logged so far.
    pub(crate) fn log(&self) -> String {
        self.process.log()
    }

    /// A new connection.
    pub(crate) fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// One request/reply exchange on the server's keep-alive connection (opened on first use,
    /// and again after a reply that closes it).
    pub(crate) fn exchange(&self, request: &[u8]) -> Reply {
        let mut slot = self.conn.borrow_mut();
        let client = slot.get_or_insert_with(|| self.connect());
        client.send(request);
        let reply = client.read_reply();
        if reply.closes() {
            *slot = None;
        }
        reply
    }

    /// `POST path` with a JSON body.
    pub(crate) fn post(&self, path: &str, body: &str) -> Reply {
        self.exchange(&post_request(path, body))
    }

    /// `GET path` (with its query string).
    pub(crate) fn get(&self, path: &str) -> Reply {
        self.exchange(&get_request(path))
    }

    /// Sends `signal` (e.g. `TERM`) and waits up to `within` for the process to exit.
    pub(crate) fn signal_and_wait(&mut self, signal: &str, within: Duration) -> Option<ExitStatus> {
        let sent = Command::new("kill")
            .args(["-s", signal, &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -s {signal} failed");
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let child = self.process.child();
            if let Some(status) = child.try_wait().expect("the child can be waited for") {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

/// What the tests read of the server process itself: its id, memory and descriptors.
impl Server {
    /// The server's process id, for `/proc/PID/...`.
    pub(crate) fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The server's resident set in KiB (`VmRSS` of `/proc/PID/status`).
    pub(crate) fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the server runs");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("a VmRSS line")
    }

    /// How many descriptors the server holds open (entries of `/proc/PID/fd`).
    pub(crate) fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("the server runs")
            .count()
    }

    /// `GET path` with `Connection: close` on a connection of its own: for servers whose idle
    /// timeout would close the shared keep-alive connection of [`Server::get`] between requests,
    /// or whose connection limit that connection would take part of.
    pub(crate) fn get_once(&self, path: &str) -> Reply {
        let mut client = self.connect();
        client.send(&client::request(
            "GET",
            path,
            &[("Connection", "close")],
            b"",
        ));
        client.read_reply()
    }
}

/// Waits up to `within` for `child` to exit; `None` if it still runs.
pub(crate) fn wait_for_exit(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}
