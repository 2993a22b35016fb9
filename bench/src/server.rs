//! A server under test, `artemis-noop` or `artemis server`, as a child process.
//!
//! It is started on `127.0.0.1:0` and reports the port it got in its `serving on ADDR: ...` log
//! line, so two servers never race for a port; the lines before it say which transport each
//! core got. Its memory is read from `/proc/<pid>/status`, its CPU time from `/proc/<pid>/stat`.
//! Dropping the `Server` kills the process.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Clock ticks per second of `/proc/<pid>/stat` (Linux's USER_HZ, fixed at 100 in its ABI).
const USER_HZ: f64 = 100.0;

/// How long a server may take to say that it serves.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// How to start one server: a binary beside `artemis-bench` and its flags.
#[derive(Clone, Debug)]
pub(crate) struct Launch {
    pub name: &'static str,
    pub binary: &'static str,
    pub args: Vec<String>,
}

pub(crate) struct Server {
    pub name: &'static str,
    pub addr: SocketAddr,
    /// The start-up log's lines about each core's transport (`core 0: io_uring transport, ...`).
    pub transport: Vec<String>,
    child: Child,
}

impl Launch {
    /// Starts the server and waits until it serves. `ARTEMIS_*` variables of the caller are
    /// not passed on: both servers run with the flags given here and nothing else.
    pub(crate) fn start(&self) -> Result<Server, String> {
        let program = beside_this_binary(self.binary)?;
        let mut command = Command::new(&program);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("ARTEMIS_") {
                command.env_remove(name);
            }
        }
        let mut child = command
            .args(&self.args)
            .args(["--addr", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let (serving, started) = mpsc::channel();
        // Keeps draining stderr for the server's whole life, so its logging never blocks it.
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = serving.send(line);
            }
        });
        let mut log: Vec<String> = Vec::new();
        loop {
            match started.recv_timeout(STARTUP_TIMEOUT) {
                Ok(line) => match serving_addr(&line) {
                    Some(addr) => {
                        return Ok(Server {
                            name: self.name,
                            addr,
                            transport: log.iter().filter_map(|l| transport_line(l)).collect(),
                            child,
                        })
                    }
                    None => log.push(line),
                },
                Err(why) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "{} did not report `serving on` ({why}); its log:\n{}",
                        self.name,
                        log.join("\n")
                    ));
                }
            }
        }
    }
}

impl Server {
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Resident set size in bytes (`VmRSS` of `/proc/<pid>/status`).
    pub(crate) fn rss_bytes(&self) -> Result<u64, String> {
        let path = format!("/proc/{}/status", self.child.id());
        let status = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        vm_rss(&status).ok_or_else(|| format!("{path} has no VmRSS line"))
    }

    /// CPU time used so far, user and system, in seconds.
    pub(crate) fn cpu_seconds(&self) -> Result<f64, String> {
        let path = format!("/proc/{}/stat", self.child.id());
        let stat = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        cpu_ticks(&stat)
            .map(|ticks| ticks as f64 / USER_HZ)
            .ok_or_else(|| format!("{path} has no utime and stime"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `name` in the directory of the running executable (`target/release/`).
fn beside_this_binary(name: &str) -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| format!("where am I? {e}"))?;
    let path = me.with_file_name(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found; build the workspace first (`cargo build --release --workspace`, as bench/run.sh does)",
            path.display()
        ))
    }
}

/// The address in `[... INFO artemis::runtime] serving on 127.0.0.1:PORT: ...`.
fn serving_addr(line: &str) -> Option<SocketAddr> {
    line.split_once("serving on ")?
        .1
        .split_once(": ")?
        .0
        .parse()
        .ok()
}

/// The message of a log line about a core's transport.
fn transport_line(line: &str) -> Option<String> {
    let message = line.split_once("] ").map_or(line, |(_, m)| m);
    (message.starts_with("core ") && message.contains(" transport")).then(|| message.to_owned())
}

/// `VmRSS:     1234 kB` in bytes.
fn vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// utime + stime, fields 14 and 15 of `/proc/<pid>/stat`, counted after the command name (which
/// is in parentheses and may hold spaces).
fn cpu_ticks(stat: &str) -> Option<u64> {
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(field(14)? + field(15)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_address_in_the_start_up_line() {
        let line = "[2025-01-01T00:00:00Z INFO  artemis::runtime] serving on 127.0.0.1:40123: \
                    2 shards on cores [0, 1]";
        assert_eq!(serving_addr(line), Some("127.0.0.1:40123".parse().unwrap()));
        assert_eq!(serving_addr("[.. INFO ..] starting"), None);
    }

    #[test]
    fn keeps_the_transport_lines() {
        let line = "[2025-01-01T00:00:00Z INFO  artemis::runtime] core 1: io_uring transport, \
                    ring set up with COOP_TASKRUN|TASKRUN_FLAG";
        assert_eq!(
            transport_line(line).unwrap(),
            "core 1: io_uring transport, ring set up with COOP_TASKRUN|TASKRUN_FLAG"
        );
        assert_eq!(
            transport_line("[.. INFO  artemis::runtime] serving on x"),
            None
        );
    }

    #[test]
    fn reads_vm_rss() {
        let status = "Name:\tartemis\nVmPeak:\t  9000 kB\nVmRSS:\t    2048 kB\nThreads:\t3\n";
        assert_eq!(vm_rss(status), Some(2048 * 1024));
        assert_eq!(vm_rss("Name:\tx\n"), None);
    }

    #[test]
    fn reads_cpu_ticks_after_the_command_name() {
        let stat = "4242 (artemis srv) S 1 2 3 4 5 6 7 8 9 10 250 40 0 0 20 0 3 0";
        assert_eq!(cpu_ticks(stat), Some(290));
        assert_eq!(cpu_ticks("4242 (x) S 1"), None);
    }

    #[test]
    fn reads_its_own_rss() {
        let me = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(vm_rss(&me).unwrap() > 0);
    }
}
